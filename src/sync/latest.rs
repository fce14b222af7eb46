//! `Latest<T>`: the client state of a latest-wins topic whose events each
//! carry the whole value (presence, an account's summary). Pure; both
//! builds. It starts with no version (subscribe from the head: the server
//! sends the current value first) and takes every newer value whole;
//! another epoch means reload (a fresh `Latest`, subscribed from the head).

use super::cursor::{Cursor, Step};
use super::topic::{Follow, TopicState};
use crate::protocol::{Event, EventData, Policy, Presence, Unread, Version};

/// A value one event kind carries whole.
pub trait Whole: Clone + PartialEq + Send + Sync + 'static {
    fn from_data(data: EventData) -> Option<Self>;
}

impl Whole for Presence {
    fn from_data(data: EventData) -> Option<Self> {
        match data {
            EventData::Presence(p) => Some(p),
            _ => None,
        }
    }
}

impl Whole for Unread {
    fn from_data(data: EventData) -> Option<Self> {
        match data {
            EventData::Unread(u) => Some(u),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Latest<T> {
    cursor: Cursor,
    value: Option<T>,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Latest {
            cursor: Cursor::new(Version::default(), Policy::LatestWins),
            value: None,
        }
    }
}

impl<T> Latest<T> {
    /// The newest value received (`None` before the first).
    pub fn current(&self) -> Option<&T> {
        self.value.as_ref()
    }
}

impl<T: Whole> TopicState for Latest<T> {
    fn version(&self) -> Version {
        self.cursor.version()
    }

    fn receive(&mut self, event: Event) -> Follow {
        match self.cursor.offer(event) {
            Step::Apply(events) => {
                for e in events {
                    if let Some(value) = T::from_data(e.data) {
                        self.value = Some(value);
                    }
                }
                Follow::Nothing
            }
            Step::Ignore | Step::Gap { .. } => Follow::Nothing,
            Step::Reset => Follow::Reload,
        }
    }

    fn has_gap(&self) -> bool {
        false
    }

    fn rebase(&mut self, fresh: Self) {
        *self = fresh;
    }
}
