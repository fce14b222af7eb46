//! Wire protocol: the typed frames exchanged over `GET /ws`, and the versioned
//! event types that every channel (WebSocket, server functions, and later the
//! fallback rungs) carries. Compiled in both builds (ssr and hydrate).
//!
//! The normative description for client authors is `docs/PROTOCOL.md`; keep
//! the two in step. Every frame is one JSON object in one WebSocket text
//! message, tagged by its `type` field.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

/// Longest topic name accepted anywhere.
pub const MAX_TOPIC_LEN: usize = 128;

/// A named event stream, e.g. `room:42`. Validated on construction, so a
/// `Topic` in hand is always well formed (kind and id), though it may name a
/// stream that does not exist.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Topic(String);

/// The kinds of topic this server knows. Later issues add `user`, `doc` and
/// `presence`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicKind {
    /// A chat room's message log; durable (persisted before broadcast).
    Room(i64),
    /// A price feed, `ticker:<SYMBOL>`; ephemeral (a bounded in-memory window,
    /// a new epoch whenever the server restarts).
    Ticker,
}

/// Longest ticker symbol.
pub const MAX_SYMBOL_LEN: usize = 16;

impl Topic {
    /// The topic of chat room `id`.
    pub fn room(id: i64) -> Self {
        Topic(format!("room:{id}"))
    }

    /// The price feed of `symbol` (validated).
    pub fn ticker(symbol: &str) -> Result<Self, ProtocolError> {
        Topic::parse(&format!("ticker:{symbol}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the topic's events are persisted (`room:`), without parsing it.
    pub fn is_durable(&self) -> bool {
        self.0.starts_with("room:")
    }

    pub fn kind(&self) -> TopicKind {
        // Proven by `parse`: every Topic was validated to one of these shapes.
        match self.0.split_once(':') {
            Some(("room", id)) => TopicKind::Room(id.parse().unwrap_or_default()),
            _ => TopicKind::Ticker,
        }
    }

    /// Parses and validates a topic name.
    pub fn parse(name: &str) -> Result<Self, ProtocolError> {
        if name.is_empty() || name.len() > MAX_TOPIC_LEN {
            return Err(ProtocolError::InvalidTopic(
                "topic must be 1 to 128 bytes".into(),
            ));
        }
        match name.split_once(':') {
            Some(("room", id)) => match id.parse::<i64>() {
                Ok(n) if n > 0 && id == n.to_string() => Ok(Topic(name.to_owned())),
                _ => Err(ProtocolError::InvalidTopic(format!(
                    "`{id}` is not a room id (a positive integer)"
                ))),
            },
            Some(("ticker", sym))
                if !sym.is_empty()
                    && sym.len() <= MAX_SYMBOL_LEN
                    && sym.bytes().all(|b| {
                        b.is_ascii_uppercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    }) =>
            {
                Ok(Topic(name.to_owned()))
            }
            Some(("ticker", sym)) => Err(ProtocolError::InvalidTopic(format!(
                "`{sym}` is not a ticker symbol (1 to {MAX_SYMBOL_LEN} of A-Z 0-9 . _ -)"
            ))),
            _ => Err(ProtocolError::InvalidTopic(format!(
                "unknown topic kind in `{name}` (expected `room:<id>` or `ticker:<SYMBOL>`)"
            ))),
        }
    }
}

impl TryFrom<String> for Topic {
    type Error = ProtocolError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Topic::parse(&s)
    }
}

impl From<Topic> for String {
    fn from(t: Topic) -> String {
        t.0
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A position in a topic's log.
///
/// `seq` counts the topic's events from 1 with no gaps; `seq == 0` means
/// "before the first event". `epoch` identifies one incarnation of the log:
/// it changes only when the history is reset or lost, and a client holding a
/// version of another epoch must drop its state and reload the snapshot.
/// Epochs are compared for equality only. Both fit in a JavaScript number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Version {
    pub epoch: u32,
    pub seq: u64,
}

impl Version {
    pub fn new(epoch: u32, seq: u64) -> Self {
        Version { epoch, seq }
    }
}

/// One event of a topic, at the version the server assigned to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub topic: Topic,
    pub version: Version,
    pub data: EventData,
}

/// What an event says, tagged by `kind`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventData {
    /// A chat message posted to a room.
    Message(ChatMessage),
    /// A price update on a ticker.
    Tick(Tick),
}

impl EventData {
    /// The id the writer generated for this event, if it came from a client.
    pub fn client_id(&self) -> Option<Uuid> {
        match self {
            EventData::Message(m) => Some(m.client_id),
            EventData::Tick(_) => None,
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Generated by the sender; a retried send with the same id is the same message.
    pub client_id: Uuid,
    pub author: String,
    pub body: String,
    /// Unix time in milliseconds, assigned by the server.
    pub sent_at: i64,
}

/// Frames a client sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Start receiving `topic`. With `since`, the server first replays every
    /// event after that version (or answers `reset` if it cannot).
    Subscribe {
        topic: Topic,
        #[serde(default)]
        since: Option<Version>,
    },
    Unsubscribe {
        topic: Topic,
    },
    /// Post a chat message to a room topic. Answered by `ack` or `error`
    /// carrying the same `client_id`.
    Send {
        topic: Topic,
        client_id: Uuid,
        body: String,
    },
    /// Publish a tick to a `ticker:` topic. Only connections that presented
    /// the server's publish token may publish; no ack (a feed is fire-and-forget),
    /// refusals answer with `error`.
    Publish {
        topic: Topic,
        tick: Tick,
    },
    Ping {},
    Pong {},
}

/// Frames the server sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// First frame on every connection.
    Hello {
        conn_id: u64,
        heartbeat_interval_ms: u64,
        heartbeat_timeout_ms: u64,
        max_frame_bytes: usize,
    },
    /// The subscription is live at `version`: every later event follows in order.
    Subscribed {
        topic: Topic,
        version: Version,
    },
    Unsubscribed {
        topic: Topic,
    },
    Event(Event),
    /// The server cannot continue `topic` from the client's version (new epoch,
    /// or too far behind): reload the snapshot, then subscribe again.
    Reset {
        topic: Topic,
        version: Version,
        reason: String,
    },
    /// A `send` was persisted (or had been already: a retry) as `event`.
    Ack {
        client_id: Uuid,
        event: Event,
    },
    Error(ErrorFrame),
    Ping {},
    Pong {},
    /// The server is going away; reconnect after `after_ms` (the socket closes next).
    Reconnect {
        reason: String,
        after_ms: u64,
    },
}

/// A request could not be served. The connection stays open.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorFrame {
    pub code: ErrorCode,
    pub message: String,
    /// Set when the error answers a `subscribe` or a `send`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<Topic>,
    /// Set when the error answers a `send`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Uuid>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or a known `type` with missing or ill-typed fields.
    BadFrame,
    /// A `type` this server does not know.
    UnknownType,
    /// The text frame is longer than `max_frame_bytes` from `hello`.
    TooLarge,
    InvalidTopic,
    NotFound,
    /// The content failed validation (e.g. an empty or over-long message).
    Validation,
    /// A display name must be chosen (cookie `tandem_name`) before sending.
    NameRequired,
    /// A per-connection limit was reached (e.g. too many subscriptions).
    Limit,
    /// Not allowed on this connection (e.g. publishing without the token).
    Forbidden,
    Conflict,
    Internal,
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
    /// Too many malformed frames: the client is broken; do not reconnect as is.
    ProtocolViolation = 4400,
}

impl CloseCode {
    pub fn from_u16(code: u16) -> Option<Self> {
        Some(match code {
            1000 => CloseCode::Normal,
            1012 => CloseCode::ServiceRestart,
            1009 => CloseCode::MessageTooBig,
            4000 => CloseCode::HeartbeatTimeout,
            4001 => CloseCode::SlowConsumer,
            4400 => CloseCode::ProtocolViolation,
            _ => return None,
        })
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
    InvalidTopic(String),
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

const CLIENT_TYPES: [&str; 6] = [
    "subscribe",
    "unsubscribe",
    "send",
    "publish",
    "ping",
    "pong",
];

impl ClientFrame {
    /// Decodes one text frame, refusing frames above `max_len` bytes before
    /// parsing them, and telling an unknown `type` apart from a malformed frame.
    pub fn decode(text: &str, max_len: usize) -> Result<Self, ProtocolError> {
        if text.len() > max_len {
            return Err(ProtocolError::TooLarge {
                len: text.len(),
                max: max_len,
            });
        }
        serde_json::from_str(text).map_err(|err| {
            #[derive(Deserialize)]
            struct Tag {
                #[serde(rename = "type")]
                kind: String,
            }
            match serde_json::from_str::<Tag>(text) {
                Ok(tag) if !CLIENT_TYPES.contains(&tag.kind.as_str()) => {
                    ProtocolError::UnknownType(tag.kind.chars().take(64).collect())
                }
                _ => {
                    let msg = err.to_string();
                    match msg.strip_prefix("invalid topic: ") {
                        Some(rest) => ProtocolError::InvalidTopic(rest.to_owned()),
                        None => ProtocolError::BadFrame(msg),
                    }
                }
            }
        })
    }
}

impl ServerFrame {
    pub fn to_json(&self) -> String {
        // Serializing these plain data types cannot fail: no maps with
        // non-string keys, no custom Serialize impls that error.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"type\":\"pong\"}"))
    }
}

impl ClientFrame {
    pub fn to_json(&self) -> String {
        // As for ServerFrame: plain data, serialization cannot fail.
        serde_json::to_string(self).unwrap_or_else(|_| String::from("{\"type\":\"ping\"}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_validation() {
        assert!(Topic::parse("room:1").is_ok());
        assert_eq!(
            Topic::parse("room:42").map(|t| t.kind()),
            Ok(TopicKind::Room(42))
        );
        assert_eq!(
            Topic::parse("ticker:BTC-USD").map(|t| t.kind()),
            Ok(TopicKind::Ticker)
        );
        for bad in [
            "ticker:",
            "ticker:btc",
            "ticker:ABCDEFGHIJKLMNOPQ",
            "",
            "room:",
            "room:0",
            "room:-1",
            "room:01",
            "room:x",
            "user:1",
            "room",
            &"r".repeat(200),
        ] {
            assert!(Topic::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn client_frames_round_trip() {
        let frames = [
            ClientFrame::Subscribe {
                topic: Topic::room(3),
                since: Some(Version::new(9, 4)),
            },
            ClientFrame::Subscribe {
                topic: Topic::room(3),
                since: None,
            },
            ClientFrame::Unsubscribe {
                topic: Topic::room(3),
            },
            ClientFrame::Send {
                topic: Topic::room(1),
                client_id: Uuid::from_u128(7),
                body: "hi".into(),
            },
            ClientFrame::Publish {
                topic: Topic::ticker("ABC").unwrap(),
                tick: Tick { price: 1.5, ts: 7 },
            },
            ClientFrame::Ping {},
            ClientFrame::Pong {},
        ];
        for f in frames {
            let json = f.to_json();
            assert_eq!(ClientFrame::decode(&json, 1024), Ok(f), "{json}");
        }
    }

    #[test]
    fn documented_json_shapes() {
        let f = ClientFrame::decode(
            r#"{"type":"subscribe","topic":"room:1","since":{"epoch":5,"seq":2}}"#,
            1024,
        );
        assert_eq!(
            f,
            Ok(ClientFrame::Subscribe {
                topic: Topic::room(1),
                since: Some(Version::new(5, 2))
            })
        );
        assert_eq!(
            ClientFrame::decode(r#"{"type":"ping"}"#, 64),
            Ok(ClientFrame::Ping {})
        );
        let ev = ServerFrame::Event(Event {
            topic: Topic::room(1),
            version: Version::new(5, 3),
            data: EventData::Message(ChatMessage {
                client_id: Uuid::from_u128(1),
                author: "ann".into(),
                body: "yo".into(),
                sent_at: 10,
            }),
        });
        assert_eq!(
            ev.to_json(),
            r#"{"type":"event","topic":"room:1","version":{"epoch":5,"seq":3},"data":{"kind":"message","client_id":"00000000-0000-0000-0000-000000000001","author":"ann","body":"yo","sent_at":10}}"#
        );
        let back: ServerFrame = serde_json::from_str(&ev.to_json()).expect("decodes");
        assert_eq!(back, ev);
    }

    #[test]
    fn refusals_are_typed() {
        assert!(matches!(
            ClientFrame::decode("not json", 64),
            Err(ProtocolError::BadFrame(_))
        ));
        assert!(
            matches!(ClientFrame::decode(r#"{"type":"dance"}"#, 64), Err(ProtocolError::UnknownType(t)) if t == "dance")
        );
        assert!(matches!(
            ClientFrame::decode(r#"{"type":"subscribe"}"#, 64),
            Err(ProtocolError::BadFrame(_))
        ));
        assert!(matches!(
            ClientFrame::decode(r#"{"type":"ping","x":1}"#, 64),
            Err(ProtocolError::BadFrame(_))
        ));
        assert!(matches!(
            ClientFrame::decode(r#"{"type":"subscribe","topic":"nope:1"}"#, 128),
            Err(ProtocolError::InvalidTopic(_))
        ));
        let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(100));
        assert_eq!(
            ClientFrame::decode(&big, 64),
            Err(ProtocolError::TooLarge {
                len: big.len(),
                max: 64
            })
        );
    }

    #[test]
    fn close_code_ranges() {
        assert!(CloseCode::should_reconnect(1012));
        assert!(CloseCode::should_reconnect(4000));
        assert!(CloseCode::should_reconnect(1006));
        assert!(!CloseCode::should_reconnect(4400));
        assert_eq!(CloseCode::from_u16(4001), Some(CloseCode::SlowConsumer));
    }
}
