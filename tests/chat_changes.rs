//! Edits and deletions of chat messages over real HTTP and WebSocket: new
//! versioned events that name their target, the rules on who may make them
//! (only the author edits; the author or the room's owner deletes; nothing
//! changes a deleted message), idempotent retries, snapshots and backfills
//! that show messages as they stand, and deleted text erased from the store.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{cid, Http, TestServer};
use serde_json::Value;
use tandem::protocol::{ClientFrame, ErrorCode, EventData, ServerFrame, Topic};
use uuid::Uuid;

async fn edit(http: &Http, room: i64, client_id: &str, target: u64, body: &str) -> (u16, Value) {
    http.post(
        "edit_message",
        &[
            ("room_id", &room.to_string()),
            ("client_id", client_id),
            ("target", &target.to_string()),
            ("body", body),
        ],
    )
    .await
}

async fn delete(http: &Http, room: i64, client_id: &str, target: u64) -> (u16, Value) {
    http.post(
        "delete_message",
        &[
            ("room_id", &room.to_string()),
            ("client_id", client_id),
            ("target", &target.to_string()),
        ],
    )
    .await
}

fn seq(event: &Value) -> u64 {
    event["version"]["seq"].as_u64().unwrap()
}

/// The room's snapshot messages by seq.
async fn snapshot(http: &Http, room: i64) -> Vec<Value> {
    let (status, snap) = http
        .get("room_snapshot", &[("room_id", &room.to_string())])
        .await;
    assert_eq!(status, 200, "{snap}");
    snap["log"]["events"].as_array().unwrap().clone()
}

fn at(events: &[Value], seq_: u64) -> Value {
    events
        .iter()
        .find(|e| seq(e) == seq_)
        .unwrap_or_else(|| panic!("seq {seq_} in {events:?}"))["data"]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_deletions_are_versioned_events_with_their_rules() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let anon = Http::new(&server);
    let (status, room) = ann.post("create_room", &[("name", "edits")]).await;
    assert_eq!(status, 200, "{room}");
    let id = room["id"].as_i64().unwrap();
    let mut watcher = server.ws().await;
    watcher
        .send(&ClientFrame::Subscribe {
            topic: Topic::room(id),
            since: None,
        })
        .await;
    assert!(matches!(
        watcher.recv().await,
        ServerFrame::Subscribed { .. }
    ));

    let (_, m1) = ann.send(id, &cid(), "helo").await;
    let (_, m2) = bob.send(id, &cid(), "bob's").await;
    let (s1, s2) = (seq(&m1), seq(&m2));
    assert_eq!(
        m1["data"]["author_id"],
        m2["data"]["author_id"].as_i64().unwrap() - 1
    );

    // The author edits: a new event naming the target; a retry is the same event.
    let edit_id = cid();
    let (status, e) = edit(&ann, id, &edit_id, s1, "hello").await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(
        (e["data"]["kind"].as_str(), e["data"]["target"].as_u64()),
        (Some("edit"), Some(s1))
    );
    assert_eq!(seq(&e), s2 + 1, "the next seq of the room");
    let (status, again) = edit(&ann, id, &edit_id, s1, "hello").await;
    assert_eq!((status, seq(&again)), (200, seq(&e)), "a retry: {again}");

    // Everyone else is refused, and nothing is stored.
    let refusals = [
        (edit(&bob, id, &cid(), s1, "mine now").await, 403),
        (delete(&bob, id, &cid(), s1).await, 403),
        (edit(&anon, id, &cid(), s1, "anon").await, 401),
        (edit(&ann, id, &cid(), 999, "nothing there").await, 404),
        (
            edit(&ann, id, &cid(), seq(&e), "an edit is no message").await,
            404,
        ),
        (edit(&ann, id, &cid(), s1, " ").await, 400),
    ];
    for ((status, body), expected) in refusals {
        assert_eq!(status, expected, "{body}");
        assert!(body["message"].is_string(), "a typed error: {body}");
    }
    let read_only = server.token("ann", "read").await;
    let r = anon
        .client
        .post(server.url("/api/edit_message"))
        .bearer_auth(&read_only)
        .form(&[
            ("room_id", id.to_string()),
            ("client_id", cid()),
            ("target", s1.to_string()),
            ("body", "x".into()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a read-only token cannot edit");

    // Bob edits his own message, then deletes it; the owner deletes another.
    let (status, e2) = edit(&bob, id, &cid(), s2, "a secret, then").await;
    assert_eq!(status, 200, "{e2}");
    let (status, d2) = delete(&bob, id, &cid(), s2).await;
    assert_eq!(status, 200, "{d2}");
    assert_eq!(d2["data"]["by"], "bob");
    let (status, late) = edit(&bob, id, &cid(), s2, "too late").await;
    assert_eq!(status, 409, "a deleted message takes no edit: {late}");
    let (status, twice) = delete(&bob, id, &cid(), s2).await;
    assert_eq!(status, 409, "nor a second deletion: {twice}");
    let (_, m3) = bob.send(id, &cid(), "owner removes this").await;
    let owner_delete = cid();
    let (status, d3) = delete(&ann, id, &owner_delete, seq(&m3)).await;
    assert_eq!(status, 200, "the room's owner deletes any message: {d3}");
    let (status, again) = delete(&ann, id, &owner_delete, seq(&m3)).await;
    assert_eq!((status, seq(&again)), (200, seq(&d3)), "a retried deletion");

    // The snapshot shows messages as they stand.
    let events = snapshot(&anon, id).await;
    let first = at(&events, s1);
    assert_eq!(first["body"], "hello");
    assert_eq!(first["revised"].as_u64(), Some(seq(&e)));
    assert!(first["edited_at"].is_i64());
    let gone = at(&events, s2);
    assert_eq!(
        (gone["body"].as_str(), gone["deleted"].as_bool()),
        (Some(""), Some(true))
    );
    // Backfills too, and the deleted text is gone from the log: the message
    // and its edit.
    let (_, since) = anon
        .get(
            "events_since",
            &[
                ("topic", &format!("room:{id}")),
                ("epoch", &m1["version"]["epoch"].to_string()),
                ("seq", "0"),
            ],
        )
        .await;
    let text = since.to_string();
    assert!(
        !text.contains("secret") && !text.contains("bob's"),
        "{text}"
    );
    assert_eq!(
        at(since["events"].as_array().unwrap(), seq(&e2))["body"],
        ""
    );
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", server.db.display()))
        .await
        .unwrap();
    let stored: Vec<String> = sqlx::query_scalar("SELECT data FROM events")
        .fetch_all(&db)
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|d| !d.contains("secret") && !d.contains("bob's")),
        "{stored:?}"
    );

    // Live subscribers got every event once, in seq order.
    let mut kinds = Vec::new();
    let mut last = 0;
    while kinds.len() < 7 {
        match watcher.recv().await {
            ServerFrame::Event(ev) => {
                assert_eq!(ev.version.seq, last + 1);
                last = ev.version.seq;
                kinds.push(match ev.data {
                    EventData::Message(_) => "message",
                    EventData::Edit(_) => "edit",
                    EventData::Delete(_) => "delete",
                    _ => "other",
                });
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        kinds,
        ["message", "message", "edit", "edit", "delete", "message", "delete"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_and_deletions_over_the_websocket_are_acknowledged_or_refused() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let (_, room) = ann.post("create_room", &[("name", "live edits")]).await;
    let id = room["id"].as_i64().unwrap();
    let (_, m1) = ann.send(id, &cid(), "typo").await;
    let target = seq(&m1);
    let topic = Topic::room(id);
    let mut ann_ws = server.ws_for(&ann).await;
    let mut bob_ws = server.ws_as("bob").await;

    let client_id = Uuid::parse_str(&cid()).unwrap();
    ann_ws
        .send(&ClientFrame::Edit {
            topic,
            client_id,
            target,
            body: "fixed".into(),
        })
        .await;
    match ann_ws.recv().await {
        ServerFrame::Ack {
            client_id: c,
            event,
        } => {
            assert_eq!(c, client_id);
            assert!(
                matches!(event.data, EventData::Edit(ref e) if e.target == target && e.body == "fixed")
            );
        }
        other => panic!("{other:?}"),
    }
    let refused = Uuid::parse_str(&cid()).unwrap();
    bob_ws
        .send(&ClientFrame::Delete {
            topic,
            client_id: refused,
            target,
        })
        .await;
    match bob_ws.recv().await {
        ServerFrame::Error(e) => {
            assert_eq!(
                (e.code, e.client_id, e.topic),
                (ErrorCode::Forbidden, Some(refused), Some(topic))
            );
        }
        other => panic!("{other:?}"),
    }
    let deletion = Uuid::parse_str(&cid()).unwrap();
    ann_ws
        .send(&ClientFrame::Delete {
            topic,
            client_id: deletion,
            target,
        })
        .await;
    assert!(matches!(
        ann_ws.recv().await,
        ServerFrame::Ack { client_id, .. } if client_id == deletion
    ));
    let events = snapshot(&ann, id).await;
    assert_eq!(at(&events, target)["deleted"], true);
}
