//! Domain types that server functions return and the store produces: rooms,
//! snapshots and backfills. Both builds (they cross the server-function
//! boundary as JSON).

use crate::protocol::{Event, Topic, Version};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    pub id: i64,
    pub name: String,
    /// Unix time in milliseconds.
    pub created_at: i64,
    /// The account that created it (the system account for demo rooms).
    pub owner_id: i64,
    /// Members only (and invisible to everyone else).
    pub private: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomSummary {
    pub room: Room,
    /// The room's topic head: how many events (messages, edits, deletions)
    /// its log holds.
    pub messages: u64,
    /// The newest message, as it stands.
    #[serde(default)]
    pub last: Option<LastMessage>,
    /// The viewer's read position, if it ever read the room.
    #[serde(default)]
    pub read_seq: Option<u64>,
    /// Messages by others after the read position (at most
    /// `protocol::UNREAD_CAP`); `None` if the viewer never read the room.
    #[serde(default)]
    pub unread: Option<u32>,
}

/// A room's newest message, for the room list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastMessage {
    pub author: String,
    /// The first `PREVIEW_CHARS` characters of the text ("" if deleted).
    pub preview: String,
    pub sent_at: i64,
    pub deleted: bool,
}

/// How much of a message the room list shows.
pub const PREVIEW_CHARS: usize = 120;

/// One page of the room list, by id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomList {
    /// Rooms in ascending id, at most the page size.
    pub rooms: Vec<RoomSummary>,
    /// More rooms follow: ask again with `after = next`.
    pub next: Option<i64>,
}

/// A page of a topic's log and the version it reflects.
///
/// `events` are ascending by seq. `version` is the topic's head when the page
/// was read, in the same read transaction, so subscribing from `version`
/// continues exactly after this snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub topic: Topic,
    pub version: Version,
    pub events: Vec<Event>,
    /// Whether events older than `events[0]` exist.
    pub has_older: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    pub room: Room,
    pub log: Snapshot,
    /// A private room's members (as `room_members` lists them); empty for a
    /// public room. The room page shows them without a second request.
    #[serde(default)]
    pub members: Vec<Member>,
}

/// The answer to `events_since(topic, version)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backfill {
    pub topic: Topic,
    /// The topic's head when read.
    pub version: Version,
    /// Events after the asked version, ascending, at most the page limit.
    pub events: Vec<Event>,
    /// More events follow the last one returned: ask again from it.
    pub has_more: bool,
    /// The asked version cannot be continued (another epoch, or a seq past the
    /// head): reload the snapshot. `events` is then empty.
    pub reset: bool,
}

impl Backfill {
    /// The answer for a version that cannot be continued; `head` is the
    /// topic's newest version.
    pub fn reset(topic: Topic, head: Version) -> Self {
        Backfill {
            topic,
            version: head,
            events: Vec::new(),
            has_more: false,
            reset: true,
        }
    }
}

/// The signed-in account, as pages see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub id: i64,
    pub name: String,
}

/// One of the account's browser sessions (the account page lists them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The handle to revoke it by (not the secret).
    pub id: i64,
    /// Unix milliseconds.
    pub created_at: i64,
    pub expires_at: i64,
    pub user_agent: String,
    pub ip: String,
    /// The session this request came with.
    pub current: bool,
}

/// One of the account's access tokens (never the secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    pub id: i64,
    pub label: String,
    /// `read`, `write`, `publish`, comma-separated.
    pub scopes: String,
    pub created_at: i64,
}

/// A token just created: the only time its secret is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewToken {
    pub info: TokenInfo,
    pub secret: String,
}

/// A member of a private room.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: i64,
    pub name: String,
    pub owner: bool,
}
