//! `Store`: durable state behind one trait (ssr only). It persists events and
//! assigns their versions atomically, answers snapshots and backfills, and
//! emits every committed event on its `Feed`.
//!
//! Contract for every backend:
//! - `append` assigns `seq = head + 1` in the same transaction that inserts the
//!   event, so seqs are gapless and a committed seq is never reused. A second
//!   append with the same `(topic, client_id)` changes nothing and returns the
//!   original event with `created = false`.
//! - A change event (`edit`, `delete`) is checked against its target in the
//!   same transaction (it must be a message of the topic, not deleted; an
//!   edit must come from its author), and the target's stored entry is
//!   brought to its current state (`protocol::fold`) in that transaction:
//!   snapshots and backfills show messages as they stand, with `revised`
//!   naming the last change reflected. A deletion also erases the text of
//!   the message's earlier edits. No event is ever removed or renumbered.
//! - **Every committed event reaches the `Feed`, in commit order, exactly
//!   once**, whatever happens to the caller: the write runs in the store's own
//!   task, so a caller that is cancelled (a dropped HTTP request) cannot stop
//!   the commit from being published. A retry that finds its event publishes
//!   nothing. `append` answers only after the event is on the feed.
//! - `page` and `since` read the head and the events in one read transaction,
//!   so the version they report matches the events they return.
//! - Backends are chosen once, from the database URL's scheme (`open`).
//!
//! Implementations are `Send + Sync` and shared by every request and session.

mod hooks;
mod sqlite;
mod writer;

pub use hooks::{CommitGate, Hooks};
pub use sqlite::SqliteStore;

use crate::model::{Backfill, Room, RoomList, Snapshot};
use crate::protocol::{ChatMessage, Event, EventData, Topic, Unread, Version};
use crate::server::accounts::{Accounts, SqliteAccounts, SYSTEM_USER};
use async_trait::async_trait;
use std::sync::Arc;
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("unsupported database URL `{0}` (expected sqlite://...)")]
    UnsupportedUrl(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The batch holding this write could not be committed; nothing of it was stored.
    #[error("commit failed: {0}")]
    Commit(String),
    /// The store is closed (the server is stopping).
    #[error("the store is closed")]
    Closed,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// How much one read of a log may return: at most `events` events, and no
/// more events once `bytes` bytes of event data are read (so a page is at
/// most `bytes` plus one event). Bounds the memory one request can pin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLimit {
    pub events: u32,
    pub bytes: usize,
}

/// The result of an append.
#[derive(Clone, Debug, PartialEq)]
pub struct Appended {
    pub event: Event,
    /// `false` when the client id was already stored: `event` is the original.
    pub created: bool,
}

/// Committed events, in commit order, in the batches they were committed in.
/// The broker consumes it (`broker::pump`); it ends when the store closes.
pub struct Feed(pub(crate) mpsc::Receiver<Vec<Event>>);

impl Feed {
    /// The next committed batch; `None` once the store is closed.
    pub async fn next(&mut self) -> Option<Vec<Event>> {
        self.0.recv().await
    }
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Up to `limit` rooms with an id above `after` (from the first if
    /// `None`) that `viewer` may see: public rooms, and private rooms the
    /// viewer is a member of.
    async fn list_rooms(
        &self,
        after: Option<i64>,
        limit: u32,
        viewer: Option<i64>,
    ) -> Result<RoomList, StoreError>;
    /// Creates a room owned by `owner_id`, and its topic; a private room
    /// gets its owner as first member. Names are unique, by `name_key`.
    async fn create_room(
        &self,
        name: &str,
        owner_id: i64,
        private: bool,
    ) -> Result<Room, StoreError>;
    async fn room(&self, id: i64) -> Result<Room, StoreError>;
    /// Persists an event, assigns its version and emits it on the feed (see
    /// the module contract).
    async fn append(&self, topic: Topic, data: EventData) -> Result<Appended, StoreError>;
    /// Message `seq` of `topic` as it stands now (edits applied, or
    /// deleted); `NotFound` if that seq is not a message.
    async fn message(&self, topic: Topic, seq: u64) -> Result<ChatMessage, StoreError>;
    /// Moves `user`'s read position in `room` up to `seq` (never down, and
    /// never past the head); returns the position stored.
    async fn mark_read(&self, user: i64, room: i64, seq: u64) -> Result<u64, StoreError>;
    /// `user`'s unread messages in every room it has read and may still
    /// read (public, or a member): rooms with none are left out.
    async fn unread(&self, user: i64) -> Result<Unread, StoreError>;
    /// The accounts that have a read position in `room`.
    async fn readers(&self, room: i64) -> Result<Vec<i64>, StoreError>;
    /// The topic's current head.
    async fn head(&self, topic: Topic) -> Result<Version, StoreError>;
    /// Up to `limit` newest events with `seq < before` (all, if `None`).
    async fn page(
        &self,
        topic: Topic,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Snapshot, StoreError>;
    /// Events after `after`, within `limit`, or `reset` if `after` cannot be
    /// continued. `has_more` says a limit cut the page short.
    async fn since(
        &self,
        topic: Topic,
        after: Version,
        limit: PageLimit,
    ) -> Result<Backfill, StoreError>;
    /// Finishes the writes already queued, ends the feed, and closes.
    /// Called once at shutdown, after every session has ended.
    async fn close(&self);
}

/// What `open` returns: the store, the accounts on the same database, and
/// the store's commit feed.
pub type Opened = (Arc<dyn Store>, Arc<dyn Accounts>, Feed);

/// Opens the store named by `url`, creating and migrating it as needed, and
/// returns it with its accounts and feed. Every store operation's latency is
/// recorded (`tandem_store_seconds`).
pub async fn open(url: &str, hooks: Hooks) -> Result<Opened, StoreError> {
    if url.starts_with("sqlite:") {
        let (store, pool, feed) = SqliteStore::open(url, hooks).await?;
        Ok((
            Arc::new(Timed(store)),
            Arc::new(SqliteAccounts::new(pool)),
            feed,
        ))
    } else {
        Err(StoreError::UnsupportedUrl(url.to_owned()))
    }
}

/// A store that records the latency of every operation of the one it wraps.
pub struct Timed<S>(pub S);

async fn timed<T>(op: &'static str, f: impl std::future::Future<Output = T>) -> T {
    let start = std::time::Instant::now();
    let out = f.await;
    crate::server::metrics::store_op(op, start.elapsed().as_secs_f64());
    out
}

#[async_trait]
impl<S: Store> Store for Timed<S> {
    async fn list_rooms(
        &self,
        after: Option<i64>,
        limit: u32,
        viewer: Option<i64>,
    ) -> Result<RoomList, StoreError> {
        timed("list_rooms", self.0.list_rooms(after, limit, viewer)).await
    }
    async fn create_room(
        &self,
        name: &str,
        owner_id: i64,
        private: bool,
    ) -> Result<Room, StoreError> {
        timed("create_room", self.0.create_room(name, owner_id, private)).await
    }
    async fn room(&self, id: i64) -> Result<Room, StoreError> {
        timed("room", self.0.room(id)).await
    }
    async fn append(&self, topic: Topic, data: EventData) -> Result<Appended, StoreError> {
        timed("append", self.0.append(topic, data)).await
    }
    async fn message(&self, topic: Topic, seq: u64) -> Result<ChatMessage, StoreError> {
        timed("message", self.0.message(topic, seq)).await
    }
    async fn mark_read(&self, user: i64, room: i64, seq: u64) -> Result<u64, StoreError> {
        timed("mark_read", self.0.mark_read(user, room, seq)).await
    }
    async fn unread(&self, user: i64) -> Result<Unread, StoreError> {
        timed("unread", self.0.unread(user)).await
    }
    async fn readers(&self, room: i64) -> Result<Vec<i64>, StoreError> {
        timed("readers", self.0.readers(room)).await
    }
    async fn head(&self, topic: Topic) -> Result<Version, StoreError> {
        timed("head", self.0.head(topic)).await
    }
    async fn page(
        &self,
        topic: Topic,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Snapshot, StoreError> {
        timed("page", self.0.page(topic, before, limit)).await
    }
    async fn since(
        &self,
        topic: Topic,
        after: Version,
        limit: PageLimit,
    ) -> Result<Backfill, StoreError> {
        timed("since", self.0.since(topic, after, limit)).await
    }
    async fn close(&self) {
        self.0.close().await
    }
}

/// Fills an empty database with two demo rooms and a few messages.
pub async fn seed_demo(store: &dyn Store) -> Result<bool, StoreError> {
    if !store.list_rooms(None, 1, None).await?.rooms.is_empty() {
        return Ok(false);
    }
    let now = now_ms();
    let rooms: [(&str, &[(&str, &str)]); 2] = [
        (
            "general",
            &[
                (
                    "tandem",
                    "Welcome to tandem! Messages here are live in every open tab.",
                ),
                ("ada", "Open this room in two windows and say hello."),
                (
                    "grace",
                    "Kill your network for a moment: nothing gets lost.",
                ),
            ],
        ),
        (
            "random",
            &[("tandem", "Anything goes."), ("linus", "First!")],
        ),
    ];
    for (name, messages) in rooms {
        let room = store.create_room(name, SYSTEM_USER, false).await?;
        for (i, (author, body)) in messages.iter().enumerate() {
            let data = EventData::Message(crate::protocol::ChatMessage {
                client_id: uuid::Uuid::from_u128(((room.id as u128) << 64) | i as u128),
                author: (*author).into(),
                body: (*body).into(),
                sent_at: now,
                ..Default::default()
            });
            store.append(Topic::room(room.id), data).await?;
        }
    }
    Ok(true)
}

/// Unix time in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
