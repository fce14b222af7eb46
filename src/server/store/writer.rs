//! The SQLite store's one writer task (ssr only).
//!
//! It takes the queued appends in batches of up to `MAX_BATCH`, writes each
//! in its own savepoint inside one `BEGIN IMMEDIATE` transaction (so one
//! refused append does not fail the others), commits once (one fsync for the
//! batch), puts the batch's new events on the feed, and only then answers
//! each caller. Because callers only queue a request and wait for the answer,
//! a caller that is cancelled cannot stop a commit or its publication.
//!
//! Ordering: one task commits everything, so the feed carries events in
//! commit order, which per topic is seq order.

use super::hooks::Hooks;
use super::sqlite::decode_event;
use super::{now_ms, Appended, StoreError};
use crate::protocol::{fold, ChatMessage, Event, EventData, Topic, Version};
use futures::future::join_all;
use sqlx::{Row, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

/// Most appends committed together.
const MAX_BATCH: usize = 256;

/// One queued append and where its answer goes.
pub(super) struct Append {
    pub topic: Topic,
    pub data: EventData,
    pub reply: oneshot::Sender<Result<Appended, StoreError>>,
}

pub(super) async fn run(
    pool: SqlitePool,
    mut queue: mpsc::Receiver<Append>,
    feed: mpsc::Sender<Vec<Event>>,
    hooks: Hooks,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        match write_batch(&pool, &mut batch, &hooks).await {
            Ok(results) => {
                let created: Vec<Event> = results
                    .iter()
                    .filter_map(|r| match r {
                        Ok(a) if a.created => Some(a.event.clone()),
                        _ => None,
                    })
                    .collect();
                // Published before anyone is answered: an acknowledged event
                // is always on its way to subscribers.
                if !created.is_empty() && feed.send(created).await.is_err() {
                    tracing::debug!("no feed consumer: committed events not published");
                }
                for (append, result) in batch.drain(..).zip(results) {
                    let _ = append.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, appends = batch.len(), "write batch failed");
                let text = e.to_string();
                for append in batch.drain(..) {
                    let _ = append.reply.send(Err(StoreError::Commit(text.clone())));
                }
            }
        }
    }
    tracing::debug!("store writer stopped");
}

/// Writes and commits one batch. The outer error fails the whole batch
/// (nothing of it is committed); inner errors refuse single appends.
async fn write_batch(
    pool: &SqlitePool,
    batch: &mut [Append],
    hooks: &Hooks,
) -> Result<Vec<Result<Appended, StoreError>>, sqlx::Error> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
    let mut results = Vec::with_capacity(batch.len());
    for append in batch.iter() {
        results.push(append_one(&mut tx, append.topic, &append.data).await?);
    }
    if let Some(gate) = &hooks.commit_gate {
        gate.arrive();
        let open = gate.wait_open();
        tokio::pin!(open);
        let gone = join_all(batch.iter_mut().map(|a| a.reply.closed()));
        tokio::select! {
            _ = &mut open => {}
            _ = gone => {
                gate.mark_abandoned();
                open.await;
            }
        }
    }
    tx.commit().await?;
    Ok(results)
}

async fn append_one(
    conn: &mut SqliteConnection,
    topic: Topic,
    data: &EventData,
) -> Result<Result<Appended, StoreError>, sqlx::Error> {
    let Some(client_id) = data.client_id() else {
        return Ok(Err(StoreError::Invalid(
            "durable events carry a client id".into(),
        )));
    };
    let json = match serde_json::to_string(data) {
        Ok(json) => json,
        Err(e) => return Ok(Err(StoreError::Corrupt(e.to_string()))),
    };
    let (name, client_id) = (topic.to_string(), client_id.to_string());
    sqlx::query("SAVEPOINT append").execute(&mut *conn).await?;
    let head =
        sqlx::query("UPDATE topics SET head = head + 1 WHERE name = ? RETURNING epoch, head")
            .bind(&name)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(head) = head else {
        undo(conn).await?;
        return Ok(Err(StoreError::NotFound(format!("topic {topic}"))));
    };
    let epoch = head.get::<i64, _>(0) as u32;
    let seq: i64 = head.get(1);
    let inserted = sqlx::query(
        "INSERT INTO events (topic, seq, client_id, data, created_at) VALUES (?, ?, ?, ?, ?) \
         ON CONFLICT (topic, client_id) DO NOTHING",
    )
    .bind(&name)
    .bind(seq)
    .bind(&client_id)
    .bind(&json)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0 {
        // A retry: undo the head bump and answer with the original event.
        undo(conn).await?;
        let found = sqlx::query("SELECT seq, data FROM events WHERE topic = ? AND client_id = ?")
            .bind(&name)
            .bind(&client_id)
            .fetch_one(&mut *conn)
            .await?;
        return Ok(
            decode_event(topic, epoch, found.get(0), found.get::<&str, _>(1)).map(|event| {
                Appended {
                    event,
                    created: false,
                }
            }),
        );
    }
    if let Some(target) = data.target() {
        if let Err(refused) = change_target(conn, topic, target, seq as u64, data).await? {
            undo(conn).await?;
            return Ok(Err(refused));
        }
    }
    sqlx::query("RELEASE append").execute(&mut *conn).await?;
    Ok(Ok(Appended {
        event: Event {
            topic,
            version: Version::new(epoch, seq as u64),
            data: data.clone(),
        },
        created: true,
    }))
}

/// Message `seq` of `topic` as stored (its current state).
pub(super) async fn message_in<'c, E>(
    conn: E,
    topic: Topic,
    seq: u64,
) -> Result<ChatMessage, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Sqlite>,
{
    let row = sqlx::query("SELECT data FROM events WHERE topic = ? AND seq = ?")
        .bind(topic.to_string())
        .bind(seq.min(i64::MAX as u64) as i64)
        .fetch_optional(conn)
        .await?;
    let not_found = || StoreError::NotFound(format!("message {seq} of {topic}"));
    let data = row.ok_or_else(not_found)?.get::<String, _>(0);
    match serde_json::from_str::<EventData>(&data) {
        Ok(EventData::Message(m)) => Ok(m),
        Ok(_) => Err(not_found()),
        Err(e) => Err(StoreError::Corrupt(format!("{topic} seq {seq}: {e}"))),
    }
}

/// Applies change event `change` (at `seq`) to its target message `target`,
/// or says why it cannot be applied. The outer error fails the batch.
async fn change_target(
    conn: &mut SqliteConnection,
    topic: Topic,
    target: u64,
    seq: u64,
    change: &EventData,
) -> Result<Result<(), StoreError>, sqlx::Error> {
    let mut message = match message_in(&mut *conn, topic, target).await {
        Ok(m) => m,
        Err(StoreError::Db(e)) => return Err(e),
        Err(other) => return Ok(Err(other)),
    };
    if message.deleted {
        return Ok(Err(StoreError::Conflict("that message was deleted".into())));
    }
    if let EventData::Edit(e) = change {
        if e.author_id != message.author_id || message.author_id == 0 {
            return Ok(Err(StoreError::Forbidden(
                "only its author can edit a message".into(),
            )));
        }
    }
    fold(&mut message, seq, change);
    let json = match serde_json::to_string(&EventData::Message(message)) {
        Ok(json) => json,
        Err(e) => return Ok(Err(StoreError::Corrupt(e.to_string()))),
    };
    let name = topic.to_string();
    sqlx::query("UPDATE events SET data = ? WHERE topic = ? AND seq = ?")
        .bind(&json)
        .bind(&name)
        .bind(target as i64)
        .execute(&mut *conn)
        .await?;
    if matches!(change, EventData::Delete(_)) {
        // The deleted text goes from the earlier edits too.
        sqlx::query(
            "UPDATE events SET data = json_set(data, '$.body', '') WHERE topic = ? AND seq > ? \
             AND seq < ? AND json_extract(data, '$.kind') = 'edit' AND json_extract(data, '$.target') = ?",
        )
        .bind(&name)
        .bind(target as i64)
        .bind(seq as i64)
        .bind(target as i64)
        .execute(&mut *conn)
        .await?;
    }
    Ok(Ok(()))
}

/// Rolls back to the append's savepoint and removes it.
async fn undo(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query("ROLLBACK TO append")
        .execute(&mut *conn)
        .await?;
    sqlx::query("RELEASE append").execute(&mut *conn).await?;
    Ok(())
}
