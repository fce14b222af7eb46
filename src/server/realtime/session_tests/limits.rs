//! Limits, refused frames and heartbeats.
#![allow(clippy::unwrap_used)] // tests may unwrap

use super::*;

#[tokio::test]
async fn subscriptions_are_limited_and_unsubscribe_always_answers() {
    let mut h = harness(|s| s.max_subscriptions = 1);
    h.send(subscribe(Topic::room(1), None)).await;
    h.send(subscribe(Topic::room(2), None)).await;
    let frames = h.written();
    assert!(
        matches!(&frames[1], ServerFrame::Error(e) if e.code == ErrorCode::Limit && e.topic == Some(Topic::room(2)))
    );
    h.send(ClientFrame::Unsubscribe {
        topic: Topic::room(9),
        away: false,
    })
    .await;
    assert_eq!(
        h.written(),
        vec![ServerFrame::Unsubscribed {
            topic: Topic::room(9)
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn heartbeats_ping_and_close_a_silent_peer() {
    let mut h = harness(|s| {
        s.heartbeat_interval_ms = 100;
        s.heartbeat_timeout_ms = 300;
    });
    let start = Instant::now();
    h.session.heard(start);
    assert_eq!(
        h.session
            .on_tick(start + Duration::from_millis(300), true, &mut h.out),
        Verdict::Continue
    );
    assert_eq!(
        h.written(),
        vec![ServerFrame::Ping {}],
        "a quiet interval: a ping"
    );
    assert_eq!(
        h.session
            .on_tick(start + Duration::from_millis(300), false, &mut h.out),
        Verdict::Continue
    );
    assert_eq!(h.written(), vec![], "frames were written: no ping needed");
    assert_eq!(
        h.session
            .on_tick(start + Duration::from_millis(301), true, &mut h.out),
        Verdict::Close(CloseCode::HeartbeatTimeout, "heartbeat timeout")
    );
    h.session.heard(start + Duration::from_millis(301));
    assert_eq!(
        h.session
            .on_tick(start + Duration::from_millis(400), true, &mut h.out),
        Verdict::Continue
    );
}

#[tokio::test]
async fn refused_frames_are_counted_up_to_the_limit() {
    let mut h = harness(|s| s.max_bad_frames = 1);
    assert_eq!(
        h.session.handle_text("{", &mut h.out).await,
        Verdict::Continue
    );
    assert_eq!(
        h.session.handle_text(r#"{"type":"fly"}"#, &mut h.out).await,
        Verdict::Close(CloseCode::ProtocolViolation, "too many malformed frames")
    );
    let codes: Vec<ErrorCode> = h
        .written()
        .into_iter()
        .map(|f| match f {
            ServerFrame::Error(e) => e.code,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(codes, vec![ErrorCode::BadFrame, ErrorCode::UnknownType]);
}
