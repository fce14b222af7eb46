//! Reconnect delays: exponential backoff with "equal jitter". Pure; both builds.
//!
//! Attempt n waits a random time in [d/2, d] where d = min(max, base * 2^n),
//! so a fleet of clients dropped together does not reconnect together.

#[derive(Clone, Debug)]
pub struct Backoff {
    base_ms: u32,
    max_ms: u32,
    attempt: u32,
}

impl Backoff {
    pub fn new(base_ms: u32, max_ms: u32) -> Self {
        Backoff {
            base_ms,
            max_ms,
            attempt: 0,
        }
    }

    /// Failed attempts since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// The delay before the next attempt, given a uniform random number in [0, 1).
    pub fn next_delay_ms(&mut self, random: f64) -> u32 {
        let ceiling = (self.base_ms as u64)
            .saturating_mul(1u64 << self.attempt.min(20))
            .min(self.max_ms as u64) as f64;
        self.attempt = self.attempt.saturating_add(1);
        let r = random.clamp(0.0, 1.0);
        (ceiling / 2.0 + r * ceiling / 2.0) as u32
    }

    /// A connection succeeded: start over from the base delay.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_up_to_the_cap() {
        let mut b = Backoff::new(500, 10_000);
        let highs: Vec<u32> = (0..8).map(|_| b.next_delay_ms(1.0)).collect();
        assert_eq!(
            highs,
            vec![500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000]
        );
    }

    #[test]
    fn jitter_stays_within_half_to_full() {
        let mut lo = Backoff::new(1000, 60_000);
        let mut hi = Backoff::new(1000, 60_000);
        for _ in 0..5 {
            let (a, b) = (lo.next_delay_ms(0.0), hi.next_delay_ms(0.999));
            assert!(a * 2 >= b - 2 && a < b, "{a} {b}");
        }
    }

    #[test]
    fn reset_starts_over_and_huge_attempts_do_not_overflow() {
        let mut b = Backoff::new(500, 30_000);
        for _ in 0..100 {
            b.next_delay_ms(0.5);
        }
        assert_eq!(b.attempts(), 100);
        assert!(b.next_delay_ms(1.0) <= 30_000);
        b.reset();
        assert_eq!(b.next_delay_ms(1.0), 500);
    }
}
