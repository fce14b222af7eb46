//! `Flusher`: one timer for every connection's flush window (the
//! `flush-window-ms` setting). A connection with deliveries waiting *arms*
//! itself and stops reading its outbox; what the broker pushes meanwhile
//! queues without waking it. Once per window the flusher rings every armed
//! connection at once, and each writes what it has in one go: one wake-up
//! per connection per window, not one per delivery, and one timer for the
//! process instead of one per connection.
//!
//! A delivery waits at most one window (less if it arrives while one is
//! running). The timer's task runs only while a connection is armed, and
//! stops after a window in which none was.
//!
//! Concurrency: a std `Mutex` over the armed list, held to push or take it,
//! never across an await. A ring is a `Notify` permit, so one that comes
//! before the connection waits for it is not lost.

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

pub struct Flusher {
    window: Duration,
    state: Mutex<Armed>,
}

#[derive(Default)]
struct Armed {
    bells: Vec<Arc<Notify>>,
    /// The timer's task is running.
    ticking: bool,
}

impl Flusher {
    pub fn new(window: Duration) -> Arc<Self> {
        Arc::new(Flusher {
            window,
            state: Mutex::new(Armed::default()),
        })
    }

    /// The window, or `None` for none (deliveries are written at once).
    pub fn of(window: Duration) -> Option<Arc<Self>> {
        (!window.is_zero()).then(|| Self::new(window))
    }

    /// Rings `bell` at the end of the current window.
    pub fn arm(self: &Arc<Self>, bell: &Arc<Notify>) {
        let Ok(mut armed) = self.state.lock() else {
            // Never left half-done: ring now rather than never.
            return bell.notify_one();
        };
        armed.bells.push(bell.clone());
        if !armed.ticking {
            armed.ticking = true;
            tokio::spawn(self.clone().tick());
        }
    }

    async fn tick(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.window).await;
            let bells = match self.state.lock() {
                Ok(mut armed) if armed.bells.is_empty() => {
                    armed.ticking = false;
                    return;
                }
                Ok(mut armed) => std::mem::take(&mut armed.bells),
                Err(_) => return,
            };
            for bell in bells {
                bell.notify_one();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn one_tick_rings_every_connection_armed_within_the_window() {
        let flusher = Flusher::new(Duration::from_millis(20));
        let (a, b) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
        let start = Instant::now();
        flusher.arm(&a);
        tokio::time::sleep(Duration::from_millis(15)).await;
        flusher.arm(&b);
        a.notified().await;
        b.notified().await;
        assert_eq!(
            start.elapsed(),
            Duration::from_millis(20),
            "both at the window's end, b after 5 ms only"
        );
        // Nothing armed: the task stops after an empty window.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!flusher.state.lock().unwrap().ticking);
        // And starts again when needed.
        flusher.arm(&a);
        let again = Instant::now();
        a.notified().await;
        assert_eq!(again.elapsed(), Duration::from_millis(20));
    }
}
