//! Credentials resolved recently (ssr only). A page on a polling rung
//! presents the same session cookie or token many times a second, and a
//! database lookup per request would cost more than the rest of the poll
//! (with SQLite, a hand-off to the store's thread and back). An entry is
//! trusted only
//! - while the revocation epoch (`live::LiveConnections::epoch`) has not
//!   moved since it was read: every revocation is written to the database
//!   first and then moves the epoch, so after a log-out, a revoked session
//!   or token, or "log out everywhere", every entry is read again;
//! - before its session expires;
//! - for at most `TTL`.
//!
//! Only credentials that resolved to an account are kept; the table holds at
//! most `MAX` of them (when full, expired entries go, then all of them).
//!
//! `PublicRooms`: the rooms read as public, for the authorization rule to
//! let anyone read them without a query per poll.

use super::Principal;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// The longest an entry is trusted.
pub const TTL: Duration = Duration::from_secs(10);
/// The most entries kept.
pub const MAX: usize = 10_000;

#[derive(Default)]
pub struct Recent {
    entries: Mutex<HashMap<[u8; 32], Entry>>,
}

struct Entry {
    who: Principal,
    epoch: u64,
    read: Instant,
}

impl Recent {
    /// The principal of the secret with this hash, if it was resolved at
    /// revocation epoch `epoch` within `TTL` and (a session) has not expired
    /// at `now_ms`.
    pub fn get(&self, key: &[u8; 32], epoch: u64, now_ms: i64) -> Option<Principal> {
        let entries = self.entries.lock().ok()?;
        let e = entries.get(key)?;
        let expired = match e.who {
            Principal::Session { expires_at, .. } => now_ms >= expires_at,
            _ => false,
        };
        (e.epoch == epoch && e.read.elapsed() < TTL && !expired).then(|| e.who.clone())
    }

    /// Keeps what the secret with this hash resolved to at epoch `epoch`
    /// (read before the lookup).
    pub fn put(&self, key: [u8; 32], who: &Principal, epoch: u64) {
        if matches!(who, Principal::Anonymous) {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX {
            entries.retain(|_, e| e.epoch == epoch && e.read.elapsed() < TTL);
            if entries.len() >= MAX {
                entries.clear();
            }
        }
        entries.insert(
            key,
            Entry {
                who: who.clone(),
                epoch,
                read: Instant::now(),
            },
        );
    }
}

/// Rooms read as public. A room's privacy is fixed when it is created and
/// rooms are never deleted, so "public", once read, holds for the life of
/// the process. Private rooms are never kept: who may read them changes
/// with their members. At most `MAX_PUBLIC_ROOMS` are kept; the rest are
/// read each time. (A way to delete a room or change its privacy must
/// clear this.)
#[derive(Default)]
pub struct PublicRooms(RwLock<HashSet<i64>>);

/// The most public rooms kept.
pub const MAX_PUBLIC_ROOMS: usize = 100_000;

impl PublicRooms {
    pub fn contains(&self, room: i64) -> bool {
        self.0.read().is_ok_and(|rooms| rooms.contains(&room))
    }

    /// Room `room` was read as public.
    pub fn insert(&self, room: i64) {
        if let Ok(mut rooms) = self.0.write() {
            if rooms.len() < MAX_PUBLIC_ROOMS {
                rooms.insert(room);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::accounts::{Scopes, User};

    fn session(expires_at: i64) -> Principal {
        Principal::Session {
            user: User {
                id: 1,
                name: "ann".into(),
            },
            session_id: 7,
            expires_at,
        }
    }

    #[test]
    fn an_entry_holds_until_the_epoch_moves_or_the_session_ends() {
        let recent = Recent::default();
        let key = [1u8; 32];
        recent.put(key, &session(1_000), 5);
        assert_eq!(recent.get(&key, 5, 999), Some(session(1_000)));
        assert_eq!(recent.get(&key, 6, 999), None, "a revocation since");
        assert_eq!(recent.get(&key, 5, 1_000), None, "expired");
        assert_eq!(recent.get(&[2u8; 32], 5, 0), None, "another secret");
    }

    #[test]
    fn anonymous_is_not_kept_and_the_table_is_bounded() {
        let recent = Recent::default();
        recent.put([0u8; 32], &Principal::Anonymous, 1);
        assert_eq!(recent.get(&[0u8; 32], 1, 0), None);
        let token = Principal::Token {
            user: User {
                id: 2,
                name: "bot".into(),
            },
            token_id: 3,
            scopes: Scopes::default(),
        };
        for i in 0..MAX + 5 {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            recent.put(key, &token, 1);
        }
        assert!(recent.entries.lock().unwrap().len() <= MAX);
    }

    #[test]
    fn public_rooms_are_kept_up_to_a_bound() {
        let rooms = PublicRooms::default();
        assert!(!rooms.contains(1));
        rooms.insert(1);
        assert!(rooms.contains(1));
        for id in 0..(MAX_PUBLIC_ROOMS as i64 + 10) {
            rooms.insert(id);
        }
        assert_eq!(rooms.0.read().unwrap().len(), MAX_PUBLIC_ROOMS);
    }
}
