//! `Sender`: sends the tab's `Outbox` (both builds; it acts only in the
//! browser, from effects and tasks that never run on the server).
//!
//! One per tab, provided by the app, so writes keep going when their room
//! is left. After hydration it restores the outbox from the tab's
//! `sessionStorage` (a reload keeps every unacknowledged write), then sends
//! whatever is ready (`Outbox::take_ready`: per topic, in order, one at a
//! time), over the socket or the server function as each write asked, with
//! its own client id on every attempt:
//! - acknowledged: the event goes to the room that shows the topic (if one
//!   is open: `on_confirm`), and the write leaves the outbox;
//! - not answered (offline, server down, a lost answer, a rate limit): the
//!   write waits, then goes again, with capped backoff (at most 5 s), and at
//!   once when the live link comes back;
//! - refused: it stays, with the server's reason, until discarded.
//!
//! Every change is written back to `sessionStorage` at once. Other tabs have
//! their own storage, so two tabs never send each other's writes.

use super::backoff::Backoff;
use super::outbox::{Outbox, Queued, Settled};
use super::scope::Scope;
use super::{now_ms, random, sleep_ms, use_live_client, LinkStatus, LiveClient};
use crate::error::AppError;
use crate::protocol::{Event, Topic};
use futures::channel::mpsc;
use futures::StreamExt;
use leptos::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use uuid::Uuid;

/// Where the outbox is kept (the tab's `sessionStorage`).
#[cfg(feature = "hydrate")]
const STORAGE_KEY: &str = "tandem.outbox";

/// A room's hook for its acknowledged writes.
type Confirm = Rc<dyn Fn(Event)>;

thread_local! {
    // Browser-side state (the page has one thread); empty on the server.
    static CONFIRM: RefCell<HashMap<Topic, (u64, Confirm)>> = RefCell::new(HashMap::new());
    static NEXT_ID: RefCell<u64> = const { RefCell::new(1) };
    static WAKE: RefCell<Option<mpsc::UnboundedSender<()>>> = const { RefCell::new(None) };
    static RETRIES: RefCell<HashMap<Uuid, Backoff>> = RefCell::new(HashMap::new());
}

#[derive(Clone, Copy)]
pub struct Sender {
    outbox: RwSignal<Outbox>,
}

/// Creates the tab's sender and provides it; it starts after hydration.
pub fn provide_sender() -> Sender {
    let sender = Sender {
        outbox: RwSignal::new(Outbox::default()),
    };
    provide_context(sender);
    let live = use_live_client();
    let scope = Scope::current();
    // Effects run only in the browser, after hydration: the server-rendered
    // page had no pending rows, and neither has the hydrated one at first.
    Effect::new(move |started: Option<()>| {
        if started.is_none() {
            if let Some(saved) = load() {
                sender.outbox.set(Outbox::from_json(&saved));
            }
            let (wake, woken) = mpsc::unbounded();
            WAKE.with(|w| *w.borrow_mut() = Some(wake));
            scope.spawn(run(sender, live, scope.clone(), woken));
        }
    });
    // The link is back: whatever waits goes now.
    Effect::new(move |_| {
        if live.status().get() == LinkStatus::Live {
            sender.wake();
        }
    });
    sender
}

pub fn use_sender() -> Sender {
    use_context::<Sender>().unwrap_or_else(provide_sender)
}

impl Sender {
    /// The writes waiting, for views.
    pub fn outbox(&self) -> Signal<Outbox> {
        self.outbox.into()
    }

    /// Queues a write and sends it when its turn comes.
    pub fn push(&self, q: Queued) {
        self.outbox.update(|o| o.push(q));
        self.persist();
        self.wake();
    }

    /// Removes a waiting or refused write (not one in flight).
    pub fn cancel(&self, client_id: Uuid) -> bool {
        let done = self.outbox.try_update(|o| o.cancel(client_id)) == Some(true);
        self.persist();
        done
    }

    /// Hands `topic`'s acknowledged events to `confirm` until `off_confirm`.
    pub fn on_confirm(&self, topic: Topic, confirm: impl Fn(Event) + 'static) -> u64 {
        let id = NEXT_ID.with(|n| {
            let mut n = n.borrow_mut();
            *n += 1;
            *n
        });
        CONFIRM.with(|c| c.borrow_mut().insert(topic, (id, Rc::new(confirm))));
        id
    }

    /// Removes registration `id` of `topic`, if it is still the current one.
    pub fn off_confirm(&self, topic: Topic, id: u64) {
        CONFIRM.with(|c| {
            let mut c = c.borrow_mut();
            if c.get(&topic).is_some_and(|(current, _)| *current == id) {
                c.remove(&topic);
            }
        });
    }

    fn wake(&self) {
        WAKE.with(|w| {
            if let Some(w) = w.borrow().as_ref() {
                let _ = w.unbounded_send(());
            }
        });
    }

    fn persist(&self) {
        if let Some(json) = self.outbox.try_with_untracked(Outbox::to_json) {
            save(&json);
        }
    }
}

async fn run(
    sender: Sender,
    live: LiveClient,
    scope: Scope,
    mut woken: mpsc::UnboundedReceiver<()>,
) {
    loop {
        let Some(ready) = sender.outbox.try_update(Outbox::take_ready) else {
            return;
        };
        if !ready.is_empty() {
            sender.persist();
        }
        for q in ready {
            scope.spawn(send_one(sender, live, q));
        }
        if woken.next().await.is_none() {
            return;
        }
    }
}

async fn send_one(sender: Sender, live: LiveClient, q: Queued) {
    let result = if q.via_socket {
        match live.send_write(q.topic, q.client_id, q.write()).await {
            // Socket down or no answer: the same id over HTTP cannot double it.
            Err(AppError::Transport(_)) => over_http(&q).await,
            other => other,
        }
    } else {
        over_http(&q).await
    };
    let how = match result {
        Ok(event) => {
            let confirm = CONFIRM.with(|c| c.borrow().get(&q.topic).map(|(_, f)| f.clone()));
            if let Some(confirm) = confirm {
                confirm(event);
            }
            RETRIES.with(|r| r.borrow_mut().remove(&q.client_id));
            Settled::Done
        }
        Err(e) if e.is_transient() || matches!(e, AppError::Limit(_)) => Settled::Retry,
        Err(e) => {
            RETRIES.with(|r| r.borrow_mut().remove(&q.client_id));
            Settled::Refused(e.to_string())
        }
    };
    let retry = how == Settled::Retry;
    sender.outbox.try_update(|o| o.settle(q.client_id, how));
    sender.persist();
    if retry {
        // Waiting again already: a wake (the link back) sends it sooner.
        let delay = RETRIES.with(|r| {
            r.borrow_mut()
                .entry(q.client_id)
                .or_default()
                .next_delay_ms(now_ms(), random())
        });
        sleep_ms(delay.max(250)).await;
    }
    sender.wake();
}

async fn over_http(q: &Queued) -> Result<Event, AppError> {
    use crate::features::messages::{delete_message, edit_message, send_message};
    use crate::protocol::ChatWrite;
    match q.topic {
        Topic::Room(room_id) => match q.write() {
            ChatWrite::Message { body } => send_message(room_id, q.client_id, body).await,
            ChatWrite::Edit { target, body } => {
                edit_message(room_id, q.client_id, target, body).await
            }
            ChatWrite::Delete { target } => delete_message(room_id, q.client_id, target).await,
        },
        other => Err(AppError::Validation(format!(
            "{other} does not take messages"
        ))),
    }
}

#[cfg(feature = "hydrate")]
fn storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

#[cfg(feature = "hydrate")]
fn load() -> Option<String> {
    storage()?.get_item(STORAGE_KEY).ok().flatten()
}

#[cfg(feature = "hydrate")]
fn save(json: &str) {
    if let Some(s) = storage() {
        if let Err(e) = s.set_item(STORAGE_KEY, json) {
            tracing::warn!(error = ?e, "could not keep the outbox in sessionStorage");
        }
    }
}

#[cfg(not(feature = "hydrate"))]
fn load() -> Option<String> {
    None
}

#[cfg(not(feature = "hydrate"))]
fn save(_json: &str) {}
