//! The WebSocket rung (hydrate build only): one attempt at the tab's socket.
//!
//! The server speaks first (`hello`, within `HELLO_TIMEOUT_MS`); then the
//! registered topics are resubscribed from their versions and frames are
//! routed to their handlers (`conn::handle`). While live, a one-second
//! watchdog drops a socket the server has been silent on for its heartbeat
//! timeout, and a `Check` wake sends a `ping` that must be answered within
//! `PROBE_MS`. The same watchdog starts a hidden tab's rest (`Inner::rest`)
//! and ends the socket when the rest leaves it nothing to do.

use super::conn::{closed, dispatch, Outcome};
use super::{now_ms, Inner, Wake};
use crate::protocol::{ClientFrame, ServerFrame, PROTOCOL_VERSION};
use crate::sync::backoff::Backoff;
use crate::sync::document_visible;
use crate::sync::early::Early;
use crate::sync::ladder::Ended;
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

/// One attempt: how it ended, and whether the socket worked (said `hello`).
/// With `early` (the page's first attempt), it takes over the socket the
/// page's script opened, if any, with the text frames that socket received
/// (`sync::early`).
pub(super) async fn attempt(
    inner: &Rc<Inner>,
    backoff: &mut Backoff,
    woken: &mut mpsc::UnboundedReceiver<Wake>,
    early: bool,
) -> (Outcome, Ended) {
    let retry = Outcome::Retry { window_ms: None };
    // The take and gloo's listeners happen in one synchronous step (no
    // await in between): no message event can fall between the script's
    // listener and gloo's.
    let adopted = match early.then(crate::sync::early::take).flatten() {
        // The page's socket closed before hearing anything: this attempt
        // has failed already, with no new handshake. The ladder counts it
        // (if the server answers `/healthz` now), and the next attempt
        // follows at once, with no backoff: the failure may be long past
        // (a server that restarted while the page loaded is back by now).
        Some(Early::Failed) => return (Outcome::Now, Ended::Failed),
        Some(Early::Socket(raw, frames)) => match WebSocket::try_from(raw.clone()) {
            Ok(ws) => Some((ws, frames)),
            Err(_) => {
                let _ = raw.close_with_code(1000);
                None
            }
        },
        None => None,
    };
    let (ws, early_frames) = match adopted {
        Some(adopted) => adopted,
        None => match WebSocket::open(&socket_url()) {
            Ok(ws) => (ws, Vec::new()),
            Err(_) => return (retry, Ended::Failed),
        },
    };
    let mut early_frames = early_frames.into_iter();
    let (mut sink, stream) = ws.split();
    let mut stream = stream.fuse();

    // The server speaks first (the early socket may have heard it already).
    let first = match early_frames.next() {
        Some(text) => Some(Ok(Message::Text(text))),
        None => futures::select! {
            first = stream.next() => first,
            _ = TimeoutFuture::new(HELLO_TIMEOUT_MS).fuse() => return (retry, Ended::Failed),
        },
    };
    let timeout_ms = match first {
        Some(Ok(Message::Text(t))) => match crate::json::read::<ServerFrame>(&t) {
            Ok(ServerFrame::Hello {
                heartbeat_timeout_ms,
                protocol,
                hidden_tab_ms,
                ..
            }) => {
                if protocol != PROTOCOL_VERSION {
                    tracing::warn!(
                        server = protocol,
                        client = PROTOCOL_VERSION,
                        "protocol versions differ"
                    );
                }
                inner.hidden_tab_ms.set(hidden_tab_ms as f64);
                heartbeat_timeout_ms as f64
            }
            _ => return (retry, Ended::Failed),
        },
        Some(Err(WebSocketError::ConnectionClose(e))) => return (closed(e.code), Ended::Failed),
        _ => return (retry, Ended::Failed),
    };

    let (tx, mut rx) = mpsc::unbounded::<String>();
    *inner.out.borrow_mut() = Some(tx.clone());
    backoff.connected(now_ms());
    inner.ladder.borrow_mut().working(now_ms(), super::random());
    inner.went_live();
    for frame in inner.resumes() {
        inner.queue(&frame);
    }
    // Whatever else the early socket heard came before anything the stream
    // will give.
    for text in early_frames {
        if let Some(outcome) = dispatch(inner, &text) {
            return (outcome, Ended::Worked);
        }
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
                        return (outcome, Ended::Worked);
                    }
                }
                Some(Ok(Message::Bytes(_))) => heard = now_ms(),
                Some(Err(WebSocketError::ConnectionClose(e))) => return (closed(e.code), Ended::Worked),
                Some(Err(_)) | None => return (retry, Ended::Worked),
            },
            frame = rx.next() => {
                let Some(text) = frame else { return (retry, Ended::Worked) };
                if sink.send(Message::Text(text)).await.is_err() {
                    return (retry, Ended::Worked);
                }
            }
            wake = woken.next() => match wake {
                Some(Wake::Kick) => return (Outcome::Now, Ended::Worked),
                Some(Wake::Offline) => return (retry, Ended::Worked),
                Some(Wake::Hidden) => {
                    hidden_since.get_or_insert(now_ms());
                }
                Some(Wake::Need | Wake::Topics) => {}
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
                None => return (Outcome::Stop, Ended::Worked),
            },
            _ = watchdog.next() => {
                let now = now_ms();
                if now - heard > timeout_ms || probe_until.is_some_and(|t| now > t) {
                    return (retry, Ended::Worked);
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
                    return (Outcome::Pause, Ended::Worked);
                }
            }
        }
    }
}

/// The tab's socket URL on this page's host (`ws:` or `wss:` as the page).
fn socket_url() -> String {
    let location = window().location();
    let proto = match location.protocol().as_deref() {
        Ok("https:") => "wss:",
        _ => "ws:",
    };
    let host = location.host().unwrap_or_default();
    format!("{proto}//{host}{}", crate::sync::early::socket_path())
}
