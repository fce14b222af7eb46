//! Rate limits and connection caps (ssr only), with `governor` token
//! buckets. Every limit is a setting (see `Leptos.toml` and
//! `docs/SECURITY.md`); a client over one gets a typed refusal with the
//! time to wait, never silence:
//! - per client IP (`PerIp`): WebSocket connection attempts per minute,
//!   `events_since` calls per minute, rooms created per hour, and open
//!   WebSockets; plus a cap on open WebSockets in all;
//! - per account (`PerIp::write`): chat writes per minute, shared by all
//!   of the account's connections and HTTP requests;
//! - per connection (`Budget`): chat messages per second and resumes
//!   (`subscribe` with `since`) per second; a connection that keeps going
//!   after being refused `max-refusals` times in a row is closed.
//!
//! Client IPs are the socket's peer, or, when the peer is a configured
//! trusted proxy, the nearest untrusted address in `X-Forwarded-For`.
//!
//! Concurrency: the keyed buckets are lock-free maps shared by every task;
//! the open-connection counts sit behind a std `Mutex` held for a map update.

use super::config::Settings;
use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A refusal: what was exceeded, and how long to wait before trying again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exceeded {
    pub what: &'static str,
    pub retry_after: Duration,
}

impl Exceeded {
    /// Seconds to wait, rounded up, at least 1 (for `Retry-After`).
    pub fn retry_after_secs(&self) -> u64 {
        (self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0)).max(1)
    }
}

/// The clock of every rate limiter here. Making one reads the CPU's
/// features (CPUID, which a virtual machine traps, at tens of µs each):
/// one for the process, not two per connection.
pub fn clock() -> DefaultClock {
    static CLOCK: std::sync::LazyLock<DefaultClock> =
        std::sync::LazyLock::new(DefaultClock::default);
    CLOCK.clone()
}

fn nonzero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN)
}

fn check_direct(limiter: &DefaultDirectRateLimiter, what: &'static str) -> Result<(), Exceeded> {
    limiter.check().map_err(|not_until| Exceeded {
        what,
        retry_after: not_until.wait_time_from(clock().now()),
    })
}

fn check_keyed<K: std::hash::Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: K,
    what: &'static str,
) -> Result<(), Exceeded> {
    limiter.check_key(&key).map_err(|not_until| Exceeded {
        what,
        retry_after: not_until.wait_time_from(clock().now()),
    })
}

/// The limits shared by every request and connection.
#[derive(Debug)]
pub struct PerIp {
    connects: DefaultKeyedRateLimiter<IpAddr>,
    polls: DefaultKeyedRateLimiter<IpAddr>,
    backfills: DefaultKeyedRateLimiter<IpAddr>,
    rooms: DefaultKeyedRateLimiter<IpAddr>,
    /// Chat writes per account, over every transport.
    writes: DefaultKeyedRateLimiter<i64>,
    open: Mutex<OpenCounts>,
    max_open: usize,
    max_open_per_ip: usize,
    trusted_proxies: Vec<IpAddr>,
}

#[derive(Debug, Default)]
struct OpenCounts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl PerIp {
    pub fn new(s: &Settings) -> Self {
        PerIp {
            connects: RateLimiter::keyed(Quota::per_minute(nonzero(s.connects_per_minute))),
            polls: RateLimiter::keyed(
                Quota::per_minute(nonzero(s.polls_per_minute)).allow_burst(nonzero(s.polls_burst)),
            ),
            backfills: RateLimiter::keyed(
                Quota::per_minute(nonzero(s.backfills_per_minute))
                    .allow_burst(nonzero(s.backfills_burst)),
            ),
            rooms: RateLimiter::keyed(Quota::per_hour(nonzero(s.rooms_per_hour))),
            writes: RateLimiter::keyed(
                Quota::per_minute(nonzero(s.writes_per_minute))
                    .allow_burst(nonzero(s.writes_burst)),
            ),
            open: Mutex::new(OpenCounts::default()),
            max_open: s.max_ws_connections,
            max_open_per_ip: s.max_ws_connections_per_ip,
            trusted_proxies: s
                .trusted_proxies
                .iter()
                .filter_map(|p| p.parse().ok())
                .collect(),
        }
    }

    /// The client's address: the peer, or behind a trusted proxy the
    /// nearest address in `X-Forwarded-For` that is not a trusted proxy.
    pub fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let mut ip = peer.ip();
        if !self.trusted_proxies.contains(&ip) {
            return ip;
        }
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .collect::<Vec<_>>();
        for hop in forwarded.into_iter().rev() {
            ip = hop;
            if !self.trusted_proxies.contains(&hop) {
                break;
            }
        }
        ip
    }

    pub fn connect(&self, ip: IpAddr) -> Result<(), Exceeded> {
        check_keyed(&self.connects, ip, "connection attempts per minute")
    }

    /// One poll (`GET /poll`, long or short).
    pub fn poll(&self, ip: IpAddr) -> Result<(), Exceeded> {
        check_keyed(&self.polls, ip, "polls per minute")
    }

    pub fn backfill(&self, ip: IpAddr) -> Result<(), Exceeded> {
        check_keyed(&self.backfills, ip, "backfills per minute")
    }

    pub fn create_room(&self, ip: IpAddr) -> Result<(), Exceeded> {
        check_keyed(&self.rooms, ip, "rooms created per hour")
    }

    /// One chat write (a message, an edit, a deletion) by `account`
    /// (`writes-per-minute`, `writes-burst`), across all its requests and
    /// connections (`chat::write`, once the write is authorized).
    pub fn write(&self, account: i64) -> Result<(), Exceeded> {
        check_keyed(&self.writes, account, "chat writes per minute")
    }

    /// Takes a place for an open WebSocket of `ip`; the place is given back
    /// when the returned guard drops.
    pub fn open(self: &Arc<Self>, ip: IpAddr) -> Result<OpenSocket, Exceeded> {
        let mut open = self.open.lock().map_err(|_| full("open connections"))?;
        let mine = open.per_ip.get(&ip).copied().unwrap_or(0);
        if open.total >= self.max_open {
            return Err(full("open connections"));
        }
        if mine >= self.max_open_per_ip {
            return Err(full("open connections from one address"));
        }
        open.total += 1;
        open.per_ip.insert(ip, mine + 1);
        Ok(OpenSocket {
            limits: self.clone(),
            ip,
        })
    }

    /// Forgets buckets that are full again (called now and then, so that
    /// addresses seen once do not stay in memory).
    pub fn forget_idle(&self) {
        self.connects.retain_recent();
        self.polls.retain_recent();
        self.backfills.retain_recent();
        self.rooms.retain_recent();
        self.writes.retain_recent();
    }
}

/// A cap, not a rate: retry after a second.
fn full(what: &'static str) -> Exceeded {
    Exceeded {
        what,
        retry_after: Duration::from_secs(1),
    }
}

/// One open WebSocket's place under the caps.
#[derive(Debug)]
pub struct OpenSocket {
    limits: Arc<PerIp>,
    ip: IpAddr,
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        if let Ok(mut open) = self.limits.open.lock() {
            open.total = open.total.saturating_sub(1);
            if let Some(n) = open.per_ip.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    open.per_ip.remove(&self.ip);
                }
            }
        }
    }
}

/// One connection's own buckets, and its refusals in a row.
pub struct Budget {
    messages: DefaultDirectRateLimiter,
    resumes: DefaultDirectRateLimiter,
    refusals: u32,
    max_refusals: u32,
}

/// Whether a connection may go on after a refusal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flood {
    No,
    /// Refused `max-refusals` times in a row: close it.
    Yes,
}

impl Budget {
    pub fn new(s: &Settings) -> Self {
        Budget {
            messages: RateLimiter::direct_with_clock(
                Quota::per_second(nonzero(s.messages_per_second))
                    .allow_burst(nonzero(s.messages_burst)),
                clock(),
            ),
            resumes: RateLimiter::direct_with_clock(
                Quota::per_second(nonzero(s.resumes_per_second))
                    .allow_burst(nonzero(s.resumes_burst)),
                clock(),
            ),
            refusals: 0,
            max_refusals: s.max_refusals,
        }
    }

    pub fn message(&mut self) -> Result<(), Exceeded> {
        self.counted(|b| check_direct(&b.messages, "messages per second"))
    }

    pub fn resume(&mut self) -> Result<(), Exceeded> {
        self.counted(|b| check_direct(&b.resumes, "resumes per second"))
    }

    fn counted(
        &mut self,
        check: impl FnOnce(&Self) -> Result<(), Exceeded>,
    ) -> Result<(), Exceeded> {
        let result = check(self);
        match result {
            Ok(()) => self.refusals = 0,
            Err(_) => self.refusals += 1,
        }
        result
    }

    /// Whether the refusals in a row reached the limit.
    pub fn flooding(&self) -> Flood {
        if self.refusals >= self.max_refusals {
            Flood::Yes
        } else {
            Flood::No
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            messages_per_second: 1,
            messages_burst: 3,
            max_refusals: 2,
            max_ws_connections: 3,
            max_ws_connections_per_ip: 2,
            connects_per_minute: 2,
            trusted_proxies: vec!["10.0.0.1".into()],
            ..Settings::default()
        }
    }

    #[test]
    fn a_burst_then_refusals_with_a_wait_then_a_flood() {
        let mut b = Budget::new(&settings());
        for _ in 0..3 {
            assert!(b.message().is_ok());
        }
        let refused = b.message().unwrap_err();
        assert!(
            refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_secs(1)
        );
        assert_eq!(refused.retry_after_secs(), 1);
        assert_eq!(b.flooding(), Flood::No);
        assert!(b.message().is_err());
        assert_eq!(b.flooding(), Flood::Yes, "two refusals in a row");
    }

    #[test]
    fn open_connections_are_capped_per_ip_and_in_all() {
        let limits = Arc::new(PerIp::new(&settings()));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = limits.open(a).unwrap();
        let _second = limits.open(a).unwrap();
        assert_eq!(
            limits.open(a).unwrap_err().what,
            "open connections from one address"
        );
        let _third = limits.open(b).unwrap();
        assert_eq!(limits.open(b).unwrap_err().what, "open connections");
        drop(first);
        assert!(limits.open(b).is_ok(), "a place was given back");
    }

    #[test]
    fn connection_attempts_are_limited_per_ip() {
        let limits = PerIp::new(&settings());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(limits.connect(a).is_ok() && limits.connect(a).is_ok());
        assert!(limits.connect(a).is_err());
        assert!(
            limits.connect("192.0.2.9".parse().unwrap()).is_ok(),
            "others are not affected"
        );
    }

    #[test]
    fn client_ips_come_from_trusted_proxies_only() {
        let limits = PerIp::new(&settings());
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "203.0.113.7, 10.0.0.1".parse().unwrap());
        let proxy: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let stranger: SocketAddr = "198.51.100.1:4000".parse().unwrap();
        assert_eq!(
            limits.client_ip(proxy, &h),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            limits.client_ip(stranger, &h),
            stranger.ip(),
            "a header from an untrusted peer is ignored"
        );
        assert_eq!(limits.client_ip(proxy, &HeaderMap::new()), proxy.ip());
    }
}
