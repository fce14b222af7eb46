//! The contract of `Session`, tested against a fake backend and an
//! in-memory outbox: no database, no socket, no clock but tokio's paused one.
//! `ordering` covers the ordering contract by policy; `limits` the limits,
//! refusals and heartbeats. This file holds the fake and the harness.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod limits;
mod ordering;
mod presence;

use super::*;
use crate::model::Backfill;
use crate::protocol::{ChatMessage, EventData, Tick};
use crate::server::broker::{Inbox, LocalBroker};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use uuid::Uuid;

pub(super) const EPOCH: u32 = 7;

/// Topic logs in memory; reads can be made to fail.
#[derive(Default)]
pub(super) struct Fake {
    logs: Mutex<HashMap<Topic, Vec<Event>>>,
    broken: AtomicBool,
    /// The presence calls made, in order (`presence`, `linger`).
    attendance: Mutex<Vec<String>>,
}

impl Fake {
    /// Appends `n` events to `topic` (without publishing them).
    fn append(&self, topic: Topic, n: usize) -> Vec<Event> {
        let mut logs = self.logs.lock().unwrap();
        let log = logs.entry(topic).or_default();
        (0..n)
            .map(|_| {
                let seq = log.len() as u64 + 1;
                let e = event(topic, EPOCH, seq);
                log.push(e.clone());
                e
            })
            .collect()
    }

    fn check(&self) -> Result<(), AppError> {
        if self.broken.load(Ordering::SeqCst) {
            Err(AppError::Internal)
        } else {
            Ok(())
        }
    }

    fn head_of(&self, topic: Topic) -> Version {
        let len = self.logs.lock().unwrap().get(&topic).map_or(0, Vec::len);
        Version::new(EPOCH, len as u64)
    }
}

pub(super) fn event(topic: Topic, epoch: u32, seq: u64) -> Event {
    let data = match topic {
        Topic::Room(_) => EventData::Message(ChatMessage {
            client_id: Uuid::from_u128(seq as u128),
            author: "a".into(),
            body: format!("m{seq}"),
            sent_at: 0,
            ..Default::default()
        }),
        Topic::Ticker(_) => EventData::Tick(Tick {
            price: seq as f64,
            ts: 0,
        }),
        Topic::Presence(_) => EventData::Presence(Default::default()),
        Topic::User(_) => EventData::Unread(Default::default()),
        Topic::Lobby => EventData::Lobby(Default::default()),
    };
    Event {
        topic,
        version: Version::new(epoch, seq),
        data,
    }
}

#[async_trait::async_trait]
impl Backend for Fake {
    async fn head(&self, topic: Topic) -> Result<Version, AppError> {
        self.check()?;
        Ok(self.head_of(topic))
    }

    async fn since(
        &self,
        topic: Topic,
        after: Version,
        limit: crate::server::store::PageLimit,
    ) -> Result<Backfill, AppError> {
        self.check()?;
        let head = self.head_of(topic);
        if after.epoch != head.epoch || after.seq > head.seq {
            return Ok(Backfill::reset(topic, head));
        }
        let logs = self.logs.lock().unwrap();
        let newer: Vec<Event> = logs
            .get(&topic)
            .into_iter()
            .flatten()
            .filter(|e| e.version.seq > after.seq)
            .cloned()
            .collect();
        // Each fake event weighs 100 bytes against the page's byte limit.
        let fit = (limit.events as usize).min(limit.bytes.div_ceil(100).max(1));
        Ok(Backfill {
            topic,
            version: head,
            has_more: newer.len() > fit,
            events: newer.into_iter().take(fit).collect(),
            reset: false,
        })
    }

    async fn latest(&self, topic: Topic) -> Result<(Version, Option<Event>), AppError> {
        self.check()?;
        let newest = self
            .logs
            .lock()
            .unwrap()
            .get(&topic)
            .and_then(|l| l.last().cloned());
        Ok((self.head_of(topic), newest))
    }

    async fn authorize(
        &self,
        _who: &crate::server::accounts::Principal,
        _topic: Topic,
        _access: crate::server::accounts::Access,
    ) -> Result<(), AppError> {
        Ok(())
    }

    async fn write(
        &self,
        _who: &crate::server::accounts::Principal,
        _topic: Topic,
        _client_id: Uuid,
        _write: crate::protocol::ChatWrite,
    ) -> Result<Event, crate::server::chat::WriteError> {
        Err(AppError::Internal.into())
    }

    fn presence(
        &self,
        _: &crate::server::accounts::Principal,
        room: i64,
        from: Option<crate::server::presence::Attendance>,
        to: Option<crate::server::presence::Attendance>,
    ) {
        let call = format!("room {room}: {from:?} -> {to:?}");
        self.attendance.lock().unwrap().push(call);
    }

    fn linger(&self, _: &crate::server::accounts::Principal, room: i64, linger: Duration) {
        let call = format!("room {room}: lingers {linger:?}");
        self.attendance.lock().unwrap().push(call);
    }

    async fn typing(
        &self,
        _: &crate::server::accounts::Principal,
        _: crate::protocol::Topic,
    ) -> Result<(), crate::error::AppError> {
        Ok(())
    }

    fn publish_tick(&self, _topic: Topic, _tick: Tick) -> Result<Event, AppError> {
        Err(AppError::Internal)
    }
}

pub(super) struct Harness {
    fake: Arc<Fake>,
    broker: Arc<LocalBroker>,
    session: Session,
    inbox: Inbox,
    out: Frames,
}

pub(super) fn harness(tweak: impl FnOnce(&mut Settings)) -> Harness {
    let mut settings = Settings::default();
    tweak(&mut settings);
    let fake = Arc::new(Fake::default());
    let broker = Arc::new(LocalBroker::default());
    let (outbox, inbox) = Outbox::new(settings.outbox_capacity);
    let services = Services {
        backend: fake.clone(),
        broker: broker.clone(),
        settings: Arc::new(settings),
        meters: Arc::new(Meters::new()),
    };
    Harness {
        fake,
        broker,
        session: Session::new(1, services, Peer::default(), outbox),
        inbox,
        out: Frames::new(),
    }
}

impl Harness {
    /// Publishes through the broker what `Fake::append` added.
    fn publish(&self, events: &[Event]) {
        for e in events {
            self.broker.publish(Delivery::new(e).unwrap());
        }
    }

    /// Feeds everything queued in the inbox to the session.
    async fn pump(&mut self) {
        while let Some(d) = self.inbox.try_recv() {
            self.session.deliver(&d, &mut self.out).await;
        }
    }

    async fn send(&mut self, f: ClientFrame) {
        self.session.handle(f, &mut self.out).await;
    }

    /// The frames written since the last call, decoded.
    fn written(&mut self) -> Vec<ServerFrame> {
        self.out
            .drain(..)
            .map(|f| serde_json::from_str(f.as_str()).unwrap())
            .collect()
    }

    /// The seqs of the event frames written since the last call.
    fn seqs(&mut self) -> Vec<u64> {
        self.written()
            .into_iter()
            .map(|f| match f {
                ServerFrame::Event(e) => e.version.seq,
                other => panic!("expected only events, got {other:?}"),
            })
            .collect()
    }
}

pub(super) fn subscribe(topic: Topic, since: Option<Version>) -> ClientFrame {
    ClientFrame::Subscribe { topic, since }
}

pub(super) fn ticker() -> Topic {
    Topic::ticker("ACME").unwrap()
}
