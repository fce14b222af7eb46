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
    crate::server::chat::post_message(&state, &who, topic, client_id, &body).await
}
