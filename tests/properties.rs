//! Property tests (proptest) over what reads untrusted input: the frame
//! decoder and the input validators. The case count is bounded so CI stays
//! fast (`CASES` each; raise it locally with PROPTEST_CASES).
//!
//! Properties:
//! - the decoder never panics, refuses every input it cannot read with a
//!   typed error, refuses frames above the limit before parsing, and reads
//!   back every frame a client can write;
//! - every frame, event and error the server writes reads back the same in
//!   one pass (`protocol::read`), with members it does not know ignored;
//! - a lossless cursor applies each seq once and in order, whatever order
//!   and repeats the events come in;
//! - the validators never panic, their output meets their rules, and
//!   validating an accepted value again gives it back unchanged.
#![allow(clippy::unwrap_used)] // tests may unwrap

use proptest::prelude::*;
use tandem::error::AppError;
use tandem::protocol::{
    ChatMessage, ClientFrame, Delete, Edit, ErrorCode, ErrorFrame, Event, EventData, Lobby, Policy,
    Presence, Present, ProtocolError, RoomUnread, ServerFrame, Tick, Topic, Unread, Version,
};
use tandem::server::validate;
use tandem::sync::cursor::{Cursor, Step};
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

fn uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn event_data() -> impl Strategy<Value = EventData> {
    prop_oneof![
        (
            uuid(),
            ".{0,20}",
            any::<i64>(),
            ".{0,40}",
            any::<i64>(),
            proptest::option::of(any::<i64>()),
            any::<bool>(),
            any::<u64>()
        )
            .prop_map(
                |(client_id, author, author_id, body, sent_at, edited_at, deleted, revised)| {
                    EventData::Message(ChatMessage {
                        client_id,
                        author,
                        author_id,
                        body,
                        sent_at,
                        edited_at,
                        deleted,
                        revised,
                    })
                }
            ),
        (
            uuid(),
            any::<u64>(),
            ".{0,40}",
            ".{0,20}",
            any::<i64>(),
            any::<i64>()
        )
            .prop_map(|(client_id, target, body, author, author_id, edited_at)| {
                EventData::Edit(Edit {
                    client_id,
                    target,
                    body,
                    author,
                    author_id,
                    edited_at,
                })
            }),
        (uuid(), any::<u64>(), ".{0,20}", any::<i64>(), any::<i64>()).prop_map(
            |(client_id, target, by, by_id, deleted_at)| EventData::Delete(Delete {
                client_id,
                target,
                by,
                by_id,
                deleted_at,
            })
        ),
        (-1e12f64..1e12, any::<i64>()).prop_map(|(price, ts)| EventData::Tick(Tick { price, ts })),
        (
            proptest::collection::vec(
                (any::<i64>(), ".{0,20}", any::<bool>(), any::<bool>()).prop_map(
                    |(id, name, away, typing)| Present {
                        id,
                        name,
                        away,
                        typing
                    }
                ),
                0..4
            ),
            any::<u32>()
        )
            .prop_map(|(users, count)| EventData::Presence(Presence { users, count })),
        (
            proptest::collection::vec(
                (any::<i64>(), any::<u32>())
                    .prop_map(|(room_id, count)| RoomUnread { room_id, count }),
                0..4
            ),
            any::<u32>()
        )
            .prop_map(|(rooms, total)| EventData::Unread(Unread { rooms, total })),
        any::<i64>().prop_map(|newest_room| EventData::Lobby(Lobby { newest_room })),
        Just(EventData::Unknown),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    (topic(), version(), event_data()).prop_map(|(topic, version, data)| Event {
        topic,
        version,
        data,
    })
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    prop_oneof![
        Just(ErrorCode::BadFrame),
        Just(ErrorCode::UnknownType),
        Just(ErrorCode::TooLarge),
        Just(ErrorCode::InvalidTopic),
        Just(ErrorCode::NotFound),
        Just(ErrorCode::Validation),
        Just(ErrorCode::Unauthenticated),
        Just(ErrorCode::Limit),
        Just(ErrorCode::Forbidden),
        Just(ErrorCode::Conflict),
        Just(ErrorCode::Internal),
    ]
}

/// Every frame the server writes, except `batch`.
fn single_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        (
            any::<u64>(),
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            any::<u32>(),
            any::<u64>()
        )
            .prop_map(
                |(conn_id, protocol, hi, ht, max, hidden)| ServerFrame::Hello {
                    conn_id,
                    protocol,
                    heartbeat_interval_ms: hi,
                    heartbeat_timeout_ms: ht,
                    max_frame_bytes: max as usize,
                    hidden_tab_ms: hidden,
                }
            ),
        (topic(), version(), any::<bool>()).prop_map(|(topic, version, latest)| {
            ServerFrame::Subscribed {
                topic,
                version,
                policy: if latest {
                    Policy::LatestWins
                } else {
                    Policy::Lossless
                },
            }
        }),
        topic().prop_map(|topic| ServerFrame::Unsubscribed { topic }),
        event().prop_map(ServerFrame::Event),
        (topic(), version(), ".{0,30}").prop_map(|(topic, version, reason)| ServerFrame::Reset {
            topic,
            version,
            reason
        }),
        (uuid(), event()).prop_map(|(client_id, event)| ServerFrame::Ack { client_id, event }),
        (
            error_code(),
            ".{0,40}",
            proptest::option::of(topic()),
            proptest::option::of(uuid()),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(code, message, topic, client_id, retry_after_ms)| {
                ServerFrame::Error(ErrorFrame {
                    code,
                    message,
                    topic,
                    client_id,
                    retry_after_ms,
                })
            }),
        Just(ServerFrame::Ping {}),
        Just(ServerFrame::Pong {}),
        (".{0,30}", any::<u64>())
            .prop_map(|(reason, window_ms)| ServerFrame::Reconnect { reason, window_ms }),
    ]
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    prop_oneof![
        3 => single_frame(),
        1 => proptest::collection::vec(single_frame(), 0..4)
            .prop_map(|frames| ServerFrame::Batch { frames }),
    ]
}

fn app_error() -> impl Strategy<Value = AppError> {
    prop_oneof![
        ".{0,40}".prop_map(AppError::Validation),
        ".{0,40}".prop_map(AppError::NotFound),
        ".{0,40}".prop_map(AppError::Conflict),
        ".{0,40}".prop_map(AppError::Unauthenticated),
        ".{0,40}".prop_map(AppError::Forbidden),
        ".{0,40}".prop_map(AppError::Limit),
        Just(AppError::Internal),
        ".{0,40}".prop_map(AppError::Transport),
    ]
}

/// `json` (an object) with member `key` set to `value` first and last: a
/// member this build does not know, wherever it comes.
fn with_unknown_member(json: &str, key: &str, value: &serde_json::Value) -> String {
    let value = serde_json::to_string(value).unwrap();
    let inner = json.strip_prefix('{').unwrap().strip_suffix('}').unwrap();
    let sep = if inner.is_empty() { "" } else { "," };
    format!(r#"{{"{key}":{value}{sep}{inner},"{key}2":{value}}}"#)
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

    #[test]
    fn every_frame_the_server_writes_reads_back(frame in server_frame()) {
        let json = frame.to_json().unwrap();
        prop_assert_eq!(serde_json::from_str::<ServerFrame>(&json).unwrap(), frame.clone());
        // The same bytes through the other reader (server functions read bytes).
        prop_assert_eq!(serde_json::from_slice::<ServerFrame>(json.as_bytes()).unwrap(), frame);
    }

    #[test]
    fn members_a_frame_does_not_know_are_ignored(
        frame in single_frame(),
        key in "[a-z]{1,3}_x",
        value in prop_oneof![
            Just(serde_json::json!(null)),
            Just(serde_json::json!(7)),
            Just(serde_json::json!("s")),
            Just(serde_json::json!([1, {"kind": "x"}])),
            Just(serde_json::json!({"type": "hello", "kind": "message"})),
        ],
    ) {
        let json = with_unknown_member(&frame.to_json().unwrap(), &key, &value);
        prop_assert_eq!(serde_json::from_str::<ServerFrame>(&json).unwrap(), frame);
    }

    #[test]
    fn every_event_reads_back_and_an_unknown_kind_is_unknown(data in event_data(), kind in "[a-z]{1,8}_new") {
        let json = serde_json::to_string(&data).unwrap();
        prop_assert_eq!(serde_json::from_str::<EventData>(&json).unwrap(), data);
        let renamed = json.replacen(r#""kind":""#, &format!(r#""kind":"{kind}","was":""#), 1);
        prop_assert_eq!(serde_json::from_str::<EventData>(&renamed).unwrap(), EventData::Unknown);
    }

    #[test]
    fn every_app_error_reads_back(error in app_error()) {
        let json = serde_json::to_string(&error).unwrap();
        prop_assert_eq!(serde_json::from_str::<AppError>(&json).unwrap(), error.clone());
        let json = with_unknown_member(&json, "later", &serde_json::json!({"code": "x"}));
        prop_assert_eq!(serde_json::from_str::<AppError>(&json).unwrap(), error);
    }

    #[test]
    fn a_lossless_cursor_applies_each_seq_once_in_order(
        order in Just((1u64..=40).collect::<Vec<_>>()).prop_shuffle(),
        repeats in proptest::collection::vec(0usize..40, 0..20),
    ) {
        // Every seq of 1..=40 offered in any order, some twice.
        let mut offered = order.clone();
        for (i, r) in repeats.iter().enumerate() {
            offered.insert((i * 7) % offered.len(), order[*r]);
        }
        let mut cursor = Cursor::new(Version::new(1, 0), Policy::Lossless);
        let mut applied = Vec::new();
        for seq in offered {
            let ev = Event {
                topic: Topic::room(1),
                version: Version::new(1, seq),
                data: EventData::Unknown,
            };
            match cursor.offer(ev) {
                Step::Apply(evs) => applied.extend(evs.iter().map(|e| e.version.seq)),
                Step::Gap { have, missing_to } => {
                    prop_assert_eq!(have, cursor.version());
                    prop_assert!(missing_to > have.seq && missing_to < seq);
                }
                Step::Ignore => {}
                Step::Reset => prop_assert!(false, "no reset within one epoch and MAX_HELD"),
            }
        }
        prop_assert_eq!(applied, (1..=40).collect::<Vec<_>>());
        prop_assert!(!cursor.has_gap());
        prop_assert_eq!(cursor.version(), Version::new(1, 40));
    }
}
