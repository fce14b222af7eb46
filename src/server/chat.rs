//! The chat service (ssr only): what both send paths (server function and
//! WebSocket `send`) and the room server functions call. Every function
//! asks the authorization rule (`accounts::authorize`) first, validates,
//! and persists through the `Store`; the store's feed broadcasts.

use super::accounts::{authorize, Access, Principal};
use super::limits::Exceeded;
use super::state::AppState;
use super::store::StoreError;
use super::validate;
use crate::error::AppError;
use crate::model::{Backfill, Room, RoomList, RoomSnapshot, Snapshot};
use crate::protocol::{ChatMessage, ChatWrite, Delete, Edit, Event, EventData, Topic, Version};
use uuid::Uuid;

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AppError::NotFound(what),
            StoreError::Conflict(msg) => AppError::Conflict(msg),
            StoreError::Invalid(msg) => AppError::Validation(msg),
            StoreError::Forbidden(msg) => AppError::Forbidden(msg),
            other => {
                tracing::error!(error = %other, "store failure");
                AppError::Internal
            }
        }
    }
}

/// Why a chat write was not stored.
#[derive(Debug)]
pub enum WriteError {
    /// Refused or failed: authorization, validation, authorship, storage.
    App(AppError),
    /// Authorized, but past the account's `writes-per-minute`, one bucket
    /// for all of its connections and HTTP requests (`PerIp::write`).
    Limited(Exceeded),
}

impl From<AppError> for WriteError {
    fn from(e: AppError) -> Self {
        WriteError::App(e)
    }
}

impl From<StoreError> for WriteError {
    fn from(e: StoreError) -> Self {
        WriteError::App(e.into())
    }
}

impl WriteError {
    /// As a server function answers it (a limit with `Retry-After`).
    pub fn into_app(self) -> AppError {
        match self {
            WriteError::App(e) => e,
            WriteError::Limited(exceeded) => crate::server::limited(exceeded),
        }
    }
}

/// A chat write by `who`: a new message, or an edit or a deletion of an
/// earlier one (a new event that refers to it by seq). The store publishes
/// it once committed, even if this call is cancelled.
///
/// Rules: writing needs `write` access to the room; only a message's author
/// edits it; its author or the room's owner deletes it; a deleted message
/// takes no more changes. The store checks the target again inside the
/// write's transaction (a deletion that lands first wins), and a retry with
/// the same `client_id` returns the original event.
///
/// Limit: once authorized, the write takes one from its account's
/// `writes-per-minute` bucket, whatever it came through (a socket's frame
/// or a server function); a caller refused anyway (a read-only token, a
/// room it cannot write to) spends nothing.
pub async fn write(
    state: &AppState,
    who: &Principal,
    topic: Topic,
    client_id: Uuid,
    write: ChatWrite,
) -> Result<Event, WriteError> {
    authorize(state, who, topic, Access::Write).await?;
    let Topic::Room(room_id) = topic else {
        return Err(AppError::Validation(format!("{topic} is not a chat room")).into());
    };
    let user = who.require_user()?;
    state.limits.write(user.id).map_err(WriteError::Limited)?;
    let max = state.settings.max_message_chars;
    let now = super::store::now_ms();
    let data = match write {
        ChatWrite::Message { body } => EventData::Message(ChatMessage {
            client_id,
            author: user.name.clone(),
            author_id: user.id,
            body: validate::message_body(&body, max)?,
            sent_at: now,
            ..Default::default()
        }),
        ChatWrite::Edit { target, body } => {
            let body = validate::message_body(&body, max)?;
            let original = state.store.message(topic, target).await?;
            if original.author_id == 0 || original.author_id != user.id {
                return Err(
                    AppError::Forbidden("only its author can edit a message".into()).into(),
                );
            }
            EventData::Edit(Edit {
                client_id,
                target,
                body,
                author: user.name.clone(),
                author_id: user.id,
                edited_at: now,
            })
        }
        ChatWrite::Delete { target } => {
            let original = state.store.message(topic, target).await?;
            if original.author_id == 0 || original.author_id != user.id {
                let room = state.store.room(room_id).await?;
                if room.owner_id != user.id {
                    return Err(AppError::Forbidden(
                        "only its author or the room's owner can delete a message".into(),
                    )
                    .into());
                }
            }
            EventData::Delete(Delete {
                client_id,
                target,
                by: user.name.clone(),
                by_id: user.id,
                deleted_at: now,
            })
        }
    };
    let posted = matches!(data, EventData::Message(_));
    let counts = !matches!(data, EventData::Edit(_));
    let appended = state.store.append(topic, data).await?;
    tracing::debug!(topic = %topic, seq = appended.event.version.seq, created = appended.created, "chat write");
    if posted {
        state.presence.stop_typing(room_id, user.id);
    }
    if counts && appended.created {
        state.unread.room_changed(room_id);
    }
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
    let room = state.store.create_room(&name, owner, private).await?;
    // Room lists open elsewhere refetch. (A private room is not announced:
    // its owner's other tabs and its members list it on their next load.)
    if !private {
        let lobby = crate::protocol::Lobby {
            newest_room: room.id,
        };
        if let Err(e) = state
            .logs
            .ephemeral
            .publish_lobby(lobby, state.broker.as_ref())
        {
            tracing::warn!(error = %e, "lobby change not published");
        }
    }
    Ok(room)
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
    let members = if room.private {
        state.accounts.members(room_id).await?
    } else {
        Vec::new()
    };
    Ok(RoomSnapshot { room, log, members })
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

/// Moves `who`'s read position in room `room_id` up to `seq` (the highest
/// seq it has had on screen); returns the position stored.
pub async fn mark_read(
    state: &AppState,
    who: &Principal,
    room_id: i64,
    seq: u64,
) -> Result<u64, AppError> {
    let topic = Topic::room(room_id);
    authorize(state, who, topic, Access::Read).await?;
    let user = who.require_user()?;
    let stored = state.store.mark_read(user.id, room_id, seq).await?;
    state.unread.user_changed(user.id);
    Ok(stored)
}
