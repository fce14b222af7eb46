//! Statements of docs/PROTOCOL.md, checked against the real server: the
//! protocol version handshake, the closing handshake, the shutdown answer,
//! CRLF in bodies, `not_found` texts per endpoint, HTML form posts, and the
//! policy announced in `subscribed`.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{cid, Http, TestServer, Ws, WAIT};
use futures::{SinkExt, StreamExt};
use tandem::protocol::{ClientFrame, Policy, ServerFrame, Topic};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

async fn raw(
    server: &TestServer,
    query: &str,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let url = format!("ws://{}/ws{query}", server.addr);
    let (stream, _) = tokio_tungstenite::connect_async(url).await?;
    Ok(Ws { stream })
}

fn http_status(e: tokio_tungstenite::tungstenite::Error) -> u16 {
    match e {
        tokio_tungstenite::tungstenite::Error::Http(resp) => resp.status().as_u16(),
        other => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_names_the_protocol_and_old_versions_are_refused() {
    let server = TestServer::start().await;
    for query in ["", "?protocol=1", "?protocol=7"] {
        let mut ws = raw(&server, query).await.unwrap();
        match ws.recv().await {
            ServerFrame::Hello { protocol, .. } => assert_eq!(protocol, 1, "{query}"),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        http_status(raw(&server, "?protocol=0").await.err().unwrap()),
        400
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_close_is_echoed() {
    let server = TestServer::start().await;
    let mut ws = server.ws().await;
    ws.stream
        .send(Message::Close(Some(CloseFrame {
            code: WsCode::Normal,
            reason: "bye".into(),
        })))
        .await
        .unwrap();
    let echo = tokio::time::timeout(WAIT, async {
        while let Some(msg) = ws.stream.next().await {
            if let Message::Close(frame) = msg.unwrap() {
                return frame;
            }
        }
        None
    })
    .await
    .unwrap();
    assert_eq!(
        echo.map(|f| f.code),
        Some(WsCode::Normal),
        "1000 back, not 1006"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_shutdown_new_requests_get_503_until_sessions_said_goodbye() {
    let mut server = TestServer::with(|s| s.shutdown_grace_ms = 10_000).await;
    let mut ws = server.ws().await;
    server.shutdown.trigger();
    match ws.recv().await {
        ServerFrame::Reconnect { window_ms, .. } => assert_eq!(window_ms, 5000),
        other => panic!("{other:?}"),
    }
    // `ws` is not read any further, so its close reply is not sent yet and
    // the server keeps waiting for it (up to the 10 s grace) with its
    // listener open: every new request is refused the same way.
    let refused = raw(&server, "").await.err().expect("upgrade refused");
    assert_eq!(http_status(refused), 503);
    let page = reqwest::get(server.url("/healthz")).await.unwrap();
    assert_eq!(page.status(), 503);
    assert_eq!(page.headers()["retry-after"], "1");
    assert_eq!(ws.closed_with().await, 1012);
    drop(ws);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crlf_line_ends_become_lf_before_the_length_is_counted() {
    let server = TestServer::start().await;
    let mut ws = server.ws_as("ann").await;
    let long = "ab\r\n".repeat(600); // 2,400 characters sent, 1,799 stored
    for (body, stored) in [
        ("a\r\nb", "a\nb".to_string()),
        (&long[..], long.replace("\r\n", "\n").trim_end().to_string()),
    ] {
        let client_id = tandem::sync::new_client_id();
        ws.send(&ClientFrame::Send {
            topic: Topic::room(1),
            client_id,
            body: body.into(),
        })
        .await;
        match ws.recv().await {
            ServerFrame::Ack { event, .. } => match event.data {
                tandem::protocol::EventData::Message(m) => assert_eq!(m.body, stored),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        }
    }
    let (status, e) = server.user("bob").await.send(1, &cid(), "a\rb").await;
    assert_eq!(
        (status, e["code"].as_str()),
        (400, Some("validation")),
        "a lone CR is refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_found_names_the_missing_thing_per_endpoint() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let cases = [
        ann.get("room_snapshot", &[("room_id", "999")]).await,
        ann.get("older_messages", &[("room_id", "999"), ("before", "5")])
            .await,
        ann.get(
            "events_since",
            &[("topic", "room:999"), ("epoch", "1"), ("seq", "0")],
        )
        .await,
        ann.send(999, &cid(), "x").await,
    ];
    let messages: Vec<(u16, &str)> = cases
        .iter()
        .map(|(status, body)| (*status, body["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        messages,
        vec![
            (404, "room 999"),
            (404, "room 999"),
            (404, "room 999"),
            (404, "room 999"),
        ]
    );
    let mut ws = server.ws().await;
    ws.send(&ClientFrame::Subscribe {
        topic: Topic::room(999),
        since: None,
    })
    .await;
    match ws.recv().await {
        ServerFrame::Error(e) => assert_eq!(e.message, "room 999 not found"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_html_form_post_is_stored_and_redirected_back() {
    let server = TestServer::start().await;
    let cookie = server.user("ann").await.cookie_header().unwrap();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let post = |body: &'static str| {
        client
            .post(server.url("/api/send_message"))
            .header("accept", "text/html")
            .header("cookie", &cookie)
            .header("referer", server.url("/rooms/1?__path=x&__err=old"))
            .form(&[("room_id", "1"), ("client_id", &cid()[..]), ("body", body)])
            .send()
    };
    let r = post("from a form").await.unwrap();
    // Back to the room, without the error of an earlier post.
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/rooms/1");
    // A refusal lands in the room too, with a code the page turns into a
    // fixed sentence (never text from the URL).
    let refused = post("  ").await.unwrap();
    assert_eq!(refused.status().as_u16(), 303);
    assert_eq!(refused.headers()["location"], "/rooms/1?error=message");
    let (_, snap) = Http::new(&server)
        .get("room_snapshot", &[("room_id", "1")])
        .await;
    assert_eq!(snap["log"]["events"][3]["data"]["body"], "from a form");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribed_announces_the_delivery_policy() {
    let server = TestServer::start().await;
    let mut ws = server.ws().await;
    ws.send(&ClientFrame::Subscribe {
        topic: Topic::room(1),
        since: None,
    })
    .await;
    assert!(matches!(
        ws.recv().await,
        ServerFrame::Subscribed {
            policy: Policy::Lossless,
            ..
        }
    ));
}
