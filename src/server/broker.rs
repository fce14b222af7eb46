//! `Broker`: fan-out of committed events to the connections subscribed to
//! their topic (ssr only). In-process now (`LocalBroker`); a PostgreSQL
//! LISTEN/NOTIFY backplane will implement the same trait.
//!
//! Where events come from: durable events arrive from the store's commit
//! feed (`pump`), in commit order; ephemeral events from `EphemeralLogs`,
//! published under its lock. No request handler publishes, so none can
//! forget to, or be cancelled before it does, and concurrent writers never
//! reach subscribers out of order.
//!
//! Concurrency: `publish` never waits for a connection and never awaits.
//! Each event is serialized once into a `Delivery` whose frame bytes every
//! subscriber shares. A connection that keeps up gets it written to its
//! socket by `publish` itself (one non-blocking write, `realtime::wire`);
//! otherwise it goes to the connection's bounded `Outbox`; when that is
//! full the delivery is dropped *for that connection only* and the topic
//! is marked lagged, and the connection catches up by its topic's policy
//! (from the log for lossless topics, with the newest value for latest-wins
//! ones). A slow consumer never slows the publisher or other consumers. The
//! subscriber map is behind a std `RwLock` held only for map operations
//! (a publish copies its topic's subscribers out), never across an await
//! or a socket write.

use super::mailbox::Mailbox;
use super::metrics::Meters;
use super::realtime::frame::Frame;
use super::realtime::wire::{Offer, Wire};
use super::store::Feed;
use crate::protocol::{Event, ServerFrame, Topic, Version};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::Notify;

pub type ConnId = u64;

/// One event, ready to write to any number of connections.
#[derive(Debug)]
pub struct Delivery {
    pub topic: Topic,
    pub version: Version,
    /// The `event` server frame, serialized once.
    pub frame: Frame,
}

impl Delivery {
    /// `None` (logged) if the event cannot be serialized.
    pub fn new(event: &Event) -> Option<Arc<Self>> {
        Some(Arc::new(Delivery {
            topic: event.topic,
            version: event.version,
            frame: Frame::encode_shared(&ServerFrame::Event(event.clone()))?,
        }))
    }
}

/// Keeps, of each latest-wins topic's deliveries in `batch` (in queue
/// order), only the last, the newest: the client would replace the others
/// before it could show them. Lossless deliveries all stay, in order.
pub fn newest_only(batch: &mut Vec<Arc<Delivery>>) {
    use crate::protocol::Policy;
    let latest = |d: &Arc<Delivery>| d.topic.policy() == Policy::LatestWins;
    if batch.iter().filter(|d| latest(d)).nth(1).is_none() {
        return;
    }
    let mut seen = HashSet::new();
    let mut keep: Vec<bool> = batch
        .iter()
        .rev()
        .map(|d| !latest(d) || seen.insert(d.topic))
        .collect();
    keep.reverse();
    let mut keep = keep.into_iter();
    batch.retain(|_| keep.next().unwrap_or(true));
}

/// A connection's inbound queue of deliveries, and, over plain TCP, its
/// wire: while the connection's task is parked the broker writes its
/// events itself (`realtime::wire`).
///
/// The queue is a `Mailbox` bounded by `capacity`: no memory until
/// something is queued.
pub struct Outbox {
    queue: Mailbox<Arc<Delivery>>,
    capacity: usize,
    lagged: Mutex<HashSet<Topic>>,
    notify: Notify,
    dropped: Option<metrics::Counter>,
    wire: Option<Arc<Wire>>,
}

/// The receiving end of an `Outbox`, read by the connection's task.
pub struct Inbox(Arc<Outbox>);

impl Inbox {
    /// Moves up to `limit` deliveries to `buf`, waiting for at least one;
    /// how many. Cancel safe: deliveries are taken only when returned.
    pub async fn recv_many(&mut self, buf: &mut Vec<Arc<Delivery>>, limit: usize) -> usize {
        self.0.queue.take_some(buf, limit).await
    }

    /// Moves up to `limit` deliveries to `buf` without waiting; how many.
    pub fn take(&mut self, buf: &mut Vec<Arc<Delivery>>, limit: usize) -> usize {
        self.0.queue.take(buf, limit)
    }

    /// The next delivery, waiting for one.
    pub async fn recv(&mut self) -> Arc<Delivery> {
        self.0.queue.pop().await
    }

    /// The next delivery, if one is queued.
    pub fn try_recv(&mut self) -> Option<Arc<Delivery>> {
        self.0.queue.try_pop()
    }

    pub fn len(&self) -> usize {
        self.0.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.queue.is_empty()
    }
}

impl Outbox {
    pub fn new(capacity: usize) -> (Arc<Self>, Inbox) {
        Self::counted(capacity, None, None)
    }

    /// An outbox that counts the deliveries it drops for lack of room, with
    /// the connection's wire if it has one.
    pub fn counted(
        capacity: usize,
        dropped: Option<metrics::Counter>,
        wire: Option<Arc<Wire>>,
    ) -> (Arc<Self>, Inbox) {
        let outbox = Arc::new(Outbox {
            queue: Mailbox::default(),
            capacity: capacity.max(1),
            lagged: Mutex::new(HashSet::new()),
            notify: Notify::new(),
            dropped,
            wire,
        });
        (outbox.clone(), Inbox(outbox))
    }

    /// The connection's wire, if the broker may write to it.
    pub fn wire(&self) -> Option<&Arc<Wire>> {
        self.wire.as_ref()
    }

    /// Hands `delivery` to the connection: written at once by its wire if
    /// it can, else queued.
    fn push(&self, delivery: &Arc<Delivery>) -> Offer {
        match &self.wire {
            Some(wire) => wire.offer(delivery, || self.queue(delivery)),
            None => {
                self.queue(delivery);
                Offer::Queued
            }
        }
    }

    fn queue(&self, delivery: &Arc<Delivery>) {
        if self.queue.push(delivery.clone(), self.capacity).is_ok() {
            return;
        }
        if let Some(c) = &self.dropped {
            c.increment(1);
        }
        if let Ok(mut lagged) = self.lagged.lock() {
            lagged.insert(delivery.topic);
        }
        self.notify.notify_one();
    }

    /// Waits until a delivery was dropped for lack of room.
    pub async fn lagged(&self) {
        self.notify.notified().await
    }

    /// The topics whose deliveries were dropped since the last call.
    pub fn take_lagged(&self) -> Vec<Topic> {
        match self.lagged.lock() {
            Ok(mut set) => set.drain().collect(),
            Err(_) => Vec::new(),
        }
    }
}

pub trait Broker: Send + Sync + 'static {
    /// Delivers to every current subscriber of `delivery.topic`. Called by
    /// the logs only (`pump`, `EphemeralLogs`), in each topic's seq order.
    fn publish(&self, delivery: Arc<Delivery>);
    fn subscribe(&self, topic: Topic, conn: ConnId, outbox: Arc<Outbox>);
    fn unsubscribe(&self, topic: Topic, conn: ConnId);
    fn subscribers(&self, topic: Topic) -> usize;
}

/// Fan-out within this process.
#[derive(Default)]
pub struct LocalBroker {
    topics: RwLock<HashMap<Topic, HashMap<ConnId, Arc<Outbox>>>>,
    /// Counts the events written by wires (those written by connection
    /// tasks are counted by their sessions).
    meters: Meters,
}

impl Broker for LocalBroker {
    fn publish(&self, delivery: Arc<Delivery>) {
        // The subscribers, taken under the lock and served outside it: the
        // writes below can take milliseconds, and (un)subscribing must not
        // wait for them. One registered meanwhile read the topic's log after
        // registering, so it has this event from there.
        let subs: Vec<Arc<Outbox>> = match self.topics.read() {
            Ok(topics) => match topics.get(&delivery.topic) {
                Some(subs) => subs.values().cloned().collect(),
                None => return,
            },
            Err(_) => return,
        };
        // Written here, on the publishing thread: with several workers the
        // runtime's others take the rest of the work meanwhile.
        // (`block_in_place` around a large fan-out was measured and made it
        // worse: bench/results/ab-block-in-place-2026-11-28.txt.)
        let (mut written, mut coalesced) = (0, 0);
        for outbox in &subs {
            if let Offer::Written { skipped } = outbox.push(&delivery) {
                written += 1;
                coalesced += skipped;
            }
        }
        if coalesced > 0 {
            self.meters.coalesced.increment(coalesced);
        }
        if written > 0 {
            self.meters.wire_writes.increment(written);
            let mut counts = super::metrics::KindCounts::default();
            counts.add(delivery.topic.kind(), written);
            self.meters.events_out(counts);
        }
    }

    fn subscribe(&self, topic: Topic, conn: ConnId, outbox: Arc<Outbox>) {
        if let Ok(mut topics) = self.topics.write() {
            topics.entry(topic).or_default().insert(conn, outbox);
        }
    }

    fn unsubscribe(&self, topic: Topic, conn: ConnId) {
        if let Ok(mut topics) = self.topics.write() {
            if let Some(subs) = topics.get_mut(&topic) {
                subs.remove(&conn);
                if subs.is_empty() {
                    topics.remove(&topic);
                }
            }
        }
    }

    fn subscribers(&self, topic: Topic) -> usize {
        self.topics
            .read()
            .map(|t| t.get(&topic).map_or(0, HashMap::len))
            .unwrap_or(0)
    }
}

/// Publishes the store's committed events, in commit order, until the store
/// closes its feed. The one consumer of the feed.
pub async fn pump(
    mut feed: Feed,
    broker: Arc<dyn Broker>,
    meters: Arc<Meters>,
    heads: Arc<crate::server::logs::Heads>,
) {
    while let Some(batch) = feed.next().await {
        for event in &batch {
            meters.event_in(event.topic.kind());
            // Before the broker hands it out (see `Heads`).
            heads.saw(event);
            if let Some(delivery) = Delivery::new(event) {
                broker.publish(delivery);
            }
        }
    }
    tracing::debug!("the store's feed ended");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ChatMessage, EventData};

    fn delivery(seq: u64) -> Arc<Delivery> {
        Delivery::new(&Event {
            topic: Topic::room(1),
            version: Version::new(1, seq),
            data: EventData::Message(ChatMessage {
                client_id: uuid::Uuid::from_u128(seq as u128),
                author: "a".into(),
                body: "b".into(),
                sent_at: 0,
                ..Default::default()
            }),
        })
        .expect("serializable")
    }

    fn tick(symbol: &str, seq: u64) -> Arc<Delivery> {
        Delivery::new(&Event {
            topic: Topic::ticker(symbol).expect("valid symbol"),
            version: Version::new(1, seq),
            data: EventData::Tick(crate::protocol::Tick { price: 1.0, ts: 0 }),
        })
        .expect("serializable")
    }

    #[test]
    fn only_the_newest_value_of_each_latest_wins_topic_stays_and_rooms_keep_everything() {
        let mut batch = vec![
            tick("A", 1),
            delivery(1),
            tick("B", 1),
            tick("A", 2),
            delivery(2),
            tick("A", 3),
            delivery(3),
        ];
        newest_only(&mut batch);
        let got: Vec<(String, u64)> = batch
            .iter()
            .map(|d| (d.topic.to_string(), d.version.seq))
            .collect();
        let want = [
            ("room:1", 1),
            ("ticker:B", 1),
            ("room:1", 2),
            ("ticker:A", 3),
            ("room:1", 3),
        ];
        let want: Vec<(String, u64)> = want.iter().map(|(t, s)| (t.to_string(), *s)).collect();
        assert_eq!(
            got, want,
            "ticks collapse to the newest; every room event stays, in order"
        );

        let mut single = vec![tick("A", 1), delivery(1)];
        newest_only(&mut single);
        assert_eq!(single.len(), 2, "nothing to collapse");
    }

    #[tokio::test]
    async fn fans_out_to_subscribers_of_the_topic_only() {
        let broker = LocalBroker::default();
        let (a, mut ra) = Outbox::new(8);
        let (b, mut rb) = Outbox::new(8);
        broker.subscribe(Topic::room(1), 1, a);
        broker.subscribe(Topic::room(2), 2, b);
        broker.publish(delivery(1));
        let got = ra.recv().await;
        assert_eq!(got.version.seq, 1);
        assert!(got.frame.as_str().starts_with(r#"{"type":"event""#));
        assert!(rb.try_recv().is_none());
        broker.unsubscribe(Topic::room(1), 1);
        assert_eq!(broker.subscribers(Topic::room(1)), 0);
    }

    #[tokio::test]
    async fn an_inbox_takes_at_most_its_limit_waits_when_empty_and_gives_memory_back() {
        let (outbox, mut inbox) = Outbox::new(512);
        for s in 1..=200 {
            outbox.push(&delivery(s));
        }
        assert_eq!(inbox.len(), 200);
        let mut buf = Vec::new();
        assert_eq!(inbox.recv_many(&mut buf, 64).await, 64);
        assert_eq!(buf.last().map(|d| d.version.seq), Some(64));
        buf.clear();
        while inbox.recv_many(&mut buf, 64).await > 0 && !inbox.is_empty() {}
        assert_eq!(buf.len(), 136, "the rest, in order");
        assert!(buf
            .windows(2)
            .all(|w| w[0].version.seq + 1 == w[1].version.seq));
        assert_eq!(outbox.queue.capacity(), 0, "memory given back");
        // Empty: waits until something is queued, then takes it.
        let waiting = tokio::spawn(async move {
            let mut buf = Vec::new();
            inbox.recv_many(&mut buf, 64).await;
            buf
        });
        tokio::task::yield_now().await;
        outbox.push(&delivery(201));
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("task");
        assert_eq!(got.len(), 1);
    }

    #[tokio::test]
    async fn a_full_outbox_marks_the_topic_lagged_without_blocking() {
        let broker = LocalBroker::default();
        let (slow, _rx) = Outbox::new(1);
        let (fast, mut rf) = Outbox::new(8);
        broker.subscribe(Topic::room(1), 1, slow.clone());
        broker.subscribe(Topic::room(1), 2, fast);
        for s in 1..=3 {
            broker.publish(delivery(s));
        }
        assert_eq!(slow.take_lagged(), vec![Topic::room(1)]);
        assert!(slow.take_lagged().is_empty());
        for s in 1..=3 {
            assert_eq!(rf.recv().await.version.seq, s);
        }
    }
}
