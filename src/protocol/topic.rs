//! Topics, their kinds and delivery policies, and versions: the vocabulary of
//! the sync core (DESIGN.md §2). Both builds.
//!
//! A `Topic` is an enum with one variant per kind, so every match over kinds
//! is exhaustive: adding a kind (`user:`, `doc:`, `presence:`) makes the
//! compiler list every place that must decide what the new kind means. It is
//! `Copy` (a ticker symbol is stored inline), so the delivery hot path never
//! allocates for a topic. On the wire it is the string `<kind>:<id>`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Longest topic name accepted anywhere, in bytes.
pub const MAX_TOPIC_LEN: usize = 128;
/// Longest ticker symbol, in bytes.
pub const MAX_SYMBOL_LEN: usize = 16;

/// A named event stream. Validated on construction: a `Topic` in hand is
/// always well formed, though it may name a room that does not exist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// `room:<id>`: a chat room's message log.
    Room(i64),
    /// `ticker:<SYMBOL>`: a price feed.
    Ticker(Symbol),
    /// `presence:<room id>`: who is in a room now, and who is typing.
    Presence(i64),
    /// `user:<account id>`: one account's summary (unread counts per room).
    User(i64),
    /// `lobby:public`: the list of public rooms changed (a room was created).
    Lobby,
}

/// The kinds of topic, without their ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TopicKind {
    Room,
    Ticker,
    Presence,
    User,
    Lobby,
}

/// How a topic's events reach a subscriber that falls behind. Announced in
/// `subscribed` and fixed per kind (`TopicKind::policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Every event, in order, with no gaps: a lagging connection gets the
    /// missing events from the topic's log (or `reset` when too far behind).
    Lossless,
    /// Only the newest value matters: a lagging connection receives the
    /// newest event and skips the ones in between. Versions still only
    /// increase; a client accepts any newer seq.
    LatestWins,
}

/// What a connection does with a topic's next event, by the topic's policy,
/// given the version it last wrote (`Policy::admit`). One rule for every
/// writer: the connection's task (`Session::deliver`) and the broker
/// writing straight to a socket (`Wire::offer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Write it; `skipped` newer latest-wins values were passed over
    /// (coalesced). Always 0 for a lossless topic.
    Write { skipped: u64 },
    /// At or below what was written: already sent, dropped.
    Stale,
    /// A lossless topic's events are missing before it: repair from the log.
    Gap,
    /// Another epoch: the subscriber must reset.
    NewEpoch,
}

impl Policy {
    /// Decides what a connection that last wrote `last` does with `next`.
    pub fn admit(self, last: Version, next: Version) -> Admit {
        if next.epoch != last.epoch {
            return Admit::NewEpoch;
        }
        match self {
            _ if next.seq <= last.seq => Admit::Stale,
            Policy::Lossless if next.seq == last.seq + 1 => Admit::Write { skipped: 0 },
            Policy::Lossless => Admit::Gap,
            Policy::LatestWins => Admit::Write {
                skipped: next.seq - last.seq - 1,
            },
        }
    }
}

/// Where a kind's events live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Persisted in the store before anyone sees them; survive restarts.
    Durable,
    /// A bounded in-memory window; a restart starts a new epoch.
    Ephemeral,
}

impl TopicKind {
    pub fn policy(self) -> Policy {
        match self {
            TopicKind::Room => Policy::Lossless,
            TopicKind::Ticker | TopicKind::Presence | TopicKind::User | TopicKind::Lobby => {
                Policy::LatestWins
            }
        }
    }

    pub fn durability(self) -> Durability {
        match self {
            TopicKind::Room => Durability::Durable,
            TopicKind::Ticker | TopicKind::Presence | TopicKind::User | TopicKind::Lobby => {
                Durability::Ephemeral
            }
        }
    }

    /// The kind's name on the wire and in metric labels.
    pub fn name(self) -> &'static str {
        match self {
            TopicKind::Room => "room",
            TopicKind::Ticker => "ticker",
            TopicKind::Presence => "presence",
            TopicKind::User => "user",
            TopicKind::Lobby => "lobby",
        }
    }
}

/// A ticker symbol: 1 to 16 of `A-Z 0-9 . _ -`, stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol {
    len: u8,
    bytes: [u8; MAX_SYMBOL_LEN],
}

impl Symbol {
    pub fn parse(s: &str) -> Result<Self, TopicError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_SYMBOL_LEN
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b"._-".contains(&b));
        if !ok {
            return Err(TopicError(format!(
                "`{}` is not a ticker symbol (1 to {MAX_SYMBOL_LEN} of A-Z 0-9 . _ -)",
                s.chars().take(32).collect::<String>()
            )));
        }
        let mut bytes = [0; MAX_SYMBOL_LEN];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        Ok(Symbol {
            len: s.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Proven by `parse`: only ASCII bytes are ever stored, so this is UTF-8.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Why a topic string was refused; the text says what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TopicError(pub String);

impl Topic {
    /// The topic of chat room `id`.
    pub fn room(id: i64) -> Self {
        Topic::Room(id)
    }

    /// Who is in chat room `id`.
    pub fn presence(id: i64) -> Self {
        Topic::Presence(id)
    }

    /// Account `id`'s summary.
    pub fn user(id: i64) -> Self {
        Topic::User(id)
    }

    /// The price feed of `symbol` (validated).
    pub fn ticker(symbol: &str) -> Result<Self, TopicError> {
        Symbol::parse(symbol).map(Topic::Ticker)
    }

    pub fn kind(&self) -> TopicKind {
        match self {
            Topic::Room(_) => TopicKind::Room,
            Topic::Ticker(_) => TopicKind::Ticker,
            Topic::Presence(_) => TopicKind::Presence,
            Topic::User(_) => TopicKind::User,
            Topic::Lobby => TopicKind::Lobby,
        }
    }

    pub fn policy(&self) -> Policy {
        self.kind().policy()
    }

    /// Parses and validates a topic name.
    pub fn parse(name: &str) -> Result<Self, TopicError> {
        if name.is_empty() || name.len() > MAX_TOPIC_LEN {
            return Err(TopicError(format!("a topic is 1 to {MAX_TOPIC_LEN} bytes")));
        }
        let room_id = |id: &str| match id.parse::<i64>() {
            Ok(n) if n > 0 && id == n.to_string() => Ok(n),
            _ => Err(TopicError(format!(
                "`{id}` is not a room id (a positive integer)"
            ))),
        };
        match name.split_once(':') {
            Some(("room", id)) => room_id(id).map(Topic::Room),
            Some(("presence", id)) => room_id(id).map(Topic::Presence),
            Some(("user", id)) => room_id(id).map(Topic::User),
            Some(("lobby", "public")) => Ok(Topic::Lobby),
            Some(("ticker", sym)) => Topic::ticker(sym),
            _ => Err(TopicError(format!(
                "unknown topic kind in `{}` (expected `room:<id>`, `presence:<room id>`, `user:<id>`, `lobby:public` or `ticker:<SYMBOL>`)",
                name.chars().take(32).collect::<String>()
            ))),
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::Room(id) => write!(f, "room:{id}"),
            Topic::Ticker(s) => write!(f, "ticker:{}", s.as_str()),
            Topic::Presence(id) => write!(f, "presence:{id}"),
            Topic::User(id) => write!(f, "user:{id}"),
            Topic::Lobby => f.write_str("lobby:public"),
        }
    }
}

impl std::str::FromStr for Topic {
    type Err = TopicError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Topic::parse(s)
    }
}

impl Serialize for Topic {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Topic {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Topic;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a topic string such as `room:1`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Topic, E> {
                Topic::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(Visit)
    }
}

/// A position in a topic's log.
///
/// `seq` counts the topic's events from 1 with no gaps; `seq == 0` means
/// "before the first event". `epoch` identifies one incarnation of the log:
/// it changes only when the history is reset or lost, and a client holding a
/// version of another epoch must drop its state and reload the snapshot.
/// Epochs are compared for equality only. Both fit in a JavaScript number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub struct Version {
    pub epoch: u32,
    pub seq: u64,
}

impl Version {
    pub fn new(epoch: u32, seq: u64) -> Self {
        Version { epoch, seq }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_the_next_event_by_policy() {
        let at = Version::new(3, 10);
        let v = |epoch, seq| Version::new(epoch, seq);
        for policy in [Policy::Lossless, Policy::LatestWins] {
            assert_eq!(policy.admit(at, v(3, 11)), Admit::Write { skipped: 0 });
            assert_eq!(policy.admit(at, v(3, 10)), Admit::Stale, "{policy:?}");
            assert_eq!(policy.admit(at, v(3, 2)), Admit::Stale, "{policy:?}");
            // Epochs compare for equality only: an older one resets too.
            assert_eq!(policy.admit(at, v(4, 1)), Admit::NewEpoch);
            assert_eq!(policy.admit(at, v(2, 11)), Admit::NewEpoch);
        }
        assert_eq!(Policy::Lossless.admit(at, v(3, 12)), Admit::Gap);
        assert_eq!(
            Policy::LatestWins.admit(at, v(3, 14)),
            Admit::Write { skipped: 3 }
        );
        assert_eq!(
            Policy::LatestWins.admit(Version::default(), v(0, 1)),
            Admit::Write { skipped: 0 }
        );
    }

    #[test]
    fn topics_parse_round_trip_and_refuse_what_is_not_canonical() {
        assert_eq!(Topic::parse("room:42"), Ok(Topic::Room(42)));
        assert_eq!(Topic::parse("presence:42"), Ok(Topic::Presence(42)));
        assert_eq!(Topic::Presence(42).to_string(), "presence:42");
        assert_eq!(Topic::parse("user:7"), Ok(Topic::User(7)));
        assert_eq!(Topic::parse("lobby:public"), Ok(Topic::Lobby));
        assert_eq!(Topic::Lobby.to_string(), "lobby:public");
        let t = Topic::parse("ticker:BTC-USD").unwrap();
        assert_eq!(
            (t.kind(), t.to_string().as_str()),
            (TopicKind::Ticker, "ticker:BTC-USD")
        );
        assert_eq!(
            Topic::parse("ticker:ABCDEFGHIJKLMNOP")
                .unwrap()
                .to_string()
                .len(),
            23
        );
        for bad in [
            "ticker:",
            "ticker:btc",
            "ticker:ABCDEFGHIJKLMNOPQ",
            "ticker:A B",
            "",
            "room:",
            "room:0",
            "room:-1",
            "room:01",
            "room:+1",
            "room:x",
            "room:9223372036854775808",
            "presence:",
            "presence:0",
            "presence:abc",
            "user:x",
            "lobby:",
            "lobby:private",
            "room",
            &"r".repeat(200),
        ] {
            assert!(Topic::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let json = serde_json::to_string(&Topic::Room(7)).unwrap();
        assert_eq!(json, r#""room:7""#);
        assert_eq!(
            serde_json::from_str::<Topic>(&json).unwrap(),
            Topic::Room(7)
        );
        assert!(serde_json::from_str::<Topic>(r#""room:x""#).is_err());
    }

    #[test]
    fn every_kind_has_one_policy_and_durability() {
        assert_eq!(Topic::Room(1).policy(), Policy::Lossless);
        assert_eq!(Topic::ticker("A").unwrap().policy(), Policy::LatestWins);
        assert_eq!(TopicKind::Room.durability(), Durability::Durable);
        assert_eq!(TopicKind::Ticker.durability(), Durability::Ephemeral);
        assert_eq!(Topic::presence(1).policy(), Policy::LatestWins);
        assert_eq!(TopicKind::Presence.durability(), Durability::Ephemeral);
        assert_eq!(
            serde_json::to_string(&Policy::LatestWins).unwrap(),
            r#""latest_wins""#
        );
    }
}
