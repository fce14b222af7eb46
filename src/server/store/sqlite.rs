//! The embedded SQLite store (ssr only): one database file, created on first
//! run, WAL mode, migrations from `migrations/sqlite` embedded in the binary.
//!
//! Concurrency: a pool of connections; SQLite serializes writers. `append`
//! starts its transaction with the `UPDATE` of the topic's head, so it takes
//! the write lock first and never fails on a stale read snapshot; concurrent
//! appends wait on `busy_timeout`.

use super::{now_ms, Appended, Store, StoreError};
use crate::model::{Backfill, Room, RoomSummary, Snapshot};
use crate::protocol::{Event, EventData, Topic, Version};
use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};
use std::str::FromStr;
use std::time::Duration;

pub struct SqliteStore {
    pool: SqlitePool,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database at `url`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
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
        Ok(SqliteStore { pool })
    }
}

fn decode_event(topic: &Topic, epoch: u32, seq: i64, data: &str) -> Result<Event, StoreError> {
    let data: EventData = serde_json::from_str(data)
        .map_err(|e| StoreError::Corrupt(format!("{topic} seq {seq}: {e}")))?;
    Ok(Event {
        topic: topic.clone(),
        version: Version::new(epoch, seq as u64),
        data,
    })
}

fn new_epoch() -> u32 {
    rand::random_range(1..(1u32 << 31))
}

async fn head_in<'c, E>(conn: E, topic: &Topic) -> Result<Version, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    let row = sqlx::query("SELECT epoch, head FROM topics WHERE name = ?")
        .bind(topic.as_str())
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound(format!("topic {topic}")))?;
    Ok(Version::new(
        row.get::<i64, _>(0) as u32,
        row.get::<i64, _>(1) as u64,
    ))
}

fn room_from(row: &sqlx::sqlite::SqliteRow) -> Room {
    Room {
        id: row.get("id"),
        name: row.get("name"),
        created_at: row.get("created_at"),
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn list_rooms(&self) -> Result<Vec<RoomSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.name, r.created_at, t.head FROM rooms r \
             JOIN topics t ON t.name = 'room:' || r.id ORDER BY r.id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| RoomSummary {
                room: room_from(row),
                messages: row.get::<i64, _>("head") as u64,
            })
            .collect())
    }

    async fn create_room(&self, name: &str) -> Result<Room, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO rooms (name, name_key, created_at) VALUES (?, ?, ?) RETURNING id",
        )
        .bind(name)
        .bind(name.to_lowercase())
        .bind(now)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(row) => row.get(0),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Conflict(format!(
                    "a room named “{name}” exists already"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        sqlx::query("INSERT INTO topics (name, epoch, head, created_at) VALUES (?, ?, 0, ?)")
            .bind(Topic::room(id).as_str())
            .bind(new_epoch() as i64)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Room {
            id,
            name: name.to_owned(),
            created_at: now,
        })
    }

    async fn room(&self, id: i64) -> Result<Room, StoreError> {
        let row = sqlx::query("SELECT id, name, created_at FROM rooms WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("room {id}")))?;
        Ok(room_from(&row))
    }

    async fn append(&self, topic: &Topic, data: &EventData) -> Result<Appended, StoreError> {
        let client_id = data
            .client_id()
            .ok_or_else(|| StoreError::Invalid("durable events carry a client id".into()))?
            .to_string();
        let json = serde_json::to_string(data).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut tx = self.pool.begin().await?;
        // Write first: takes SQLite's write lock (PostgreSQL: the topic's row lock).
        let row =
            sqlx::query("UPDATE topics SET head = head + 1 WHERE name = ? RETURNING epoch, head")
                .bind(topic.as_str())
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("topic {topic}")))?;
        let epoch = row.get::<i64, _>(0) as u32;
        let seq: i64 = row.get(1);
        let existing =
            sqlx::query("SELECT seq, data FROM events WHERE topic = ? AND client_id = ?")
                .bind(topic.as_str())
                .bind(&client_id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(found) = existing {
            // A retry: roll back the head bump, answer with the original.
            tx.rollback().await?;
            let event = decode_event(topic, epoch, found.get(0), found.get::<&str, _>(1))?;
            return Ok(Appended {
                event,
                created: false,
            });
        }
        sqlx::query(
            "INSERT INTO events (topic, seq, client_id, data, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(topic.as_str())
        .bind(seq)
        .bind(&client_id)
        .bind(&json)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Appended {
            event: Event {
                topic: topic.clone(),
                version: Version::new(epoch, seq as u64),
                data: data.clone(),
            },
            created: true,
        })
    }

    async fn head(&self, topic: &Topic) -> Result<Version, StoreError> {
        head_in(&self.pool, topic).await
    }

    async fn page(
        &self,
        topic: &Topic,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Snapshot, StoreError> {
        let mut tx = self.pool.begin().await?;
        let version = head_in(&mut *tx, topic).await?;
        let before = before.unwrap_or(u64::MAX).min(i64::MAX as u64) as i64;
        let rows = sqlx::query(
            "SELECT seq, data FROM events WHERE topic = ? AND seq < ? ORDER BY seq DESC LIMIT ?",
        )
        .bind(topic.as_str())
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
            topic: topic.clone(),
            version,
            events,
            has_older,
        })
    }

    async fn since(
        &self,
        topic: &Topic,
        after: Version,
        limit: u32,
    ) -> Result<Backfill, StoreError> {
        let mut tx = self.pool.begin().await?;
        let version = head_in(&mut *tx, topic).await?;
        if after.epoch != version.epoch || after.seq > version.seq {
            tx.commit().await?;
            return Ok(Backfill {
                topic: topic.clone(),
                version,
                events: Vec::new(),
                has_more: false,
                reset: true,
            });
        }
        let rows = sqlx::query(
            "SELECT seq, data FROM events WHERE topic = ? AND seq > ? ORDER BY seq ASC LIMIT ?",
        )
        .bind(topic.as_str())
        .bind(after.seq as i64)
        .bind(limit as i64 + 1)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        let has_more = rows.len() > limit as usize;
        let events = rows
            .iter()
            .take(limit as usize)
            .map(|r| decode_event(topic, version.epoch, r.get(0), r.get::<&str, _>(1)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Backfill {
            topic: topic.clone(),
            version,
            events,
            has_more,
            reset: false,
        })
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ChatMessage;
    use uuid::Uuid;

    fn msg(id: u128, body: &str) -> EventData {
        EventData::Message(ChatMessage {
            client_id: Uuid::from_u128(id),
            author: "t".into(),
            body: body.into(),
            sent_at: 1,
        })
    }

    async fn store() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        (SqliteStore::open(&url).await.unwrap(), dir)
    }

    #[tokio::test]
    async fn appends_are_gapless_and_idempotent() {
        let (s, _d) = store().await;
        let room = s.create_room("Lobby").await.unwrap();
        let topic = Topic::room(room.id);
        let a = s.append(&topic, &msg(1, "a")).await.unwrap();
        let b = s.append(&topic, &msg(2, "b")).await.unwrap();
        assert_eq!((a.event.version.seq, b.event.version.seq), (1, 2));
        let again = s.append(&topic, &msg(1, "a, retried")).await.unwrap();
        assert!(!again.created);
        assert_eq!(again.event, a.event, "a retry answers with the original");
        let c = s.append(&topic, &msg(3, "c")).await.unwrap();
        assert_eq!(c.event.version.seq, 3, "a retry leaves no gap");
        assert_eq!(s.head(&topic).await.unwrap(), c.event.version);
    }

    #[tokio::test]
    async fn concurrent_appends_get_distinct_gapless_seqs() {
        let (s, _d) = store().await;
        let s = std::sync::Arc::new(s);
        let topic = Topic::room(s.create_room("busy").await.unwrap().id);
        let tasks: Vec<_> = (0..40u128)
            .map(|i| {
                let (s, t) = (s.clone(), topic.clone());
                tokio::spawn(async move { s.append(&t, &msg(i % 20, "x")).await.unwrap() })
            })
            .collect();
        let mut seqs = Vec::new();
        for t in tasks {
            let a = t.await.unwrap();
            if a.created {
                seqs.push(a.event.version.seq);
            }
        }
        seqs.sort();
        assert_eq!(seqs, (1..=20).collect::<Vec<u64>>());
    }

    #[tokio::test]
    async fn pages_and_since() {
        let (s, _d) = store().await;
        let topic = Topic::room(s.create_room("r").await.unwrap().id);
        for i in 1..=5 {
            s.append(&topic, &msg(i, "m")).await.unwrap();
        }
        let head = s.head(&topic).await.unwrap();
        let p = s.page(&topic, None, 2).await.unwrap();
        assert_eq!(p.version, head);
        assert_eq!(
            p.events.iter().map(|e| e.version.seq).collect::<Vec<_>>(),
            vec![4, 5]
        );
        assert!(p.has_older);
        let older = s.page(&topic, Some(4), 10).await.unwrap();
        assert_eq!(older.events.len(), 3);
        assert!(!older.has_older);
        let b = s
            .since(&topic, Version::new(head.epoch, 2), 2)
            .await
            .unwrap();
        assert_eq!(
            b.events.iter().map(|e| e.version.seq).collect::<Vec<_>>(),
            vec![3, 4]
        );
        assert!(b.has_more && !b.reset);
        let reset = s
            .since(&topic, Version::new(head.epoch.wrapping_add(1), 2), 2)
            .await
            .unwrap();
        assert!(reset.reset && reset.events.is_empty());
        let ahead = s
            .since(&topic, Version::new(head.epoch, 99), 2)
            .await
            .unwrap();
        assert!(ahead.reset);
    }

    #[tokio::test]
    async fn room_names_are_unique_ignoring_case_and_missing_things_are_not_found() {
        let (s, _d) = store().await;
        s.create_room("Lobby").await.unwrap();
        assert!(matches!(
            s.create_room("lobby").await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(s.room(999).await, Err(StoreError::NotFound(_))));
        assert!(matches!(
            s.head(&Topic::room(999)).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.append(&Topic::room(999), &msg(1, "x")).await,
            Err(StoreError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn data_survives_reopen_and_seed_runs_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let s = SqliteStore::open(&url).await.unwrap();
        assert!(super::super::seed_demo(&s).await.unwrap());
        let before = s.list_rooms().await.unwrap();
        s.close().await;
        let s = SqliteStore::open(&url).await.unwrap();
        assert!(!super::super::seed_demo(&s).await.unwrap());
        assert_eq!(s.list_rooms().await.unwrap(), before);
        assert_eq!(before.len(), 2);
    }
}
