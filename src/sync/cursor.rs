//! `Cursor`: the reconciliation rule for one topic (DESIGN.md §2), as a pure
//! state machine. Both builds; no I/O, no clock.
//!
//! Given the version a client has applied, each offered event is either
//! ignored (already applied), applied, held, or a reset (another epoch: the
//! caller reloads the snapshot). What "applied" means follows the topic's
//! delivery policy:
//! - lossless: only the next seq applies (plus any held events it unblocks);
//!   an event past a gap is held and the caller backfills the missing range;
//! - latest-wins: any newer seq applies at once; older ones are ignored.

use crate::protocol::{Event, Policy, Version};
use std::collections::VecDeque;

/// Events held while waiting for a backfill, at most. Past this the client is
/// so far behind that a snapshot reload is cheaper than a backfill.
pub const MAX_HELD: usize = 1000;

#[derive(Clone, Debug, PartialEq)]
pub struct Cursor {
    version: Version,
    policy: Policy,
    /// Events past a gap, by seq, each seq once. A sorted deque rather than
    /// a map: at most `MAX_HELD`, taken from the front, and in the browser's
    /// wasm far less code than a `BTreeMap`.
    held: VecDeque<Event>,
}

/// What the caller must do with an offered event.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Apply these events, in this order (the offered one, then any held
    /// events that now follow without a gap).
    Apply(Vec<Event>),
    /// Already applied (or already held): nothing to do.
    Ignore,
    /// Held: events after `have.seq` up to `missing_to` are missing; fetch
    /// them with `events_since(have)`.
    Gap { have: Version, missing_to: u64 },
    /// Another epoch, or too much held: drop local state and reload the snapshot.
    Reset,
}

impl Cursor {
    pub fn new(version: Version, policy: Policy) -> Self {
        Cursor {
            version,
            policy,
            held: VecDeque::new(),
        }
    }

    /// The version of the last applied event.
    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether events are held behind a gap.
    pub fn has_gap(&self) -> bool {
        !self.held.is_empty()
    }

    pub fn offer(&mut self, event: Event) -> Step {
        let v = event.version;
        // A latest-wins topic followed without a snapshot has no version yet
        // (epoch 0, which the server never assigns): it takes the first event's.
        if self.policy == Policy::LatestWins && self.version.epoch == 0 {
            self.version = v;
            return Step::Apply(vec![event]);
        }
        if v.epoch != self.version.epoch {
            return Step::Reset;
        }
        let slot = self.held.binary_search_by_key(&v.seq, |e| e.version.seq);
        if v.seq <= self.version.seq || slot.is_ok() {
            return Step::Ignore;
        }
        if self.policy == Policy::LatestWins {
            self.version.seq = v.seq;
            return Step::Apply(vec![event]);
        }
        if v.seq > self.version.seq + 1 {
            if self.held.len() >= MAX_HELD {
                return Step::Reset;
            }
            self.held.insert(slot.unwrap_or_else(|at| at), event);
            return Step::Gap {
                have: self.version,
                missing_to: self.first_held().saturating_sub(1),
            };
        }
        let mut applied = vec![event];
        self.version.seq = v.seq;
        while self
            .held
            .front()
            .is_some_and(|e| e.version.seq == self.version.seq + 1)
        {
            applied.extend(self.held.pop_front());
            self.version.seq += 1;
        }
        Step::Apply(applied)
    }

    fn first_held(&self) -> u64 {
        self.held
            .front()
            .map_or(self.version.seq, |e| e.version.seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ChatMessage, EventData, Topic};
    use uuid::Uuid;

    pub(crate) fn ev(epoch: u32, seq: u64) -> Event {
        Event {
            topic: Topic::room(1),
            version: Version::new(epoch, seq),
            data: EventData::Message(ChatMessage {
                client_id: Uuid::from_u128(seq as u128),
                author: "a".into(),
                body: format!("m{seq}"),
                sent_at: 0,
                ..Default::default()
            }),
        }
    }

    fn lossless(v: Version) -> Cursor {
        Cursor::new(v, Policy::Lossless)
    }

    fn seqs(step: &Step) -> Vec<u64> {
        match step {
            Step::Apply(evs) => evs.iter().map(|e| e.version.seq).collect(),
            _ => vec![],
        }
    }

    #[test]
    fn in_order_events_apply() {
        let mut c = lossless(Version::new(7, 0));
        for s in 1..=3 {
            assert_eq!(seqs(&c.offer(ev(7, s))), vec![s]);
        }
        assert_eq!(c.version(), Version::new(7, 3));
    }

    #[test]
    fn duplicates_and_old_events_are_ignored() {
        let mut c = lossless(Version::new(7, 5));
        assert_eq!(c.offer(ev(7, 5)), Step::Ignore);
        assert_eq!(c.offer(ev(7, 1)), Step::Ignore);
        assert_eq!(seqs(&c.offer(ev(7, 6))), vec![6]);
        assert_eq!(c.offer(ev(7, 6)), Step::Ignore);
    }

    #[test]
    fn out_of_order_events_are_held_then_applied_in_order() {
        let mut c = lossless(Version::new(7, 0));
        assert_eq!(
            c.offer(ev(7, 3)),
            Step::Gap {
                have: Version::new(7, 0),
                missing_to: 2
            }
        );
        assert_eq!(
            c.offer(ev(7, 2)),
            Step::Gap {
                have: Version::new(7, 0),
                missing_to: 1
            }
        );
        assert_eq!(
            c.offer(ev(7, 3)),
            Step::Ignore,
            "held events are not held twice"
        );
        assert!(c.has_gap());
        assert_eq!(seqs(&c.offer(ev(7, 1))), vec![1, 2, 3]);
        assert!(!c.has_gap());
        assert_eq!(c.version(), Version::new(7, 3));
    }

    #[test]
    fn gap_is_filled_by_backfill() {
        let mut c = lossless(Version::new(1, 10));
        let step = c.offer(ev(1, 14));
        assert_eq!(
            step,
            Step::Gap {
                have: Version::new(1, 10),
                missing_to: 13
            }
        );
        // The backfill returns 11..=14; 14 is then a duplicate of the held one.
        assert_eq!(seqs(&c.offer(ev(1, 11))), vec![11]);
        assert_eq!(seqs(&c.offer(ev(1, 12))), vec![12]);
        assert_eq!(seqs(&c.offer(ev(1, 13))), vec![13, 14]);
        assert_eq!(c.offer(ev(1, 14)), Step::Ignore);
    }

    #[test]
    fn epoch_change_resets() {
        let mut c = lossless(Version::new(1, 10));
        assert_eq!(c.offer(ev(2, 1)), Step::Reset);
        assert_eq!(c.offer(ev(2, 11)), Step::Reset);
        assert_eq!(c.version(), Version::new(1, 10), "a reset changes nothing");
    }

    #[test]
    fn latest_wins_applies_any_newer_seq_and_never_holds() {
        let mut c = Cursor::new(Version::new(1, 2), Policy::LatestWins);
        assert_eq!(seqs(&c.offer(ev(1, 9))), vec![9]);
        assert!(!c.has_gap());
        assert_eq!(c.offer(ev(1, 5)), Step::Ignore, "older than what is shown");
        assert_eq!(c.offer(ev(1, 9)), Step::Ignore);
        assert_eq!(seqs(&c.offer(ev(1, 10))), vec![10]);
        assert_eq!(
            c.offer(ev(2, 11)),
            Step::Reset,
            "another epoch still resets"
        );
        assert_eq!(c.version(), Version::new(1, 10));
        let mut fresh = Cursor::new(Version::default(), Policy::LatestWins);
        assert_eq!(
            seqs(&fresh.offer(ev(4, 30))),
            vec![30],
            "no version yet: adopts the first"
        );
        assert_eq!(fresh.version(), Version::new(4, 30));
    }

    #[test]
    fn too_much_held_resets() {
        let mut c = lossless(Version::new(1, 0));
        for s in 0..MAX_HELD as u64 {
            assert!(matches!(c.offer(ev(1, 2 + s)), Step::Gap { .. }));
        }
        assert_eq!(c.offer(ev(1, 5000)), Step::Reset);
    }
}
