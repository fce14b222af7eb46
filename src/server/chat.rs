//! The chat service (ssr only): what both send paths (server function and
//! WebSocket `send`) and the room server functions call. Validates and
//! persists through the `Store`; the store's feed broadcasts.

use super::state::AppState;
use super::store::StoreError;
use super::validate;
use crate::error::AppError;
use crate::model::{Room, RoomSnapshot};
use crate::protocol::{ChatMessage, Event, EventData, Topic, TopicKind};
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

/// Persists a chat message. The store publishes it once committed, even if
/// this call is cancelled; a retry (same `client_id`) returns the original
/// event and publishes nothing new.
pub async fn post_message(
    state: &AppState,
    topic: Topic,
    client_id: Uuid,
    author: Option<&str>,
    body: &str,
) -> Result<Event, AppError> {
    match topic.kind() {
        TopicKind::Room => {}
        TopicKind::Ticker => {
            return Err(AppError::Validation(format!("{topic} is not a chat room")))
        }
    }
    let author = validate::display_name(author.ok_or(AppError::NameRequired)?)
        .map_err(|_| AppError::NameRequired)?;
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

pub async fn create_room(state: &AppState, name: &str) -> Result<Room, AppError> {
    let name = validate::room_name(name, state.settings.max_room_name_chars)?;
    Ok(state.store.create_room(&name).await?)
}

/// A room and its newest messages, with the version they reflect.
pub async fn room_snapshot(state: &AppState, room_id: i64) -> Result<RoomSnapshot, AppError> {
    let room = state.store.room(room_id).await?;
    let log = state
        .store
        .page(Topic::room(room_id), None, state.settings.history_page)
        .await?;
    Ok(RoomSnapshot { room, log })
}
