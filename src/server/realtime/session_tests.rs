//! The ordering contract of `Session`, tested against a fake backend and an
//! in-memory outbox: no database, no socket, no clock but tokio's paused one.
#![allow(clippy::unwrap_used)] // tests may unwrap

use super::*;
use crate::model::Backfill;
use crate::protocol::{ChatMessage, EventData, Tick};
use crate::server::broker::{Inbox, LocalBroker};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use uuid::Uuid;

const EPOCH: u32 = 7;

/// Topic logs in memory; reads can be made to fail.
#[derive(Default)]
struct Fake {
    logs: Mutex<HashMap<Topic, Vec<Event>>>,
    broken: AtomicBool,
}

impl Fake {
    /// Appends `n` events to `topic` (without publishing them).
    fn append(&self, topic: Topic, n: usize) -> Vec<Event> {
        let mut logs = self.logs.lock().unwrap();
        let log = logs.entry(topic).or_default();
        (0..n)
            .map(|_| {
                let seq = log.len() as u64 + 1;
                let e = event(topic, EPOCH, seq);
                log.push(e.clone());
                e
            })
            .collect()
    }

    fn check(&self) -> Result<(), AppError> {
        if self.broken.load(Ordering::SeqCst) {
            Err(AppError::Internal)
        } else {
            Ok(())
        }
    }

    fn head_of(&self, topic: Topic) -> Version {
        let len = self.logs.lock().unwrap().get(&topic).map_or(0, Vec::len);
        Version::new(EPOCH, len as u64)
    }
}

fn event(topic: Topic, epoch: u32, seq: u64) -> Event {
    let data = match topic {
        Topic::Room(_) => EventData::Message(ChatMessage {
            client_id: Uuid::from_u128(seq as u128),
            author: "a".into(),
            body: format!("m{seq}"),
            sent_at: 0,
        }),
        Topic::Ticker(_) => EventData::Tick(Tick {
            price: seq as f64,
            ts: 0,
        }),
    };
    Event {
        topic,
        version: Version::new(epoch, seq),
        data,
    }
}

#[async_trait::async_trait]
impl Backend for Fake {
    async fn head(&self, topic: Topic) -> Result<Version, AppError> {
        self.check()?;
        Ok(self.head_of(topic))
    }

    async fn since(&self, topic: Topic, after: Version, limit: u32) -> Result<Backfill, AppError> {
        self.check()?;
        let head = self.head_of(topic);
        if after.epoch != head.epoch || after.seq > head.seq {
            return Ok(Backfill::reset(topic, head));
        }
        let logs = self.logs.lock().unwrap();
        let newer: Vec<Event> = logs
            .get(&topic)
            .into_iter()
            .flatten()
            .filter(|e| e.version.seq > after.seq)
            .cloned()
            .collect();
        Ok(Backfill {
            topic,
            version: head,
            has_more: newer.len() > limit as usize,
            events: newer.into_iter().take(limit as usize).collect(),
            reset: false,
        })
    }

    async fn latest(&self, topic: Topic) -> Result<(Version, Option<Event>), AppError> {
        self.check()?;
        let newest = self
            .logs
            .lock()
            .unwrap()
            .get(&topic)
            .and_then(|l| l.last().cloned());
        Ok((self.head_of(topic), newest))
    }

    async fn post_message(
        &self,
        _topic: Topic,
        _client_id: Uuid,
        _author: Option<&str>,
        _body: &str,
    ) -> Result<Event, AppError> {
        Err(AppError::Internal)
    }

    fn publish_tick(&self, _topic: Topic, _tick: Tick) -> Result<Event, AppError> {
        Err(AppError::Internal)
    }
}

struct Harness {
    fake: Arc<Fake>,
    broker: Arc<LocalBroker>,
    session: Session,
    inbox: Inbox,
    out: Frames,
}

fn harness(tweak: impl FnOnce(&mut Settings)) -> Harness {
    let mut settings = Settings::default();
    tweak(&mut settings);
    let fake = Arc::new(Fake::default());
    let broker = Arc::new(LocalBroker::default());
    let (outbox, inbox) = Outbox::new(settings.outbox_capacity);
    let services = Services {
        backend: fake.clone(),
        broker: broker.clone(),
        settings: Arc::new(settings),
        meters: Meters::new(),
    };
    Harness {
        fake,
        broker,
        session: Session::new(1, services, Peer::default(), outbox),
        inbox,
        out: Frames::new(),
    }
}

impl Harness {
    /// Publishes through the broker what `Fake::append` added.
    fn publish(&self, events: &[Event]) {
        for e in events {
            self.broker.publish(Delivery::new(e).unwrap());
        }
    }

    /// Feeds everything queued in the inbox to the session.
    async fn pump(&mut self) {
        while let Ok(d) = self.inbox.try_recv() {
            self.session.deliver(&d, &mut self.out).await;
        }
    }

    async fn send(&mut self, f: ClientFrame) {
        self.session.handle(f, &mut self.out).await;
    }

    /// The frames written since the last call, decoded.
    fn written(&mut self) -> Vec<ServerFrame> {
        self.out
            .drain(..)
            .map(|f| serde_json::from_str(f.as_str()).unwrap())
            .collect()
    }

    /// The seqs of the event frames written since the last call.
    fn seqs(&mut self) -> Vec<u64> {
        self.written()
            .into_iter()
            .map(|f| match f {
                ServerFrame::Event(e) => e.version.seq,
                other => panic!("expected only events, got {other:?}"),
            })
            .collect()
    }
}

fn subscribe(topic: Topic, since: Option<Version>) -> ClientFrame {
    ClientFrame::Subscribe { topic, since }
}

fn ticker() -> Topic {
    Topic::ticker("ACME").unwrap()
}

#[tokio::test]
async fn lossless_resume_replays_then_follows_in_order() {
    let mut h = harness(|_| {});
    let room = Topic::room(1);
    h.fake.append(room, 3);
    h.send(subscribe(room, Some(Version::new(EPOCH, 1)))).await;
    let frames = h.written();
    assert!(matches!(&frames[0], ServerFrame::Event(e) if e.version.seq == 2));
    assert!(matches!(&frames[1], ServerFrame::Event(e) if e.version.seq == 3));
    assert_eq!(
        frames[2],
        ServerFrame::Subscribed {
            topic: room,
            version: Version::new(EPOCH, 3),
            policy: Policy::Lossless
        }
    );
    let next = h.fake.append(room, 2);
    h.publish(&next);
    h.pump().await;
    assert_eq!(h.seqs(), vec![4, 5]);
}

#[tokio::test]
async fn duplicates_and_deliveries_already_replayed_are_dropped() {
    let mut h = harness(|_| {});
    let room = Topic::room(1);
    let early = h.fake.append(room, 2);
    h.send(subscribe(room, Some(Version::new(EPOCH, 0)))).await;
    assert_eq!(h.written().len(), 3, "1 and 2 replayed, then subscribed");
    // Their broker copies (queued while the log was read) are not written again.
    h.publish(&early);
    h.pump().await;
    assert_eq!(h.seqs(), Vec::<u64>::new());
    let next = h.fake.append(room, 1);
    h.publish(&next);
    h.publish(&next);
    h.pump().await;
    assert_eq!(h.seqs(), vec![3], "a repeat is never written");
}

#[tokio::test]
async fn a_delivery_past_a_gap_is_repaired_from_the_log_in_order() {
    let mut h = harness(|_| {});
    let room = Topic::room(1);
    h.send(subscribe(room, None)).await;
    h.written();
    let events = h.fake.append(room, 3);
    // Only 3 reaches the outbox (as after an overflow): 1 and 2 come from the log.
    h.publish(&events[2..]);
    h.pump().await;
    assert_eq!(h.seqs(), vec![1, 2, 3]);
    // Late copies of what was repaired are dropped.
    h.publish(&events);
    h.pump().await;
    assert_eq!(h.seqs(), Vec::<u64>::new());
}

#[tokio::test]
async fn an_overflowing_outbox_is_caught_up_by_policy() {
    let mut h = harness(|s| s.outbox_capacity = 1);
    let room = Topic::room(1);
    h.send(subscribe(room, None)).await;
    h.send(subscribe(ticker(), None)).await;
    h.written();
    let rooms = h.fake.append(room, 4);
    let ticks = h.fake.append(ticker(), 4);
    h.publish(&rooms);
    h.publish(&ticks);
    // The outbox kept one delivery; the rest were dropped and marked lagged.
    h.pump().await;
    h.session.catch_up_lagged(&mut h.out).await;
    let mut by_topic: HashMap<Topic, Vec<u64>> = HashMap::new();
    for f in h.written() {
        if let ServerFrame::Event(e) = f {
            by_topic.entry(e.topic).or_default().push(e.version.seq);
        }
    }
    assert_eq!(by_topic[&room], vec![1, 2, 3, 4], "lossless: every event");
    assert_eq!(
        by_topic.get(&ticker()),
        Some(&vec![4]),
        "latest-wins: the newest only"
    );
}

#[tokio::test]
async fn resubscribing_replaces_the_position() {
    let mut h = harness(|_| {});
    let room = Topic::room(1);
    h.fake.append(room, 4);
    h.send(subscribe(room, None)).await;
    assert!(
        matches!(h.written()[..], [ServerFrame::Subscribed { version, .. }] if version.seq == 4)
    );
    h.send(subscribe(room, Some(Version::new(EPOCH, 2)))).await;
    let frames = h.written();
    assert_eq!(
        frames.len(),
        3,
        "replays 3 and 4 again, then subscribed: {frames:?}"
    );
    assert_eq!(h.session.version_of(room), Some(Version::new(EPOCH, 4)));
    assert_eq!(h.session.subs.len(), 1, "still one subscription");
}

#[tokio::test]
async fn another_epoch_or_too_far_behind_resets_and_ends_the_subscription() {
    let mut h = harness(|s| s.catch_up_limit = 2);
    let room = Topic::room(1);
    h.fake.append(room, 5);
    h.send(subscribe(room, Some(Version::new(EPOCH + 1, 5))))
        .await;
    assert_eq!(
        h.written(),
        vec![ServerFrame::Reset {
            topic: room,
            version: Version::new(EPOCH, 5),
            reason: "cannot continue from your version; reload the snapshot".into()
        }]
    );
    assert_eq!(h.session.version_of(room), None);
    h.send(subscribe(room, Some(Version::new(EPOCH, 1)))).await;
    assert!(
        matches!(h.written()[..], [ServerFrame::Reset { version, .. }] if version == Version::new(EPOCH, 5)),
        "4 events behind with a limit of 2: reset, naming the head"
    );
    // Nothing more is written for a reset topic.
    let next = h.fake.append(room, 1);
    h.publish(&next);
    h.pump().await;
    assert!(h.written().is_empty());
    assert_eq!(h.broker.subscribers(room), 0);
}

#[tokio::test]
async fn a_live_event_in_another_epoch_resets() {
    let mut h = harness(|_| {});
    let room = Topic::room(1);
    h.send(subscribe(room, None)).await;
    h.written();
    h.publish(&[event(room, EPOCH + 1, 1)]);
    h.pump().await;
    assert!(
        matches!(h.written()[..], [ServerFrame::Reset { version, .. }] if version.epoch == EPOCH + 1)
    );
}

#[tokio::test]
async fn a_storage_failure_while_catching_up_is_an_error_for_the_topic() {
    let mut h = harness(|_| {});
    let room = Topic::room(1);
    h.send(subscribe(room, None)).await;
    h.written();
    let events = h.fake.append(room, 2);
    h.fake.broken.store(true, Ordering::SeqCst);
    h.publish(&events[1..]);
    h.pump().await;
    match &h.written()[..] {
        [ServerFrame::Error(e)] => {
            assert_eq!((e.code, e.topic), (ErrorCode::Internal, Some(room)));
            assert!(e.code.is_transient());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.session.version_of(room), None, "the subscription ended");
    h.fake.broken.store(false, Ordering::SeqCst);
    h.send(subscribe(room, Some(Version::new(EPOCH, 0)))).await;
    assert_eq!(h.written().len(), 3, "a retried subscribe resumes");
}

#[tokio::test]
async fn latest_wins_starts_with_the_newest_value_and_skips_ahead() {
    let mut h = harness(|_| {});
    let t = ticker();
    h.fake.append(t, 3);
    h.send(subscribe(t, None)).await;
    let frames = h.written();
    assert!(matches!(&frames[0], ServerFrame::Event(e) if e.version.seq == 3));
    assert!(
        matches!(frames[1], ServerFrame::Subscribed { policy: Policy::LatestWins, version, .. } if version.seq == 3)
    );
    let more = h.fake.append(t, 4);
    // 4 and 5 never reach the outbox; 7 does, then a stale 6.
    h.publish(&more[3..]);
    h.publish(&more[2..3]);
    h.pump().await;
    assert_eq!(h.seqs(), vec![7], "no backlog, nothing older");
    h.send(subscribe(t, Some(Version::new(EPOCH, 2)))).await;
    let frames = h.written();
    assert!(matches!(&frames[0], ServerFrame::Event(e) if e.version.seq == 7));
    assert_eq!(
        frames.len(),
        2,
        "resuming a latest-wins topic sends the newest only"
    );
}

#[tokio::test]
async fn subscriptions_are_limited_and_unsubscribe_always_answers() {
    let mut h = harness(|s| s.max_subscriptions = 1);
    h.send(subscribe(Topic::room(1), None)).await;
    h.send(subscribe(Topic::room(2), None)).await;
    let frames = h.written();
    assert!(
        matches!(&frames[1], ServerFrame::Error(e) if e.code == ErrorCode::Limit && e.topic == Some(Topic::room(2)))
    );
    h.send(ClientFrame::Unsubscribe {
        topic: Topic::room(9),
    })
    .await;
    assert_eq!(
        h.written(),
        vec![ServerFrame::Unsubscribed {
            topic: Topic::room(9)
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn heartbeats_ping_and_close_a_silent_peer() {
    let mut h = harness(|s| {
        s.heartbeat_interval_ms = 100;
        s.heartbeat_timeout_ms = 300;
    });
    let start = Instant::now();
    h.session.heard(start);
    assert_eq!(
        h.session
            .on_tick(start + Duration::from_millis(300), &mut h.out),
        Verdict::Continue
    );
    assert_eq!(h.written(), vec![ServerFrame::Ping {}]);
    assert_eq!(
        h.session
            .on_tick(start + Duration::from_millis(301), &mut h.out),
        Verdict::Close(CloseCode::HeartbeatTimeout, "heartbeat timeout")
    );
    h.session.heard(start + Duration::from_millis(301));
    assert_eq!(
        h.session
            .on_tick(start + Duration::from_millis(400), &mut h.out),
        Verdict::Continue
    );
}

#[tokio::test]
async fn refused_frames_are_counted_up_to_the_limit() {
    let mut h = harness(|s| s.max_bad_frames = 1);
    assert_eq!(
        h.session.handle_text("{", &mut h.out).await,
        Verdict::Continue
    );
    assert_eq!(
        h.session.handle_text(r#"{"type":"fly"}"#, &mut h.out).await,
        Verdict::Close(CloseCode::ProtocolViolation, "too many malformed frames")
    );
    let codes: Vec<ErrorCode> = h
        .written()
        .into_iter()
        .map(|f| match f {
            ServerFrame::Error(e) => e.code,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(codes, vec![ErrorCode::BadFrame, ErrorCode::UnknownType]);
}
