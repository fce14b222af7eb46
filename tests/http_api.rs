//! The request/response layer over real HTTP: rooms, history, sending
//! (idempotent), backfill, typed errors, the display-name cookie, CSRF, and
//! server-rendered pages (also while other servers of the process start).
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{cid, Http, TestServer};
use serde_json::Value;

fn seqs(events: &Value) -> Vec<u64> {
    events
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["version"]["seq"].as_u64().expect("seq"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_rooms_are_listed_and_rooms_can_be_created() {
    let server = TestServer::start().await;
    let http = server.user("ann").await;
    let (status, list) = http.get("list_rooms", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(list["next"], Value::Null, "one page");
    let rooms = &list["rooms"];
    let names: Vec<&str> = rooms
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["room"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["general", "random"]);
    assert_eq!(rooms[0]["messages"], 3);

    let (status, room) = http.post("create_room", &[("name", "  design  ")]).await;
    assert_eq!(status, 200, "{room}");
    assert_eq!(room["name"], "design");
    let (status, err) = http.post("create_room", &[("name", "DESIGN")]).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (409, Some("conflict")),
        "{err}"
    );
    let (status, err) = http.post("create_room", &[("name", "")]).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (400, Some("validation")),
        "{err}"
    );
    let (_, list) = http.get("list_rooms", &[]).await;
    assert_eq!(
        list["rooms"].as_array().unwrap().len(),
        3,
        "refused creations changed nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_list_comes_in_pages() {
    let server = TestServer::with(|s| s.room_page = 2).await;
    let http = server.user("ann").await;
    for i in 0..3 {
        http.post("create_room", &[("name", &format!("page room {i}"))])
            .await;
    }
    // Five rooms: 2 + 2 + 1.
    let mut names = Vec::new();
    let mut after: Option<String> = None;
    for page in 0..3 {
        let query: Vec<(&str, &str)> = after.iter().map(|a| ("after", a.as_str())).collect();
        let (status, list) = http.get("list_rooms", &query).await;
        assert_eq!(status, 200);
        for r in list["rooms"].as_array().unwrap() {
            names.push(r["room"]["name"].as_str().unwrap().to_owned());
        }
        after = list["next"].as_i64().map(|n| n.to_string());
        assert_eq!(after.is_none(), page == 2, "page {page}");
    }
    assert_eq!(
        names,
        [
            "general",
            "random",
            "page room 0",
            "page room 1",
            "page room 2"
        ]
    );
    // The page links to the next one, and works without JavaScript.
    let client = Http::new(&server).client;
    let home = client
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("random") && !home.contains("page room 0"));
    assert!(
        home.contains("href=\"/?after=2\""),
        "a link to the next page"
    );
    let next = client
        .get(server.url("/?after=2"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        next.contains("page room 0") && next.contains("page room 1") && !next.contains(">general<")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_and_older_pages_cover_history_exactly_once() {
    let server = TestServer::with(|s| s.history_page = 4).await;
    let ann = server.user("ann").await;
    for i in 0..7 {
        let (status, _) = ann.send(2, &cid(), &format!("m{i}")).await;
        assert_eq!(status, 200);
    }
    // Room 2 ("random") has 2 seeded + 7 new = 9 messages.
    let (status, snap) = ann.get("room_snapshot", &[("room_id", "2")]).await;
    assert_eq!(status, 200, "{snap}");
    assert_eq!(snap["log"]["version"]["seq"], 9);
    assert_eq!(seqs(&snap["log"]["events"]), vec![6, 7, 8, 9]);
    assert_eq!(snap["log"]["has_older"], true);
    let (_, page) = ann
        .get("older_messages", &[("room_id", "2"), ("before", "6")])
        .await;
    assert_eq!(seqs(&page["events"]), vec![2, 3, 4, 5]);
    assert_eq!(page["has_older"], true);
    let (_, page) = ann
        .get("older_messages", &[("room_id", "2"), ("before", "2")])
        .await;
    assert_eq!(seqs(&page["events"]), vec![1]);
    assert_eq!(page["has_older"], false);
    let (status, err) = ann.get("room_snapshot", &[("room_id", "999")]).await;
    assert_eq!((status, err["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_is_idempotent_by_client_id() {
    let server = TestServer::start().await;
    let bob = server.user("bob").await;
    let id = cid();
    let (s1, first) = bob.send(1, &id, "hello once").await;
    let (s2, retry) = bob.send(1, &id, "hello once").await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(first, retry, "a retry returns the original event");
    assert_eq!(first["version"]["seq"], 4);
    assert_eq!(first["data"]["author"], "bob");
    let (_, snap) = bob.get("room_snapshot", &[("room_id", "1")]).await;
    let bodies: Vec<&str> = snap["log"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies.iter().filter(|b| **b == "hello once").count(), 1);
    let (_, next) = bob.send(1, &cid(), "second").await;
    assert_eq!(next["version"]["seq"], 5, "no gap after a retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sends_get_typed_errors_and_change_nothing() {
    let server = TestServer::start().await;
    let anon = Http::new(&server);
    let (status, err) = anon.send(1, &cid(), "who am I").await;
    assert_eq!(
        (status, err["code"].as_str()),
        (401, Some("unauthenticated")),
        "{err}"
    );
    let bob = server.user("bob").await;
    for (body, code) in [("   ", "validation"), (&"x".repeat(2001)[..], "validation")] {
        let (status, err) = bob.send(1, &cid(), body).await;
        assert_eq!((status, err["code"].as_str()), (400, Some(code)), "{err}");
    }
    let (status, err) = bob.send(999, &cid(), "into the void").await;
    assert_eq!(
        (status, err["code"].as_str()),
        (404, Some("not_found")),
        "{err}"
    );
    let (status, _) = bob
        .post(
            "send_message",
            &[("room_id", "1"), ("client_id", "not-a-uuid"), ("body", "x")],
        )
        .await;
    assert_eq!(status, 400);
    let (_, snap) = bob.get("room_snapshot", &[("room_id", "1")]).await;
    assert_eq!(snap["log"]["version"]["seq"], 3, "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_since_backfills_and_resets_on_another_epoch() {
    let server = TestServer::with(|s| s.catch_up_limit = 2).await;
    let ann = server.user("ann").await;
    let (_, snap) = ann.get("room_snapshot", &[("room_id", "1")]).await;
    let epoch = snap["log"]["version"]["epoch"]
        .as_u64()
        .unwrap()
        .to_string();
    for i in 0..3 {
        ann.send(1, &cid(), &format!("n{i}")).await;
    }
    let (status, b) = ann
        .get(
            "events_since",
            &[("topic", "room:1"), ("epoch", &epoch), ("seq", "3")],
        )
        .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(seqs(&b["events"]), vec![4, 5]);
    assert_eq!(
        (b["has_more"].as_bool(), b["reset"].as_bool()),
        (Some(true), Some(false))
    );
    let (_, b) = ann
        .get(
            "events_since",
            &[("topic", "room:1"), ("epoch", &epoch), ("seq", "5")],
        )
        .await;
    assert_eq!(seqs(&b["events"]), vec![6]);
    assert_eq!(b["version"]["seq"], 6);
    let (_, b) = ann
        .get(
            "events_since",
            &[("topic", "room:1"), ("epoch", "1"), ("seq", "5")],
        )
        .await;
    assert_eq!(
        (b["reset"].as_bool(), seqs(&b["events"]).len()),
        (Some(true), 0)
    );
    let (status, err) = ann
        .get(
            "events_since",
            &[("topic", "nope:1"), ("epoch", "1"), ("seq", "0")],
        )
        .await;
    assert_eq!((status, err["code"].as_str()), (400, Some("validation")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_origin_posts_are_refused() {
    let server = TestServer::start().await;
    let bob = server.user("bob").await;
    let form = [
        ("room_id", "1"),
        ("client_id", &cid()[..]),
        ("body", "csrf"),
    ];
    let r = bob
        .client
        .post(server.url("/api/send_message"))
        .header("origin", "http://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = bob
        .client
        .post(server.url("/api/send_message"))
        .header("origin", server.origin())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "same origin is fine");
    let (_, snap) = bob.get("room_snapshot", &[("room_id", "1")]).await;
    assert_eq!(
        snap["log"]["version"]["seq"], 4,
        "only the same-origin post landed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_server_rendered_with_history() {
    let server = TestServer::start().await;
    let client = Http::new(&server).client;
    let home = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    let html = home.text().await.unwrap();
    assert!(
        html.contains("general") && html.contains("random"),
        "room list rendered"
    );

    let bob = server.user("bob").await;
    bob.send(1, &cid(), "<b>not bold</b> & friends").await;
    let html = client
        .get(server.url("/rooms/1"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Welcome to tandem!"),
        "history is in the HTML"
    );
    assert!(
        html.contains("&lt;b&gt;not bold&lt;/b&gt; &amp; friends"),
        "user text is escaped"
    );
    assert!(!html.contains("<b>not bold</b>"));
    let missing = client.get(server.url("/rooms/999")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await.unwrap().contains("not found"));
}

/// Building a router once made every page rendering of the process stall
/// (Leptos suppresses resources process-wide while it lists routes; see
/// `page_routes` in src/server/mod.rs). Pages must complete while other
/// servers start in the same process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_complete_while_other_servers_start() {
    let server = TestServer::start().await;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap();
    let render_loop = || async {
        for _ in 0..40 {
            let page = client.get(server.url("/rooms/1")).send().await;
            let page = page.expect("the page response completes");
            assert_eq!(page.status(), 200);
            assert!(page.text().await.unwrap().contains("Welcome to tandem!"));
        }
    };
    let renders = futures::future::join_all((0..4).map(|_| render_loop()));
    let starts = async {
        for _ in 0..20 {
            let other = TestServer::start().await;
            let ok = reqwest::get(other.url("/healthz")).await.unwrap();
            assert_eq!(ok.status(), 200);
        }
    };
    futures::future::join(renders, starts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_since_pages_are_bounded_in_bytes_as_well_as_count() {
    let server = TestServer::with(|s| s.page_bytes = 3000).await;
    let ann = server.user("ann").await;
    let (_, snap) = ann.get("room_snapshot", &[("room_id", "2")]).await;
    let v = &snap["log"]["version"];
    let (epoch, seq) = (v["epoch"].to_string(), v["seq"].to_string());
    for _ in 0..5 {
        ann.send(2, &cid(), &"b".repeat(1000)).await;
    }
    let (status, b) = ann
        .get(
            "events_since",
            &[("topic", "room:2"), ("epoch", &epoch), ("seq", &seq)],
        )
        .await;
    assert_eq!(status, 200);
    // Each event holds about 1,100 bytes of data: three reach 3,000.
    assert_eq!(b["events"].as_array().unwrap().len(), 3);
    assert_eq!(b["has_more"], true);
}
