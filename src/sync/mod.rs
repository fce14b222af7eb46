//! Client-side sync (both builds; the socket itself runs in the browser only).
//!
//! - `cursor`, `timeline` and `backoff` are pure and unit-tested.
//! - `topic` is the reusable piece: `TopicSync<S>` keeps any topic's client
//!   state `S` (a `TopicState`: a room's timeline now; a market's quotes, an
//!   inbox or a document later) in step with the server through both
//!   channels: pushes, backfills, snapshot reloads and subscription errors.
//! - `latest` (pure) holds a latest-wins topic whose events carry the whole
//!   value; `presence` and `summary` are two of them.
//! - `summary` follows the account's unread counts (`user:<id>`).
//! - `scope` ties the tasks a component starts to that component.
//! - `outbox` (pure) and `sender` keep the tab's writes in the order they
//!   were made, in `sessionStorage` until acknowledged, and send them one
//!   after another per topic, through outages and reloads.
//! - `ladder` (pure) decides the transport: WebSocket, SSE, long polling or
//!   short polling, stepping down when a rung is blocked on the way and
//!   climbing back when it works again.
//! - `early` opens the page's WebSocket from an inline script while the
//!   wasm loads; the live link takes it over.
//! - `live` owns the tab's live link on the ladder's rung: connecting,
//!   heartbeats, reconnecting with backoff, resubscribing every topic from
//!   its handler's current version, and routing frames to handlers. In the server build
//!   `live` is an inert stand-in with the same API, so components compile
//!   unchanged.

pub mod backoff;
pub mod cursor;
pub mod early;
pub mod ladder;
pub mod latest;
pub mod outbox;
pub mod presence;
pub mod scope;
pub mod sender;
pub mod summary;
pub mod timeline;
pub mod topic;

#[cfg(feature = "hydrate")]
mod live;
#[cfg(not(feature = "hydrate"))]
#[path = "live_ssr.rs"]
mod live;

pub use live::{
    new_client_id, now_ms, provide_live_client, random, set_transport_setting, sleep_ms,
    transport_setting, use_live_client, LiveClient, SubId,
};

use crate::protocol::{ErrorFrame, Event, Version};

/// Whether the page is shown (not a background tab or a minimized window);
/// always on the server.
pub fn document_visible() -> bool {
    #[cfg(feature = "hydrate")]
    {
        web_sys::window()
            .and_then(|w| w.document())
            .is_none_or(|d| d.visibility_state() == web_sys::VisibilityState::Visible)
    }
    #[cfg(not(feature = "hydrate"))]
    {
        true
    }
}

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
    /// The server closed the connection because its session ended (logged
    /// out, revoked, expired): not retried; sign in again.
    SignedOut,
    /// No socket on purpose: the tab was hidden with nothing left to watch,
    /// or the server closed a connection that watched nothing (4002). It
    /// connects again when the tab is shown or a topic needs the link.
    Paused,
}

impl LinkStatus {
    pub fn label(self) -> &'static str {
        match self {
            LinkStatus::Connecting => "connecting",
            LinkStatus::Live => "live",
            LinkStatus::Reconnecting => "reconnecting",
            LinkStatus::Offline => "offline",
            LinkStatus::SignedOut => "signed out",
            LinkStatus::Paused => "paused",
        }
    }
}

/// What a subscriber gives the live client for one topic. Called from the
/// socket's task: implementations must not assume their component is still
/// alive (read signals with the `try_` accessors).
pub trait TopicHandler {
    /// The version the subscriber has applied; a (re)subscription resumes
    /// after it. `None`: start from the head.
    fn since(&self) -> Option<Version>;
    /// A pushed event (possibly repeated: reconcile with a `Cursor`).
    fn on_event(&self, event: Event);
    /// The subscription is live at `version`.
    fn on_subscribed(&self, version: Version);
    /// The server cannot continue from `since` and dropped the subscription:
    /// reload the snapshot, then subscribe again.
    fn on_reset(&self);
    /// The server refused or ended the subscription with an error.
    fn on_error(&self, error: ErrorFrame);
}
