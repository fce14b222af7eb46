//! The WebSocket task shape, driven through an in-memory socket with
//! tokio's paused clock (as axum's testing-websockets example does).
#![allow(clippy::unwrap_used)] // tests may unwrap

use super::*;
use crate::server::broker::{Broker, LocalBroker};
use crate::server::config::Settings;
use crate::server::metrics::Meters;
use crate::server::realtime::session::Services;
use futures::channel::mpsc;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

/// A socket whose incoming messages come from a channel, and whose writes
/// are recorded, or block forever (a peer that stopped reading).
struct FakeSocket {
    incoming: mpsc::UnboundedReceiver<Result<Message, axum::Error>>,
    written: Arc<Mutex<Vec<Out>>>,
    stalled: bool,
    closed: Arc<Mutex<bool>>,
}

impl Stream for FakeSocket {
    type Item = Result<Message, axum::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.incoming.poll_next_unpin(cx)
    }
}

impl Sink<Out> for FakeSocket {
    type Error = axum::Error;
    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.stalled {
            Poll::Pending
        } else {
            Poll::Ready(Ok(()))
        }
    }
    fn start_send(self: Pin<&mut Self>, item: Out) -> Result<(), Self::Error> {
        self.written.lock().unwrap().push(item);
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.poll_ready(&mut Context::from_waker(futures::task::noop_waker_ref()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        *self.closed.lock().unwrap() = true;
        Poll::Ready(Ok(()))
    }
}

struct Rig {
    socket: FakeSocket,
    peer: mpsc::UnboundedSender<Result<Message, axum::Error>>,
    written: Arc<Mutex<Vec<Out>>>,
    closed: Arc<Mutex<bool>>,
    broker: Arc<LocalBroker>,
    shutdown: Shutdown,
    session: Session,
    link: Link,
    kick: crate::server::accounts::live::KickTx,
}

struct NoBackend;

#[async_trait::async_trait]
impl super::super::backend::Backend for NoBackend {
    async fn head(
        &self,
        _: crate::protocol::Topic,
    ) -> Result<crate::protocol::Version, crate::error::AppError> {
        Ok(crate::protocol::Version::new(1, 0))
    }
    async fn since(
        &self,
        t: crate::protocol::Topic,
        _: crate::protocol::Version,
        _: crate::server::store::PageLimit,
    ) -> Result<crate::model::Backfill, crate::error::AppError> {
        Ok(crate::model::Backfill::reset(
            t,
            crate::protocol::Version::new(1, 0),
        ))
    }
    async fn latest(
        &self,
        _: crate::protocol::Topic,
    ) -> Result<(crate::protocol::Version, Option<crate::protocol::Event>), crate::error::AppError>
    {
        Ok((crate::protocol::Version::new(1, 0), None))
    }
    async fn authorize(
        &self,
        _: &crate::server::accounts::Principal,
        _: crate::protocol::Topic,
        _: crate::server::accounts::Access,
    ) -> Result<(), crate::error::AppError> {
        Ok(())
    }

    async fn write(
        &self,
        _: &crate::server::accounts::Principal,
        _: crate::protocol::Topic,
        _: uuid::Uuid,
        _: crate::protocol::ChatWrite,
    ) -> Result<crate::protocol::Event, crate::server::chat::WriteError> {
        Err(crate::error::AppError::Internal.into())
    }
    fn presence(
        &self,
        _: &crate::server::accounts::Principal,
        _: i64,
        _: Option<crate::server::presence::Attendance>,
        _: Option<crate::server::presence::Attendance>,
    ) {
    }

    fn linger(&self, _: &crate::server::accounts::Principal, _: i64, _: std::time::Duration) {}

    async fn typing(
        &self,
        _: &crate::server::accounts::Principal,
        _: crate::protocol::Topic,
    ) -> Result<(), crate::error::AppError> {
        Ok(())
    }

    fn publish_tick(
        &self,
        _: crate::protocol::Topic,
        _: crate::protocol::Tick,
    ) -> Result<crate::protocol::Event, crate::error::AppError> {
        Err(crate::error::AppError::Internal)
    }
}

/// A connection whose first heartbeat tick is due `first_tick` from now.
fn rig(stalled: bool, first_tick: Duration, outbox_capacity: usize) -> Rig {
    let settings = Settings {
        heartbeat_interval_ms: 100,
        heartbeat_timeout_ms: 300,
        shutdown_grace_ms: 100,
        outbox_capacity,
        ..Settings::default()
    };
    let (peer, incoming) = mpsc::unbounded();
    let written = Arc::new(Mutex::new(Vec::new()));
    let closed = Arc::new(Mutex::new(false));
    let socket = FakeSocket {
        incoming,
        written: written.clone(),
        stalled,
        closed: closed.clone(),
    };
    let broker = Arc::new(LocalBroker::default());
    let (outbox, inbox) = Outbox::new(outbox_capacity);
    let services = Services {
        backend: Arc::new(NoBackend),
        broker: broker.clone(),
        settings: Arc::new(settings.clone()),
        meters: Arc::new(Meters::new()),
    };
    let shutdown = Shutdown::default();
    let session = Session::new(1, services, Peer::default(), outbox.clone());
    let (kick, kicks) = crate::server::accounts::live::kick_queue();
    let link = Link {
        inbox,
        outbox,
        kicks,
        shutdown: shutdown.clone(),
        tick: tokio::time::interval_at(Instant::now() + first_tick, Duration::from_millis(100)),
        limits: Limits::from_settings(&settings),
        batch_frames: false,
        flusher: None,
    };
    Rig {
        socket,
        peer,
        kick,
        written,
        closed,
        broker,
        shutdown,
        session,
        link,
    }
}

fn texts(written: &Arc<Mutex<Vec<Out>>>) -> Vec<String> {
    written
        .lock()
        .unwrap()
        .iter()
        .filter_map(|m| match m {
            Out::Frame(f) => Some(f.as_str().to_owned()),
            Out::Batch(frames) => {
                Some(String::from_utf8(super::super::frame::batch_text(frames)).unwrap())
            }
            _ => None,
        })
        .collect()
}

fn close_code(written: &Arc<Mutex<Vec<Out>>>) -> Option<u16> {
    written.lock().unwrap().iter().find_map(|m| match m {
        Out::Close(code, _) => Some(*code),
        _ => None,
    })
}

#[tokio::test(start_paused = true)]
async fn a_busy_topic_cannot_starve_the_silence_check() {
    let mut r = rig(false, Duration::ZERO, 20_000);
    let topic = crate::protocol::Topic::ticker("BUSY").unwrap();
    r.session
        .subs
        .insert(topic, crate::protocol::Version::new(1, 0));
    r.broker.subscribe(topic, 1, r.link.outbox.clone());
    for seq in 1..=10_000u64 {
        r.broker.publish(tick(topic, seq));
    }
    // The peer has been silent past the timeout when the tick comes due.
    tokio::time::advance(Duration::from_millis(500)).await;
    let end = drive(r.socket, r.session, r.link).await;
    assert_eq!(end, "heartbeat timeout");
    assert_eq!(close_code(&r.written), Some(4000));
    let events = texts(&r.written)
        .iter()
        .filter(|t| t.contains(r#""type":"event""#))
        .count();
    assert!(
        events < 10_000,
        "the silence check ran before the backlog was written ({events} events)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stalled_write_gives_way_to_shutdown() {
    let r = rig(true, Duration::from_secs(3600), 16);
    let shutdown = r.shutdown.clone();
    let task = tokio::spawn(drive(r.socket, r.session, r.link));
    // The hello is stuck in a write that the peer never accepts; the write
    // bound (the heartbeat timeout, 300 ms here) is far beyond the goodbye.
    tokio::task::yield_now().await;
    shutdown.trigger();
    let ended = tokio::time::timeout(Duration::from_millis(250), task).await;
    assert_eq!(
        ended.unwrap().unwrap(),
        "shutdown",
        "ends within the goodbye bound"
    );
}

#[tokio::test(start_paused = true)]
async fn shutdown_sends_reconnect_then_1012_and_waits_for_the_echo() {
    let r = rig(false, Duration::from_secs(3600), 16);
    let (shutdown, peer, written) = (r.shutdown.clone(), r.peer.clone(), r.written.clone());
    let task = tokio::spawn(drive(r.socket, r.session, r.link));
    tokio::task::yield_now().await;
    shutdown.trigger();
    tokio::task::yield_now().await;
    peer.unbounded_send(Ok(Message::Close(None))).unwrap();
    assert_eq!(task.await.unwrap(), "shutdown");
    let t = texts(&written);
    assert!(t[0].contains(r#""type":"hello""#) && t[0].contains(r#""protocol":1"#));
    assert!(
        t[1].contains(r#""type":"reconnect""#) && t[1].contains(r#""window_ms":5000"#),
        "{t:?}"
    );
    assert_eq!(close_code(&written), Some(1012));
}

#[tokio::test(start_paused = true)]
async fn a_peer_close_is_answered_by_closing() {
    let r = rig(false, Duration::from_secs(3600), 16);
    let (peer, closed) = (r.peer.clone(), r.closed.clone());
    peer.unbounded_send(Ok(Message::Close(None))).unwrap();
    assert_eq!(drive(r.socket, r.session, r.link).await, "closed by peer");
    assert!(
        *closed.lock().unwrap(),
        "the socket was closed (the echo flushed)"
    );
}

#[tokio::test(start_paused = true)]
async fn a_revoked_credential_closes_with_4401_before_pending_deliveries() {
    let r = rig(false, Duration::from_secs(3600), 20_000);
    let topic = crate::protocol::Topic::ticker("BUSY").unwrap();
    let mut session = r.session;
    session
        .subs
        .insert(topic, crate::protocol::Version::new(1, 0));
    r.broker.subscribe(topic, 1, r.link.outbox.clone());
    for seq in 1..=1000u64 {
        r.broker.publish(tick(topic, seq));
    }
    r.kick
        .send(crate::server::accounts::live::Kick::Credentials);
    let end = drive(r.socket, session, r.link).await;
    assert_eq!(end, "credentials revoked");
    assert_eq!(close_code(&r.written), Some(4401));
    let events = texts(&r.written)
        .iter()
        .filter(|t| t.contains(r#""type":"event""#))
        .count();
    assert!(
        events < 1000,
        "the revocation was read before the backlog ({events} events)"
    );
}

/// Tick `seq` of ticker `topic` (its price is the seq), ready to publish.
fn tick(topic: crate::protocol::Topic, seq: u64) -> Arc<crate::server::broker::Delivery> {
    crate::server::broker::Delivery::new(&crate::protocol::Event {
        topic,
        version: crate::protocol::Version::new(1, seq),
        data: crate::protocol::EventData::Tick(crate::protocol::Tick {
            price: seq as f64,
            ts: 0,
        }),
    })
    .unwrap()
}

fn room_event(seq: u64) -> crate::protocol::Event {
    crate::protocol::Event {
        topic: crate::protocol::Topic::room(1),
        version: crate::protocol::Version::new(1, seq),
        data: crate::protocol::EventData::Message(crate::protocol::ChatMessage {
            client_id: uuid::Uuid::from_u128(seq as u128),
            author: "a".into(),
            body: format!("m{seq}"),
            ..Default::default()
        }),
    }
}

#[tokio::test(start_paused = true)]
async fn a_flush_window_writes_a_burst_as_one_batch_with_ticks_collapsed() {
    let mut r = rig(false, Duration::from_secs(3600), 1024);
    r.link.flusher = crate::server::realtime::flush::Flusher::of(Duration::from_millis(20));
    r.link.batch_frames = true;
    let ticker = crate::protocol::Topic::ticker("FAST").unwrap();
    let room = crate::protocol::Topic::room(1);
    for t in [ticker, room] {
        r.session
            .subs
            .insert(t, crate::protocol::Version::new(1, 0));
        r.broker.subscribe(t, 1, r.link.outbox.clone());
    }
    let (peer, written, broker) = (r.peer.clone(), r.written.clone(), r.broker.clone());
    let task = tokio::spawn(drive(r.socket, r.session, r.link));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(texts(&written).len(), 1, "the hello");
    for seq in 1..=5u64 {
        broker.publish(tick(ticker, seq));
        broker.publish(crate::server::broker::Delivery::new(&room_event(seq)).unwrap());
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(texts(&written).len(), 1, "nothing before the window ends");
    tokio::time::sleep(Duration::from_millis(15)).await;
    let t = texts(&written);
    assert_eq!(t.len(), 2, "the burst in one message: {t:?}");
    let ServerFrame::Batch { frames } = serde_json::from_str(&t[1]).unwrap() else {
        panic!("not a batch: {}", t[1]);
    };
    let got: Vec<(String, u64)> = frames
        .iter()
        .map(|f| match f {
            ServerFrame::Event(e) => (e.topic.to_string(), e.version.seq),
            other => panic!("not an event: {other:?}"),
        })
        .collect();
    let mut want: Vec<(String, u64)> = (1..=5).map(|s| ("room:1".to_owned(), s)).collect();
    want.insert(4, ("ticker:FAST".to_owned(), 5));
    assert_eq!(
        got, want,
        "every room event in order; the ticker's newest value only"
    );
    peer.unbounded_send(Ok(Message::Close(None))).unwrap();
    assert_eq!(task.await.unwrap(), "closed by peer");
}

#[tokio::test(start_paused = true)]
async fn without_a_window_or_batch_frames_each_frame_is_its_own_message_at_once() {
    let r = rig(false, Duration::from_secs(3600), 1024);
    let room = crate::protocol::Topic::room(1);
    let mut session = r.session;
    session
        .subs
        .insert(room, crate::protocol::Version::new(1, 0));
    r.broker.subscribe(room, 1, r.link.outbox.clone());
    for seq in 1..=3u64 {
        r.broker
            .publish(crate::server::broker::Delivery::new(&room_event(seq)).unwrap());
    }
    let (peer, written) = (r.peer.clone(), r.written.clone());
    let task = tokio::spawn(drive(r.socket, session, r.link));
    tokio::time::sleep(Duration::from_millis(1)).await;
    let t = texts(&written);
    assert_eq!(t.len(), 4, "hello and three events: {t:?}");
    assert!(t[1..].iter().all(|m| m.starts_with(r#"{"type":"event""#)));
    peer.unbounded_send(Ok(Message::Close(None))).unwrap();
    assert_eq!(task.await.unwrap(), "closed by peer");
}

#[test]
fn joined_frames_stay_in_order_within_the_size_bound() {
    let frame = |i: usize| {
        super::super::frame::Frame::encode(&ServerFrame::Reconnect {
            reason: "x".repeat(i),
            window_ms: i as u64,
        })
        .unwrap()
    };
    let frames: Vec<_> = (1..=40).map(frame).collect();
    let total: usize = frames.iter().map(|f| f.as_str().len()).sum();
    let messages: Vec<String> = group(frames.clone(), 400)
        .iter()
        .map(|g| match g.as_slice() {
            [one] => one.as_str().to_owned(),
            many => String::from_utf8(super::super::frame::batch_text(many)).unwrap(),
        })
        .collect();
    assert!(
        messages.len() > 1 && messages.len() < 40,
        "{}",
        messages.len()
    );
    let mut got = Vec::new();
    for m in &messages {
        match serde_json::from_str::<ServerFrame>(m).unwrap() {
            ServerFrame::Batch { frames } => {
                assert!(m.len() <= 400, "a batch within the bound");
                got.extend(frames)
            }
            single => got.push(single),
        }
    }
    let want: Vec<ServerFrame> = frames
        .iter()
        .map(|f| serde_json::from_str(f.as_str()).unwrap())
        .collect();
    assert_eq!(got, want, "every frame once, in order ({total} bytes)");
    // A frame above the bound goes alone, unwrapped.
    let big = group(vec![frame(1), frame(500), frame(2)], 300);
    assert_eq!(big.iter().map(Vec::len).collect::<Vec<_>>(), [1, 1, 1]);
    // A batch's length is known before it is built.
    let three = [frame(1), frame(2), frame(3)];
    assert_eq!(
        super::super::frame::batch_len(&three),
        super::super::frame::batch_text(&three).len()
    );
}

#[test]
fn heartbeats_fall_on_a_shared_grid_no_earlier_than_one_interval() {
    let origin = Instant::now();
    let step = Duration::from_millis(250);
    for offset_ms in [0u64, 1, 249, 250, 251, 19_999, 20_001] {
        let t = origin + Duration::from_millis(offset_ms);
        let at = grid_after(origin, t, step);
        assert!(at >= t, "not before {offset_ms} ms");
        assert!(at - t < step, "within one step of {offset_ms} ms");
        let since = (at - origin).as_nanos();
        assert_eq!(since % step.as_nanos(), 0, "on the grid");
    }
    // Two connections opened 100 ms apart tick together.
    let a = grid_after(origin, origin + Duration::from_millis(20_010), step);
    let b = grid_after(origin, origin + Duration::from_millis(20_110), step);
    assert_eq!(a, b);
}
