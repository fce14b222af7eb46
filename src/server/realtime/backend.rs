//! `Backend`: everything a live session reads and writes, as one trait
//! (ssr only). The server's `AppState` implements it over the real logs and
//! store; `Session`'s unit tests implement it over a fake, so the ordering
//! contract is tested without a database or a socket.

use crate::error::AppError;
use crate::model::Backfill;
use crate::protocol::{ChatWrite, Event, Tick, Topic, Version};
use crate::server::accounts::{Access, Principal};
use crate::server::chat::WriteError;
use crate::server::logs::TopicLog;
use crate::server::presence::Attendance;
use crate::server::state::AppState;
use crate::server::store::PageLimit;
use async_trait::async_trait;
use uuid::Uuid;

#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// See `TopicLog::head`.
    async fn head(&self, topic: Topic) -> Result<Version, AppError>;
    /// See `TopicLog::since`; the caller is registered with the broker for
    /// `topic` (see `Logs::since_registered`).
    async fn since(
        &self,
        topic: Topic,
        after: Version,
        limit: PageLimit,
    ) -> Result<Backfill, AppError>;
    /// See `TopicLog::latest`.
    async fn latest(&self, topic: Topic) -> Result<(Version, Option<Event>), AppError>;
    /// The authorization rule (see `accounts::authorize`).
    async fn authorize(
        &self,
        who: &Principal,
        topic: Topic,
        access: Access,
    ) -> Result<(), AppError>;
    /// A chat write as `who` (see `chat::write`, which authorizes it and
    /// takes it from the account's write limit).
    async fn write(
        &self,
        who: &Principal,
        topic: Topic,
        client_id: Uuid,
        write: ChatWrite,
    ) -> Result<Event, WriteError>;
    /// Publishes a tick (see `EphemeralLogs::publish_tick`).
    fn publish_tick(&self, topic: Topic, tick: Tick) -> Result<Event, AppError>;
    /// One live connection of `who` goes from `from` to `to` in room `room`
    /// (`None`: not in it; see `server::presence`).
    fn presence(
        &self,
        who: &Principal,
        room: i64,
        from: Option<Attendance>,
        to: Option<Attendance>,
    );
    /// One connection of `who` in `room` ends (from `Here`), its account
    /// kept present there for `linger` more (a poll: `PresenceBoard::linger`).
    fn linger(&self, who: &Principal, room: i64, linger: std::time::Duration);
    /// `who` is typing in room `topic` (authorized as a write).
    async fn typing(&self, who: &Principal, topic: Topic) -> Result<(), AppError>;
}

#[async_trait]
impl Backend for AppState {
    async fn head(&self, topic: Topic) -> Result<Version, AppError> {
        self.logs.head(topic).await
    }

    async fn since(
        &self,
        topic: Topic,
        after: Version,
        limit: PageLimit,
    ) -> Result<Backfill, AppError> {
        // Sessions register with the broker before they read.
        self.logs.since_registered(topic, after, limit).await
    }

    async fn latest(&self, topic: Topic) -> Result<(Version, Option<Event>), AppError> {
        self.logs.latest(topic).await
    }

    async fn authorize(
        &self,
        who: &Principal,
        topic: Topic,
        access: Access,
    ) -> Result<(), AppError> {
        crate::server::accounts::authorize(self, who, topic, access).await
    }

    async fn write(
        &self,
        who: &Principal,
        topic: Topic,
        client_id: Uuid,
        write: ChatWrite,
    ) -> Result<Event, WriteError> {
        crate::server::chat::write(self, who, topic, client_id, write).await
    }

    fn presence(
        &self,
        who: &Principal,
        room: i64,
        from: Option<Attendance>,
        to: Option<Attendance>,
    ) {
        // People in browsers; access tokens (bots, load tools) are not listed.
        if let Principal::Session { user, .. } = who {
            self.presence.connection(room, user, from, to);
        }
    }

    fn linger(&self, who: &Principal, room: i64, linger: std::time::Duration) {
        if let Principal::Session { user, .. } = who {
            self.presence.linger(room, user, linger);
        }
    }

    async fn typing(&self, who: &Principal, topic: Topic) -> Result<(), AppError> {
        let Topic::Room(room) = topic else {
            return Err(AppError::Validation(format!("{topic} is not a chat room")));
        };
        crate::server::accounts::authorize(self, who, topic, Access::Write).await?;
        if let Principal::Session { user, .. } = who {
            self.presence.typing(room, user.id);
        }
        Ok(())
    }

    fn publish_tick(&self, topic: Topic, tick: Tick) -> Result<Event, AppError> {
        let event = self
            .logs
            .ephemeral
            .publish_tick(topic, tick, self.broker.as_ref())?;
        self.meters.event_in(topic.kind());
        Ok(event)
    }
}
