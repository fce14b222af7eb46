//! Unread counts (ssr only): each account's summary topic `user:<id>`
//! (ephemeral, latest-wins) carries its unread messages per room, so a tab
//! can show them (in its title, in the room list) without following every
//! room's stream.
//!
//! A summary is recomputed from the store when it may have changed: a
//! message posted or deleted in a room the account has read, the account's
//! read position moving, the account losing access to a room. Changes are
//! **coalesced**: a summary is recomputed at most once per `COALESCE`
//! however many messages arrive, by one task that runs only while something
//! is pending, and it is published only if it differs from the last one.

use super::broker::Broker;
use super::ephemeral::EphemeralLogs;
use super::logs::TopicLog;
use super::store::Store;
use crate::protocol::{EventData, Topic};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use tokio::time::Duration;

/// Longest a change waits before summaries are recomputed.
pub const COALESCE: Duration = Duration::from_millis(250);

#[derive(Default)]
struct Pending {
    rooms: BTreeSet<i64>,
    users: BTreeSet<i64>,
    flushing: bool,
}

pub struct UnreadBoard {
    pending: Mutex<Pending>,
    store: Arc<dyn Store>,
    logs: Arc<EphemeralLogs>,
    broker: Arc<dyn Broker>,
}

impl UnreadBoard {
    pub fn new(
        store: Arc<dyn Store>,
        logs: Arc<EphemeralLogs>,
        broker: Arc<dyn Broker>,
    ) -> Arc<Self> {
        Arc::new(UnreadBoard {
            pending: Mutex::new(Pending::default()),
            store,
            logs,
            broker,
        })
    }

    /// A message was posted or deleted in `room`: its readers' counts may change.
    pub fn room_changed(self: &Arc<Self>, room: i64) {
        self.mark(|p| p.rooms.insert(room));
    }

    /// `user`'s read positions or access changed.
    pub fn user_changed(self: &Arc<Self>, user: i64) {
        self.mark(|p| p.users.insert(user));
    }

    fn mark(self: &Arc<Self>, f: impl FnOnce(&mut Pending) -> bool) {
        let Ok(mut p) = self.pending.lock() else {
            tracing::error!("the unread board's lock is poisoned");
            return;
        };
        f(&mut p);
        if !p.flushing {
            p.flushing = true;
            tokio::spawn(self.clone().flush_loop());
        }
    }

    async fn flush_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(COALESCE).await;
            let (rooms, mut users) = {
                let Ok(mut p) = self.pending.lock() else {
                    return;
                };
                if p.rooms.is_empty() && p.users.is_empty() {
                    p.flushing = false;
                    return;
                }
                (std::mem::take(&mut p.rooms), std::mem::take(&mut p.users))
            };
            for room in rooms {
                match self.store.readers(room).await {
                    Ok(readers) => users.extend(readers),
                    Err(e) => tracing::warn!(room, error = %e, "unread: readers not read"),
                }
            }
            for user in users {
                self.publish(user).await;
            }
        }
    }

    /// Recomputes `user`'s summary and publishes it if it changed.
    async fn publish(&self, user: i64) {
        let unread = match self.store.unread(user).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(user, error = %e, "unread: summary not computed");
                return;
            }
        };
        let topic = Topic::user(user);
        let same = match self.logs.latest(topic).await {
            Ok((_, Some(e))) => e.data == EventData::Unread(unread.clone()),
            // Nothing published yet: an empty summary needs no event.
            Ok((_, None)) => unread.rooms.is_empty(),
            Err(_) => false,
        };
        if same {
            return;
        }
        if let Err(e) = self
            .logs
            .publish_unread(topic, unread, self.broker.as_ref())
        {
            tracing::warn!(user, error = %e, "unread summary not published");
        }
    }
}
