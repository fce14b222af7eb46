//! `ClientFrame::decode`: text to a typed client frame, with every refusal
//! classified by type (`ProtocolError`), never by reading error text.
//!
//! Decoding runs in two steps. serde reads the frame into its wire shape,
//! where topics are still plain strings, and refuses unknown fields; then
//! each topic is validated with `Topic::parse`, whose error is typed.

use super::{ClientFrame, ProtocolError, Tick, Topic, Version};
use serde::Deserialize;
use uuid::Uuid;

/// The frame types a client may send.
const CLIENT_TYPES: [&str; 9] = [
    "subscribe",
    "unsubscribe",
    "send",
    "edit",
    "delete",
    "typing",
    "publish",
    "ping",
    "pong",
];

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Wire {
    Subscribe {
        topic: String,
        #[serde(default)]
        since: Option<Version>,
    },
    Unsubscribe {
        topic: String,
        #[serde(default)]
        away: bool,
    },
    Send {
        topic: String,
        client_id: Uuid,
        body: String,
    },
    Edit {
        topic: String,
        client_id: Uuid,
        target: u64,
        body: String,
    },
    Delete {
        topic: String,
        client_id: Uuid,
        target: u64,
    },
    Typing {
        topic: String,
    },
    Publish {
        topic: String,
        tick: Tick,
    },
    Ping {},
    Pong {},
}

impl ClientFrame {
    /// Decodes one text frame, refusing frames above `max_len` bytes before
    /// parsing them, and telling an unknown `type` apart from a malformed
    /// frame and from a malformed topic.
    pub fn decode(text: &str, max_len: usize) -> Result<Self, ProtocolError> {
        if text.len() > max_len {
            return Err(ProtocolError::TooLarge {
                len: text.len(),
                max: max_len,
            });
        }
        let wire = serde_json::from_str::<Wire>(text).map_err(|err| unreadable(text, err))?;
        let topic = |name: String| Topic::parse(&name).map_err(ProtocolError::InvalidTopic);
        Ok(match wire {
            Wire::Subscribe { topic: t, since } => ClientFrame::Subscribe {
                topic: topic(t)?,
                since,
            },
            Wire::Unsubscribe { topic: t, away } => ClientFrame::Unsubscribe {
                topic: topic(t)?,
                away,
            },
            Wire::Send {
                topic: t,
                client_id,
                body,
            } => ClientFrame::Send {
                topic: topic(t)?,
                client_id,
                body,
            },
            Wire::Edit {
                topic: t,
                client_id,
                target,
                body,
            } => ClientFrame::Edit {
                topic: topic(t)?,
                client_id,
                target,
                body,
            },
            Wire::Delete {
                topic: t,
                client_id,
                target,
            } => ClientFrame::Delete {
                topic: topic(t)?,
                client_id,
                target,
            },
            Wire::Typing { topic: t } => ClientFrame::Typing { topic: topic(t)? },
            Wire::Publish { topic: t, tick } => ClientFrame::Publish {
                topic: topic(t)?,
                tick,
            },
            Wire::Ping {} => ClientFrame::Ping {},
            Wire::Pong {} => ClientFrame::Pong {},
        })
    }
}

/// Classifies a frame serde could not read: an unknown `type`, or else malformed.
fn unreadable(text: &str, err: serde_json::Error) -> ProtocolError {
    #[derive(Deserialize)]
    struct Tag {
        #[serde(rename = "type")]
        kind: String,
    }
    match serde_json::from_str::<Tag>(text) {
        Ok(tag) if !CLIENT_TYPES.contains(&tag.kind.as_str()) => {
            ProtocolError::UnknownType(tag.kind.chars().take(64).collect())
        }
        _ => ProtocolError::BadFrame(err.to_string()),
    }
}
