//! `Wire` over a real loopback TCP connection: what the broker writes
//! directly, when it declines, and that frames never interleave or reorder
//! when the socket's buffer fills.

use super::*;
use crate::protocol::{ChatMessage, Event, EventData, Tick};
use crate::server::accounts::live::{Kick, Kicks, LiveConnections, Registration};
use crate::server::accounts::{Principal, User};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn message(room: i64, epoch: u32, seq: u64, body: &str) -> Arc<Delivery> {
    Delivery::new(&Event {
        topic: Topic::room(room),
        version: Version::new(epoch, seq),
        data: EventData::Message(ChatMessage {
            client_id: uuid::Uuid::from_u128(u128::from(seq)),
            author: "a".into(),
            body: body.into(),
            sent_at: 0,
            ..Default::default()
        }),
    })
    .expect("serializable")
}

fn tick(seq: u64) -> Arc<Delivery> {
    Delivery::new(&Event {
        topic: Topic::ticker("ACME").expect("valid symbol"),
        version: Version::new(1, seq),
        data: EventData::Tick(Tick { price: 1.0, ts: 0 }),
    })
    .expect("serializable")
}

/// A connected pair: the server's end as a wire, the client's end raw.
async fn pair(min_deflate: Option<usize>, small: bool) -> (Arc<Wire>, TcpStream) {
    let (wire, _io, client) = pair_io(min_deflate, small).await;
    (wire, client)
}

/// `pair`, with the task's side of the wire.
async fn pair_io(min_deflate: Option<usize>, small: bool) -> (Arc<Wire>, WireIo, TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client = TcpStream::connect(addr).await.expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    if small {
        // Small kernel buffers, so that a client that does not read fills
        // them after a few frames.
        let _ = socket2::SockRef::from(&server).set_send_buffer_size(4096);
        let _ = socket2::SockRef::from(&client).set_recv_buffer_size(4096);
    }
    let (wire, io) = Wire::new(server, min_deflate);
    (wire, io, client)
}

/// Reads `n` server frames (unmasked, final): (compressed, payload).
async fn frames(client: &mut TcpStream, n: usize) -> Vec<(bool, Vec<u8>)> {
    let mut got = Vec::new();
    for _ in 0..n {
        let mut head = [0u8; 2];
        client.read_exact(&mut head).await.expect("frame header");
        assert_eq!(head[0] & 0x8f, 0x81, "a final text frame");
        let len = match head[1] {
            126 => {
                let mut b = [0u8; 2];
                client.read_exact(&mut b).await.expect("length");
                usize::from(u16::from_be_bytes(b))
            }
            127 => {
                let mut b = [0u8; 8];
                client.read_exact(&mut b).await.expect("length");
                usize::try_from(u64::from_be_bytes(b)).expect("length")
            }
            n => usize::from(n),
        };
        let mut payload = vec![0u8; len];
        client.read_exact(&mut payload).await.expect("payload");
        got.push((head[0] & 0x40 != 0, payload));
    }
    got
}

fn versions(of: &[(Topic, Version)]) -> Versions {
    of.iter().copied().collect()
}

#[tokio::test]
async fn a_parked_wire_writes_the_next_event_itself_and_moves_the_version_on() {
    let (wire, mut client) = pair(None, false).await;
    let room = Topic::room(1);
    assert!(wire
        .park(versions(&[(room, Version::new(1, 4))]), || true)
        .is_ok());
    let queued = AtomicUsize::new(0);
    let queue = || {
        queued.fetch_add(1, Ordering::SeqCst);
    };
    let five = message(1, 1, 5, "five");
    let six = message(1, 1, 6, "six");
    assert_eq!(wire.offer(&five, queue), Offer::Written { skipped: 0 });
    assert_eq!(wire.offer(&six, queue), Offer::Written { skipped: 0 });
    assert_eq!(queued.load(Ordering::SeqCst), 0, "nothing queued");
    let got = frames(&mut client, 2).await;
    assert_eq!(got[0], (false, five.frame.bytes().to_vec()));
    assert_eq!(got[1], (false, six.frame.bytes().to_vec()));
    let (back, wrote) = wire.unpark().expect("parked");
    assert!(wrote);
    assert_eq!(back.get(&room), Some(&Version::new(1, 6)));
    assert!(wire.unpark().is_none(), "taken back once");
}

#[tokio::test]
async fn anything_but_the_next_event_goes_to_the_task_and_ends_the_parking() {
    let room = Topic::room(1);
    let at = versions(&[(room, Version::new(1, 4))]);
    let cases = [
        ("a gap", message(1, 1, 6, "x")),
        ("a new epoch", message(1, 2, 1, "x")),
        ("a topic not held", message(2, 1, 5, "x")),
    ];
    for (what, d) in cases {
        let (wire, _client) = pair(None, false).await;
        assert!(wire.park(at.clone(), || true).is_ok());
        let queued = AtomicUsize::new(0);
        let offer = wire.offer(&d, || {
            queued.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(offer, Offer::Queued, "{what}");
        assert_eq!(queued.load(Ordering::SeqCst), 1, "{what}: queued once");
        // Parking ended: the next event, in order, is queued too.
        let next = message(1, 1, 5, "x");
        assert_eq!(wire.offer(&next, || {}), Offer::Queued, "{what}");
        let (back, wrote) = wire.unpark().expect("versions kept for the task");
        assert!(!wrote, "{what}");
        assert_eq!(back, at, "{what}: versions untouched");
    }
}

#[tokio::test]
async fn a_lossless_event_already_written_is_dropped_and_the_parking_goes_on() {
    let room = Topic::room(1);
    let (wire, _client) = pair(None, false).await;
    assert!(wire
        .park(versions(&[(room, Version::new(1, 4))]), || true)
        .is_ok());
    for seq in [3, 4] {
        let offer = wire.offer(&message(1, 1, seq, "x"), || panic!("not queued"));
        assert_eq!(offer, Offer::Stale, "seq {seq}");
    }
    assert_eq!(
        wire.offer(&message(1, 1, 5, "x"), || panic!("not queued")),
        Offer::Written { skipped: 0 },
        "still parked: the next event is written"
    );
    let (back, wrote) = wire.unpark().expect("parked");
    assert!(wrote);
    assert_eq!(back.get(&room), Some(&Version::new(1, 5)));
}

#[tokio::test]
async fn an_unparked_wire_queues_a_stale_latest_wins_value_is_dropped_and_a_newer_written() {
    let (wire, _client) = pair(None, false).await;
    assert_eq!(wire.offer(&message(1, 1, 1, "x"), || {}), Offer::Queued);
    let ticker = Topic::ticker("ACME").expect("valid symbol");
    assert!(wire
        .park(versions(&[(ticker, Version::new(1, 7))]), || true)
        .is_ok());
    let offer = wire.offer(&tick(7), || panic!("not queued"));
    assert_eq!(offer, Offer::Stale);
    assert_eq!(wire.offer(&tick(8), || {}), Offer::Written { skipped: 0 });
    // A newer value past a skipped one is written too (latest wins), the
    // skipped one reported for the coalesced count.
    assert_eq!(wire.offer(&tick(10), || {}), Offer::Written { skipped: 1 });
    let (back, _) = wire.unpark().expect("parked");
    assert_eq!(back.get(&ticker), Some(&Version::new(1, 10)));
}

#[tokio::test]
async fn park_refuses_while_the_outbox_holds_deliveries() {
    let (wire, _client) = pair(None, false).await;
    let at = versions(&[(Topic::room(1), Version::new(1, 1))]);
    let back = wire
        .park(at.clone(), || false)
        .expect_err("outbox not empty");
    assert_eq!(back, at, "versions handed back");
    assert_eq!(wire.offer(&message(1, 1, 2, "x"), || {}), Offer::Queued);
}

#[tokio::test]
async fn compressed_when_agreed_by_the_shared_compressed_form() {
    let (wire, mut client) = pair(Some(16), false).await;
    assert!(wire
        .park(versions(&[(Topic::room(1), Version::new(1, 0))]), || true)
        .is_ok());
    let d = message(1, 1, 1, &"hello ".repeat(40));
    assert_eq!(wire.offer(&d, || {}), Offer::Written { skipped: 0 });
    let deflated = d.frame.deflated().expect("compresses").to_vec();
    assert_eq!(frames(&mut client, 1).await, vec![(true, deflated)]);
}

/// A client that stops reading: the wire's write is cut short, the rest
/// waits for the task (rung), later events are queued, and once the task
/// writes, the client reads every frame whole and in order, the task's own
/// frame after the wire's.
#[tokio::test]
async fn a_full_socket_hands_over_to_the_task_without_splitting_or_reordering() {
    let (wire, mut io, mut client) = pair_io(None, true).await;
    let room = Topic::room(1);
    assert!(wire
        .park(versions(&[(room, Version::new(1, 0))]), || true)
        .is_ok());
    let body = "y".repeat(500);
    let mut written = Vec::new();
    let mut queued = Vec::new();
    for seq in 1..=2000 {
        let d = message(1, 1, seq, &body);
        let mut q = false;
        match wire.offer(&d, || q = true) {
            Offer::Written { .. } => written.push(d),
            Offer::Queued => {
                assert!(q);
                queued.push(d);
            }
            Offer::Stale => panic!("not stale"),
        }
    }
    assert!(!queued.is_empty(), "the socket filled up");
    assert!(wire.has_unsent(), "the rest of a frame waits");
    tokio::time::timeout(Duration::from_secs(5), wire.rung())
        .await
        .expect("the task is rung");
    let (back, _) = wire.unpark().expect("versions");
    let last = written.last().expect("some written").version;
    assert_eq!(back.get(&room), Some(&last));
    // The task now writes, behind what is waiting, while the client reads.
    let n = written.len() + 1;
    let reader = tokio::spawn(async move { frames(&mut client, n).await });
    let own = b"{\"type\":\"pong\"}".to_vec();
    let mut frame = BytesMut::new();
    super::super::socket::put_frame(&mut frame, super::super::socket::TEXT, false, &own);
    io.write_all(&frame).await.expect("write");
    io.flush().await.expect("flush");
    assert!(!wire.has_unsent());
    let got = tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("read in time")
        .expect("reader");
    for (i, d) in written.iter().enumerate() {
        assert_eq!(
            got[i].1,
            d.frame.bytes().to_vec(),
            "frame {i} whole, in order"
        );
    }
    assert_eq!(got[n - 1].1, own, "the task's frame after the wire's");
}

/// Registers connection 1, signed in as account 7 over `wire`.
fn signed_in(live: &LiveConnections, wire: &Arc<Wire>) -> (Registration, Kicks) {
    let who = Principal::Session {
        user: User {
            id: 7,
            name: "u7".into(),
        },
        session_id: 70,
        expires_at: i64::MAX,
    };
    live.register_wired(1, &who, Some(wire.clone()))
}

/// A revocation halts the wire before the task hears of it: from then on
/// the broker queues, and the task reads the kick before any delivery.
#[tokio::test]
async fn a_kick_halts_the_wire_before_the_task_hears_of_it() {
    let (wire, _client) = pair(None, false).await;
    let live = LiveConnections::default();
    let (_registration, mut kicks) = signed_in(&live, &wire);
    let room = Topic::room(1);
    assert!(wire
        .park(versions(&[(room, Version::new(1, 0))]), || true)
        .is_ok());
    assert_eq!(
        wire.offer(&message(1, 1, 1, "before"), || {}),
        Offer::Written { skipped: 0 }
    );
    assert_eq!(live.lost_access(7, room), 1);
    let queued = AtomicUsize::new(0);
    let offer = wire.offer(&message(1, 1, 2, "after"), || {
        queued.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(offer, Offer::Queued, "nothing written after the kick");
    assert_eq!(queued.load(Ordering::SeqCst), 1);
    assert_eq!(kicks.try_recv(), Some(Kick::Topic(room)));
}

/// A stream's wire: the next event goes to the body as one SSE message whose
/// `id:` is the resume list with the event counted (topics sorted).
#[tokio::test]
async fn a_parked_stream_sends_the_next_event_as_one_message_with_its_resume_id() {
    let (tx, mut body) = mpsc::channel(4);
    let wire = Wire::stream(tx);
    let room = Topic::room(1);
    let ticker = Topic::ticker("ACME").expect("valid symbol");
    let at = versions(&[(ticker, Version::new(1, 2)), (room, Version::new(1, 4))]);
    assert!(wire.park(at, || true).is_ok());
    let five = message(1, 1, 5, "five");
    assert_eq!(wire.offer(&five, || {}), Offer::Written { skipped: 0 });
    let mut want = b"id: room:1@1.5,ticker:ACME@1.2\ndata: ".to_vec();
    want.extend_from_slice(five.frame.bytes());
    want.extend_from_slice(b"\n\n");
    assert_eq!(body.try_recv().expect("sent").to_vec(), want);
    assert_eq!(wire.offer(&tick(3), || {}), Offer::Written { skipped: 0 });
    let sent = body.try_recv().expect("sent");
    assert!(sent.starts_with(b"id: room:1@1.5,ticker:ACME@1.3\ndata: "));
    let (back, wrote) = wire.unpark().expect("parked");
    assert!(wrote);
    assert_eq!(back.get(&room), Some(&Version::new(1, 5)));
    assert!(!wire.has_unsent(), "a stream never keeps bytes back");
}

/// A body that does not keep up (its channel full) or is gone: the event
/// goes to the task, the version stays where the client is, and the parking
/// ends, so nothing later overtakes it.
#[tokio::test]
async fn a_full_or_closed_stream_hands_the_event_to_the_task_with_the_version_unmoved() {
    let room = Topic::room(1);
    let (tx, mut body) = mpsc::channel(1);
    let wire = Wire::stream(tx);
    assert!(wire
        .park(versions(&[(room, Version::new(1, 4))]), || true)
        .is_ok());
    assert_eq!(
        wire.offer(&message(1, 1, 5, "x"), || {}),
        Offer::Written { skipped: 0 }
    );
    let queued = AtomicUsize::new(0);
    let queue = || {
        queued.fetch_add(1, Ordering::SeqCst);
    };
    assert_eq!(wire.offer(&message(1, 1, 6, "x"), queue), Offer::Queued);
    assert_eq!(queued.load(Ordering::SeqCst), 1);
    assert_eq!(wire.offer(&message(1, 1, 7, "x"), || {}), Offer::Queued);
    let (back, wrote) = wire.unpark().expect("versions");
    assert!(wrote);
    assert_eq!(back.get(&room), Some(&Version::new(1, 5)), "as far as sent");
    assert!(body.try_recv().is_ok());
    assert!(body.try_recv().is_err(), "only the one that fitted");

    drop(body);
    assert!(wire.park(back, || true).is_ok());
    assert_eq!(wire.offer(&message(1, 1, 6, "x"), || {}), Offer::Queued);
    let (back, wrote) = wire.unpark().expect("versions");
    assert!(!wrote);
    assert_eq!(back.get(&room), Some(&Version::new(1, 5)));
}

/// A revocation that comes while the task is busy (not parked) is queued
/// under the wire's lock: the task cannot park past it, so the broker
/// writes nothing until the task has heard it.
#[tokio::test]
async fn a_task_cannot_park_past_a_kick_it_has_not_heard() {
    let (wire, _client) = pair(None, false).await;
    let live = LiveConnections::default();
    let (_registration, mut kicks) = signed_in(&live, &wire);
    let room = Topic::room(1);
    assert_eq!(live.lost_access(7, room), 1);
    let at = versions(&[(room, Version::new(1, 0))]);
    let back = wire
        .park(at, || kicks.is_empty())
        .expect_err("a kick is waiting");
    assert_eq!(
        wire.offer(&message(1, 1, 1, "x"), || {}),
        Offer::Queued,
        "nothing written"
    );
    assert_eq!(kicks.try_recv(), Some(Kick::Topic(room)));
    assert!(kicks.pending().is_empty());
    assert!(wire.park(back, || kicks.is_empty()).is_ok(), "heard: parks");
}
