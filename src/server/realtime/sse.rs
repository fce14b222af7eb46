//! The Server-Sent Events rung, `GET /sse?topics=...` (ssr only): the first
//! fallback when a WebSocket cannot open.
//!
//! One stream carries the frames a WebSocket would, one frame per SSE
//! message (`data: <frame JSON>`): `hello`, then per topic what `subscribe`
//! answers, then events as they come. The set of topics is fixed for the
//! stream; following another topic means opening another stream. Writes go
//! through the server functions.
//!
//! Resuming: the last message of every write carries an `id:` whose value
//! is the topic list to resume from (`rungs::resume`, e.g.
//! `presence:1@3.9,room:1@1.18`; `-` when nothing is subscribed any more),
//! so a browser `EventSource` that reconnects by itself sends it back as
//! `Last-Event-ID`, and the new stream continues every topic from there. A
//! topic that ended on the old stream (`reset`, `error`) is not in the id and
//! is not resubscribed; `Last-Event-ID: -` is answered `204` (an
//! `EventSource` then stops).
//!
//! Task shape: the handler answers at once with a streaming body fed by a
//! bounded channel. While the stream keeps up and its task has nothing else
//! to do, the task parks and the broker sends each next event into that
//! channel itself (`wire`, as for a socket); otherwise one task per stream
//! drives the session, `biased` in the
//! WebSocket's order (shutdown, revocations, heartbeat tick, lag, the
//! client going away, the next catch-up page, deliveries). Every write is
//! bounded by the heartbeat timeout: a client that stops reading fills the
//! channel and the stream ends. Heartbeats: a comment (`: ping`) every
//! heartbeat interval, and an application `ping` frame (`data:`) after an
//! interval in which nothing else was written, which is what a browser's
//! `EventSource` can see. A close is an `event: close` message with the
//! close code and reason (`data: {"code":4401,"reason":"..."}`); then the
//! stream ends. On shutdown: `retry:` a random moment within the reconnect
//! window, the `reconnect` frame, `event: close` with 1012.

use super::frame::Frames;
use super::rungs::{self, Admitted, Rung};
use super::session::{Session, Verdict};
use super::ws::{deliver_all, first_tick, Limits};
use crate::protocol::{ClientFrame, CloseCode, ErrorCode, ErrorFrame};
use crate::server::accounts::live::Kick;
use crate::server::state::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};

/// Most deliveries taken from the outbox per step.
const BATCH: usize = 64;
/// Writes in flight between the stream's task and its body.
const CHANNEL: usize = 4;
/// The `Last-Event-ID` of a stream that had no subscription left.
pub const NOTHING: &str = "-";

pub async fn stream(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let params = match rungs::gate(&state, &request, "/sse") {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let headers = request.headers();
    let mut admitted = match rungs::admit(&state, Rung::Sse, remote, headers, &params).await {
        Ok(a) => a,
        Err(refused) => return *refused,
    };
    if let Some(id) = headers.get("last-event-id") {
        match resume_from(id, &mut admitted, state.settings.max_subscriptions) {
            Ok(true) => {}
            Ok(false) => return StatusCode::NO_CONTENT.into_response(),
            Err(e) => return rungs::refuse(StatusCode::BAD_REQUEST, e),
        }
    }
    let (tx, rx) = mpsc::channel::<Bytes>(CHANNEL);
    tokio::spawn(run(state, admitted, tx));
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            // Asks a proxy not to buffer the stream (nginx reads this).
            (
                "x-accel-buffering".parse().expect("static header name"),
                HeaderValue::from_static("no"),
            ),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// Applies `Last-Event-ID`: each topic of the request continues from the
/// id's version; one the id does not list ended on the broken stream and is
/// dropped. `Ok(false)`: nothing is left to follow.
fn resume_from(id: &HeaderValue, admitted: &mut Admitted, max: usize) -> Result<bool, ErrorFrame> {
    let bad = |message: String| ErrorFrame {
        code: ErrorCode::BadFrame,
        message,
        topic: None,
        client_id: None,
        retry_after_ms: None,
    };
    let id = id
        .to_str()
        .map_err(|_| bad("Last-Event-ID is not text".into()))?
        .trim();
    if id == NOTHING {
        return Ok(false);
    }
    let held =
        rungs::parse_topics(id, max).map_err(|e| bad(format!("Last-Event-ID: {}", e.message)))?;
    admitted.wants.retain_mut(
        |(topic, since)| match held.iter().find(|(t, _)| t == topic) {
            Some((_, v)) => {
                *since = v.or(*since);
                true
            }
            None => false,
        },
    );
    Ok(!admitted.wants.is_empty())
}

async fn run(state: AppState, admitted: Admitted, tx: mpsc::Sender<Bytes>) {
    let Admitted {
        peer,
        wants,
        place,
        resolved_at,
    } = admitted;
    let _guard = state.shutdown.track_session();
    let _place = place;
    let meters = Rung::Sse.meters(&state).clone();
    meters.connects.increment(1);
    meters.fallbacks.increment(1);
    meters.open.increment(1.0);
    // The broker sends a keeping-up stream's events itself (`wire`).
    let wire = super::wire::Wire::stream(tx.clone());
    let opened = super::ws::open_session(&state, peer, resolved_at, Some(wire)).await;
    let conn = opened.conn;
    tracing::debug!(conn_id = conn, "sse stream open");
    let end = drive(&state, opened, wants, tx).await;
    meters.open.decrement(1.0);
    tracing::debug!(conn_id = conn, reason = end, "sse stream closed");
}

/// What woke a stream's task.
enum Wake {
    Shutdown,
    Kick(Kick),
    Tick,
    Lagged,
    Gone,
    CatchUp,
    Delivered,
}

async fn drive(
    state: &AppState,
    opened: super::ws::Opened,
    wants: Vec<rungs::Want>,
    tx: mpsc::Sender<Bytes>,
) -> &'static str {
    let super::ws::Opened {
        mut session,
        mut inbox,
        outbox,
        mut kicks,
        registration: _registration,
        conn: _,
    } = opened;
    let settings = state.settings.clone();
    let limits = Limits::from_settings(&settings);
    let beat = Duration::from_millis(settings.heartbeat_interval_ms);
    let mut tick = tokio::time::interval_at(first_tick(Instant::now(), beat), beat);
    let mut signal = state.shutdown.signal();
    // Waited on across steps, not made again on each: each is a waiter
    // registered with a `Notify` (a lock to add, a lock to drop).
    let stop = signal.wait();
    tokio::pin!(stop);
    let gone = tx.closed();
    tokio::pin!(gone);
    let lagged = outbox.lagged();
    tokio::pin!(lagged);
    let mut writer = Writer::default();
    let mut out = Frames::new();
    let mut batch = Vec::new();
    let mut quiet = true;
    // What is pending is only the tick's own `ping` frame.
    let mut ping_only = false;
    let mut ping_due = false;
    // How long a browser waits before reconnecting a stream that broke.
    writer.retry(rand::random_range(1000..3000));
    session.hello(&mut out);
    let mut verdict = Verdict::Continue;
    for (topic, since) in wants {
        let v = session
            .handle(ClientFrame::Subscribe { topic, since }, &mut out)
            .await;
        if v != Verdict::Continue {
            verdict = v;
            break;
        }
    }
    // A revocation that came while the credentials were looked up or the
    // topics subscribed: nothing read for revoked credentials goes out.
    while let Some(kick) = kicks.try_recv() {
        if kick == Kick::Credentials {
            out.clear();
        }
        if let v @ Verdict::Close(..) = session.on_kick(kick, &mut out) {
            verdict = v;
        }
    }
    // Revocations as a stream, so that one wait lasts across steps.
    let unheard = kicks.pending();
    let kicks = futures::stream::unfold(kicks, |mut k| async move { Some((k.recv().await, k)) });
    tokio::pin!(kicks);
    loop {
        if let Verdict::Close(code, reason) = verdict {
            writer.frames(&mut out, &session);
            writer.close(code as u16, reason);
            let _ = timeout(limits.write, tx.send(writer.take())).await;
            return reason;
        }
        if !out.is_empty() || ping_due {
            // A `ping` frame does not make the next interval busy: else a
            // quiet stream would carry one only every other interval.
            quiet &= out.is_empty() || std::mem::take(&mut ping_only);
            if std::mem::take(&mut ping_due) {
                writer.comment();
            }
            writer.frames(&mut out, &session);
            // Room in the channel (the body keeps up): no timer, no wait.
            let chunk = match tx.try_send(writer.take()) {
                Ok(()) => None,
                Err(mpsc::error::TrySendError::Closed(_)) => return "closed by peer",
                Err(mpsc::error::TrySendError::Full(chunk)) => Some(chunk),
            };
            if let Some(chunk) = chunk {
                tokio::select! {
                    biased;
                    _ = &mut stop => return goodbye(&tx, &mut writer, limits).await,
                    sent = timeout(limits.write, tx.send(chunk)) => {
                        if !matches!(sent, Ok(Ok(()))) {
                            return "write failed or timed out";
                        }
                    }
                }
            }
        }
        // Nothing to do: the broker may send the next events itself.
        let parked = out.is_empty()
            && batch.is_empty()
            && session.park(|| inbox.is_empty() && unheard.is_empty());
        let wake = tokio::select! {
            biased;
            _ = &mut stop => Wake::Shutdown,
            Some(kick) = kicks.next() => Wake::Kick(kick),
            _ = tick.tick() => Wake::Tick,
            _ = &mut lagged => Wake::Lagged,
            _ = &mut gone => Wake::Gone,
            _ = std::future::ready(()), if session.is_catching_up() => Wake::CatchUp,
            _ = inbox.recv_many(&mut batch, BATCH) => Wake::Delivered,
        };
        if parked && session.unpark() {
            quiet = false;
        }
        verdict = match wake {
            Wake::Shutdown => return goodbye(&tx, &mut writer, limits).await,
            Wake::Gone => return "closed by peer",
            Wake::Kick(kick) => session.on_kick(kick, &mut out),
            Wake::Tick => {
                ping_due = true;
                // The client never speaks on this rung: the bounded writes
                // (every tick writes) are what notices a dead one.
                let now = Instant::now();
                session.heard(now);
                let (was_quiet, before) = (std::mem::replace(&mut quiet, true), out.len());
                let verdict = session.on_tick(now, was_quiet, &mut out);
                ping_only = was_quiet && before == 0 && out.len() == 1;
                verdict
            }
            Wake::Lagged => {
                lagged.set(outbox.lagged());
                Box::pin(session.catch_up_lagged(&mut out)).await;
                Verdict::Continue
            }
            Wake::CatchUp => {
                Box::pin(session.continue_catch_up(&mut out)).await;
                Verdict::Continue
            }
            Wake::Delivered => {
                let queued = inbox.len();
                Box::pin(deliver_all(&mut session, &mut batch, queued, &mut out)).await;
                Verdict::Continue
            }
        };
    }
}

/// On shutdown: reconnect at a random moment within the window.
async fn goodbye(tx: &mpsc::Sender<Bytes>, writer: &mut Writer, limits: Limits) -> &'static str {
    writer.retry(rand::random_range(0..limits.reconnect_window_ms.max(1)));
    let mut out = Frames::new();
    super::frame::push_reconnect(&mut out, limits.reconnect_window_ms);
    writer.plain(&mut out);
    writer.close(CloseCode::ServiceRestart as u16, "server restarting");
    let _ = timeout(limits.goodbye, tx.send(writer.take())).await;
    "shutdown"
}

/// One SSE message: `id:`, then the frame as `data:` (what the broker sends
/// for a parked stream, `wire`).
pub(super) fn message(id: &str, json: &[u8]) -> Bytes {
    let mut buf = Vec::with_capacity(id.len() + json.len() + 13);
    put_id(&mut buf, id);
    put_data(&mut buf, json);
    Bytes::from(buf)
}

/// An `id:` line (ends no message by itself).
fn put_id(buf: &mut Vec<u8>, id: &str) {
    buf.extend_from_slice(b"id: ");
    buf.extend_from_slice(id.as_bytes());
    buf.push(b'\n');
}

/// A `data:` line that ends a message. Frame JSON is one line (serde_json
/// escapes newlines in strings).
fn put_data(buf: &mut Vec<u8>, json: &[u8]) {
    buf.extend_from_slice(b"data: ");
    buf.extend_from_slice(json);
    buf.extend_from_slice(b"\n\n");
}

/// Encodes SSE messages.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
    /// The last `id:` written.
    id: String,
    /// The id being made (kept for its allocation).
    next_id: String,
}

impl Writer {
    /// `frames` as one message each; the last carries the session's resume
    /// list as its `id:` if it changed.
    fn frames(&mut self, out: &mut Frames, session: &Session) {
        let Some(last) = out.len().checked_sub(1) else {
            return;
        };
        rungs::write_resume(session.versions(), &mut self.next_id);
        if self.next_id.is_empty() {
            self.next_id.push_str(NOTHING);
        }
        let new_id = self.next_id != self.id;
        // One allocation per write, of the exact size (the buffer becomes
        // the chunk: `Bytes` then needs no header of its own).
        let id_len = if new_id { self.next_id.len() + 5 } else { 0 };
        let len: usize = out.iter().map(|f| f.bytes().len() + 8).sum();
        self.buf.reserve_exact(len + id_len);
        for (i, frame) in out.drain(..).enumerate() {
            if i == last && new_id {
                put_id(&mut self.buf, &self.next_id);
            }
            put_data(&mut self.buf, frame.bytes());
        }
        if new_id {
            std::mem::swap(&mut self.id, &mut self.next_id);
        }
    }

    /// `frames` without an id.
    fn plain(&mut self, out: &mut Frames) {
        for frame in out.drain(..) {
            put_data(&mut self.buf, frame.bytes());
        }
    }

    fn comment(&mut self) {
        self.buf.extend_from_slice(b": ping\n\n");
    }

    fn retry(&mut self, ms: u64) {
        self.buf
            .extend_from_slice(format!("retry: {ms}\n\n").as_bytes());
    }

    fn close(&mut self, code: u16, reason: &str) {
        let data = serde_json::json!({ "code": code, "reason": reason });
        self.buf.extend_from_slice(b"event: close\n");
        put_data(&mut self.buf, data.to_string().as_bytes());
    }

    fn take(&mut self) -> Bytes {
        Bytes::from(std::mem::take(&mut self.buf))
    }
}
