//! The polling rungs, `GET /poll?topics=...` (ssr only): long polling
//! (`wait=1`) when streams do not get through, short polling (no `wait`)
//! when long requests are cut too.
//!
//! A poll is one session for one request: it subscribes every listed topic
//! from the version given (the same `subscribe` as on the socket: the
//! authorization rule, catch-up by policy, one page at most, `reset`,
//! `error`), and answers
//!
//! ```json
//! {"resume":"presence:1@3.9,room:1@1.18","poll_ms":2000,"frames":[...]}
//! ```
//!
//! `poll_ms` is when to poll next: `short-poll-ms` after a short poll, 0
//! (at once) after a long one. `frames` are the frames the socket would
//! have written (`event`, `subscribed`, `reset`, `error`, `reconnect`);
//! `resume` is the topic list for the next poll (`rungs::resume`). When
//! every topic is listed at the version the server is at, there is no news
//! and `frames` is empty (their `subscribed` are left out); when anything
//! is new, every topic's `subscribed` comes too. Credentials revoked meanwhile: 401.
//!
//! Short polls answer at once. Long polls answer at once when there is news
//! (an event, a reset, an error, or a topic listed without a version, whose
//! `subscribed` names the version to poll from); else they wait, up to
//! `long-poll-ms`, for the first deliveries and answer with everything
//! queued by then; or, at the end of the wait, with no frames. Shutdown answers a waiting poll with `reconnect`.
//!
//! Presence: a poll counts as one connection of its account in each room
//! it subscribes while it is served and waits, and keeps the account listed
//! for three times `short-poll-ms` after it ends (`PresenceBoard::linger`;
//! a poll may be late or lost once), which the next poll renews: an account
//! on a polling rung is listed steadily and leaves within that long after
//! its polls stop.

use super::frame::{Frame, Frames};
use super::rungs::{self, Rung};
use super::session::Verdict;
use super::ws::deliver_all;
use crate::protocol::{ClientFrame, ErrorCode};
use crate::server::accounts::live::Kick;
use crate::server::state::AppState;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

/// Most deliveries one long poll takes from its outbox.
const MAX_DELIVERIES: usize = 1024;

pub async fn poll(
    State(state): State<AppState>,
    ConnectInfo(remote): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let params = match rungs::gate(&state, &request, "/poll") {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let long = params
        .wait
        .as_deref()
        .is_some_and(|w| w == "1" || w == "true");
    let rung = if long {
        Rung::LongPoll
    } else {
        Rung::ShortPoll
    };
    let admitted = match rungs::admit(&state, rung, remote, request.headers(), &params).await {
        Ok(a) => a,
        Err(refused) => return *refused,
    };
    let meters = rung.meters(&state).clone();
    meters.connects.increment(1);
    meters.fallbacks.increment(1);
    let rungs::Admitted {
        peer,
        wants,
        place: _place,
        resolved_at,
    } = admitted;
    let super::ws::Opened {
        session,
        mut inbox,
        outbox,
        mut kicks,
        registration: _registration,
        conn: _,
    } = super::ws::open_session(&state, peer, resolved_at, None).await;
    let linger = Duration::from_millis(state.settings.short_poll_ms.saturating_mul(3));
    let mut session = session.lingering(linger);
    let mut out = Frames::new();
    let listed = wants.len();
    let unversioned = wants.iter().any(|(_, since)| since.is_none());
    for (topic, since) in wants {
        let subscribe = ClientFrame::Subscribe { topic, since };
        if session.handle(subscribe, &mut out).await != Verdict::Continue {
            break;
        }
    }
    // A revocation that came while the credentials were looked up or the
    // topics subscribed (`open_session` re-reads them if one may have).
    while let Some(kick) = kicks.try_recv() {
        if kick == Kick::Credentials {
            session.stop_lingering();
            return rungs::refuse_revoked();
        }
        session.on_kick(kick, &mut out);
    }
    // Nothing new: every topic is subscribed where the client is, and `out`
    // holds only their `subscribed`, one each.
    let news = unversioned
        || session.is_catching_up()
        || session.versions().count() < listed
        || out.len() > listed;
    if !news {
        out.clear();
    }
    if long && !news {
        let _waiting = Waiting::new(&meters.open);
        wait(
            &state,
            &mut session,
            &mut inbox,
            &outbox,
            &mut kicks,
            &mut out,
        )
        .await;
    }
    session.flush_meters();
    let poll_ms = if long {
        0
    } else {
        state.settings.short_poll_ms
    };
    answer(&rungs::resume(&session), poll_ms, &out)
}

/// Counts a long poll as waiting while it lives (the request may be
/// dropped mid-wait when its client goes away).
struct Waiting(metrics::Gauge);

impl Waiting {
    fn new(gauge: &metrics::Gauge) -> Self {
        gauge.increment(1.0);
        Waiting(gauge.clone())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Waits for the first deliveries (or a lag, a revocation, shutdown, the
/// end of the wait) and writes what they bring to `out`.
async fn wait(
    state: &AppState,
    session: &mut super::session::Session,
    inbox: &mut crate::server::broker::Inbox,
    outbox: &crate::server::broker::Outbox,
    kicks: &mut crate::server::accounts::live::Kicks,
    out: &mut Frames,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(state.settings.long_poll_ms);
    let mut signal = state.shutdown.signal();
    let mut batch = Vec::new();
    while out.is_empty() {
        tokio::select! {
            biased;
            _ = signal.wait() => {
                super::frame::push_reconnect(out, state.settings.reconnect_window_ms);
            }
            kick = kicks.recv() => match kick {
                Kick::Credentials => {
                    session.stop_lingering();
                    let msg = "credentials revoked".to_owned();
                    super::session::push_error(out, ErrorCode::Unauthenticated, msg, None);
                }
                topic => {
                    session.on_kick(topic, out);
                }
            },
            _ = tokio::time::sleep_until(deadline) => return,
            _ = outbox.lagged() => Box::pin(session.catch_up_lagged(out)).await,
            _ = inbox.recv_many(&mut batch, MAX_DELIVERIES) => {
                // Everything queued by now, in one answer.
                let room = MAX_DELIVERIES.saturating_sub(batch.len());
                inbox.take(&mut batch, room);
                Box::pin(deliver_all(session, &mut batch, inbox.len(), out)).await;
            }
        }
    }
}

/// `{"resume":"...","poll_ms":N,"frames":[...]}`, the frames' JSON copied,
/// not re-encoded.
fn answer(resume: &str, poll_ms: u64, frames: &[Frame]) -> Response {
    let resume = serde_json::to_string(resume).unwrap_or_else(|_| "\"\"".into());
    let len: usize = frames.iter().map(|f| f.bytes().len() + 1).sum();
    let mut body = Vec::with_capacity(64 + resume.len() + len);
    body.extend_from_slice(b"{\"resume\":");
    body.extend_from_slice(resume.as_bytes());
    // Written into the body itself: no string made per answer.
    let _ = write!(body, ",\"poll_ms\":{poll_ms},\"frames\":[");
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(f.bytes());
    }
    body.extend_from_slice(b"]}");
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}
