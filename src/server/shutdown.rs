//! `Shutdown`: one signal that every task watches, plus a count of live
//! sessions so the server can wait for them to say goodbye (ssr only).
//!
//! The order of a graceful stop (`server::run`):
//! 1. `trigger`: from now on every new request, page, server function or
//!    WebSocket upgrade alike, is answered `503` with `Retry-After`
//!    (`refuse_when_stopping`), while the listener stays open;
//! 2. every session sends `reconnect`, closes with 1012 and ends
//!    (`SessionGuard`s drop; `drained` resolves);
//! 3. the listener closes and in-flight HTTP requests finish;
//! 4. the store closes, after every session ended.
//!
//! `trigger` is idempotent.

use axum::extract::Request;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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

/// One task's view of the signal: cheap to wait on repeatedly.
pub struct ShutdownSignal(watch::Receiver<bool>);

impl ShutdownSignal {
    /// Resolves once shutdown was triggered (at once if it was).
    pub async fn wait(&mut self) {
        // An error means the sender is gone, which cannot happen while the
        // `Shutdown` that made this signal lives; treat it as shutdown.
        let _ = self.0.wait_for(|&down| down).await;
    }
}

impl Shutdown {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    pub fn signal(&self) -> ShutdownSignal {
        ShutdownSignal(self.tx.subscribe())
    }

    /// Resolves once `trigger` has been called (at once if it was).
    pub async fn wait(&self) {
        self.signal().wait().await
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

/// The answer to every new request once shutdown began.
pub fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "1")],
        "shutting down",
    )
        .into_response()
}

/// Middleware: once shutdown began, answers every new request with 503.
pub async fn refuse_when_stopping(
    axum::extract::State(shutdown): axum::extract::State<Shutdown>,
    req: Request,
    next: Next,
) -> Response {
    if shutdown.is_triggered() {
        return unavailable();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drained_waits_for_every_session() {
        let s = Shutdown::default();
        let a = s.track_session();
        let b = s.track_session();
        let mut signal = s.signal();
        s.trigger();
        signal.wait().await;
        drop(a);
        assert_eq!(s.live_sessions(), 1);
        let waiter = tokio::spawn({
            let s = s.clone();
            async move { s.drained().await }
        });
        drop(b);
        waiter.await.unwrap();
        assert_eq!(s.live_sessions(), 0);
    }
}
