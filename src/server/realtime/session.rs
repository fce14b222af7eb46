//! `Session`: one client's subscriptions and requests, independent of the
//! transport that carries them (ssr only). Its input is client frames (text
//! or decoded), broker deliveries and clock ticks; its output is encoded
//! `Frame`s appended to a `Frames` list the transport writes. The WebSocket
//! drives it now; the SSE and long-poll rungs will drive the same type.
//!
//! Ordering contract, per subscribed topic, by the topic's policy:
//! - **Lossless** (rooms): events are written in seq order with no gaps and
//!   no repeats, starting right after the version the client asked for. A
//!   delivery at or below the last written seq is dropped; one past a gap (an
//!   outbox overflow) makes the session read the missing range from the log
//!   first. If it cannot continue (another epoch, or more than
//!   `catch-up-limit` events behind) it sends `reset` and drops the
//!   subscription; if the log cannot be read it sends `error` (`internal`,
//!   with the topic) and drops the subscription.
//! - **Latest-wins** (tickers): only newer versions are written; a
//!   connection that fell behind gets the newest event, never a backlog.
//!
//! The session registers with the broker *before* reading the log, so nothing
//! committed in between is missed.
//!
//! Memory: catching a lossless topic up (a `subscribe` with `since`, or a
//! connection that fell behind) reads the log **one page at a time**
//! (`page-bytes`): the transport asks for the next page
//! (`continue_catch_up`) only once the previous one was written, so what one
//! client can make the server hold is one page, however far behind it is.
//! Live deliveries of a topic being caught up are skipped: the log pages
//! cover them.
//!
//! Heartbeats are session logic too: the transport calls `heard` on every
//! input and `on_tick` on its timer, and closes when told to.
//!
//! Concurrency: owned by one task; never shared.

use super::backend::Backend;
use super::cmd;
use super::frame::{self, Frames};
use crate::error::AppError;
use crate::protocol::{
    Admit, ChatWrite, ClientFrame, CloseCode, ErrorCode, ErrorFrame, Event, Policy, ProtocolError,
    ServerFrame, Topic, Version, PROTOCOL_VERSION,
};
use crate::server::accounts::live::Kick;
use crate::server::accounts::Principal;
use crate::server::broker::{Broker, ConnId, Delivery, Outbox};
use crate::server::config::Settings;
use crate::server::limits::{Budget, Exceeded, Flood};
use crate::server::metrics::{KindCounts, Meters};
use crate::server::presence::Attendance;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::time::{Duration, Instant};

/// Who is on the other end, as the transport established it at the
/// upgrade: the principal every request of the connection is authorized
/// for (`accounts::authorize`).
#[derive(Clone, Debug)]
pub struct Peer {
    pub who: Principal,
}

impl Default for Peer {
    fn default() -> Self {
        Peer {
            who: Principal::Anonymous,
        }
    }
}

/// What a session needs from the server.
#[derive(Clone)]
pub struct Services {
    pub backend: Arc<dyn Backend>,
    pub broker: Arc<dyn Broker>,
    pub settings: Arc<Settings>,
    pub meters: Arc<Meters>,
}

pub struct Session {
    pub conn: ConnId,
    pub(super) services: Services,
    pub(super) peer: Peer,
    outbox: Arc<Outbox>,
    /// Last version written to the client, per subscribed topic.
    pub(super) subs: HashMap<Topic, Version>,
    /// Lossless topics being caught up page by page, and what ends it.
    pub(super) behind: HashMap<Topic, Finish>,
    bad_frames: u32,
    /// This connection's rate limits.
    pub(super) budget: Budget,
    /// Event frames written since the last `flush_meters`, by kind.
    written: KindCounts,
    /// When the peer was last heard from.
    heard: Instant,
    /// Rooms this connection left to rest (its page hidden): its account
    /// shows there as away while the connection lasts (`server::presence`).
    pub(super) resting: HashSet<i64>,
    /// Since when the connection has had no subscription (`None` while it
    /// has one).
    idle_since: Option<Instant>,
    /// How long its rooms keep its account present after it ends (`None`:
    /// not at all; a poll's is `Some`, see `lingering`).
    linger: Option<Duration>,
}

/// Whether a catch-up is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CaughtUp {
    Now,
    /// More pages follow (`continue_catch_up`).
    Later,
}

/// Whether the transport may go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// Write what is pending, then close with this code and reason.
    Close(CloseCode, &'static str),
}

/// What to send once a paged catch-up is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Finish {
    /// `subscribed` (the catch-up answers a `subscribe`).
    Subscribed,
    /// Nothing (the connection had fallen behind).
    Silent,
}

/// Where catching up left a subscription.
pub(super) enum CatchUp {
    /// Up to date at this version.
    At(Version),
    /// One page written, up to this version; more to read.
    Partial(Version),
    /// Cannot continue; the topic's head is this version.
    Reset(Version),
}

impl Session {
    pub fn new(conn: ConnId, services: Services, peer: Peer, outbox: Arc<Outbox>) -> Self {
        Session {
            conn,
            budget: Budget::new(&services.settings),
            services,
            peer,
            outbox,
            subs: HashMap::new(),
            resting: HashSet::new(),
            behind: HashMap::new(),
            bad_frames: 0,
            written: KindCounts::default(),
            heard: Instant::now(),
            idle_since: Some(Instant::now()),
            linger: None,
        }
    }

    /// A session whose rooms keep its account present for `linger` after
    /// it ends: a poll lasts one request, and the next poll, within
    /// `linger`, renews it, so the account does not come and go with every
    /// request (`PresenceBoard::linger`).
    pub fn lingering(mut self, linger: Duration) -> Self {
        self.linger = Some(linger);
        self
    }

    /// A poll whose credentials were revoked: its rooms let its account go
    /// when it ends, without lingering.
    pub fn stop_lingering(&mut self) {
        if self.linger.is_some() {
            self.linger = Some(Duration::ZERO);
        }
    }

    pub fn hello(&self, out: &mut Frames) {
        let s = &self.services.settings;
        frame::push(
            out,
            ServerFrame::Hello {
                conn_id: self.conn,
                protocol: PROTOCOL_VERSION,
                heartbeat_interval_ms: s.heartbeat_interval_ms,
                heartbeat_timeout_ms: s.heartbeat_timeout_ms,
                max_frame_bytes: s.max_frame_bytes,
                hidden_tab_ms: s.hidden_tab_ms,
            },
        );
    }

    /// The peer sent something (any frame counts as liveness).
    pub fn heard(&mut self, now: Instant) {
        self.heard = now;
    }

    /// The heartbeat timer fired: close a peer silent for too long, one
    /// whose session has expired, or one that has subscribed to nothing for
    /// `idle-close-ms`; else, if nothing was written to the client since the
    /// last tick (`quiet`), send an application `ping` so that it hears from
    /// the server. (Checking the client is the transport's part: the
    /// WebSocket sends a ping frame on every tick.)
    pub fn on_tick(&mut self, now: Instant, quiet: bool, out: &mut Frames) -> Verdict {
        let silence = Duration::from_millis(self.services.settings.heartbeat_timeout_ms);
        if now.saturating_duration_since(self.heard) > silence {
            return Verdict::Close(CloseCode::HeartbeatTimeout, "heartbeat timeout");
        }
        if let Principal::Session { expires_at, .. } = self.peer.who {
            if crate::server::store::now_ms() >= expires_at {
                return Verdict::Close(CloseCode::Unauthenticated, "session expired");
            }
        }
        let idle = Duration::from_millis(self.services.settings.idle_close_ms);
        if let Some(since) = self.idle_since {
            if !idle.is_zero() && now.saturating_duration_since(since) >= idle {
                return Verdict::Close(CloseCode::Idle, "no subscriptions");
            }
        }
        if quiet {
            frame::push(out, ServerFrame::Ping {});
        }
        Verdict::Continue
    }

    /// Decodes and serves one text frame, appending replies to `out`.
    pub async fn handle_text(&mut self, text: &str, out: &mut Frames) -> Verdict {
        match ClientFrame::decode(text, self.services.settings.max_frame_bytes) {
            Ok(f) => self.handle(f, out).await,
            Err(e) => self.refuse(e, out),
        }
    }

    /// Answers a refused frame with an error frame; counts it.
    pub fn refuse(&mut self, err: ProtocolError, out: &mut Frames) -> Verdict {
        tracing::debug!(conn_id = self.conn, error = %err, "frame refused");
        crate::server::metrics::reject(match err.code() {
            ErrorCode::TooLarge => "frame_too_large",
            ErrorCode::UnknownType => "unknown_frame_type",
            ErrorCode::InvalidTopic => "invalid_topic",
            _ => "bad_frame",
        });
        self.bad_frames += 1;
        push_error(out, err.code(), err.to_string(), None);
        if self.bad_frames > self.services.settings.max_bad_frames {
            Verdict::Close(CloseCode::ProtocolViolation, "too many malformed frames")
        } else {
            Verdict::Continue
        }
    }

    /// Serves one decoded frame: one command handler per frame kind. Closes
    /// a connection that keeps going past its rate limits.
    pub async fn handle(&mut self, f: ClientFrame, out: &mut Frames) -> Verdict {
        match f {
            ClientFrame::Subscribe { topic, since } => {
                cmd::subscribe::run(self, topic, since, out).await
            }
            ClientFrame::Unsubscribe { topic, away } => {
                cmd::unsubscribe::run(self, topic, away, out)
            }
            ClientFrame::Send {
                topic,
                client_id,
                body,
            } => cmd::send::run(self, topic, client_id, ChatWrite::Message { body }, out).await,
            ClientFrame::Edit {
                topic,
                client_id,
                target,
                body,
            } => {
                let write = ChatWrite::Edit { target, body };
                cmd::send::run(self, topic, client_id, write, out).await
            }
            ClientFrame::Delete {
                topic,
                client_id,
                target,
            } => {
                let write = ChatWrite::Delete { target };
                cmd::send::run(self, topic, client_id, write, out).await
            }
            ClientFrame::Typing { topic } => cmd::typing::run(self, topic, out).await,
            ClientFrame::Publish { topic, tick } => cmd::publish::run(self, topic, tick, out).await,
            ClientFrame::Ping {} => cmd::ping::ping(out),
            ClientFrame::Pong {} => cmd::ping::pong(),
        }
        match self.budget.flooding() {
            Flood::No => Verdict::Continue,
            Flood::Yes => {
                crate::server::metrics::reject("flooding");
                Verdict::Close(CloseCode::RateLimited, "too many requests")
            }
        }
    }

    /// A revocation reached this connection: its credentials ended (close
    /// with 4401), or its account lost access to a topic (that subscription
    /// ends with `error{not_found, topic}`, as if the topic did not exist).
    pub fn on_kick(&mut self, kick: Kick, out: &mut Frames) -> Verdict {
        match kick {
            Kick::Credentials => Verdict::Close(CloseCode::Unauthenticated, "credentials revoked"),
            Kick::Topic(topic) => {
                // Losing a room loses who is in it too; a poll's account
                // does not linger in a room it lost.
                let presence = match topic {
                    Topic::Room(id) => Some(Topic::presence(id)),
                    _ => None,
                };
                let linger = self.linger;
                self.stop_lingering();
                for t in std::iter::once(topic).chain(presence) {
                    if self.subs.contains_key(&t) {
                        self.untrack(t);
                        let e = AppError::NotFound(topic.to_string().replace(':', " "));
                        push_error(out, e.code(), e.to_string(), Some(t));
                    }
                }
                self.linger = linger;
                // Resting from it: gone from its presence (the client
                // learns when it subscribes again).
                if let Topic::Room(id) = topic {
                    if self.resting.contains(&id) {
                        self.untrack(topic);
                    }
                }
                Verdict::Continue
            }
        }
    }

    /// Writes a broker delivery by its topic's policy (see the module docs).
    pub async fn deliver(&mut self, d: &Delivery, out: &mut Frames) {
        let Some(&last) = self.subs.get(&d.topic) else {
            return;
        };
        if self.behind.contains_key(&d.topic) {
            // Being caught up from the log, which covers this event.
            return;
        }
        match d.topic.policy().admit(last, d.version) {
            Admit::NewEpoch => self.reset(d.topic, d.version, out),
            Admit::Write { skipped } => {
                self.coalesced(skipped);
                self.write(d, out);
            }
            Admit::Gap => {
                self.services.meters.gap_repairs.increment(1);
                self.catch_up(d.topic, last, out).await;
            }
            Admit::Stale => {}
        }
    }

    fn write(&mut self, d: &Delivery, out: &mut Frames) {
        out.push(d.frame.clone());
        self.written.add(d.topic.kind(), 1);
        if let Some(v) = self.subs.get_mut(&d.topic) {
            *v = d.version;
        }
    }

    /// Catches up every topic whose deliveries the broker dropped for lack
    /// of room, by each topic's policy.
    pub async fn catch_up_lagged(&mut self, out: &mut Frames) {
        for topic in self.outbox.take_lagged() {
            if let Some(&last) = self.subs.get(&topic) {
                self.catch_up(topic, last, out).await;
            }
        }
    }

    /// Whether a topic is being caught up page by page: the transport calls
    /// `continue_catch_up` once what was written so far is out.
    pub fn is_catching_up(&self) -> bool {
        !self.behind.is_empty()
    }

    /// Writes the next page of one topic being caught up.
    pub async fn continue_catch_up(&mut self, out: &mut Frames) {
        let Some((&topic, &finish)) = self.behind.iter().next() else {
            return;
        };
        let Some(&from) = self.subs.get(&topic) else {
            self.behind.remove(&topic);
            return;
        };
        if self.catch_up(topic, from, out).await == Some(CaughtUp::Now) {
            self.behind.remove(&topic);
            if finish == Finish::Subscribed {
                let version = self.subs.get(&topic).copied().unwrap_or(from);
                push_subscribed(out, topic, version);
            }
        }
    }

    /// Brings a subscribed topic up to date from `from` (one page at a
    /// time for lossless topics), or ends it. `None`: the subscription ended.
    async fn catch_up(
        &mut self,
        topic: Topic,
        from: Version,
        out: &mut Frames,
    ) -> Option<CaughtUp> {
        match self.read_from(topic, Some(from), out).await {
            Ok(CatchUp::At(v)) => {
                self.track(topic, v);
                Some(CaughtUp::Now)
            }
            Ok(CatchUp::Partial(v)) => {
                self.track(topic, v);
                self.behind.entry(topic).or_insert(Finish::Silent);
                Some(CaughtUp::Later)
            }
            Ok(CatchUp::Reset(head)) => {
                self.reset(topic, head, out);
                None
            }
            Err(e) => {
                tracing::warn!(conn_id = self.conn, topic = %topic, error = %e, "catching up failed");
                self.untrack(topic);
                push_error(out, e.code(), e.to_string(), Some(topic));
                None
            }
        }
    }

    /// Writes what the client is missing on `topic` after `from` (from the
    /// head if `None`), by the topic's policy.
    pub(super) async fn read_from(
        &mut self,
        topic: Topic,
        from: Option<Version>,
        out: &mut Frames,
    ) -> Result<CatchUp, AppError> {
        let backend = self.services.backend.clone();
        match (topic.policy(), from) {
            (Policy::Lossless, None) => Ok(CatchUp::At(backend.head(topic).await?)),
            (Policy::Lossless, Some(from)) => {
                let settings = &self.services.settings;
                let b = backend.since(topic, from, settings.page()).await?;
                let behind = b.version.seq.saturating_sub(from.seq);
                if b.reset || behind > u64::from(settings.catch_up_limit) {
                    return Ok(CatchUp::Reset(b.version));
                }
                let at = b.events.last().map_or(from, |e| e.version);
                let more = b.has_more;
                self.write_events(topic, b.events, out);
                Ok(if more {
                    CatchUp::Partial(at)
                } else {
                    CatchUp::At(at)
                })
            }
            (Policy::LatestWins, from) => {
                let (head, newest) = backend.latest(topic).await?;
                let have = match from {
                    Some(v) if v.epoch != head.epoch || v.seq > head.seq => {
                        return Ok(CatchUp::Reset(head))
                    }
                    Some(v) => v.seq,
                    None => 0,
                };
                let Some(newest) = newest.filter(|e| e.version.seq > have) else {
                    return Ok(CatchUp::At(from.unwrap_or(head)));
                };
                if from.is_some() {
                    self.coalesced(newest.version.seq - have - 1);
                }
                let at = newest.version;
                self.write_events(topic, vec![newest], out);
                Ok(CatchUp::At(at))
            }
        }
    }

    fn write_events(&mut self, topic: Topic, events: Vec<Event>, out: &mut Frames) {
        self.written.add(topic.kind(), events.len() as u64);
        for event in events {
            frame::push(out, ServerFrame::Event(event));
        }
    }

    fn coalesced(&self, skipped: u64) {
        if skipped > 0 {
            self.services.meters.coalesced.increment(skipped);
        }
    }

    /// Registers `topic` with the broker (before its log is read).
    pub(super) fn register(&self, topic: Topic) {
        self.services
            .broker
            .subscribe(topic, self.conn, self.outbox.clone());
    }

    /// Records the client's version of `topic` (a new subscription if untracked).
    pub(super) fn track(&mut self, topic: Topic, version: Version) {
        self.idle_since = None;
        if self.subs.insert(topic, version).is_none() {
            self.services.meters.subscriptions.increment(1.0);
            if let Topic::Room(room) = topic {
                let from = self.resting.remove(&room).then_some(Attendance::Away);
                let who = &self.peer.who;
                self.services
                    .backend
                    .presence(who, room, from, Some(Attendance::Here));
            }
        }
    }

    /// Ends the subscription to `topic`, if any (and any rest from it).
    pub(super) fn untrack(&mut self, topic: Topic) {
        self.leave(topic, false);
    }

    /// Ends the subscription to `topic`, if any. With `resting`, a room the
    /// connection was in keeps it there as away (`unsubscribe{away}`);
    /// without, it leaves the room altogether.
    pub(super) fn leave(&mut self, topic: Topic, resting: bool) {
        self.behind.remove(&topic);
        let was = self.subs.remove(&topic).is_some();
        if was {
            self.services.meters.subscriptions.decrement(1.0);
        }
        if let Topic::Room(room) = topic {
            let from = if was {
                Some(Attendance::Here)
            } else if !resting && self.resting.remove(&room) {
                Some(Attendance::Away)
            } else {
                None
            };
            let to = if was && resting {
                self.resting.insert(room);
                Some(Attendance::Away)
            } else {
                None
            };
            let (who, backend) = (&self.peer.who, &self.services.backend);
            match (from, self.linger) {
                (None, _) => {}
                // A poll's room ends (a reset, say): it lingers as when the
                // poll ends, unless the room was lost (`on_kick`).
                (Some(Attendance::Here), Some(linger)) => backend.linger(who, room, linger),
                (Some(_), _) => backend.presence(who, room, from, to),
            }
        }
        self.services.broker.unsubscribe(topic, self.conn);
        if self.subs.is_empty() && self.behind.is_empty() && self.idle_since.is_none() {
            self.idle_since = Some(Instant::now());
        }
    }

    /// Ends the subscription and tells the client to reload from its snapshot.
    pub(super) fn reset(&mut self, topic: Topic, head: Version, out: &mut Frames) {
        self.services.meters.resets.increment(1);
        self.untrack(topic);
        frame::push(
            out,
            ServerFrame::Reset {
                topic,
                version: head,
                reason: "cannot continue from your version; reload the snapshot".into(),
            },
        );
    }

    /// Adds the event frames written since the last call to the metrics.
    pub fn flush_meters(&mut self) {
        self.services
            .meters
            .events_out(std::mem::take(&mut self.written));
    }

    /// Parks the connection (`wire`): while it waits for something to do,
    /// its wire writes the next events of its topics itself, from the
    /// versions handed over here. Only over a wire, with no catch-up under
    /// way and `idle()` (the outbox empty) holding under the wire's lock.
    pub fn park(&mut self, idle: impl FnOnce() -> bool) -> bool {
        let Some(wire) = self.outbox.wire() else {
            return false;
        };
        if !self.behind.is_empty() {
            return false;
        }
        match wire.park(std::mem::take(&mut self.subs), idle) {
            Ok(()) => true,
            Err(versions) => {
                self.subs = versions;
                false
            }
        }
    }

    /// Ends the parking: takes the versions back, moved on by what the wire
    /// wrote; whether it wrote anything.
    pub fn unpark(&mut self) -> bool {
        let Some(wire) = self.outbox.wire() else {
            return false;
        };
        match wire.unpark() {
            Some((versions, wrote)) => {
                self.subs = versions;
                wrote
            }
            None => false,
        }
    }

    /// Every subscribed topic, at the version last written to the client.
    pub fn versions(&self) -> impl Iterator<Item = (Topic, Version)> + Clone + '_ {
        self.subs.iter().map(|(t, v)| (*t, *v))
    }

    /// Whether this session holds a subscription to `topic`, and where.
    pub fn version_of(&self, topic: Topic) -> Option<Version> {
        self.subs.get(&topic).copied()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.unpark();
        self.flush_meters();
        let live = self.subs.len() as f64;
        self.services.meters.subscriptions.decrement(live);
        for topic in self.subs.keys() {
            self.services.broker.unsubscribe(*topic, self.conn);
            if let Topic::Room(room) = topic {
                let (who, backend) = (&self.peer.who, &self.services.backend);
                match self.linger {
                    None => backend.presence(who, *room, Some(Attendance::Here), None),
                    Some(linger) => backend.linger(who, *room, linger),
                }
            }
        }
        for room in &self.resting {
            let away = Some(Attendance::Away);
            self.services
                .backend
                .presence(&self.peer.who, *room, away, None);
        }
    }
}

/// Encodes `subscribed` (with the topic's policy) onto `out`.
pub(super) fn push_subscribed(out: &mut Frames, topic: Topic, version: Version) {
    frame::push(
        out,
        ServerFrame::Subscribed {
            topic,
            version,
            policy: topic.policy(),
        },
    );
}

/// Encodes an `error` frame onto `out`.
pub(super) fn push_error(out: &mut Frames, code: ErrorCode, message: String, topic: Option<Topic>) {
    frame::push(
        out,
        ServerFrame::Error(ErrorFrame {
            code,
            message,
            topic,
            client_id: None,
            retry_after_ms: None,
        }),
    );
}

/// The `error` frame for a request refused by a rate limit.
pub(super) fn limit_error(
    exceeded: &Exceeded,
    topic: Option<Topic>,
    client_id: Option<uuid::Uuid>,
) -> ServerFrame {
    crate::server::metrics::reject("rate_limited");
    ServerFrame::Error(ErrorFrame {
        code: ErrorCode::Limit,
        message: format!("too many requests: {}", exceeded.what),
        topic,
        client_id,
        retry_after_ms: Some(exceeded.retry_after.as_millis().max(1) as u64),
    })
}

#[cfg(test)]
#[path = "session_tests/mod.rs"]
mod tests;
