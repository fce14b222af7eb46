//! `Outbox`: the tab's writes waiting for the server, in the order they were
//! made. Pure; both builds. The sender around it (`sender.rs`, browser only)
//! keeps it in the tab's `sessionStorage`, so a reload of the tab or an
//! outage keeps every write, and sends it once the link is back.
//!
//! Rules:
//! - **Per topic, in order, one at a time.** A write is sent only once every
//!   earlier write to its topic was acknowledged or refused; the next one
//!   waits while one is in flight. So what a tab wrote is stored in the
//!   order it was written, whichever path carries it.
//! - **Retries keep the client id**, so a write whose answer was lost is
//!   never stored twice; a transient failure puts the write back at the
//!   head of its topic.
//! - **Only a refusal stops a write** (the server answered no): it stays,
//!   marked with the server's reason, until the user discards it; the
//!   writes after it go on.
//! - A waiting or refused write can be cancelled; one in flight cannot (it
//!   may be stored already).

use crate::protocol::{ChatWrite, Topic};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Where a queued write stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum QueuedState {
    /// Waiting for its turn (or for the link).
    #[default]
    Waiting,
    /// Sent; no answer yet.
    Sending,
    /// The server refused it, for this reason.
    Refused(String),
}

/// What a queued write does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteKind {
    /// A new message with `body`.
    #[default]
    Message,
    /// `body` becomes the new text of message `seq`.
    Edit(u64),
    /// Message `seq` goes.
    Delete(u64),
}

/// One write waiting for the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queued {
    pub topic: Topic,
    pub client_id: Uuid,
    #[serde(default)]
    pub kind: WriteKind,
    /// Shown on the pending row.
    pub author: String,
    /// The text (of a message, or an edit's new text).
    pub body: String,
    /// Send over the WebSocket (else the server function).
    pub via_socket: bool,
    #[serde(default)]
    pub state: QueuedState,
}

impl Queued {
    /// The write as the wire carries it.
    pub fn write(&self) -> ChatWrite {
        let body = self.body.clone();
        match self.kind {
            WriteKind::Message => ChatWrite::Message { body },
            WriteKind::Edit(target) => ChatWrite::Edit { target, body },
            WriteKind::Delete(target) => ChatWrite::Delete { target },
        }
    }

    /// The message this write changes, if it is a change.
    pub fn target(&self) -> Option<u64> {
        match self.kind {
            WriteKind::Message => None,
            WriteKind::Edit(t) | WriteKind::Delete(t) => Some(t),
        }
    }
}

/// How a send ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Acknowledged (stored, or found stored): the write leaves the outbox.
    Done,
    /// Not answered, or a passing failure: send it again, first in its topic.
    Retry,
    /// Refused by the server.
    Refused(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outbox {
    items: Vec<Queued>,
}

impl Outbox {
    /// Adds a write at the end (a client id already queued is ignored).
    pub fn push(&mut self, q: Queued) {
        if !self.items.iter().any(|i| i.client_id == q.client_id) {
            self.items.push(q);
        }
    }

    /// The writes to `topic`, in order.
    pub fn of(&self, topic: Topic) -> impl DoubleEndedIterator<Item = &Queued> {
        self.items.iter().filter(move |q| q.topic == topic)
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The writes to send now, one per topic (the first of its topic that
    /// is not refused, unless one is in flight), marked as sending.
    pub fn take_ready(&mut self) -> Vec<Queued> {
        let mut seen: Vec<Topic> = Vec::new();
        let mut ready = Vec::new();
        for q in &mut self.items {
            if seen.contains(&q.topic) {
                continue;
            }
            match q.state {
                QueuedState::Refused(_) => continue,
                QueuedState::Sending => seen.push(q.topic),
                QueuedState::Waiting => {
                    seen.push(q.topic);
                    q.state = QueuedState::Sending;
                    ready.push(q.clone());
                }
            }
        }
        ready
    }

    /// Records how the send of `client_id` ended.
    pub fn settle(&mut self, client_id: Uuid, how: Settled) {
        match how {
            Settled::Done => self.items.retain(|q| q.client_id != client_id),
            Settled::Retry => self.set(client_id, QueuedState::Waiting),
            Settled::Refused(why) => self.set(client_id, QueuedState::Refused(why)),
        }
    }

    fn set(&mut self, client_id: Uuid, state: QueuedState) {
        if let Some(q) = self.items.iter_mut().find(|q| q.client_id == client_id) {
            q.state = state;
        }
    }

    /// Removes a waiting or refused write; `false` if it is in flight (or gone).
    pub fn cancel(&mut self, client_id: Uuid) -> bool {
        let before = self.items.len();
        self.items
            .retain(|q| q.client_id != client_id || q.state == QueuedState::Sending);
        self.items.len() != before
    }

    /// The outbox as kept in storage.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// An outbox read back from storage: what was in flight is sent again
    /// (same client ids, so nothing is stored twice). Unreadable: empty.
    pub fn from_json(json: &str) -> Self {
        let mut outbox: Outbox = crate::json::read(json).unwrap_or_default();
        for q in &mut outbox.items {
            if q.state == QueuedState::Sending {
                q.state = QueuedState::Waiting;
            }
        }
        outbox
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(topic: Topic, n: u128) -> Queued {
        Queued {
            topic,
            client_id: Uuid::from_u128(n),
            kind: WriteKind::Message,
            author: "me".into(),
            body: format!("m{n}"),
            via_socket: false,
            state: QueuedState::Waiting,
        }
    }

    fn ids(v: &[Queued]) -> Vec<u128> {
        v.iter().map(|q| q.client_id.as_u128()).collect()
    }

    #[test]
    fn one_write_in_flight_per_topic_in_order() {
        let (a, b) = (Topic::room(1), Topic::room(2));
        let mut o = Outbox::default();
        for (t, n) in [(a, 1), (a, 2), (b, 3), (a, 4)] {
            o.push(q(t, n));
        }
        assert_eq!(ids(&o.take_ready()), [1, 3], "the head of each topic");
        assert!(o.take_ready().is_empty(), "nothing more while they fly");
        o.settle(Uuid::from_u128(1), Settled::Done);
        assert_eq!(ids(&o.take_ready()), [2]);
        // A lost answer: the same write goes again, before the next one.
        o.settle(Uuid::from_u128(2), Settled::Retry);
        assert_eq!(ids(&o.take_ready()), [2]);
        // A refusal stays (for the user to see and discard); the next goes.
        o.settle(Uuid::from_u128(2), Settled::Refused("too long".into()));
        assert_eq!(ids(&o.take_ready()), [4]);
        assert_eq!(o.of(a).count(), 2);
    }

    #[test]
    fn cancel_spares_writes_in_flight_and_storage_resends_them() {
        let a = Topic::room(1);
        let mut o = Outbox::default();
        o.push(q(a, 1));
        o.push(q(a, 2));
        o.push(q(a, 1));
        assert_eq!(o.of(a).count(), 2, "a client id is queued once");
        o.take_ready();
        assert!(!o.cancel(Uuid::from_u128(1)), "in flight");
        assert!(o.cancel(Uuid::from_u128(2)));
        let back = Outbox::from_json(&o.to_json());
        assert_eq!(back.of(a).next().unwrap().state, QueuedState::Waiting);
        assert_eq!(Outbox::from_json("not json"), Outbox::default());
    }

    #[test]
    fn changes_queue_in_order_with_messages_and_keep_their_kind() {
        let a = Topic::room(1);
        let mut o = Outbox::default();
        o.push(q(a, 1));
        o.push(Queued {
            kind: WriteKind::Edit(7),
            ..q(a, 2)
        });
        o.push(Queued {
            kind: WriteKind::Delete(7),
            body: String::new(),
            ..q(a, 3)
        });
        let back = Outbox::from_json(&o.to_json());
        let writes: Vec<ChatWrite> = back.of(a).map(Queued::write).collect();
        assert_eq!(
            writes,
            [
                ChatWrite::Message { body: "m1".into() },
                ChatWrite::Edit {
                    target: 7,
                    body: "m2".into()
                },
                ChatWrite::Delete { target: 7 },
            ]
        );
        // A write stored before kinds existed is a message.
        let old = r#"{"items":[{"topic":"room:1","client_id":"00000000-0000-0000-0000-000000000001","author":"me","body":"x","via_socket":false}]}"#;
        assert_eq!(
            Outbox::from_json(old).of(a).next().unwrap().kind,
            WriteKind::Message
        );
    }
}
