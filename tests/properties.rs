//! Property tests (proptest) over what reads untrusted input: the frame
//! decoder and the input validators. The case count is bounded so CI stays
//! fast (`CASES` each; raise it locally with PROPTEST_CASES).
//!
//! Properties:
//! - the decoder never panics, refuses every input it cannot read with a
//!   typed error, refuses frames above the limit before parsing, and reads
//!   back every frame a client can write;
//! - the validators never panic, their output meets their rules, and
//!   validating an accepted value again gives it back unchanged.
#![allow(clippy::unwrap_used)] // tests may unwrap

use proptest::prelude::*;
use tandem::protocol::{ClientFrame, ErrorCode, ProtocolError, Tick, Topic, Version};
use tandem::server::validate;
use uuid::Uuid;

const CASES: u32 = 256;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(CASES),
        ..ProptestConfig::default()
    }
}

fn topic() -> impl Strategy<Value = Topic> {
    prop_oneof![
        (1i64..i64::MAX).prop_map(Topic::room),
        "[A-Z0-9._-]{1,16}".prop_map(|s| Topic::ticker(&s).unwrap()),
    ]
}

fn version() -> impl Strategy<Value = Version> {
    (any::<u32>(), 0u64..(1 << 53)).prop_map(|(e, s)| Version::new(e, s))
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        (topic(), proptest::option::of(version()))
            .prop_map(|(topic, since)| ClientFrame::Subscribe { topic, since }),
        (topic(), any::<bool>()).prop_map(|(topic, away)| ClientFrame::Unsubscribe { topic, away }),
        (topic(), any::<u128>(), ".{0,200}").prop_map(|(topic, id, body)| ClientFrame::Send {
            topic,
            client_id: Uuid::from_u128(id),
            body,
        }),
        (topic(), -1e12f64..1e12, any::<i64>()).prop_map(|(topic, price, ts)| {
            ClientFrame::Publish {
                topic,
                tick: Tick { price, ts },
            }
        }),
        Just(ClientFrame::Ping {}),
        Just(ClientFrame::Pong {}),
    ]
}

/// JSON-ish noise: objects with a `type` and arbitrary members, and bytes.
fn noise() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,300}",
        (
            prop_oneof![
                Just("subscribe"),
                Just("send"),
                Just("publish"),
                Just("ping"),
                Just("x")
            ],
            proptest::collection::vec(("[a-z_]{1,8}", ".{0,20}"), 0..4)
        )
            .prop_map(|(t, members)| {
                let mut s = format!(r#"{{"type":"{t}""#);
                for (k, v) in members {
                    s.push_str(&format!(r#","{k}":{}"#, serde_json::to_string(&v).unwrap()));
                }
                s.push('}');
                s
            }),
    ]
}

fn name_rules(name: &str, max: usize) -> Result<(), TestCaseError> {
    let len = name.chars().count();
    prop_assert!((1..=max).contains(&len), "{name:?}");
    prop_assert_eq!(name.trim(), name);
    prop_assert!(!name.chars().any(char::is_control));
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_frame_a_client_writes_reads_back(frame in client_frame()) {
        let json = frame.to_json().unwrap();
        prop_assert_eq!(ClientFrame::decode(&json, 1 << 20), Ok(frame));
    }

    #[test]
    fn the_decoder_never_panics_and_types_every_refusal(text in noise()) {
        match ClientFrame::decode(&text, 4096) {
            Ok(_) => {}
            Err(e) => prop_assert!(matches!(
                e.code(),
                ErrorCode::BadFrame | ErrorCode::UnknownType | ErrorCode::InvalidTopic | ErrorCode::TooLarge
            )),
        }
    }

    #[test]
    fn frames_above_the_limit_are_refused_before_parsing(text in ".{1,400}", max in 0usize..100) {
        prop_assume!(text.len() > max);
        let refused = ClientFrame::decode(&text, max);
        prop_assert_eq!(refused, Err(ProtocolError::TooLarge { len: text.len(), max }));
    }

    #[test]
    fn names_meet_their_rules_and_validation_is_stable(raw in "\\PC{0,40}|.{0,40}") {
        if let Ok(name) = validate::display_name(&raw) {
            name_rules(&name, validate::MAX_DISPLAY_NAME_CHARS)?;
            prop_assert_eq!(validate::display_name(&name), Ok(name));
        }
        if let Ok(name) = validate::room_name(&raw, 64) {
            name_rules(&name, 64)?;
            prop_assert_eq!(validate::room_name(&name, 64), Ok(name));
        }
    }

    #[test]
    fn bodies_meet_their_rules_and_validation_is_stable(raw in "(.|\r\n|\n|\t){0,60}") {
        if let Ok(body) = validate::message_body(&raw, 50) {
            let len = body.chars().count();
            prop_assert!((1..=50).contains(&len));
            prop_assert!(!body.contains('\r'));
            prop_assert!(!body.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
            prop_assert_eq!(validate::message_body(&body, 50), Ok(body.clone()));
        }
    }
}
