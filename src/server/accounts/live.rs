//! Live connections by credential (ssr only): what lets a revocation reach
//! the connections it concerns, at once, and only those.
//!
//! Every live connection registers its principal (`register`) and keeps the
//! returned `Registration`; dropping it unregisters. Revoking a session or a
//! token, logging out everywhere, or removing an account from a private
//! room sends a `Kick` to exactly the connections it concerns; the
//! transport's task reads kicks before anything but shutdown.
//!
//! `epoch` counts credential revocations: a connection whose credentials
//! were looked up at epoch E and that registers while the epoch is still E
//! cannot have missed a revocation (every revocation is written to the
//! database before it comes here), so only a connection that sees the epoch
//! move re-reads its credentials (`service::confirm_live`), and a connect
//! costs one database read, not two.
//!
//! In-process: with several instances (PostgreSQL, later) the same calls
//! arrive through LISTEN/NOTIFY. Each connection's kick queue (`Kicks`) is
//! unbounded but only revocations fill it, and a credential revocation ends
//! the connection.

use super::Principal;
use crate::protocol::Topic;
use crate::server::broker::ConnId;
use crate::server::mailbox::Mailbox;
use crate::server::realtime::wire::Wire;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What a revocation asks of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kick {
    /// Its credentials ended: close with 4401.
    Credentials,
    /// Its account lost access to this topic: end that subscription.
    Topic(Topic),
}

/// The sending side of a connection's kick queue (a `Mailbox`: kicks are
/// rare, and a channel would keep memory for each of thousands of
/// connections).
#[derive(Clone)]
pub struct KickTx(Arc<Mailbox<Kick>>);

/// The receiving side, read by the connection's task.
pub struct Kicks(Arc<Mailbox<Kick>>);

/// A new kick queue.
pub fn kick_queue() -> (KickTx, Kicks) {
    let kicks = Arc::new(Mailbox::default());
    (KickTx(kicks.clone()), Kicks(kicks))
}

impl KickTx {
    pub fn send(&self, kick: Kick) {
        // Unbounded: only revocations fill it, and a credential revocation
        // ends the connection.
        let _ = self.0.push(kick, usize::MAX);
    }
}

impl Kicks {
    /// The next kick, waiting for one (cancel safe).
    pub async fn recv(&mut self) -> Kick {
        self.0.pop().await
    }

    /// The next kick, if one is waiting.
    pub fn try_recv(&mut self) -> Option<Kick> {
        self.0.try_pop()
    }

    /// Whether no kick is waiting (see `pending`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A handle that tells whether kicks are waiting, for a task that
    /// reads them through a stream (`realtime::sse`).
    pub fn pending(&self) -> Pending {
        Pending(self.0.clone())
    }
}

/// Whether a connection's kicks are waiting (`Kicks::pending`).
pub struct Pending(Arc<Mailbox<Kick>>);

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Where a connection's kicks go: its task's queue, and, over a wire, the
/// wire, halted first so that the broker stops writing to the connection
/// before its task hears of the kick (`realtime::wire`).
struct Kickee {
    tx: KickTx,
    wire: Option<Arc<Wire>>,
}

#[derive(Default)]
struct Registry {
    conns: HashMap<ConnId, Kickee>,
    sessions: HashMap<i64, HashSet<ConnId>>,
    tokens: HashMap<i64, HashSet<ConnId>>,
    users: HashMap<i64, HashSet<ConnId>>,
}

#[derive(Default, Clone)]
pub struct LiveConnections {
    inner: Arc<Mutex<Registry>>,
    /// Credential revocations so far.
    revocations: Arc<AtomicU64>,
}

/// Unregisters its connection when dropped.
pub struct Registration {
    conn: ConnId,
    who: Principal,
    live: LiveConnections,
}

fn remove(map: &mut HashMap<i64, HashSet<ConnId>>, key: i64, conn: ConnId) {
    if let Some(set) = map.get_mut(&key) {
        set.remove(&conn);
        if set.is_empty() {
            map.remove(&key);
        }
    }
}

impl LiveConnections {
    /// Registers connection `conn` acting for `who`; its kicks arrive on the
    /// returned receiver.
    pub fn register(&self, conn: ConnId, who: &Principal) -> (Registration, Kicks) {
        self.register_wired(conn, who, None)
    }

    /// `register`, for a connection whose broker writes may go through
    /// `wire`: a kick halts the wire before it is queued.
    pub fn register_wired(
        &self,
        conn: ConnId,
        who: &Principal,
        wire: Option<Arc<Wire>>,
    ) -> (Registration, Kicks) {
        let (tx, rx) = kick_queue();
        if let Ok(mut r) = self.inner.lock() {
            r.conns.insert(conn, Kickee { tx, wire });
            match who {
                Principal::Anonymous => {}
                Principal::Session {
                    user, session_id, ..
                } => {
                    r.sessions.entry(*session_id).or_default().insert(conn);
                    r.users.entry(user.id).or_default().insert(conn);
                }
                Principal::Token { user, token_id, .. } => {
                    r.tokens.entry(*token_id).or_default().insert(conn);
                    r.users.entry(user.id).or_default().insert(conn);
                }
            }
        }
        let registration = Registration {
            conn,
            who: who.clone(),
            live: self.clone(),
        };
        (registration, rx)
    }

    fn kick(&self, pick: impl FnOnce(&Registry) -> Vec<ConnId>, kick: Kick) -> usize {
        let Ok(r) = self.inner.lock() else { return 0 };
        let conns = pick(&r);
        for conn in &conns {
            if let Some(kickee) = r.conns.get(conn) {
                match &kickee.wire {
                    Some(wire) => wire.halt(|| kickee.tx.send(kick)),
                    None => kickee.tx.send(kick),
                }
            }
        }
        conns.len()
    }

    fn in_set(map: &HashMap<i64, HashSet<ConnId>>, key: i64) -> Vec<ConnId> {
        map.get(&key)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Credential revocations so far: read before looking credentials up,
    /// compared after registering (module comment).
    pub fn epoch(&self) -> u64 {
        self.revocations.load(Ordering::SeqCst)
    }

    /// Closes the connections of these sessions; how many.
    pub fn revoke_sessions(&self, ids: &[i64]) -> usize {
        // Counted before the registry is read: a connection registering
        // after this kick missed it, and sees the epoch moved.
        self.revocations.fetch_add(1, Ordering::SeqCst);
        self.kick(
            |r| {
                ids.iter()
                    .flat_map(|id| Self::in_set(&r.sessions, *id))
                    .collect()
            },
            Kick::Credentials,
        )
    }

    /// Closes the connections of this token; how many.
    pub fn revoke_token(&self, id: i64) -> usize {
        self.revocations.fetch_add(1, Ordering::SeqCst);
        self.kick(|r| Self::in_set(&r.tokens, id), Kick::Credentials)
    }

    /// Ends the account's subscriptions to `topic`, on every connection
    /// (sessions and tokens); how many connections.
    pub fn lost_access(&self, user_id: i64, topic: Topic) -> usize {
        self.kick(|r| Self::in_set(&r.users, user_id), Kick::Topic(topic))
    }

    /// Connections registered (for tests and metrics).
    pub fn len(&self) -> usize {
        self.inner.lock().map(|r| r.conns.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let Ok(mut r) = self.live.inner.lock() else {
            return;
        };
        r.conns.remove(&self.conn);
        match &self.who {
            Principal::Anonymous => {}
            Principal::Session {
                user, session_id, ..
            } => {
                remove(&mut r.sessions, *session_id, self.conn);
                remove(&mut r.users, user.id, self.conn);
            }
            Principal::Token { user, token_id, .. } => {
                remove(&mut r.tokens, *token_id, self.conn);
                remove(&mut r.users, user.id, self.conn);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::accounts::{Scopes, User};

    fn session(user: i64, id: i64) -> Principal {
        Principal::Session {
            user: User {
                id: user,
                name: format!("u{user}"),
            },
            session_id: id,
            expires_at: i64::MAX,
        }
    }

    #[test]
    fn the_epoch_moves_with_every_credential_revocation_and_only_then() {
        let live = LiveConnections::default();
        let e0 = live.epoch();
        let (_a, _ra) = live.register(1, &session(7, 100));
        live.lost_access(7, Topic::room(1));
        assert_eq!(
            live.epoch(),
            e0,
            "registering or losing a topic is no revocation"
        );
        // Even a revocation that concerns no live connection counts: the
        // connection it concerns may be registering right now.
        live.revoke_sessions(&[999]);
        assert_eq!(live.epoch(), e0 + 1);
        live.revoke_token(5);
        assert_eq!(live.epoch(), e0 + 2);
        // Shared by the clones every part of the server holds.
        assert_eq!(live.clone().epoch(), e0 + 2);
    }

    #[tokio::test]
    async fn kicks_come_in_order_and_none_is_missed_waiting_or_not() {
        let (tx, mut rx) = kick_queue();
        let topic = Topic::room(1);
        tx.send(Kick::Topic(topic));
        tx.send(Kick::Credentials);
        assert_eq!(rx.recv().await, Kick::Topic(topic));
        assert_eq!(rx.recv().await, Kick::Credentials);
        assert_eq!(rx.try_recv(), None);
        let waiter = tokio::spawn(async move { rx.recv().await });
        tokio::task::yield_now().await;
        tx.send(Kick::Credentials);
        let got = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("woken")
            .expect("task");
        assert_eq!(got, Kick::Credentials);
    }

    #[test]
    fn kicks_reach_exactly_the_concerned_connections() {
        let live = LiveConnections::default();
        let (_a, mut ra) = live.register(1, &session(7, 100));
        let (_b, mut rb) = live.register(2, &session(7, 101));
        let token = Principal::Token {
            user: User {
                id: 7,
                name: "u7".into(),
            },
            token_id: 5,
            scopes: Scopes::ALL,
        };
        let (_c, mut rc) = live.register(3, &token);
        let (_d, mut rd) = live.register(4, &session(8, 102));
        let (_e, mut re) = live.register(5, &Principal::Anonymous);
        assert_eq!(live.revoke_sessions(&[100]), 1);
        assert_eq!(ra.try_recv(), Some(Kick::Credentials));
        assert!(rb.try_recv().is_none() && rc.try_recv().is_none());
        assert_eq!(live.revoke_token(5), 1);
        assert_eq!(rc.try_recv(), Some(Kick::Credentials));
        let topic = Topic::room(3);
        assert_eq!(live.lost_access(7, topic), 3);
        assert_eq!(rb.try_recv(), Some(Kick::Topic(topic)));
        assert!(rd.try_recv().is_none() && re.try_recv().is_none());
        drop(_b);
        assert_eq!(live.revoke_sessions(&[101]), 0, "unregistered on drop");
        assert_eq!(live.len(), 4);
    }
}
