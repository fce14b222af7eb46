//! Topic routing (ssr only): every topic's log is reached through one
//! trait, `TopicLog`, and `Logs` picks the implementation from the topic's
//! kind with an exhaustive match. Durable kinds (`room:`) live in the
//! `Store`; ephemeral kinds (`ticker:`) in the in-memory `EphemeralLogs`.
//! Transports, sessions and server functions never care which.

use super::ephemeral::EphemeralLogs;
use super::store::{PageLimit, Store};
use crate::error::AppError;
use crate::model::Backfill;
use crate::protocol::{Durability, Event, Topic, Version};
use async_trait::async_trait;
use std::sync::Arc;

/// Read access to a topic's versioned log.
#[async_trait]
pub trait TopicLog: Send + Sync {
    /// The topic's newest version (seq 0 before its first event).
    async fn head(&self, topic: Topic) -> Result<Version, AppError>;
    /// Events after `after` within `limit`, or `reset` if `after` cannot be
    /// continued (another epoch, past the head, or no longer held).
    async fn since(
        &self,
        topic: Topic,
        after: Version,
        limit: PageLimit,
    ) -> Result<Backfill, AppError>;
    /// The topic's head and its newest event (`None` before the first),
    /// read together: what a latest-wins subscriber needs to catch up.
    async fn latest(&self, topic: Topic) -> Result<(Version, Option<Event>), AppError>;
}

/// The newest version of each durable topic that the store's feed has
/// carried in this process, noted by the pump before the event is handed to
/// the broker (`broker::pump`).
///
/// It answers a session's read that is already at the head (a long poll's,
/// a reconnect's: `since` the version the feed last carried) without the
/// store: `Logs::since_registered`. That answer may miss only events still
/// on their way through the feed, and the feed brings them to every reader
/// registered with the broker before it read (as `subscribe` does): an
/// event the broker handed out before a reader registered was noted here
/// first, so that reader's version is behind the noted one and it reads
/// the store. A reader that is not registered (a backfill through a server
/// function, a writer reading its own write) reads the store: `since`.
/// Only the feed writes here, and a topic's epoch does not change while the
/// process runs, so a noted version only moves forward. One entry per
/// durable topic that had an event since start.
///
/// Precondition: every durable event the broker hands out passes `pump`
/// first. A broker fed from elsewhere (the PostgreSQL backplane of the
/// roadmap) must note each event here before it fans it out, and forget
/// everything when its feed reconnects.
#[derive(Default)]
pub struct Heads(std::sync::RwLock<std::collections::HashMap<Topic, Version>>);

impl Heads {
    /// The feed carried `event`.
    pub fn saw(&self, event: &Event) {
        if event.topic.kind().durability() != Durability::Durable {
            return;
        }
        let mut heads = self.0.write().unwrap_or_else(|e| e.into_inner());
        let head = heads.entry(event.topic).or_insert(event.version);
        if event.version.epoch != head.epoch || event.version.seq > head.seq {
            *head = event.version;
        }
    }

    /// Whether `version` is the newest the feed carried for `topic`.
    pub fn is_head(&self, topic: Topic, version: Version) -> bool {
        let heads = self.0.read().unwrap_or_else(|e| e.into_inner());
        heads.get(&topic) == Some(&version)
    }
}

/// Durable topics, read from the store.
pub struct DurableLog {
    pub store: Arc<dyn Store>,
    pub heads: Arc<Heads>,
}

#[async_trait]
impl TopicLog for DurableLog {
    async fn head(&self, topic: Topic) -> Result<Version, AppError> {
        Ok(self.store.head(topic).await?)
    }

    async fn since(
        &self,
        topic: Topic,
        after: Version,
        limit: PageLimit,
    ) -> Result<Backfill, AppError> {
        Ok(self.store.since(topic, after, limit).await?)
    }

    async fn latest(&self, topic: Topic) -> Result<(Version, Option<Event>), AppError> {
        let mut page = self.store.page(topic, None, 1).await?;
        Ok((page.version, page.events.pop()))
    }
}

/// Every kind's log, routed by kind.
pub struct Logs {
    durable: DurableLog,
    pub ephemeral: Arc<EphemeralLogs>,
}

impl Logs {
    pub fn new(store: Arc<dyn Store>, ephemeral: Arc<EphemeralLogs>) -> Self {
        Logs {
            durable: DurableLog {
                store,
                heads: Arc::default(),
            },
            ephemeral,
        }
    }

    /// What the feed carried last, per durable topic (`broker::pump` notes it).
    pub fn heads(&self) -> Arc<Heads> {
        self.durable.heads.clone()
    }

    /// `since`, for a reader registered with the broker for `topic` before
    /// this read (a session): a read at the head the feed last carried is
    /// answered without the store (see `Heads`).
    pub async fn since_registered(
        &self,
        topic: Topic,
        after: Version,
        limit: PageLimit,
    ) -> Result<Backfill, AppError> {
        if self.durable.heads.is_head(topic, after) {
            return Ok(Backfill {
                topic,
                version: after,
                events: Vec::new(),
                has_more: false,
                reset: false,
            });
        }
        self.since(topic, after, limit).await
    }

    /// The log that holds `topic`'s events.
    pub fn of(&self, topic: Topic) -> &dyn TopicLog {
        match topic.kind().durability() {
            Durability::Durable => &self.durable,
            Durability::Ephemeral => self.ephemeral.as_ref(),
        }
    }
}

#[async_trait]
impl TopicLog for Logs {
    async fn head(&self, topic: Topic) -> Result<Version, AppError> {
        self.of(topic).head(topic).await
    }

    async fn since(
        &self,
        topic: Topic,
        after: Version,
        limit: PageLimit,
    ) -> Result<Backfill, AppError> {
        self.of(topic).since(topic, after, limit).await
    }

    async fn latest(&self, topic: Topic) -> Result<(Version, Option<Event>), AppError> {
        self.of(topic).latest(topic).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may unwrap
    use super::*;
    use crate::protocol::{ChatMessage, EventData};
    use crate::server::store::Feed;

    fn msg(id: u128) -> EventData {
        EventData::Message(ChatMessage {
            client_id: uuid::Uuid::from_u128(id),
            author: "t".into(),
            body: "b".into(),
            sent_at: 1,
            ..Default::default()
        })
    }

    /// What the pump does with the next batch of the feed.
    async fn carry(feed: &mut Feed, heads: &Heads) -> Vec<Event> {
        let batch = feed.next().await.unwrap();
        batch.iter().for_each(|e| heads.saw(e));
        batch
    }

    #[tokio::test]
    async fn a_read_at_the_head_the_feed_carried_is_answered_without_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let (store, _accounts, mut feed) = crate::server::store::open(&url, Default::default())
            .await
            .unwrap();
        let topic = Topic::room(store.create_room("r", 1, false).await.unwrap().id);
        let logs = Logs::new(store.clone(), Arc::new(EphemeralLogs::new(16, 16)));
        let heads = logs.heads();
        let page = PageLimit {
            events: 10,
            bytes: 1 << 20,
        };
        store.append(topic, msg(1)).await.unwrap();
        let first = carry(&mut feed, &heads).await.remove(0);
        let at = first.version;
        // Committed, not yet through the feed: a registered reader's read at
        // the noted head is answered from it (the event reaches it through
        // the broker); a read behind it, and any unregistered read, from
        // the store.
        store.append(topic, msg(2)).await.unwrap();
        let b = logs.since_registered(topic, at, page).await.unwrap();
        assert!(b.events.is_empty() && !b.reset && !b.has_more, "{b:?}");
        assert_eq!(b.version, at);
        assert_eq!(logs.since(topic, at, page).await.unwrap().events.len(), 1);
        let behind = Version::new(at.epoch, at.seq - 1);
        let b = logs.since_registered(topic, behind, page).await.unwrap();
        assert_eq!(b.events.len(), 2);
        // Through the feed now: the noted head moves on, never back, and a
        // read at the old head reaches the store.
        carry(&mut feed, &heads).await;
        heads.saw(&first);
        assert!(heads.is_head(topic, Version::new(at.epoch, at.seq + 1)));
        let b = logs.since_registered(topic, at, page).await.unwrap();
        assert_eq!(b.events.len(), 1, "{b:?}");
        // Another epoch, or a version past the head, is the store's to answer.
        let other = Version::new(at.epoch.wrapping_add(1), at.seq + 1);
        assert!(
            logs.since_registered(topic, other, page)
                .await
                .unwrap()
                .reset
        );
    }
}
