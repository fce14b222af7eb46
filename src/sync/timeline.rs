//! `Timeline`: a chat room as the client holds it, confirmed messages in
//! version order plus the user's pending sends. Pure; both builds.
//!
//! Every input (snapshot, pushed event, server-function answer, backfill,
//! older page) goes through the room's `Cursor`, so the view never shows a
//! state no server had and never shows a message twice. A pending send is
//! replaced by its confirming event, matched by client id.

use super::cursor::{Cursor, Step};
use super::topic::{Follow, TopicState};
#[cfg(test)]
use crate::protocol::EventData;
use crate::protocol::{Event, TopicKind, Version};
use uuid::Uuid;

#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    pub client_id: Uuid,
    pub author: String,
    pub body: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    cursor: Cursor,
    /// Confirmed events, ascending by seq, no duplicates.
    confirmed: Vec<Event>,
    pending: Vec<Pending>,
    /// Whether older events exist before `confirmed[0]`.
    has_older: bool,
}

impl Timeline {
    /// Starts from a snapshot: `events` ascending, `version` the topic head it reflects.
    pub fn from_snapshot(version: Version, events: Vec<Event>, has_older: bool) -> Self {
        let mut confirmed = events;
        confirmed.retain(|e| e.version.epoch == version.epoch && e.version.seq <= version.seq);
        confirmed.sort_by_key(|e| e.version.seq);
        confirmed.dedup_by_key(|e| e.version.seq);
        Timeline {
            cursor: Cursor::new(version, TopicKind::Room.policy()),
            confirmed,
            pending: Vec::new(),
            has_older,
        }
    }

    pub fn version(&self) -> Version {
        self.cursor.version()
    }

    pub fn has_gap(&self) -> bool {
        self.cursor.has_gap()
    }

    pub fn has_older(&self) -> bool {
        self.has_older
    }

    pub fn confirmed(&self) -> &[Event] {
        &self.confirmed
    }

    pub fn pending(&self) -> &[Pending] {
        &self.pending
    }

    /// The seq of the oldest event held, for paging back.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.confirmed.first().map(|e| e.version.seq)
    }

    /// Feeds one event from any channel.
    pub fn receive(&mut self, event: Event) -> Follow {
        match self.cursor.offer(event) {
            Step::Apply(events) => {
                for e in events {
                    let id = e.data.client_id();
                    self.pending.retain(|p| Some(p.client_id) != id);
                    self.confirmed.push(e);
                }
                Follow::Nothing
            }
            Step::Ignore => Follow::Nothing,
            Step::Gap { have, .. } => Follow::Backfill(have),
            Step::Reset => Follow::Reload,
        }
    }

    /// Feeds a backfill (events in any order); asks for more while a gap remains.
    pub fn receive_all(&mut self, events: Vec<Event>) -> Follow {
        super::topic::receive_all(self, events)
    }

    /// Prepends a page of older events (ascending, all before the oldest held).
    pub fn prepend_older(&mut self, events: Vec<Event>, has_older: bool) {
        let epoch = self.version().epoch;
        let oldest = self.oldest_seq().unwrap_or(self.version().seq + 1);
        let mut older: Vec<Event> = events
            .into_iter()
            .filter(|e| e.version.epoch == epoch && e.version.seq < oldest)
            .collect();
        older.sort_by_key(|e| e.version.seq);
        older.dedup_by_key(|e| e.version.seq);
        older.append(&mut self.confirmed);
        self.confirmed = older;
        self.has_older = has_older;
    }

    /// Shows a send optimistically. Re-adding a failed client id revives it.
    pub fn add_pending(&mut self, client_id: Uuid, author: String, body: String) {
        if self.is_confirmed(client_id) {
            return;
        }
        self.pending.retain(|p| p.client_id != client_id);
        self.pending.push(Pending {
            client_id,
            author,
            body,
        });
    }

    /// A send was refused: drop its pending row (the composer keeps the text).
    pub fn remove_pending(&mut self, client_id: Uuid) {
        self.pending.retain(|p| p.client_id != client_id);
    }

    /// Whether a message with this client id is confirmed in the loaded range.
    pub fn is_confirmed(&self, client_id: Uuid) -> bool {
        self.confirmed
            .iter()
            .rev()
            .any(|e| e.data.client_id() == Some(client_id))
    }
}

impl TopicState for Timeline {
    fn version(&self) -> Version {
        Timeline::version(self)
    }

    fn receive(&mut self, event: Event) -> Follow {
        Timeline::receive(self, event)
    }

    fn has_gap(&self) -> bool {
        Timeline::has_gap(self)
    }

    /// Keeps the pending sends (they are local) over the fresh snapshot.
    fn rebase(&mut self, fresh: Self) {
        let pending = std::mem::take(&mut self.pending);
        *self = fresh;
        for p in pending {
            self.add_pending(p.client_id, p.author, p.body);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ChatMessage, Topic};

    fn msg(epoch: u32, seq: u64, id: u128) -> Event {
        Event {
            topic: Topic::room(1),
            version: Version::new(epoch, seq),
            data: EventData::Message(ChatMessage {
                client_id: Uuid::from_u128(id),
                author: "a".into(),
                body: format!("m{seq}"),
                sent_at: 0,
            }),
        }
    }

    fn seqs(t: &Timeline) -> Vec<u64> {
        t.confirmed().iter().map(|e| e.version.seq).collect()
    }

    #[test]
    fn snapshot_then_live_events() {
        let mut t =
            Timeline::from_snapshot(Version::new(3, 2), vec![msg(3, 1, 1), msg(3, 2, 2)], false);
        assert_eq!(
            t.receive(msg(3, 2, 2)),
            Follow::Nothing,
            "an event the snapshot had"
        );
        assert_eq!(t.receive(msg(3, 3, 3)), Follow::Nothing);
        assert_eq!(seqs(&t), vec![1, 2, 3]);
    }

    #[test]
    fn pending_is_replaced_by_its_confirmation_not_shown_twice() {
        let mut t = Timeline::from_snapshot(Version::new(3, 0), vec![], false);
        t.add_pending(Uuid::from_u128(9), "me".into(), "hello".into());
        assert_eq!(t.pending().len(), 1);
        // Another user's message first, then ours: the pending row stays until ours lands.
        t.receive(msg(3, 1, 5));
        assert_eq!(t.pending().len(), 1);
        t.receive(msg(3, 2, 9));
        assert!(t.pending().is_empty());
        assert_eq!(seqs(&t), vec![1, 2]);
        // The same confirmation again (WebSocket after the server-function answer).
        t.receive(msg(3, 2, 9));
        assert_eq!(seqs(&t), vec![1, 2]);
        // A late re-add of a confirmed id shows nothing.
        t.add_pending(Uuid::from_u128(9), "me".into(), "hello".into());
        assert!(t.pending().is_empty());
    }

    #[test]
    fn gap_asks_for_backfill_and_backfill_fills_it() {
        let mut t = Timeline::from_snapshot(Version::new(3, 1), vec![msg(3, 1, 1)], false);
        assert_eq!(
            t.receive(msg(3, 4, 4)),
            Follow::Backfill(Version::new(3, 1))
        );
        assert_eq!(seqs(&t), vec![1], "nothing applied past a gap");
        assert_eq!(
            t.receive_all(vec![msg(3, 3, 3), msg(3, 2, 2), msg(3, 4, 4)]),
            Follow::Nothing
        );
        assert_eq!(seqs(&t), vec![1, 2, 3, 4]);
        assert!(!t.has_gap());
    }

    #[test]
    fn partial_backfill_asks_again() {
        let mut t = Timeline::from_snapshot(Version::new(3, 0), vec![], false);
        t.receive(msg(3, 5, 5));
        assert_eq!(
            t.receive_all(vec![msg(3, 1, 1), msg(3, 2, 2)]),
            Follow::Backfill(Version::new(3, 2))
        );
    }

    #[test]
    fn epoch_change_reloads() {
        let mut t = Timeline::from_snapshot(Version::new(3, 1), vec![msg(3, 1, 1)], false);
        assert_eq!(t.receive(msg(4, 1, 1)), Follow::Reload);
        assert_eq!(t.receive_all(vec![msg(4, 2, 2)]), Follow::Reload);
    }

    #[test]
    fn older_pages_prepend_without_duplicates() {
        let mut t =
            Timeline::from_snapshot(Version::new(3, 5), vec![msg(3, 4, 4), msg(3, 5, 5)], true);
        t.prepend_older(vec![msg(3, 2, 2), msg(3, 3, 3), msg(3, 4, 4)], true);
        assert_eq!(seqs(&t), vec![2, 3, 4, 5]);
        t.prepend_older(vec![msg(3, 1, 1)], false);
        assert_eq!(seqs(&t), vec![1, 2, 3, 4, 5]);
        assert!(!t.has_older());
    }

    #[test]
    fn rebase_keeps_pending_sends_unless_the_snapshot_confirms_them() {
        let mut t = Timeline::from_snapshot(Version::new(3, 1), vec![msg(3, 1, 1)], false);
        t.add_pending(Uuid::from_u128(8), "me".into(), "landed".into());
        t.add_pending(Uuid::from_u128(9), "me".into(), "still out".into());
        let fresh = Timeline::from_snapshot(Version::new(4, 1), vec![msg(4, 1, 8)], false);
        t.rebase(fresh);
        assert_eq!(t.version(), Version::new(4, 1));
        let ids: Vec<Uuid> = t.pending().iter().map(|p| p.client_id).collect();
        assert_eq!(ids, vec![Uuid::from_u128(9)]);
    }

    #[test]
    fn failed_send_is_removed_and_can_be_retried_with_the_same_id() {
        let mut t = Timeline::from_snapshot(Version::new(3, 0), vec![], false);
        t.add_pending(Uuid::from_u128(1), "me".into(), "x".into());
        t.remove_pending(Uuid::from_u128(1));
        assert!(t.pending().is_empty());
        t.add_pending(Uuid::from_u128(1), "me".into(), "x".into());
        t.add_pending(Uuid::from_u128(1), "me".into(), "x".into());
        assert_eq!(t.pending().len(), 1);
    }
}
