//! Wire protocol: the typed frames exchanged over `GET /ws`, and the versioned
//! event types that every channel (WebSocket, server functions, and later the
//! fallback rungs) carries. Compiled in both builds (ssr and hydrate).
//!
//! The normative description for client authors is `docs/PROTOCOL.md`; keep
//! the two in step. Every frame is one JSON object in one WebSocket text
//! message, tagged by its `type` field.
//!
//! Evolution: the client names the protocol version it speaks when it
//! connects (`/ws?protocol=N`) and `hello` answers with the version the
//! server speaks. Client frames refuse unknown fields (a typo must not pass
//! silently); server frames are read leniently by clients (unknown fields,
//! unknown error codes and unknown event kinds are tolerated), so the server
//! can add to them without breaking deployed clients.

mod decode;
pub(crate) mod read;
mod topic;

pub use topic::{Admit, Durability, Policy, Symbol, Topic, TopicError, TopicKind, Version};
pub use topic::{MAX_SYMBOL_LEN, MAX_TOPIC_LEN};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The protocol version this build speaks (`hello.protocol`).
pub const PROTOCOL_VERSION: u32 = 1;
/// The oldest protocol version a client may ask for.
pub const MIN_PROTOCOL_VERSION: u32 = 1;

/// One event of a topic, at the version the server assigned to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub topic: Topic,
    pub version: Version,
    pub data: EventData,
}

/// What an event says, tagged by `kind`. Read in one pass (`read`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", try_from = "read::DataWire")]
pub enum EventData {
    /// A chat message posted to a room.
    Message(ChatMessage),
    /// The author changed a message's text (`target` is the message's seq).
    Edit(Edit),
    /// A message was deleted, by its author or the room's owner.
    Delete(Delete),
    /// A price update on a ticker.
    Tick(Tick),
    /// Who is in a room now (the whole list: latest wins).
    Presence(Presence),
    /// An account's unread counts (the whole summary: latest wins).
    Unread(Unread),
    /// The public room list changed (`lobby:public`).
    Lobby(Lobby),
    /// A kind this build does not know (sent by a newer server): it still
    /// advances the topic's version, and shows nothing.
    Unknown,
}

impl EventData {
    /// The id the writer generated for this event, if it came from a client.
    pub fn client_id(&self) -> Option<Uuid> {
        match self {
            EventData::Message(m) => Some(m.client_id),
            EventData::Edit(e) => Some(e.client_id),
            EventData::Delete(d) => Some(d.client_id),
            EventData::Tick(_)
            | EventData::Presence(_)
            | EventData::Unread(_)
            | EventData::Lobby(_)
            | EventData::Unknown => None,
        }
    }
}

/// A price update. `ts` is the publisher's clock in microseconds since the
/// Unix epoch (feed time; also what latency is measured from).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tick {
    pub price: f64,
    pub ts: i64,
}

/// Who is in a room: every account with a live connection subscribed to the
/// room, once however many tabs, by name; with whether each is typing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// Sorted by name, at most `MAX_PRESENT`.
    pub users: Vec<Present>,
    /// How many accounts are present in all (`users` may be cut short).
    pub count: u32,
}

/// Most accounts a presence event lists.
pub const MAX_PRESENT: usize = 100;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Present {
    pub id: i64,
    pub name: String,
    /// Every tab of the account that is in the room is hidden (it left the
    /// room's topic with `unsubscribe{away}`, and is still connected).
    #[serde(default)]
    pub away: bool,
    /// Typed in the room within the last few seconds (the server clears it
    /// `TYPING_MS` after the last `typing` frame, or when they post).
    pub typing: bool,
}

/// One account's unread messages, per room it has read in: messages by
/// others after its read position, at most `UNREAD_CAP` counted per room.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unread {
    /// Rooms with unread messages, by room id.
    pub rooms: Vec<RoomUnread>,
    /// The sum of `rooms[].count`.
    pub total: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomUnread {
    pub room_id: i64,
    pub count: u32,
}

/// The public room list changed: `newest_room` is the newest public room's
/// id. Clients refetch the list (`list_rooms`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lobby {
    pub newest_room: i64,
}

/// Most unread messages counted in one room (shown as "99+" past 99).
pub const UNREAD_CAP: u32 = 100;

/// How long one `typing` frame keeps an account marked as typing.
pub const TYPING_MS: u64 = 6_000;

/// A chat message. As first written, only the first five fields are set;
/// a message read from a snapshot or a backfill is shown as it stands at
/// that read (`fold` applied: edits, deletion), with `revised` naming the
/// last change it reflects.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Generated by the sender; a retried send with the same id is the same message.
    pub client_id: Uuid,
    pub author: String,
    /// The author's account id (0 for messages older than accounts).
    #[serde(default)]
    pub author_id: i64,
    pub body: String,
    /// Unix time in milliseconds, assigned by the server.
    pub sent_at: i64,
    /// When the text was last edited (Unix milliseconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<i64>,
    /// Deleted: `body` is empty and stays so.
    #[serde(default, skip_serializing_if = "is_false")]
    pub deleted: bool,
    /// The seq of the newest edit or delete reflected here (0: none). A
    /// change event at or below it is already applied.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revised: u64,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A new text for message `target`, by its author.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edit {
    pub client_id: Uuid,
    /// The seq of the message in the same topic.
    pub target: u64,
    pub body: String,
    pub author: String,
    pub author_id: i64,
    /// Unix milliseconds, assigned by the server.
    pub edited_at: i64,
}

/// Message `target` deleted by account `by` (its author or the room's owner).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delete {
    pub client_id: Uuid,
    pub target: u64,
    pub by: String,
    pub by_id: i64,
    /// Unix milliseconds, assigned by the server.
    pub deleted_at: i64,
}

/// What a change event does to its target message, given the change's seq.
/// The one rule every reader applies (the store when it keeps a message's
/// current state, every client when an event arrives), so all converge:
/// changes apply in seq order, once (`seq > revised`); a deleted message
/// stays deleted (a later edit changes nothing); an edit by anyone but the
/// author changes nothing. Returns whether `m` changed.
pub fn fold(m: &mut ChatMessage, seq: u64, change: &EventData) -> bool {
    if seq <= m.revised || m.deleted {
        return false;
    }
    match change {
        EventData::Edit(e) if e.author_id == m.author_id && m.author_id != 0 => {
            m.body.clone_from(&e.body);
            m.edited_at = Some(e.edited_at);
        }
        EventData::Delete(_) => {
            m.body.clear();
            m.deleted = true;
        }
        _ => return false,
    }
    m.revised = seq;
    true
}

/// A write to a chat room, however it travels (the `send`, `edit` and
/// `delete` frames, or the server functions): a new message, or a change to
/// an earlier one by seq.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ChatWrite {
    Message { body: String },
    Edit { target: u64, body: String },
    Delete { target: u64 },
}

impl EventData {
    /// The message seq a change event refers to.
    pub fn target(&self) -> Option<u64> {
        match self {
            EventData::Edit(e) => Some(e.target),
            EventData::Delete(d) => Some(d.target),
            _ => None,
        }
    }
}

/// Frames a client sends. Decoded by `ClientFrame::decode`, which refuses
/// unknown fields and classifies every refusal (`ProtocolError`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Start receiving `topic`. With `since`, the server first brings the
    /// client up to date from that version (or answers `reset` if it cannot).
    Subscribe {
        topic: Topic,
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<Version>,
    },
    /// Stop receiving `topic`. With `away` (room topics): the client stops
    /// because its page is hidden and comes back when it is shown; while
    /// this connection lasts its account stays in the room's presence,
    /// marked away.
    Unsubscribe {
        topic: Topic,
        #[serde(default, skip_serializing_if = "is_false")]
        away: bool,
    },
    /// Post a chat message to a room topic. Answered by `ack` or `error`
    /// carrying the same `client_id`.
    Send {
        topic: Topic,
        client_id: Uuid,
        body: String,
    },
    /// Replace the text of one's own message `target` (its seq). Answered
    /// like `send`; the change is a new event of the topic.
    Edit {
        topic: Topic,
        client_id: Uuid,
        target: u64,
        body: String,
    },
    /// Delete message `target` (one's own, or any in a room one owns).
    /// Answered like `send`.
    Delete {
        topic: Topic,
        client_id: Uuid,
        target: u64,
    },
    /// The account is typing in room `topic` (a `room:` topic): it shows as
    /// typing on the room's `presence:` topic for `TYPING_MS`. No answer;
    /// refusals answer with `error`. Clients send it at most every few
    /// seconds while the user types.
    Typing {
        topic: Topic,
    },
    /// Publish a tick to a `ticker:` topic. Only connections that presented
    /// the server's publish token may publish; no ack (a feed is
    /// fire-and-forget), refusals answer with `error`.
    Publish {
        topic: Topic,
        tick: Tick,
    },
    Ping {},
    Pong {},
}

/// Frames the server sends. Read in one pass (`read`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", try_from = "read::FrameWire")]
pub enum ServerFrame {
    /// First frame on every connection.
    Hello {
        conn_id: u64,
        /// The protocol version the server speaks on this connection.
        protocol: u32,
        heartbeat_interval_ms: u64,
        heartbeat_timeout_ms: u64,
        max_frame_bytes: usize,
        /// After how long hidden a browser tab should drop the
        /// subscriptions it does not need while hidden (0: never). Advice
        /// to clients; absent from older servers.
        #[serde(default)]
        hidden_tab_ms: u64,
    },
    /// The subscription is live at `version`: every later event follows
    /// according to `policy`.
    Subscribed {
        topic: Topic,
        version: Version,
        policy: Policy,
    },
    Unsubscribed {
        topic: Topic,
    },
    Event(Event),
    /// The server cannot continue `topic` from the client's version (new
    /// epoch, or too far behind) and dropped the subscription: reload the
    /// snapshot, then subscribe again. `version` is the newest version the
    /// server knows for the topic.
    Reset {
        topic: Topic,
        version: Version,
        reason: String,
    },
    /// A `send`, `edit` or `delete` was persisted (or had been already: a retry) as `event`.
    Ack {
        client_id: Uuid,
        event: Event,
    },
    Error(ErrorFrame),
    Ping {},
    Pong {},
    /// The server is going away: reconnect at a uniformly random moment
    /// within `window_ms` (the socket closes next).
    Reconnect {
        reason: String,
        window_ms: u64,
    },
    /// Several frames in one WebSocket message, in order, to be handled as
    /// if each had come alone; sent only to clients that connected with
    /// `batch=1`. Never nested.
    Batch {
        frames: Vec<ServerFrame>,
    },
}

/// A request could not be served. The connection stays open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorFrame {
    pub code: ErrorCode,
    pub message: String,
    /// Set when the error answers a `subscribe`, `send` or `publish`, or
    /// ends a subscription (the topic is then no longer subscribed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<Topic>,
    /// Set when the error answers a `send`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Uuid>,
    /// Set when a rate limit refused the request: retry after this long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or a known `type` with missing, unknown or ill-typed fields.
    BadFrame,
    /// A `type` this server does not know.
    UnknownType,
    /// The text frame is longer than `max_frame_bytes` from `hello`.
    TooLarge,
    InvalidTopic,
    NotFound,
    /// The content failed validation (e.g. an empty or over-long message).
    Validation,
    /// The request needs a signed-in account (a session cookie or an
    /// access token), or the credentials presented are invalid.
    Unauthenticated,
    /// A per-connection limit was reached (e.g. too many subscriptions).
    Limit,
    /// Not allowed for this principal (e.g. a token without the needed
    /// scope, or publishing without the `publish` scope).
    Forbidden,
    Conflict,
    /// A server-side failure (e.g. storage). Retrying may succeed.
    Internal,
    /// A code this build does not know (sent by a newer server).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// Whether retrying the same request later may succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, ErrorCode::Internal)
    }
}

/// WebSocket close codes the server uses. 4000–4099: reconnect (with
/// backoff); 4400–4499: terminal, do not reconnect without a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum CloseCode {
    Normal = 1000,
    /// Server shutting down or restarting: reconnect.
    ServiceRestart = 1012,
    /// A frame above the transport limit; the connection cannot continue.
    MessageTooBig = 1009,
    /// No frame from the peer within the heartbeat timeout.
    HeartbeatTimeout = 4000,
    /// Reserved: not sent today (a slow reader's gaps are repaired from the
    /// topic's log instead). If received: reconnect and resume from your versions.
    SlowConsumer = 4001,
    /// No subscription for `idle-close-ms`: reconnect when there is
    /// something to subscribe to, not before.
    Idle = 4002,
    /// Too many malformed frames: the client is broken; do not reconnect as is.
    ProtocolViolation = 4400,
    /// The connection's credentials ended: its session was logged out,
    /// revoked or expired, or its access token revoked. Sign in again (or
    /// get a new token) instead of reconnecting as is.
    Unauthenticated = 4401,
    /// Went on past `max-refusals` rate-limit refusals in a row: the client
    /// floods; do not reconnect as is.
    RateLimited = 4429,
}

impl CloseCode {
    pub fn from_u16(code: u16) -> Option<Self> {
        Some(match code {
            1000 => CloseCode::Normal,
            1012 => CloseCode::ServiceRestart,
            1009 => CloseCode::MessageTooBig,
            4000 => CloseCode::HeartbeatTimeout,
            4001 => CloseCode::SlowConsumer,
            4002 => CloseCode::Idle,
            4400 => CloseCode::ProtocolViolation,
            4401 => CloseCode::Unauthenticated,
            4429 => CloseCode::RateLimited,
            _ => return None,
        })
    }

    /// The close code an SSE stream's `event: close` message carries in its
    /// data (`{"code":4401,"reason":"…"}`), or 1006 (closed abnormally) if
    /// the data has none.
    pub fn from_sse_close(data: &str) -> u16 {
        // A struct, not `serde_json::Value`: that would bring a JSON tree
        // and its map into the browser's wasm for one number.
        #[derive(Deserialize)]
        struct Close {
            code: u64,
        }
        crate::json::read::<Close>(data)
            .ok()
            .and_then(|c| u16::try_from(c.code).ok())
            .unwrap_or(1006)
    }

    /// Whether a client should reconnect after this close. Unknown codes
    /// reconnect (with backoff) unless they are in the terminal 4400–4499 range.
    pub fn should_reconnect(code: u16) -> bool {
        !(4400..4500).contains(&code)
    }
}

/// Why an incoming frame was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("frame is {len} bytes; the limit is {max}")]
    TooLarge { len: usize, max: usize },
    #[error("unknown frame type `{0}`")]
    UnknownType(String),
    #[error("malformed frame: {0}")]
    BadFrame(String),
    #[error("invalid topic: {0}")]
    InvalidTopic(#[from] TopicError),
}

impl ProtocolError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::TooLarge { .. } => ErrorCode::TooLarge,
            ProtocolError::UnknownType(_) => ErrorCode::UnknownType,
            ProtocolError::BadFrame(_) => ErrorCode::BadFrame,
            ProtocolError::InvalidTopic(_) => ErrorCode::InvalidTopic,
        }
    }
}

impl ServerFrame {
    /// The frame as JSON text. Serializing these plain types does not fail
    /// in practice; callers log an error and send nothing if it ever does.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

impl ClientFrame {
    /// The frame as JSON text (see `ServerFrame::to_json`).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

#[cfg(test)]
mod tests;
