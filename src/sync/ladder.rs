//! The transport ladder's decisions (pure, compiled in both builds and
//! unit-tested; `live` acts on them in the browser).
//!
//! Rungs, top to bottom: WebSocket, SSE, long polling, short polling. The
//! client starts on the top rung (or the last rung that worked in this tab,
//! or a forced one). An attempt on a rung ends in one of three ways:
//! - **worked**: it delivered (the socket's or stream's `hello`, a poll's
//!   answer) before ending: a rung that works and later drops (a server
//!   restart) is tried again, never left;
//! - **failed**: it delivered nothing, or a long request was cut, while the
//!   server answered a plain request (`/healthz`) at the same time: the rung
//!   is blocked on the way. Two failures in a row step down one rung;
//! - **unreachable**: the server did not answer a plain request either (it
//!   is restarting, or the network is down): no rung is to blame, and the
//!   ladder stays where it is.
//!
//! On a lower rung the ladder climbs back tentatively: after a probe delay
//! (10 s at first, with jitter) it tries the rung above for real. If that
//! attempt works, the ladder stays there (and later probes the next rung up);
//! if it fails once, the ladder steps back down at once and doubles the
//! delay (at most 5 minutes). Nothing is lost by a failed climb: every rung
//! resumes from the versions the client holds.

/// A transport, top (preferred) to bottom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rung {
    WebSocket,
    Sse,
    LongPoll,
    ShortPoll,
}

impl Rung {
    pub const ALL: [Rung; 4] = [Rung::WebSocket, Rung::Sse, Rung::LongPoll, Rung::ShortPoll];

    /// Its name in URLs (`?transport=`), settings and storage.
    pub fn name(self) -> &'static str {
        match self {
            Rung::WebSocket => "websocket",
            Rung::Sse => "sse",
            Rung::LongPoll => "long-poll",
            Rung::ShortPoll => "short-poll",
        }
    }

    /// How the page shows it.
    pub fn label(self) -> &'static str {
        match self {
            Rung::WebSocket => "WebSocket",
            Rung::Sse => "SSE",
            Rung::LongPoll => "long polling",
            Rung::ShortPoll => "short polling",
        }
    }

    pub fn parse(name: &str) -> Option<Rung> {
        Rung::ALL.into_iter().find(|r| r.name() == name)
    }

    pub fn below(self) -> Option<Rung> {
        match self {
            Rung::WebSocket => Some(Rung::Sse),
            Rung::Sse => Some(Rung::LongPoll),
            Rung::LongPoll => Some(Rung::ShortPoll),
            Rung::ShortPoll => None,
        }
    }

    pub fn above(self) -> Option<Rung> {
        match self {
            Rung::WebSocket => None,
            Rung::Sse => Some(Rung::WebSocket),
            Rung::LongPoll => Some(Rung::Sse),
            Rung::ShortPoll => Some(Rung::LongPoll),
        }
    }
}

/// How an attempt on a rung ended (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Worked,
    Failed,
    Unreachable,
}

/// Failures in a row that step down a rung.
pub const STEP_DOWN_AFTER: u32 = 2;
/// The first delay before climbing back.
pub const FIRST_PROBE_MS: f64 = 10_000.0;
/// The longest delay before climbing back.
pub const MAX_PROBE_MS: f64 = 300_000.0;

/// How often short polling polls when the server's answer does not say
/// (the server's `short-poll-ms` default).
pub const SHORT_POLL_MS: u32 = 2_000;
/// The bounds within which a client follows the server's `poll_ms`: a
/// misconfigured server can neither make it poll in a tight loop nor stop.
pub const SHORT_POLL_MIN_MS: u32 = 500;
pub const SHORT_POLL_MAX_MS: u32 = 60_000;

/// How long to wait before the next short poll, given the last answer's
/// `poll_ms` (docs/PROTOCOL.md §15).
pub fn short_poll_pause(advice: Option<u64>) -> u32 {
    advice.map_or(SHORT_POLL_MS, |ms| {
        u32::try_from(ms)
            .unwrap_or(u32::MAX)
            .clamp(SHORT_POLL_MIN_MS, SHORT_POLL_MAX_MS)
    })
}

#[derive(Clone, Debug)]
pub struct Ladder {
    rung: Rung,
    /// Forced by a setting or the URL: never leaves it.
    forced: bool,
    /// Failures in a row on this rung.
    failures: u32,
    /// On this rung by a climb that has not worked yet.
    tentative: bool,
    probe_delay_ms: f64,
    /// When to climb back (`None`: on the top rung, or forced).
    probe_at: Option<f64>,
}

impl Ladder {
    /// A ladder starting on `start` (the top rung, or the last that worked
    /// in this tab). `jitter` is uniform in [0, 1).
    pub fn new(start: Rung, forced: bool, now: f64, jitter: f64) -> Self {
        let mut ladder = Ladder {
            rung: start,
            forced,
            failures: 0,
            tentative: false,
            probe_delay_ms: FIRST_PROBE_MS,
            probe_at: None,
        };
        ladder.schedule(now, jitter);
        ladder
    }

    pub fn rung(&self) -> Rung {
        self.rung
    }

    pub fn forced(&self) -> bool {
        self.forced
    }

    /// An attempt on the current rung ended.
    pub fn ended(&mut self, how: Ended, now: f64, jitter: f64) {
        match how {
            Ended::Unreachable => {}
            Ended::Worked => {
                self.failures = 0;
                if std::mem::take(&mut self.tentative) {
                    self.probe_delay_ms = FIRST_PROBE_MS;
                    self.schedule(now, jitter);
                }
            }
            Ended::Failed if self.forced => {}
            Ended::Failed if self.tentative => {
                // The climb did not hold: back down, and wait longer.
                self.tentative = false;
                self.failures = 0;
                self.rung = self.rung.below().unwrap_or(self.rung);
                self.probe_delay_ms = (self.probe_delay_ms * 2.0).min(MAX_PROBE_MS);
                self.schedule(now, jitter);
            }
            Ended::Failed => {
                self.failures += 1;
                if self.failures >= STEP_DOWN_AFTER {
                    if let Some(below) = self.rung.below() {
                        self.rung = below;
                        self.failures = 0;
                        self.probe_delay_ms = FIRST_PROBE_MS;
                        self.schedule(now, jitter);
                    }
                }
            }
        }
    }

    /// The current attempt has shown it works (a `hello`, a stable stream, a
    /// poll's answer): a tentative climb holds, and the next probe upward is
    /// scheduled now rather than when the attempt ends.
    pub fn working(&mut self, now: f64, jitter: f64) {
        self.failures = 0;
        if std::mem::take(&mut self.tentative) {
            self.probe_delay_ms = FIRST_PROBE_MS;
            self.schedule(now, jitter);
        }
    }

    /// Whether it is time to climb (the running attempt should end).
    pub fn climb_due(&self, now: f64) -> bool {
        self.probe_at.is_some_and(|at| now >= at)
    }

    /// Climbs one rung, tentatively, if it is time.
    pub fn climb_if_due(&mut self, now: f64) -> bool {
        if !self.climb_due(now) {
            return false;
        }
        let Some(above) = self.rung.above() else {
            return false;
        };
        self.rung = above;
        self.tentative = true;
        self.failures = 0;
        self.probe_at = None;
        true
    }

    fn schedule(&mut self, now: f64, jitter: f64) {
        self.probe_at = match (self.forced, self.rung.above()) {
            (false, Some(_)) => Some(now + self.probe_delay_ms * (0.75 + 0.5 * jitter)),
            _ => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_polls_follow_the_servers_advice_within_bounds() {
        assert_eq!(short_poll_pause(None), SHORT_POLL_MS);
        assert_eq!(short_poll_pause(Some(5_000)), 5_000);
        assert_eq!(short_poll_pause(Some(0)), SHORT_POLL_MIN_MS);
        assert_eq!(short_poll_pause(Some(10)), SHORT_POLL_MIN_MS);
        assert_eq!(short_poll_pause(Some(3_600_000)), SHORT_POLL_MAX_MS);
        assert_eq!(short_poll_pause(Some(u64::MAX)), SHORT_POLL_MAX_MS);
    }

    #[test]
    fn names_round_trip_and_rungs_are_ordered() {
        for r in Rung::ALL {
            assert_eq!(Rung::parse(r.name()), Some(r));
            if let Some(b) = r.below() {
                assert!(b > r);
                assert_eq!(b.above(), Some(r));
            }
        }
        assert_eq!(Rung::parse("carrier-pigeon"), None);
    }

    #[test]
    fn two_failures_in_a_row_step_down_one_rung_and_a_success_resets_the_count() {
        let mut l = Ladder::new(Rung::WebSocket, false, 0.0, 0.5);
        l.ended(Ended::Failed, 1.0, 0.5);
        l.ended(Ended::Worked, 2.0, 0.5);
        l.ended(Ended::Failed, 3.0, 0.5);
        assert_eq!(l.rung(), Rung::WebSocket, "not two in a row");
        l.ended(Ended::Failed, 4.0, 0.5);
        assert_eq!(l.rung(), Rung::Sse);
        for _ in 0..2 {
            l.ended(Ended::Failed, 5.0, 0.5);
        }
        assert_eq!(l.rung(), Rung::LongPoll);
        for _ in 0..2 {
            l.ended(Ended::Failed, 6.0, 0.5);
        }
        assert_eq!(l.rung(), Rung::ShortPoll);
        for _ in 0..5 {
            l.ended(Ended::Failed, 7.0, 0.5);
        }
        assert_eq!(l.rung(), Rung::ShortPoll, "the bottom rung stays");
    }

    #[test]
    fn an_unreachable_server_blames_no_rung() {
        let mut l = Ladder::new(Rung::WebSocket, false, 0.0, 0.5);
        for _ in 0..10 {
            l.ended(Ended::Unreachable, 1.0, 0.5);
        }
        assert_eq!(l.rung(), Rung::WebSocket);
        assert!(!l.climb_due(1e12), "nothing to climb to from the top");
    }

    #[test]
    fn a_climb_that_holds_stays_and_one_that_fails_steps_back_and_waits_longer() {
        let mut l = Ladder::new(Rung::WebSocket, false, 0.0, 0.5);
        l.ended(Ended::Failed, 0.0, 0.5);
        l.ended(Ended::Failed, 0.0, 0.5);
        assert_eq!(l.rung(), Rung::Sse);
        assert!(
            !l.climb_if_due(FIRST_PROBE_MS - 1.0),
            "not before the delay"
        );
        assert!(l.climb_if_due(FIRST_PROBE_MS));
        assert_eq!(l.rung(), Rung::WebSocket);
        // One failure of a tentative climb is enough to go back.
        let t = FIRST_PROBE_MS;
        l.ended(Ended::Failed, t, 0.5);
        assert_eq!(l.rung(), Rung::Sse);
        assert!(!l.climb_due(t + 2.0 * FIRST_PROBE_MS - 1.0), "doubled");
        assert!(l.climb_if_due(t + 2.0 * FIRST_PROBE_MS));
        // This time it holds: stays, and the delay starts over.
        l.ended(Ended::Worked, 40_000.0, 0.5);
        assert_eq!(l.rung(), Rung::WebSocket);
        l.ended(Ended::Failed, 41_000.0, 0.5);
        assert_eq!(l.rung(), Rung::WebSocket, "no longer tentative");
    }

    #[test]
    fn a_climb_shown_to_work_holds_through_a_later_failure_and_probes_on() {
        let mut l = Ladder::new(Rung::ShortPoll, false, 0.0, 0.5);
        assert!(l.climb_if_due(FIRST_PROBE_MS * 2.0));
        assert_eq!(l.rung(), Rung::LongPoll);
        // The first answer came: the climb holds, the next probe is due later.
        let t = FIRST_PROBE_MS * 2.0 + 100.0;
        l.working(t, 0.5);
        assert!(!l.climb_due(t + FIRST_PROBE_MS - 1.0));
        assert!(l.climb_due(t + FIRST_PROBE_MS));
        // Hours later a blip: one failure, not a failed climb.
        l.ended(Ended::Failed, t + 1e7, 0.5);
        assert_eq!(l.rung(), Rung::LongPoll);
    }

    #[test]
    fn the_probe_delay_is_capped_and_jittered() {
        let mut l = Ladder::new(Rung::ShortPoll, false, 0.0, 0.0);
        assert!(l.climb_due(0.75 * FIRST_PROBE_MS));
        let mut now = 0.0;
        for _ in 0..20 {
            now += MAX_PROBE_MS * 2.0;
            assert!(l.climb_if_due(now));
            l.ended(Ended::Failed, now, 0.999);
        }
        assert!(!l.climb_due(now + MAX_PROBE_MS * 1.24));
        assert!(l.climb_due(now + MAX_PROBE_MS * 1.25));
    }

    #[test]
    fn a_forced_rung_is_never_left() {
        let mut l = Ladder::new(Rung::LongPoll, true, 0.0, 0.5);
        for _ in 0..5 {
            l.ended(Ended::Failed, 1.0, 0.5);
        }
        assert_eq!(l.rung(), Rung::LongPoll);
        assert!(!l.climb_if_due(1e12));
        let top = Ladder::new(Rung::Sse, false, 0.0, 0.5);
        assert!(
            top.climb_due(FIRST_PROBE_MS * 1.25),
            "a remembered lower rung probes up"
        );
    }
}
