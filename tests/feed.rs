//! Publishing follows from committing: events reach subscribers through the
//! store's commit feed, so a cancelled request cannot leave a committed
//! event unbroadcast, and concurrent writers never reach subscribers out of
//! order (no gap to repair).
//!
//! Its own test binary: it reads the process-wide `tandem_gap_repairs_total`.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{cid, TestServer, Ws, WAIT};
use std::time::Duration;
use tandem::protocol::{ClientFrame, ServerFrame, Topic, Version};
use tandem::server::store::{CommitGate, Hooks};

async fn subscribe(ws: &mut Ws, topic: Topic) -> Version {
    ws.send(&ClientFrame::Subscribe { topic, since: None })
        .await;
    match ws.recv().await {
        ServerFrame::Subscribed { version, .. } => version,
        other => panic!("{other:?}"),
    }
}

async fn next_seq(ws: &mut Ws) -> u64 {
    match ws.recv().await {
        ServerFrame::Event(e) => e.version.seq,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_send_dropped_during_its_commit_still_reaches_subscribers() {
    let gate = CommitGate::opened();
    let server = TestServer::with_hooks(
        |_| {},
        Hooks {
            commit_gate: Some(gate.clone()),
        },
    )
    .await;
    let mut watcher = server.ws().await;
    let v = subscribe(&mut watcher, Topic::room(1)).await;
    let ann = server.user("ann").await;
    let before = gate.arrivals();
    gate.close();
    let id = cid();
    let request = tokio::spawn({
        let (ann, id) = (ann.client.clone(), id.clone());
        let url = server.url("/api/send_message");
        async move {
            ann.post(url)
                .form(&[("room_id", "1"), ("client_id", &id), ("body", "cut off")])
                .send()
                .await
        }
    });
    // The write is parked just before its COMMIT; the client goes away.
    tokio::time::timeout(WAIT, gate.arrived(before + 1))
        .await
        .expect("the send reached the commit");
    request.abort();
    tokio::time::timeout(WAIT * 2, gate.abandoned(1))
        .await
        .expect("the server dropped the request's handler while its write waited");
    gate.open();
    assert_eq!(
        next_seq(&mut watcher).await,
        v.seq + 1,
        "published after all"
    );
    // The retry finds the event and broadcasts nothing new.
    let (status, again) = ann.send(1, &id, "cut off").await;
    assert_eq!(
        (status, again["version"]["seq"].as_u64()),
        (200, Some(v.seq + 1))
    );
    watcher.expect_silence(Duration::from_millis(300)).await;
}

fn gap_repairs(metrics: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with("tandem_gap_repairs_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("tandem_gap_repairs_total is exported")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_reach_every_subscriber_in_order_with_no_repairs() {
    const WRITERS: usize = 8;
    const EACH: usize = 25;
    const SUBSCRIBERS: usize = 12;
    let server = TestServer::start().await;
    let topic = Topic::room(2);
    let mut subs = Vec::new();
    let mut start = Version::default();
    for _ in 0..SUBSCRIBERS {
        let mut ws = server.ws().await;
        start = subscribe(&mut ws, topic).await;
        subs.push(ws);
    }
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let server = &server;
            async move {
                if w % 2 == 0 {
                    let http = server.user(&format!("w{w}")).await;
                    for i in 0..EACH {
                        let (status, _) = http.send(2, &cid(), &format!("{w}/{i}")).await;
                        assert_eq!(status, 200);
                    }
                } else {
                    let mut ws = server.ws_as(&format!("w{w}")).await;
                    for i in 0..EACH {
                        let id = tandem::sync::new_client_id();
                        ws.send(&ClientFrame::Send {
                            topic,
                            client_id: id,
                            body: format!("{w}/{i}"),
                        })
                        .await;
                        loop {
                            match ws.recv().await {
                                ServerFrame::Ack { client_id, .. } if client_id == id => break,
                                ServerFrame::Ack { .. } => continue,
                                other => panic!("{other:?}"),
                            }
                        }
                    }
                }
            }
        })
        .collect();
    futures::future::join_all(writers).await;
    let total = (WRITERS * EACH) as u64;
    let expected: Vec<u64> = (start.seq + 1..=start.seq + total).collect();
    for ws in &mut subs {
        let mut got = Vec::with_capacity(expected.len());
        while got.len() < expected.len() {
            got.push(next_seq(ws).await);
        }
        assert_eq!(got, expected, "every event once, in seq order");
        ws.expect_silence(Duration::from_millis(100)).await;
    }
    let metrics = server.metrics().await;
    assert_eq!(
        gap_repairs(&metrics),
        0.0,
        "no subscriber read the store to repair a gap"
    );
}
