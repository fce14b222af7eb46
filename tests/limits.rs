//! Rate limits and caps over real HTTP and WebSocket: messages and resumes
//! per connection (typed `limit` errors with a wait, then 4429 for a
//! flooder), chat writes per account across its sockets and HTTP requests,
//! connection attempts and open connections per address (429
//! with Retry-After), backfills and room creations per address, and client
//! addresses through a trusted proxy only.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{cid, TestServer, Ws};
use tandem::protocol::{ClientFrame, ErrorCode, ServerFrame, Topic, Version};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn send(i: usize) -> ClientFrame {
    ClientFrame::Send {
        topic: Topic::room(1),
        client_id: tandem::sync::new_client_id(),
        body: format!("m{i}"),
    }
}

/// A server function's refusal by a rate limit: 429, `Retry-After`, typed.
async fn refused_for_rate(r: reqwest::Response) {
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let err: serde_json::Value = r.json().await.unwrap();
    assert_eq!(err["code"], "limit", "{err}");
}

/// `send_message` to room 1 as `http`'s account, the raw response.
async fn send_message(server: &TestServer, http: &common::Http, body: &str) -> reqwest::Response {
    http.client
        .post(server.url("/api/send_message"))
        .form(&[("room_id", "1"), ("client_id", &cid()[..]), ("body", body)])
        .send()
        .await
        .unwrap()
}

async fn upgrade(server: &TestServer, forwarded: Option<&str>) -> Result<Ws, u16> {
    let mut req = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .unwrap();
    if let Some(f) = forwarded {
        req.headers_mut()
            .insert("x-forwarded-for", f.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((stream, _)) => Ok(Ws { stream }),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            if r.status() == 429 {
                assert!(r.headers().contains_key("retry-after"), "429 says when");
            }
            Err(r.status().as_u16())
        }
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_past_the_rate_are_refused_and_a_flooder_is_closed() {
    let server = TestServer::with(|s| {
        s.messages_per_second = 1;
        s.messages_burst = 3;
        s.max_refusals = 5;
    })
    .await;
    let mut ws = server.ws_as("ann").await;
    for i in 0..3 {
        ws.send(&send(i)).await;
        assert!(
            matches!(ws.recv().await, ServerFrame::Ack { .. }),
            "within the burst"
        );
    }
    ws.send(&send(3)).await;
    match ws.recv().await {
        ServerFrame::Error(e) => {
            assert_eq!(e.code, ErrorCode::Limit);
            assert!(e.client_id.is_some(), "matched to its send");
            let wait = e.retry_after_ms.expect("says when to retry");
            assert!(wait > 0 && wait <= 1000, "{wait}");
        }
        other => panic!("{other:?}"),
    }
    for i in 4..8 {
        ws.send(&send(i)).await;
    }
    assert_eq!(ws.closed_with().await, 4429, "five refusals in a row");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accounts_chat_writes_are_limited_across_its_sockets_and_http() {
    // Three writes for the account, then one a minute (nothing refills
    // during the test); each socket alone could send far more.
    let server = TestServer::with(|s| {
        s.writes_per_minute = 1;
        s.writes_burst = 3;
        s.messages_per_second = 100;
        s.messages_burst = 100;
        s.max_refusals = 2;
    })
    .await;
    let ann = server.user("ann").await;
    // A write refused anyway spends nothing: a read-only token of ann's,
    // on a socket.
    let reader = server.token("ann", "read").await;
    let mut read_only = server.ws_token(&reader).await;
    for i in 0..5 {
        read_only.send(&send(100 + i)).await;
        match read_only.recv().await {
            ServerFrame::Error(e) => assert_eq!(e.code, ErrorCode::Forbidden, "{e:?}"),
            other => panic!("{other:?}"),
        }
    }
    let mut one = server.ws_for(&ann).await;
    let mut two = server.ws_for(&ann).await;
    let mut other = server.ws_as("bob").await;
    for i in 0..3 {
        // Sockets one, two, one.
        let ws = if i == 1 { &mut two } else { &mut one };
        ws.send(&send(i)).await;
        assert!(
            matches!(ws.recv().await, ServerFrame::Ack { .. }),
            "write {i}: within the account's burst"
        );
    }
    // The account's fourth write, on a socket that has sent one: refused,
    // typed, matched to its send, with when to retry; nothing stored. Not
    // counted towards max-refusals (2 here): the account's other sockets
    // may have spent its writes, so the socket stays open.
    for _ in 0..3 {
        let refused = tandem::sync::new_client_id();
        two.send(&ClientFrame::Send {
            topic: Topic::room(1),
            client_id: refused,
            body: "one too many".into(),
        })
        .await;
        match two.recv().await {
            ServerFrame::Error(e) => {
                assert_eq!(e.code, ErrorCode::Limit);
                assert_eq!(e.client_id, Some(refused));
                assert!(
                    e.retry_after_ms.expect("says when") > 1_000,
                    "a minute's refill"
                );
            }
            other => panic!("{other:?}"),
        }
    }
    two.send(&ClientFrame::Ping {}).await;
    assert!(
        matches!(two.recv().await, ServerFrame::Pong {}),
        "still open"
    );
    // And over HTTP: the same bucket.
    refused_for_rate(send_message(&server, &ann, "by http").await).await;
    // Another account is not held back by ann's writes.
    other.send(&send(9)).await;
    assert!(matches!(other.recv().await, ServerFrame::Ack { .. }));
    // Nothing refused was stored: the room holds the three, then bob's.
    let (_, snapshot) = ann.get("room_snapshot", &[("room_id", "1")]).await;
    let ours = ["m0", "m1", "m2", "m9", "one too many", "by http"];
    let bodies: Vec<&str> = snapshot["log"]["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["data"]["body"].as_str())
        .filter(|b| ours.contains(b) || b.starts_with("m10"))
        .collect();
    assert_eq!(bodies, ["m0", "m1", "m2", "m9"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumes_past_the_rate_are_refused_with_the_topic() {
    let server = TestServer::with(|s| {
        s.resumes_per_second = 1;
        s.resumes_burst = 2;
    })
    .await;
    let mut ws = server.ws().await;
    let since = |seq| Some(Version::new(0, seq));
    for room in 1..=2 {
        ws.send(&ClientFrame::Subscribe {
            topic: Topic::room(room),
            since: since(0),
        })
        .await;
        assert!(
            matches!(ws.recv().await, ServerFrame::Reset { .. }),
            "served (another epoch)"
        );
    }
    ws.send(&ClientFrame::Subscribe {
        topic: Topic::room(1),
        since: since(0),
    })
    .await;
    match ws.recv().await {
        ServerFrame::Error(e) => {
            assert_eq!((e.code, e.topic), (ErrorCode::Limit, Some(Topic::room(1))));
            assert!(e.retry_after_ms.is_some());
        }
        other => panic!("{other:?}"),
    }
    // A subscription from the head is not a resume.
    ws.send(&ClientFrame::Subscribe {
        topic: Topic::room(1),
        since: None,
    })
    .await;
    assert!(matches!(ws.recv().await, ServerFrame::Subscribed { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_attempts_are_limited_per_address() {
    let server = TestServer::with(|s| s.connects_per_minute = 2).await;
    let _a = upgrade(&server, None).await.unwrap();
    let _b = upgrade(&server, None).await.unwrap();
    assert_eq!(
        upgrade(&server, None).await.err(),
        Some(429),
        "two attempts a minute"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_connections_are_capped_per_address_and_places_come_back() {
    let server = TestServer::with(|s| s.max_ws_connections_per_ip = 2).await;
    let first = upgrade(&server, None).await.unwrap();
    let _second = upgrade(&server, None).await.unwrap();
    assert_eq!(
        upgrade(&server, None).await.err(),
        Some(429),
        "two open from one address"
    );
    drop(first);
    // The place comes back once the server has seen the close.
    let mut attempts = 0;
    let third = loop {
        attempts += 1;
        match upgrade(&server, None).await {
            Ok(ws) => break ws,
            Err(429) if attempts < 100 => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await
            }
            Err(other) => panic!("still refused after {attempts} attempts: {other}"),
        }
    };
    drop(third);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfills_and_room_creations_are_limited_per_address() {
    let server = TestServer::with(|s| {
        s.backfills_per_minute = 2;
        s.backfills_burst = 2;
        s.rooms_per_hour = 2;
    })
    .await;
    let http = server.user("ann").await;
    let query = [("topic", "room:1"), ("epoch", "1"), ("seq", "0")];
    for _ in 0..2 {
        assert_eq!(http.get("events_since", &query).await.0, 200);
    }
    let r = http
        .client
        .get(server.url("/api/events_since"))
        .query(&query)
        .send()
        .await
        .unwrap();
    refused_for_rate(r).await;
    for i in 0..2 {
        let (status, _) = http
            .post("create_room", &[("name", &format!("r{i}-{}", cid()))])
            .await;
        assert_eq!(status, 200);
    }
    let (status, err) = http.post("create_room", &[("name", "one too many")]).await;
    assert_eq!((status, err["code"].as_str()), (429, Some("limit")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_client_address_has_its_own_limits() {
    let server = TestServer::with(|s| {
        s.connects_per_minute = 1;
        s.trusted_proxies = vec!["127.0.0.1".into()];
    })
    .await;
    assert!(upgrade(&server, Some("203.0.113.1")).await.is_ok());
    assert!(
        upgrade(&server, Some("203.0.113.2")).await.is_ok(),
        "another client"
    );
    assert_eq!(upgrade(&server, Some("203.0.113.1")).await.err(), Some(429));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_writes_over_http_are_limited_per_account() {
    // One write a minute after a burst of 3: nothing refills during the test.
    let server = TestServer::with(|s| {
        s.writes_per_minute = 1;
        s.writes_burst = 3;
    })
    .await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    // A caller refused anyway spends nothing: a read-only token of ann's.
    let reader = server.token("ann", "read").await;
    for _ in 0..5 {
        let r = reqwest::Client::new()
            .post(server.url("/api/send_message"))
            .bearer_auth(&reader)
            .form(&[("room_id", "1"), ("client_id", &cid()[..]), ("body", "no")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    let mut seqs = Vec::new();
    for i in 0..3 {
        let (status, event) = ann.send(1, &cid(), &format!("within {i}")).await;
        assert_eq!(status, 200, "{event}");
        seqs.push(event["version"]["seq"].as_u64().unwrap());
    }
    // Past the burst: refused, typed, with when to try again; nothing stored.
    refused_for_rate(send_message(&server, &ann, "too fast").await).await;
    let edit = [
        ("room_id", "1"),
        ("client_id", &cid()[..]),
        ("target", &seqs[0].to_string()[..]),
        ("body", "edited"),
    ];
    let (status, err) = ann.post("edit_message", &edit).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (429, Some("limit")),
        "edits count too"
    );
    // Another account is not held back by ann's rate, and sees nothing of
    // the refused writes.
    let (status, event) = bob.send(1, &cid(), "bob's turn").await;
    assert_eq!(status, 200, "{event}");
    assert_eq!(
        event["version"]["seq"].as_u64(),
        Some(seqs[2] + 1),
        "the refused send stored nothing"
    );
}
