//! The login throttle (ssr only), with `governor` token buckets keyed by
//! account name (its uniqueness key, whether or not such an account exists,
//! so the throttle reveals nothing) and by client address:
//!
//! 1. **slowed**: past `login-burst / 2` quick attempts on one account, each
//!    answer waits `SLOW_DOWN` first;
//! 2. **locked**: past `login-burst` attempts on one account, or
//!    `login-ip-burst` from one address, attempts are refused with 429 and
//!    `Retry-After` until a bucket refills (one attempt per
//!    `login-refill-seconds` per account, per `login-ip-refill-seconds` per
//!    address), without checking the password.
//!
//! Sign-ups are limited per address (`signups-per-hour`). Every attempt
//! counts, successful or not: a person signs in a few times a day.

use crate::server::config::Settings;
use crate::server::limits::Exceeded;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

/// How long a slowed attempt waits.
pub const SLOW_DOWN: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct LoginThrottle {
    slow: DefaultKeyedRateLimiter<String>,
    account: DefaultKeyedRateLimiter<String>,
    ip: DefaultKeyedRateLimiter<IpAddr>,
    signups: DefaultKeyedRateLimiter<IpAddr>,
}

/// What an attempt may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    Now,
    /// Go on after `SLOW_DOWN`.
    Slowed,
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

fn quota(burst: u32, every_secs: u64) -> Quota {
    Quota::with_period(Duration::from_secs(every_secs.max(1)))
        .unwrap_or(Quota::per_minute(NonZeroU32::MIN))
        .allow_burst(nonzero(burst))
}

fn check<K: Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
    what: &'static str,
) -> Result<(), Exceeded> {
    limiter.check_key(key).map_err(|not_until| Exceeded {
        what,
        retry_after: not_until.wait_time_from(crate::server::limits::clock().now()),
    })
}

impl LoginThrottle {
    pub fn new(s: &Settings) -> Self {
        LoginThrottle {
            slow: RateLimiter::keyed(quota(s.login_burst / 2, s.login_refill_seconds)),
            account: RateLimiter::keyed(quota(s.login_burst, s.login_refill_seconds)),
            ip: RateLimiter::keyed(quota(s.login_ip_burst, s.login_ip_refill_seconds)),
            signups: RateLimiter::keyed(
                Quota::per_hour(nonzero(s.signups_per_hour))
                    .allow_burst(nonzero(s.signups_per_hour)),
            ),
        }
    }

    /// One log-in attempt on the account keyed `key` from `ip`.
    pub fn attempt(&self, ip: IpAddr, key: &str) -> Result<Pace, Exceeded> {
        check(&self.ip, &ip, "log-in attempts from this address")?;
        let key = key.to_owned();
        check(&self.account, &key, "log-in attempts for this account")?;
        Ok(match check(&self.slow, &key, "") {
            Ok(()) => Pace::Now,
            Err(_) => Pace::Slowed,
        })
    }

    pub fn sign_up(&self, ip: IpAddr) -> Result<(), Exceeded> {
        check(&self.signups, &ip, "sign-ups per hour from this address")
    }

    /// Forgets keys whose buckets are full again.
    pub fn forget_idle(&self) {
        self.slow.retain_recent();
        self.account.retain_recent();
        self.ip.retain_recent();
        self.signups.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowed_then_locked_per_account_and_per_address() {
        let s = Settings {
            login_burst: 4,
            login_ip_burst: 7,
            ..Settings::default()
        };
        let t = LoginThrottle::new(&s);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let paces: Vec<_> = (0..4).map(|_| t.attempt(ip, "ann").unwrap()).collect();
        assert_eq!(paces, [Pace::Now, Pace::Now, Pace::Slowed, Pace::Slowed]);
        let locked = t.attempt(ip, "ann").unwrap_err();
        assert!(locked.retry_after > Duration::ZERO);
        // Another account from the same address is not locked...
        assert_eq!(t.attempt(ip, "bob").unwrap(), Pace::Now);
        assert_eq!(t.attempt(ip, "cy").unwrap(), Pace::Now);
        // ...until the address has used its own bucket (7 attempts).
        assert!(t.attempt(ip, "dee").is_err());
        // The same account from another address is still locked.
        assert!(t.attempt("10.0.0.2".parse().unwrap(), "ann").is_err());
    }
}
