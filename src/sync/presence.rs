//! `PresenceState`: who is in a room, as the client holds it (the room's
//! `presence:` topic, a `Latest<Presence>`), and the texts drawn from it.
//! Pure; both builds.

use super::latest::Latest;
use crate::protocol::Presence;

/// Who is in a room, as the client holds it.
pub type PresenceState = Latest<Presence>;

impl Latest<Presence> {
    /// Names of those typing, except `me`.
    pub fn typing(&self, me: Option<i64>) -> Vec<String> {
        self.current()
            .iter()
            .flat_map(|p| &p.users)
            .filter(|u| u.typing && Some(u.id) != me)
            .map(|u| u.name.clone())
            .collect()
    }
}

/// "ann is typing…", "ann and bob are typing…", "several people are typing…".
pub fn typing_line(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [one] => format!("{one} is typing…"),
        [a, b] => format!("{a} and {b} are typing…"),
        _ => "several people are typing…".into(),
    }
}

/// Who joined and who left between two states, as one short notice.
pub fn arrivals(before: &Presence, after: &Presence, me: Option<i64>) -> Option<String> {
    let ids = |p: &Presence| p.users.iter().map(|u| u.id).collect::<Vec<_>>();
    let (was, is) = (ids(before), ids(after));
    let joined: Vec<&str> = after
        .users
        .iter()
        .filter(|u| !was.contains(&u.id) && Some(u.id) != me)
        .map(|u| u.name.as_str())
        .collect();
    let left: Vec<&str> = before
        .users
        .iter()
        .filter(|u| !is.contains(&u.id) && Some(u.id) != me)
        .map(|u| u.name.as_str())
        .collect();
    let part = |names: &[&str], verb: &str| match names {
        [] => None,
        [one] => Some(format!("{one} {verb}")),
        [a, b] => Some(format!("{a} and {b} {verb}")),
        many => Some(format!("{} people {verb}", many.len())),
    };
    match (part(&joined, "joined"), part(&left, "left")) {
        (None, None) => None,
        (Some(j), None) => Some(j),
        (None, Some(l)) => Some(l),
        (Some(j), Some(l)) => Some(format!("{j}; {l}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Event, EventData, Present, Topic, Version};
    use crate::sync::topic::{Follow, TopicState};

    fn state(epoch: u32, seq: u64, users: &[(i64, &str, bool)]) -> Event {
        Event {
            topic: Topic::presence(1),
            version: Version::new(epoch, seq),
            data: EventData::Presence(Presence {
                users: users
                    .iter()
                    .map(|(id, name, typing)| Present {
                        id: *id,
                        name: (*name).into(),
                        typing: *typing,
                        away: false,
                    })
                    .collect(),
                count: users.len() as u32,
            }),
        }
    }

    #[test]
    fn takes_the_newest_state_whole_and_ignores_older_ones() {
        let mut s = PresenceState::default();
        assert_eq!(
            s.receive(state(5, 3, &[(1, "ann", false)])),
            Follow::Nothing
        );
        s.receive(state(5, 7, &[(1, "ann", false), (2, "bob", true)]));
        s.receive(state(5, 6, &[]));
        assert_eq!(s.current().unwrap().users.len(), 2);
        assert_eq!(s.typing(Some(1)), ["bob"]);
        assert!(s.typing(Some(2)).is_empty(), "not one's own");
        assert_eq!(s.receive(state(6, 1, &[])), Follow::Reload, "a restart");
    }

    #[test]
    fn notices_and_typing_lines() {
        let p = |e: Event| match e.data {
            EventData::Presence(p) => p,
            _ => unreachable!(),
        };
        let a = p(state(1, 1, &[(1, "me", false), (2, "ann", false)]));
        let b = p(state(1, 2, &[(1, "me", false), (3, "bob", false)]));
        assert_eq!(
            arrivals(&a, &b, Some(1)).as_deref(),
            Some("bob joined; ann left")
        );
        assert_eq!(arrivals(&a, &a, Some(1)), None);
        assert_eq!(typing_line(&[]), "");
        assert_eq!(typing_line(&["ann".into()]), "ann is typing…");
        assert_eq!(
            typing_line(&["ann".into(), "bob".into()]),
            "ann and bob are typing…"
        );
        assert_eq!(
            typing_line(&["a".into(), "b".into(), "c".into()]),
            "several people are typing…"
        );
    }
}
