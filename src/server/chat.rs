//! The chat service (ssr only): what both send paths (server function and
//! WebSocket `send`) and the room server functions call. Every function
//! asks the authorization rule (`accounts::authorize`) first, validates,
//! and persists through the `Store`; the store's feed broadcasts.

use super::accounts::{authorize, Access, Principal};
use super::state::AppState;
use super::store::StoreError;
use super::validate;
use crate::error::AppError;
use crate::model::{Backfill, Room, RoomList, RoomSnapshot, Snapshot};
use crate::protocol::{ChatMessage, Event, EventData, Topic, TopicKind, Version};
use uuid::Uuid;

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AppError::NotFound(what),
            StoreError::Conflict(msg) => AppError::Conflict(msg),
            StoreError::Invalid(msg) => AppError::Validation(msg),
            other => {
                tracing::error!(error = %other, "store failure");
                AppError::Internal
            }
        }
    }
}

/// Persists a chat message by `who`'s account. The store publishes it once
/// committed, even if this call is cancelled; a retry (same `client_id`)
/// returns the original event and publishes nothing new.
pub async fn post_message(
    state: &AppState,
    who: &Principal,
    topic: Topic,
    client_id: Uuid,
    body: &str,
) -> Result<Event, AppError> {
    authorize(state, who, topic, Access::Write).await?;
    match topic.kind() {
        TopicKind::Room => {}
        TopicKind::Ticker => {
            return Err(AppError::Validation(format!("{topic} is not a chat room")))
        }
    }
    let author = who.require_user()?.name.clone();
    let body = validate::message_body(body, state.settings.max_message_chars)?;
    let data = EventData::Message(ChatMessage {
        client_id,
        author,
        body,
        sent_at: super::store::now_ms(),
    });
    let appended = state.store.append(topic, data).await?;
    tracing::debug!(topic = %topic, seq = appended.event.version.seq, created = appended.created, "message posted");
    Ok(appended.event)
}

/// Creates a room owned by `who` (public, or private: members only).
pub async fn create_room(
    state: &AppState,
    who: &Principal,
    name: &str,
    private: bool,
) -> Result<Room, AppError> {
    let owner = match who {
        Principal::Token { scopes, .. } if !scopes.write => {
            return Err(AppError::Forbidden(
                "this access token lacks the `write` scope".into(),
            ))
        }
        other => other.require_user()?.id,
    };
    let name = validate::room_name(name, state.settings.max_room_name_chars)?;
    Ok(state.store.create_room(&name, owner, private).await?)
}

/// The rooms `who` may see, a page at a time.
pub async fn list_rooms(
    state: &AppState,
    who: &Principal,
    after: Option<i64>,
) -> Result<RoomList, AppError> {
    if let Principal::Token { scopes, .. } = who {
        if !scopes.read {
            return Err(AppError::Forbidden(
                "this access token lacks the `read` scope".into(),
            ));
        }
    }
    Ok(state
        .store
        .list_rooms(after, state.settings.room_page, who.user_id())
        .await?)
}

/// A room and its newest messages, with the version they reflect.
pub async fn room_snapshot(
    state: &AppState,
    who: &Principal,
    room_id: i64,
) -> Result<RoomSnapshot, AppError> {
    let topic = Topic::room(room_id);
    authorize(state, who, topic, Access::Read).await?;
    let room = state.store.room(room_id).await?;
    let log = state
        .store
        .page(topic, None, state.settings.history_page)
        .await?;
    Ok(RoomSnapshot { room, log })
}

/// Up to `history-page` messages before seq `before`.
pub async fn older_messages(
    state: &AppState,
    who: &Principal,
    room_id: i64,
    before: u64,
) -> Result<Snapshot, AppError> {
    let topic = Topic::room(room_id);
    authorize(state, who, topic, Access::Read).await?;
    Ok(state
        .store
        .page(topic, Some(before), state.settings.history_page)
        .await?)
}

/// Events of any topic after `after` (the backfill).
pub async fn events_since(
    state: &AppState,
    who: &Principal,
    topic: Topic,
    after: Version,
) -> Result<Backfill, AppError> {
    use super::logs::TopicLog;
    authorize(state, who, topic, Access::Read).await?;
    state.logs.since(topic, after, state.settings.page()).await
}
