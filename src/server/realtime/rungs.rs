//! What the plain-HTTP rungs share (ssr only): `sse` (`GET /sse`) and
//! `poll` (`GET /poll`, long and short). Neither keeps anything between
//! requests: the client names its topics and the versions it holds in the
//! request (`topics=room:1@1.17,presence:1`), so any server instance can
//! answer any request, and a session (`Session`, the same rules as the
//! WebSocket's) lives for one stream or one poll.
//!
//! Every request passes the same gate as a WebSocket upgrade (`gate`, then
//! `admit`): the Host rule, the request rule (`Origin`, or `Sec-Fetch-Site`
//! for the same-origin GETs that carry no `Origin`), shutdown, the protocol
//! version, the per-address rate limits, the credentials (cookie or bearer
//! token); then each topic is authorized by `subscribe`, as on the socket.

use super::session::{Peer, Session};
use crate::error::AppError;
use crate::protocol::{ErrorCode, ErrorFrame, Topic, Version, MIN_PROTOCOL_VERSION};
use crate::server::limits::OpenSocket;
use crate::server::state::AppState;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::fmt::Write as _;
use std::net::SocketAddr;

/// The rung a request is served on (the `transport` metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rung {
    Sse,
    LongPoll,
    ShortPoll,
}

impl Rung {
    pub fn name(self) -> &'static str {
        match self {
            Rung::Sse => "sse",
            Rung::LongPoll => "long_poll",
            Rung::ShortPoll => "short_poll",
        }
    }

    /// Its meters.
    pub fn meters(self, state: &AppState) -> &crate::server::metrics::RungMeters {
        &state.meters.rungs[self as usize]
    }
}

/// The query both rungs take.
#[derive(Deserialize)]
pub struct Params {
    /// The protocol version the client speaks (absent: 1).
    pub protocol: Option<u32>,
    /// The topics, each with the version the client holds:
    /// `room:1@1.17,presence:1` (see `parse_topics`).
    #[serde(default)]
    pub topics: String,
    /// `/poll` only: `wait=1` holds the request until something is new.
    pub wait: Option<String>,
}

/// One topic a request asks for, from `since` (`None`: from now on).
pub type Want = (Topic, Option<Version>);

/// Parses a topic list: topics separated by commas, each optionally
/// followed by `@<epoch>.<seq>`, the version the client holds. At most
/// `max`, each at most once. The same text `resume` writes.
pub fn parse_topics(text: &str, max: usize) -> Result<Vec<Want>, ErrorFrame> {
    let mut wants: Vec<Want> = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, version) = match part.rsplit_once('@') {
            Some((name, v)) => (
                name,
                Some(parse_version(v).ok_or_else(|| bad_version(part))?),
            ),
            None => (part, None),
        };
        let topic = Topic::parse(name).map_err(|e| error(ErrorCode::InvalidTopic, e.0, None))?;
        if wants.iter().any(|(t, _)| *t == topic) {
            let msg = format!("{topic} is listed twice");
            return Err(error(ErrorCode::BadFrame, msg, Some(topic)));
        }
        wants.push((topic, version));
        if wants.len() > max {
            let msg = format!("at most {max} topics per request");
            return Err(error(ErrorCode::Limit, msg, None));
        }
    }
    if wants.is_empty() {
        let msg = "name at least one topic: topics=room:1@1.17,presence:1".to_owned();
        return Err(error(ErrorCode::BadFrame, msg, None));
    }
    Ok(wants)
}

fn parse_version(v: &str) -> Option<Version> {
    let (epoch, seq) = v.split_once('.')?;
    Some(Version::new(epoch.parse().ok()?, seq.parse().ok()?))
}

fn bad_version(part: &str) -> ErrorFrame {
    let part: String = part.chars().take(80).collect();
    let msg = format!("`{part}`: a version is <epoch>.<seq>, e.g. room:1@1.17");
    error(ErrorCode::BadFrame, msg, None)
}

fn error(code: ErrorCode, message: String, topic: Option<Topic>) -> ErrorFrame {
    ErrorFrame {
        code,
        message,
        topic,
        client_id: None,
        retry_after_ms: None,
    }
}

/// The topic list to resume every subscription of `session` from: its
/// topics, sorted, each at the version last written to the client.
pub fn resume(session: &Session) -> String {
    let mut s = String::new();
    write_resume(session.versions(), &mut s);
    s
}

/// `resume` of these versions, written over `s` (a stream writes one on
/// every write).
pub fn write_resume(versions: impl Iterator<Item = (Topic, Version)> + Clone, s: &mut String) {
    s.clear();
    let mut push = |topic: &dyn std::fmt::Display, v: Version| {
        if !s.is_empty() {
            s.push(',');
        }
        let _ = write!(s, "{topic}@{}.{}", v.epoch, v.seq);
    };
    // One topic (the common case): nothing to sort, nothing to allocate.
    if versions.clone().nth(1).is_none() {
        versions.for_each(|(t, v)| push(&t, v));
        return;
    }
    let mut subs: Vec<(String, Version)> = versions.map(|(t, v)| (t.to_string(), v)).collect();
    subs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    subs.iter().for_each(|(t, v)| push(t, *v));
}

/// `401`: the credentials were revoked while the request was served.
pub fn refuse_revoked() -> Response {
    crate::server::metrics::reject("bad_credentials");
    let msg = "credentials revoked".to_owned();
    refuse(
        StatusCode::UNAUTHORIZED,
        error(ErrorCode::Unauthenticated, msg, None),
    )
}

/// An error answer: the status, and the `error` frame's fields as JSON.
pub fn refuse(status: StatusCode, e: ErrorFrame) -> Response {
    let mut headers = HeaderMap::new();
    if let Some(ms) = e.retry_after_ms {
        headers.insert(header::RETRY_AFTER, ms.div_ceil(1000).max(1).into());
    }
    (status, headers, axum::Json(e)).into_response()
}

fn refuse_app(e: &AppError) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    refuse(status, error(e.code(), e.to_string(), None))
}

/// A request let through the gate.
pub struct Admitted {
    pub peer: Peer,
    pub wants: Vec<Want>,
    /// Its place under the per-address cap of open connections (streams
    /// and long polls: they hold a connection while they wait).
    pub place: Option<OpenSocket>,
    pub resolved_at: Option<u64>,
}

/// The first half of the gate every rung request passes (see the module
/// docs): the Host rule, the request rule, shutdown, and then the query
/// (`400` with the reason if it does not parse). The rungs are routed around
/// the pages' middleware (`server::router`): what of it applies to them is
/// here and in `admit`, cheapest refusal first.
pub fn gate(
    state: &AppState,
    request: &axum::extract::Request,
    path: &'static str,
) -> Result<Params, Box<Response>> {
    let headers = request.headers();
    if let Err(r) = state.rules.check_host(headers) {
        tracing::warn!(host = ?headers.get(header::HOST), path, "host not allowed");
        return Err(Box::new(crate::server::security::refused(r)));
    }
    if state.rules.check_origin(headers).is_err() {
        tracing::warn!(origin = ?headers.get("origin"), path, "cross-origin live request refused");
        crate::server::metrics::reject("cross_origin_live");
        let msg = "cross-origin request refused".to_owned();
        return Err(Box::new(refuse(
            StatusCode::FORBIDDEN,
            error(ErrorCode::Forbidden, msg, None),
        )));
    }
    if state.shutdown.is_triggered() {
        return Err(Box::new(crate::server::shutdown::unavailable()));
    }
    axum::extract::Query::<Params>::try_from_uri(request.uri())
        .map(|q| q.0)
        .map_err(|e| {
            crate::server::metrics::reject("bad_topics");
            let msg = format!("bad query: {}", e.body_text());
            Box::new(refuse(
                StatusCode::BAD_REQUEST,
                error(ErrorCode::BadFrame, msg, None),
            ))
        })
}

/// The rest of the gate, after `gate`: the protocol, the
/// topics, the rate limits, and last the credentials (a lookup).
pub async fn admit(
    state: &AppState,
    rung: Rung,
    remote: SocketAddr,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Admitted, Box<Response>> {
    if params.protocol.is_some_and(|v| v < MIN_PROTOCOL_VERSION) {
        crate::server::metrics::reject("protocol_version");
        let msg = format!(
            "unsupported protocol version; this server speaks {MIN_PROTOCOL_VERSION} to {}",
            crate::protocol::PROTOCOL_VERSION
        );
        return Err(Box::new(refuse(
            StatusCode::BAD_REQUEST,
            error(ErrorCode::BadFrame, msg, None),
        )));
    }
    // Past `max-subscriptions`, each topic is refused by `subscribe` (an
    // `error` with the topic, as on the socket); far past it, the request.
    let most = state.settings.max_subscriptions.saturating_mul(4);
    let wants = parse_topics(&params.topics, most).map_err(|e| {
        crate::server::metrics::reject("bad_topics");
        let status = match e.code {
            ErrorCode::Limit => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        };
        Box::new(refuse(status, e))
    })?;
    let ip = state.limits.client_ip(remote, headers);
    let rate = match rung {
        Rung::Sse => state.limits.connect(ip),
        Rung::LongPoll | Rung::ShortPoll => state.limits.poll(ip),
    };
    let place = rate.and_then(|()| match rung {
        Rung::Sse | Rung::LongPoll => state.limits.open(ip).map(Some),
        Rung::ShortPoll => Ok(None),
    });
    let place = place.map_err(|exceeded| {
        tracing::info!(%ip, limit = exceeded.what, rung = rung.name(), "live request refused by a limit");
        crate::server::metrics::reject("rate_limited");
        let msg = format!("too many requests: {}", exceeded.what);
        let mut e = error(ErrorCode::Limit, msg, None);
        e.retry_after_ms = Some(exceeded.retry_after.as_millis().max(1) as u64);
        Box::new(refuse(StatusCode::TOO_MANY_REQUESTS, e))
    })?;
    // The revocation epoch before the lookup (`ws::open_session` re-reads
    // the credentials if it moved meanwhile).
    let epoch = state.live.epoch();
    let who = crate::server::accounts::resolve(
        state.accounts.as_ref(),
        state.session_cookie(),
        headers,
        &state.recent,
        epoch,
    )
    .await
    .map_err(|e| {
        if matches!(e, AppError::Unauthenticated(_)) {
            crate::server::metrics::reject("bad_credentials");
        }
        Box::new(refuse_app(&e))
    })?;
    Ok(Admitted {
        peer: Peer { who },
        wants,
        place,
        resolved_at: Some(epoch),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_lists_parse_with_and_without_versions() {
        let wants = parse_topics("room:1@2.17, presence:1,ticker:BTC-USD@1.0,", 8).unwrap();
        assert_eq!(
            wants,
            vec![
                (Topic::room(1), Some(Version::new(2, 17))),
                (Topic::presence(1), None),
                (Topic::ticker("BTC-USD").unwrap(), Some(Version::new(1, 0))),
            ]
        );
    }

    #[test]
    fn bad_topic_lists_are_refused_with_their_reason() {
        let code = |s: &str, max| parse_topics(s, max).unwrap_err().code;
        assert_eq!(code("", 8), ErrorCode::BadFrame);
        assert_eq!(code(" , ", 8), ErrorCode::BadFrame);
        assert_eq!(code("room:x", 8), ErrorCode::InvalidTopic);
        assert_eq!(code("room:1@1", 8), ErrorCode::BadFrame);
        assert_eq!(code("room:1@a.1", 8), ErrorCode::BadFrame);
        assert_eq!(code("room:1@1.-1", 8), ErrorCode::BadFrame);
        assert_eq!(code("room:1@4294967296.1", 8), ErrorCode::BadFrame);
        assert_eq!(code("room:1,room:1@1.2", 8), ErrorCode::BadFrame);
        assert_eq!(code("room:1,room:2,room:3", 2), ErrorCode::Limit);
        let e = parse_topics("room:1,room:1", 8).unwrap_err();
        assert_eq!(e.topic, Some(Topic::room(1)));
    }
}
