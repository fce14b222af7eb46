//! `Session`: one client's subscriptions and requests, independent of the
//! transport that carries them (ssr only). The WebSocket handler drives it
//! now; the SSE and long-poll rungs will drive the same type.
//!
//! Ordering contract: for each subscribed topic the session writes events in
//! seq order with no gaps and no repeats, starting right after the version
//! the client asked for. It registers with the broker *before* reading the
//! store, so nothing committed in between is missed; deliveries at or below
//! the last written seq are dropped; a delivery past a gap (concurrent
//! publishers, or an outbox overflow) makes the session read the missing
//! range from the store first. If it cannot continue (another epoch, or more
//! than `catch-up-limit` events behind) it sends `reset` and drops the
//! subscription.
//!
//! Concurrency: owned by one task; never shared.

use crate::error::AppError;
use crate::protocol::{
    ClientFrame, ErrorCode, ErrorFrame, ProtocolError, ServerFrame, Topic, Version,
};
use crate::server::broker::{ConnId, Delivery, Outbox};
use crate::server::chat;
use crate::server::state::AppState;
use axum::extract::ws::Utf8Bytes;
use std::collections::HashMap;
use std::sync::Arc;

pub struct Session {
    pub conn: ConnId,
    state: AppState,
    author: Option<String>,
    /// Whether this connection presented the publish token.
    may_publish: bool,
    outbox: Arc<Outbox>,
    /// Last version written to the client, per subscribed topic.
    subs: HashMap<Topic, Version>,
    bad_frames: u32,
    /// Event frames written since the last `flush_meters`: rooms, tickers.
    out: [u64; 2],
}

/// Whether the session may go on after a refused frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// Too many malformed frames: close with `ProtocolViolation`.
    Close,
}

enum CatchUp {
    At(Version),
    Reset(Version),
}

fn frame(f: ServerFrame) -> Utf8Bytes {
    f.to_json().into()
}

impl Session {
    pub fn new(
        state: AppState,
        author: Option<String>,
        may_publish: bool,
        outbox: Arc<Outbox>,
    ) -> Self {
        Session {
            conn: state.next_conn_id(),
            state,
            author,
            may_publish,
            outbox,
            subs: HashMap::new(),
            bad_frames: 0,
            out: [0; 2],
        }
    }

    /// Adds the event frames written since the last call to the metrics.
    pub fn flush_meters(&mut self) {
        let [room, ticker] = std::mem::take(&mut self.out);
        if room > 0 {
            self.state.meters.room_out.increment(room);
        }
        if ticker > 0 {
            self.state.meters.ticker_out.increment(ticker);
        }
    }

    fn count_out(&mut self, topic: &Topic, n: u64) {
        self.out[usize::from(!topic.is_durable())] += n;
    }

    /// Records the client's version of `topic` (a new subscription if untracked).
    fn track(&mut self, topic: &Topic, version: Version) {
        // The hot path (a known topic) updates in place: no key clone.
        if let Some(v) = self.subs.get_mut(topic) {
            *v = version;
        } else {
            self.subs.insert(topic.clone(), version);
            self.state.meters.subscriptions.increment(1.0);
        }
    }

    pub fn hello(&self) -> Utf8Bytes {
        let s = &self.state.settings;
        frame(ServerFrame::Hello {
            conn_id: self.conn,
            heartbeat_interval_ms: s.heartbeat_interval_ms,
            heartbeat_timeout_ms: s.heartbeat_timeout_ms,
            max_frame_bytes: s.max_frame_bytes,
        })
    }

    /// Decodes and serves one text frame, appending replies to `out`.
    pub async fn handle_text(&mut self, text: &str, out: &mut Vec<Utf8Bytes>) -> Verdict {
        match ClientFrame::decode(text, self.state.settings.max_frame_bytes) {
            Ok(f) => {
                self.handle(f, out).await;
                Verdict::Continue
            }
            Err(e) => self.refuse(e, out),
        }
    }

    /// Answers a malformed frame with an error frame; counts it.
    pub fn refuse(&mut self, err: ProtocolError, out: &mut Vec<Utf8Bytes>) -> Verdict {
        tracing::debug!(conn_id = self.conn, error = %err, "frame refused");
        crate::server::metrics::reject(match err.code() {
            ErrorCode::TooLarge => "frame_too_large",
            ErrorCode::UnknownType => "unknown_frame_type",
            ErrorCode::InvalidTopic => "invalid_topic",
            _ => "bad_frame",
        });
        self.bad_frames += 1;
        out.push(error(err.code(), err.to_string(), None));
        if self.bad_frames > self.state.settings.max_bad_frames {
            Verdict::Close
        } else {
            Verdict::Continue
        }
    }

    pub async fn handle(&mut self, f: ClientFrame, out: &mut Vec<Utf8Bytes>) {
        match f {
            ClientFrame::Subscribe { topic, since } => self.subscribe(topic, since, out).await,
            ClientFrame::Unsubscribe { topic } => {
                self.drop_sub(&topic);
                out.push(frame(ServerFrame::Unsubscribed { topic }));
            }
            ClientFrame::Send {
                topic,
                client_id,
                body,
            } => {
                let sent = chat::post_message(
                    &self.state,
                    &topic,
                    client_id,
                    self.author.as_deref(),
                    &body,
                )
                .await;
                out.push(match sent {
                    Ok(event) => frame(ServerFrame::Ack { client_id, event }),
                    Err(e) => frame(ServerFrame::Error(ErrorFrame {
                        code: e.code(),
                        message: e.to_string(),
                        topic: Some(topic),
                        client_id: Some(client_id),
                    })),
                });
            }
            ClientFrame::Publish { topic, tick } => {
                let published = if self.may_publish {
                    self.state.publish_tick(&topic, tick).map(|_| ())
                } else {
                    crate::server::metrics::reject("publish_forbidden");
                    Err(AppError::Forbidden(
                        "this connection may not publish".into(),
                    ))
                };
                if let Err(e) = published {
                    out.push(error(e.code(), e.to_string(), Some(topic)));
                }
            }
            ClientFrame::Ping {} => out.push(frame(ServerFrame::Pong {})),
            ClientFrame::Pong {} => {}
        }
    }

    async fn subscribe(&mut self, topic: Topic, since: Option<Version>, out: &mut Vec<Utf8Bytes>) {
        if !self.subs.contains_key(&topic)
            && self.subs.len() >= self.state.settings.max_subscriptions
        {
            let msg = format!(
                "at most {} subscriptions per connection",
                self.state.settings.max_subscriptions
            );
            crate::server::metrics::reject("subscription_limit");
            out.push(error(ErrorCode::Limit, msg, Some(topic)));
            return;
        }
        // Register first: anything committed from here on reaches the outbox.
        self.state
            .broker
            .subscribe(&topic, self.conn, self.outbox.clone());
        let result = match since {
            None => self.state.head(&topic).await.map(CatchUp::At),
            Some(v) => {
                let caught = self.catch_up(&topic, v, out).await;
                if let Ok(CatchUp::At(at)) = &caught {
                    let m = &self.state.meters;
                    let resumed = if *at == v {
                        &m.resumes_current
                    } else {
                        &m.resumes_replayed
                    };
                    resumed.increment(1);
                }
                caught
            }
        };
        match result {
            Ok(CatchUp::At(version)) => {
                self.track(&topic, version);
                out.push(frame(ServerFrame::Subscribed { topic, version }));
            }
            Ok(CatchUp::Reset(version)) => self.reset(topic, version, out),
            Err(e) => {
                self.drop_sub(&topic);
                out.push(error(e.code(), e.to_string(), Some(topic)));
            }
        }
    }

    /// Writes the events after `from` (from the topic's log) to `out`.
    async fn catch_up(
        &mut self,
        topic: &Topic,
        from: Version,
        out: &mut Vec<Utf8Bytes>,
    ) -> Result<CatchUp, AppError> {
        let limit = self.state.settings.catch_up_limit;
        let b = self.state.since(topic, from, limit).await?;
        if b.reset || b.has_more {
            return Ok(CatchUp::Reset(b.version));
        }
        self.count_out(topic, b.events.len() as u64);
        let mut at = from;
        for event in b.events {
            at = event.version;
            out.push(frame(ServerFrame::Event(event)));
        }
        Ok(CatchUp::At(at))
    }

    fn reset(&mut self, topic: Topic, version: Version, out: &mut Vec<Utf8Bytes>) {
        self.state.meters.resets.increment(1);
        self.drop_sub(&topic);
        out.push(frame(ServerFrame::Reset {
            topic,
            version,
            reason: "cannot continue from your version; reload the snapshot".into(),
        }));
    }

    fn drop_sub(&mut self, topic: &Topic) {
        if self.subs.remove(topic).is_some() {
            self.state.meters.subscriptions.decrement(1.0);
        }
        self.state.broker.unsubscribe(topic, self.conn);
    }

    /// Writes a broker delivery if it is the next event of a subscribed topic;
    /// repairs the gap first if it is past the next.
    pub async fn deliver(&mut self, d: &Delivery, out: &mut Vec<Utf8Bytes>) {
        let Some(&last) = self.subs.get(&d.topic) else {
            return;
        };
        if d.version.epoch != last.epoch {
            self.reset(d.topic.clone(), d.version, out);
        } else if d.version.seq == last.seq + 1 {
            out.push(d.frame.clone());
            self.count_out(&d.topic, 1);
            self.track(&d.topic, d.version);
        } else if d.version.seq > last.seq + 1 {
            self.state.meters.gap_repairs.increment(1);
            self.repair(&d.topic, out).await;
        }
    }

    /// Reads what the client is missing on `topic` from its log.
    pub async fn repair(&mut self, topic: &Topic, out: &mut Vec<Utf8Bytes>) {
        let Some(&last) = self.subs.get(topic) else {
            return;
        };
        match self.catch_up(topic, last, out).await {
            Ok(CatchUp::At(v)) => self.track(topic, v),
            Ok(CatchUp::Reset(v)) => self.reset(topic.clone(), v, out),
            Err(e) => {
                tracing::warn!(conn_id = self.conn, topic = %topic, error = %e, "gap repair failed");
                let (t, v) = (topic.clone(), last);
                self.reset(t, v, out);
            }
        }
    }

    /// Repairs every topic whose deliveries the broker dropped for lack of room.
    pub async fn repair_lagged(&mut self, out: &mut Vec<Utf8Bytes>) {
        for topic in self.outbox.take_lagged() {
            self.repair(&topic, out).await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.flush_meters();
        let live = self.subs.len() as f64;
        self.state.meters.subscriptions.decrement(live);
        for topic in self.subs.keys() {
            self.state.broker.unsubscribe(topic, self.conn);
        }
    }
}

fn error(code: ErrorCode, message: String, topic: Option<Topic>) -> Utf8Bytes {
    frame(ServerFrame::Error(ErrorFrame {
        code,
        message,
        topic,
        client_id: None,
    }))
}
