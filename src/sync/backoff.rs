//! Reconnect delays: capped exponential backoff with full jitter, reset only
//! after a stable link. Pure (the clock and the randomness are arguments);
//! both builds.
//!
//! Attempt n (from 0) waits a uniformly random time in `[0, d)` where
//! `d = min(cap, base · 2^n)` ("full jitter"), so a fleet of clients dropped
//! together spreads its reconnects over the whole window instead of
//! returning in waves. A link that comes up counts as a success only once it
//! has stayed up for `stable_ms`: a server that accepts connections and then
//! drops them keeps its clients backing off.

/// The delays the reference client uses: 0.5 s doubling to a 5 s cap, reset
/// after a link stable for 10 s.
pub const BASE_MS: u32 = 500;
pub const CAP_MS: u32 = 5_000;
pub const STABLE_MS: f64 = 10_000.0;

#[derive(Clone, Debug)]
pub struct Backoff {
    base_ms: u32,
    cap_ms: u32,
    stable_ms: f64,
    attempt: u32,
    /// When the current link came up, if it is up.
    up_since: Option<f64>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(BASE_MS, CAP_MS, STABLE_MS)
    }
}

impl Backoff {
    pub fn new(base_ms: u32, cap_ms: u32, stable_ms: f64) -> Self {
        Backoff {
            base_ms,
            cap_ms,
            stable_ms,
            attempt: 0,
            up_since: None,
        }
    }

    /// Attempts since the last stable link.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The link came up at `now_ms`.
    pub fn connected(&mut self, now_ms: f64) {
        self.up_since = Some(now_ms);
    }

    /// The link went down (or an attempt failed) at `now_ms`: the delay
    /// before the next attempt, given a uniform random number in [0, 1).
    pub fn next_delay_ms(&mut self, now_ms: f64, random: f64) -> u32 {
        if let Some(since) = self.up_since.take() {
            if now_ms - since >= self.stable_ms {
                self.attempt = 0;
            }
        }
        let ceiling = (self.base_ms as u64)
            .saturating_mul(1u64 << self.attempt.min(20))
            .min(self.cap_ms as u64) as f64;
        self.attempt = self.attempt.saturating_add(1);
        (random.clamp(0.0, 1.0) * ceiling) as u32
    }
}

/// A uniformly random moment within `window_ms` (the `reconnect` frame's
/// window), given a uniform random number in [0, 1).
pub fn within(window_ms: u64, random: f64) -> u32 {
    (random.clamp(0.0, 1.0) * window_ms.min(u32::MAX as u64) as f64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let mut b = Backoff::default();
        let highs: Vec<u32> = (0..6).map(|_| b.next_delay_ms(0.0, 1.0)).collect();
        assert_eq!(highs, vec![500, 1000, 2000, 4000, 5000, 5000]);
    }

    #[test]
    fn full_jitter_spans_zero_to_the_ceiling() {
        let mut lo = Backoff::default();
        let mut hi = Backoff::default();
        for _ in 0..5 {
            let (a, b) = (lo.next_delay_ms(0.0, 0.0), hi.next_delay_ms(0.0, 0.999));
            assert_eq!(a, 0);
            assert!(b > 0 && b <= CAP_MS);
        }
        assert_eq!(within(5000, 0.5), 2500);
        assert_eq!(within(5000, 0.0), 0);
    }

    #[test]
    fn only_a_stable_link_resets_the_backoff() {
        let mut b = Backoff::default();
        for _ in 0..4 {
            b.next_delay_ms(0.0, 0.5);
        }
        // Up at t = 1 s, down again at 9 s: not stable, keep backing off.
        b.connected(1_000.0);
        assert_eq!(b.next_delay_ms(9_000.0, 1.0), CAP_MS);
        assert_eq!(b.attempts(), 5);
        // Up at 20 s, down at 30 s: stable for 10 s, start over.
        b.connected(20_000.0);
        assert_eq!(b.next_delay_ms(30_000.0, 1.0), BASE_MS);
        assert_eq!(b.attempts(), 1);
        // A failed attempt (never connected) does not reset.
        assert_eq!(b.next_delay_ms(90_000.0, 1.0), 2 * BASE_MS);
    }

    #[test]
    fn huge_attempt_counts_do_not_overflow() {
        let mut b = Backoff::default();
        for _ in 0..100 {
            b.next_delay_ms(0.0, 0.5);
        }
        assert_eq!(b.attempts(), 100);
        assert!(b.next_delay_ms(0.0, 1.0) <= CAP_MS);
    }
}
