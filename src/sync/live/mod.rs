//! The tab's live link (hydrate build only): the API the page uses.
//!
//! Concurrency: one task (`conn::run`) owns the link for the life of the
//! page; it connects on a rung of the transport ladder (`ws`, `sse`,
//! `poll`: one transport per file, the page does not know which), follows
//! every registered topic from its handler's `since()`, routes frames to
//! handlers, and reconnects with backoff. The WebSocket multiplexes topics
//! and carries writes; the HTTP rungs name the topics in each request, so
//! a change of topics restarts their request (`Wake::Topics`), and writes
//! go over HTTP (`send_write` answers "not connected" and the sender takes
//! the server function). The page talks to it through `Inner`, whose `RefCell`s are never
//! held across an await, and wakes it through a channel (`Wake`): the
//! "retry now" control, the browser coming back online, a hidden tab
//! becoming visible.
//!
//! A hidden tab rests: once hidden for the server's `hidden_tab_ms` (sent
//! in `hello`), it unsubscribes every topic but the account summary
//! (`keep_while_hidden`), keeping their handlers and versions, and closes
//! the socket if nothing is left (no kept topic, no write waiting for its
//! `ack`). Shown again, it subscribes them anew from their versions, so
//! nothing is missed.
//! The browser listeners are removed when the app's owner is cleaned up.

mod conn;
mod poll;
mod sse;
mod wake;
mod ws;

use super::early::{RUNG_KEY, TRANSPORT_KEY, TRANSPORT_PARAM};
use super::ladder::{Ladder, Rung};
use super::{LinkStatus, TopicHandler};
use crate::error::AppError;
use crate::protocol::{ChatWrite, ClientFrame, Event, Topic};
use futures::channel::{mpsc, oneshot};
use futures::FutureExt;
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use uuid::Uuid;

/// How long a WebSocket `send` waits for its `ack`.
const ACK_TIMEOUT_MS: u32 = 10_000;

/// Identifies one registration of a handler, so that a component that goes
/// away removes its own handler and never a newer one for the same topic.
pub type SubId = u64;

#[derive(Clone, Copy)]
pub struct LiveClient {
    status: RwSignal<LinkStatus>,
    rung: RwSignal<Rung>,
    inner: StoredValue<Rc<Inner>, LocalStorage>,
}

/// Why the connection task is woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Drop the socket (if any) and connect again now ("retry now").
    Kick,
    /// The browser is back online, or a hidden tab became visible: connect
    /// now if down, check the link if up.
    Check,
    /// The browser went offline: the socket is gone, whatever it says.
    Offline,
    /// The tab was hidden.
    Hidden,
    /// A topic needs the link (connect if paused).
    Need,
    /// The topics changed while the link cannot carry `subscribe`: a rung
    /// that names its topics per request starts a new one.
    Topics,
}

/// Topics a hidden tab keeps: the account summary (its unread counts keep
/// the title live).
pub(crate) fn keep_while_hidden(topic: Topic) -> bool {
    matches!(topic, Topic::User(_))
}

/// A topic's current registration: its id and its handler.
type Registration = (SubId, Rc<dyn TopicHandler>);

pub(crate) struct Inner {
    status: RwSignal<LinkStatus>,
    subs: RefCell<HashMap<Topic, Registration>>,
    next_sub: Cell<SubId>,
    /// The open socket's outgoing queue; `None` while not live.
    out: RefCell<Option<mpsc::UnboundedSender<String>>>,
    acks: RefCell<HashMap<Uuid, oneshot::Sender<Result<Event, AppError>>>>,
    wake: mpsc::UnboundedSender<Wake>,
    /// Resting (hidden): only `keep_while_hidden` topics are subscribed.
    resting: Cell<bool>,
    /// The server's `hidden_tab_ms` (0: never rest).
    hidden_tab_ms: Cell<f64>,
    /// The newest version the link delivered per topic: where an HTTP
    /// rung resumes a topic whose handler holds no version of its own.
    seen: RefCell<HashMap<Topic, crate::protocol::Version>>,
    /// Topics the server ended (`reset`, or `error` with the topic): not
    /// named in HTTP requests until their handler subscribes again (naming
    /// them would get the same answer at once, again and again).
    ended: RefCell<std::collections::HashSet<Topic>>,
    /// A `Wake::Topics` is on its way (one wakes for many changes).
    topics_changed: Cell<bool>,
    /// The rung the link is on, for the page.
    rung: RwSignal<Rung>,
    ladder: RefCell<Ladder>,
    /// `went_live` has marked the page's first live moment.
    marked_live: Cell<bool>,
}

/// `hidden_tab_ms` until the server says (the server's default).
const DEFAULT_HIDDEN_TAB_MS: f64 = 60_000.0;

/// The rung forced by `?transport=` or the setting, if any.
pub fn forced_rung() -> Option<Rung> {
    let from_url = window()
        .location()
        .search()
        .ok()
        .and_then(|q| web_sys::UrlSearchParams::new_with_str(&q).ok())
        .and_then(|p| p.get(TRANSPORT_PARAM));
    from_url
        .and_then(|n| Rung::parse(&n))
        .or_else(transport_setting)
}

/// The transport setting of this browser (`None`: automatic).
pub fn transport_setting() -> Option<Rung> {
    window()
        .local_storage()
        .ok()
        .flatten()
        .and_then(|s| s.get_item(TRANSPORT_KEY).ok().flatten())
        .and_then(|n| Rung::parse(&n))
}

/// Saves the transport setting (`None`: automatic) and reloads the page,
/// which starts the link on it.
pub fn set_transport_setting(rung: Option<Rung>) {
    if let Ok(Some(s)) = window().local_storage() {
        let _ = match rung {
            Some(r) => s.set_item(TRANSPORT_KEY, r.name()),
            None => s.remove_item(TRANSPORT_KEY),
        };
    }
    let _ = window().location().reload();
}

/// The rung to start on: forced, or the last that worked in this tab, or
/// the top. The early socket's script (`sync::early`) decides the same way.
fn start_rung() -> (Rung, bool) {
    if let Some(r) = forced_rung() {
        return (r, true);
    }
    let remembered = window()
        .session_storage()
        .ok()
        .flatten()
        .and_then(|s| s.get_item(RUNG_KEY).ok().flatten())
        .and_then(|n| Rung::parse(&n));
    (remembered.unwrap_or(Rung::WebSocket), false)
}

/// Remembers `rung` as the last that worked in this tab.
pub(super) fn remember_rung(rung: Rung) {
    if let Ok(Some(s)) = window().session_storage() {
        let _ = s.set_item(RUNG_KEY, rung.name());
    }
}

/// Creates the tab's live client, provides it as context and starts its task.
pub fn provide_live_client() -> LiveClient {
    let status = RwSignal::new(LinkStatus::Connecting);
    let (start, forced) = start_rung();
    let rung = RwSignal::new(start);
    let (wake, woken) = mpsc::unbounded();
    let inner = Rc::new(Inner {
        status,
        subs: RefCell::new(HashMap::new()),
        next_sub: Cell::new(1),
        out: RefCell::new(None),
        acks: RefCell::new(HashMap::new()),
        wake: wake.clone(),
        resting: Cell::new(false),
        // The server's default until a `hello` says (polls get none).
        hidden_tab_ms: Cell::new(DEFAULT_HIDDEN_TAB_MS),
        seen: RefCell::new(HashMap::new()),
        ended: RefCell::new(std::collections::HashSet::new()),
        topics_changed: Cell::new(false),
        rung,
        ladder: RefCell::new(Ladder::new(start, forced, now_ms(), random())),
        marked_live: Cell::new(false),
    });
    let client = LiveClient {
        status,
        rung,
        inner: StoredValue::new_local(inner.clone()),
    };
    provide_context(client);
    wake::listen(wake);
    super::scope::Scope::current().spawn(conn::run(inner, woken));
    client
}

pub fn use_live_client() -> LiveClient {
    use_context::<LiveClient>().unwrap_or_else(provide_live_client)
}

impl LiveClient {
    pub fn status(&self) -> Signal<LinkStatus> {
        self.status.into()
    }

    /// The rung of the transport ladder the link is on.
    pub fn rung(&self) -> Signal<Rung> {
        self.rung.into()
    }

    /// Registers `handler` for `topic` (replacing any other) and subscribes
    /// now if live, else on connect. Returns the registration's id.
    pub fn subscribe(&self, topic: Topic, handler: Rc<dyn TopicHandler>) -> SubId {
        let Some(inner) = self.inner.try_get_value() else {
            return 0;
        };
        let id = inner.next_sub.get();
        inner.next_sub.set(id + 1);
        let since = handler.since();
        inner.subs.borrow_mut().insert(topic, (id, handler));
        inner.ended.borrow_mut().remove(&topic);
        if inner.resting.get() && !keep_while_hidden(topic) {
            // Subscribed when the tab is shown.
            return id;
        }
        if !inner.queue(&ClientFrame::Subscribe { topic, since }) {
            if self.status.get_untracked() == LinkStatus::Paused {
                let _ = inner.wake.unbounded_send(Wake::Need);
            } else {
                inner.topics_changed();
            }
        }
        id
    }

    /// Removes registration `id` of `topic` (if it is still the current one)
    /// and unsubscribes.
    pub fn unsubscribe(&self, topic: Topic, id: SubId) {
        let Some(inner) = self.inner.try_get_value() else {
            return;
        };
        let mut subs = inner.subs.borrow_mut();
        if subs.get(&topic).is_some_and(|(current, _)| *current == id) {
            subs.remove(&topic);
            drop(subs);
            inner.seen.borrow_mut().remove(&topic);
            inner.ended.borrow_mut().remove(&topic);
            if (!inner.resting.get() || keep_while_hidden(topic))
                && !inner.queue(&ClientFrame::Unsubscribe { topic, away: false })
            {
                inner.topics_changed();
            }
        }
    }

    /// Says the user is typing in room `topic` (only while live; a lost
    /// signal costs nothing, it expires anyway).
    pub fn typing(&self, topic: Topic) {
        let Some(inner) = self.inner.try_get_value() else {
            return;
        };
        if inner.queue(&ClientFrame::Typing { topic }) {
            return;
        }
        // On an HTTP rung: the same signal over a server function.
        if let (Topic::Room(room), LinkStatus::Live) = (topic, self.status.get_untracked()) {
            leptos::task::spawn_local(async move {
                let _ = crate::features::messages::typing(room).await;
            });
        }
    }

    /// Drops the socket (if any) and connects again at once: the "retry
    /// now" control.
    pub fn reconnect(&self) {
        if let Some(inner) = self.inner.try_get_value() {
            let _ = inner.wake.unbounded_send(Wake::Kick);
        }
    }

    /// Sends a chat write (`send`, `edit` or `delete`) over the socket and
    /// waits for its `ack`.
    pub async fn send_write(
        &self,
        topic: Topic,
        client_id: Uuid,
        write: ChatWrite,
    ) -> Result<Event, AppError> {
        let inner = self
            .inner
            .try_get_value()
            .ok_or_else(|| AppError::Transport("page is closing".into()))?;
        let (tx, rx) = oneshot::channel();
        inner.acks.borrow_mut().insert(client_id, tx);
        let frame = match write {
            ChatWrite::Message { body } => ClientFrame::Send {
                topic,
                client_id,
                body,
            },
            ChatWrite::Edit { target, body } => ClientFrame::Edit {
                topic,
                client_id,
                target,
                body,
            },
            ChatWrite::Delete { target } => ClientFrame::Delete {
                topic,
                client_id,
                target,
            },
        };
        if !inner.queue(&frame) {
            inner.acks.borrow_mut().remove(&client_id);
            return Err(AppError::Transport("not connected".into()));
        }
        futures::select! {
            answer = rx.fuse() => answer.unwrap_or_else(|_| Err(AppError::Transport("connection lost".into()))),
            _ = TimeoutFuture::new(ACK_TIMEOUT_MS).fuse() => {
                inner.acks.borrow_mut().remove(&client_id);
                Err(AppError::Transport("no answer from the server".into()))
            }
        }
    }
}

impl Inner {
    /// Queues a frame on the open socket; `false` if not live.
    fn queue(&self, frame: &ClientFrame) -> bool {
        let json = match frame.to_json() {
            Ok(json) => json,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize a client frame; not sent");
                return false;
            }
        };
        match self.out.borrow().as_ref() {
            Some(tx) => tx.unbounded_send(json).is_ok(),
            None => false,
        }
    }

    /// The registered topics changed while the link cannot carry
    /// `subscribe`: one wake for any number of changes before it is read.
    fn topics_changed(&self) {
        if !self.topics_changed.replace(true) {
            let _ = self.wake.unbounded_send(Wake::Topics);
        }
    }

    /// The server ended `topic` (`reset`, `error`): left out of HTTP
    /// requests until its handler subscribes again.
    fn server_ended(&self, topic: Topic) {
        self.ended.borrow_mut().insert(topic);
    }

    /// Notes a version the link delivered for `topic` (`None`: the topic
    /// ended; its handler reloads).
    fn saw(&self, topic: Topic, version: Option<crate::protocol::Version>) {
        let mut seen = self.seen.borrow_mut();
        match version {
            Some(v) => {
                let newer = seen
                    .get(&topic)
                    .is_none_or(|old| old.epoch != v.epoch || old.seq < v.seq);
                if newer {
                    seen.insert(topic, v);
                }
            }
            None => {
                seen.remove(&topic);
            }
        }
    }

    fn handler(&self, topic: &Topic) -> Option<Rc<dyn TopicHandler>> {
        self.subs.borrow().get(topic).map(|(_, h)| h.clone())
    }

    /// `subscribe` frames, from where each resumes, for the registered
    /// topics that `pick` chooses.
    fn subscribes(&self, pick: impl Fn(Topic) -> bool) -> Vec<ClientFrame> {
        self.subs
            .borrow()
            .iter()
            .filter(|(topic, _)| pick(**topic))
            .map(|(topic, (_, h))| ClientFrame::Subscribe {
                topic: *topic,
                since: h.since(),
            })
            .collect()
    }

    /// The topics to follow now, from where each resumes, in the syntax of
    /// the HTTP rungs (`room:1@1.17,presence:1`, docs/PROTOCOL.md §15).
    fn topic_list(&self) -> String {
        self.topics_changed.set(false);
        let mut list = String::new();
        let seen = self.seen.borrow();
        let ended = self.ended.borrow();
        for frame in self.resumes() {
            if let ClientFrame::Subscribe { topic, since } = frame {
                if ended.contains(&topic) {
                    continue;
                }
                let since = since.or_else(|| seen.get(&topic).copied());
                if !list.is_empty() {
                    list.push(',');
                }
                list.push_str(&topic.to_string());
                if let Some(v) = since {
                    list.push_str(&format!("@{}.{}", v.epoch, v.seq));
                }
            }
        }
        list
    }

    /// Every registered topic to subscribe on connecting (only the kept
    /// ones while resting).
    fn resumes(&self) -> Vec<ClientFrame> {
        let resting = self.resting.get();
        self.subscribes(|t| !resting || keep_while_hidden(t))
    }

    /// Starts resting: unsubscribes every topic a hidden tab does not keep
    /// (their handlers and versions stay).
    fn rest(&self) {
        if self.resting.replace(true) {
            return;
        }
        let dropped: Vec<Topic> = self
            .subs
            .borrow()
            .keys()
            .copied()
            .filter(|t| !keep_while_hidden(*t))
            .collect();
        for topic in dropped {
            // A room keeps this tab's account in its presence, as away.
            let away = matches!(topic, Topic::Room(_));
            self.queue(&ClientFrame::Unsubscribe { topic, away });
        }
    }

    /// Stops resting: subscribes the dropped topics again from their versions.
    fn wake_up(&self) {
        if !self.resting.replace(false) {
            return;
        }
        for frame in self.subscribes(|t| !keep_while_hidden(t)) {
            self.queue(&frame);
        }
    }

    /// Whether a resting tab still needs its socket: a kept topic, or a
    /// write waiting for its `ack`.
    fn needs_socket(&self) -> bool {
        self.subs.borrow().keys().any(|t| keep_while_hidden(*t)) || !self.acks.borrow().is_empty()
    }

    /// The link is up (whatever the rung). The first time in the page,
    /// also a performance mark, `tandem:live`, beside `tandem:wasm-ready`
    /// and `tandem:hydrated` (`bench/first_load.mjs`, real-user monitoring).
    fn went_live(&self) {
        self.status.try_set(LinkStatus::Live);
        if !self.marked_live.replace(true) {
            if let Some(p) = window().performance() {
                let _ = p.mark("tandem:live");
            }
        }
    }

    /// Ends the live phase: no queue, every waiting send fails.
    fn went_down(&self) {
        self.out.borrow_mut().take();
        let waiting: Vec<_> = self.acks.borrow_mut().drain().collect();
        for (_, tx) in waiting {
            let _ = tx.send(Err(AppError::Transport("connection lost".into())));
        }
    }
}

/// A fresh random client id (UUID v4 from `crypto.getRandomValues`).
pub fn new_client_id() -> Uuid {
    let mut bytes = [0u8; 16];
    let filled = window()
        .crypto()
        .and_then(|c| c.get_random_values_with_u8_array(&mut bytes).map(|_| ()));
    if filled.is_err() {
        // No Web Crypto: fall back to Math.random (ids need uniqueness, not secrecy).
        for b in bytes.iter_mut() {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    uuid::Builder::from_random_bytes(bytes).into_uuid()
}

/// Waits `ms` milliseconds without blocking the page.
pub async fn sleep_ms(ms: u32) {
    TimeoutFuture::new(ms).await
}

/// A uniform random number in [0, 1).
pub fn random() -> f64 {
    js_sys::Math::random()
}

/// Milliseconds on the page's monotonic clock.
pub fn now_ms() -> f64 {
    window().performance().map(|p| p.now()).unwrap_or(0.0)
}
