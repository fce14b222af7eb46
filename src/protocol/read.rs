//! Reading server frames and events in one pass, without serde's buffering.
//!
//! `ServerFrame` and `EventData` are written with serde's internal tagging
//! (`{"type": …, fields…}`, `{"kind": …, fields…}`), and `AppError` with
//! adjacent tagging. serde's derived readers for those shapes first copy the
//! whole object into a generic buffer (`Content`) to find the tag, then read
//! the variant from the copy: a second pass, an allocation per value, and
//! in the browser's wasm the largest single piece of serialization code.
//!
//! Here each is read instead as one flat record: the tag, plus every field
//! any variant has, each optional; then the variant is built from the tag
//! and the fields it needs. What is accepted stays what the derived readers
//! accepted: unknown fields are ignored, an unknown event kind reads as
//! `EventData::Unknown` and an unknown error code as `ErrorCode::Unknown`,
//! an unknown frame type and a missing field are errors. This relies on one
//! rule of the protocol (`docs/PROTOCOL.md`, "Evolution"): a field name has
//! one JSON type in every frame type and event kind.

use super::{
    ChatMessage, Delete, Edit, ErrorCode, ErrorFrame, Event, EventData, Lobby, Policy, Presence,
    Present, RoomUnread, ServerFrame, Tick, Topic, Unread, Version,
};
use crate::error::AppError;
use serde::Deserialize;
use std::fmt;
use uuid::Uuid;

/// A field a variant needs was absent (or `null`).
#[derive(Debug)]
pub struct Missing(&'static str);

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "missing field `{}`", self.0)
    }
}

fn need<T>(value: Option<T>, name: &'static str) -> Result<T, Missing> {
    value.ok_or(Missing(name))
}

/// `need!(w.field)`: the field's value, or `Missing` naming that field.
macro_rules! need {
    ($w:ident . $field:ident) => {
        need($w.$field, stringify!($field))?
    };
}

/// A server frame's `type`. Unknown types are an error, as before.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum FrameType {
    Hello,
    Subscribed,
    Unsubscribed,
    Event,
    Reset,
    Ack,
    Error,
    Ping,
    Pong,
    Reconnect,
    Batch,
}

/// Every field of every server frame type.
#[derive(Deserialize)]
pub struct FrameWire {
    #[serde(rename = "type")]
    kind: FrameType,
    conn_id: Option<u64>,
    protocol: Option<u32>,
    heartbeat_interval_ms: Option<u64>,
    heartbeat_timeout_ms: Option<u64>,
    max_frame_bytes: Option<usize>,
    hidden_tab_ms: Option<u64>,
    topic: Option<Topic>,
    version: Option<Version>,
    policy: Option<Policy>,
    data: Option<EventData>,
    reason: Option<String>,
    client_id: Option<Uuid>,
    event: Option<Event>,
    code: Option<ErrorCode>,
    message: Option<String>,
    retry_after_ms: Option<u64>,
    window_ms: Option<u64>,
    frames: Option<Vec<ServerFrame>>,
}

impl TryFrom<FrameWire> for ServerFrame {
    type Error = Missing;

    fn try_from(w: FrameWire) -> Result<Self, Missing> {
        Ok(match w.kind {
            FrameType::Hello => ServerFrame::Hello {
                conn_id: need!(w.conn_id),
                protocol: need!(w.protocol),
                heartbeat_interval_ms: need!(w.heartbeat_interval_ms),
                heartbeat_timeout_ms: need!(w.heartbeat_timeout_ms),
                max_frame_bytes: need!(w.max_frame_bytes),
                hidden_tab_ms: w.hidden_tab_ms.unwrap_or(0),
            },
            FrameType::Subscribed => ServerFrame::Subscribed {
                topic: need!(w.topic),
                version: need!(w.version),
                policy: need!(w.policy),
            },
            FrameType::Unsubscribed => ServerFrame::Unsubscribed {
                topic: need!(w.topic),
            },
            FrameType::Event => ServerFrame::Event(Event {
                topic: need!(w.topic),
                version: need!(w.version),
                data: need!(w.data),
            }),
            FrameType::Reset => ServerFrame::Reset {
                topic: need!(w.topic),
                version: need!(w.version),
                reason: need!(w.reason),
            },
            FrameType::Ack => ServerFrame::Ack {
                client_id: need!(w.client_id),
                event: need!(w.event),
            },
            FrameType::Error => ServerFrame::Error(ErrorFrame {
                code: need!(w.code),
                message: need!(w.message),
                topic: w.topic,
                client_id: w.client_id,
                retry_after_ms: w.retry_after_ms,
            }),
            FrameType::Ping => ServerFrame::Ping {},
            FrameType::Pong => ServerFrame::Pong {},
            FrameType::Reconnect => ServerFrame::Reconnect {
                reason: need!(w.reason),
                window_ms: need!(w.window_ms),
            },
            FrameType::Batch => ServerFrame::Batch {
                frames: need!(w.frames),
            },
        })
    }
}

/// An event's `kind`; a kind this build does not know is `Unknown`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum DataKind {
    Message,
    Edit,
    Delete,
    Tick,
    Presence,
    Unread,
    Lobby,
    #[serde(other)]
    Unknown,
}

/// Every field of every event kind.
#[derive(Deserialize)]
pub struct DataWire {
    kind: DataKind,
    client_id: Option<Uuid>,
    author: Option<String>,
    author_id: Option<i64>,
    body: Option<String>,
    sent_at: Option<i64>,
    /// Optional on a message, required on an edit.
    edited_at: Option<i64>,
    deleted: Option<bool>,
    revised: Option<u64>,
    target: Option<u64>,
    by: Option<String>,
    by_id: Option<i64>,
    deleted_at: Option<i64>,
    price: Option<f64>,
    ts: Option<i64>,
    users: Option<Vec<Present>>,
    count: Option<u32>,
    rooms: Option<Vec<RoomUnread>>,
    total: Option<u32>,
    newest_room: Option<i64>,
}

impl TryFrom<DataWire> for EventData {
    type Error = Missing;

    fn try_from(w: DataWire) -> Result<Self, Missing> {
        Ok(match w.kind {
            DataKind::Message => EventData::Message(ChatMessage {
                client_id: need!(w.client_id),
                author: need!(w.author),
                author_id: w.author_id.unwrap_or(0),
                body: need!(w.body),
                sent_at: need!(w.sent_at),
                edited_at: w.edited_at,
                deleted: w.deleted.unwrap_or(false),
                revised: w.revised.unwrap_or(0),
            }),
            DataKind::Edit => EventData::Edit(Edit {
                client_id: need!(w.client_id),
                target: need!(w.target),
                body: need!(w.body),
                author: need!(w.author),
                author_id: need!(w.author_id),
                edited_at: need!(w.edited_at),
            }),
            DataKind::Delete => EventData::Delete(Delete {
                client_id: need!(w.client_id),
                target: need!(w.target),
                by: need!(w.by),
                by_id: need!(w.by_id),
                deleted_at: need!(w.deleted_at),
            }),
            DataKind::Tick => EventData::Tick(Tick {
                price: need!(w.price),
                ts: need!(w.ts),
            }),
            DataKind::Presence => EventData::Presence(Presence {
                users: need!(w.users),
                count: need!(w.count),
            }),
            DataKind::Unread => EventData::Unread(Unread {
                rooms: need!(w.rooms),
                total: need!(w.total),
            }),
            DataKind::Lobby => EventData::Lobby(Lobby {
                newest_room: need!(w.newest_room),
            }),
            DataKind::Unknown => EventData::Unknown,
        })
    }
}

/// An `AppError`'s `code`. Unknown codes are an error, as before.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum ErrorKind {
    Validation,
    NotFound,
    Conflict,
    Unauthenticated,
    Forbidden,
    Limit,
    Internal,
    Transport,
}

/// `AppError` as written: `{"code": …, "message": …}`, no message for `internal`.
#[derive(Deserialize)]
pub struct AppErrorWire {
    code: ErrorKind,
    message: Option<String>,
}

impl TryFrom<AppErrorWire> for AppError {
    type Error = Missing;

    fn try_from(w: AppErrorWire) -> Result<Self, Missing> {
        let message = || need(w.message, "message");
        Ok(match w.code {
            ErrorKind::Validation => AppError::Validation(message()?),
            ErrorKind::NotFound => AppError::NotFound(message()?),
            ErrorKind::Conflict => AppError::Conflict(message()?),
            ErrorKind::Unauthenticated => AppError::Unauthenticated(message()?),
            ErrorKind::Forbidden => AppError::Forbidden(message()?),
            ErrorKind::Limit => AppError::Limit(message()?),
            ErrorKind::Internal => AppError::Internal,
            ErrorKind::Transport => AppError::Transport(message()?),
        })
    }
}
