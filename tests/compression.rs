//! WebSocket permessage-deflate over a real server, read and written by a
//! client built here from RFC 6455 and RFC 7692 (raw TCP, flate2), so the
//! server's framing and compression are checked against the RFCs rather
//! than against themselves.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{cid, TestServer};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use serde_json::Value;
use std::time::Duration;
use tandem::protocol::{ClientFrame, Tick, Topic};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(5);
/// RFC 6455 §1.3's example key and its accept value.
const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

struct Raw {
    tcp: TcpStream,
    /// The response's `Sec-WebSocket-Extensions`, if any.
    extensions: Option<String>,
    /// Bytes of frame payloads received (as on the wire).
    wire: usize,
}

/// One server frame.
struct Got {
    compressed: bool,
    opcode: u8,
    payload: Vec<u8>,
}

impl Raw {
    async fn connect(server: &TestServer, offer: Option<&str>, cookie: Option<&str>) -> Raw {
        Self::connect_to(server, "/ws", offer, cookie).await
    }

    async fn connect_to(
        server: &TestServer,
        path: &str,
        offer: Option<&str>,
        cookie: Option<&str>,
    ) -> Raw {
        let mut tcp = TcpStream::connect(server.addr).await.unwrap();
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nOrigin: {}\r\n",
            server.addr,
            server.origin()
        );
        if let Some(offer) = offer {
            req.push_str(&format!("Sec-WebSocket-Extensions: {offer}\r\n"));
        }
        if let Some(cookie) = cookie {
            req.push_str(&format!("Cookie: {cookie}\r\n"));
        }
        req.push_str("\r\n");
        tcp.write_all(req.as_bytes()).await.unwrap();
        // The response head, a byte at a time so no frame is read past it.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(tcp.read_u8().await.unwrap());
        }
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        assert_eq!(header("sec-websocket-accept").as_deref(), Some(ACCEPT));
        let mut raw = Raw {
            tcp,
            extensions: header("sec-websocket-extensions"),
            wire: 0,
        };
        let hello = raw.json().await;
        assert_eq!(hello["type"], "hello");
        raw
    }

    async fn frame(&mut self) -> Got {
        tokio::time::timeout(WAIT, async {
            let first = self.tcp.read_u8().await.unwrap();
            let second = self.tcp.read_u8().await.unwrap();
            assert_eq!(second & 0x80, 0, "server frames are not masked");
            assert_eq!(first & 0x80, 0x80, "the server does not fragment");
            assert_eq!(first & 0x30, 0, "RSV2 and RSV3 are never set");
            let len = match second & 0x7f {
                126 => usize::from(self.tcp.read_u16().await.unwrap()),
                127 => usize::try_from(self.tcp.read_u64().await.unwrap()).unwrap(),
                n => usize::from(n),
            };
            let mut payload = vec![0; len];
            self.tcp.read_exact(&mut payload).await.unwrap();
            self.wire += len;
            Got {
                compressed: first & 0x40 != 0,
                opcode: first & 0x0f,
                payload,
            }
        })
        .await
        .expect("a frame within the wait")
    }

    /// The next text message's JSON (inflated if compressed), skipping
    /// WebSocket pings and application pings.
    async fn json(&mut self) -> Value {
        loop {
            let got = self.frame().await;
            if got.opcode == 0x9 {
                continue;
            }
            assert_eq!(got.opcode, 0x1, "a text frame");
            let text = if got.compressed {
                assert!(self.extensions.is_some(), "RSV1 only once agreed");
                inflate(&got.payload)
            } else {
                got.payload
            };
            let v: Value = serde_json::from_slice(&text).unwrap();
            if v["type"] != "ping" {
                return v;
            }
        }
    }

    /// The next text frame as it came: (compressed, payload bytes).
    async fn next_text(&mut self) -> Got {
        loop {
            let got = self.frame().await;
            if got.opcode == 0x1 {
                return got;
            }
        }
    }

    async fn send(&mut self, text: &[u8], compress: bool) {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let payload = if compress {
            deflate(text)
        } else {
            text.to_vec()
        };
        let mut out = vec![if compress { 0xC1 } else { 0x81 }];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=0xffff => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.tcp.write_all(&out).await.unwrap();
    }

    /// Reads until the server's Close; returns its code.
    async fn close_code(&mut self) -> u16 {
        loop {
            let got = self.frame().await;
            if got.opcode == 0x8 {
                return u16::from_be_bytes([got.payload[0], got.payload[1]]);
            }
        }
    }
}

/// A raw DEFLATE stream ended by a sync flush, without its empty last block.
fn deflate(text: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(text.len() + 1024);
    c.compress_vec(text, &mut out, FlushCompress::Sync).unwrap();
    assert_eq!(&out[out.len() - 4..], &[0, 0, 0xff, 0xff]);
    out.truncate(out.len() - 4);
    out
}

fn inflate(data: &[u8]) -> Vec<u8> {
    let mut d = Decompress::new(false);
    let mut input = data.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    assert_eq!(d.total_in() as usize, input.len(), "inflated whole");
    out
}

const CHROMIUM_OFFER: &str = "permessage-deflate; client_max_window_bits";
const AGREED: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

async fn subscribe(raw: &mut Raw, topic: Topic, compress: bool) {
    let frame = ClientFrame::Subscribe { topic, since: None };
    raw.send(frame.to_json().unwrap().as_bytes(), compress)
        .await;
    loop {
        let v = raw.json().await;
        if v["type"] == "subscribed" {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_offer_is_agreed_and_long_events_arrive_compressed() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let cookie = ann.cookie_header().unwrap();
    let mut deflating = Raw::connect(&server, Some(CHROMIUM_OFFER), Some(&cookie)).await;
    assert_eq!(deflating.extensions.as_deref(), Some(AGREED));
    // The client compresses too (its subscribe).
    subscribe(&mut deflating, Topic::room(1), true).await;
    let mut plain = Raw::connect(&server, None, Some(&cookie)).await;
    assert_eq!(plain.extensions, None, "nothing agreed without an offer");
    subscribe(&mut plain, Topic::room(1), false).await;

    let body = "The quarterly numbers are in, and the numbers look like the numbers we expected: \
                the same numbers as last quarter, give or take a few numbers here and there.";
    let (status, sent) = ann.send(1, &cid(), body).await;
    assert_eq!(status, 200);

    let got = deflating.next_text().await;
    assert!(got.compressed, "a chat event is long enough to compress");
    let event: Value = serde_json::from_slice(&inflate(&got.payload)).unwrap();
    assert_eq!(event["type"], "event");
    assert_eq!(event["data"]["body"], body);
    assert_eq!(event, sent_frame(&sent));

    let same = plain.next_text().await;
    assert!(!same.compressed);
    assert_eq!(
        serde_json::from_slice::<Value>(&same.payload).unwrap(),
        event
    );
    assert!(
        got.payload.len() < same.payload.len(),
        "{} compressed bytes for {}",
        got.payload.len(),
        same.payload.len()
    );
}

/// The event frame for the message `send_message` answered with.
fn sent_frame(sent: &Value) -> Value {
    let mut frame = sent.clone();
    frame["type"] = "event".into();
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_up_batch_arrives_as_one_compressed_message_that_inflates_whole() {
    let server = TestServer::start().await;
    let ann = server.user("ann").await;
    let (_, room) = ann.post("create_room", &[("name", "numbers")]).await;
    let id = room["id"].as_i64().unwrap();
    let bodies: Vec<String> = (0..20)
        .map(|i| format!("message {i}: the numbers look like the numbers we expected, again"))
        .collect();
    let mut epoch = Value::Null;
    for body in &bodies {
        let (status, sent) = ann.send(id, &cid(), body).await;
        assert_eq!(status, 200);
        epoch = sent["version"]["epoch"].clone();
    }
    let cookie = ann.cookie_header().unwrap();
    let mut raw = Raw::connect_to(
        &server,
        "/ws?protocol=1&batch=1",
        Some(CHROMIUM_OFFER),
        Some(&cookie),
    )
    .await;
    // From the start of the room's log: the catch-up comes as batches.
    let since = serde_json::json!({"type": "subscribe", "topic": format!("room:{id}"),
        "since": {"epoch": epoch, "seq": 0}});
    raw.send(since.to_string().as_bytes(), false).await;
    let mut got = Vec::new();
    let mut compressed_batches = 0;
    while got.len() < bodies.len() {
        let frame = raw.next_text().await;
        let text = if frame.compressed {
            inflate(&frame.payload)
        } else {
            frame.payload.clone()
        };
        let v: Value = serde_json::from_slice(&text).unwrap();
        let frames = if v["type"] == "batch" {
            compressed_batches += usize::from(frame.compressed);
            v["frames"].as_array().unwrap().clone()
        } else {
            vec![v]
        };
        got.extend(
            frames
                .into_iter()
                .filter(|f| f["type"] == "event")
                .map(|f| f["data"]["body"].as_str().unwrap().to_owned()),
        );
    }
    assert_eq!(got, bodies, "every message once, in order");
    assert!(
        compressed_batches > 0,
        "the catch-up came in compressed batches"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_frames_go_uncompressed_even_when_agreed() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(&server, Some(CHROMIUM_OFFER), None).await;
    raw.send(br#"{"type":"ping"}"#, true).await;
    let got = raw.next_text().await;
    assert!(!got.compressed, "a pong is below ws-compress-min-bytes");
    let v: Value = serde_json::from_slice(&got.payload).unwrap();
    assert_eq!(v["type"], "pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offers_are_declined_when_compression_is_off_or_unsupported() {
    let server = TestServer::with(|s| s.ws_compression = false).await;
    let raw = Raw::connect(&server, Some(CHROMIUM_OFFER), None).await;
    assert_eq!(raw.extensions, None);
    drop(server);
    let server = TestServer::start().await;
    let raw = Raw::connect(
        &server,
        Some("permessage-deflate; server_max_window_bits=9"),
        None,
    )
    .await;
    assert_eq!(raw.extensions, None, "a smaller server window is declined");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_bomb_is_refused_and_other_clients_carry_on() {
    let server = TestServer::start().await;
    let mut bystander = Raw::connect(&server, Some(CHROMIUM_OFFER), None).await;
    subscribe(&mut bystander, Topic::room(1), false).await;
    let mut attacker = Raw::connect(&server, Some(CHROMIUM_OFFER), None).await;
    // 16 MB of spaces inside a JSON string: about 16 KB on the wire.
    let mut bomb = br#"{"type":"ping","pad":""#.to_vec();
    bomb.extend(std::iter::repeat_n(b' ', 16 << 20));
    bomb.extend_from_slice(br#""}"#);
    attacker.send(&bomb, true).await;
    let error = attacker.json().await;
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "too_large");
    assert_eq!(attacker.close_code().await, 1009);

    let ann = server.user("ann").await;
    let (status, _) = ann.send(1, &cid(), "still here").await;
    assert_eq!(status, 200);
    let event = bystander.json().await;
    assert_eq!(event["data"]["body"], "still here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_garbage_closes_with_1002() {
    let server = TestServer::start().await;
    let mut raw = Raw::connect(&server, Some(CHROMIUM_OFFER), None).await;
    let mut frame = vec![0xC1, 0x80 | 5, 0, 0, 0, 0];
    frame.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff]);
    raw.tcp.write_all(&frame).await.unwrap();
    assert_eq!(raw.close_code().await, 1002);
    // And RSV1 from a client that did not negotiate it.
    let mut raw = Raw::connect(&server, None, None).await;
    raw.send(br#"{"type":"ping"}"#, true).await;
    assert_eq!(raw.close_code().await, 1002);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticker_updates_reach_a_compressing_client_whole() {
    let server = TestServer::start().await;
    let topic = Topic::ticker("ACME").unwrap();
    let mut raw = Raw::connect(&server, Some(CHROMIUM_OFFER), None).await;
    subscribe(&mut raw, topic, true).await;
    let token = server.token(common::PUBLISHER, "publish").await;
    let mut feed = server.ws_token(&token).await;
    feed.send(&ClientFrame::Publish {
        topic,
        tick: Tick {
            price: 101.25,
            ts: 7,
        },
    })
    .await;
    let event = raw.json().await;
    assert_eq!(event["type"], "event");
    assert_eq!(event["topic"], "ticker:ACME");
    assert_eq!(event["data"]["price"], 101.25);
}
