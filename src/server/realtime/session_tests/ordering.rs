//! The ordering contract, by policy: in order, duplicates, gaps, lag,
//! resubscription, reset, storage failures, latest-wins.
#![allow(clippy::unwrap_used)] // tests may unwrap

use super::*;

#[tokio::test]
async fn lossless_resume_replays_then_follows_in_order() {
    let mut h = harness(|_| {});
    let room = Topic::room(1);
    h.fake.append(room, 3);
    h.send(subscribe(room, Some(Version::new(EPOCH, 1)))).await;
    let frames = h.written();
    assert!(matches!(&frames[0], ServerFrame::Event(e) if e.version.seq == 2));
    assert!(matches!(&frames[1], ServerFrame::Event(e) if e.version.seq == 3));
    assert_eq!(
        frames[2],
        ServerFrame::Subscribed {
            topic: room,
            version: Version::new(EPOCH, 3),
            policy: Policy::Lossless
        }
    );
    let next = h.fake.append(room, 2);
    h.publish(&next);
    h.pump().await;
    assert_eq!(h.seqs(), vec![4, 5]);
}

#[tokio::test]
async fn duplicates_and_deliveries_already_replayed_are_dropped() {
    let mut h = harness(|_| {});
    let room = Topic::room(1);
    let early = h.fake.append(room, 2);
    h.send(subscribe(room, Some(Version::new(EPOCH, 0)))).await;
    assert_eq!(h.written().len(), 3, "1 and 2 replayed, then subscribed");
    // Their broker copies (queued while the log was read) are not written again.
    h.publish(&early);
    h.pump().await;
    assert_eq!(h.seqs(), Vec::<u64>::new());
    let next = h.fake.append(room, 1);
    h.publish(&next);
    h.publish(&next);
    h.pump().await;
    assert_eq!(h.seqs(), vec![3], "a repeat is never written");
}

#[tokio::test]
async fn a_delivery_past_a_gap_is_repaired_from_the_log_in_order() {
    let mut h = harness(|_| {});
    let room = Topic::room(1);
    h.send(subscribe(room, None)).await;
    h.written();
    let events = h.fake.append(room, 3);
    // Only 3 reaches the outbox (as after an overflow): 1 and 2 come from the log.
    h.publish(&events[2..]);
    h.pump().await;
    assert_eq!(h.seqs(), vec![1, 2, 3]);
    // Late copies of what was repaired are dropped.
    h.publish(&events);
    h.pump().await;
    assert_eq!(h.seqs(), Vec::<u64>::new());
}

#[tokio::test]
async fn an_overflowing_outbox_is_caught_up_by_policy() {
    let mut h = harness(|s| s.outbox_capacity = 1);
    let room = Topic::room(1);
    h.send(subscribe(room, None)).await;
    h.send(subscribe(ticker(), None)).await;
    h.written();
    let rooms = h.fake.append(room, 4);
    let ticks = h.fake.append(ticker(), 4);
    h.publish(&rooms);
    h.publish(&ticks);
    // The outbox kept one delivery; the rest were dropped and marked lagged.
    h.pump().await;
    h.session.catch_up_lagged(&mut h.out).await;
    let mut by_topic: HashMap<Topic, Vec<u64>> = HashMap::new();
    for f in h.written() {
        if let ServerFrame::Event(e) = f {
            by_topic.entry(e.topic).or_default().push(e.version.seq);
        }
    }
    assert_eq!(by_topic[&room], vec![1, 2, 3, 4], "lossless: every event");
    assert_eq!(
        by_topic.get(&ticker()),
        Some(&vec![4]),
        "latest-wins: the newest only"
    );
}

#[tokio::test]
async fn resubscribing_replaces_the_position() {
    let mut h = harness(|_| {});
    let room = Topic::room(1);
    h.fake.append(room, 4);
    h.send(subscribe(room, None)).await;
    assert!(
        matches!(h.written()[..], [ServerFrame::Subscribed { version, .. }] if version.seq == 4)
    );
    h.send(subscribe(room, Some(Version::new(EPOCH, 2)))).await;
    let frames = h.written();
    assert_eq!(
        frames.len(),
        3,
        "replays 3 and 4 again, then subscribed: {frames:?}"
    );
    assert_eq!(h.session.version_of(room), Some(Version::new(EPOCH, 4)));
    assert_eq!(h.session.subs.len(), 1, "still one subscription");
}

#[tokio::test]
async fn another_epoch_or_too_far_behind_resets_and_ends_the_subscription() {
    let mut h = harness(|s| s.catch_up_limit = 2);
    let room = Topic::room(1);
    h.fake.append(room, 5);
    h.send(subscribe(room, Some(Version::new(EPOCH + 1, 5))))
        .await;
    assert_eq!(
        h.written(),
        vec![ServerFrame::Reset {
            topic: room,
            version: Version::new(EPOCH, 5),
            reason: "cannot continue from your version; reload the snapshot".into()
        }]
    );
    assert_eq!(h.session.version_of(room), None);
    h.send(subscribe(room, Some(Version::new(EPOCH, 1)))).await;
    assert!(
        matches!(h.written()[..], [ServerFrame::Reset { version, .. }] if version == Version::new(EPOCH, 5)),
        "4 events behind with a limit of 2: reset, naming the head"
    );
    // Nothing more is written for a reset topic.
    let next = h.fake.append(room, 1);
    h.publish(&next);
    h.pump().await;
    assert!(h.written().is_empty());
    assert_eq!(h.broker.subscribers(room), 0);
}

#[tokio::test]
async fn a_live_event_in_another_epoch_resets() {
    let mut h = harness(|_| {});
    let room = Topic::room(1);
    h.send(subscribe(room, None)).await;
    h.written();
    h.publish(&[event(room, EPOCH + 1, 1)]);
    h.pump().await;
    assert!(
        matches!(h.written()[..], [ServerFrame::Reset { version, .. }] if version.epoch == EPOCH + 1)
    );
}

#[tokio::test]
async fn a_storage_failure_while_catching_up_is_an_error_for_the_topic() {
    let mut h = harness(|_| {});
    let room = Topic::room(1);
    h.send(subscribe(room, None)).await;
    h.written();
    let events = h.fake.append(room, 2);
    h.fake.broken.store(true, Ordering::SeqCst);
    h.publish(&events[1..]);
    h.pump().await;
    match &h.written()[..] {
        [ServerFrame::Error(e)] => {
            assert_eq!((e.code, e.topic), (ErrorCode::Internal, Some(room)));
            assert!(e.code.is_transient());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.session.version_of(room), None, "the subscription ended");
    h.fake.broken.store(false, Ordering::SeqCst);
    h.send(subscribe(room, Some(Version::new(EPOCH, 0)))).await;
    assert_eq!(h.written().len(), 3, "a retried subscribe resumes");
}

#[tokio::test]
async fn latest_wins_starts_with_the_newest_value_and_skips_ahead() {
    let mut h = harness(|_| {});
    let t = ticker();
    h.fake.append(t, 3);
    h.send(subscribe(t, None)).await;
    let frames = h.written();
    assert!(matches!(&frames[0], ServerFrame::Event(e) if e.version.seq == 3));
    assert!(
        matches!(frames[1], ServerFrame::Subscribed { policy: Policy::LatestWins, version, .. } if version.seq == 3)
    );
    let more = h.fake.append(t, 4);
    // 4 and 5 never reach the outbox; 7 does, then a stale 6.
    h.publish(&more[3..]);
    h.publish(&more[2..3]);
    h.pump().await;
    assert_eq!(h.seqs(), vec![7], "no backlog, nothing older");
    h.send(subscribe(t, Some(Version::new(EPOCH, 2)))).await;
    let frames = h.written();
    assert!(matches!(&frames[0], ServerFrame::Event(e) if e.version.seq == 7));
    assert_eq!(
        frames.len(),
        2,
        "resuming a latest-wins topic sends the newest only"
    );
}

#[tokio::test]
async fn a_long_catch_up_is_written_one_page_at_a_time() {
    // The fake weighs 100 bytes per event: 250 bytes make a page of 3.
    let mut h = harness(|s| s.page_bytes = 250);
    let room = Topic::room(1);
    h.fake.append(room, 8);
    h.send(subscribe(room, Some(Version::new(EPOCH, 0)))).await;
    assert_eq!(h.seqs(), vec![1, 2, 3], "one page, no `subscribed` yet");
    assert!(h.session.is_catching_up());
    // A live event meanwhile is left to the log pages.
    let live = h.fake.append(room, 1);
    h.publish(&live);
    h.pump().await;
    assert!(h.written().is_empty());
    h.session.continue_catch_up(&mut h.out).await;
    assert_eq!(h.seqs(), vec![4, 5, 6]);
    h.session.continue_catch_up(&mut h.out).await;
    let frames = h.written();
    assert_eq!(frames.len(), 4, "7, 8, 9, then subscribed: {frames:?}");
    assert!(matches!(frames[3], ServerFrame::Subscribed { version, .. } if version.seq == 9));
    assert!(!h.session.is_catching_up());
    let next = h.fake.append(room, 1);
    h.publish(&next);
    h.pump().await;
    assert_eq!(h.seqs(), vec![10], "live again");
}

#[tokio::test]
async fn a_connection_that_fell_behind_is_caught_up_page_by_page_too() {
    let mut h = harness(|s| {
        s.page_bytes = 250;
        s.outbox_capacity = 1;
    });
    let room = Topic::room(1);
    h.send(subscribe(room, None)).await;
    h.written();
    let events = h.fake.append(room, 7);
    h.publish(&events);
    h.pump().await; // 1 fits the outbox; the rest were dropped
    h.session.catch_up_lagged(&mut h.out).await;
    let mut got = h.seqs();
    while h.session.is_catching_up() {
        h.session.continue_catch_up(&mut h.out).await;
        got.extend(h.seqs());
    }
    assert_eq!(
        got,
        (1..=7).collect::<Vec<u64>>(),
        "no `subscribed`: silent catch-up"
    );
}
