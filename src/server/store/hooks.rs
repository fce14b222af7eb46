//! Test seams of the store's write path (ssr only). In production `Hooks` is
//! empty and costs one `Option` check per committed batch.
//!
//! `CommitGate` holds the writer just before `COMMIT`, so a test can cancel
//! the callers of a write that is about to commit (drop the HTTP request),
//! then let the commit go through and check that subscribers still receive
//! the event. Every wait is on a signal, never on a sleep.

use std::sync::Arc;
use tokio::sync::watch;

/// Optional behaviour injected into a store at `open`.
#[derive(Clone, Default)]
pub struct Hooks {
    /// When set, every write batch waits at this gate before it commits.
    pub commit_gate: Option<Arc<CommitGate>>,
}

/// A gate on the commit of write batches.
pub struct CommitGate {
    open: watch::Sender<bool>,
    /// Batches that reached the gate.
    arrived: watch::Sender<usize>,
    /// Batches whose every caller went away while they waited at the gate.
    abandoned: watch::Sender<usize>,
}

impl CommitGate {
    /// A gate that starts closed.
    pub fn closed() -> Arc<Self> {
        Self::new(false)
    }

    /// A gate that starts open (closed later, when the test is ready).
    pub fn opened() -> Arc<Self> {
        Self::new(true)
    }

    fn new(open: bool) -> Arc<Self> {
        Arc::new(CommitGate {
            open: watch::channel(open).0,
            arrived: watch::channel(0).0,
            abandoned: watch::channel(0).0,
        })
    }

    /// How many batches reached the gate so far.
    pub fn arrivals(&self) -> usize {
        *self.arrived.borrow()
    }

    pub fn open(&self) {
        self.open.send_replace(true);
    }

    pub fn close(&self) {
        self.open.send_replace(false);
    }

    /// Waits until `n` batches in all have reached the gate.
    pub async fn arrived(&self, n: usize) {
        let _ = self.arrived.subscribe().wait_for(|&a| a >= n).await;
    }

    /// Waits until `n` batches in all were abandoned by all their callers.
    pub async fn abandoned(&self, n: usize) {
        let _ = self.abandoned.subscribe().wait_for(|&a| a >= n).await;
    }

    pub(crate) fn arrive(&self) {
        self.arrived.send_modify(|a| *a += 1);
    }

    pub(crate) fn mark_abandoned(&self) {
        self.abandoned.send_modify(|a| *a += 1);
    }

    pub(crate) async fn wait_open(&self) {
        let _ = self.open.subscribe().wait_for(|&open| open).await;
    }
}
