//! Unit tests of the SQLite store against a real temporary database.
#![allow(clippy::unwrap_used)] // tests may unwrap

use super::super::{seed_demo, CommitGate, Feed, Hooks, PageLimit, Store, StoreError};
use super::*;
use crate::protocol::ChatMessage;
use std::sync::Arc;
use uuid::Uuid;

fn msg(id: u128, body: &str) -> EventData {
    EventData::Message(ChatMessage {
        client_id: Uuid::from_u128(id),
        author: "t".into(),
        body: body.into(),
        sent_at: 1,
        ..Default::default()
    })
}

async fn store_with(hooks: Hooks) -> (SqliteStore, Feed, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let (store, _pool, feed) = SqliteStore::open(&url, hooks).await.unwrap();
    (store, feed, dir)
}

async fn store() -> (SqliteStore, Feed, tempfile::TempDir) {
    store_with(Hooks::default()).await
}

/// A gated store with one room, shared with the spawned appends.
async fn gated() -> (
    Arc<SqliteStore>,
    Feed,
    Arc<CommitGate>,
    Topic,
    tempfile::TempDir,
) {
    let gate = CommitGate::closed();
    let (s, feed, dir) = store_with(Hooks {
        commit_gate: Some(gate.clone()),
    })
    .await;
    let s = Arc::new(s);
    let topic = Topic::room(s.create_room("r", 1, false).await.unwrap().id);
    (s, feed, gate, topic, dir)
}

/// Appends in a task of its own (a caller that can be cancelled).
fn spawn_append(
    s: &Arc<SqliteStore>,
    topic: Topic,
    data: EventData,
) -> tokio::task::JoinHandle<Result<super::super::Appended, StoreError>> {
    let s = s.clone();
    tokio::spawn(async move { s.append(topic, data).await })
}

/// A page limited by count only.
fn events(n: u32) -> PageLimit {
    PageLimit {
        events: n,
        bytes: usize::MAX,
    }
}

fn seqs(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.version.seq).collect()
}

#[tokio::test]
async fn appends_are_gapless_idempotent_and_on_the_feed_once() {
    let (s, mut feed, _d) = store().await;
    let topic = Topic::room(s.create_room("Lobby", 1, false).await.unwrap().id);
    let a = s.append(topic, msg(1, "a")).await.unwrap();
    let b = s.append(topic, msg(2, "b")).await.unwrap();
    assert_eq!((a.event.version.seq, b.event.version.seq), (1, 2));
    let again = s.append(topic, msg(1, "a, retried")).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.event, a.event, "a retry answers with the original");
    let c = s.append(topic, msg(3, "c")).await.unwrap();
    assert_eq!(c.event.version.seq, 3, "a retry leaves no gap");
    assert_eq!(s.head(topic).await.unwrap(), c.event.version);
    let mut published = Vec::new();
    while published.len() < 3 {
        published.extend(feed.next().await.unwrap());
    }
    assert_eq!(
        published,
        vec![a.event, b.event, c.event],
        "the retry published nothing"
    );
    s.close().await;
    assert!(feed.next().await.is_none(), "the feed ends with the store");
}

#[tokio::test]
async fn concurrent_appends_get_distinct_gapless_seqs_fed_in_commit_order() {
    let (s, mut feed, _d) = store().await;
    let s = Arc::new(s);
    let topic = Topic::room(s.create_room("busy", 1, false).await.unwrap().id);
    let tasks: Vec<_> = (0..40u128)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.append(topic, msg(i % 20, "x")).await.unwrap() })
        })
        .collect();
    let mut seqs_created = Vec::new();
    for t in tasks {
        let a = t.await.unwrap();
        if a.created {
            seqs_created.push(a.event.version.seq);
        }
    }
    seqs_created.sort();
    assert_eq!(seqs_created, (1..=20).collect::<Vec<u64>>());
    let mut published = Vec::new();
    while published.len() < 20 {
        published.extend(feed.next().await.unwrap());
    }
    assert_eq!(seqs(&published), (1..=20).collect::<Vec<u64>>());
}

#[tokio::test]
async fn a_cancelled_append_is_still_committed_and_published() {
    let (s, mut feed, gate, topic, _d) = gated().await;
    let caller = spawn_append(&s, topic, msg(9, "cancelled"));
    gate.arrived(1).await;
    caller.abort();
    gate.abandoned(1).await;
    gate.open();
    let published = feed.next().await.unwrap();
    assert_eq!(seqs(&published), vec![1]);
    // The caller's retry finds the event and publishes nothing new.
    let retry = s.append(topic, msg(9, "cancelled")).await.unwrap();
    assert!(!retry.created);
    assert_eq!(retry.event, published[0]);
    let next = s.append(topic, msg(10, "next")).await.unwrap();
    assert_eq!(
        seqs(&feed.next().await.unwrap()),
        vec![next.event.version.seq]
    );
}

#[tokio::test]
async fn a_refused_append_does_not_fail_its_batch() {
    let (s, mut feed, gate, topic, _d) = gated().await;
    // The first batch holds one append; the rest queue up behind the gate
    // and are committed together.
    let first = spawn_append(&s, topic, msg(1, "first"));
    gate.arrived(1).await;
    let good = spawn_append(&s, topic, msg(2, "good"));
    let missing = spawn_append(&s, Topic::room(999), msg(3, "nowhere"));
    let tick = crate::protocol::Tick { price: 1.0, ts: 1 };
    let tick = spawn_append(&s, topic, EventData::Tick(tick));
    gate.open();
    assert!(first.await.unwrap().unwrap().created);
    assert_eq!(good.await.unwrap().unwrap().event.version.seq, 2);
    assert!(matches!(
        missing.await.unwrap(),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(tick.await.unwrap(), Err(StoreError::Invalid(_))));
    let mut published = Vec::new();
    while published.len() < 2 {
        published.extend(feed.next().await.unwrap());
    }
    assert_eq!(seqs(&published), vec![1, 2]);
}

#[tokio::test]
async fn pages_and_since() {
    let (s, _feed, _d) = store().await;
    let topic = Topic::room(s.create_room("r", 1, false).await.unwrap().id);
    for i in 1..=5 {
        s.append(topic, msg(i, "m")).await.unwrap();
    }
    let head = s.head(topic).await.unwrap();
    let p = s.page(topic, None, 2).await.unwrap();
    assert_eq!(p.version, head);
    assert_eq!(seqs(&p.events), vec![4, 5]);
    assert!(p.has_older);
    let older = s.page(topic, Some(4), 10).await.unwrap();
    assert_eq!(older.events.len(), 3);
    assert!(!older.has_older);
    let b = s
        .since(topic, Version::new(head.epoch, 2), events(2))
        .await
        .unwrap();
    assert_eq!(seqs(&b.events), vec![3, 4]);
    assert!(b.has_more && !b.reset);
    let reset = s
        .since(
            topic,
            Version::new(head.epoch.wrapping_add(1), 2),
            events(2),
        )
        .await
        .unwrap();
    assert!(reset.reset && reset.events.is_empty());
    let ahead = s
        .since(topic, Version::new(head.epoch, 99), events(2))
        .await
        .unwrap();
    assert!(ahead.reset);
}

#[tokio::test]
async fn room_names_are_unique_ignoring_case_and_missing_things_are_not_found() {
    let (s, _feed, _d) = store().await;
    s.create_room("Lobby", 1, false).await.unwrap();
    assert!(matches!(
        s.create_room("lobby", 1, false).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(s.room(999).await, Err(StoreError::NotFound(_))));
    assert!(matches!(
        s.head(Topic::room(999)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.append(Topic::room(999), msg(1, "x")).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn data_survives_reopen_seed_runs_once_and_a_closed_store_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let (s, _pool, _feed) = SqliteStore::open(&url, Hooks::default()).await.unwrap();
    assert!(seed_demo(&s).await.unwrap());
    let before = s.list_rooms(None, 10, None).await.unwrap().rooms;
    s.close().await;
    assert!(matches!(
        s.append(Topic::room(1), msg(77, "late")).await,
        Err(StoreError::Closed)
    ));
    let (s, _pool, _feed) = SqliteStore::open(&url, Hooks::default()).await.unwrap();
    assert!(!seed_demo(&s).await.unwrap());
    assert_eq!(s.list_rooms(None, 10, None).await.unwrap().rooms, before);
    let first = s.list_rooms(None, 1, None).await.unwrap();
    assert_eq!(
        (first.rooms.len(), first.next),
        (1, Some(before[0].room.id))
    );
    let second = s.list_rooms(first.next, 1, None).await.unwrap();
    assert_eq!(
        (second.rooms[0].room.id, second.next),
        (before[1].room.id, None)
    );
    assert_eq!(before.len(), 2);
}

#[tokio::test]
async fn pages_are_bounded_in_bytes_too() {
    let (s, _feed, _d) = store().await;
    let topic = Topic::room(s.create_room("long", 1, false).await.unwrap().id);
    let long = "x".repeat(1000);
    for i in 1..=10 {
        s.append(topic, msg(i, &long)).await.unwrap();
    }
    let v = s.head(topic).await.unwrap();
    let limit = PageLimit {
        events: 100,
        bytes: 2500,
    };
    let page = s
        .since(topic, Version::new(v.epoch, 0), limit)
        .await
        .unwrap();
    // Each event is about 1,100 bytes of JSON: three reach the budget.
    assert_eq!(seqs(&page.events), vec![1, 2, 3]);
    assert!(page.has_more);
    let rest = s
        .since(topic, Version::new(v.epoch, 9), limit)
        .await
        .unwrap();
    assert_eq!((seqs(&rest.events), rest.has_more), (vec![10], false));
}
