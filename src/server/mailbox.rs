//! `Mailbox`: a small queue for one connection, items under a mutex and a
//! `Notify` to wait on (ssr only). Used for the deliveries a connection's
//! task reads (`broker::Outbox`) and for its kicks (`accounts::live`).
//!
//! Why not a tokio channel: a channel keeps a block of slots and a padded
//! header from its creation, about 1.5 KiB, for each of thousands of mostly
//! idle connections; a mailbox holds no memory until something is queued,
//! and gives a large buffer back once emptied.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use tokio::sync::Notify;

/// Queues holding more than this many slots once emptied give their memory
/// back.
const KEEP_SLOTS: usize = 64;

pub struct Mailbox<T> {
    items: Mutex<VecDeque<T>>,
    ready: Notify,
}

impl<T> Default for Mailbox<T> {
    fn default() -> Self {
        Mailbox {
            items: Mutex::new(VecDeque::new()),
            ready: Notify::new(),
        }
    }
}

impl<T> Mailbox<T> {
    fn items(&self) -> MutexGuard<'_, VecDeque<T>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `item` if fewer than `cap` items wait; gives it back if not.
    /// A reader not waiting yet gets a stored permit: nothing is missed.
    pub fn push(&self, item: T, cap: usize) -> Result<(), T> {
        {
            let mut items = self.items();
            if items.len() >= cap {
                return Err(item);
            }
            items.push_back(item);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// The first waiting item, if any.
    pub fn try_pop(&self) -> Option<T> {
        self.items().pop_front()
    }

    /// Moves up to `limit` waiting items to `buf`, in order, without
    /// waiting; how many.
    pub fn take(&self, buf: &mut Vec<T>, limit: usize) -> usize {
        let mut items = self.items();
        let n = items.len().min(limit);
        buf.extend(items.drain(..n));
        if items.is_empty() && items.capacity() > KEEP_SLOTS {
            *items = VecDeque::new();
        }
        n
    }

    /// The first item, waiting for one. Cancel safe: an item is taken only
    /// when returned.
    pub async fn pop(&self) -> T {
        loop {
            if let Some(item) = self.try_pop() {
                return item;
            }
            self.ready.notified().await;
        }
    }

    /// Moves up to `limit` (at least 1) items to `buf`, waiting for the
    /// first; how many. Cancel safe.
    pub async fn take_some(&self, buf: &mut Vec<T>, limit: usize) -> usize {
        loop {
            let n = self.take(buf, limit.max(1));
            if n > 0 {
                return n;
            }
            self.ready.notified().await;
        }
    }

    pub fn len(&self) -> usize {
        self.items().len()
    }

    pub fn is_empty(&self) -> bool {
        self.items().is_empty()
    }

    /// The slots the queue keeps (for tests of its memory).
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.items().capacity()
    }
}
