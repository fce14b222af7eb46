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

/// Durable topics, read from the store.
pub struct DurableLog(pub Arc<dyn Store>);

#[async_trait]
impl TopicLog for DurableLog {
    async fn head(&self, topic: Topic) -> Result<Version, AppError> {
        Ok(self.0.head(topic).await?)
    }

    async fn since(
        &self,
        topic: Topic,
        after: Version,
        limit: PageLimit,
    ) -> Result<Backfill, AppError> {
        Ok(self.0.since(topic, after, limit).await?)
    }

    async fn latest(&self, topic: Topic) -> Result<(Version, Option<Event>), AppError> {
        let mut page = self.0.page(topic, None, 1).await?;
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
            durable: DurableLog(store),
            ephemeral,
        }
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
