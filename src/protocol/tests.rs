//! Unit tests of the wire shapes: round trips, the documented JSON, typed
//! refusals, and lenient reading of server frames.

use super::*;

#[test]
fn client_frames_round_trip() {
    let frames = [
        ClientFrame::Subscribe {
            topic: Topic::room(3),
            since: Some(Version::new(9, 4)),
        },
        ClientFrame::Subscribe {
            topic: Topic::room(3),
            since: None,
        },
        ClientFrame::Unsubscribe {
            topic: Topic::room(3),
        },
        ClientFrame::Send {
            topic: Topic::room(1),
            client_id: Uuid::from_u128(7),
            body: "hi".into(),
        },
        ClientFrame::Publish {
            topic: Topic::ticker("ABC").unwrap(),
            tick: Tick { price: 1.5, ts: 7 },
        },
        ClientFrame::Ping {},
        ClientFrame::Pong {},
    ];
    for f in frames {
        let json = f.to_json().unwrap();
        assert_eq!(ClientFrame::decode(&json, 1024), Ok(f), "{json}");
    }
}

#[test]
fn documented_json_shapes() {
    let f = ClientFrame::decode(
        r#"{"type":"subscribe","topic":"room:1","since":{"epoch":5,"seq":2}}"#,
        1024,
    );
    assert_eq!(
        f,
        Ok(ClientFrame::Subscribe {
            topic: Topic::room(1),
            since: Some(Version::new(5, 2))
        })
    );
    assert_eq!(
        ClientFrame::decode(r#"{"type":"ping"}"#, 64),
        Ok(ClientFrame::Ping {})
    );
    let ev = ServerFrame::Event(Event {
        topic: Topic::room(1),
        version: Version::new(5, 3),
        data: EventData::Message(ChatMessage {
            client_id: Uuid::from_u128(1),
            author: "ann".into(),
            body: "yo".into(),
            sent_at: 10,
        }),
    });
    assert_eq!(
        ev.to_json().unwrap(),
        r#"{"type":"event","topic":"room:1","version":{"epoch":5,"seq":3},"data":{"kind":"message","client_id":"00000000-0000-0000-0000-000000000001","author":"ann","body":"yo","sent_at":10}}"#
    );
    let back: ServerFrame = serde_json::from_str(&ev.to_json().unwrap()).unwrap();
    assert_eq!(back, ev);
    let sub = ServerFrame::Subscribed {
        topic: Topic::ticker("ACME").unwrap(),
        version: Version::new(2, 9),
        policy: Policy::LatestWins,
    };
    assert_eq!(
        sub.to_json().unwrap(),
        r#"{"type":"subscribed","topic":"ticker:ACME","version":{"epoch":2,"seq":9},"policy":"latest_wins"}"#
    );
}

#[test]
fn refusals_are_typed() {
    assert!(matches!(
        ClientFrame::decode("not json", 64),
        Err(ProtocolError::BadFrame(_))
    ));
    assert!(
        matches!(ClientFrame::decode(r#"{"type":"dance"}"#, 64), Err(ProtocolError::UnknownType(t)) if t == "dance")
    );
    assert!(matches!(
        ClientFrame::decode(r#"{"type":"subscribe"}"#, 64),
        Err(ProtocolError::BadFrame(_))
    ));
    assert!(matches!(
        ClientFrame::decode(r#"{"type":"ping","x":1}"#, 64),
        Err(ProtocolError::BadFrame(_))
    ));
    assert!(matches!(
        ClientFrame::decode(r#"{"type":"subscribe","topic":"nope:1"}"#, 128),
        Err(ProtocolError::InvalidTopic(_))
    ));
    // A topic that is malformed *and* mentions the old error prefix is still
    // classified by type, not by its text.
    assert!(matches!(
        ClientFrame::decode(r#"{"type":"unsubscribe","topic":"invalid topic: x"}"#, 128),
        Err(ProtocolError::InvalidTopic(_))
    ));
    // A body that looks like an error text is a body.
    assert!(ClientFrame::decode(
        r#"{"type":"send","topic":"room:1","client_id":"00000000-0000-0000-0000-000000000001","body":"invalid topic: x"}"#,
        256
    )
    .is_ok());
    let big = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(100));
    assert_eq!(
        ClientFrame::decode(&big, 64),
        Err(ProtocolError::TooLarge {
            len: big.len(),
            max: 64
        })
    );
}

#[test]
fn server_frames_are_read_leniently() {
    // Unknown members are ignored.
    let f: ServerFrame = serde_json::from_str(r#"{"type":"pong","later":true}"#).unwrap();
    assert_eq!(f, ServerFrame::Pong {});
    // Unknown error codes and event kinds still decode.
    let e: ServerFrame = serde_json::from_str(
        r#"{"type":"error","code":"rate_limited","message":"slow down","topic":"room:1","retry_ms":5}"#,
    )
    .unwrap();
    assert!(matches!(
        e,
        ServerFrame::Error(ErrorFrame {
            code: ErrorCode::Unknown,
            topic: Some(Topic::Room(1)),
            ..
        })
    ));
    let ev: ServerFrame = serde_json::from_str(
        r#"{"type":"event","topic":"room:1","version":{"epoch":1,"seq":2},"data":{"kind":"edit","of":1}}"#,
    )
    .unwrap();
    assert!(matches!(
        ev,
        ServerFrame::Event(Event {
            data: EventData::Unknown,
            ..
        })
    ));
}

#[test]
fn prices_are_read_back_exactly() {
    // Found by tests/properties.rs: without serde_json's `float_roundtrip`
    // this price came back one unit in the last place off.
    let frame = ClientFrame::Publish {
        topic: Topic::ticker("A").unwrap(),
        tick: Tick {
            price: 937_301_022_492.776_7,
            ts: 0,
        },
    };
    let json = frame.to_json().unwrap();
    assert_eq!(ClientFrame::decode(&json, 1024), Ok(frame));
}

#[test]
fn close_code_ranges() {
    assert!(CloseCode::should_reconnect(1012));
    assert!(CloseCode::should_reconnect(4000));
    assert!(CloseCode::should_reconnect(1006));
    assert!(!CloseCode::should_reconnect(4400));
    assert_eq!(CloseCode::from_u16(4001), Some(CloseCode::SlowConsumer));
}
