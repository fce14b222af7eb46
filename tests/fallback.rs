//! The fallback rungs over real HTTP (docs/PROTOCOL.md §15): `GET /sse`
//! and `GET /poll` (long and short) carry the socket's frames and
//! versions, resume from the versions the client names (or the SSE
//! `Last-Event-ID`), pass the same request rules, credentials, authorization
//! and rate limits as `/ws`, and a reader that moves between the rungs and
//! the socket mid-conversation misses nothing and sees nothing twice.

mod common;

use common::{cid, Http, TestServer, WAIT};
use serde_json::Value;
use std::time::Duration;
use tandem::protocol::{ClientFrame, CloseCode, ErrorCode, EventData, ServerFrame, Topic, Version};
use tokio::time::timeout;

/// One SSE message.
#[derive(Debug, Default)]
struct Msg {
    id: Option<String>,
    event: Option<String>,
    data: Option<String>,
    comment: bool,
    retry: Option<u64>,
}

/// A `text/event-stream` reader.
struct Sse {
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl Sse {
    async fn open(http: &Http, server: &TestServer, topics: &str, last_id: Option<&str>) -> Sse {
        let mut req = http
            .client
            .get(server.url("/sse"))
            .query(&[("topics", topics)]);
        if let Some(id) = last_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.expect("GET /sse");
        assert_eq!(resp.status(), 200, "stream opens");
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        Sse {
            resp,
            buf: Vec::new(),
        }
    }

    /// The next message (comments and `retry:` included); `None` at the end.
    async fn next(&mut self) -> Option<Msg> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..end + 2).collect();
                let text = String::from_utf8(block).expect("utf-8");
                let mut msg = Msg::default();
                for line in text.lines().filter(|l| !l.is_empty()) {
                    if line.starts_with(':') {
                        msg.comment = true;
                        continue;
                    }
                    let (field, value) = line.split_once(": ").unwrap_or((line, ""));
                    match field {
                        "id" => msg.id = Some(value.into()),
                        "event" => msg.event = Some(value.into()),
                        "data" => msg.data = Some(value.into()),
                        "retry" => msg.retry = Some(value.parse().expect("retry ms")),
                        other => panic!("unexpected field {other}"),
                    }
                }
                return Some(msg);
            }
            let chunk = timeout(WAIT, self.resp.chunk())
                .await
                .expect("the stream speaks in time")
                .expect("the stream reads");
            self.buf.extend_from_slice(&chunk?);
        }
    }

    /// The next frame (skipping comments and bare `retry:`), with its id.
    async fn frame(&mut self) -> (ServerFrame, Option<String>) {
        loop {
            let msg = self.next().await.expect("stream open");
            assert_ne!(msg.event.as_deref(), Some("close"), "closed: {msg:?}");
            if let Some(data) = msg.data {
                let frame = serde_json::from_str(&data).expect("a server frame");
                return (frame, msg.id);
            }
        }
    }
}

/// Polls; returns the status and the JSON answer.
async fn poll(http: &Http, server: &TestServer, topics: &str, long: bool) -> (u16, Value) {
    let mut query = vec![("topics", topics)];
    if long {
        query.push(("wait", "1"));
    }
    let r = http
        .client
        .get(server.url("/poll"))
        .query(&query)
        .send()
        .await
        .expect("GET /poll");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// A long poll of `topics` as `http`, left waiting in a task: its status
/// and JSON answer (`Null` if it is not JSON).
fn spawn_long_poll(
    http: &Http,
    server: &TestServer,
    topics: &str,
) -> tokio::task::JoinHandle<(u16, Value)> {
    let (url, client, topics) = (server.url("/poll"), http.client.clone(), topics.to_owned());
    tokio::spawn(async move {
        let q = [("topics", topics.as_str()), ("wait", "1")];
        let r = client.get(url).query(&q).send().await.expect("GET /poll");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    })
}

fn frames(answer: &Value) -> Vec<ServerFrame> {
    answer["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| serde_json::from_value(f.clone()).expect("a server frame"))
        .collect()
}

fn event_seq(f: &ServerFrame) -> Option<u64> {
    match f {
        ServerFrame::Event(e) => Some(e.version.seq),
        _ => None,
    }
}

fn body_of(f: &ServerFrame) -> Option<String> {
    match f {
        ServerFrame::Event(e) => match &e.data {
            EventData::Message(m) => Some(m.body.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// The room's head version, as a subscription from now on reports it.
async fn head(http: &Http, server: &TestServer, topic: &str) -> Version {
    let (status, answer) = poll(http, server, topic, false).await;
    assert_eq!(status, 200, "{answer}");
    match frames(&answer).as_slice() {
        [ServerFrame::Subscribed { version, .. }] => *version,
        other => panic!("expected one subscribed: {other:?}"),
    }
}

#[tokio::test]
async fn sse_carries_the_socket_frames_and_resumes_from_last_event_id() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let mut sse = Sse::open(&ann, &server, "room:1", None).await;
    let first = sse.next().await.expect("retry");
    assert!(first.retry.is_some_and(|ms| (1000..3000).contains(&ms)));
    assert!(matches!(sse.frame().await.0, ServerFrame::Hello { .. }));
    let (subscribed, id) = sse.frame().await;
    let ServerFrame::Subscribed { topic, version, .. } = subscribed else {
        panic!("expected subscribed: {subscribed:?}");
    };
    assert_eq!(topic, Topic::room(1));
    let at = |seq: u64| format!("room:1@{}.{seq}", version.epoch);
    assert_eq!(
        id.as_deref(),
        Some(at(version.seq).as_str()),
        "the id resumes"
    );

    assert_eq!(ann.send(1, &cid(), "one").await.0, 200);
    let (event, id) = sse.frame().await;
    assert_eq!(event_seq(&event), Some(version.seq + 1));
    assert_eq!(body_of(&event).as_deref(), Some("one"));
    assert_eq!(id.as_deref(), Some(at(version.seq + 1).as_str()));
    drop(sse);

    // Two messages while the stream is down; the browser's reconnect sends
    // the last id back, with the request's own (older) topic list.
    assert_eq!(ann.send(1, &cid(), "two").await.0, 200);
    assert_eq!(ann.send(1, &cid(), "three").await.0, 200);
    let last = at(version.seq + 1);
    let mut sse = Sse::open(&ann, &server, "room:1", Some(&last)).await;
    let _retry = sse.next().await;
    assert!(matches!(sse.frame().await.0, ServerFrame::Hello { .. }));
    let got: Vec<_> = [sse.frame().await, sse.frame().await, sse.frame().await]
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    assert_eq!(body_of(&got[0]).as_deref(), Some("two"));
    assert_eq!(body_of(&got[1]).as_deref(), Some("three"));
    assert!(
        matches!(got[2], ServerFrame::Subscribed { version: v, .. } if v.seq == version.seq + 3),
        "{got:?}"
    );

    // An id that lists nothing any more ends EventSource's reconnects.
    let r = ann
        .client
        .get(server.url("/sse?topics=room:1"))
        .header("last-event-id", "-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // A broken id is refused, typed.
    let r = ann
        .client
        .get(server.url("/sse?topics=room:1"))
        .header("last-event-id", "room:1@x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["code"], "bad_frame");
}

#[tokio::test]
async fn sse_heartbeats_while_the_client_never_speaks() {
    // The client cannot speak on this rung: the stream must outlive the
    // heartbeat timeout on the strength of its own writes.
    let server = TestServer::with(|s| {
        s.heartbeat_interval_ms = 100;
        s.heartbeat_timeout_ms = 250;
    })
    .await;
    let ann = server.user("ann").await;
    let mut sse = Sse::open(&ann, &server, "room:1", None).await;
    let (mut comments, mut pings) = (0, 0);
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(800) {
        let msg = sse.next().await.expect("still open past the timeout");
        assert_ne!(msg.event.as_deref(), Some("close"), "{msg:?}");
        comments += usize::from(msg.comment);
        if msg.data.as_deref() == Some(r#"{"type":"ping"}"#) {
            pings += 1;
        }
    }
    assert!(comments >= 3, "a comment every interval: {comments}");
    // Nothing else is written, so every interval is quiet: a ping frame on
    // every tick (not every other one, which would leave a browser's
    // watchdog a thin margin). The first interval carried hello and
    // subscribed, and the test may stop between a tick's comment and frame.
    assert!(
        pings + 2 >= comments,
        "a ping frame every quiet interval: {pings} for {comments} ticks"
    );
}

#[tokio::test]
async fn long_polls_wait_for_news_and_short_polls_answer_at_once() {
    let server = TestServer::with(|s| {
        s.long_poll_ms = 1_500;
        s.short_poll_ms = 2_345;
    })
    .await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;

    // No version: answered at once with where to poll from.
    let (status, answer) = poll(&ann, &server, "room:1", true).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["poll_ms"], 0,
        "after a long poll, poll again at once"
    );
    let resume = answer["resume"].as_str().unwrap().to_owned();
    let v = head(&ann, &server, "room:1").await;
    assert_eq!(resume, format!("room:1@{}.{}", v.epoch, v.seq));

    // Up to date: a short poll answers at once, with nothing.
    let (_, answer) = poll(&ann, &server, &resume, false).await;
    assert_eq!(answer["frames"], serde_json::json!([]));
    assert_eq!(answer["resume"], resume.as_str());
    assert_eq!(
        answer["poll_ms"], 2_345,
        "a short poll's answer says short-poll-ms"
    );

    // A long poll waits; bob's message ends the wait.
    let waiting = spawn_long_poll(&ann, &server, &resume);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "nothing new yet: the poll waits");
    assert_eq!(bob.send(1, &cid(), "hello ann").await.0, 200);
    let (_, answer) = timeout(WAIT, waiting).await.unwrap().unwrap();
    let got = frames(&answer);
    assert_eq!(got.len(), 1, "{answer}");
    assert_eq!(event_seq(&got[0]), Some(v.seq + 1));
    assert_eq!(body_of(&got[0]).as_deref(), Some("hello ann"));
    let next = format!("room:1@{}.{}", v.epoch, v.seq + 1);
    assert_eq!(answer["resume"], next.as_str());

    // Nothing more: the wait ends empty after long-poll-ms.
    let started = std::time::Instant::now();
    let (_, answer) = poll(&ann, &server, &next, true).await;
    assert_eq!(answer["frames"], serde_json::json!([]));
    assert!(started.elapsed() >= Duration::from_millis(1_400));

    // Several new events: all of them in one answer, in order.
    for body in ["a", "b", "c"] {
        assert_eq!(bob.send(1, &cid(), body).await.0, 200);
    }
    let (_, answer) = poll(&ann, &server, &next, true).await;
    let seqs: Vec<_> = frames(&answer).iter().filter_map(event_seq).collect();
    assert_eq!(seqs, vec![v.seq + 2, v.seq + 3, v.seq + 4]);
}

/// A reader that applies events idempotently by seq, as §14 asks.
#[derive(Default)]
struct Reader {
    at: Option<Version>,
    bodies: Vec<String>,
    applied: Vec<u64>,
}

impl Reader {
    fn apply(&mut self, f: &ServerFrame) {
        match f {
            ServerFrame::Event(e) => {
                let at = self.at.expect("subscribed first");
                if e.version.seq <= at.seq {
                    return;
                }
                assert_eq!(e.version.seq, at.seq + 1, "no gap on any rung");
                self.at = Some(e.version);
                self.applied.push(e.version.seq);
                if let EventData::Message(m) = &e.data {
                    self.bodies.push(m.body.clone());
                }
            }
            ServerFrame::Subscribed { version, .. } => {
                if self.at.is_none_or(|at| version.seq > at.seq) {
                    assert!(self.at.is_none(), "subscribed never skips events");
                    self.at = Some(*version);
                }
            }
            ServerFrame::Hello { .. } | ServerFrame::Ping {} => {}
            other => panic!("unexpected {other:?}"),
        }
    }

    fn topics(&self) -> String {
        let v = self.at.expect("subscribed");
        format!("room:1@{}.{}", v.epoch, v.seq)
    }
}

#[tokio::test]
async fn a_reader_that_changes_rungs_mid_conversation_loses_and_doubles_nothing() {
    let server = TestServer::with(|s| s.long_poll_ms = 2_000).await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let mut reader = Reader::default();
    let mut sent = Vec::new();
    let mut n = 0;
    let mut say = |sent: &mut Vec<String>| {
        n += 1;
        let body = format!("m{n}");
        sent.push(body.clone());
        body
    };

    // On the socket.
    let mut ws = server.ws_for(&ann).await;
    ws.send(&ClientFrame::Subscribe {
        topic: Topic::room(1),
        since: None,
    })
    .await;
    reader.apply(&ws.recv().await);
    for _ in 0..3 {
        let body = say(&mut sent);
        assert_eq!(bob.send(1, &cid(), &body).await.0, 200);
        reader.apply(&ws.recv().await);
    }
    drop(ws);
    // Sent while switching.
    let body = say(&mut sent);
    assert_eq!(bob.send(1, &cid(), &body).await.0, 200);

    // Down to SSE, from the reader's own versions.
    let mut sse = Sse::open(&ann, &server, &reader.topics(), None).await;
    // hello, the missed event, subscribed
    for _ in 0..3 {
        reader.apply(&sse.frame().await.0);
    }
    for _ in 0..3 {
        let body = say(&mut sent);
        assert_eq!(bob.send(1, &cid(), &body).await.0, 200);
        reader.apply(&sse.frame().await.0);
    }
    drop(sse);
    let body = say(&mut sent);
    assert_eq!(bob.send(1, &cid(), &body).await.0, 200);

    // Down to long polling.
    for _ in 0..3 {
        let (status, answer) = poll(&ann, &server, &reader.topics(), true).await;
        assert_eq!(status, 200);
        frames(&answer).iter().for_each(|f| reader.apply(f));
        let body = say(&mut sent);
        assert_eq!(bob.send(1, &cid(), &body).await.0, 200);
    }
    // Down to short polling: repeat until caught up.
    for _ in 0..3 {
        let (_, answer) = poll(&ann, &server, &reader.topics(), false).await;
        frames(&answer).iter().for_each(|f| reader.apply(f));
        let body = say(&mut sent);
        assert_eq!(bob.send(1, &cid(), &body).await.0, 200);
    }
    let (_, answer) = poll(&ann, &server, &reader.topics(), false).await;
    frames(&answer).iter().for_each(|f| reader.apply(f));

    // And back up to the socket, resuming from the version held.
    let body = say(&mut sent);
    assert_eq!(bob.send(1, &cid(), &body).await.0, 200);
    let mut ws = server.ws_for(&ann).await;
    ws.send(&ClientFrame::Subscribe {
        topic: Topic::room(1),
        since: reader.at,
    })
    .await;
    loop {
        let f = ws.recv().await;
        let done = matches!(f, ServerFrame::Subscribed { .. });
        reader.apply(&f);
        if done {
            break;
        }
    }
    assert_eq!(reader.bodies, sent, "every message once, in order");
    let first = reader.applied[0];
    let expected: Vec<u64> = (first..first + sent.len() as u64).collect();
    assert_eq!(reader.applied, expected);
}

#[tokio::test]
async fn a_stream_that_falls_behind_is_caught_up_from_the_log_in_order() {
    // A tiny outbox: deliveries past it are dropped and the session reads
    // them from the room's log instead (the gap rule), on this rung too.
    let server = TestServer::with(|s| {
        s.outbox_capacity = 1;
        // bob's 40 sends at once, over HTTP.
        s.writes_burst = 100;
    })
    .await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let v = head(&ann, &server, "room:1").await;
    let mut sse = Sse::open(&ann, &server, "room:1", None).await;
    let _ = sse.next().await;
    let _hello = sse.frame().await;
    let _subscribed = sse.frame().await;
    let sends = (0..40).map(|i| {
        let bob = &bob;
        async move { bob.send(1, &cid(), &format!("burst {i}")).await.0 }
    });
    for status in futures::future::join_all(sends).await {
        assert_eq!(status, 200);
    }
    let mut seqs = Vec::new();
    while seqs.len() < 40 {
        let (f, _) = sse.frame().await;
        if let Some(seq) = event_seq(&f) {
            seqs.push(seq);
        }
    }
    let expected: Vec<u64> = (v.seq + 1..=v.seq + 40).collect();
    assert_eq!(seqs, expected);
    // It did fall behind (this test is the process's only tiny outbox).
    let metrics = server.metrics().await;
    let series = r#"tandem_deliveries_dropped_total{reason="queue_full"} "#;
    let dropped: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(dropped > 0, "{metrics}");
}

#[tokio::test]
async fn every_rung_applies_the_request_rules_credentials_and_authorization() {
    let server = TestServer::with(|s| {
        s.polls_per_minute = 1;
        s.polls_burst = 4;
        s.max_subscriptions = 2;
    })
    .await;
    let ann = server.user("ann").await;
    let anon = reqwest::Client::new();
    let with = |path: &str, header: (&'static str, &'static str)| {
        anon.get(server.url(path)).header(header.0, header.1).send()
    };
    for path in ["/sse?topics=room:1", "/poll?topics=room:1"] {
        // A cross-site request (what another site's page would send).
        let r = with(path, ("sec-fetch-site", "cross-site")).await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
        let r = with(path, ("origin", "https://evil.example"))
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
        // Credentials that do not hold are refused, never taken as anonymous.
        let r = with(path, ("authorization", "Bearer not-a-token"))
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["code"], "unauthenticated");
        // Bad topic lists are typed errors.
        let bad = path.replace("room:1", "room:one");
        let r = anon.get(server.url(&bad)).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["code"], "invalid_topic");
        // So is a query that does not parse.
        let r = anon
            .get(server.url(&format!("{path}&protocol=two")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{path}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["code"], "bad_frame");
        // The Host rule (against DNS rebinding), as for every request: the
        // rungs are routed around the pages' middleware, not around it.
        let r = with(path, ("host", "evil.example")).await.unwrap();
        assert_eq!(r.status(), 400, "{path}");
    }

    // Past max-subscriptions, each extra topic is refused alone, as on the
    // socket; far past it, the request.
    let (status, answer) = poll(&ann, &server, "room:1,room:2,room:3", false).await;
    assert_eq!(status, 200, "{answer}");
    let got = frames(&answer);
    let limited: Vec<_> = got
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Error(e) if e.code == ErrorCode::Limit => e.topic,
            _ => None,
        })
        .collect();
    assert_eq!(limited.len(), 1, "{answer}");
    let far: String = (1..=9)
        .map(|i| format!("room:{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let (status, answer) = poll(&ann, &server, &far, false).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["code"], "limit");

    // A private room is not found for a non-member, as on the socket.
    let (status, room) = ann
        .post("create_room", &[("name", "inner"), ("private", "on")])
        .await;
    assert_eq!(status, 200, "{room}");
    let id = room["id"].as_i64().unwrap();
    let bob = server.user("bob").await;
    let (status, answer) = poll(&bob, &server, &format!("room:{id},room:1"), false).await;
    assert_eq!(status, 200);
    let got = frames(&answer);
    assert!(
        got.iter().any(|f| matches!(f, ServerFrame::Error(e)
            if e.code == ErrorCode::NotFound && e.topic == Some(Topic::room(id)))),
        "{got:?}"
    );
    assert!(
        !answer["resume"]
            .as_str()
            .unwrap()
            .contains(&format!("room:{id}@")),
        "{answer}"
    );

    // Polls per minute per address (a burst of four: the refused
    // credentials took one, then three): past it, 429 with Retry-After.
    let (status, _) = poll(&bob, &server, "room:1", false).await;
    assert_eq!(status, 200);
    let r = bob
        .client
        .get(server.url("/poll?topics=room:1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // The security headers, as on every response.
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.headers().contains_key("content-security-policy"));
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["code"], "limit");

    let metrics = server.metrics().await;
    // (Metrics are the process's: other tests' polls count too.)
    for series in [
        r#"tandem_connects_total{transport="short_poll"} "#,
        r#"tandem_fallbacks_total{rung="short_poll"} "#,
    ] {
        let n: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{series} in\n{metrics}"));
        assert!(n >= 2, "{series}{n}");
    }
}

#[tokio::test]
async fn revoked_credentials_end_streams_and_waiting_polls() {
    let server = TestServer::with(|s| s.long_poll_ms = 5_000).await;
    // The poll must be waiting when the log-out lands; a poll that had not
    // started yet gets 401 instead, and the round is tried again, waiting
    // longer before logging out.
    for round in 1..=5u64 {
        let ann = server.user("ann").await;
        let mut sse = Sse::open(&ann, &server, "room:1", None).await;
        let _ = sse.next().await;
        let _hello = sse.frame().await;
        let (_, id) = sse.frame().await;
        let resume = id.expect("id");
        let waiting = spawn_long_poll(&ann, &server, &resume);
        tokio::time::sleep(Duration::from_millis(300 * round)).await;
        assert_eq!(ann.post("log_out", &[]).await.0, 200);

        let (status, answer) = timeout(WAIT, waiting).await.unwrap().unwrap();
        // Either way the stream ends with 4401.
        loop {
            let msg = sse.next().await.expect("a close before the end");
            if msg.event.as_deref() == Some("close") {
                let data: Value = serde_json::from_str(msg.data.as_deref().unwrap()).unwrap();
                assert_eq!(data["code"], CloseCode::Unauthenticated as u16);
                break;
            }
        }
        assert!(sse.next().await.is_none(), "the stream ends after close");
        if status == 401 {
            continue;
        }
        let got = frames(&answer);
        assert!(
            matches!(got.as_slice(), [ServerFrame::Error(e)] if e.code == ErrorCode::Unauthenticated),
            "{answer}"
        );
        return;
    }
    panic!("the long poll never waited before the log-out");
}

#[tokio::test]
async fn shutdown_tells_streams_and_waiting_polls_to_reconnect() {
    let mut server = TestServer::with(|s| s.long_poll_ms = 10_000).await;
    let ann = server.user("ann").await;
    let resume = {
        let v = head(&ann, &server, "room:1").await;
        format!("room:1@{}.{}", v.epoch, v.seq)
    };
    let mut sse = Sse::open(&ann, &server, &resume, None).await;
    let _ = sse.next().await;
    let _hello = sse.frame().await;
    let _subscribed = sse.frame().await;
    let waiting = spawn_long_poll(&ann, &server, &resume);
    // Time for the poll to reach the server and wait (a poll that had not
    // would get 503 and fail the test).
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let stopping = tokio::spawn(async move {
        server.stop().await;
    });
    let (_, answer) = timeout(WAIT, waiting).await.unwrap().unwrap();
    assert!(
        matches!(frames(&answer).as_slice(), [ServerFrame::Reconnect { .. }]),
        "{answer}"
    );
    let mut retry = None;
    let mut reconnect = false;
    loop {
        let msg = sse.next().await.expect("a close before the end");
        retry = retry.or(msg.retry);
        if let Some(data) = &msg.data {
            reconnect |= data.contains(r#""type":"reconnect""#);
        }
        if msg.event.as_deref() == Some("close") {
            let data: Value = serde_json::from_str(msg.data.as_deref().unwrap()).unwrap();
            assert_eq!(data["code"], CloseCode::ServiceRestart as u16);
            break;
        }
    }
    assert!(reconnect, "the reconnect frame comes first");
    assert!(
        retry.is_some_and(|ms| ms < 5_000),
        "reconnect within the window"
    );
    timeout(Duration::from_secs(10), stopping)
        .await
        .unwrap()
        .unwrap();
}

/// Whether `f` is a presence event listing `name`, typing or not.
fn lists(f: &ServerFrame, name: &str, typing: bool) -> bool {
    match f {
        ServerFrame::Event(e) => match &e.data {
            EventData::Presence(p) => p.users.iter().any(|u| u.name == name && u.typing == typing),
            _ => false,
        },
        _ => false,
    }
}

/// Whether `f` is a presence event that does not list `name`.
fn lacks(f: &ServerFrame, name: &str) -> bool {
    match f {
        ServerFrame::Event(e) => match &e.data {
            EventData::Presence(p) => p.users.iter().all(|u| u.name != name),
            _ => false,
        },
        _ => false,
    }
}

#[tokio::test]
async fn a_poller_is_present_while_its_polls_go_on_and_types_over_http() {
    // A poll lists its account while it waits and for three times
    // short-poll-ms after it ends (0.9 s here); a long poll waits up to 3 s
    // here.
    let server = TestServer::with(|s| {
        s.short_poll_ms = 300;
        s.long_poll_ms = 3_000;
    })
    .await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let mut sse = Sse::open(&ann, &server, "room:1,presence:1", None).await;
    // Ann's stream puts her in the room.
    loop {
        if lists(&sse.frame().await.0, "ann", false) {
            break;
        }
    }
    // Bob's long poll waits on the room: he is listed.
    let v = head(&bob, &server, "room:1").await;
    let waiting = spawn_long_poll(&bob, &server, &format!("room:1@{}.{}", v.epoch, v.seq));
    loop {
        if lists(&sse.frame().await.0, "bob", false) {
            break;
        }
    }
    // He types, over HTTP, while his poll waits: shown typing.
    let (status, body) = bob.post("typing", &[("room_id", "1")]).await;
    assert_eq!(status, 200, "{body}");
    loop {
        if lists(&sse.frame().await.0, "bob", true) {
            break;
        }
    }
    // His polls stop: he leaves when the last one's lingering ends, not
    // before.
    let stopped = std::time::Instant::now();
    waiting.abort();
    loop {
        if lacks(&sse.frame().await.0, "bob") {
            break;
        }
    }
    assert!(
        stopped.elapsed() >= Duration::from_millis(900),
        "listed until his last poll's lingering ended: {:?}",
        stopped.elapsed()
    );
    // Typing is a write: an anonymous caller is refused.
    let (status, _) = Http::new(&server).post("typing", &[("room_id", "1")]).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn credentials_kept_between_polls_end_with_their_revocation() {
    // Polls present the same credentials many times a second: they are
    // looked up once (`accounts::recent`), and a revocation ends that at once.
    let server = TestServer::start().await;
    let secret = server.token("ann", "read").await;
    let ann = server.user("ann").await;
    let poll_as = |token: &str| {
        reqwest::Client::new()
            .get(server.url("/poll?topics=room:1"))
            .bearer_auth(token)
            .send()
    };
    for _ in 0..3 {
        assert_eq!(poll_as(&secret).await.unwrap().status(), 200);
    }
    let (_, tokens) = ann.get("my_tokens", &[]).await;
    let id = tokens[0]["id"].to_string();
    assert_eq!(ann.post("revoke_token", &[("id", &id)]).await.0, 200);
    let r = poll_as(&secret).await.unwrap();
    assert_eq!(r.status(), 401, "the revoked token is refused at once");

    // A session too: logged out, its cookie is no one's at once (sent
    // by hand: the browser's jar drops it on log-out).
    let bob = server.user("bob").await;
    let cookie = bob.cookie_header().expect("signed in");
    let whoami = || {
        reqwest::Client::new()
            .get(server.url("/api/whoami"))
            .header("cookie", &cookie)
            .send()
    };
    for _ in 0..3 {
        let me: Value = whoami().await.unwrap().json().await.unwrap();
        assert_eq!(me["name"], "bob", "{me}");
    }
    assert_eq!(bob.post("log_out", &[]).await.0, 200);
    let me: Value = whoami().await.unwrap().json().await.unwrap();
    assert!(me.is_null(), "logged out at once: {me}");
}
