//! Client-side sync (both builds; the socket itself runs in the browser only).
//!
//! `cursor`, `timeline` and `backoff` are pure and unit-tested. `live` owns
//! the tab's one WebSocket: connecting, heartbeats, reconnecting with
//! backoff, resubscribing every topic from its handler's current version,
//! and routing frames to handlers. In the server build `live` is an inert
//! stand-in with the same API, so components compile unchanged.

pub mod backoff;
pub mod cursor;
pub mod timeline;

#[cfg(feature = "hydrate")]
mod live;
#[cfg(not(feature = "hydrate"))]
#[path = "live_ssr.rs"]
mod live;

pub use live::{new_client_id, provide_live_client, sleep_ms, use_live_client, LiveClient};

use crate::protocol::{Event, Version};

/// The state of the tab's live connection, as shown to the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkStatus {
    /// First connection attempt.
    Connecting,
    Live,
    /// Lost; retrying with backoff.
    Reconnecting,
    /// The browser is offline, or many attempts failed in a row (still retrying),
    /// or the server ended the connection for good.
    Offline,
}

impl LinkStatus {
    pub fn label(self) -> &'static str {
        match self {
            LinkStatus::Connecting => "connecting",
            LinkStatus::Live => "live",
            LinkStatus::Reconnecting => "reconnecting",
            LinkStatus::Offline => "offline",
        }
    }
}

/// What a subscriber gives the live client for one topic.
pub trait TopicHandler {
    /// The version the subscriber has applied; a (re)subscription resumes after it.
    fn since(&self) -> Option<Version>;
    /// A pushed event (in any order, possibly repeated: reconcile with a `Cursor`).
    fn on_event(&self, event: Event);
    /// The server cannot continue from `since`: reload the snapshot, then
    /// subscribe again.
    fn on_reset(&self);
}
