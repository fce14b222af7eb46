//! How a session counts its account in its rooms' presence: a socket's
//! while it lasts; a poll's lingering after it ends, unless the room was
//! lost.

use super::*;

#[tokio::test(start_paused = true)]
async fn a_poll_lingers_in_its_rooms_unless_it_lost_them() {
    let mut h = harness(|_| {});
    h.session.linger = Some(Duration::from_secs(6));
    let (one, two, three) = (Topic::room(1), Topic::room(2), Topic::room(3));
    for room in [one, two, three] {
        h.fake.append(room, 1);
        h.send(subscribe(room, Some(Version::new(EPOCH, 1)))).await;
    }
    // Room 1 lost (a membership removed): no lingering there.
    h.session.on_kick(Kick::Topic(one), &mut h.out);
    // Room 2 reset (a new epoch): it lingers as if the poll had ended there.
    let next_epoch = Delivery::new(&event(two, EPOCH + 1, 1)).unwrap();
    h.session.deliver(&next_epoch, &mut h.out).await;
    // The poll ends: room 3 lingers.
    let Harness { fake, session, .. } = h;
    drop(session);
    let calls = fake.attendance.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            "room 1: None -> Some(Here)",
            "room 2: None -> Some(Here)",
            "room 3: None -> Some(Here)",
            "room 1: lingers 0ns",
            "room 2: lingers 6s",
            "room 3: lingers 6s",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_socket_leaves_its_rooms_when_it_ends() {
    let mut h = harness(|_| {});
    h.fake.append(Topic::room(1), 1);
    h.send(subscribe(Topic::room(1), Some(Version::new(EPOCH, 1))))
        .await;
    let Harness { fake, session, .. } = h;
    drop(session);
    let calls = fake.attendance.lock().unwrap().clone();
    assert_eq!(
        calls,
        ["room 1: None -> Some(Here)", "room 1: Some(Here) -> None"]
    );
}
