//! The WebSocket transport, `GET /ws` (ssr only).
//!
//! `upgrade` checks the request (Origin, protocol version, shutdown) and
//! hands the socket (`socket::Socket`: the WebSocket protocol, compression)
//! to `drive`, one task per connection. `drive` is generic over the socket
//! (a `Stream` of the peer's messages, a `Sink` of `Out`), so its task shape
//! is unit-tested with an in-memory socket; what a frame *means* is
//! `Session`'s business, not this file's.
//!
//! Task shape: one `select!` per step, `biased` in this order: shutdown,
//! revocations (`accounts::live`: a revoked credential closes with 4401), the
//! heartbeat tick, the lag signal, the peer's frames, the next page of a
//! catch-up, then deliveries. A busy topic (always-ready deliveries)
//! therefore cannot starve pings, silence checks or shutdown, and a catch-up
//! page is only read once the previous one was written. Output is queued with `feed` and flushed once per
//! step; every write is bounded by the heartbeat timeout and gives way to
//! shutdown, so a peer that stops reading can neither hold the task nor
//! delay a restart.
//!
//! Fan-out without waking the task: over plain TCP, a task with nothing to
//! do *parks* before it waits (`Session::park`, `wire`): the broker then
//! writes each next event of its topics to the socket itself, and the task
//! wakes only for something else (the peer, a tick, a revocation, an event
//! out of order, a full socket). Whatever woke it, it takes its versions
//! back first, so every rule above applies unchanged.
//!
//! Limits: text frames above `max-frame-bytes` get a `too_large` error frame
//! and the connection stays; messages above `max-ws-message-bytes` are cut
//! off by the socket (compressed ones once inflated past it), and the
//! connection closes with 1009; broken framing closes with 1002. More than
//! `max-bad-frames` refused frames close with 4400.

use super::flush::Flusher;
use super::frame::{Frame, Frames};
use super::session::{Peer, Session, Verdict};
use super::socket::{Config, Out, Upgrade, WsError};
use super::wire::Wire;
use crate::protocol::{
    CloseCode, ErrorCode, ErrorFrame, ProtocolError, ServerFrame, MIN_PROTOCOL_VERSION,
};
use crate::server::accounts::live::{Kick, Kicks};
use crate::server::accounts::{Auth, Principal};
use crate::server::broker::{Inbox, Outbox};
use crate::server::shutdown::Shutdown;
use crate::server::state::AppState;
use axum::extract::ws::Message;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{FutureExt, Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::{timeout, Instant, Interval};

/// Most deliveries taken from the outbox per step.
const BATCH: usize = 64;
/// Most deliveries taken from the outbox at the end of a flush window.
const MAX_PENDING: usize = 1024;
/// Most bytes of frames joined into one `batch` message.
const MAX_BATCH_BYTES: usize = 64 * 1024;

#[derive(Deserialize)]
pub struct Params {
    /// The protocol version the client speaks (absent: 1).
    protocol: Option<u32>,
    /// `batch=1`: the client reads `batch` frames (several frames in one
    /// WebSocket message).
    batch: Option<String>,
}

pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<std::net::SocketAddr>,
    Query(params): Query<Params>,
    auth: Option<axum::Extension<Auth>>,
    resolved: Option<axum::Extension<crate::server::accounts::ResolvedAt>>,
    headers: HeaderMap,
    ws: Upgrade,
) -> Response {
    if state.rules.check_origin(&headers).is_err() {
        tracing::warn!(origin = ?headers.get("origin"), "cross-origin WebSocket refused");
        crate::server::metrics::reject("cross_origin_websocket");
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused").into_response();
    }
    if params.protocol.is_some_and(|v| v < MIN_PROTOCOL_VERSION) {
        crate::server::metrics::reject("protocol_version");
        let msg = format!(
            "unsupported protocol version; this server speaks {MIN_PROTOCOL_VERSION} to {}",
            crate::protocol::PROTOCOL_VERSION
        );
        return (StatusCode::BAD_REQUEST, msg).into_response();
    }
    if state.shutdown.is_triggered() {
        return crate::server::shutdown::unavailable();
    }
    let ip = state.limits.client_ip(remote, &headers);
    let place = state
        .limits
        .connect(ip)
        .and_then(|()| state.limits.open(ip));
    let place = match place {
        Ok(place) => place,
        Err(exceeded) => {
            tracing::info!(%ip, limit = exceeded.what, "WebSocket refused by a limit");
            crate::server::metrics::reject("rate_limited");
            return too_many(&exceeded);
        }
    };
    let who = match auth.map(|axum::Extension(Auth(a))| a) {
        Some(Ok(who)) => who,
        Some(Err(e @ crate::error::AppError::Unauthenticated(_))) => {
            crate::server::metrics::reject("bad_credentials");
            return (StatusCode::UNAUTHORIZED, e.to_string()).into_response();
        }
        Some(Err(e)) => {
            return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response();
        }
        None => Principal::Anonymous,
    };
    let peer = Peer { who };
    let batch_frames = params
        .batch
        .as_deref()
        .is_some_and(|b| b == "1" || b == "true");
    let config = Config {
        max_message: state.settings.max_ws_message_bytes,
        min_deflate: state
            .settings
            .ws_compression
            .then_some(state.settings.ws_compress_min_bytes),
    };
    let resolved_at = resolved.map(|axum::Extension(r)| r.0);
    // Boxed: each connection's task holds the state until it starts.
    let state = Box::new(state);
    ws.on_upgrade(config, move |socket, wire| {
        let how = How {
            batch_frames,
            resolved_at,
            wire,
            place,
        };
        serve(socket, state, peer, how)
    })
}

/// When a connection opened at `now` first ticks: one interval later,
/// rounded up to a process-wide grid of a quarter interval (at most 250 ms).
/// Connections' heartbeats then fall due together, a few times a second,
/// so the runtime wakes once for many of them rather than once each.
pub fn first_tick(now: Instant, beat: Duration) -> Instant {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let origin = *ORIGIN.get_or_init(Instant::now);
    grid_after(
        origin,
        now + beat,
        (beat / 4).min(Duration::from_millis(250)),
    )
}

/// The first point of the grid `origin + k * step` at or after `t`.
fn grid_after(origin: Instant, t: Instant, step: Duration) -> Instant {
    let step_ns = step.as_nanos().max(1);
    let since = t.saturating_duration_since(origin).as_nanos();
    let k = since.div_ceil(step_ns);
    origin + Duration::from_nanos(u64::try_from(k * step_ns).unwrap_or(u64::MAX))
}

/// `429 Too Many Requests`, with `Retry-After`.
pub fn too_many(exceeded: &crate::server::limits::Exceeded) -> Response {
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(
            axum::http::header::RETRY_AFTER,
            exceeded.retry_after_secs().to_string(),
        )],
        format!("too many requests: {}", exceeded.what),
    )
        .into_response()
}

/// How a connection was opened.
struct How {
    /// The client reads `batch` frames.
    batch_frames: bool,
    /// The revocation epoch its credentials were read at.
    resolved_at: Option<u64>,
    /// Its socket's wire (plain TCP), for the broker to write to.
    wire: Option<Arc<Wire>>,
    /// Its place under the per-address limit of open connections.
    place: crate::server::limits::OpenSocket,
}

/// Serves one connection: opens its session (`open`), drives it, and
/// closes its books.
///
/// Memory: every connection's task holds this future while it lasts, so it
/// is composed rather than written as one `async fn`: an async fn keeps
/// room for its arguments (the socket, the state) for its whole life, here
/// they would sit beside `drive`'s own copy. `open` runs boxed and is gone
/// once the session is open; what stays is `drive`'s future and `Books`.
fn serve<S>(
    socket: S,
    state: Box<AppState>,
    peer: Peer,
    how: How,
) -> impl std::future::Future<Output = ()> + Send
where
    S: Stream<Item = Result<Message, axum::Error>>
        + Sink<Out, Error = axum::Error>
        + Unpin
        + Send
        + 'static,
{
    Box::pin(open(state, peer, how)).then(move |(session, link, books)| {
        drive(socket, session, link).map(move |end| books.close(end))
    })
}

/// What a connection's end must settle.
struct Books {
    conn_id: crate::server::broker::ConnId,
    meters: Arc<crate::server::metrics::Meters>,
    _session: crate::server::shutdown::SessionGuard,
    _registration: crate::server::accounts::live::Registration,
    _place: crate::server::limits::OpenSocket,
}

impl Books {
    fn close(self, end: &'static str) {
        self.meters.ws_connections.decrement(1.0);
        crate::server::metrics::closed(end);
        tracing::debug!(conn_id = self.conn_id, reason = end, "websocket closed");
    }
}

/// Registers a new connection and builds its session and link.
async fn open(state: Box<AppState>, peer: Peer, how: How) -> (Session, Link, Books) {
    let How {
        batch_frames,
        resolved_at,
        wire,
        place,
    } = how;
    let guard = state.shutdown.track_session();
    let meters = state.meters.clone();
    meters.ws_connects.increment(1);
    meters.ws_connections.increment(1.0);
    let settings = &state.settings;
    let Opened {
        session,
        inbox,
        outbox,
        kicks,
        registration,
        conn: conn_id,
    } = open_session(&state, peer, resolved_at, wire).await;
    tracing::debug!(conn_id, "websocket open");
    let beat = Duration::from_millis(settings.heartbeat_interval_ms);
    let link = Link {
        inbox,
        outbox,
        kicks,
        shutdown: state.shutdown.clone(),
        tick: tokio::time::interval_at(first_tick(Instant::now(), beat), beat),
        limits: Limits::from_settings(settings),
        batch_frames,
        flusher: state.flusher.clone(),
    };
    let books = Books {
        conn_id,
        meters,
        _session: guard,
        _registration: registration,
        _place: place,
    };
    (session, link, books)
}

/// A session opened for one connection (a socket, a stream, a poll), and
/// what it is registered with.
pub(super) struct Opened {
    pub session: Session,
    pub inbox: Inbox,
    pub outbox: Arc<Outbox>,
    pub kicks: Kicks,
    pub registration: crate::server::accounts::live::Registration,
    pub conn: crate::server::broker::ConnId,
}

/// Opens a session for `peer`, subscribed to nothing yet. Registered for
/// revocations before it starts: a revocation from now on reaches it (and
/// halts its `wire`, if the broker may write to one).
pub(super) async fn open_session(
    state: &AppState,
    peer: Peer,
    resolved_at: Option<u64>,
    wire: Option<Arc<Wire>>,
) -> Opened {
    let conn = state.next_conn_id();
    let (registration, kicks) = state.live.register_wired(conn, &peer.who, wire.clone());
    let (outbox, inbox) = Outbox::counted(
        state.settings.outbox_capacity,
        Some(state.meters.dropped_full.clone()),
        wire,
    );
    // A revocation between the lookup and the registration moved the epoch:
    // only then are the credentials read again (accounts::live).
    if resolved_at != Some(state.live.epoch()) {
        crate::server::accounts::service::confirm_live(state, &peer.who).await;
    }
    let session = Session::new(conn, state.services(), peer, outbox.clone());
    Opened {
        session,
        inbox,
        outbox,
        kicks,
        registration,
        conn,
    }
}

/// Time bounds of one connection.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// How long one step's writes may take (the heartbeat timeout).
    pub write: Duration,
    /// How long saying goodbye may take on shutdown.
    pub goodbye: Duration,
    /// The window a `reconnect` frame spreads clients over.
    pub reconnect_window_ms: u64,
    pub max_message_bytes: usize,
}

impl Limits {
    pub fn from_settings(s: &crate::server::config::Settings) -> Self {
        Limits {
            write: Duration::from_millis(s.heartbeat_timeout_ms),
            goodbye: Duration::from_millis(s.shutdown_grace_ms.max(100)),
            reconnect_window_ms: s.reconnect_window_ms,
            max_message_bytes: s.max_ws_message_bytes,
        }
    }
}

/// Everything around a session besides its socket.
pub struct Link {
    pub inbox: Inbox,
    pub outbox: Arc<Outbox>,
    /// Revocations concerning this connection (`accounts::live`).
    pub kicks: Kicks,
    pub shutdown: Shutdown,
    /// The heartbeat timer (its first tick is the first ping or silence check).
    pub tick: Interval,
    pub limits: Limits,
    /// The client reads `batch` frames.
    pub batch_frames: bool,
    /// The process's flush window (`None`: deliveries are written at once).
    pub flusher: Option<Arc<Flusher>>,
}

/// Serves one connection until it ends; returns why it ended.
///
/// Not an `async fn`: one keeps its arguments in the future beside the
/// locals they are moved into (816 bytes twice, for every connection's
/// whole life); the block below uses them where they were captured.
#[expect(
    clippy::manual_async_fn,
    reason = "an async fn would store the arguments twice (above)"
)]
pub fn drive<S>(
    mut socket: S,
    mut session: Session,
    mut link: Link,
) -> impl std::future::Future<Output = &'static str>
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Out, Error = axum::Error> + Unpin,
{
    async move {
        let mut signal = link.shutdown.signal();
        let mut out = Frames::new();
        // Empty until deliveries are queued: an idle connection keeps no buffer.
        let mut batch = Vec::new();
        // With a flush window: once deliveries came, the connection waits for
        // the flusher's ring without reading its outbox, so what the broker
        // pushes meanwhile does not wake it.
        let bell = Arc::new(Notify::new());
        let mut armed = false;
        let joined = link.batch_frames;
        // Liveness: a WebSocket ping each heartbeat tick (browsers answer it
        // without running any script); the client's page hears from the server
        // through the frames it gets, or an application `ping` on a tick after
        // an interval in which nothing was written to it.
        let mut ping_due = false;
        let mut quiet = true;
        session.hello(&mut out);
        loop {
            let unsent = link.outbox.wire().is_some_and(|w| w.has_unsent());
            if !out.is_empty() || ping_due || unsent {
                quiet &= out.is_empty();
                let ping = std::mem::take(&mut ping_due);
                tokio::select! {
                    biased;
                    _ = signal.wait() => return Box::pin(goodbye(&mut socket, link.limits)).await,
                    written = timeout(link.limits.write, async {
                        if ping {
                            socket.feed(Out::Ping).await?;
                        }
                        write(&mut socket, &mut out, joined).await
                    }) => {
                        if !matches!(written, Ok(Ok(()))) {
                            return "write failed or timed out";
                        }
                    }
                }
            }
            // Nothing to do: the wire may write deliveries without this task.
            let parked = out.is_empty()
                && batch.is_empty()
                && !armed
                && link.flusher.is_none()
                && session.park(|| link.inbox.is_empty() && link.kicks.is_empty());
            let wake = tokio::select! {
                biased;
                _ = signal.wait() => Wake::Shutdown,
                kick = link.kicks.recv() => Wake::Kick(kick),
                _ = link.tick.tick() => Wake::Tick,
                _ = link.outbox.lagged() => Wake::Lagged,
                incoming = socket.next() => Wake::Incoming(incoming),
                // The next page of a catch-up, once the previous one is written
                // (the write above has returned): one page in flight at most.
                _ = std::future::ready(()), if session.is_catching_up() => Wake::CatchUp,
                _ = link.inbox.recv_many(&mut batch, BATCH), if !armed => Wake::Delivered,
                _ = bell.notified(), if armed => Wake::WindowEnd,
                _ = rung(&link.outbox), if parked => Wake::Rung,
            };
            if parked && session.unpark() {
                quiet = false;
            }
            let verdict = match wake {
                Wake::Shutdown => return Box::pin(goodbye(&mut socket, link.limits)).await,
                Wake::Kick(kick) => session.on_kick(kick, &mut out),
                Wake::Tick => {
                    ping_due = true;
                    session.on_tick(
                        Instant::now(),
                        std::mem::replace(&mut quiet, true),
                        &mut out,
                    )
                }
                Wake::Lagged => {
                    Box::pin(session.catch_up_lagged(&mut out)).await;
                    Verdict::Continue
                }
                Wake::Incoming(incoming) => {
                    session.heard(Instant::now());
                    match incoming {
                        Some(Ok(Message::Text(text))) => {
                            session.handle_text(text.as_str(), &mut out).await
                        }
                        Some(Ok(Message::Binary(_))) => {
                            let err = ProtocolError::BadFrame(
                                "binary frames are not supported; send JSON text".into(),
                            );
                            session.refuse(err, &mut out)
                        }
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Verdict::Continue,
                        Some(Ok(Message::Close(_))) => {
                            // Completes the closing handshake: the WebSocket layer
                            // queued the echo of the peer's Close; send it.
                            let _ = timeout(Duration::from_secs(1), socket.close()).await;
                            return "closed by peer";
                        }
                        None => return "closed by peer",
                        Some(Err(e)) => {
                            return read_failed(&mut socket, e, &mut out, link.limits).await
                        }
                    }
                }
                Wake::CatchUp => {
                    Box::pin(session.continue_catch_up(&mut out)).await;
                    Verdict::Continue
                }
                Wake::Delivered => {
                    match &link.flusher {
                        Some(flusher) => {
                            armed = true;
                            flusher.arm(&bell);
                        }
                        None => {
                            Box::pin(deliver_all(
                                &mut session,
                                &mut batch,
                                link.inbox.len(),
                                &mut out,
                            ))
                            .await
                        }
                    }
                    Verdict::Continue
                }
                Wake::WindowEnd => {
                    armed = false;
                    // Everything that came during the window, without waiting.
                    let room = MAX_PENDING.saturating_sub(batch.len());
                    link.inbox.take(&mut batch, room);
                    Box::pin(deliver_all(
                        &mut session,
                        &mut batch,
                        link.inbox.len(),
                        &mut out,
                    ))
                    .await;
                    Verdict::Continue
                }
                // The wire left bytes to write: the write step above takes them.
                Wake::Rung => Verdict::Continue,
            };
            if let Verdict::Close(code, reason) = verdict {
                if code != CloseCode::HeartbeatTimeout {
                    let _ = timeout(link.limits.write, write(&mut socket, &mut out, joined)).await;
                }
                close(&mut socket, code as u16, reason, Duration::from_secs(1)).await;
                return reason;
            }
        }
    }
}

/// What woke a connection's task.
enum Wake {
    Shutdown,
    Kick(Kick),
    Tick,
    Lagged,
    Incoming(Option<Result<Message, axum::Error>>),
    CatchUp,
    /// Deliveries taken from the outbox (0: it closed).
    Delivered,
    /// The flush window ended.
    WindowEnd,
    /// The wire stopped writing with bytes left over.
    Rung,
}

/// Waits until the connection's wire has bytes left over for the task.
async fn rung(outbox: &Outbox) {
    match outbox.wire() {
        Some(wire) => wire.rung().await,
        None => std::future::pending().await,
    }
}

/// Writes the deliveries taken from the outbox, by their topics' policies:
/// of a latest-wins topic's deliveries only the newest is written (the
/// others are counted as coalesced).
pub(super) async fn deliver_all(
    session: &mut Session,
    batch: &mut Vec<Arc<crate::server::broker::Delivery>>,
    still_queued: usize,
    out: &mut Frames,
) {
    session
        .services
        .meters
        .queue_depth
        .record((still_queued + batch.len()) as f64);
    crate::server::broker::newest_only(batch);
    for d in batch.drain(..) {
        session.deliver(&d, out).await;
    }
    session.flush_meters();
}

/// Queues every frame and flushes once (one write to the socket). With
/// `joined`, consecutive frames go as `batch` messages of up to
/// `MAX_BATCH_BYTES` each.
async fn write<S>(socket: &mut S, out: &mut Frames, joined: bool) -> Result<(), axum::Error>
where
    S: Sink<Out, Error = axum::Error> + Unpin,
{
    if joined && out.len() > 1 {
        for mut group in group(std::mem::take(out), MAX_BATCH_BYTES) {
            let item = match group.len() {
                1 => group.pop().map(Out::Frame),
                _ => Some(Out::Batch(group)),
            };
            if let Some(item) = item {
                socket.feed(item).await?;
            }
        }
        return socket.flush().await;
    }
    for frame in out.drain(..) {
        socket.feed(Out::Frame(frame)).await?;
    }
    socket.flush().await
}

/// Groups `frames`, in order, into WebSocket messages: a group of several
/// goes as one `batch` frame of at most `max` bytes (`frame::batch_len`); a
/// lone frame, or one too big to share a message, goes as itself.
pub fn group(frames: Frames, max: usize) -> Vec<Vec<Frame>> {
    let empty = super::frame::batch_len(&[]);
    let mut groups = Vec::new();
    let mut current: Vec<Frame> = Vec::new();
    let mut size = empty;
    for frame in frames {
        let len = frame.bytes().len() + 1;
        if !current.is_empty() && size + len > max {
            groups.push(std::mem::take(&mut current));
            size = empty;
        }
        size += len;
        current.push(frame);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

async fn close<S>(socket: &mut S, code: u16, reason: &str, bound: Duration)
where
    S: Sink<Out, Error = axum::Error> + Unpin,
{
    let _ = timeout(bound, socket.send(Out::Close(code, reason.into()))).await;
}

/// On shutdown: tell the peer to reconnect elsewhere (`reconnect`, then close
/// 1012) and wait for its Close echo, all within the goodbye bound.
async fn goodbye<S>(socket: &mut S, limits: Limits) -> &'static str
where
    S: Stream<Item = Result<Message, axum::Error>> + Sink<Out, Error = axum::Error> + Unpin,
{
    let mut out = Frames::new();
    super::frame::push_reconnect(&mut out, limits.reconnect_window_ms);
    let farewell = async {
        write(socket, &mut out, false).await?;
        close(
            socket,
            CloseCode::ServiceRestart as u16,
            "server restarting",
            limits.goodbye,
        )
        .await;
        while let Some(Ok(msg)) = socket.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
        Ok::<(), axum::Error>(())
    };
    let _ = timeout(limits.goodbye, farewell).await;
    "shutdown"
}

/// A read error: an oversized message gets a `too_large` error and 1009; a
/// broken frame a Close with 1002 (invalid UTF-8: 1007); a broken
/// connection just ends.
async fn read_failed<S>(
    socket: &mut S,
    e: axum::Error,
    out: &mut Frames,
    limits: Limits,
) -> &'static str
where
    S: Sink<Out, Error = axum::Error> + Unpin,
{
    let inner = e.into_inner();
    let Some(error) = inner.downcast_ref::<WsError>() else {
        tracing::debug!(error = %inner, "websocket read error");
        return "read error";
    };
    match error {
        WsError::Io(_) => {
            tracing::debug!(%error, "websocket read error");
            "read error"
        }
        WsError::Protocol(_) | WsError::NotUtf8 => {
            tracing::debug!(%error, "websocket protocol error");
            let code = error.close_code().unwrap_or(1002);
            close(socket, code, "protocol error", Duration::from_secs(1)).await;
            "websocket protocol error"
        }
        WsError::TooBig { .. } => {
            super::frame::push(
                out,
                ServerFrame::Error(ErrorFrame {
                    code: ErrorCode::TooLarge,
                    message: format!("message above {} bytes", limits.max_message_bytes),
                    topic: None,
                    client_id: None,
                    retry_after_ms: None,
                }),
            );
            let _ = timeout(limits.write, write(socket, out, false)).await;
            close(
                socket,
                CloseCode::MessageTooBig as u16,
                "message too big",
                Duration::from_secs(1),
            )
            .await;
            // The oversized payload is still unread in the kernel: closing
            // the TCP socket now would send a reset that can destroy the
            // close frame in flight. Linger briefly (this path only).
            tokio::time::sleep(Duration::from_millis(250)).await;
            "message too big"
        }
    }
}

#[cfg(test)]
#[path = "ws_tests.rs"]
mod tests;
