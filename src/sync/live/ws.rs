//! The connection task (hydrate build only): connect, serve, reconnect.
//!
//! Reconnects wait a full-jitter backoff (`Backoff`: up to 5 s, reset only
//! after a link stable for 10 s), or after a server `reconnect` frame a
//! uniformly random moment within its window; a wake (`Wake`) cuts any wait
//! short. While live, a one-second watchdog drops a socket the server has
//! been silent on for its heartbeat timeout, and a `Check` wake sends a
//! `ping` that must be answered within `PROBE_MS`. The same watchdog starts
//! a hidden tab's rest (`Inner::rest`) and ends the socket when the rest
//! leaves it nothing to do; a paused link waits for the tab to be shown, a
//! topic that needs it, or "retry now".

use super::{now_ms, random, Inner, Wake};
use crate::error::AppError;
use crate::protocol::{ClientFrame, CloseCode, ServerFrame, PROTOCOL_VERSION};
use crate::sync::backoff::{self, Backoff};
use crate::sync::{document_visible, LinkStatus};
use futures::channel::mpsc;
use futures::{FutureExt, SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message, WebSocketError};
use gloo_timers::future::{IntervalStream, TimeoutFuture};
use leptos::prelude::*;
use std::rc::Rc;

/// How long a new socket may take to say `hello`.
const HELLO_TIMEOUT_MS: u32 = 10_000;
/// How long a live link may take to answer a check.
const PROBE_MS: f64 = 3_000.0;
/// Failed attempts in a row after which the link shows as offline.
const OFFLINE_AFTER: u32 = 4;

enum Outcome {
    /// Try again after the backoff, or within the server's window.
    Retry { window_ms: Option<u64> },
    /// Try again at once (kicked).
    Now,
    /// The server closed for good (terminal close code).
    Stop,
    /// The connection's credentials ended (4401): sign in again.
    SignedOut,
    /// Nothing to watch (a resting tab, or the server's 4002): wait until
    /// something needs the link.
    Pause,
}

pub(super) async fn run(inner: Rc<Inner>, mut woken: mpsc::UnboundedReceiver<Wake>) {
    let mut backoff = Backoff::default();
    let mut first = true;
    loop {
        if !first {
            inner.status.try_set(down_status(&backoff));
        }
        first = false;
        let outcome = connect_once(&inner, &mut backoff, &mut woken).await;
        inner.went_down();
        let delay = match outcome {
            Outcome::Stop => {
                inner.status.try_set(LinkStatus::Offline);
                return;
            }
            Outcome::SignedOut => {
                inner.status.try_set(LinkStatus::SignedOut);
                return;
            }
            Outcome::Now => 0,
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
                        Some(Wake::Hidden) => {}
                        None => return,
                    },
                }
            }
        }
    }
}

fn down_status(backoff: &Backoff) -> LinkStatus {
    if backoff.attempts() >= OFFLINE_AFTER || !window().navigator().on_line() {
        LinkStatus::Offline
    } else {
        LinkStatus::Reconnecting
    }
}

async fn connect_once(
    inner: &Rc<Inner>,
    backoff: &mut Backoff,
    woken: &mut mpsc::UnboundedReceiver<Wake>,
) -> Outcome {
    let retry = Outcome::Retry { window_ms: None };
    let Ok(ws) = WebSocket::open(&socket_url()) else {
        return retry;
    };
    let (mut sink, stream) = ws.split();
    let mut stream = stream.fuse();

    // The server speaks first.
    let timeout_ms = futures::select! {
        first = stream.next() => match first {
            Some(Ok(Message::Text(t))) => match serde_json::from_str::<ServerFrame>(&t) {
                Ok(ServerFrame::Hello { heartbeat_timeout_ms, protocol, hidden_tab_ms, .. }) => {
                    if protocol != PROTOCOL_VERSION {
                        tracing::warn!(server = protocol, client = PROTOCOL_VERSION, "protocol versions differ");
                    }
                    inner.hidden_tab_ms.set(hidden_tab_ms as f64);
                    heartbeat_timeout_ms as f64
                }
                _ => return retry,
            },
            Some(Err(WebSocketError::ConnectionClose(e))) => return closed(e.code),
            _ => return retry,
        },
        _ = TimeoutFuture::new(HELLO_TIMEOUT_MS).fuse() => return retry,
    };

    let (tx, mut rx) = mpsc::unbounded::<String>();
    *inner.out.borrow_mut() = Some(tx.clone());
    backoff.connected(now_ms());
    inner.status.try_set(LinkStatus::Live);
    for frame in inner.resumes() {
        inner.queue(&frame);
    }

    let mut heard = now_ms();
    let mut probe_until: Option<f64> = None;
    // Since when the tab has been hidden (counted from now if it already is).
    let mut hidden_since = (!document_visible()).then(now_ms);
    let mut watchdog = IntervalStream::new(1000).fuse();
    loop {
        futures::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    heard = now_ms();
                    probe_until = None;
                    if let Some(outcome) = dispatch(inner, &text) {
                        return outcome;
                    }
                }
                Some(Ok(Message::Bytes(_))) => heard = now_ms(),
                Some(Err(WebSocketError::ConnectionClose(e))) => return closed(e.code),
                Some(Err(_)) | None => return retry,
            },
            frame = rx.next() => {
                let Some(text) = frame else { return retry };
                if sink.send(Message::Text(text)).await.is_err() {
                    return retry;
                }
            }
            wake = woken.next() => match wake {
                Some(Wake::Kick) => return Outcome::Now,
                Some(Wake::Offline) => return retry,
                Some(Wake::Hidden) => {
                    hidden_since.get_or_insert(now_ms());
                }
                Some(Wake::Need) => {}
                Some(Wake::Check) => {
                    if document_visible() {
                        hidden_since = None;
                        inner.wake_up();
                    }
                    if probe_until.is_none() {
                        probe_until = Some(now_ms() + PROBE_MS);
                        inner.queue(&ClientFrame::Ping {});
                    }
                }
                None => return Outcome::Stop,
            },
            _ = watchdog.next() => {
                let now = now_ms();
                if now - heard > timeout_ms || probe_until.is_some_and(|t| now > t) {
                    return retry;
                }
                let rest_after = inner.hidden_tab_ms.get();
                if hidden_since.is_some_and(|t| rest_after > 0.0 && now - t >= rest_after) {
                    inner.rest();
                }
                if inner.resting.get() && !inner.needs_socket() {
                    // Said goodbye properly: the server counts a normal close.
                    if let Ok(ws) = sink.reunite(stream.into_inner()) {
                        let _ = ws.close(Some(1000), Some("nothing to watch"));
                    }
                    return Outcome::Pause;
                }
            }
        }
    }
}

fn closed(code: u16) -> Outcome {
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
fn dispatch(inner: &Inner, text: &str) -> Option<Outcome> {
    match serde_json::from_str::<ServerFrame>(text) {
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
fn handle(inner: &Inner, frame: ServerFrame) -> Option<Outcome> {
    match frame {
        ServerFrame::Batch { frames } => {
            for f in frames {
                if let Some(outcome) = handle(inner, f) {
                    return Some(outcome);
                }
            }
        }
        ServerFrame::Event(event) => {
            if let Some(h) = inner.handler(&event.topic) {
                h.on_event(event);
            }
        }
        ServerFrame::Subscribed { topic, version, .. } => {
            if let Some(h) = inner.handler(&topic) {
                h.on_subscribed(version);
            }
        }
        ServerFrame::Reset { topic, .. } => {
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

fn socket_url() -> String {
    let location = window().location();
    let proto = match location.protocol().as_deref() {
        Ok("https:") => "wss:",
        _ => "ws:",
    };
    let host = location.host().unwrap_or_default();
    format!("{proto}//{host}/ws?protocol={PROTOCOL_VERSION}&batch=1")
}
