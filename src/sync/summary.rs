//! The signed-in account's summary (`user:<id>`, latest-wins): unread
//! messages per room. Pure state plus the app-wide context that follows it,
//! so the title and the room list show unread counts without following
//! every room's stream.

use super::latest::Latest;
use super::topic::{TopicState, TopicSync};
use crate::protocol::{Topic, Unread};
use futures::FutureExt;
use leptos::prelude::*;

/// The account's unread counts, as the client holds them.
pub type UnreadState = Latest<Unread>;

impl Latest<Unread> {
    pub fn total(&self) -> u32 {
        self.current().map_or(0, |u| u.total)
    }

    /// Unread messages in `room` (0 if none or unknown).
    pub fn count(&self, room: i64) -> u32 {
        self.current()
            .and_then(|u| u.rooms.iter().find(|r| r.room_id == room))
            .map_or(0, |r| r.count)
    }
}

/// The app-wide view of the summary (empty when signed out).
#[derive(Clone, Copy)]
pub struct Summary {
    state: RwSignal<UnreadState>,
}

/// Reads go through `try_with`: a view may outlive the app's owner (a
/// formatter or a task running late), and a disposed summary reads as empty
/// instead of panicking. (On the server the title formatter does not read
/// it at all: see `App`.)
impl Summary {
    pub fn total(&self) -> u32 {
        self.state.try_with(UnreadState::total).unwrap_or(0)
    }

    pub fn count(&self, room: i64) -> u32 {
        self.state.try_with(|s| s.count(room)).unwrap_or(0)
    }

    /// Changes whenever a new summary arrives (for refetching what it summarizes).
    pub fn version(&self) -> u64 {
        self.state.try_with(|s| s.version().seq).unwrap_or(0)
    }
}

/// Follows account `me`'s summary (if signed in) for the whole page, and
/// provides it.
pub fn provide_summary(me: Option<i64>) -> Summary {
    let summary = match me {
        Some(id) => {
            let sync = TopicSync::new(Topic::user(id), UnreadState::default(), || {
                async { Ok(UnreadState::default()) }.boxed_local()
            });
            sync.start();
            Summary {
                state: sync.state(),
            }
        }
        None => Summary {
            state: RwSignal::new(UnreadState::default()),
        },
    };
    provide_context(summary);
    summary
}

pub fn use_summary() -> Summary {
    use_context::<Summary>().unwrap_or_else(|| provide_summary(None))
}

/// "3", or "99+" past 99.
pub fn badge(count: u32) -> String {
    if count > 99 {
        "99+".into()
    } else {
        count.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Event, EventData, RoomUnread, Version};

    #[test]
    fn a_disposed_summary_reads_as_empty() {
        let owner = Owner::new();
        let summary = owner.with(|| Summary {
            state: RwSignal::new(UnreadState::default()),
        });
        owner.cleanup();
        assert_eq!(
            (summary.total(), summary.count(1), summary.version()),
            (0, 0, 0)
        );
    }

    #[test]
    fn newest_summary_wins() {
        let ev = |seq, counts: &[(i64, u32)]| Event {
            topic: Topic::user(1),
            version: Version::new(9, seq),
            data: EventData::Unread(Unread {
                rooms: counts
                    .iter()
                    .map(|(room_id, count)| RoomUnread {
                        room_id: *room_id,
                        count: *count,
                    })
                    .collect(),
                total: counts.iter().map(|(_, c)| c).sum(),
            }),
        };
        let mut s = UnreadState::default();
        s.receive(ev(2, &[(4, 3), (5, 1)]));
        s.receive(ev(1, &[]));
        assert_eq!((s.total(), s.count(4), s.count(6)), (4, 3, 0));
        assert_eq!(badge(100), "99+");
        assert_eq!(badge(99), "99");
    }
}
