//! The polling rungs (hydrate build only): long polling (`GET /poll?wait=1`,
//! answered when there is news or after the server's long-poll wait) and
//! short polling (`GET /poll`, answered at once, repeated after the
//! answer's `poll_ms`: `ladder::short_poll_pause`), each request naming the
//! topics to follow and their versions (docs/PROTOCOL.md §15).
//!
//! An attempt is a run of polls; it ends when a poll fails. A poll that is
//! cut or answered with an error by something on the way (a proxy's 502 or
//! 504, a dropped connection, no answer in time) failed; 401 means signed
//! out; 429 and 503 are the server's own answers and blame no rung. The
//! first answer of an attempt shows the rung works (`Ladder::working`). A
//! change of topics, "retry now" or a climb aborts the poll in flight
//! (`AbortController`), so it does not hold one of the browser's
//! connections.

use super::conn::{handle, http_tick, http_wake, Outcome, Step};
use super::{now_ms, Inner, Wake};
use crate::protocol::{ServerFrame, PROTOCOL_VERSION};
use crate::sync::backoff::Backoff;
use crate::sync::document_visible;
use crate::sync::ladder::{short_poll_pause, Ended};
use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use gloo_timers::future::{IntervalStream, TimeoutFuture};
use std::rc::Rc;

/// The longest a long poll may take (the server answers within its
/// `long-poll-ms`: 25 s by default, at most 30 s).
const LONG_POLL_LIMIT_MS: u32 = 40_000;
/// The longest a short poll may take.
const SHORT_POLL_LIMIT_MS: u32 = 10_000;

#[derive(serde::Deserialize)]
struct Answer {
    frames: Vec<ServerFrame>,
    /// When to poll next (absent from older servers).
    #[serde(default)]
    poll_ms: Option<u64>,
}

/// One poll's result: its status and body, or `None` if it did not answer
/// (a network error).
async fn fetch(url: String, signal: Option<web_sys::AbortSignal>) -> Option<(u16, String)> {
    let r = gloo_net::http::Request::get(&url)
        .abort_signal(signal.as_ref())
        .send()
        .await
        .ok()?;
    let status = r.status();
    Some((status, r.text().await.ok()?))
}

pub(super) async fn attempt(
    inner: &Rc<Inner>,
    backoff: &mut Backoff,
    woken: &mut mpsc::UnboundedReceiver<Wake>,
    long: bool,
) -> (Outcome, Ended) {
    let retry = Outcome::Retry { window_ms: None };
    let mut worked = false;
    // Ended by the page, not by the rung: judged by what came before.
    let judged = |worked: bool| {
        if worked {
            Ended::Worked
        } else {
            Ended::Unreachable
        }
    };
    let mut hidden_since = (!document_visible()).then(now_ms);
    let mut watchdog = IntervalStream::new(1000).fuse();
    'poll: loop {
        let topics = inner.topic_list();
        if topics.is_empty() {
            return (Outcome::Pause, judged(worked));
        }
        let mut url = format!("/poll?protocol={PROTOCOL_VERSION}&topics={topics}");
        if long {
            url.push_str("&wait=1");
        }
        let abort = web_sys::AbortController::new().ok();
        let cancel = || {
            if let Some(a) = &abort {
                a.abort();
            }
        };
        let request = fetch(url, abort.as_ref().map(|a| a.signal())).fuse();
        futures::pin_mut!(request);
        let limit = if long {
            LONG_POLL_LIMIT_MS
        } else {
            SHORT_POLL_LIMIT_MS
        };
        let mut limit = TimeoutFuture::new(limit).fuse();
        let answered = loop {
            let step = futures::select! {
                answer = request => break answer,
                _ = limit => {
                    cancel();
                    break None;
                }
                wake = woken.next() => http_wake(inner, wake, &mut hidden_since),
                _ = watchdog.next() => http_tick(inner, hidden_since),
            };
            match step {
                Step::Stay => {}
                Step::Again => {
                    cancel();
                    continue 'poll;
                }
                Step::Leave(outcome) => {
                    cancel();
                    return (outcome, judged(worked));
                }
            }
        };
        let pause_ms = match answered {
            Some((200, text)) => {
                let Ok(answer) = crate::json::read::<Answer>(&text) else {
                    return (retry, Ended::Failed);
                };
                if !worked {
                    worked = true;
                    backoff.connected(now_ms());
                    inner.ladder.borrow_mut().working(now_ms(), super::random());
                    inner.went_live();
                }
                for frame in answer.frames {
                    if let Some(outcome) = handle(inner, frame) {
                        return (outcome, Ended::Worked);
                    }
                }
                short_poll_pause(answer.poll_ms)
            }
            Some((401, _)) => return (Outcome::SignedOut, Ended::Worked),
            // The server's own refusals (a rate limit, a restart): no rung
            // is to blame.
            Some((429 | 503, _)) => return (retry, Ended::Unreachable),
            _ => return (retry, Ended::Failed),
        };
        if long {
            continue;
        }
        let mut pause = TimeoutFuture::new(pause_ms).fuse();
        loop {
            let step = futures::select! {
                _ = pause => continue 'poll,
                wake = woken.next() => http_wake(inner, wake, &mut hidden_since),
                _ = watchdog.next() => http_tick(inner, hidden_since),
            };
            match step {
                Step::Stay => {}
                Step::Again => continue 'poll,
                Step::Leave(outcome) => return (outcome, Ended::Worked),
            }
        }
    }
}
