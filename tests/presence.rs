//! Presence and typing over real WebSockets: each account listed once
//! however many connections, typing that ends on a post or by itself,
//! departures on close and on silence (a crashed tab), access tokens never
//! listed, and the room's read rule on the `presence:` topic.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{cid, TestServer, Ws};
use tandem::protocol::{ClientFrame, ErrorCode, Event, EventData, Present, ServerFrame, Topic};

/// The accounts of the next presence event on `ws`.
async fn next_users(ws: &mut Ws) -> Vec<Present> {
    loop {
        match ws.recv().await {
            ServerFrame::Event(Event {
                data: EventData::Presence(p),
                ..
            }) => {
                assert_eq!(p.count as usize, p.users.len());
                return p.users;
            }
            ServerFrame::Subscribed { .. }
            | ServerFrame::Unsubscribed { .. }
            | ServerFrame::Event(_) => continue,
            other => panic!("expected presence, got {other:?}"),
        }
    }
}

/// The next presence event on `ws`, as (name, typing) pairs.
async fn next_presence(ws: &mut Ws) -> Vec<(String, bool)> {
    let users = next_users(ws).await;
    users.into_iter().map(|u| (u.name, u.typing)).collect()
}

/// Presence events on `ws` until one equals `want` (changes are coalesced,
/// so intermediate states may or may not be seen).
async fn until_presence(ws: &mut Ws, want: &[(&str, bool)]) {
    let want: Vec<(String, bool)> = want.iter().map(|(n, t)| (n.to_string(), *t)).collect();
    loop {
        if next_presence(ws).await == want {
            return;
        }
    }
}

async fn subscribe(ws: &mut Ws, topic: Topic) {
    ws.send(&ClientFrame::Subscribe { topic, since: None })
        .await;
}

fn list(names: &[(&str, bool)]) -> Vec<(String, bool)> {
    names.iter().map(|(n, t)| (n.to_string(), *t)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_lists_accounts_once_with_typing_and_departures() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let (_, room) = ann.post("create_room", &[("name", "here")]).await;
    let id = room["id"].as_i64().unwrap();
    let (topic, presence) = (Topic::room(id), Topic::presence(id));

    // An anonymous watcher of the presence topic (a public room: anyone reads).
    let mut watcher = server.ws().await;
    subscribe(&mut watcher, presence).await;
    match watcher.recv().await {
        ServerFrame::Subscribed { policy, .. } => {
            assert_eq!(policy, tandem::protocol::Policy::LatestWins)
        }
        other => panic!("{other:?}"),
    }

    // Two tabs of ann, one of bob, and a token connection of carol.
    let mut ann_1 = server.ws_for(&ann).await;
    let mut ann_2 = server.ws_for(&ann).await;
    let mut bob = server.ws_as("bob").await;
    let token = server.token("carol", "read,write").await;
    let mut carol = server.ws_token(&token).await;
    for ws in [&mut ann_1, &mut ann_2, &mut bob, &mut carol] {
        subscribe(ws, topic).await;
    }
    until_presence(&mut watcher, &[("ann", false), ("bob", false)]).await;

    // A late subscriber gets the current state at once (latest wins).
    let mut late = server.ws().await;
    subscribe(&mut late, presence).await;
    assert_eq!(
        next_presence(&mut late).await,
        list(&[("ann", false), ("bob", false)])
    );

    // Typing shows, and a post ends it.
    bob.send(&ClientFrame::Typing { topic }).await;
    until_presence(&mut watcher, &[("ann", false), ("bob", true)]).await;
    bob.send(&ClientFrame::Send {
        topic,
        client_id: cid().parse().unwrap(),
        body: "hi".into(),
    })
    .await;
    until_presence(&mut watcher, &[("ann", false), ("bob", false)]).await;

    // One of ann's tabs closes: she is still here. Bob's only tab closes:
    // he leaves.
    ann_1.stream.close(None).await.unwrap();
    drop(ann_1);
    bob.stream.close(None).await.unwrap();
    drop(bob);
    assert_eq!(
        next_presence(&mut watcher).await,
        list(&[("ann", false)]),
        "the next state: ann (once), no bob, never carol's token"
    );

    drop(ann_2);
    until_presence(&mut watcher, &[]).await;
    drop(carol);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_connection_leaves_presence_within_the_heartbeat_timeout() {
    let server = TestServer::with(|s| {
        s.heartbeat_interval_ms = 300;
        s.heartbeat_timeout_ms = 1_000;
    })
    .await;
    let ann = server.user("ann").await;
    let (_, room) = ann.post("create_room", &[("name", "crash")]).await;
    let id = room["id"].as_i64().unwrap();
    let mut watcher = server.ws().await;
    subscribe(&mut watcher, Topic::presence(id)).await;
    // A tab that crashed: the socket stays open, and nothing more is sent.
    let mut crashed = server.ws_for(&ann).await;
    subscribe(&mut crashed, Topic::room(id)).await;
    let mut seen_ann = false;
    loop {
        // The watcher answers pings, so only the silent socket times out.
        match watcher.recv_raw().await {
            ServerFrame::Ping {} => watcher.send(&ClientFrame::Pong {}).await,
            ServerFrame::Event(Event {
                data: EventData::Presence(p),
                ..
            }) => {
                let names: Vec<&str> = p.users.iter().map(|u| u.name.as_str()).collect();
                if names == ["ann"] {
                    seen_ann = true;
                } else if seen_ann && names.is_empty() {
                    break;
                }
            }
            ServerFrame::Subscribed { .. } | ServerFrame::Event(_) => {}
            other => panic!("{other:?}"),
        }
    }
    drop(crashed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_follows_the_rooms_rules() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let (_, secret) = ann
        .post("create_room", &[("name", "hush"), ("private", "on")])
        .await;
    let id = secret["id"].as_i64().unwrap();
    let mut outsider = server.ws_as("bob").await;
    subscribe(&mut outsider, Topic::presence(id)).await;
    match outsider.recv().await {
        ServerFrame::Error(e) => assert_eq!(e.code, ErrorCode::NotFound),
        other => panic!("a private room's presence is not found for others: {other:?}"),
    }
    outsider
        .send(&ClientFrame::Typing {
            topic: Topic::room(id),
        })
        .await;
    match outsider.recv().await {
        ServerFrame::Error(e) => assert_eq!(e.code, ErrorCode::NotFound),
        other => panic!("{other:?}"),
    }
    let mut member = server.ws_for(&ann).await;
    member
        .send(&ClientFrame::Typing {
            topic: Topic::presence(id),
        })
        .await;
    match member.recv().await {
        ServerFrame::Error(e) => assert_eq!(e.code, ErrorCode::Validation),
        other => panic!("typing goes to the room's topic: {other:?}"),
    }
    let mut anon = server.ws().await;
    anon.send(&ClientFrame::Typing {
        topic: Topic::room(1),
    })
    .await;
    match anon.recv().await {
        ServerFrame::Error(e) => assert_eq!(e.code, ErrorCode::Unauthenticated),
        other => panic!("{other:?}"),
    }
}

/// The next presence event on `ws`, as (name, away) pairs.
async fn next_away(ws: &mut Ws) -> Vec<(String, bool)> {
    let users = next_users(ws).await;
    users.into_iter().map(|u| (u.name, u.away)).collect()
}

async fn until_away(ws: &mut Ws, want: &[(&str, bool)]) {
    let want = list(want);
    while next_away(ws).await != want {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resting_tab_shows_its_account_away_until_it_comes_back_or_closes() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let (_, room) = ann.post("create_room", &[("name", "nap")]).await;
    let id = room["id"].as_i64().unwrap();
    let topic = Topic::room(id);
    let mut watcher = server.ws().await;
    subscribe(&mut watcher, Topic::presence(id)).await;
    let mut tab = server.ws_for(&ann).await;
    subscribe(&mut tab, topic).await;
    until_away(&mut watcher, &[("ann", false)]).await;

    // Hidden: the tab leaves the room's topic to rest, and shows away.
    tab.send(&ClientFrame::Unsubscribe { topic, away: true })
        .await;
    assert_eq!(next_away(&mut watcher).await, list(&[("ann", true)]));
    // Typing from a hidden page is not shown.
    tab.send(&ClientFrame::Typing { topic }).await;
    // Shown again: back, from where it was.
    subscribe(&mut tab, topic).await;
    let back = next_users(&mut watcher).await;
    assert_eq!(
        back.iter()
            .map(|u| (u.name.as_str(), u.away, u.typing))
            .collect::<Vec<_>>(),
        [("ann", false, false)],
        "back, and the typing sent while hidden was not shown"
    );

    // A plain unsubscribe leaves the room.
    tab.send(&ClientFrame::Unsubscribe { topic, away: false })
        .await;
    assert_eq!(next_away(&mut watcher).await, list(&[]));

    // Resting, then the tab closes: gone, no ghost.
    subscribe(&mut tab, topic).await;
    until_away(&mut watcher, &[("ann", false)]).await;
    tab.send(&ClientFrame::Unsubscribe { topic, away: true })
        .await;
    until_away(&mut watcher, &[("ann", true)]).await;
    tab.stream.close(None).await.unwrap();
    drop(tab);
    assert_eq!(next_away(&mut watcher).await, list(&[]));
}
