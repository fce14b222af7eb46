//! Ephemeral topics (`ticker:`): versioned logs kept only in memory (ssr only).
//!
//! Each topic keeps its newest `window` events, enough for a reconnecting
//! client to resume; older versions answer `reset`. All topics share one
//! epoch, drawn at process start, so a restart is seen as a new epoch and
//! clients reload. `append` assigns the seq and publishes to the broker while
//! holding the topic's lock, so deliveries leave in seq order.
//!
//! Concurrency: a std `Mutex` per process guards the topic map, held only for
//! map work and a non-blocking `publish`, never across an await.

use super::broker::{Broker, Delivery};
use crate::model::Backfill;
use crate::protocol::{Event, EventData, Topic, Version};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

pub struct EphemeralLogs {
    epoch: u32,
    window: usize,
    topics: Mutex<HashMap<Topic, VecDeque<Event>>>,
}

impl EphemeralLogs {
    pub fn new(window: usize) -> Self {
        EphemeralLogs {
            epoch: rand::random_range(1..(1u32 << 31)),
            window: window.max(1),
            topics: Mutex::new(HashMap::new()),
        }
    }

    fn head_of(&self, log: Option<&VecDeque<Event>>) -> Version {
        Version::new(
            self.epoch,
            log.and_then(|l| l.back()).map_or(0, |e| e.version.seq),
        )
    }

    /// The topic's newest version (seq 0 for a topic with no events yet).
    pub fn head(&self, topic: &Topic) -> Version {
        match self.topics.lock() {
            Ok(topics) => self.head_of(topics.get(topic)),
            Err(_) => Version::new(self.epoch, 0),
        }
    }

    /// Assigns the next seq, keeps the event in the window and publishes it.
    pub fn append(&self, topic: &Topic, data: EventData, broker: &dyn Broker) -> Option<Event> {
        let mut topics = self.topics.lock().ok()?;
        let log = topics.entry(topic.clone()).or_default();
        let seq = log.back().map_or(0, |e| e.version.seq) + 1;
        let event = Event {
            topic: topic.clone(),
            version: Version::new(self.epoch, seq),
            data,
        };
        if log.len() == self.window {
            log.pop_front();
        }
        log.push_back(event.clone());
        broker.publish(Delivery::new(&event));
        Some(event)
    }

    /// Events after `after`, if the window still holds all of them.
    pub fn since(&self, topic: &Topic, after: Version, limit: u32) -> Backfill {
        let topics = match self.topics.lock() {
            Ok(t) => t,
            Err(_) => return reset(topic, Version::new(self.epoch, 0)),
        };
        let log = topics.get(topic);
        let head = self.head_of(log);
        let oldest = log
            .and_then(|l| l.front())
            .map_or(head.seq + 1, |e| e.version.seq);
        if after.epoch != self.epoch || after.seq > head.seq || after.seq + 1 < oldest {
            return reset(topic, head);
        }
        let events: Vec<Event> = log
            .into_iter()
            .flatten()
            .filter(|e| e.version.seq > after.seq)
            .take(limit as usize + 1)
            .cloned()
            .collect();
        let has_more = events.len() > limit as usize;
        Backfill {
            topic: topic.clone(),
            version: head,
            events: events.into_iter().take(limit as usize).collect(),
            has_more,
            reset: false,
        }
    }
}

fn reset(topic: &Topic, head: Version) -> Backfill {
    Backfill {
        topic: topic.clone(),
        version: head,
        events: Vec::new(),
        has_more: false,
        reset: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Tick;
    use crate::server::broker::{LocalBroker, Outbox};

    fn tick(n: i64) -> EventData {
        EventData::Tick(Tick {
            price: n as f64,
            ts: n,
        })
    }

    #[tokio::test]
    async fn appends_in_order_publish_and_keep_a_window() {
        let logs = EphemeralLogs::new(3);
        let broker = LocalBroker::default();
        let topic = Topic::ticker("ABC").unwrap();
        let (outbox, mut rx) = Outbox::new(16);
        broker.subscribe(&topic, 1, outbox);
        assert_eq!(logs.head(&topic).seq, 0);
        for n in 1..=5 {
            logs.append(&topic, tick(n), &broker).unwrap();
        }
        for n in 1..=5 {
            assert_eq!(rx.recv().await.unwrap().version.seq, n);
        }
        let head = logs.head(&topic);
        assert_eq!(head.seq, 5);
        let b = logs.since(&topic, Version::new(head.epoch, 2), 10);
        assert_eq!(
            b.events.iter().map(|e| e.version.seq).collect::<Vec<_>>(),
            vec![3, 4, 5]
        );
        assert!(
            logs.since(&topic, Version::new(head.epoch, 1), 10).reset,
            "the window starts at 3: 2 is gone"
        );
        assert!(
            logs.since(&topic, Version::new(head.epoch ^ 1, 4), 10)
                .reset,
            "another epoch"
        );
        let page = logs.since(&topic, Version::new(head.epoch, 2), 2);
        assert!(page.has_more && page.events.len() == 2);
        let other = Topic::ticker("XYZ").unwrap();
        assert!(
            !logs.since(&other, Version::new(head.epoch, 0), 10).reset,
            "an empty topic resumes from 0"
        );
    }
}
