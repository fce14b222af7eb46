//! The live layer over a real WebSocket: subscriptions, broadcast, sends over
//! both paths, resume without loss or duplicates, limits and bad frames,
//! heartbeats, Origin check and graceful shutdown.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{cid, TestServer, Ws};
use std::time::Duration;
use tandem::protocol::{ClientFrame, ErrorCode, Event, EventData, ServerFrame, Topic, Version};

fn room(id: i64) -> Topic {
    Topic::room(id)
}

async fn subscribe(ws: &mut Ws, topic: Topic, since: Option<Version>) -> Version {
    ws.send(&ClientFrame::Subscribe { topic, since }).await;
    loop {
        match ws.recv().await {
            ServerFrame::Subscribed {
                topic: t, version, ..
            } if t == topic => return version,
            ServerFrame::Event(_) => continue,
            other => panic!("expected subscribed, got {other:?}"),
        }
    }
}

async fn event(ws: &mut Ws) -> Event {
    match ws.recv().await {
        ServerFrame::Event(e) => e,
        other => panic!("expected event, got {other:?}"),
    }
}

fn body(e: &Event) -> &str {
    match &e.data {
        EventData::Message(m) => &m.body,
        other => panic!("not a message: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_over_http_reaches_every_subscriber_once() {
    let server = TestServer::start().await;
    let (mut a, mut b) = (server.ws().await, server.ws().await);
    let va = subscribe(&mut a, room(1), None).await;
    let vb = subscribe(&mut b, room(1), None).await;
    assert_eq!(va, vb);
    assert_eq!(va.seq, 3, "seeded room");
    let ann = server.user("ann").await;
    let (status, sent) = ann.send(1, &cid(), "hi all").await;
    assert_eq!(status, 200);
    for ws in [&mut a, &mut b] {
        let e = event(ws).await;
        assert_eq!((e.version, body(&e)), (Version::new(va.epoch, 4), "hi all"));
        assert_eq!(serde_json::to_value(&e).unwrap(), sent);
        ws.expect_silence(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_over_the_socket_is_acked_and_broadcast() {
    let server = TestServer::start().await;
    let mut sender = server.ws_as("bob").await;
    let mut watcher = server.ws().await;
    let v = subscribe(&mut watcher, room(2), None).await;
    let id = tandem::sync::new_client_id();
    let send = ClientFrame::Send {
        topic: room(2),
        client_id: id,
        body: "over ws".into(),
    };
    sender.send(&send).await;
    let acked = match sender.recv().await {
        ServerFrame::Ack { client_id, event } => {
            assert_eq!(client_id, id);
            event
        }
        other => panic!("expected ack, got {other:?}"),
    };
    assert_eq!(acked.version, Version::new(v.epoch, v.seq + 1));
    assert_eq!(event(&mut watcher).await, acked);
    // A retry over the socket answers with the original and broadcasts nothing.
    sender.send(&send).await;
    match sender.recv().await {
        ServerFrame::Ack { event, .. } => assert_eq!(event, acked),
        other => panic!("expected ack, got {other:?}"),
    }
    watcher.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_sends_without_an_account_or_with_bad_content_get_error_frames() {
    let server = TestServer::start().await;
    let mut anon = server.ws().await;
    let id = tandem::sync::new_client_id();
    anon.send(&ClientFrame::Send {
        topic: room(1),
        client_id: id,
        body: "x".into(),
    })
    .await;
    match anon.recv().await {
        ServerFrame::Error(e) => {
            assert_eq!(
                (e.code, e.client_id),
                (ErrorCode::Unauthenticated, Some(id))
            )
        }
        other => panic!("{other:?}"),
    }
    let mut bob = server.ws_as("bob").await;
    bob.send(&ClientFrame::Send {
        topic: room(1),
        client_id: id,
        body: " ".into(),
    })
    .await;
    assert!(matches!(bob.recv().await, ServerFrame::Error(e) if e.code == ErrorCode::Validation));
    bob.send(&ClientFrame::Send {
        topic: room(77),
        client_id: id,
        body: "x".into(),
    })
    .await;
    assert!(matches!(bob.recv().await, ServerFrame::Error(e) if e.code == ErrorCode::NotFound));
    let http = common::Http::new(&server);
    assert_eq!(
        http.get("room_snapshot", &[("room_id", "1")]).await.1["log"]["version"]["seq"],
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_a_dropped_socket_loses_and_doubles_nothing() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let mut ws = server.ws().await;
    let v0 = subscribe(&mut ws, room(1), None).await;
    ann.send(1, &cid(), "before drop").await;
    let seen = event(&mut ws).await;
    drop(ws); // the connection dies

    let mut sent = Vec::new();
    for i in 0..5 {
        let (_, e) = ann.send(1, &cid(), &format!("while away {i}")).await;
        sent.push(e["version"]["seq"].as_u64().unwrap());
    }
    let mut ws = server.ws().await;
    ws.send(&ClientFrame::Subscribe {
        topic: room(1),
        since: Some(seen.version),
    })
    .await;
    let mut replayed = Vec::new();
    let resumed_at = loop {
        match ws.recv().await {
            ServerFrame::Event(e) => replayed.push(e.version.seq),
            ServerFrame::Subscribed { version, .. } => break version,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(replayed, sent, "exactly the missed events, in order");
    assert_eq!(resumed_at, Version::new(v0.epoch, *sent.last().unwrap()));
    ann.send(1, &cid(), "after resume").await;
    assert_eq!(event(&mut ws).await.version.seq, resumed_at.seq + 1);
    ws.expect_silence(Duration::from_millis(200)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_or_foreign_version_gets_a_reset() {
    let server = TestServer::with(|s| s.catch_up_limit = 3).await;
    let ann = server.user("ann").await;
    let mut ws = server.ws().await;
    let v = subscribe(&mut ws, room(1), None).await;
    ws.send(&ClientFrame::Subscribe {
        topic: room(2),
        since: Some(Version::new(v.epoch ^ 1, 1)),
    })
    .await;
    assert!(matches!(ws.recv().await, ServerFrame::Reset { topic, .. } if topic == room(2)));
    for i in 0..5 {
        ann.send(1, &cid(), &format!("{i}")).await;
    }
    let mut late = server.ws().await;
    late.send(&ClientFrame::Subscribe {
        topic: room(1),
        since: Some(v),
    })
    .await;
    match late.recv().await {
        ServerFrame::Reset { version, .. } => {
            assert_eq!(version.seq, v.seq + 5, "too far behind: reload")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_bursts_arrive_complete_and_in_order_with_a_tiny_outbox() {
    let server = TestServer::with(|s| {
        s.outbox_capacity = 1;
        // ann's 30 sends at once, over HTTP.
        s.writes_burst = 100;
    })
    .await;
    let ann = server.user("ann").await;
    let mut ws = server.ws().await;
    let v = subscribe(&mut ws, room(1), None).await;
    // Don't read while many events are published: the outbox overflows.
    let sends: Vec<_> = (0..30)
        .map(|i| {
            let ann = &ann;
            async move { ann.send(1, &cid(), &format!("burst {i}")).await }
        })
        .collect();
    futures::future::join_all(sends).await;
    let mut got = Vec::new();
    while got.len() < 30 {
        got.push(event(&mut ws).await.version.seq);
    }
    assert_eq!(got, (v.seq + 1..=v.seq + 30).collect::<Vec<_>>());
    ws.expect_silence(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_unknown_and_oversized_frames_get_error_frames_and_the_socket_stays() {
    let server = TestServer::with(|s| {
        s.max_frame_bytes = 1024;
        s.max_ws_message_bytes = 4096;
    })
    .await;
    let mut ws = server.ws().await;
    let cases = [
        ("not json".to_string(), ErrorCode::BadFrame),
        (r#"{"type":"fly"}"#.to_string(), ErrorCode::UnknownType),
        (r#"{"type":"subscribe"}"#.to_string(), ErrorCode::BadFrame),
        (
            r#"{"type":"subscribe","topic":"room:abc"}"#.to_string(),
            ErrorCode::InvalidTopic,
        ),
        (
            format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(2000)),
            ErrorCode::TooLarge,
        ),
    ];
    for (text, code) in cases {
        ws.send_text(&text).await;
        match ws.recv().await {
            ServerFrame::Error(e) => assert_eq!(e.code, code, "{text:.40}: {}", e.message),
            other => panic!("{other:?}"),
        }
    }
    ws.send(&ClientFrame::Subscribe {
        topic: room(999),
        since: None,
    })
    .await;
    assert!(
        matches!(ws.recv().await, ServerFrame::Error(e) if e.code == ErrorCode::NotFound && e.topic == Some(room(999)))
    );
    // Still fully working, and other connections were never affected.
    ws.send(&ClientFrame::Ping {}).await;
    assert_eq!(ws.recv().await, ServerFrame::Pong {});
    assert_eq!(subscribe(&mut ws, room(1), None).await.seq, 3);

    // Above the transport limit: closed with 1009; the server lives on.
    ws.send_text(&"y".repeat(5000)).await;
    assert_eq!(ws.closed_with().await, 1009);
    let mut other = server.ws().await;
    assert_eq!(subscribe(&mut other, room(1), None).await.seq, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_bad_frames_close_with_4400() {
    let server = TestServer::with(|s| s.max_bad_frames = 3).await;
    let mut ws = server.ws().await;
    for _ in 0..4 {
        ws.send_text("{").await;
    }
    assert_eq!(ws.closed_with().await, 4400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_are_limited_per_connection() {
    let server = TestServer::with(|s| s.max_subscriptions = 1).await;
    let mut ws = server.ws().await;
    subscribe(&mut ws, room(1), None).await;
    ws.send(&ClientFrame::Subscribe {
        topic: room(2),
        since: None,
    })
    .await;
    assert!(matches!(ws.recv().await, ServerFrame::Error(e) if e.code == ErrorCode::Limit));
    ws.send(&ClientFrame::Unsubscribe {
        topic: room(1),
        away: false,
    })
    .await;
    assert!(matches!(ws.recv().await, ServerFrame::Unsubscribed { .. }));
    subscribe(&mut ws, room(2), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_origin_is_refused_with_403() {
    let server = TestServer::start().await;
    let err = Ws::connect(&server, Some("http://evil.example"), None)
        .await
        .err()
        .expect("refused");
    match err {
        tokio_tungstenite::tungstenite::Error::Http(resp) => assert_eq!(resp.status(), 403),
        other => panic!("expected an HTTP 403, got {other}"),
    }
    assert!(Ws::connect(&server, Some(&server.origin()), None)
        .await
        .is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_pings_and_closes_a_silent_peer() {
    let server = TestServer::with(|s| {
        s.heartbeat_interval_ms = 100;
        s.heartbeat_timeout_ms = 400;
    })
    .await;
    // Taken before connecting, so it is no later than the server's own
    // "last heard" (the session's start): the close cannot precede it by
    // the timeout.
    let started = std::time::Instant::now();
    let mut ws = server.ws_mute().await;
    // A crashed tab: not even its WebSocket layer answers the server's
    // pings. The server hears nothing and gives up.
    assert_eq!(common::close_code(&mut ws).await, 4000);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "not before the timeout"
    );

    // A client that reads but sends nothing itself (a background tab whose
    // scripts are throttled): its WebSocket layer answers the ping frames,
    // which is enough.
    let mut reader = server.ws().await;
    reader.expect_silence(Duration::from_millis(1_000)).await;
    reader.send(&ClientFrame::Ping {}).await;
    assert_eq!(reader.recv().await, ServerFrame::Pong {}, "still open");

    // A peer that answers pings stays.
    let mut alive = server.ws().await;
    for _ in 0..8 {
        alive.send(&ClientFrame::Pong {}).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    alive.send(&ClientFrame::Ping {}).await;
    assert_eq!(alive.recv().await, ServerFrame::Pong {});
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_watches_nothing_is_closed_with_4002() {
    let server = TestServer::with(|s| {
        s.heartbeat_interval_ms = 100;
        s.heartbeat_timeout_ms = 10_000;
        s.idle_close_ms = 600;
    })
    .await;
    let started = std::time::Instant::now();
    let mut idle = server.ws().await;
    assert_eq!(idle.closed_with().await, 4002, "never subscribed");
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "not before idle-close-ms"
    );

    // A subscription keeps it open past the idle time; ending the last one
    // starts the count again.
    let mut watching = server.ws().await;
    subscribe(&mut watching, room(1), None).await;
    watching.expect_silence(Duration::from_millis(1_500)).await;
    watching
        .send(&ClientFrame::Unsubscribe {
            topic: room(1),
            away: false,
        })
        .await;
    assert_eq!(
        watching.recv().await,
        ServerFrame::Unsubscribed { topic: room(1) }
    );
    let unsubscribed = std::time::Instant::now();
    assert_eq!(watching.closed_with().await, 4002);
    assert!(unsubscribed.elapsed() >= Duration::from_millis(600));

    let metrics = server.metrics().await;
    let closes = metrics
        .lines()
        .find(|l| l.starts_with("tandem_ws_closes_total{reason=\"no subscriptions\"}"))
        .unwrap_or_else(|| panic!("no idle closes counted:\n{metrics}"));
    let n: f64 = closes.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 2.0, "{closes}");

    // 0 turns it off.
    let never = TestServer::with(|s| {
        s.heartbeat_interval_ms = 100;
        s.heartbeat_timeout_ms = 10_000;
        s.idle_close_ms = 0;
    })
    .await;
    let mut ws = never.ws().await;
    ws.expect_silence(Duration::from_millis(800)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_clients_to_reconnect_and_keeps_acknowledged_writes() {
    let mut server = TestServer::start().await;
    let ann = server.user("ann").await;
    let mut ws = server.ws().await;
    subscribe(&mut ws, room(1), None).await;
    let (_, acked) = ann.send(1, &cid(), "acknowledged before shutdown").await;
    assert_eq!(
        event(&mut ws).await.version.seq,
        acked["version"]["seq"].as_u64().unwrap()
    );
    server.shutdown.trigger();
    assert!(matches!(ws.recv().await, ServerFrame::Reconnect { .. }));
    assert_eq!(ws.closed_with().await, 1012);
    server.stop().await;

    // Same database, new process life: the acknowledged write is there.
    let settings = common::settings(&server.db);
    let again = TestServer::launch(settings).await;
    let (_, snap) = common::Http::new(&again)
        .get("room_snapshot", &[("room_id", "1")])
        .await;
    let last = snap["log"]["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last, acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_flush_window_a_burst_reaches_every_subscriber_whole_and_in_order() {
    let server = TestServer::with(|s| {
        s.flush_window_ms = 30;
        // One account's burst of 40: past both write bursts' defaults (30).
        s.messages_burst = 100;
        s.writes_burst = 100;
    })
    .await;
    let (mut a, mut b) = (server.ws().await, server.ws().await);
    let start = subscribe(&mut a, room(1), None).await;
    subscribe(&mut b, room(1), None).await;
    let mut writer = server.ws_as("ann").await;
    for i in 0..40 {
        writer
            .send(&ClientFrame::Send {
                topic: room(1),
                client_id: cid().parse().unwrap(),
                body: format!("burst {i}"),
            })
            .await;
    }
    for ws in [&mut a, &mut b] {
        for i in 0..40u64 {
            let e = event(ws).await;
            assert_eq!(
                (e.version.seq, body(&e)),
                (start.seq + 1 + i, format!("burst {i}").as_str()),
                "every message once, in order"
            );
        }
        ws.expect_silence(Duration::from_millis(200)).await;
    }
}
