//! Ephemeral `ticker:` topics over a real WebSocket: the `publish` scope,
//! in-order fan-out, the latest-wins policy on resume, the HTTP backfill
//! from the in-memory window, and a new epoch after a restart.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{TestServer, Ws};
use std::time::Duration;
use tandem::protocol::{
    ClientFrame, ErrorCode, EventData, Policy, ServerFrame, Tick, Topic, Version,
};

/// A connection with a token of the publisher account (`publish` scope).
async fn publisher(server: &TestServer) -> Ws {
    let token = server.token(common::PUBLISHER, "publish").await;
    server.ws_token(&token).await
}

fn tick(price: f64) -> Tick {
    Tick { price, ts: 1 }
}

async fn publish(feed: &mut Ws, topic: Topic, n: usize) {
    for i in 1..=n {
        feed.send(&ClientFrame::Publish {
            topic,
            tick: tick(i as f64),
        })
        .await;
    }
    // Replies come in request order: a pong means every publish was handled.
    feed.send(&ClientFrame::Ping {}).await;
    assert_eq!(feed.recv().await, ServerFrame::Pong {});
}

/// Subscribes; returns the events sent before `subscribed`, and its version.
async fn subscribe(ws: &mut Ws, topic: Topic, since: Option<Version>) -> (Vec<u64>, Version) {
    ws.send(&ClientFrame::Subscribe { topic, since }).await;
    let mut events = Vec::new();
    loop {
        match ws.recv().await {
            ServerFrame::Event(e) => events.push(e.version.seq),
            ServerFrame::Subscribed {
                version, policy, ..
            } => {
                assert_eq!(policy, Policy::LatestWins, "tickers are latest-wins");
                return (events, version);
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_need_the_publish_scope_and_fan_out_in_order() {
    let server = TestServer::start().await;
    let topic = Topic::ticker("ACME").unwrap();
    let mut sub = server.ws().await;
    let (none, v) = subscribe(&mut sub, topic, None).await;
    assert_eq!((none.len(), v.seq), (0, 0), "a ticker starts empty");

    // A token without the `publish` scope, and a signed-in browser session.
    let mut stranger = server
        .ws_token(&server.token("ann", "read,write").await)
        .await;
    stranger
        .send(&ClientFrame::Publish {
            topic,
            tick: tick(1.0),
        })
        .await;
    assert!(
        matches!(stranger.recv().await, ServerFrame::Error(e) if e.code == ErrorCode::Forbidden)
    );
    let mut browser = server.ws_as("ann").await;
    browser
        .send(&ClientFrame::Publish {
            topic,
            tick: tick(1.0),
        })
        .await;
    assert!(
        matches!(browser.recv().await, ServerFrame::Error(e) if e.code == ErrorCode::Forbidden)
    );
    let mut anon = server.ws().await;
    anon.send(&ClientFrame::Publish {
        topic,
        tick: tick(1.0),
    })
    .await;
    assert!(
        matches!(anon.recv().await, ServerFrame::Error(e) if e.code == ErrorCode::Unauthenticated)
    );
    let mut feed = publisher(&server).await;
    feed.send(&ClientFrame::Publish {
        topic: Topic::room(1),
        tick: tick(1.0),
    })
    .await;
    assert!(matches!(feed.recv().await, ServerFrame::Error(e) if e.code == ErrorCode::Validation));
    sub.expect_silence(Duration::from_millis(100)).await;

    publish(&mut feed, topic, 5).await;
    // Latest-wins: ascending, ending with the newest; ticks that were
    // waiting for the subscriber together collapse to the newest of them.
    let mut last = 0;
    while last < 5 {
        match sub.recv().await {
            ServerFrame::Event(e) => {
                assert_eq!(e.version.epoch, v.epoch);
                assert!(
                    e.version.seq > last,
                    "ascending: {} after {last}",
                    e.version.seq
                );
                let seq = e.version.seq;
                assert!(matches!(e.data, EventData::Tick(t) if t.price == seq as f64));
                last = seq;
            }
            other => panic!("{other:?}"),
        }
    }
    sub.expect_silence(Duration::from_millis(100)).await;
    // The backfill server function serves tickers from the same window.
    let epoch = v.epoch.to_string();
    let (status, b) = common::Http::new(&server)
        .get(
            "events_since",
            &[("topic", "ticker:ACME"), ("epoch", &epoch), ("seq", "2")],
        )
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["events"].as_array().map(Vec::len), Some(3));
    assert_eq!(b["events"][0]["data"]["kind"], "tick");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_or_resuming_ticker_subscriber_gets_the_newest_value_only() {
    let server = TestServer::with(|s| {
        s.ephemeral_window = 2;
    })
    .await;
    let topic = Topic::ticker("W").unwrap();
    let mut feed = publisher(&server).await;
    publish(&mut feed, topic, 4).await;
    let mut fresh = server.ws().await;
    let (events, v) = subscribe(&mut fresh, topic, None).await;
    assert_eq!(
        (events, v.seq),
        (vec![4], 4),
        "the current value, then live"
    );
    // Far behind (seq 2 has left the window): no backlog, no reset, the newest.
    let mut behind = server.ws().await;
    let (events, at) = subscribe(&mut behind, topic, Some(Version::new(v.epoch, 1))).await;
    assert_eq!((events, at.seq), (vec![4], 4));
    // Up to date: nothing to send.
    let mut current = server.ws().await;
    let (events, _) = subscribe(&mut current, topic, Some(v)).await;
    assert!(events.is_empty());
    // Ahead of the head: the version is not this server's.
    current
        .send(&ClientFrame::Subscribe {
            topic,
            since: Some(Version::new(v.epoch, 99)),
        })
        .await;
    assert!(matches!(current.recv().await, ServerFrame::Reset { version, .. } if version == v));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ticker_resume_across_a_restart_resets() {
    let mut server = TestServer::start().await;
    let topic = Topic::ticker("W").unwrap();
    let mut feed = publisher(&server).await;
    publish(&mut feed, topic, 3).await;
    let mut sub = server.ws().await;
    let (_, v) = subscribe(&mut sub, topic, None).await;
    server.stop().await;
    let again = TestServer::launch(common::settings(&server.db)).await;
    let mut back = again.ws().await;
    back.send(&ClientFrame::Subscribe {
        topic,
        since: Some(v),
    })
    .await;
    match back.recv().await {
        ServerFrame::Reset { version, .. } => {
            assert_ne!(version.epoch, v.epoch, "a restart is a new epoch")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_publish_scope_cannot_create_unlimited_ticker_topics() {
    let server = TestServer::with(|s| {
        s.max_ticker_topics = 2;
    })
    .await;
    let mut feed = publisher(&server).await;
    for sym in ["A", "B"] {
        publish(&mut feed, Topic::ticker(sym).unwrap(), 1).await;
    }
    feed.send(&ClientFrame::Publish {
        topic: Topic::ticker("C").unwrap(),
        tick: tick(1.0),
    })
    .await;
    assert!(matches!(feed.recv().await, ServerFrame::Error(e) if e.code == ErrorCode::Limit));
    publish(&mut feed, Topic::ticker("A").unwrap(), 1).await;
}

/// A subscriber that does not read while ticks pour in is sent fewer,
/// newer ticks, not a backlog: once its socket holds more than a little
/// unsent data (`TCP_NOTSENT_LOWAT`), the shared writer stops writing to it
/// and its connection coalesces to the newest tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_does_not_read_gets_newer_ticks_not_a_backlog() {
    const TICKS: usize = 20_000;
    let server = TestServer::start().await;
    let topic = Topic::ticker("SLOW").unwrap();
    let mut feed = publisher(&server).await;
    let mut slow = server.ws().await;
    subscribe(&mut slow, topic, None).await;
    // The slow one reads nothing while every tick is published.
    publish(&mut feed, topic, TICKS).await;
    let (mut got, mut bytes) = (0usize, 0usize);
    loop {
        match slow.recv().await {
            ServerFrame::Event(e) => {
                got += 1;
                bytes += serde_json::to_string(&ServerFrame::Event(e.clone()))
                    .unwrap()
                    .len();
                if e.version.seq == TICKS as u64 {
                    break;
                }
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        got < TICKS / 4,
        "{got} ticks of {TICKS} ({bytes} bytes): a backlog was sent"
    );
}
