//! Chat messages over request/response: the room snapshot (the SSR payload),
//! older pages, and sending. Sending is idempotent by `client_id`.

use crate::error::AppError;
use crate::model::{RoomSnapshot, Snapshot};
use crate::protocol::Event;
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use uuid::Uuid;

/// A room and its newest messages, with the version they reflect: subscribe
/// from `log.version` to continue exactly after it.
#[server(endpoint = "room_snapshot", input = GetUrl)]
pub async fn load_room(room_id: i64) -> Result<RoomSnapshot, AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    crate::server::chat::room_snapshot(&state, &who, room_id).await
}

/// Up to `history-page` messages before seq `before`, oldest first.
#[server(endpoint = "older_messages", input = GetUrl)]
pub async fn older_messages(room_id: i64, before: u64) -> Result<Snapshot, AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    crate::server::chat::older_messages(&state, &who, room_id, before).await
}

/// Posts a message as the caller's account (session cookie, or a token with
/// the `write` scope). Persisted, then broadcast
/// by the store's feed; a retry with the same `client_id` returns the
/// original event.
#[server(endpoint = "send_message")]
pub async fn send_message(room_id: i64, client_id: Uuid, body: String) -> Result<Event, AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    let topic = crate::protocol::Topic::room(room_id);
    let write = crate::protocol::ChatWrite::Message { body };
    let sent = crate::server::chat::write(&state, &who, topic, client_id, write)
        .await
        .map_err(crate::server::chat::WriteError::into_app);
    // A plain form (no JavaScript) lands back in the room, with a fixed
    // message for a refusal.
    crate::server::redirect_form_post(&match &sent {
        Ok(_) => format!("/rooms/{room_id}"),
        Err(e) => format!("/rooms/{room_id}?error={}", send_error_code(e)),
    });
    sent
}

/// The code a refused plain-form send is redirected with.
pub fn send_error_code(e: &AppError) -> &'static str {
    match e {
        AppError::Validation(_) => "message",
        AppError::Unauthenticated(_) => "signin",
        AppError::Limit(_) => "limit",
        AppError::NotFound(_) | AppError::Forbidden(_) => "room",
        _ => "internal",
    }
}

/// The fixed text for a send error code (never text from the URL).
pub fn send_error_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "message" => {
            "Not sent: a message needs some text, at most 2000 characters, and no control characters."
        }
        "signin" => "Not sent: log in to write here.",
        "limit" => "Not sent: you are sending too fast. Wait a moment, then send again.",
        "room" => "Not sent: you cannot write to this room.",
        "internal" => "Not sent: the server had a problem. Please send again.",
        _ => return None,
    })
}

/// Replaces the text of the caller's own message `target` (its seq in the
/// room). The change is a new event of the room's topic; a retry with the
/// same `client_id` returns the original event.
#[server(endpoint = "edit_message")]
pub async fn edit_message(
    room_id: i64,
    client_id: Uuid,
    target: u64,
    body: String,
) -> Result<Event, AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    let topic = crate::protocol::Topic::room(room_id);
    let write = crate::protocol::ChatWrite::Edit { target, body };
    crate::server::chat::write(&state, &who, topic, client_id, write)
        .await
        .map_err(crate::server::chat::WriteError::into_app)
}

/// Deletes message `target` (the caller's own, or any in a room the caller
/// owns), as a new event of the room's topic. Idempotent by `client_id`.
#[server(endpoint = "delete_message")]
pub async fn delete_message(room_id: i64, client_id: Uuid, target: u64) -> Result<Event, AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    let topic = crate::protocol::Topic::room(room_id);
    let write = crate::protocol::ChatWrite::Delete { target };
    crate::server::chat::write(&state, &who, topic, client_id, write)
        .await
        .map_err(crate::server::chat::WriteError::into_app)
}

/// Records that the caller had the room's messages up to `seq` on screen
/// (its read position only moves forward, and never past the head).
/// Answers the position stored.
#[server(endpoint = "mark_read")]
pub async fn mark_read(room_id: i64, seq: u64) -> Result<u64, AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    crate::server::chat::mark_read(&state, &who, room_id, seq).await
}

/// The caller is typing in room `room_id`: the socket's `typing` frame, for
/// pages on an HTTP rung of the transport ladder (docs/PROTOCOL.md §15).
/// Authorized as a write to the room; counts against `polls-per-minute`.
#[server(endpoint = "typing")]
pub async fn typing(room_id: i64) -> Result<(), AppError> {
    use crate::server::realtime::backend::Backend;
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    let ip = crate::server::client_ip(&state).await?;
    state.limits.poll(ip).map_err(crate::server::limited)?;
    let topic = crate::protocol::Topic::room(room_id);
    Backend::typing(&state, &who, topic).await
}
