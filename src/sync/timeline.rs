//! `Timeline`: a chat room as the client holds it: its messages in version
//! order, each as it stands now (edits and deletions folded in). Pure; both
//! builds.
//!
//! Every input (snapshot, pushed event, server-function answer, backfill,
//! older page) goes through the room's `Cursor`, so the view never shows a
//! state no server had and never shows a message twice. Change events
//! (`edit`, `delete`) are applied to the message they name with the same
//! rule as the server (`protocol::fold`), so every tab converges.
//!
//! Cost: a message is held once, behind an `Arc`, and a view's rows share
//! it; applying an event touches the end of the list (or one row found by
//! binary search), never the whole list. `trim` bounds what is held.

use super::cursor::{Cursor, Step};
use super::topic::{Follow, TopicState};
use crate::protocol::{fold, ChatMessage, Event, EventData, TopicKind, Version};
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

/// One message, shared between the timeline and the row showing it.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub version: Version,
    pub message: Arc<ChatMessage>,
}

impl Row {
    /// What a view keys the row by: a change (edit, deletion) is a new key,
    /// so only that row is drawn again.
    pub fn key(&self) -> (Version, u64) {
        (self.version, self.message.revised)
    }
}

/// Rows are drawn in blocks of `BLOCK` consecutive seqs: a new message
/// adds to the last block, so the browser lays out that block again and
/// only steps over the others, whatever the room's length.
pub const BLOCK: u64 = 64;

/// A block of rows: the epoch and `seq / BLOCK`.
pub type BlockKey = (u32, u64);

fn block_of(v: Version) -> BlockKey {
    (v.epoch, v.seq / BLOCK)
}

#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    cursor: Cursor,
    /// Messages, ascending by seq, no duplicates.
    rows: Vec<Row>,
    /// Client ids of the events held (messages and changes), so a view can
    /// tell a write that landed from one still on its way.
    ids: HashSet<Uuid>,
    /// Whether older events exist before `rows[0]`.
    has_older: bool,
}

impl Timeline {
    /// Starts from a snapshot: `events` ascending, `version` the topic head it reflects.
    pub fn from_snapshot(version: Version, events: Vec<Event>, has_older: bool) -> Self {
        let mut t = Timeline {
            cursor: Cursor::new(version, TopicKind::Room.policy()),
            rows: Vec::new(),
            ids: HashSet::new(),
            has_older,
        };
        let mut events = events;
        events.retain(|e| e.version.epoch == version.epoch && e.version.seq <= version.seq);
        events.sort_by_key(|e| e.version.seq);
        events.dedup_by_key(|e| e.version.seq);
        for e in events {
            t.apply(e);
        }
        t
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

    /// The messages held, ascending.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The blocks that hold messages, ascending.
    pub fn blocks(&self) -> Vec<BlockKey> {
        let mut out: Vec<BlockKey> = Vec::new();
        for r in &self.rows {
            let b = block_of(r.version);
            if out.last() != Some(&b) {
                out.push(b);
            }
        }
        out
    }

    /// The messages of block `b`, and the message before its first one (in
    /// an earlier block: day headings and grouping look at it).
    pub fn block(&self, b: BlockKey) -> (Option<&Row>, &[Row]) {
        let start = self.rows.partition_point(|r| block_of(r.version) < b);
        let end = start + self.rows[start..].partition_point(|r| block_of(r.version) == b);
        let before = start.checked_sub(1).map(|i| &self.rows[i]);
        (before, &self.rows[start..end])
    }

    /// Message `seq`, if held.
    pub fn row(&self, seq: u64) -> Option<&Row> {
        self.find(seq).ok().map(|i| &self.rows[i])
    }

    /// The seq of the oldest message held, for paging back.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.rows.first().map(|r| r.version.seq)
    }

    fn find(&self, seq: u64) -> Result<usize, usize> {
        self.rows.binary_search_by_key(&seq, |r| r.version.seq)
    }

    /// Applies one event the cursor let through (in seq order).
    fn apply(&mut self, e: Event) {
        if let Some(id) = e.data.client_id() {
            self.ids.insert(id);
        }
        let seq = e.version.seq;
        match e.data {
            EventData::Message(m) => {
                let row = Row {
                    version: e.version,
                    message: Arc::new(m),
                };
                match self.rows.last() {
                    Some(last) if last.version.seq >= seq => {
                        if let Err(at) = self.find(seq) {
                            self.rows.insert(at, row);
                        }
                    }
                    _ => self.rows.push(row),
                }
            }
            change @ (EventData::Edit(_) | EventData::Delete(_)) => {
                let Some(target) = change.target() else {
                    return;
                };
                // A target older than what is held shows its current state
                // when its page is loaded.
                if let Ok(i) = self.find(target) {
                    let mut m = (*self.rows[i].message).clone();
                    if fold(&mut m, seq, &change) {
                        self.rows[i].message = Arc::new(m);
                    }
                }
            }
            // Not on a room's topic; or a kind from a newer server: it
            // advances the version and shows nothing.
            EventData::Tick(_)
            | EventData::Presence(_)
            | EventData::Unread(_)
            | EventData::Lobby(_)
            | EventData::Unknown => {}
        }
    }

    /// Feeds one event from any channel.
    pub fn receive(&mut self, event: Event) -> Follow {
        match self.cursor.offer(event) {
            Step::Apply(events) => {
                for e in events {
                    self.apply(e);
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

    /// Prepends a page of older events (ascending, all before the oldest
    /// held). They come as they stand now; a change already held that is
    /// newer than what a message reflects is applied to it.
    pub fn prepend_older(&mut self, events: Vec<Event>, has_older: bool) {
        let epoch = self.version().epoch;
        let head = self.version().seq;
        let oldest = self.oldest_seq().unwrap_or(head + 1);
        let mut older: Vec<Row> = Vec::new();
        for e in events {
            if e.version.epoch != epoch || e.version.seq >= oldest {
                continue;
            }
            if let Some(id) = e.data.client_id() {
                self.ids.insert(id);
            }
            if let EventData::Message(m) = e.data {
                older.push(Row {
                    version: e.version,
                    message: Arc::new(m),
                });
            }
        }
        older.sort_by_key(|r| r.version.seq);
        older.dedup_by_key(|r| r.version.seq);
        older.append(&mut self.rows);
        self.rows = older;
        self.has_older = has_older;
    }

    /// Keeps the newest `keep` messages (the view calls it while the reader
    /// follows the end), so memory does not grow with the room's length.
    /// Dropped messages can be paged back in.
    pub fn trim(&mut self, keep: usize) {
        if self.rows.len() <= keep {
            return;
        }
        let cut = self.rows.len() - keep;
        self.rows.drain(..cut);
        self.has_older = true;
        self.ids = self.rows.iter().map(|r| r.message.client_id).collect();
    }

    /// Whether a write with this client id is held (landed).
    pub fn is_confirmed(&self, client_id: Uuid) -> bool {
        self.ids.contains(&client_id)
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

    /// Pending writes live in the tab's outbox, not here: a fresh snapshot
    /// replaces everything.
    fn rebase(&mut self, fresh: Self) {
        *self = fresh;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ChatMessage, Delete, Edit, Topic};

    fn msg(epoch: u32, seq: u64, id: u128) -> Event {
        Event {
            topic: Topic::room(1),
            version: Version::new(epoch, seq),
            data: EventData::Message(ChatMessage {
                client_id: Uuid::from_u128(id),
                author: "a".into(),
                author_id: 7,
                body: format!("m{seq}"),
                sent_at: 0,
                ..Default::default()
            }),
        }
    }

    fn edit(seq: u64, target: u64, author_id: i64, body: &str) -> Event {
        Event {
            topic: Topic::room(1),
            version: Version::new(3, seq),
            data: EventData::Edit(Edit {
                client_id: Uuid::from_u128(1000 + seq as u128),
                target,
                body: body.into(),
                author: "a".into(),
                author_id,
                edited_at: 5,
            }),
        }
    }

    fn delete(seq: u64, target: u64) -> Event {
        Event {
            topic: Topic::room(1),
            version: Version::new(3, seq),
            data: EventData::Delete(Delete {
                client_id: Uuid::from_u128(2000 + seq as u128),
                target,
                by: "o".into(),
                by_id: 1,
                deleted_at: 6,
            }),
        }
    }

    fn seqs(t: &Timeline) -> Vec<u64> {
        t.rows().iter().map(|r| r.version.seq).collect()
    }

    fn body(t: &Timeline, seq: u64) -> String {
        t.row(seq).unwrap().message.body.clone()
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
    fn a_confirmation_is_held_once_and_known_by_client_id() {
        let mut t = Timeline::from_snapshot(Version::new(3, 0), vec![], false);
        assert!(!t.is_confirmed(Uuid::from_u128(9)));
        t.receive(msg(3, 1, 5));
        t.receive(msg(3, 2, 9));
        // The same confirmation again (WebSocket after the server-function answer).
        t.receive(msg(3, 2, 9));
        assert_eq!(seqs(&t), vec![1, 2]);
        assert!(t.is_confirmed(Uuid::from_u128(9)));
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
    fn rebase_takes_the_fresh_snapshot() {
        let mut t = Timeline::from_snapshot(Version::new(3, 1), vec![msg(3, 1, 1)], false);
        let fresh = Timeline::from_snapshot(Version::new(4, 1), vec![msg(4, 1, 8)], false);
        t.rebase(fresh.clone());
        assert_eq!(t, fresh);
    }

    #[test]
    fn edits_and_deletes_change_their_target_only_once_and_in_order() {
        let mut t =
            Timeline::from_snapshot(Version::new(3, 2), vec![msg(3, 1, 1), msg(3, 2, 2)], false);
        let before = t.row(2).unwrap().key();
        t.receive(edit(3, 1, 7, "fixed"));
        assert_eq!(body(&t, 1), "fixed");
        assert_eq!(t.row(1).unwrap().message.edited_at, Some(5));
        assert_eq!(t.row(2).unwrap().key(), before, "other rows keep their key");
        assert_ne!(
            t.row(1).unwrap().key().1,
            0,
            "the changed row gets a new key"
        );
        // Not the author: no change (the server refuses it anyway).
        t.receive(edit(4, 2, 99, "hijack"));
        assert_eq!(body(&t, 2), "m2");
        t.receive(delete(5, 1));
        let m = &t.row(1).unwrap().message;
        assert!(m.deleted);
        assert_eq!(m.body, "");
        // An edit after the deletion changes nothing.
        t.receive(edit(6, 1, 7, "back"));
        assert_eq!(body(&t, 1), "");
        assert_eq!(seqs(&t), vec![1, 2], "changes are not rows");
        assert!(t.is_confirmed(Uuid::from_u128(1003)));
    }

    #[test]
    fn a_snapshot_folds_changes_already_reflected_only_once() {
        // The store hands the message as it stands (revised = 3); the edit
        // event that follows in the page must not apply again.
        let mut current = msg(3, 1, 1);
        if let EventData::Message(m) = &mut current.data {
            m.body = "second".into();
            m.revised = 4;
        }
        let t = Timeline::from_snapshot(
            Version::new(3, 4),
            vec![current, edit(3, 1, 7, "first"), edit(4, 1, 7, "second")],
            false,
        );
        assert_eq!(body(&t, 1), "second");
        assert_eq!(seqs(&t), vec![1]);
    }

    #[test]
    fn a_change_to_a_message_not_held_waits_for_its_page() {
        let mut t = Timeline::from_snapshot(Version::new(3, 5), vec![msg(3, 5, 5)], true);
        t.receive(edit(6, 2, 7, "later"));
        assert_eq!(seqs(&t), vec![5]);
        assert_eq!(t.version(), Version::new(3, 6));
    }

    #[test]
    fn blocks_split_by_seq_and_know_the_row_before() {
        // Messages at 1..=130 except 64..=70 (changes, say): three blocks.
        let events = (1..=130)
            .filter(|s| !(64..=70).contains(s))
            .map(|s| msg(3, s, s as u128))
            .collect();
        let t = Timeline::from_snapshot(Version::new(3, 130), events, false);
        assert_eq!(t.blocks(), vec![(3, 0), (3, 1), (3, 2)]);
        let (before, rows) = t.block((3, 0));
        assert!(before.is_none());
        assert_eq!(
            (rows[0].version.seq, rows.last().unwrap().version.seq),
            (1, 63)
        );
        let (before, rows) = t.block((3, 1));
        assert_eq!(
            before.unwrap().version.seq,
            63,
            "the row before is in the block before"
        );
        assert_eq!((rows[0].version.seq, rows.len()), (71, 57));
        let (before, rows) = t.block((3, 2));
        assert_eq!(before.unwrap().version.seq, 127);
        assert_eq!(seqs_of(rows), vec![128, 129, 130]);
        let (before, rows) = t.block((3, 9));
        assert!(rows.is_empty() && before.unwrap().version.seq == 130);
        let all: usize = t.blocks().iter().map(|b| t.block(*b).1.len()).sum();
        assert_eq!(all, t.rows().len(), "every row in exactly one block");
    }

    fn seqs_of(rows: &[Row]) -> Vec<u64> {
        rows.iter().map(|r| r.version.seq).collect()
    }

    #[test]
    fn trim_keeps_the_newest_and_allows_paging_back() {
        let mut t = Timeline::from_snapshot(Version::new(3, 0), vec![], false);
        for seq in 1..=10 {
            t.receive(msg(3, seq, seq as u128));
        }
        t.trim(4);
        assert_eq!(seqs(&t), vec![7, 8, 9, 10]);
        assert!(t.has_older());
        assert!(!t.is_confirmed(Uuid::from_u128(1)));
        assert!(t.is_confirmed(Uuid::from_u128(10)));
        t.prepend_older(vec![msg(3, 5, 5), msg(3, 6, 6)], true);
        assert_eq!(seqs(&t), vec![5, 6, 7, 8, 9, 10]);
    }
}
