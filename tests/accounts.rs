//! Accounts and authorization over real HTTP and WebSocket: sign-up, log-in
//! and log-out; the login throttle; the one authorization rule on every path
//! (anonymous visitors, token scopes, private rooms); and every revocation
//! path closing exactly the live connections it concerns.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{cid, Http, TestServer, Ws, PASSWORD};
use serde_json::Value;
use std::time::{Duration, Instant};
use tandem::protocol::{ClientFrame, ErrorCode, ServerFrame, Topic};

fn room(id: i64) -> Topic {
    Topic::room(id)
}

/// Asserts the socket still answers (a ping gets a pong).
async fn alive(ws: &mut Ws, who: &str) {
    ws.send(&ClientFrame::Ping {}).await;
    loop {
        match ws.recv().await {
            ServerFrame::Pong {} => return,
            ServerFrame::Event(_) | ServerFrame::Subscribed { .. } => continue,
            other => panic!("{who}: expected pong, got {other:?}"),
        }
    }
}

async fn subscribe(ws: &mut Ws, topic: Topic) -> ServerFrame {
    ws.send(&ClientFrame::Subscribe { topic, since: None })
        .await;
    ws.recv().await
}

/// Waits for a 4401 close (the delay is measured by `bench/revocation.sh`).
async fn closed_4401(ws: &mut Ws, what: &str) {
    assert_eq!(ws.closed_with().await, 4401, "{what}");
}

async fn whoami(http: &Http) -> Value {
    let (status, me) = http.get("whoami", &[]).await;
    assert_eq!(status, 200, "{me}");
    me
}

async fn sqlite(server: &TestServer) -> sqlx::SqlitePool {
    sqlx::SqlitePool::connect(&format!("sqlite://{}", server.db.display()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_up_log_in_and_log_out() {
    let server = TestServer::start().await;
    let http = Http::new(&server);
    assert_eq!(whoami(&http).await, Value::Null);
    let form = [("name", " Zoë Li "), ("password", PASSWORD)];
    let r = http
        .client
        .post(server.url("/api/sign_up"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.starts_with("tandem_session=")
            && set.contains("HttpOnly")
            && set.contains("SameSite=Lax")
            && !set.contains("Secure"),
        "{set}"
    );
    assert_eq!(whoami(&http).await["name"], "Zoë Li");

    // Only hashes are stored: Argon2id for the password, SHA-256 for the session.
    let db = sqlite(&server).await;
    let phc: String = sqlx::query_scalar("SELECT password_hash FROM users WHERE name = 'Zoë Li'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
    let secret = set.split(';').next().unwrap().split_once('=').unwrap().1;
    let stored: Vec<u8> = sqlx::query_scalar("SELECT secret_hash FROM sessions")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 32);
    assert_ne!(stored, secret.as_bytes());

    // Names are unique by their look; passwords have rules.
    for (name, pass, code) in [
        ("ZOË LI", PASSWORD, 409),
        ("someone", "short", 400),
        ("someone", "someone", 400),
        ("tandem", PASSWORD, 409),
    ] {
        let (status, err) = Http::new(&server)
            .post("sign_up", &[("name", name), ("password", pass)])
            .await;
        assert_eq!(status, code, "{name}: {err}");
    }

    // Log out: the cookie is cleared, and the old secret is worthless.
    let cookie = http.cookie_header().unwrap();
    assert_eq!(http.post("log_out", &[]).await.0, 200);
    assert_eq!(whoami(&http).await, Value::Null);
    let replay = reqwest::Client::new()
        .get(server.url("/api/whoami"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.json::<Value>().await.unwrap(), Value::Null);

    // Log in again; a wrong password and an unknown name get the same answer.
    let (status, me) = http
        .post("log_in", &[("name", "zoë li"), ("password", PASSWORD)])
        .await;
    assert_eq!((status, me["name"].as_str()), (200, Some("Zoë Li")));
    let wrong = Http::new(&server)
        .post(
            "log_in",
            &[("name", "Zoë Li"), ("password", "not the password")],
        )
        .await;
    let unknown = Http::new(&server)
        .post("log_in", &[("name", "nobody"), ("password", PASSWORD)])
        .await;
    assert_eq!(wrong.0, 401);
    assert_eq!(wrong, unknown, "nothing tells whether the account exists");
    // The old display-name cookie is no identity.
    let r = reqwest::Client::new()
        .post(server.url("/api/send_message"))
        .header("cookie", "tandem_name=ann")
        .form(&[("room_id", "1"), ("client_id", &cid()[..]), ("body", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_is_slowed_then_locked_per_account_and_per_address() {
    let server = TestServer::with(|s| {
        s.login_burst = 4;
        s.login_refill_seconds = 600;
        s.login_ip_burst = 12;
        s.login_ip_refill_seconds = 600;
    })
    .await;
    server.user("ann").await;
    let server = &server;
    let attempt = |name: &'static str, pass: &'static str| {
        let http = Http::new(server);
        async move {
            let started = Instant::now();
            let r = http
                .client
                .post(server.url("/api/log_in"))
                .form(&[("name", name), ("password", pass)])
                .send()
                .await
                .unwrap();
            let retry = r.headers().get("retry-after").is_some();
            (r.status().as_u16(), retry, started.elapsed())
        }
    };
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(attempt("ann", "wrong password").await);
    }
    let codes: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(codes, [401, 401, 401, 401, 429]);
    assert!(answers[4].1, "429 says when to retry");
    assert!(
        answers[2].2 >= Duration::from_millis(900) && answers[3].2 >= Duration::from_millis(900),
        "attempts past half the burst are slowed: {answers:?}"
    );
    // Locked means locked: the right password is not even checked.
    assert_eq!(attempt("ann", PASSWORD).await.0, 429);
    // An account that does not exist is throttled the same way.
    let mut ghost = Vec::new();
    for _ in 0..5 {
        ghost.push(attempt("ghost", "wrong password").await.0);
    }
    assert_eq!(ghost, [401, 401, 401, 401, 429]);
    // The address has used 11 of its 12 attempts; other accounts lock too.
    assert_eq!(attempt("carol", "wrong password").await.0, 401);
    assert_eq!(attempt("dave", "wrong password").await.0, 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_visitors_read_public_rooms_and_write_nothing() {
    let server = TestServer::start().await;
    let anon = Http::new(&server);
    let (status, snapshot) = anon.get("room_snapshot", &[("room_id", "1")]).await;
    assert_eq!(status, 200);
    // A public room's snapshot lists no members.
    assert_eq!(snapshot["members"], serde_json::json!([]));
    let (status, err) = anon.send(1, &cid(), "hi").await;
    assert_eq!(
        (status, err["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, _) = anon.post("create_room", &[("name", "mine")]).await;
    assert_eq!(status, 401);
    let mut ws = server.ws().await;
    assert!(matches!(
        subscribe(&mut ws, room(1)).await,
        ServerFrame::Subscribed { .. }
    ));
    let id = tandem::sync::new_client_id();
    ws.send(&ClientFrame::Send {
        topic: room(1),
        client_id: id,
        body: "hi".into(),
    })
    .await;
    match ws.recv().await {
        ServerFrame::Error(e) => {
            assert_eq!(
                (e.code, e.client_id),
                (ErrorCode::Unauthenticated, Some(id))
            )
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_room_is_not_found_for_non_members_on_every_path() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let (status, secret) = ann
        .post("create_room", &[("name", "secret"), ("private", "on")])
        .await;
    assert_eq!(status, 200, "{secret}");
    let id = secret["id"].as_i64().unwrap();
    assert_eq!(ann.send(id, &cid(), "for members").await.0, 200);
    let sid = id.to_string();
    let missing = "999";
    let topic_of = |id: &str| format!("room:{id}");

    let bob = server.user("bob").await;
    let anon = Http::new(&server);
    let reader = server.token("carol", "read").await;
    for (who, http) in [("bob", &bob), ("anonymous", &anon)] {
        let (_, list) = http.get("list_rooms", &[]).await;
        assert!(
            !list.to_string().contains("secret"),
            "{who} does not see it listed"
        );
        // Each path answers exactly as for a room that does not exist.
        for (room_id, expect) in [(&sid[..], id.to_string()), (missing, missing.to_string())] {
            let t = topic_of(room_id);
            let answers = [
                http.get("room_snapshot", &[("room_id", room_id)]).await,
                http.get("older_messages", &[("room_id", room_id), ("before", "9")])
                    .await,
                http.get(
                    "events_since",
                    &[("topic", &t), ("epoch", "1"), ("seq", "0")],
                )
                .await,
                http.get("room_members", &[("room_id", room_id)]).await,
            ];
            for (status, body) in answers {
                assert_eq!(
                    (status, body["message"].as_str()),
                    (404, Some(&*format!("room {expect}"))),
                    "{who}"
                );
            }
        }
        let page = http
            .client
            .get(server.url(&format!("/rooms/{id}")))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 404, "{who}: the page");
        assert!(!page.text().await.unwrap().contains("for members"));
    }
    let (status, _) = bob.send(id, &cid(), "let me in").await;
    assert_eq!(status, 404);
    for mut ws in [
        server.ws_for(&bob).await,
        server.ws().await,
        server.ws_token(&reader).await,
    ] {
        match subscribe(&mut ws, room(id)).await {
            ServerFrame::Error(e) => {
                assert_eq!(
                    (e.code, e.message.as_str()),
                    (ErrorCode::NotFound, &*format!("room {id} not found"))
                )
            }
            other => panic!("{other:?}"),
        }
    }

    // Invited, bob reads and writes.
    let (status, member) = ann
        .post("invite_member", &[("room_id", &sid), ("name", "BOB")])
        .await;
    assert_eq!((status, member["name"].as_str()), (200, Some("bob")));
    // The snapshot lists the members, as `room_members` does: the owner first.
    let (status, snapshot) = bob.get("room_snapshot", &[("room_id", &sid)]).await;
    assert_eq!(status, 200);
    let names = |list: &serde_json::Value| -> Vec<(String, bool)> {
        list.as_array()
            .expect("a list")
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap().to_owned(),
                    m["owner"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    let expected = vec![("ann".to_owned(), true), ("bob".to_owned(), false)];
    assert_eq!(names(&snapshot["members"]), expected);
    let (_, listed) = bob.get("room_members", &[("room_id", &sid)]).await;
    assert_eq!(names(&listed), expected);
    assert_eq!(bob.send(id, &cid(), "thanks").await.0, 200);
    let mut ws = server.ws_for(&bob).await;
    assert!(matches!(
        subscribe(&mut ws, room(id)).await,
        ServerFrame::Subscribed { .. }
    ));
    // Only the owner manages members.
    let (status, _) = bob
        .post("invite_member", &[("room_id", &sid), ("name", "carol")])
        .await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_act_within_their_scopes() {
    let server = TestServer::start().await;
    let read = server.token("ann", "read").await;
    let write = server.token("ann", "write").await;
    let client = reqwest::Client::new();
    let send = |token: &str, origin: Option<&str>| {
        let mut req = client
            .post(server.url("/api/send_message"))
            .bearer_auth(token)
            .form(&[("room_id", "1"), ("client_id", &cid()[..]), ("body", "bot")]);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, err) = send(&read, None).await;
    assert_eq!((status, err["code"].as_str()), (403, Some("forbidden")));
    let (status, event) = send(&write, None).await;
    assert_eq!(
        (status, event["data"]["author"].as_str()),
        (200, Some("ann"))
    );
    // Not an ambient credential: exempt from the Origin rule.
    assert_eq!(send(&write, Some("http://elsewhere.example")).await.0, 200);
    // An unknown token is refused, never treated as anonymous.
    assert_eq!(send("tdm_not-a-token", None).await.0, 401);
    let bad = Ws::connect_with(&server, &[("authorization", "Bearer tdm_nope")]).await;
    assert!(bad.is_err(), "the upgrade is refused");

    let mut reader = server.ws_token(&read).await;
    assert!(matches!(
        subscribe(&mut reader, room(1)).await,
        ServerFrame::Subscribed { .. }
    ));
    let id = tandem::sync::new_client_id();
    reader
        .send(&ClientFrame::Send {
            topic: room(1),
            client_id: id,
            body: "x".into(),
        })
        .await;
    assert!(matches!(reader.recv().await, ServerFrame::Error(e) if e.code == ErrorCode::Forbidden));
    let mut writer = server.ws_token(&write).await;
    assert!(matches!(
        subscribe(&mut writer, room(1)).await,
        ServerFrame::Error(e) if e.code == ErrorCode::Forbidden
    ));

    // Tokens cannot manage the account; `publish` is for publishers only.
    let r = client
        .post(server.url("/api/create_token"))
        .bearer_auth(&write)
        .form(&[("label", "more"), ("scopes", "read")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let ann = server.user("ann").await;
    let (status, _) = ann
        .post("create_token", &[("label", "p"), ("scopes", "publish")])
        .await;
    assert_eq!(status, 403);
    let (_, list) = ann.get("my_tokens", &[]).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        !list.to_string().contains(&read),
        "secrets are never listed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_out_and_revoking_close_exactly_the_connections_concerned() {
    let server = TestServer::start().await;
    // ann: two browser sessions and a token; bob: one session.
    let ann_a = server.user("ann").await;
    let ann_b = server.user("ann").await;
    let token = server.token("ann", "read").await;
    let bob = server.user("bob").await;
    let mut a = server.ws_for(&ann_a).await;
    let mut b = server.ws_for(&ann_b).await;
    let mut t = server.ws_token(&token).await;
    let mut other = server.ws_for(&bob).await;
    let mut anon = server.ws().await;
    for ws in [&mut a, &mut b, &mut t, &mut other, &mut anon] {
        assert!(matches!(
            subscribe(ws, room(1)).await,
            ServerFrame::Subscribed { .. }
        ));
    }

    // 1. Log out: only that session's socket closes.
    assert_eq!(ann_a.post("log_out", &[]).await.0, 200);
    closed_4401(&mut a, "log out").await;
    alive(&mut b, "ann's other session").await;
    alive(&mut t, "ann's token").await;
    alive(&mut other, "bob").await;

    // 2. Revoke a session from the sessions page.
    let ann_c = server.user("ann").await;
    let mut c = server.ws_for(&ann_c).await;
    let (_, listed) = ann_b.get("my_sessions", &[]).await;
    let b_id = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .to_string();
    let (_, seen_by_c) = ann_c.get("my_sessions", &[]).await;
    assert!(seen_by_c.to_string().contains(&format!("\"id\":{b_id}")));
    assert_eq!(ann_c.post("revoke_session", &[("id", &b_id)]).await.0, 200);
    closed_4401(&mut b, "revoke session").await;
    alive(&mut c, "the revoking session").await;
    assert_eq!(whoami(&ann_b).await, Value::Null, "the cookie is dead too");

    // 3. Log out everywhere: every session socket of ann, not her token.
    let ann_d = server.user("ann").await;
    let mut d = server.ws_for(&ann_d).await;
    let (status, n) = ann_c.post("log_out_everywhere", &[]).await;
    // c, d, and the session `token` signed in with to create the token.
    assert_eq!((status, n.as_u64()), (200, Some(3)));
    closed_4401(&mut c, "log out everywhere").await;
    closed_4401(&mut d, "log out everywhere").await;
    alive(&mut t, "ann's token").await;
    alive(&mut other, "bob").await;

    // 4. Revoke the token.
    let ann_e = server.user("ann").await;
    let mut e = server.ws_for(&ann_e).await;
    let (_, tokens) = ann_e.get("my_tokens", &[]).await;
    let token_id = tokens[0]["id"].to_string();
    assert_eq!(
        ann_e.post("revoke_token", &[("id", &token_id)]).await.0,
        200
    );
    closed_4401(&mut t, "revoke token").await;
    alive(&mut e, "ann's session").await;
    alive(&mut other, "bob").await;
    alive(&mut anon, "anonymous").await;
    assert!(
        Ws::connect_with(&server, &[("authorization", &format!("Bearer {token}"))])
            .await
            .is_err(),
        "a revoked token cannot connect again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_from_a_private_room_ends_that_subscription_only() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let (_, private) = ann
        .post("create_room", &[("name", "inner"), ("private", "on")])
        .await;
    let id = private["id"].as_i64().unwrap();
    let sid = id.to_string();
    let bob = server.user("bob").await;
    let (status, member) = ann
        .post("invite_member", &[("room_id", &sid), ("name", "bob")])
        .await;
    assert_eq!(status, 200, "{member}");
    let bob_token = server.token("bob", "read").await;
    let mut ws = server.ws_for(&bob).await;
    let mut by_token = server.ws_token(&bob_token).await;
    let mut owner = server.ws_for(&ann).await;
    for sock in [&mut ws, &mut by_token, &mut owner] {
        for topic in [room(id), room(1)] {
            assert!(matches!(
                subscribe(sock, topic).await,
                ServerFrame::Subscribed { .. }
            ));
        }
    }
    let (status, _) = ann
        .post(
            "remove_member",
            &[
                ("room_id", &sid),
                ("user_id", &member["user_id"].to_string()),
            ],
        )
        .await;
    assert_eq!(status, 200);
    for sock in [&mut ws, &mut by_token] {
        match sock.recv().await {
            ServerFrame::Error(e) => {
                assert_eq!((e.code, e.topic), (ErrorCode::NotFound, Some(room(id))))
            }
            other => panic!("{other:?}"),
        }
    }
    // The rest of the connection goes on: room 1 still arrives; the private
    // room does not.
    ann.send(id, &cid(), "after").await;
    ann.send(1, &cid(), "public").await;
    match ws.recv().await {
        ServerFrame::Event(e) => assert_eq!(e.topic, room(1)),
        other => panic!("{other:?}"),
    }
    alive(&mut owner, "the owner").await;
    assert_eq!(bob.get("room_snapshot", &[("room_id", &sid)]).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_anonymous_and_its_socket_closes() {
    let server = TestServer::with(|s| {
        s.heartbeat_interval_ms = 100;
        s.heartbeat_timeout_ms = 5_000;
    })
    .await;
    let ann = server.user("ann").await;
    let db = sqlite(&server).await;
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 1_000;
    sqlx::query("UPDATE sessions SET expires_at = ?")
        .bind(soon)
        .execute(&db)
        .await
        .unwrap();
    let mut ws = server.ws_for(&ann).await;
    assert_eq!(whoami(&ann).await["name"], "ann");
    // The socket learned the expiry at its upgrade: a tick past it closes it.
    assert_eq!(ws.closed_with().await, 4401);
    assert_eq!(whoami(&ann).await, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_origin_log_out_changes_nothing() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let r = ann
        .client
        .post(server.url("/api/log_out"))
        .header("origin", "http://127.0.0.1:1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(whoami(&ann).await["name"], "ann");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_room_name_cannot_be_probed() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let private = [("name", "hidden plans"), ("private", "on")];
    assert_eq!(ann.post("create_room", &private).await.0, 200);
    // Another account can take the name, publicly or privately: a conflict
    // would tell that the private room exists.
    assert_eq!(
        bob.post("create_room", &[("name", "Hidden Plans")]).await.0,
        200
    );
    assert_eq!(bob.post("create_room", &private).await.0, 200);
    // Names stay unique among public rooms, and among one owner's rooms.
    let (status, err) = ann.post("create_room", &[("name", "HIDDEN PLANS")]).await;
    assert_eq!((status, err["code"].as_str()), (409, Some("conflict")));
    let (status, err) = ann.post("create_room", &private).await;
    assert_eq!((status, err["code"].as_str()), (409, Some("conflict")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_needs_the_account_to_be_a_publisher_now() {
    let mut server = TestServer::start().await;
    let token = server.token(common::PUBLISHER, "publish").await;
    let ticker = Topic::ticker("NOW").unwrap();
    let publish = |topic: Topic| ClientFrame::Publish {
        topic,
        tick: tandem::protocol::Tick { price: 1.0, ts: 1 },
    };
    let mut ws = server.ws_token(&token).await;
    ws.send(&publish(room(1))).await;
    assert!(matches!(ws.recv().await, ServerFrame::Error(e) if e.code == ErrorCode::Validation));
    ws.send(&publish(ticker)).await;
    alive(&mut ws, "an accepted publish gets no answer").await;
    drop(ws);
    server.stop().await;
    // The same database, without the account in `publishers`.
    let mut settings = common::settings(&server.db);
    settings.publishers.clear();
    let again = TestServer::launch(settings).await;
    let mut ws = again.ws_token(&token).await;
    ws.send(&publish(ticker)).await;
    assert!(matches!(ws.recv().await, ServerFrame::Error(e) if e.code == ErrorCode::Forbidden));
}
