//! `/metrics`: scraped over real HTTP after real traffic.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{cid, TestServer, Ws};
use tandem::protocol::{ClientFrame, ServerFrame, Tick, Topic};

/// The value of the first sample line starting with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_scraped_after_real_traffic() {
    let server = TestServer::start().await;
    let token = server.token(common::PUBLISHER, "publish").await;
    let http = reqwest::Client::new();
    let mut sub = server.ws().await;
    sub.send(&ClientFrame::Subscribe {
        topic: Topic::room(1),
        since: None,
    })
    .await;
    assert!(matches!(sub.recv().await, ServerFrame::Subscribed { .. }));
    server.user("ann").await.send(1, &cid(), "counted").await;
    assert!(matches!(sub.recv().await, ServerFrame::Event(_)));

    // A publisher with the token; a tick reaches a ticker subscriber.
    let ticker = Topic::ticker("ACME").unwrap();
    sub.send(&ClientFrame::Subscribe {
        topic: ticker,
        since: None,
    })
    .await;
    assert!(matches!(sub.recv().await, ServerFrame::Subscribed { .. }));
    let mut publisher = server.ws_token(&token).await;
    publisher
        .send(&ClientFrame::Publish {
            topic: ticker,
            tick: Tick { price: 9.5, ts: 1 },
        })
        .await;
    assert!(matches!(sub.recv().await, ServerFrame::Event(_)));
    // A refusal is counted.
    assert!(Ws::connect(&server, Some("http://evil.example"), None)
        .await
        .is_err());

    let r = http
        .get(server.url("/metrics"))
        .bearer_auth(common::METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    let at_least = |series: &str, min: f64| {
        let v = sample(&text, series).unwrap_or_else(|| panic!("{series} missing in\n{text}"));
        assert!(v >= min, "{series} = {v}, expected >= {min}");
    };
    at_least("tandem_connections{transport=\"ws\"}", 2.0);
    at_least("tandem_connects_total{transport=\"ws\"}", 2.0);
    at_least("tandem_subscriptions", 2.0);
    at_least("tandem_events_in_total{kind=\"room\"}", 1.0);
    at_least("tandem_events_in_total{kind=\"ticker\"}", 1.0);
    at_least("tandem_events_out_total{kind=\"room\"}", 1.0);
    at_least("tandem_events_out_total{kind=\"ticker\"}", 1.0);
    at_least(
        "tandem_rejections_total{reason=\"cross_origin_websocket\"}",
        1.0,
    );
    at_least("tandem_store_seconds_count{op=\"append\"}", 1.0);
    // The subscriber keeps up: its events are written by its wire, never
    // queued for its task (realtime::wire).
    at_least("tandem_wire_writes_total", 1.0);
    // Declared before anything happens, at exactly 0 (this test makes no
    // fallback request).
    for rung in ["sse", "long_poll", "short_poll"] {
        let series = format!("tandem_fallbacks_total{{rung=\"{rung}\"}}");
        assert_eq!(sample(&text, &series), Some(0.0), "{series}");
    }
    assert!(text.contains("# HELP tandem_store_seconds"), "described");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_can_be_turned_off() {
    let server = TestServer::with(|s| s.metrics = false).await;
    let r = reqwest::Client::new()
        .get(server.url("/metrics"))
        .bearer_auth(common::METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_stay_off_the_public_port_without_the_token() {
    // A free loopback port for the private listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = TestServer::with(|s| {
        s.metrics_token = String::new();
        s.metrics_addr = format!("127.0.0.1:{port}");
    })
    .await;
    let public = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(public.status(), 404, "not on the public port");
    let private = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(private.status(), 200, "on the private listener");
    assert!(private.text().await.unwrap().contains("tandem_connections"));
    let with_token = TestServer::start().await;
    let wrong = reqwest::Client::new()
        .get(with_token.url("/metrics"))
        .bearer_auth("not the token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404, "a wrong token is no token");
}
