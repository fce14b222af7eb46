//! Bounded memory per client: many subscribers that ask for a long replay
//! and never read make the server hold about one page each, not the whole
//! replay; when they go, their memory goes back to the allocator, and a
//! second wave reuses it instead of growing the process.
//!
//! Its own test binary: it reads this process's resident memory, which
//! other tests running beside it would disturb.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{cid, TestServer};
use futures::SinkExt;
use std::time::Duration;
use tandem::protocol::{ClientFrame, Topic, Version};
use tokio_tungstenite::tungstenite::Message;

/// This process's resident memory, in KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

const SUBSCRIBERS: usize = 60;
const MESSAGES: usize = 1000;
/// 2,000 four-byte characters: 8 KB per message, so a whole replay of the
/// room is about 8 MB, more than the kernel's socket buffers absorb.
const BODY: &str = "😀";
const BODY_CHARS: usize = 2000;
const PAGE_BYTES: usize = 256 * 1024;

/// A WebSocket with a small receive buffer that sends one frame and then
/// never reads again.
async fn stalled_subscriber(server: &TestServer, frame: &ClientFrame) -> common::Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(8 * 1024).unwrap();
    let tcp = socket.connect(server.addr).await.unwrap();
    let req = format!("ws://{}/ws", server.addr)
        .into_client_request()
        .unwrap();
    let tcp = tokio_tungstenite::MaybeTlsStream::Plain(tcp);
    let (mut stream, _) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
    stream
        .send(Message::Text(frame.to_json().unwrap().into()))
        .await
        .unwrap();
    common::Ws { stream }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_reading_subscribers_pin_one_page_each_and_their_memory_is_reused() {
    let server = TestServer::with(|s| {
        s.page_bytes = PAGE_BYTES;
        // ann fills the room over HTTP, 50 sends at a time.
        s.writes_per_minute = 1_000_000;
        s.writes_burst = 100_000;
    })
    .await;
    let ann = server.user("ann").await;
    let (_, room) = ann.post("create_room", &[("name", "long")]).await;
    let id = room["id"].as_i64().unwrap();
    let body = BODY.repeat(BODY_CHARS);
    for chunk in (0..MESSAGES).collect::<Vec<_>>().chunks(50) {
        let ids: Vec<String> = chunk.iter().map(|_| cid()).collect();
        let sends = ids.iter().map(|c| ann.send(id, c, &body));
        for (status, _) in futures::future::join_all(sends).await {
            assert_eq!(status, 200);
        }
    }
    let epoch = {
        let (_, snap) = ann
            .get("room_snapshot", &[("room_id", &id.to_string())])
            .await;
        snap["log"]["version"]["epoch"].as_u64().unwrap() as u32
    };
    let replay_bytes = (MESSAGES * BODY_CHARS * BODY.len()) as u64;
    let before = rss_kib();
    let subscribe = ClientFrame::Subscribe {
        topic: Topic::room(id),
        since: Some(Version::new(epoch, 0)),
    };
    let whole_replays = SUBSCRIBERS as u64 * replay_bytes / 1024;
    // A page in the session and one in the WebSocket's write buffer, each.
    let bound = (SUBSCRIBERS * 2 * PAGE_BYTES) as u64 / 1024 + 32 * 1024;
    let mut peaks = Vec::new();
    for wave in 1..=2 {
        let mut idle = Vec::new();
        for _ in 0..SUBSCRIBERS {
            idle.push(stalled_subscriber(&server, &subscribe).await);
        }
        // Let every session read its first page and block on its write.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let peak = rss_kib();
        let held = peak.saturating_sub(before);
        println!(
            "wave {wave}: RSS grew by {held} KiB for {SUBSCRIBERS} non-reading subscribers \
             ({} KiB each; a whole replay is {} KiB)",
            held / SUBSCRIBERS as u64,
            replay_bytes / 1024
        );
        assert!(
            held < bound,
            "held {held} KiB: expected under {bound} KiB (pages), not near {whole_replays} KiB (replays)"
        );
        drop(idle);
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("wave {wave}: RSS {} KiB after they left", rss_kib());
        peaks.push(peak);
    }
    // What the first wave freed is reused by the second, not added to.
    assert!(
        peaks[1] <= peaks[0] + 8 * 1024,
        "no growth from wave to wave: peaks {peaks:?} KiB"
    );
}
