//! `TopicSync<S>`: keeps one topic's client state in step with the server,
//! for any kind of topic (both builds; it acts only in the browser).
//!
//! The state `S` is what the topic holds on screen (a room's `Timeline`
//! now; quotes, an inbox or a document later). It reconciles every event
//! through its `Cursor`, from any channel, and says what must follow
//! (`Follow`). `TopicSync` does the following for every kind:
//! - subscribes once the page is live, resuming from the state's version,
//!   and unsubscribes when its component is cleaned up;
//! - fills gaps through `events_since` (single flight, after a short grace:
//!   pushes usually close a gap by themselves);
//! - reloads the snapshot on `reset` or an epoch change, keeping what is
//!   local (`TopicState::rebase`), then subscribes again;
//! - retries a subscription refused by a transient server error with
//!   backoff, and shows a permanent one (`problem`).
//!
//! Lifetimes: every task runs in the component's `Scope` and is cancelled
//! with it; every signal is read with the `try_` accessors, so nothing here
//! can panic on a disposed component.

use super::backoff::Backoff;
use super::scope::Scope;
use super::{now_ms, random, sleep_ms, use_live_client, LiveClient, SubId, TopicHandler};
use crate::error::AppError;
use crate::protocol::{ErrorFrame, Event, Topic, Version};
use futures::future::LocalBoxFuture;
use leptos::prelude::*;
use std::rc::Rc;
use std::sync::Arc;

/// How long a gap may stay open before it is backfilled.
const GAP_GRACE_MS: u32 = 250;
/// Backfill attempts in a row before giving up until the next event.
const BACKFILL_ATTEMPTS: u32 = 5;

/// What the owner of a topic state must do after feeding it an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Follow {
    Nothing,
    /// Fetch `events_since(version)` and feed the result back.
    Backfill(Version),
    /// Reload the snapshot and replace this state.
    Reload,
}

/// A topic's state on the client.
pub trait TopicState: Send + Sync + 'static {
    /// The version this state reflects. Epoch 0 means "no version yet"
    /// (the server never assigns epoch 0): subscribe from the head.
    fn version(&self) -> Version;
    /// Feeds one event from any channel (push, answer, backfill).
    fn receive(&mut self, event: Event) -> Follow;
    /// Whether events are held behind a gap.
    fn has_gap(&self) -> bool;
    /// Becomes `fresh` (a reloaded snapshot), keeping what is local only
    /// (e.g. pending sends).
    fn rebase(&mut self, fresh: Self);
}

/// Feeds a backfill (events in any order); asks for more while a gap remains.
pub fn receive_all<S: TopicState + ?Sized>(state: &mut S, events: Vec<Event>) -> Follow {
    for e in events {
        if state.receive(e) == Follow::Reload {
            return Follow::Reload;
        }
    }
    if state.has_gap() {
        Follow::Backfill(state.version())
    } else {
        Follow::Nothing
    }
}

/// Loads a topic's snapshot. `Send + Sync` so that it can live in the
/// component's (thread-safe) storage on the server too, where the page is
/// rendered on any worker thread; the future it makes runs in the browser.
pub type Loader<S> = Arc<dyn Fn() -> LocalBoxFuture<'static, Result<S, AppError>> + Send + Sync>;

/// Single-flight flags and the subscription's identity.
#[derive(Default)]
struct Flags {
    backfilling: bool,
    reloading: bool,
    sub: Option<SubId>,
    /// Delays between retries of a subscription refused by a transient error.
    retry: Backoff,
}

pub struct TopicSync<S: TopicState> {
    topic: Topic,
    state: RwSignal<S>,
    problem: RwSignal<Option<String>>,
    live: LiveClient,
    loader: StoredValue<Loader<S>>,
    flags: StoredValue<Flags>,
    scope: Scope,
}

impl<S: TopicState> Clone for TopicSync<S> {
    fn clone(&self) -> Self {
        TopicSync {
            topic: self.topic,
            state: self.state,
            problem: self.problem,
            live: self.live,
            loader: self.loader,
            flags: self.flags,
            scope: self.scope.clone(),
        }
    }
}

impl<S: TopicState> TopicSync<S> {
    /// Created inside the component that shows the topic; `initial` is its
    /// snapshot (server-rendered, then hydrated), `loader` reloads it.
    pub fn new(
        topic: Topic,
        initial: S,
        loader: impl Fn() -> LocalBoxFuture<'static, Result<S, AppError>> + Send + Sync + 'static,
    ) -> Self {
        let loader: Loader<S> = Arc::new(loader);
        TopicSync {
            topic,
            state: RwSignal::new(initial),
            problem: RwSignal::new(None),
            live: use_live_client(),
            loader: StoredValue::new(loader),
            flags: StoredValue::new(Flags::default()),
            scope: Scope::current(),
        }
    }

    pub fn topic(&self) -> Topic {
        self.topic
    }

    /// The topic's state, for views (and for local changes such as pending sends).
    pub fn state(&self) -> RwSignal<S> {
        self.state
    }

    /// A permanent problem with the subscription, to show to the user.
    pub fn problem(&self) -> Signal<Option<String>> {
        self.problem.into()
    }

    /// The live client this topic is followed through.
    pub fn live(&self) -> LiveClient {
        self.live
    }

    /// Runs `task` in the component's scope (cancelled with it).
    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + 'static) {
        self.scope.spawn(task)
    }

    /// Follows the topic once the page is hydrated, until the component is
    /// cleaned up. Call once, in the component.
    pub fn start(&self) {
        let sync = self.clone();
        // Effects run only in the browser, after hydration.
        Effect::new(move |_| sync.subscribe());
        let (live, topic, flags) = (self.live, self.topic, self.flags);
        on_cleanup(move || {
            if let Some(id) = flags.try_with_value(|f| f.sub).flatten() {
                live.unsubscribe(topic, id);
            }
        });
    }

    fn subscribe(&self) {
        let id = self.live.subscribe(self.topic, Rc::new(self.clone()));
        self.flags.try_update_value(|f| f.sub = Some(id));
    }

    /// Feeds an event from any channel (a push, a send's answer).
    pub fn receive(&self, event: Event) {
        if let Some(follow) = self.state.try_update(|s| s.receive(event)) {
            self.follow(follow);
        }
    }

    fn follow(&self, follow: Follow) {
        match follow {
            Follow::Nothing => {}
            Follow::Backfill(_) => self.backfill(),
            Follow::Reload => self.reload(),
        }
    }

    /// Sets a single-flight flag; `false` if it was set already (or the
    /// component is gone).
    fn claim(&self, flag: fn(&mut Flags) -> &mut bool) -> bool {
        self.flags
            .try_update_value(|f| !std::mem::replace(flag(f), true))
            .unwrap_or(false)
    }

    fn release(&self, flag: fn(&mut Flags) -> &mut bool) {
        self.flags.try_update_value(|f| *flag(f) = false);
    }

    /// Fills the gap through `events_since`, page by page, until none is left.
    fn backfill(&self) {
        if !self.claim(|f| &mut f.backfilling) {
            return;
        }
        let sync = self.clone();
        self.spawn(async move {
            sleep_ms(GAP_GRACE_MS).await;
            let mut failures = 0;
            while failures < BACKFILL_ATTEMPTS {
                let Some((true, v)) = sync
                    .state
                    .try_with_untracked(|s| (s.has_gap(), s.version()))
                else {
                    break;
                };
                let answer =
                    crate::features::events::events_since(sync.topic.to_string(), v.epoch, v.seq)
                        .await;
                match answer {
                    Ok(b) if b.reset => {
                        sync.release(|f| &mut f.backfilling);
                        return sync.reload();
                    }
                    Ok(b) => {
                        let follow = sync.state.try_update(|s| receive_all(s, b.events));
                        if follow == Some(Follow::Reload) {
                            sync.release(|f| &mut f.backfilling);
                            return sync.reload();
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(topic = %sync.topic, error = %e, "backfill failed");
                        sleep_ms(1000 * failures).await;
                    }
                }
            }
            sync.release(|f| &mut f.backfilling);
        });
    }

    /// Replaces the state with a fresh snapshot (keeping what is local),
    /// then subscribes again. Transient failures are retried with backoff.
    fn reload(&self) {
        if !self.claim(|f| &mut f.reloading) {
            return;
        }
        let sync = self.clone();
        self.spawn(async move {
            let mut backoff = Backoff::default();
            loop {
                let Some(load) = sync.loader.try_get_value() else {
                    return;
                };
                match load().await {
                    Ok(fresh) => {
                        sync.state.try_update(|s| s.rebase(fresh));
                        sync.problem.try_set(None);
                        sync.release(|f| &mut f.reloading);
                        return sync.subscribe();
                    }
                    Err(e) if e.is_transient() => {
                        tracing::warn!(topic = %sync.topic, error = %e, "snapshot reload failed; retrying");
                        sleep_ms(backoff.next_delay_ms(now_ms(), random())).await;
                    }
                    Err(e) => {
                        sync.problem.try_set(Some(e.to_string()));
                        sync.release(|f| &mut f.reloading);
                        return;
                    }
                }
            }
        });
    }
}

impl<S: TopicState> TopicHandler for TopicSync<S> {
    fn since(&self) -> Option<Version> {
        self.state
            .try_with_untracked(|s| s.version())
            .filter(|v| v.epoch != 0)
    }

    fn on_event(&self, event: Event) {
        self.receive(event);
    }

    fn on_subscribed(&self, _version: Version) {
        self.problem.try_set(None);
        self.flags.try_update_value(|f| f.retry.connected(now_ms()));
    }

    fn on_reset(&self) {
        self.reload();
    }

    fn on_error(&self, error: ErrorFrame) {
        tracing::warn!(topic = %self.topic, code = ?error.code, message = %error.message, "subscription error");
        // A rate limit says when to try again; a server failure may pass.
        let retry_after = error.retry_after_ms;
        if !error.code.is_transient() && retry_after.is_none() {
            self.problem.try_set(Some(error.message));
            if let Some(id) = self.flags.try_with_value(|f| f.sub).flatten() {
                self.live.unsubscribe(self.topic, id);
            }
            return;
        }
        let Some(delay) = self
            .flags
            .try_update_value(|f| f.retry.next_delay_ms(now_ms(), random()))
        else {
            return;
        };
        let delay = delay.max(retry_after.unwrap_or(0).min(u64::from(u32::MAX)) as u32);
        let sync = self.clone();
        self.spawn(async move {
            sleep_ms(delay).await;
            sync.subscribe();
        });
    }
}
