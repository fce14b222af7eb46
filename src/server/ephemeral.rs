//! Ephemeral topics (`ticker:`, `presence:`): versioned logs kept only in
//! memory (ssr only).
//!
//! Each topic keeps its newest `window` events, enough for a reconnecting
//! client to resume; older versions answer `reset`. All topics share one
//! epoch, drawn at process start, so a restart is seen as a new epoch and
//! clients reload. `publish_tick` assigns the seq and hands the event to the
//! broker (`send`), one caller per topic at a time, so deliveries leave in
//! seq order: publishing is the log's job, never its caller's.
//!
//! Concurrency: a std `Mutex` guards the topic map, held only for map work,
//! never across an await nor a fan-out; a second one the outgoing event of
//! each topic being sent (taken inside the first, never the other way).

use super::broker::{Broker, Delivery};
use super::logs::TopicLog;
use super::store::PageLimit;
use crate::error::AppError;
use crate::model::Backfill;
use crate::protocol::{Event, EventData, Lobby, Presence, Tick, Topic, TopicKind, Unread, Version};
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The encoded size of one tick event, about (for page byte limits).
const TICK_BYTES: usize = 128;

pub struct EphemeralLogs {
    epoch: u32,
    window: usize,
    /// Most topics at once (each holds up to `window` events).
    max_topics: usize,
    /// Ticker topics so far (presence topics do not count).
    tickers: AtomicUsize,
    topics: Mutex<HashMap<Topic, VecDeque<Event>>>,
    /// Per topic being published: its newest event not yet handed to the
    /// broker (`send`).
    outgoing: Mutex<HashMap<Topic, Option<Arc<Delivery>>>>,
}

impl EphemeralLogs {
    pub fn new(window: usize, max_topics: usize) -> Self {
        EphemeralLogs {
            epoch: rand::random_range(1..(1u32 << 31)),
            window: window.max(1),
            max_topics,
            tickers: AtomicUsize::new(0),
            topics: Mutex::new(HashMap::new()),
            outgoing: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, HashMap<Topic, VecDeque<Event>>>, AppError> {
        self.topics.lock().map_err(|_| {
            tracing::error!("the ephemeral logs' lock is poisoned");
            AppError::Internal
        })
    }

    fn head_of(&self, log: Option<&VecDeque<Event>>) -> Version {
        Version::new(
            self.epoch,
            log.and_then(|l| l.back()).map_or(0, |e| e.version.seq),
        )
    }

    /// Validates a tick, appends it to its ticker topic and publishes it.
    pub fn publish_tick(
        &self,
        topic: Topic,
        tick: Tick,
        broker: &dyn Broker,
    ) -> Result<Event, AppError> {
        match topic.kind() {
            TopicKind::Ticker => {}
            TopicKind::Room | TopicKind::Presence | TopicKind::User | TopicKind::Lobby => {
                return Err(AppError::Validation(format!("{topic} does not take ticks")))
            }
        }
        if !tick.price.is_finite() {
            return Err(AppError::Validation("a price is a finite number".into()));
        }
        let mut topics = self.lock()?;
        if !topics.contains_key(&topic) {
            // Ticker topics are never removed: counting new ones is enough.
            if self.tickers.load(Ordering::Relaxed) >= self.max_topics {
                return Err(AppError::Limit(format!(
                    "at most {} ticker topics",
                    self.max_topics
                )));
            }
            self.tickers.fetch_add(1, Ordering::Relaxed);
        }
        let (event, send) = self.append(&mut topics, topic, EventData::Tick(tick), self.window);
        drop(topics);
        self.send(send, broker);
        Ok(event)
    }

    /// Publishes who is in a room (the server's presence board calls it).
    /// Only the newest state is kept: a latest-wins topic needs no more.
    pub fn publish_presence(
        &self,
        topic: Topic,
        presence: Presence,
        broker: &dyn Broker,
    ) -> Result<Event, AppError> {
        if topic.kind() != TopicKind::Presence {
            return Err(AppError::Validation(format!(
                "{topic} is not a presence topic"
            )));
        }
        let mut topics = self.lock()?;
        let (event, send) = self.append(&mut topics, topic, EventData::Presence(presence), 1);
        drop(topics);
        self.send(send, broker);
        Ok(event)
    }

    /// Publishes an account's summary (the unread board calls it); only the
    /// newest is kept.
    pub fn publish_unread(
        &self,
        topic: Topic,
        unread: Unread,
        broker: &dyn Broker,
    ) -> Result<Event, AppError> {
        if topic.kind() != TopicKind::User {
            return Err(AppError::Validation(format!("{topic} is not a user topic")));
        }
        let mut topics = self.lock()?;
        let (event, send) = self.append(&mut topics, topic, EventData::Unread(unread), 1);
        drop(topics);
        self.send(send, broker);
        Ok(event)
    }

    /// Says the public room list changed (a room was created).
    pub fn publish_lobby(&self, lobby: Lobby, broker: &dyn Broker) -> Result<Event, AppError> {
        let mut topics = self.lock()?;
        let (event, send) = self.append(&mut topics, Topic::Lobby, EventData::Lobby(lobby), 1);
        drop(topics);
        self.send(send, broker);
        Ok(event)
    }

    /// Appends `data` as `topic`'s next event, keeping `window` events, and
    /// makes it the topic's outgoing event, under the logs' lock (so the
    /// outgoing event only ever moves forward). Returns the event, and
    /// `Some(topic)` if this caller is to hand the topic's outgoing events to
    /// the broker (`send`): nobody else is.
    fn append(
        &self,
        topics: &mut HashMap<Topic, VecDeque<Event>>,
        topic: Topic,
        data: EventData,
        window: usize,
    ) -> (Event, Option<Topic>) {
        let log = topics.entry(topic).or_default();
        let seq = log.back().map_or(0, |e| e.version.seq) + 1;
        let event = Event {
            topic,
            version: Version::new(self.epoch, seq),
            data,
        };
        while log.len() >= window {
            log.pop_front();
        }
        log.push_back(event.clone());
        let Some(delivery) = Delivery::new(&event) else {
            return (event, None);
        };
        let Ok(mut outgoing) = self.outgoing.lock() else {
            return (event, None);
        };
        let send = match outgoing.get_mut(&topic) {
            // Someone is sending this topic: they send this event next,
            // instead of the one not sent yet, if any (latest wins).
            Some(slot) => {
                *slot = Some(delivery);
                None
            }
            None => {
                outgoing.insert(topic, Some(delivery));
                Some(topic)
            }
        };
        (event, send)
    }

    /// Hands `topic`'s outgoing events to the broker, newest first-come,
    /// until none is left, outside the logs' lock: a fan-out to many
    /// subscribers (which writes to their sockets, `realtime::wire`) holds
    /// up neither other topics nor readers of the logs. One caller at a time
    /// sends a topic, so its events leave in seq order; events appended
    /// meanwhile replace one another, and only the newest is sent (every
    /// ephemeral topic is latest-wins): a topic published faster than it can
    /// be fanned out sends fewer, newer events instead of queueing them.
    fn send(&self, topic: Option<Topic>, broker: &dyn Broker) {
        let Some(topic) = topic else { return };
        loop {
            let next = match self.outgoing.lock() {
                Ok(mut outgoing) => match outgoing.get_mut(&topic).and_then(Option::take) {
                    Some(d) => d,
                    None => {
                        outgoing.remove(&topic);
                        return;
                    }
                },
                Err(_) => return,
            };
            broker.publish(next);
        }
    }
}

#[async_trait]
impl TopicLog for EphemeralLogs {
    async fn head(&self, topic: Topic) -> Result<Version, AppError> {
        Ok(self.head_of(self.lock()?.get(&topic)))
    }

    async fn since(
        &self,
        topic: Topic,
        after: Version,
        limit: PageLimit,
    ) -> Result<Backfill, AppError> {
        // A tick is a few dozen bytes: bound the page by count and by an
        // estimate of its encoded size.
        let limit = limit.events.min((limit.bytes / TICK_BYTES).max(1) as u32);
        let topics = self.lock()?;
        let log = topics.get(&topic);
        let head = self.head_of(log);
        let oldest = log
            .and_then(|l| l.front())
            .map_or(head.seq + 1, |e| e.version.seq);
        if after.epoch != self.epoch || after.seq > head.seq || after.seq + 1 < oldest {
            return Ok(Backfill::reset(topic, head));
        }
        let mut events: Vec<Event> = log
            .into_iter()
            .flatten()
            .filter(|e| e.version.seq > after.seq)
            .take(limit as usize + 1)
            .cloned()
            .collect();
        let has_more = events.len() > limit as usize;
        events.truncate(limit as usize);
        Ok(Backfill {
            topic,
            version: head,
            events,
            has_more,
            reset: false,
        })
    }

    async fn latest(&self, topic: Topic) -> Result<(Version, Option<Event>), AppError> {
        let topics = self.lock()?;
        let log = topics.get(&topic);
        Ok((self.head_of(log), log.and_then(|l| l.back()).cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::broker::{LocalBroker, Outbox};

    fn events(n: u32) -> PageLimit {
        PageLimit {
            events: n,
            bytes: usize::MAX,
        }
    }

    fn tick(n: i64) -> Tick {
        Tick {
            price: n as f64,
            ts: n,
        }
    }

    /// A broker whose fan-out is slow, that records what it is handed and
    /// whether the logs' lock was free meanwhile.
    struct Slow {
        logs: Arc<EphemeralLogs>,
        got: Mutex<Vec<u64>>,
        lock_free: std::sync::atomic::AtomicBool,
    }

    impl Broker for Slow {
        fn publish(&self, delivery: Arc<Delivery>) {
            // Held by this thread, the lock stays held however often it is
            // tried; held by another publisher (appending its tick), it is
            // free again at once. One failed try alone cannot tell them apart.
            let free = (0..1000).any(|_| {
                let free = self.logs.topics.try_lock().is_ok();
                if !free {
                    std::thread::yield_now();
                }
                free
            });
            if !free {
                self.lock_free.store(false, Ordering::SeqCst);
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
            self.got.lock().unwrap().push(delivery.version.seq);
        }
        fn subscribe(&self, _: Topic, _: crate::server::broker::ConnId, _: Arc<Outbox>) {}
        fn unsubscribe(&self, _: Topic, _: crate::server::broker::ConnId) {}
        fn subscribers(&self, _: Topic) -> usize {
            0
        }
    }

    /// Four threads publish one ticker through a slow fan-out: the logs stay
    /// free for others meanwhile, events leave in seq order, values that
    /// came while one was being sent collapse to the newest, and the newest
    /// of all is always sent.
    #[test]
    fn a_slow_fan_out_sends_fewer_newer_events_in_order_outside_the_lock() {
        let logs = Arc::new(EphemeralLogs::new(8, 10));
        let broker = Slow {
            logs: logs.clone(),
            got: Mutex::new(Vec::new()),
            lock_free: true.into(),
        };
        let topic = Topic::ticker("ABC").unwrap();
        std::thread::scope(|s| {
            for t in 0..4 {
                let (logs, broker) = (&*logs, &broker);
                s.spawn(move || {
                    for n in 0..25 {
                        logs.publish_tick(topic, tick(t * 100 + n), broker).unwrap();
                    }
                });
            }
        });
        let got = broker.got.lock().unwrap().clone();
        assert!(
            broker.lock_free.load(Ordering::SeqCst),
            "published under the lock"
        );
        assert!(got.windows(2).all(|w| w[0] < w[1]), "in seq order: {got:?}");
        assert_eq!(got.last(), Some(&100), "the newest is sent");
        assert!(got.len() < 100, "values collapsed while one was sent");
        assert!(
            logs.outgoing.lock().unwrap().is_empty(),
            "nothing left over"
        );
    }

    #[tokio::test]
    async fn appends_in_order_publish_and_keep_a_window() {
        let logs = EphemeralLogs::new(3, 10);
        let broker = LocalBroker::default();
        let topic = Topic::ticker("ABC").unwrap();
        let (outbox, mut rx) = Outbox::new(16);
        broker.subscribe(topic, 1, outbox);
        assert_eq!(logs.head(topic).await.unwrap().seq, 0);
        assert_eq!(logs.latest(topic).await.unwrap().1, None);
        for n in 1..=5 {
            logs.publish_tick(topic, tick(n), &broker).unwrap();
        }
        for n in 1..=5 {
            assert_eq!(rx.recv().await.version.seq, n);
        }
        let head = logs.head(topic).await.unwrap();
        assert_eq!(head.seq, 5);
        let (at, newest) = logs.latest(topic).await.unwrap();
        assert_eq!((at, newest.unwrap().version), (head, head));
        let b = logs
            .since(topic, Version::new(head.epoch, 2), events(10))
            .await
            .unwrap();
        assert_eq!(
            b.events.iter().map(|e| e.version.seq).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        let gone = logs
            .since(topic, Version::new(head.epoch, 1), events(10))
            .await
            .unwrap();
        assert!(gone.reset, "the window starts at 3: 2 is gone");
        assert_eq!(gone.version, head, "a reset names the head");
        let other_epoch = Version::new(head.epoch ^ 1, 4);
        assert!(
            logs.since(topic, other_epoch, events(10))
                .await
                .unwrap()
                .reset
        );
        let page = logs
            .since(topic, Version::new(head.epoch, 2), events(2))
            .await
            .unwrap();
        assert!(page.has_more && page.events.len() == 2);
        let other = Topic::ticker("XYZ").unwrap();
        let empty = logs
            .since(other, Version::new(head.epoch, 0), events(10))
            .await
            .unwrap();
        assert!(!empty.reset, "an empty topic resumes from 0");
    }

    #[test]
    fn refuses_rooms_non_finite_prices_and_topics_beyond_the_cap() {
        let logs = EphemeralLogs::new(3, 1);
        let broker = LocalBroker::default();
        assert!(matches!(
            logs.publish_tick(Topic::room(1), tick(1), &broker),
            Err(AppError::Validation(_))
        ));
        let nan = Tick {
            price: f64::NAN,
            ts: 0,
        };
        let topic = Topic::ticker("A").unwrap();
        assert!(matches!(
            logs.publish_tick(topic, nan, &broker),
            Err(AppError::Validation(_))
        ));
        logs.publish_tick(topic, tick(1), &broker).unwrap();
        let second = Topic::ticker("B").unwrap();
        assert!(matches!(
            logs.publish_tick(second, tick(1), &broker),
            Err(AppError::Limit(_))
        ));
        assert!(
            logs.publish_tick(topic, tick(2), &broker).is_ok(),
            "existing topics go on"
        );
    }
}
