//! The connection task (hydrate build only): climbs and descends the
//! transport ladder (`sync::ladder`), running one attempt at a time on the
//! current rung (`ws`, `sse`, `poll`), and routes server frames to the
//! topics' handlers, whatever rung carried them.
//!
//! Reconnects wait a full-jitter backoff (`Backoff`: up to 5 s, reset only
//! after a link stable for 10 s), or after a server `reconnect` frame a
//! uniformly random moment within its window; a wake (`Wake`) cuts any wait
//! short. A step down the ladder tries the next rung at once. A failed
//! attempt is blamed on its rung only if the server answers a plain request
//! (`GET /healthz`) meanwhile: a restarting server or a lost network moves
//! no rung. A paused link waits for the tab to be shown, a topic that needs
//! it, or "retry now".

use super::{now_ms, random, Inner, Wake};
use crate::error::AppError;
use crate::protocol::{CloseCode, ServerFrame};
use crate::sync::backoff::{self, Backoff};
use crate::sync::ladder::{Ended, Rung};
use crate::sync::{document_visible, LinkStatus};
use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use gloo_timers::future::TimeoutFuture;
use leptos::prelude::*;
use std::rc::Rc;

/// Failed attempts in a row after which the link shows as offline.
const OFFLINE_AFTER: u32 = 4;
/// How long `/healthz` may take to say the server is there.
const REACHABLE_MS: u32 = 3_000;

pub(super) enum Outcome {
    /// Try again after the backoff, or within the server's window.
    Retry { window_ms: Option<u64> },
    /// Try again at once (kicked, or the topics changed on a rung that
    /// names them per request).
    Now,
    /// The server closed for good (terminal close code).
    Stop,
    /// The connection's credentials ended (4401): sign in again.
    SignedOut,
    /// Nothing to watch (a resting tab, or the server's 4002): wait until
    /// something needs the link.
    Pause,
    /// Time to try the rung above (`Ladder::climb_if_due`).
    Climb,
}

pub(super) async fn run(inner: Rc<Inner>, mut woken: mpsc::UnboundedReceiver<Wake>) {
    let mut backoff = Backoff::default();
    let mut first = true;
    // The page script's socket (`sync::early`): the first attempt takes it
    // over if it is on the WebSocket rung; else it is closed now.
    let mut early = inner.ladder.borrow().rung() == Rung::WebSocket;
    if !early {
        if let Some(crate::sync::early::Early::Socket(socket, _)) = crate::sync::early::take() {
            let _ = socket.close_with_code(1000);
        }
    }
    loop {
        if !first {
            inner.status.try_set(down_status(&backoff));
        }
        first = false;
        let rung = inner.ladder.borrow().rung();
        inner.rung.try_set(rung);
        let (outcome, ended) = match rung {
            Rung::WebSocket => {
                super::ws::attempt(&inner, &mut backoff, &mut woken, std::mem::take(&mut early))
                    .await
            }
            Rung::Sse => super::sse::attempt(&inner, &mut backoff, &mut woken).await,
            Rung::LongPoll | Rung::ShortPoll => {
                let long = rung == Rung::LongPoll;
                super::poll::attempt(&inner, &mut backoff, &mut woken, long).await
            }
        };
        inner.went_down();
        let ended = match ended {
            Ended::Failed if !reachable().await => Ended::Unreachable,
            other => other,
        };
        let stepped = {
            let mut ladder = inner.ladder.borrow_mut();
            ladder.ended(ended, now_ms(), random());
            let signed_out = matches!(outcome, Outcome::SignedOut);
            if ended == Ended::Worked && !ladder.forced() && !signed_out {
                super::remember_rung(rung);
            }
            if matches!(outcome, Outcome::Climb) {
                ladder.climb_if_due(now_ms());
            }
            ladder.rung() != rung
        };
        if stepped {
            tracing::info!(
                from = rung.name(),
                to = inner.ladder.borrow().rung().name(),
                "transport changed"
            );
        }
        let delay = match outcome {
            Outcome::Stop => {
                inner.status.try_set(LinkStatus::Offline);
                return;
            }
            Outcome::SignedOut => {
                inner.status.try_set(LinkStatus::SignedOut);
                return;
            }
            Outcome::Now | Outcome::Climb => 0,
            // The next rung is tried at once.
            Outcome::Retry { .. } if stepped => 0,
            Outcome::Pause => {
                inner.status.try_set(LinkStatus::Paused);
                loop {
                    match woken.next().await {
                        Some(Wake::Kick | Wake::Need) => break,
                        Some(Wake::Check) if document_visible() => break,
                        Some(_) => {}
                        None => return,
                    }
                }
                if document_visible() {
                    inner.wake_up();
                }
                0
            }
            Outcome::Retry { window_ms } => {
                let delay = backoff.next_delay_ms(now_ms(), random());
                window_ms.map_or(delay, |w| backoff::within(w, random()))
            }
        };
        inner.status.try_set(down_status(&backoff));
        if delay > 0 {
            let mut wait = TimeoutFuture::new(delay).fuse();
            loop {
                futures::select! {
                    _ = wait => break,
                    wake = woken.next() => match wake {
                        // Going offline is no reason to try sooner.
                        Some(Wake::Offline) => {
                            inner.status.try_set(LinkStatus::Offline);
                        }
                        Some(Wake::Kick | Wake::Check | Wake::Need) => break,
                        Some(Wake::Hidden | Wake::Topics) => {}
                        None => return,
                    },
                }
            }
        }
    }
}

/// Whether the server answers a plain request now (`GET /healthz`).
async fn reachable() -> bool {
    let request = gloo_net::http::Request::get("/healthz").send();
    futures::select! {
        r = request.fuse() => r.is_ok_and(|r| r.ok()),
        _ = TimeoutFuture::new(REACHABLE_MS).fuse() => false,
    }
}

fn down_status(backoff: &Backoff) -> LinkStatus {
    if backoff.attempts() >= OFFLINE_AFTER || !window().navigator().on_line() {
        LinkStatus::Offline
    } else {
        LinkStatus::Reconnecting
    }
}

pub(super) fn closed(code: u16) -> Outcome {
    if code == CloseCode::Unauthenticated as u16 {
        Outcome::SignedOut
    } else if code == CloseCode::Idle as u16 {
        Outcome::Pause
    } else if CloseCode::should_reconnect(code) {
        Outcome::Retry { window_ms: None }
    } else {
        Outcome::Stop
    }
}

/// Routes one server message; `Some` ends the connection.
pub(super) fn dispatch(inner: &Inner, text: &str) -> Option<Outcome> {
    match crate::json::read::<ServerFrame>(text) {
        Ok(f) => handle(inner, f),
        Err(e) => {
            tracing::warn!(error = %e, "unreadable server frame; ignored");
            None
        }
    }
}

/// Routes one server frame; `Some` ends the connection. The frames of a
/// `batch` are handled in order within this one call, so the page draws
/// their changes once.
pub(super) fn handle(inner: &Inner, frame: ServerFrame) -> Option<Outcome> {
    match frame {
        ServerFrame::Batch { frames } => {
            for f in frames {
                if let Some(outcome) = handle(inner, f) {
                    return Some(outcome);
                }
            }
        }
        ServerFrame::Event(event) => {
            inner.saw(event.topic, Some(event.version));
            if let Some(h) = inner.handler(&event.topic) {
                h.on_event(event);
            }
        }
        ServerFrame::Subscribed { topic, version, .. } => {
            inner.saw(topic, Some(version));
            if let Some(h) = inner.handler(&topic) {
                h.on_subscribed(version);
            }
        }
        ServerFrame::Reset { topic, .. } => {
            inner.saw(topic, None);
            inner.server_ended(topic);
            if let Some(h) = inner.handler(&topic) {
                h.on_reset();
            }
        }
        ServerFrame::Ack { client_id, event } => {
            let waiter = inner.acks.borrow_mut().remove(&client_id);
            if let Some(waiter) = waiter {
                let _ = waiter.send(Ok(event));
            }
        }
        ServerFrame::Error(e) => match (e.client_id, e.topic) {
            (Some(id), _) => {
                let waiter = inner.acks.borrow_mut().remove(&id);
                if let Some(waiter) = waiter {
                    let _ = waiter.send(Err(AppError::from_frame(e.code, e.message)));
                }
            }
            (None, Some(topic)) => {
                inner.server_ended(topic);
                if let Some(h) = inner.handler(&topic) {
                    h.on_error(e);
                }
            }
            (None, None) => {
                tracing::warn!(code = ?e.code, message = %e.message, "server error frame")
            }
        },
        // The browser answers the server's WebSocket pings by itself; an
        // application `ping` only says the server is there (the watchdog
        // noted it), so it needs no answer.
        ServerFrame::Ping {} => {}
        ServerFrame::Reconnect { window_ms, .. } => {
            return Some(Outcome::Retry {
                window_ms: Some(window_ms.min(60_000)),
            });
        }
        ServerFrame::Hello { .. } | ServerFrame::Unsubscribed { .. } | ServerFrame::Pong {} => {}
    }
    None
}

/// What a wake or a tick means to an attempt on an HTTP rung.
pub(super) enum Step {
    /// Nothing changes.
    Stay,
    /// The topics to follow changed: start a new request with them.
    Again,
    /// End the attempt.
    Leave(Outcome),
}

/// A wake during an attempt on an HTTP rung (`sse`, `poll`).
pub(super) fn http_wake(inner: &Inner, wake: Option<Wake>, hidden_since: &mut Option<f64>) -> Step {
    match wake {
        Some(Wake::Kick) => Step::Leave(Outcome::Now),
        Some(Wake::Offline) => Step::Leave(Outcome::Retry { window_ms: None }),
        Some(Wake::Topics) => Step::Again,
        Some(Wake::Hidden) => {
            hidden_since.get_or_insert(now_ms());
            Step::Stay
        }
        Some(Wake::Check) if document_visible() => {
            *hidden_since = None;
            if inner.resting.get() {
                inner.wake_up();
                return Step::Again;
            }
            Step::Stay
        }
        Some(Wake::Check | Wake::Need) => Step::Stay,
        None => Step::Leave(Outcome::Stop),
    }
}

/// The one-second check of an attempt on an HTTP rung: time to climb, or
/// to rest (a tab hidden for the server's `hidden_tab_ms`).
pub(super) fn http_tick(inner: &Inner, hidden_since: Option<f64>) -> Step {
    let now = now_ms();
    if inner.ladder.borrow().climb_due(now) {
        return Step::Leave(Outcome::Climb);
    }
    let rest_after = inner.hidden_tab_ms.get();
    let rest = hidden_since.is_some_and(|t| rest_after > 0.0 && now - t >= rest_after);
    if rest && !inner.resting.get() {
        inner.rest();
        return Step::Again;
    }
    Step::Stay
}
