//! Hostile names and bodies are text everywhere they appear in a
//! server-rendered page: the `<title>`, headings, links, the name badge,
//! message rows, and the hydration data in `<script>`. (The same payloads are
//! loaded in Chromium by end2end/tests/hostile_names.spec.ts.)
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{cid, TestServer};

/// Room names (at most 64 characters).
const ROOM_NAMES: [&str; 6] = [
    "</title><script>alert(1)</script>",
    "</title><meta http-equiv=refresh content=0;url=//elsewhere>",
    "\"><img src=x onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    "</script><script>alert(2)</script>",
    "<!-- '\"&amp; -->",
];

/// Display names (at most 32 characters).
const DISPLAY_NAMES: [&str; 3] = [
    "<script>alert(3)</script>",
    "\"><svg onload=alert(4)>",
    "</title><b>x</b>",
];

const BODY: &str = "</script><script>alert(5)</script><img src=x onerror=alert(6)>";

async fn page(server: &TestServer, path: &str, cookie: Option<&str>) -> String {
    let mut req = reqwest::Client::new().get(server.url(path));
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.text().await.unwrap()
}

fn assert_inert(html: &str, payload: &str, place: &str) {
    assert!(
        !html.contains(payload),
        "{place}: the payload {payload:?} appears unescaped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_room_names_are_text_in_every_place_they_appear() {
    let server = TestServer::start().await;
    let http = server.user("ann").await;
    let mut ids = Vec::new();
    for name in ROOM_NAMES {
        let (status, room) = http.post("create_room", &[("name", name)]).await;
        assert_eq!(status, 200, "{room}");
        ids.push(room["id"].as_i64().unwrap());
    }
    let home = page(&server, "/", None).await;
    for (name, id) in ROOM_NAMES.iter().zip(&ids) {
        assert_inert(&home, name, "room list");
        let room = page(&server, &format!("/rooms/{id}"), None).await;
        assert_inert(&room, name, "room page");
        let title = room
            .split("<title>")
            .nth(1)
            .and_then(|t| t.split("</title>").next())
            .expect("one title element");
        let expected = html_escape::encode_text(&format!("{name} · tandem")).into_owned();
        assert_eq!(title, expected, "the title is the escaped name");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_display_names_and_bodies_are_text_in_every_place_they_appear() {
    let server = TestServer::start().await;
    for name in DISPLAY_NAMES {
        let user = server.user(name).await;
        let (status, _) = user.send(1, &cid(), BODY).await;
        assert_eq!(status, 200);
        let cookie = user.cookie_header().expect("signed in");
        let room = page(&server, "/rooms/1", Some(&cookie)).await;
        assert_inert(&room, name, "message author and name badge");
        assert_inert(&room, BODY, "message body and hydration data");
        assert!(
            room.contains(&*html_escape::encode_text(name)),
            "the name is shown, as text"
        );
        let home = page(&server, "/", Some(&cookie)).await;
        assert_inert(&home, name, "name badge");
    }
}
