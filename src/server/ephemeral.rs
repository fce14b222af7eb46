//! Ephemeral topics (`ticker:`, `presence:`): versioned logs kept only in
//! memory (ssr only).
//!
//! Each topic keeps its newest `window` events, enough for a reconnecting
//! client to resume; older versions answer `reset`. All topics share one
//! epoch, drawn at process start, so a restart is seen as a new epoch and
//! clients reload. `publish_tick` assigns the seq and hands the event to the
//! broker while holding the topic map's lock, so deliveries leave in seq
//! order: publishing is the log's job, never its caller's.
//!
//! Concurrency: a std `Mutex` guards the topic map, held only for map work
//! and a non-blocking `publish`, never across an await.

use super::broker::{Broker, Delivery};
use super::logs::TopicLog;
use super::store::PageLimit;
use crate::error::AppError;
use crate::model::Backfill;
use crate::protocol::{Event, EventData, Lobby, Presence, Tick, Topic, TopicKind, Unread, Version};
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

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
}

impl EphemeralLogs {
    pub fn new(window: usize, max_topics: usize) -> Self {
        EphemeralLogs {
            epoch: rand::random_range(1..(1u32 << 31)),
            window: window.max(1),
            max_topics,
            tickers: AtomicUsize::new(0),
            topics: Mutex::new(HashMap::new()),
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
        self.append(
            &mut topics,
            topic,
            EventData::Tick(tick),
            self.window,
            broker,
        )
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
        self.append(&mut topics, topic, EventData::Presence(presence), 1, broker)
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
        self.append(&mut topics, topic, EventData::Unread(unread), 1, broker)
    }

    /// Says the public room list changed (a room was created).
    pub fn publish_lobby(&self, lobby: Lobby, broker: &dyn Broker) -> Result<Event, AppError> {
        let mut topics = self.lock()?;
        self.append(
            &mut topics,
            Topic::Lobby,
            EventData::Lobby(lobby),
            1,
            broker,
        )
    }

    /// Appends `data` as `topic`'s next event, keeping `window` events, and
    /// publishes it while the lock is held (so deliveries leave in order).
    fn append(
        &self,
        topics: &mut HashMap<Topic, VecDeque<Event>>,
        topic: Topic,
        data: EventData,
        window: usize,
        broker: &dyn Broker,
    ) -> Result<Event, AppError> {
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
        if let Some(delivery) = Delivery::new(&event) {
            broker.publish(delivery);
        }
        Ok(event)
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
            assert_eq!(rx.recv().await.unwrap().version.seq, n);
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
