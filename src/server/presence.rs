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
//! - **Typing** lasts `TYPING_MS` after the account's last `typing` frame in
//!   the room, and ends at once when it posts there.
//! - Changes are **coalesced**: a room's new state is published at most once
//!   per `COALESCE` (a flood of joins is one event), by one task that runs
//!   only while something is pending, and never written to the message log.
//!
//! Concurrency: one std `Mutex` over every room's state, held for map work
//! and the non-blocking publish; never across an await.

use super::accounts::User;
use super::broker::Broker;
use super::ephemeral::EphemeralLogs;
use crate::protocol::{Presence, Present, Topic, MAX_PRESENT, TYPING_MS};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
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
}

impl Entry {
    /// How the account shows: `None` (not listed), or listed and whether away.
    fn shown(&self) -> Option<bool> {
        (self.here + self.away > 0).then_some(self.here == 0)
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
    logs: Arc<EphemeralLogs>,
    broker: Arc<dyn Broker>,
}

impl PresenceBoard {
    pub fn new(logs: Arc<EphemeralLogs>, broker: Arc<dyn Broker>) -> Arc<Self> {
        Arc::new(PresenceBoard {
            board: Mutex::new(Board::default()),
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
                (None, Some(_)) if from.is_none() => {
                    r.users.entry(user.id).or_insert_with(|| Entry {
                        name: user.name.clone(),
                        here: 0,
                        away: 0,
                        typing_until: None,
                    })
                }
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

    /// `user` typed in `room` (ignored unless they are in it).
    pub fn typing(self: &Arc<Self>, room: i64, user_id: i64) {
        let until = Instant::now() + Duration::from_millis(TYPING_MS);
        self.change(room, |r| match r.users.get_mut(&user_id) {
            Some(e) if e.here > 0 => {
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
        let r = board.rooms.entry(room).or_default();
        if f(r) {
            r.dirty = true;
        }
        let pending = r.dirty || r.users.values().any(|e| e.typing_until.is_some());
        if pending && !board.flushing {
            board.flushing = true;
            tokio::spawn(self.clone().flush_loop());
        }
    }

    async fn flush_loop(self: Arc<Self>) {
        loop {
            tokio::time::sleep(COALESCE).await;
            if !self.flush(Instant::now()) {
                return;
            }
        }
    }

    /// Expires typing, publishes every changed room, forgets empty ones.
    /// Returns whether the task must go on (typing still to expire); if
    /// not, it has marked itself stopped, under the lock.
    fn flush(&self, now: Instant) -> bool {
        let Ok(mut board) = self.board.lock() else {
            return false;
        };
        let mut pending = false;
        for (id, room) in board.rooms.iter_mut() {
            for e in room.users.values_mut() {
                if e.typing_until.is_some_and(|t| t <= now) {
                    e.typing_until = None;
                    room.dirty = true;
                }
                pending |= e.typing_until.is_some();
            }
            if room.dirty {
                room.dirty = false;
                self.publish(*id, room);
            }
        }
        board.rooms.retain(|_, r| !r.users.is_empty());
        if !pending {
            board.flushing = false;
        }
        pending
    }

    fn publish(&self, id: i64, room: &Room) {
        let mut users: Vec<Present> = room
            .users
            .iter()
            .map(|(id, e)| Present {
                id: *id,
                name: e.name.clone(),
                typing: e.typing_until.is_some(),
                away: e.here == 0,
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
        let logs = Arc::new(EphemeralLogs::new(8, 8));
        let broker = Arc::new(LocalBroker::default());
        let board = PresenceBoard::new(logs, broker.clone());
        let topic = Topic::presence(1);
        let (outbox, mut rx) = Outbox::new(16);
        broker.subscribe(topic, 1, outbox);
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
        let logs = Arc::new(EphemeralLogs::new(8, 8));
        let broker = Arc::new(LocalBroker::default());
        let board = PresenceBoard::new(logs, broker.clone());
        let (outbox, mut rx) = Outbox::new(16);
        broker.subscribe(Topic::presence(1), 1, outbox);
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
}
