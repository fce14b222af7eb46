//! The tab's one WebSocket (hydrate build only).
//!
//! Concurrency: one `spawn_local` loop owns the socket for the life of the
//! page. It connects, waits for `hello`, marks the link live, resubscribes
//! every registered topic from its handler's `since()`, then serves three
//! inputs: frames from the server (routed to handlers), frames queued by the
//! page (subscribe, send), and a one-second watchdog that drops the socket
//! when the server has been silent past its heartbeat timeout. On any loss it
//! waits an exponential backoff with jitter and starts over. State shared with
//! the page lives in `Inner` behind `RefCell`s that are never held across an
//! await.

use super::backoff::Backoff;
use super::{LinkStatus, TopicHandler};
use crate::error::AppError;
use crate::protocol::{ClientFrame, CloseCode, ErrorCode, Event, ServerFrame, Topic};
use futures::channel::{mpsc, oneshot};
use futures::{FutureExt, SinkExt, StreamExt};
use gloo_net::websocket::{futures::WebSocket, Message, WebSocketError};
use gloo_timers::future::{IntervalStream, TimeoutFuture};
use leptos::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use uuid::Uuid;
use wasm_bindgen::prelude::*;

/// How long a WebSocket `send` waits for its `ack`.
const ACK_TIMEOUT_MS: u32 = 10_000;
/// How long a new socket may take to say `hello`.
const HELLO_TIMEOUT_MS: u32 = 10_000;
/// Failed attempts in a row after which the link shows as offline.
const OFFLINE_AFTER: u32 = 4;

#[derive(Clone, Copy)]
pub struct LiveClient {
    status: RwSignal<LinkStatus>,
    inner: StoredValue<Rc<Inner>, LocalStorage>,
}

struct Inner {
    status: RwSignal<LinkStatus>,
    subs: RefCell<HashMap<Topic, Rc<dyn TopicHandler>>>,
    /// The open socket's outgoing queue; `None` while not live.
    out: RefCell<Option<mpsc::UnboundedSender<String>>>,
    acks: RefCell<HashMap<Uuid, oneshot::Sender<Result<Event, AppError>>>>,
    /// Closes the current socket (test hook `window.__tandem.dropSocket`).
    kick: RefCell<Option<oneshot::Sender<()>>>,
    /// `performance.now()` before which no reconnect is attempted.
    hold_until: Cell<f64>,
}

/// Creates the tab's live client, provides it as context and starts its loop.
pub fn provide_live_client() -> LiveClient {
    let status = RwSignal::new(LinkStatus::Connecting);
    let inner = Rc::new(Inner {
        status,
        subs: RefCell::new(HashMap::new()),
        out: RefCell::new(None),
        acks: RefCell::new(HashMap::new()),
        kick: RefCell::new(None),
        hold_until: Cell::new(0.0),
    });
    let client = LiveClient {
        status,
        inner: StoredValue::new_local(inner.clone()),
    };
    provide_context(client);
    install_test_hook(inner.clone());
    leptos::task::spawn_local(run(inner));
    client
}

pub fn use_live_client() -> LiveClient {
    use_context::<LiveClient>().unwrap_or_else(provide_live_client)
}

impl LiveClient {
    pub fn status(&self) -> Signal<LinkStatus> {
        self.status.into()
    }

    /// Registers `handler` for `topic` and subscribes now if live (else on connect).
    pub fn subscribe(&self, topic: Topic, handler: Rc<dyn TopicHandler>) {
        let Some(inner) = self.inner.try_get_value() else {
            return;
        };
        let since = handler.since();
        inner.subs.borrow_mut().insert(topic.clone(), handler);
        inner.queue(&ClientFrame::Subscribe { topic, since });
    }

    pub fn unsubscribe(&self, topic: &Topic) {
        let Some(inner) = self.inner.try_get_value() else {
            return;
        };
        if inner.subs.borrow_mut().remove(topic).is_some() {
            inner.queue(&ClientFrame::Unsubscribe {
                topic: topic.clone(),
            });
        }
    }

    /// Drops the socket and connects again at once, e.g. after the display
    /// name changed (the server reads it from the cookie at the upgrade).
    pub fn reconnect(&self) {
        if let Some(kick) = self
            .inner
            .try_get_value()
            .and_then(|i| i.kick.borrow_mut().take())
        {
            let _ = kick.send(());
        }
    }

    /// Sends a chat message over the socket and waits for its `ack`.
    pub async fn send_message(
        &self,
        topic: Topic,
        client_id: Uuid,
        body: String,
    ) -> Result<Event, AppError> {
        let inner = self
            .inner
            .try_get_value()
            .ok_or_else(|| AppError::Transport("page is closing".into()))?;
        let (tx, rx) = oneshot::channel();
        inner.acks.borrow_mut().insert(client_id, tx);
        if !inner.queue(&ClientFrame::Send {
            topic,
            client_id,
            body,
        }) {
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
        match self.out.borrow().as_ref() {
            Some(tx) => tx.unbounded_send(frame.to_json()).is_ok(),
            None => false,
        }
    }

    fn handler(&self, topic: &Topic) -> Option<Rc<dyn TopicHandler>> {
        self.subs.borrow().get(topic).cloned()
    }

    /// Ends the live phase: no queue, every waiting send fails.
    fn went_down(&self) {
        self.out.borrow_mut().take();
        self.kick.borrow_mut().take();
        for (_, tx) in self.acks.borrow_mut().drain() {
            let _ = tx.send(Err(AppError::Transport("connection lost".into())));
        }
    }
}

enum Outcome {
    /// Try again after the backoff (or at least `after_ms`).
    Retry { after_ms: u32 },
    /// The server closed for good (terminal close code).
    Stop,
}

async fn run(inner: Rc<Inner>) {
    let mut backoff = Backoff::new(500, 15_000);
    let mut first = true;
    loop {
        let wait = inner.hold_until.get() - now();
        if wait > 0.0 {
            TimeoutFuture::new(wait as u32).await;
        }
        inner.status.set(if first {
            LinkStatus::Connecting
        } else if backoff.attempts() >= OFFLINE_AFTER || !browser_online() {
            LinkStatus::Offline
        } else {
            LinkStatus::Reconnecting
        });
        first = false;
        let outcome = connect_once(&inner, &mut backoff).await;
        inner.went_down();
        match outcome {
            Outcome::Stop => {
                inner.status.set(LinkStatus::Offline);
                return;
            }
            Outcome::Retry { after_ms } => {
                inner.status.set(if browser_online() {
                    LinkStatus::Reconnecting
                } else {
                    LinkStatus::Offline
                });
                let delay = backoff.next_delay_ms(js_sys::Math::random()).max(after_ms);
                TimeoutFuture::new(delay).await;
            }
        }
    }
}

async fn connect_once(inner: &Rc<Inner>, backoff: &mut Backoff) -> Outcome {
    let retry = Outcome::Retry { after_ms: 0 };
    let Ok(ws) = WebSocket::open(&socket_url()) else {
        return retry;
    };
    let (mut sink, stream) = ws.split();
    let mut stream = stream.fuse();

    // The server speaks first.
    let timeout_ms = futures::select! {
        first = stream.next() => match first {
            Some(Ok(Message::Text(t))) => match serde_json::from_str::<ServerFrame>(&t) {
                Ok(ServerFrame::Hello { heartbeat_timeout_ms, .. }) => heartbeat_timeout_ms as f64,
                _ => return retry,
            },
            Some(Err(WebSocketError::ConnectionClose(e))) => return closed(e.code),
            _ => return retry,
        },
        _ = TimeoutFuture::new(HELLO_TIMEOUT_MS).fuse() => return retry,
    };

    let (tx, mut rx) = mpsc::unbounded::<String>();
    let (kick_tx, mut kick_rx) = oneshot::channel::<()>();
    *inner.kick.borrow_mut() = Some(kick_tx);
    *inner.out.borrow_mut() = Some(tx.clone());
    backoff.reset();
    inner.status.set(LinkStatus::Live);
    let handlers: Vec<(Topic, Rc<dyn TopicHandler>)> = inner
        .subs
        .borrow()
        .iter()
        .map(|(t, h)| (t.clone(), h.clone()))
        .collect();
    for (topic, h) in handlers {
        inner.queue(&ClientFrame::Subscribe {
            topic,
            since: h.since(),
        });
    }

    let mut heard = now();
    let mut watchdog = IntervalStream::new(1000).fuse();
    loop {
        futures::select! {
            msg = stream.next() => match msg {
                Some(Ok(Message::Text(text))) => {
                    heard = now();
                    if let Some(outcome) = dispatch(inner, &text, &tx) {
                        return outcome;
                    }
                }
                Some(Ok(Message::Bytes(_))) => heard = now(),
                Some(Err(WebSocketError::ConnectionClose(e))) => return closed(e.code),
                Some(Err(_)) | None => return retry,
            },
            frame = rx.next() => {
                let Some(text) = frame else { return retry };
                if sink.send(Message::Text(text)).await.is_err() {
                    return retry;
                }
            }
            _ = kick_rx => return retry,
            _ = watchdog.next() => {
                if now() - heard > timeout_ms {
                    return retry;
                }
            }
        }
    }
}

fn closed(code: u16) -> Outcome {
    if CloseCode::should_reconnect(code) {
        Outcome::Retry { after_ms: 0 }
    } else {
        Outcome::Stop
    }
}

/// Routes one server frame; `Some` ends the connection.
fn dispatch(inner: &Inner, text: &str, tx: &mpsc::UnboundedSender<String>) -> Option<Outcome> {
    let frame = match serde_json::from_str::<ServerFrame>(text) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable server frame");
            return None;
        }
    };
    match frame {
        ServerFrame::Event(event) => {
            if let Some(h) = inner.handler(&event.topic) {
                h.on_event(event);
            }
        }
        ServerFrame::Reset { topic, .. } => {
            if let Some(h) = inner.handler(&topic) {
                h.on_reset();
            }
        }
        ServerFrame::Ack { client_id, event } => {
            if let Some(waiter) = inner.acks.borrow_mut().remove(&client_id) {
                let _ = waiter.send(Ok(event));
            }
        }
        ServerFrame::Error(e) => {
            let waiter = e
                .client_id
                .and_then(|id| inner.acks.borrow_mut().remove(&id));
            match waiter {
                Some(waiter) => {
                    let _ = waiter.send(Err(match e.code {
                        ErrorCode::NameRequired => AppError::NameRequired,
                        ErrorCode::Internal => AppError::Internal,
                        _ => AppError::Validation(e.message),
                    }));
                }
                None => tracing::warn!(code = ?e.code, message = %e.message, "server error frame"),
            }
        }
        ServerFrame::Ping {} => {
            let _ = tx.unbounded_send(ClientFrame::Pong {}.to_json());
        }
        ServerFrame::Reconnect { after_ms, .. } => {
            return Some(Outcome::Retry {
                after_ms: after_ms.min(60_000) as u32,
            });
        }
        ServerFrame::Hello { .. }
        | ServerFrame::Subscribed { .. }
        | ServerFrame::Unsubscribed { .. }
        | ServerFrame::Pong {} => {}
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
    format!("{proto}//{host}/ws")
}

fn now() -> f64 {
    window().performance().map(|p| p.now()).unwrap_or(0.0)
}

fn browser_online() -> bool {
    window().navigator().on_line()
}

/// `window.__tandem.dropSocket(holdMs)`: closes the socket and holds off
/// reconnecting for `holdMs`. Lets end-to-end tests (and curious users) see
/// a lost connection recover; it affects only this tab's own socket.
fn install_test_hook(inner: Rc<Inner>) {
    let drop_socket = Closure::<dyn Fn(f64)>::new(move |hold_ms: f64| {
        inner.hold_until.set(now() + hold_ms.max(0.0));
        if let Some(kick) = inner.kick.borrow_mut().take() {
            let _ = kick.send(());
        }
    });
    let hook = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&hook, &"dropSocket".into(), drop_socket.as_ref());
    let _ = js_sys::Reflect::set(&window(), &"__tandem".into(), &hook);
    // The hook lives as long as the page.
    drop_socket.forget();
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
