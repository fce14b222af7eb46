//! The serving path's limits over real TCP: header-read timeouts close slow,
//! silent and idle connections; half-open connections do not stop others
//! from being served; a connection cap makes new connections wait instead
//! of exhausting descriptors; bodies are size-limited (413); malformed
//! arguments get a generic 400; a request that takes too long gets 408
//! without cutting its committed write short.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{cid, TestServer, Ws, WAIT};
use std::time::Duration;
use tandem::protocol::{ClientFrame, ServerFrame, Topic};
use tandem::server::store::{CommitGate, Hooks};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Waits until the server closes `tcp` (EOF or reset); panics after `limit`.
async fn closed_by_server(tcp: &mut TcpStream, limit: Duration) {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue, // e.g. a 408 answer before the close
            }
        }
    })
    .await
    .expect("the server closed the connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_silent_and_half_open_connections_are_closed_and_do_not_block_others() {
    let server = TestServer::with(|s| s.http_header_timeout_ms = 500).await;
    let mut half_open = Vec::new();
    for _ in 0..300 {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x").await.unwrap();
        half_open.push(tcp);
    }
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    // Others are served meanwhile.
    let ok = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(ok.status(), 200);
    closed_by_server(&mut silent, WAIT).await;
    for tcp in &mut half_open {
        closed_by_server(tcp, WAIT).await;
    }
    // An idle keep-alive connection is closed too.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr);
    idle.write_all(request.as_bytes()).await.unwrap();
    closed_by_server(&mut idle, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_connections_wait() {
    let server = TestServer::with(|s| {
        s.max_http_connections = 2;
        s.http_header_timeout_ms = 60_000;
    })
    .await;
    let first = TcpStream::connect(server.addr).await.unwrap();
    let second = TcpStream::connect(server.addr).await.unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .unwrap();
    assert!(
        client.get(server.url("/healthz")).send().await.is_err(),
        "a third connection is not served while two are open"
    );
    drop(first);
    let ok = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(ok.status(), 200, "served once a place is free");
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_bodies_get_413_and_malformed_arguments_a_generic_400() {
    let server = TestServer::with(|s| s.max_body_bytes = 4096).await;
    let ann = server.user("ann").await;
    let big = "x".repeat(10_000);
    let r = ann
        .client
        .post(server.url("/api/send_message"))
        .form(&[("room_id", "1"), ("client_id", &cid()[..]), ("body", &big)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let (status, err) = ann
        .post(
            "send_message",
            &[("room_id", "one"), ("client_id", "x"), ("body", "b")],
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(err["code"], "validation");
    assert_eq!(
        err["message"], "bad request: malformed or missing arguments",
        "no parser details"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_its_time_gets_408_and_its_committed_write_still_lands() {
    let gate = CommitGate::opened();
    let server = TestServer::with_hooks(
        |s| s.request_timeout_ms = 300,
        Hooks {
            commit_gate: Some(gate.clone()),
        },
    )
    .await;
    let mut watcher = server.ws().await;
    watcher
        .send(&ClientFrame::Subscribe {
            topic: Topic::room(1),
            since: None,
        })
        .await;
    let head = match watcher.recv().await {
        ServerFrame::Subscribed { version, .. } => version,
        other => panic!("{other:?}"),
    };
    let ann = server.user("ann").await;
    gate.close();
    let (status, _) = ann.send(1, &cid(), "slow to commit").await;
    assert_eq!(status, 408);
    gate.open();
    match watcher.recv().await {
        ServerFrame::Event(e) => assert_eq!(e.version.seq, head.seq + 1),
        other => panic!("{other:?}"),
    }
    let _: &Ws = &watcher;
}
