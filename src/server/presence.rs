//! Presence (ssr only): who is in each chat room now, and who is typing,
//! published on the room's `presence:<id>` topic (ephemeral, latest-wins).
//!
//! - An account is **in** a room while at least one of its live connections
//!   signed in with a browser session is subscribed to the room's topic:
//!   each account once, however many tabs. It is **away** while all its
//!   connections in the room are resting: they left the room's topic
//!   because their page is hidden (`unsubscribe{away}`) and are still
//!   connected; it is back when one subscribes again. A closed tab leaves at once; a
//!   crashed tab or a lost network leaves when its connection is closed for
//!   silence, within the heartbeat timeout (`heartbeat-timeout-ms`): no
//!   ghosts. Access tokens (bots, load tools) are never listed.
//! - A **poll** (the polling rungs) counts as a connection while it is
//!   served and waits, and keeps its account listed for a while after it
//!   ends (`linger`, three short-polling intervals): the next poll,
//!   within that, renews it, so an account on a polling rung is listed
//!   steadily and leaves when its polls stop.
//! - **Typing** lasts `TYPING_MS` after the account's last `typing` frame in
//!   the room, and ends at once when it posts there.
//! - Changes are **coalesced**: a room's new state is published at most once
//!   per `COALESCE` (a flood of joins is one event), by one task that runs
//!   only while something is pending (a change, typing or a lingering poll
//!   to end), and never written to the message log. While only lingering
//!   polls are pending it sleeps until the first ends, woken early by a
//!   change.
//!
//! Concurrency: one std `Mutex` over every room's state, held for map work
//! and the non-blocking publish; never across an await.

use super::accounts::User;
use super::broker::Broker;
use super::ephemeral::EphemeralLogs;
use crate::protocol::{Presence, Present, Topic, MAX_PRESENT, TYPING_MS};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::time::{Duration, Instant};

/// Longest a change waits before it is published.
pub const COALESCE: Duration = Duration::from_millis(150);

struct Entry {
    name: String,
    /// Connections of the account subscribed to the room.
    here: u32,
    /// Connections of the account resting from the room (page hidden).
    away: u32,
    typing_until: Option<Instant>,
    /// Listed (not away) until then, after its last poll ended.
    lingers_until: Option<Instant>,
}

impl Entry {
    fn new(name: &str) -> Self {
        Entry {
            name: name.to_owned(),
            here: 0,
            away: 0,
            typing_until: None,
            lingers_until: None,
        }
    }

    /// How the account shows: `None` (not listed), or listed and whether away.
    fn shown(&self) -> Option<bool> {
        let here = self.here > 0 || self.lingers_until.is_some();
        (here || self.away > 0).then_some(!here)
    }

    /// Something will change by itself: typing or lingering to end.
    fn pending(&self) -> bool {
        self.typing_until.is_some() || self.lingers_until.is_some()
    }

    fn count(&mut self, a: Attendance) -> &mut u32 {
        match a {
            Attendance::Here => &mut self.here,
            Attendance::Away => &mut self.away,
        }
    }
}

/// How one connection attends a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attendance {
    /// Subscribed to the room's topic.
    Here,
    /// Left the room's topic because its page is hidden; still connected.
    Away,
}

#[derive(Default)]
struct Room {
    users: HashMap<i64, Entry>,
    dirty: bool,
}

#[derive(Default)]
struct Board {
    rooms: HashMap<i64, Room>,
    /// The flush task is running.
    flushing: bool,
}

pub struct PresenceBoard {
    board: Mutex<Board>,
    /// A change while the flush task sleeps until a lingering poll ends.
    changed: Notify,
    logs: Arc<EphemeralLogs>,
    broker: Arc<dyn Broker>,
}

impl PresenceBoard {
    pub fn new(logs: Arc<EphemeralLogs>, broker: Arc<dyn Broker>) -> Arc<Self> {
        Arc::new(PresenceBoard {
            board: Mutex::new(Board::default()),
            changed: Notify::new(),
            logs,
            broker,
        })
    }

    /// One connection of `user` in `room` goes from `from` to `to` (`None`:
    /// not in the room).
    pub fn connection(
        self: &Arc<Self>,
        room: i64,
        user: &User,
        from: Option<Attendance>,
        to: Option<Attendance>,
    ) {
        if from == to {
            return;
        }
        self.change(room, |r| {
            let entry = match (r.users.get_mut(&user.id), to) {
                (Some(e), _) => e,
                // Only a connection new to the room can add the account.
                (None, Some(_)) if from.is_none() => r
                    .users
                    .entry(user.id)
                    .or_insert_with(|| Entry::new(&user.name)),
                (None, _) => return false,
            };
            let before = entry.shown();
            if let Some(a) = from {
                let n = entry.count(a);
                *n = n.saturating_sub(1);
            }
            if let Some(a) = to {
                *entry.count(a) += 1;
            }
            let after = entry.shown();
            if after.is_none() {
                r.users.remove(&user.id);
            } else if after == Some(true) {
                // Nobody types from a hidden page.
                entry.typing_until = None;
            }
            before != after
        });
    }

    /// A poll of `user` in `room` ends (one connection leaves `Here`): the
    /// account stays listed for `linger` more, unless a later poll says
    /// otherwise. `Duration::ZERO` ends any lingering at once (the room was
    /// lost, the credentials revoked).
    pub fn linger(self: &Arc<Self>, room: i64, user: &User, linger: Duration) {
        let until = Instant::now() + linger;
        self.change(room, |r| {
            let Some(entry) = r.users.get_mut(&user.id) else {
                return false;
            };
            let before = entry.shown();
            entry.here = entry.here.saturating_sub(1);
            entry.lingers_until = match linger.is_zero() {
                true => None,
                false => entry.lingers_until.max(Some(until)),
            };
            before != entry.shown()
        });
    }

    /// `user` typed in `room` (ignored unless they are in it).
    pub fn typing(self: &Arc<Self>, room: i64, user_id: i64) {
        let until = Instant::now() + Duration::from_millis(TYPING_MS);
        self.change(room, |r| match r.users.get_mut(&user_id) {
            Some(e) if e.shown() == Some(false) => {
                let was = e.typing_until.is_some();
                e.typing_until = Some(until);
                !was
            }
            _ => false,
        });
    }

    /// `user` posted in `room`: no longer typing.
    pub fn stop_typing(self: &Arc<Self>, room: i64, user_id: i64) {
        self.change(room, |r| {
            r.users
                .get_mut(&user_id)
                .and_then(|e| e.typing_until.take())
                .is_some()
        });
    }

    /// Applies `f` to `room`; if it says the visible state changed, the room
    /// is published by the flush task.
    fn change(self: &Arc<Self>, room: i64, f: impl FnOnce(&mut Room) -> bool) {
        let Ok(mut board) = self.board.lock() else {
            tracing::error!("the presence board's lock is poisoned");
            return;
        };
        let flushing = board.flushing;
        let r = board.rooms.entry(room).or_default();
        if f(r) {
            r.dirty = true;
        }
        if flushing {
            if r.dirty {
                self.changed.notify_one();
            }
        } else if r.dirty || r.users.values().any(Entry::pending) {
            board.flushing = true;
            tokio::spawn(self.clone().flush_loop());
        }
    }

    async fn flush_loop(self: Arc<Self>) {
        let mut wait = COALESCE;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                // A change is published within `COALESCE`, not when the
                // next lingering poll ends.
                _ = self.changed.notified(), if wait > COALESCE => {
                    tokio::time::sleep(COALESCE).await;
                }
            }
            match self.flush(Instant::now()) {
                Some(next) => wait = next,
                None => return,
            }
        }
    }

    /// Expires typing and lingering, publishes every changed room, forgets
    /// empty ones. Returns how long the task sleeps before the next flush
    /// (`COALESCE` while typing is to expire, else until the first
    /// lingering poll ends); `None` if nothing is pending, when it has
    /// marked itself stopped, under the lock.
    fn flush(&self, now: Instant) -> Option<Duration> {
        let Ok(mut board) = self.board.lock() else {
            return None;
        };
        let (mut typing, mut first_end) = (false, None::<Instant>);
        for (id, room) in board.rooms.iter_mut() {
            room.users.retain(|_, e| {
                let before = e.shown();
                if e.typing_until.is_some_and(|t| t <= now) {
                    e.typing_until = None;
                    room.dirty = true;
                }
                if e.lingers_until.is_some_and(|t| t <= now) {
                    e.lingers_until = None;
                }
                let after = e.shown();
                if after != Some(false) {
                    e.typing_until = None;
                }
                room.dirty |= before != after;
                typing |= e.typing_until.is_some();
                if let Some(t) = e.lingers_until {
                    first_end = Some(first_end.map_or(t, |f| f.min(t)));
                }
                after.is_some()
            });
            if room.dirty {
                room.dirty = false;
                self.publish(*id, room);
            }
        }
        board.rooms.retain(|_, r| !r.users.is_empty());
        let next = match (typing, first_end) {
            (true, _) => Some(COALESCE),
            (false, Some(t)) => Some(t.saturating_duration_since(now).max(COALESCE)),
            (false, None) => None,
        };
        if next.is_none() {
            board.flushing = false;
        }
        next
    }

    fn publish(&self, id: i64, room: &Room) {
        let mut users: Vec<Present> = room
            .users
            .iter()
            .map(|(id, e)| Present {
                id: *id,
                name: e.name.clone(),
                typing: e.typing_until.is_some(),
                away: e.shown() == Some(true),
            })
            .collect();
        users.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        let count = users.len() as u32;
        users.truncate(MAX_PRESENT);
        let presence = Presence { users, count };
        if let Err(e) =
            self.logs
                .publish_presence(Topic::presence(id), presence, self.broker.as_ref())
        {
            tracing::warn!(room = id, error = %e, "presence not published");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Attendance::{Away, Here};
    use super::*;
    use crate::protocol::{Event, EventData, ServerFrame};
    use crate::server::broker::{LocalBroker, Outbox};

    fn user(id: i64, name: &str) -> User {
        User {
            id,
            name: name.into(),
        }
    }

    /// A board, and a subscriber of room 1's presence.
    fn watched_board() -> (Arc<PresenceBoard>, crate::server::broker::Inbox) {
        let logs = Arc::new(EphemeralLogs::new(8, 8));
        let broker = Arc::new(LocalBroker::default());
        let board = PresenceBoard::new(logs, broker.clone());
        let (outbox, rx) = Outbox::new(16);
        broker.subscribe(Topic::presence(1), 1, outbox);
        (board, rx)
    }

    /// The accounts a presence delivery lists.
    fn users(d: &crate::server::broker::Delivery) -> Vec<Present> {
        match serde_json::from_str::<ServerFrame>(d.frame.as_str()).unwrap() {
            ServerFrame::Event(Event {
                data: EventData::Presence(p),
                ..
            }) => {
                assert_eq!(p.count as usize, p.users.len());
                p.users
            }
            other => panic!("{other:?}"),
        }
    }

    /// (name, away) of each account listed.
    fn listed(d: &crate::server::broker::Delivery) -> Vec<(String, bool)> {
        users(d).into_iter().map(|u| (u.name, u.away)).collect()
    }

    /// (name, typing) of each account listed.
    fn names(d: &crate::server::broker::Delivery) -> Vec<(String, bool)> {
        users(d).into_iter().map(|u| (u.name, u.typing)).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn each_account_once_typing_expires_and_changes_are_coalesced() {
        let (board, mut rx) = watched_board();
        let (ann, bob) = (user(2, "ann"), user(3, "bob"));
        let start = Instant::now();

        // Two tabs of ann and one of bob: one event, each account once.
        board.connection(1, &ann, None, Some(Here));
        board.connection(1, &ann, None, Some(Here));
        board.connection(1, &bob, None, Some(Here));
        let first = rx.recv().await;
        assert_eq!(
            names(&first),
            [("ann".into(), false), ("bob".into(), false)]
        );
        // One of ann's tabs closes: nothing changes, nothing is published.
        board.connection(1, &ann, Some(Here), None);
        board.typing(1, bob.id);
        let typing = rx.recv().await;
        assert_eq!(
            typing.version.seq,
            first.version.seq + 1,
            "one event per change"
        );
        assert_eq!(
            names(&typing),
            [("ann".into(), false), ("bob".into(), true)]
        );
        // Typing ends by itself.
        let ended = rx.recv().await;
        assert_eq!(names(&ended)[1], ("bob".into(), false));
        assert!(Instant::now() - start >= Duration::from_millis(TYPING_MS));
        // Posting ends it at once; leaving removes the account.
        board.typing(1, ann.id);
        board.stop_typing(1, ann.id);
        board.connection(1, &ann, Some(Here), None);
        let left = rx.recv().await;
        assert_eq!(names(&left), [("bob".into(), false)]);
        board.connection(1, &bob, Some(Here), None);
        let empty = rx.recv().await;
        assert_eq!(names(&empty), []);
        // Nothing pending: the flush task has stopped.
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(rx.try_recv().is_none());
        assert!(!board.board.lock().unwrap().flushing);
    }

    #[tokio::test(start_paused = true)]
    async fn an_account_whose_tabs_all_rest_shows_away_until_one_comes_back() {
        let (board, mut rx) = watched_board();
        let (ann, bob) = (user(2, "ann"), user(3, "bob"));

        // ann in two tabs, bob in one.
        board.connection(1, &ann, None, Some(Here));
        board.connection(1, &ann, None, Some(Here));
        board.connection(1, &bob, None, Some(Here));
        assert_eq!(
            listed(&*rx.recv().await),
            [("ann".into(), false), ("bob".into(), false)]
        );

        // One of ann's tabs is hidden: she is still here in the other.
        board.connection(1, &ann, Some(Here), Some(Away));
        board.typing(1, bob.id);
        assert_eq!(
            names(&*rx.recv().await),
            [("ann".into(), false), ("bob".into(), true)]
        );
        // Her other tab is hidden too: away, and still listed.
        board.connection(1, &ann, Some(Here), Some(Away));
        let away = rx.recv().await;
        assert_eq!(listed(&away), [("ann".into(), true), ("bob".into(), false)]);
        // A hidden page does not type.
        board.typing(1, ann.id);
        // One tab shown again: back.
        board.connection(1, &ann, Some(Away), Some(Here));
        let back = rx.recv().await;
        assert_eq!(
            listed(&back),
            [("ann".into(), false), ("bob".into(), false)]
        );
        assert_eq!(names(&back)[0], ("ann".into(), false), "not typing");
        // The shown tab closes, then the hidden one: away, then gone.
        board.connection(1, &ann, Some(Here), None);
        assert_eq!(
            listed(&*rx.recv().await),
            [("ann".into(), true), ("bob".into(), false)]
        );
        board.connection(1, &ann, Some(Away), None);
        assert_eq!(listed(&*rx.recv().await), [("bob".into(), false)]);
        // Resting from a room one is not in changes nothing.
        board.connection(1, &ann, Some(Here), Some(Away));
        board.connection(1, &ann, Some(Away), None);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(rx.try_recv().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_poller_stays_listed_between_polls_and_leaves_when_they_stop() {
        let (board, mut rx) = watched_board();
        let (ann, bob) = (user(2, "ann"), user(3, "bob"));
        let linger = Duration::from_secs(4);
        let poll = |board: &Arc<PresenceBoard>| {
            board.connection(1, &ann, None, Some(Here));
            board.linger(1, &ann, linger);
        };

        // A poll lists ann; polls every 2 s keep her listed, with no event.
        poll(&board);
        assert_eq!(listed(&*rx.recv().await), [("ann".into(), false)]);
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            poll(&board);
        }
        let last_poll = Instant::now();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            rx.try_recv().is_none(),
            "listed steadily, nothing published"
        );

        // Between polls she can type.
        board.typing(1, ann.id);
        assert_eq!(names(&*rx.recv().await), [("ann".into(), true)]);
        // While the board waits for her lingering to end, bob's socket joins:
        // published within the coalescing window, not when she leaves.
        tokio::time::sleep(Duration::from_millis(300)).await;
        board.stop_typing(1, ann.id);
        assert_eq!(names(&*rx.recv().await), [("ann".into(), false)]);
        let joined = Instant::now();
        board.connection(1, &bob, None, Some(Here));
        let both = rx.recv().await;
        assert!(
            Instant::now() - joined <= COALESCE * 2,
            "published promptly"
        );
        assert_eq!(
            listed(&both),
            [("ann".into(), false), ("bob".into(), false)]
        );

        // Her polls stop: she leaves when the last one's lingering ends.
        let left = rx.recv().await;
        assert_eq!(listed(&left), [("bob".into(), false)]);
        let since = Instant::now() - last_poll;
        assert!(
            since >= linger && since <= linger + COALESCE,
            "left when the last poll's lingering ended: {since:?}"
        );
        // bob's socket keeps him: nothing else, and the task stops.
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(rx.try_recv().is_none());
        assert!(!board.board.lock().unwrap().flushing);
    }

    #[tokio::test(start_paused = true)]
    async fn a_poll_that_loses_the_room_or_its_credentials_leaves_without_lingering() {
        let (board, mut rx) = watched_board();
        let ann = user(2, "ann");
        board.connection(1, &ann, None, Some(Here));
        board.linger(1, &ann, Duration::from_secs(4));
        assert_eq!(listed(&*rx.recv().await), [("ann".into(), false)]);
        // Her next poll is told she lost the room (or was logged out).
        tokio::time::sleep(Duration::from_secs(1)).await;
        board.connection(1, &ann, None, Some(Here));
        let lost = Instant::now();
        board.linger(1, &ann, Duration::ZERO);
        assert_eq!(listed(&*rx.recv().await), []);
        assert!(Instant::now() - lost <= COALESCE * 2, "at once, not in 4 s");
    }
}
