//! `Shutdown`: one signal that every task watches, plus a count of live
//! sessions so the server can wait for them to say goodbye (ssr only).
//!
//! `trigger` is idempotent. Sessions hold a `SessionGuard` for their whole
//! life; `drained` resolves when none is left.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::{watch, Notify};

#[derive(Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
    sessions: Arc<(AtomicUsize, Notify)>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            tx: Arc::new(watch::channel(false).0),
            sessions: Arc::new((AtomicUsize::new(0), Notify::new())),
        }
    }
}

impl Shutdown {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once `trigger` has been called (at once if it was).
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // An error means the sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|&down| down).await;
    }

    pub fn track_session(&self) -> SessionGuard {
        self.sessions.0.fetch_add(1, Ordering::SeqCst);
        SessionGuard(self.sessions.clone())
    }

    pub fn live_sessions(&self) -> usize {
        self.sessions.0.load(Ordering::SeqCst)
    }

    /// Resolves when no session is left.
    pub async fn drained(&self) {
        loop {
            let notified = self.sessions.1.notified();
            if self.live_sessions() == 0 {
                return;
            }
            notified.await;
        }
    }
}

pub struct SessionGuard(Arc<(AtomicUsize, Notify)>);

impl Drop for SessionGuard {
    fn drop(&mut self) {
        if self.0 .0.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0 .1.notify_waiters();
        }
    }
}
