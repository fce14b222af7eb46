//! Read positions and unread counts over real HTTP and WebSocket: a read
//! position only moves forward (and never past the head), the room list and
//! the account's `user:` summary topic count messages by others after it
//! (deletions uncounted), summaries are private, and a room the account
//! loses access to leaves its summary.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{cid, Http, TestServer, Ws};
use serde_json::Value;
use tandem::protocol::{ClientFrame, ErrorCode, Event, EventData, ServerFrame, Topic, Unread};

async fn mark_read(http: &Http, room: i64, seq: u64) -> (u16, Value) {
    http.post(
        "mark_read",
        &[("room_id", &room.to_string()), ("seq", &seq.to_string())],
    )
    .await
}

/// Unread summaries on `ws` until one equals `want` ((room, count) pairs).
async fn until_unread(ws: &mut Ws, want: &[(i64, u32)]) -> Unread {
    loop {
        match ws.recv().await {
            ServerFrame::Event(Event {
                data: EventData::Unread(u),
                ..
            }) => {
                let got: Vec<(i64, u32)> = u.rooms.iter().map(|r| (r.room_id, r.count)).collect();
                assert_eq!(u.total, got.iter().map(|(_, c)| c).sum::<u32>());
                if got == want {
                    return u;
                }
            }
            ServerFrame::Subscribed { .. } => {}
            other => panic!("{other:?}"),
        }
    }
}

fn room_in(list: &Value, id: i64) -> Value {
    list["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["room"]["id"] == id)
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_counts_follow_read_positions_and_messages() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let (_, r1) = ann.post("create_room", &[("name", "one")]).await;
    let (_, r2) = ann.post("create_room", &[("name", "two")]).await;
    let (r1, r2) = (r1["id"].as_i64().unwrap(), r2["id"].as_i64().unwrap());
    bob.send(r1, &cid(), "before ann came").await;
    bob.send(r2, &cid(), "in two").await;

    // Never read: no count, but the newest message shows.
    let (_, list) = ann.get("list_rooms", &[]).await;
    let one = room_in(&list, r1);
    assert_eq!(one["unread"], Value::Null);
    assert_eq!(one["last"]["author"], "bob");
    assert_eq!(one["last"]["preview"], "before ann came");

    let me = ann.get("whoami", &[]).await.1["id"].as_i64().unwrap();
    let mut summary = server.ws_for(&ann).await;
    summary
        .send(&ClientFrame::Subscribe {
            topic: Topic::user(me),
            since: None,
        })
        .await;
    match summary.recv().await {
        ServerFrame::Subscribed { version, .. } => assert_eq!(version.seq, 0),
        other => panic!("no summary before anything happened: {other:?}"),
    }

    // Ann reads room one (past the head is capped at the head).
    let (status, stored) = mark_read(&ann, r1, 999).await;
    assert_eq!((status, stored.as_u64()), (200, Some(1)));
    let (_, list) = ann.get("list_rooms", &[]).await;
    assert_eq!(room_in(&list, r1)["unread"], 0);
    assert_eq!(room_in(&list, r1)["read_seq"], 1);
    assert_eq!(room_in(&list, r2)["unread"], Value::Null);

    // Bob writes three; ann writes one (hers do not count); bob deletes one.
    let mut last = Value::Null;
    for n in 0..3 {
        last = bob.send(r1, &cid(), &format!("news {n}")).await.1;
    }
    until_unread(&mut summary, &[(r1, 3)]).await;
    ann.send(r1, &cid(), "mine").await;
    let target = last["version"]["seq"].to_string();
    let (status, _) = bob
        .post(
            "delete_message",
            &[
                ("room_id", &r1.to_string()),
                ("client_id", &cid()),
                ("target", &target),
            ],
        )
        .await;
    assert_eq!(status, 200);
    until_unread(&mut summary, &[(r1, 2)]).await;
    let (_, list) = ann.get("list_rooms", &[]).await;
    assert_eq!(room_in(&list, r1)["unread"], 2);

    // Positions never move back; reading to the end clears the count.
    let head = room_in(&list, r1)["messages"].as_u64().unwrap();
    assert_eq!(mark_read(&ann, r1, head).await.1.as_u64(), Some(head));
    assert_eq!(mark_read(&ann, r1, 1).await.1.as_u64(), Some(head));
    until_unread(&mut summary, &[]).await;

    // Summaries are private; reading needs an account and a readable room.
    let mut nosy = server.ws_for(&bob).await;
    nosy.send(&ClientFrame::Subscribe {
        topic: Topic::user(me),
        since: None,
    })
    .await;
    match nosy.recv().await {
        ServerFrame::Error(e) => assert_eq!(e.code, ErrorCode::NotFound),
        other => panic!("{other:?}"),
    }
    assert_eq!(mark_read(&Http::new(&server), r1, 1).await.0, 401);
    assert_eq!(mark_read(&ann, 9999, 1).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_the_account_loses_leaves_its_summary() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let bob = server.user("bob").await;
    let (_, room) = ann
        .post("create_room", &[("name", "inner"), ("private", "on")])
        .await;
    let id = room["id"].as_i64().unwrap();
    let (status, member) = ann
        .post(
            "invite_member",
            &[("room_id", &id.to_string()), ("name", "bob")],
        )
        .await;
    assert_eq!(status, 200, "{member}");
    let bob_id = member["user_id"].as_i64().unwrap();
    assert_eq!(mark_read(&bob, id, 0).await.0, 200);
    let mut summary = server.ws_for(&bob).await;
    summary
        .send(&ClientFrame::Subscribe {
            topic: Topic::user(bob_id),
            since: None,
        })
        .await;
    ann.send(id, &cid(), "for members").await;
    until_unread(&mut summary, &[(id, 1)]).await;
    let (status, _) = ann
        .post(
            "remove_member",
            &[
                ("room_id", &id.to_string()),
                ("user_id", &bob_id.to_string()),
            ],
        )
        .await;
    assert_eq!(status, 200);
    until_unread(&mut summary, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_public_room_is_announced_on_the_lobby() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let mut lobby = server.ws().await;
    lobby
        .send(&ClientFrame::Subscribe {
            topic: Topic::Lobby,
            since: None,
        })
        .await;
    assert!(matches!(lobby.recv().await, ServerFrame::Subscribed { .. }));
    // A private room is not announced; the public one after it is.
    ann.post("create_room", &[("name", "quiet"), ("private", "on")])
        .await;
    let (_, room) = ann.post("create_room", &[("name", "loud")]).await;
    match lobby.recv().await {
        ServerFrame::Event(Event {
            data: EventData::Lobby(l),
            ..
        }) => assert_eq!(l.newest_room, room["id"].as_i64().unwrap()),
        other => panic!("{other:?}"),
    }
    // Nobody writes to it but the server.
    let token = server.token(common::PUBLISHER, "read,write,publish").await;
    let mut ws = server.ws_token(&token).await;
    ws.send(&ClientFrame::Publish {
        topic: Topic::Lobby,
        tick: tandem::protocol::Tick { price: 1.0, ts: 0 },
    })
    .await;
    assert!(matches!(ws.recv().await, ServerFrame::Error(_)));
}
