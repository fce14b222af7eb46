//! The SSE rung (hydrate build only): one attempt at `GET /sse` with the
//! topics to follow and their versions (docs/PROTOCOL.md §15).
//!
//! The browser's `EventSource` is used for its parsing only: on any error
//! the stream is closed here, never left to reconnect by itself, and the
//! next attempt names the versions the handlers hold. It worked if `hello`
//! came within `HELLO_TIMEOUT_MS` and the stream then lasted `STABLE_MS`
//! (a buffering proxy delivers a stream only when it cuts it: all at once,
//! then an error). A stream that stops for the heartbeat timeout before it
//! held that long failed too.
//! The topics are fixed per stream: a change of topics opens a new one.

use super::conn::{closed, dispatch, http_tick, http_wake, Outcome, Step};
use super::{now_ms, Inner, Wake};
use crate::protocol::{CloseCode, ServerFrame, PROTOCOL_VERSION};
use crate::sync::backoff::Backoff;
use crate::sync::document_visible;
use crate::sync::ladder::Ended;
use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use gloo_timers::future::{IntervalStream, TimeoutFuture};
use std::rc::Rc;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

/// How long a new stream may take to say `hello`.
const HELLO_TIMEOUT_MS: u32 = 5_000;
/// A stream that breaks sooner than this after its `hello` did not work.
const STABLE_MS: f64 = 2_000.0;

/// What the `EventSource` heard.
enum Heard {
    Message(String),
    /// `event: close`, with its data (`{"code":...,"reason":...}`).
    Close(String),
    Error,
}

/// An `EventSource` whose events arrive on a channel; closed when dropped.
struct Stream {
    es: web_sys::EventSource,
    heard: mpsc::UnboundedReceiver<Heard>,
    on_message: Closure<dyn FnMut(web_sys::MessageEvent)>,
    on_close: Closure<dyn FnMut(web_sys::MessageEvent)>,
    _on_error: Closure<dyn FnMut(web_sys::Event)>,
}

impl Stream {
    fn open(url: &str) -> Option<Stream> {
        let es = web_sys::EventSource::new(url).ok()?;
        let (tx, heard) = mpsc::unbounded();
        let data = |e: &web_sys::MessageEvent| e.data().as_string().unwrap_or_default();
        let on_message = {
            let tx = tx.clone();
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                let _ = tx.unbounded_send(Heard::Message(data(&e)));
            })
        };
        let on_close = {
            let tx = tx.clone();
            Closure::<dyn FnMut(web_sys::MessageEvent)>::new(move |e: web_sys::MessageEvent| {
                let _ = tx.unbounded_send(Heard::Close(data(&e)));
            })
        };
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            let _ = tx.unbounded_send(Heard::Error);
        });
        es.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        es.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        es.add_event_listener_with_callback("close", on_close.as_ref().unchecked_ref())
            .ok()?;
        Some(Stream {
            es,
            heard,
            on_message,
            on_close,
            _on_error: on_error,
        })
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.es.close();
        self.es.set_onmessage(None);
        self.es.set_onerror(None);
        let _ = self
            .es
            .remove_event_listener_with_callback("close", self.on_close.as_ref().unchecked_ref());
        let _ = &self.on_message;
    }
}

pub(super) async fn attempt(
    inner: &Rc<Inner>,
    backoff: &mut Backoff,
    woken: &mut mpsc::UnboundedReceiver<Wake>,
) -> (Outcome, Ended) {
    let retry = Outcome::Retry { window_ms: None };
    let topics = inner.topic_list();
    if topics.is_empty() {
        // Nothing to follow: nothing was tried.
        return (Outcome::Pause, Ended::Unreachable);
    }
    let url = format!("/sse?protocol={PROTOCOL_VERSION}&topics={topics}");
    let Some(mut stream) = Stream::open(&url) else {
        return (retry, Ended::Failed);
    };
    let mut hidden_since = (!document_visible()).then(now_ms);

    // The server speaks first.
    let mut hello_timer = TimeoutFuture::new(HELLO_TIMEOUT_MS).fuse();
    let timeout_ms = loop {
        futures::select! {
            heard = stream.heard.next() => match heard {
                Some(Heard::Message(text)) => match crate::json::read::<ServerFrame>(&text) {
                    Ok(ServerFrame::Hello { heartbeat_timeout_ms, hidden_tab_ms, .. }) => {
                        inner.hidden_tab_ms.set(hidden_tab_ms as f64);
                        break heartbeat_timeout_ms as f64;
                    }
                    _ => return (retry, Ended::Failed),
                },
                Some(Heard::Close(data)) => return (closed(CloseCode::from_sse_close(&data)), Ended::Failed),
                Some(Heard::Error) | None => return (retry, Ended::Failed),
            },
            _ = hello_timer => return (retry, Ended::Failed),
            wake = woken.next() => match http_wake(inner, wake, &mut hidden_since) {
                Step::Stay => {}
                // Not judged: it was cut short.
                Step::Again => return (Outcome::Now, Ended::Unreachable),
                Step::Leave(outcome) => return (outcome, Ended::Unreachable),
            },
        }
    };
    let hello_at = now_ms();
    let broke = move |now: f64| {
        if now - hello_at < STABLE_MS {
            Ended::Failed
        } else {
            Ended::Worked
        }
    };
    backoff.connected(hello_at);
    inner.went_live();
    let mut heard = hello_at;
    let mut proven = false;
    let mut watchdog = IntervalStream::new(1000).fuse();
    loop {
        let step = futures::select! {
            got = stream.heard.next() => match got {
                Some(Heard::Message(text)) => {
                    heard = now_ms();
                    match dispatch(inner, &text) {
                        Some(outcome) => Step::Leave(outcome),
                        None => Step::Stay,
                    }
                }
                Some(Heard::Close(data)) => Step::Leave(closed(CloseCode::from_sse_close(&data))),
                Some(Heard::Error) | None => return (retry, broke(now_ms())),
            },
            wake = woken.next() => http_wake(inner, wake, &mut hidden_since),
            _ = watchdog.next() => {
                let now = now_ms();
                if now - heard > timeout_ms {
                    // Stopped flowing: the rung's fault only if it never held
                    // (a laptop that slept is not a blocked network).
                    return (retry, broke(now));
                }
                if !proven && broke(now) == Ended::Worked {
                    proven = true;
                    inner.ladder.borrow_mut().working(now, super::random());
                }
                http_tick(inner, hidden_since)
            }
        };
        match step {
            Step::Stay => {}
            Step::Again => return (Outcome::Now, Ended::Worked),
            Step::Leave(outcome) => return (outcome, Ended::Worked),
        }
    }
}
