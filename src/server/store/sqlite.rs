//! The embedded SQLite store (ssr only): one database file, created on first
//! run, WAL mode, migrations from `migrations/sqlite` embedded in the binary.
//!
//! Concurrency: reads use a pool of connections. Every append goes through
//! one writer task (`writer.rs`), which commits appends in batches and puts
//! each committed batch on the feed before it answers the callers; SQLite
//! serializes writers anyway, so one writer costs no parallelism and makes
//! commit order and feed order the same thing.

use super::writer::{self, Append};
use super::{now_ms, Appended, Feed, Hooks, PageLimit, Store, StoreError};
use crate::model::{Backfill, LastMessage, Room, RoomList, RoomSummary, Snapshot, PREVIEW_CHARS};
use crate::protocol::{
    ChatMessage, Event, EventData, RoomUnread, Topic, Unread, Version, UNREAD_CAP,
};
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Appends waiting for the writer, at most; callers wait for room beyond it.
const WRITE_QUEUE: usize = 4096;
/// Committed batches waiting for the broker, at most; the writer waits beyond it.
const FEED_QUEUE: usize = 1024;

pub struct SqliteStore {
    pool: SqlitePool,
    /// `None` once closing: appends then fail with `Closed`.
    writes: Mutex<Option<mpsc::Sender<Append>>>,
    writer: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `url`, and
    /// starts its writer.
    pub async fn open(url: &str, hooks: Hooks) -> Result<(Self, SqlitePool, Feed), StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before the write is acknowledged.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        rekey(&pool, "rooms").await?;
        rekey(&pool, "users").await?;
        let (writes, queue) = mpsc::channel(WRITE_QUEUE);
        let (feed_tx, feed_rx) = mpsc::channel(FEED_QUEUE);
        let writer = tokio::spawn(writer::run(pool.clone(), queue, feed_tx, hooks));
        let store = SqliteStore {
            pool: pool.clone(),
            writes: Mutex::new(Some(writes)),
            writer: tokio::sync::Mutex::new(Some(writer)),
        };
        Ok((store, pool, Feed(feed_rx)))
    }
}

pub(super) fn decode_event(
    topic: Topic,
    epoch: u32,
    seq: i64,
    data: &str,
) -> Result<Event, StoreError> {
    let data: EventData = serde_json::from_str(data)
        .map_err(|e| StoreError::Corrupt(format!("{topic} seq {seq}: {e}")))?;
    Ok(Event {
        topic,
        version: Version::new(epoch, seq as u64),
        data,
    })
}

fn new_epoch() -> u32 {
    rand::random_range(1..(1u32 << 31))
}

async fn head_in<'c, E>(conn: E, topic: Topic) -> Result<Version, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    let row = sqlx::query("SELECT epoch, head FROM topics WHERE name = ?")
        .bind(topic.to_string())
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("topic {topic}")))?;
    Ok(Version::new(
        row.get::<i64, _>(0) as u32,
        row.get::<i64, _>(1) as u64,
    ))
}

/// Brings every room's (or account's) uniqueness key up to the current rule
/// (`validate::name_key`), for databases written under an older one. A name
/// whose new key is taken already keeps its old key (and is logged).
async fn rekey(pool: &SqlitePool, table: &'static str) -> Result<(), StoreError> {
    let rows = sqlx::query(&format!("SELECT id, name, name_key FROM {table}"))
        .fetch_all(pool)
        .await?;
    for row in rows {
        let (id, name, key): (i64, String, String) = (row.get(0), row.get(1), row.get(2));
        let fresh = crate::server::validate::name_key(&name);
        if fresh == key {
            continue;
        }
        let updated = sqlx::query(&format!("UPDATE {table} SET name_key = ? WHERE id = ?"))
            .bind(&fresh)
            .bind(id)
            .execute(pool)
            .await;
        match updated {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tracing::warn!(table, id, name = %name, "a name looks like another; keeping its old key");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Messages by others than `user` after `seq` in `room`, not deleted, at
/// most `UNREAD_CAP` counted.
async fn unread_in(pool: &SqlitePool, user: i64, room: i64, seq: u64) -> Result<u32, StoreError> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT 1 FROM events WHERE topic = ? AND seq > ? \
         AND json_extract(data, '$.kind') = 'message' \
         AND json_extract(data, '$.author_id') IS NOT ? \
         AND json_extract(data, '$.deleted') IS NOT 1 LIMIT ?)",
    )
    .bind(Topic::room(room).to_string())
    .bind(seq.min(i64::MAX as u64) as i64)
    .bind(user)
    .bind(UNREAD_CAP as i64)
    .fetch_one(pool)
    .await?;
    Ok(count as u32)
}

fn room_from(row: &sqlx::sqlite::SqliteRow) -> Room {
    Room {
        id: row.get("id"),
        name: row.get("name"),
        created_at: row.get("created_at"),
        owner_id: row.get("owner_id"),
        private: row.get::<i64, _>("private") != 0,
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn list_rooms(
        &self,
        after: Option<i64>,
        limit: u32,
        viewer: Option<i64>,
    ) -> Result<RoomList, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.name, r.created_at, r.owner_id, r.private, t.head, rd.seq AS read_seq, \
             (SELECT e.data FROM events e WHERE e.topic = t.name \
              AND json_extract(e.data, '$.kind') = 'message' ORDER BY e.seq DESC LIMIT 1) AS last \
             FROM rooms r JOIN topics t ON t.name = 'room:' || r.id \
             LEFT JOIN reads rd ON rd.room_id = r.id AND rd.user_id = ? WHERE r.id > ? \
             AND (r.private = 0 OR EXISTS (SELECT 1 FROM members m WHERE m.room_id = r.id AND m.user_id = ?)) \
             ORDER BY r.id LIMIT ?",
        )
        .bind(viewer.unwrap_or(0))
        .bind(after.unwrap_or(0))
        .bind(viewer.unwrap_or(0))
        .bind(limit as i64 + 1)
        .fetch_all(&self.pool)
        .await?;
        let mut rooms = Vec::with_capacity(rows.len());
        for row in rows.iter().take(limit as usize) {
            let room = room_from(row);
            let read_seq = row.get::<Option<i64>, _>("read_seq").map(|s| s as u64);
            let last = match row.get::<Option<String>, _>("last") {
                Some(data) => match serde_json::from_str::<EventData>(&data) {
                    Ok(EventData::Message(m)) => Some(LastMessage {
                        author: m.author,
                        preview: m.body.chars().take(PREVIEW_CHARS).collect(),
                        sent_at: m.sent_at,
                        deleted: m.deleted,
                    }),
                    _ => None,
                },
                None => None,
            };
            let unread = match (viewer, read_seq) {
                (Some(user), Some(seq)) => Some(unread_in(&self.pool, user, room.id, seq).await?),
                _ => None,
            };
            rooms.push(RoomSummary {
                room,
                messages: row.get::<i64, _>("head") as u64,
                last,
                read_seq,
                unread,
            });
        }
        // One row more than asked for says that more follow.
        let next = if rows.len() > limit as usize {
            rooms.last().map(|r: &RoomSummary| r.room.id)
        } else {
            None
        };
        Ok(RoomList { rooms, next })
    }

    async fn create_room(
        &self,
        name: &str,
        owner_id: i64,
        private: bool,
    ) -> Result<Room, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO rooms (name, name_key, created_at, owner_id, private) VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(name)
        .bind(crate::server::validate::name_key(name))
        .bind(now)
        .bind(owner_id)
        .bind(private as i64)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.get(0),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Conflict(if private {
                    format!("you have a private room named “{name}” (or one that looks the same) already")
                } else {
                    format!("a room named “{name}” (or one that looks the same) exists already")
                }))
            }
            Err(e) => return Err(e.into()),
        };
        sqlx::query("INSERT INTO topics (name, epoch, head, created_at) VALUES (?, ?, 0, ?)")
            .bind(Topic::room(id).to_string())
            .bind(new_epoch() as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if private {
            sqlx::query("INSERT INTO members (room_id, user_id, added_at) VALUES (?, ?, ?)")
                .bind(id)
                .bind(owner_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Room {
            id,
            name: name.to_owned(),
            created_at: now,
            owner_id,
            private,
        })
    }

    async fn room(&self, id: i64) -> Result<Room, StoreError> {
        let row =
            sqlx::query("SELECT id, name, created_at, owner_id, private FROM rooms WHERE id = ?")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("room {id}")))?;
        Ok(room_from(&row))
    }

    async fn append(&self, topic: Topic, data: EventData) -> Result<Appended, StoreError> {
        let writes = self
            .writes
            .lock()
            .map_err(|_| StoreError::Closed)?
            .clone()
            .ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        let queued = writes.send(Append { topic, data, reply }).await;
        // Not held while waiting: `close` ends the writer once every
        // queued write is done and no sender is left.
        drop(writes);
        queued.map_err(|_| StoreError::Closed)?;
        // From here on the write is the writer's: if this future is dropped,
        // the event is still committed and published.
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn message(&self, topic: Topic, seq: u64) -> Result<ChatMessage, StoreError> {
        super::writer::message_in(&self.pool, topic, seq).await
    }

    async fn mark_read(&self, user: i64, room: i64, seq: u64) -> Result<u64, StoreError> {
        let head = head_in(&self.pool, Topic::room(room)).await?.seq;
        let seq = seq.min(head) as i64;
        let stored: i64 = sqlx::query_scalar(
            "INSERT INTO reads (user_id, room_id, seq, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (user_id, room_id) DO UPDATE SET seq = max(seq, excluded.seq), \
             updated_at = excluded.updated_at RETURNING seq",
        )
        .bind(user)
        .bind(room)
        .bind(seq)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(stored as u64)
    }

    async fn unread(&self, user: i64) -> Result<Unread, StoreError> {
        let rows = sqlx::query(
            "SELECT rd.room_id, rd.seq FROM reads rd JOIN rooms r ON r.id = rd.room_id \
             WHERE rd.user_id = ? AND (r.private = 0 OR EXISTS \
             (SELECT 1 FROM members m WHERE m.room_id = r.id AND m.user_id = rd.user_id)) \
             ORDER BY rd.room_id",
        )
        .bind(user)
        .fetch_all(&self.pool)
        .await?;
        let mut unread = Unread::default();
        for row in rows {
            let (room_id, seq): (i64, i64) = (row.get(0), row.get(1));
            let count = unread_in(&self.pool, user, room_id, seq as u64).await?;
            if count > 0 {
                unread.total += count;
                unread.rooms.push(RoomUnread { room_id, count });
            }
        }
        Ok(unread)
    }

    async fn readers(&self, room: i64) -> Result<Vec<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT user_id FROM reads WHERE room_id = ?")
                .bind(room)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    async fn head(&self, topic: Topic) -> Result<Version, StoreError> {
        head_in(&self.pool, topic).await
    }

    async fn page(
        &self,
        topic: Topic,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Snapshot, StoreError> {
        let mut tx = self.pool.begin().await?;
        let version = head_in(&mut *tx, topic).await?;
        let before = before.unwrap_or(u64::MAX).min(i64::MAX as u64) as i64;
        let rows = sqlx::query(
            "SELECT seq, data FROM events WHERE topic = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
        )
        .bind(topic.to_string())
        .bind(before)
        .bind(limit as i64 + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let has_older = rows.len() > limit as usize;
        let mut events = rows
            .iter()
            .take(limit as usize)
            .map(|r| decode_event(topic, version.epoch, r.get(0), r.get::<&str, _>(1)))
            .collect::<Result<Vec<_>, _>>()?;
        events.reverse();
        Ok(Snapshot {
            topic,
            version,
            events,
            has_older,
        })
    }

    async fn since(
        &self,
        topic: Topic,
        after: Version,
        limit: PageLimit,
    ) -> Result<Backfill, StoreError> {
        use futures::TryStreamExt;
        let mut tx = self.pool.begin().await?;
        let version = head_in(&mut *tx, topic).await?;
        if after.epoch != version.epoch || after.seq > version.seq {
            tx.commit().await?;
            return Ok(Backfill::reset(topic, version));
        }
        let mut events = Vec::new();
        let mut bytes = 0;
        let mut has_more = false;
        {
            // Rows are streamed, so a page pins at most `limit.bytes` (plus
            // one event) however long the events are.
            let mut rows = sqlx::query(
                "SELECT seq, data FROM events WHERE topic = ? AND seq > ? ORDER BY seq ASC LIMIT ?",
            )
            .bind(topic.to_string())
            .bind(after.seq as i64)
            .bind(limit.events as i64 + 1)
            .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                if events.len() >= limit.events as usize || bytes >= limit.bytes {
                    has_more = true;
                    break;
                }
                let data: &str = row.get(1);
                bytes += data.len();
                events.push(decode_event(topic, version.epoch, row.get(0), data)?);
            }
        }
        tx.commit().await?;
        Ok(Backfill {
            topic,
            version,
            events,
            has_more,
            reset: false,
        })
    }

    async fn close(&self) {
        // Dropping the last sender lets the writer finish what is queued and end.
        if let Ok(mut writes) = self.writes.lock() {
            writes.take();
        }
        if let Some(writer) = self.writer.lock().await.take() {
            if let Err(e) = writer.await {
                tracing::error!(error = %e, "the store's writer failed");
            }
        }
        self.pool.close().await;
    }
}

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
