//! `fairness`: one normal chat client beside a flooder, against tandem with
//! its default limits. The normal client sends a message every
//! `--interval-ms` over its WebSocket and times each `ack`; the run measures
//! it alone, then with the flooder, and reports what the flooder got.
//!
//! Flooders (`--flood`):
//! - `backfill`: `--flooders` HTTP clients loop `events_since` from seq 0 on
//!   a room of 1,000 eight-kilobyte messages (the most expensive read);
//! - `send`: one WebSocket sends chat messages without waiting for acks.
//!
//! Tandem-only (it speaks the chat protocol); latency is send → ack on the
//! normal client's own clock.

use crate::scenario::Quantiles;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

#[derive(Clone, Debug)]
pub struct Options {
    pub target: String,
    /// An access token (`write` scope) the clients authenticate with.
    pub token: String,
    pub flood: String,
    pub flooders: usize,
    pub interval: Duration,
    pub duration: Duration,
}

#[derive(Serialize, Debug, Default)]
pub struct FloodOutcome {
    /// Requests the flooder got served.
    pub served: u64,
    /// Requests refused by a rate limit (HTTP 429, or `error` `limit`).
    pub refused: u64,
    /// The WebSocket close code the flooder got, if it was closed.
    pub closed_with: Option<u16>,
}

#[derive(Serialize, Debug, Default)]
pub struct Report {
    pub scenario: String,
    pub flood: String,
    pub flooders: usize,
    pub interval_ms: u64,
    pub duration_s: f64,
    /// The normal client's send → ack latency alone, in microseconds.
    pub alone_us: Quantiles,
    /// The same beside the flooder.
    pub flooded_us: Quantiles,
    /// Sends the normal client could not complete beside the flooder.
    pub flooded_failures: u64,
    pub flooder: FloodOutcome,
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn chat_socket(target: &str, token: &str) -> anyhow::Result<Ws> {
    let mut req = format!("ws://{target}/ws").into_client_request()?;
    req.headers_mut().insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}"))?,
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.contains("\"hello\"") => Ok(ws),
        other => anyhow::bail!("expected hello, got {other:?}"),
    }
}

fn client_id(n: u64, salt: u64) -> String {
    format!("00000000-0000-4000-8000-{:04x}{:08x}", salt & 0xffff, n)
}

fn send_frame(room: i64, id: &str, body: &str) -> String {
    format!(r#"{{"type":"send","topic":"room:{room}","client_id":"{id}","body":"{body}"}}"#)
}

/// Sends every `interval` for `duration` and times each ack.
async fn normal_client(o: &Options, room: i64, salt: u64) -> anyhow::Result<(Histogram<u64>, u64)> {
    let mut ws = chat_socket(&o.target, &o.token).await?;
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut failures = 0;
    let end = Instant::now() + o.duration;
    let mut tick = tokio::time::interval(o.interval);
    let mut n = 0u64;
    while Instant::now() < end {
        tick.tick().await;
        n += 1;
        let id = client_id(n, salt);
        let sent = Instant::now();
        ws.send(Message::Text(send_frame(room, &id, "hello").into()))
            .await?;
        let acked = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(msg) = ws.next().await {
                let Ok(Message::Text(t)) = msg else { continue };
                if t.starts_with(r#"{"type":"ping""#) {
                    let pong = Message::Text(r#"{"type":"pong"}"#.into());
                    if ws.send(pong).await.is_err() {
                        return false;
                    }
                } else if t.contains(&id) {
                    return t.starts_with(r#"{"type":"ack""#);
                }
            }
            false
        })
        .await;
        match acked {
            Ok(true) => h.record(sent.elapsed().as_micros().max(1) as u64)?,
            _ => failures += 1,
        }
    }
    Ok((h, failures))
}

/// Fills room 2 with 1,000 messages of 8 KB (over HTTP: `bench/fairness.sh`
/// lifts the per-account write rate for it) and returns its epoch.
async fn long_room(target: &str, token: &str) -> anyhow::Result<u64> {
    let http = reqwest::Client::new();
    let body = "😀".repeat(2000);
    for chunk in 0..20 {
        let sends = (0..50).map(|i| {
            let form = [
                ("room_id", "2".to_owned()),
                ("client_id", client_id(chunk * 50 + i, 0xbeef)),
                ("body", body.clone()),
            ];
            http.post(format!("http://{target}/api/send_message"))
                .bearer_auth(token)
                .header("accept", "application/json")
                .form(&form)
                .send()
        });
        for r in futures::future::join_all(sends).await {
            r?.error_for_status()?;
        }
    }
    let snap = http
        .get(format!("http://{target}/api/room_snapshot?room_id=2"))
        .send()
        .await?
        .text()
        .await?;
    crate::transport::field_u64(&snap, "\"epoch\":")
        .ok_or_else(|| anyhow::anyhow!("no epoch in the snapshot"))
}

async fn backfill_flood(
    target: String,
    epoch: u64,
    stop: Arc<AtomicU64>,
    out: Arc<[AtomicU64; 2]>,
) {
    let http = reqwest::Client::new();
    let url = format!("http://{target}/api/events_since?topic=room%3A2&epoch={epoch}&seq=0");
    while stop.load(Ordering::Relaxed) == 0 {
        match http.get(&url).send().await {
            Ok(r) if r.status().as_u16() == 429 => {
                out[1].fetch_add(1, Ordering::Relaxed);
                let _ = r.bytes().await;
            }
            Ok(r) => {
                out[0].fetch_add(1, Ordering::Relaxed);
                let _ = r.bytes().await;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn send_flood(
    target: String,
    token: String,
    stop: Arc<AtomicU64>,
) -> anyhow::Result<FloodOutcome> {
    let ws = chat_socket(&target, &token).await?;
    let (mut sink, mut stream) = ws.split();
    let writer = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut n = 0u64;
            while stop.load(Ordering::Relaxed) == 0 {
                n += 1;
                let frame = send_frame(1, &client_id(n, 0xf100), "flood");
                if sink.send(Message::Text(frame.into())).await.is_err() {
                    break;
                }
            }
        }
    });
    let mut outcome = FloodOutcome::default();
    while let Some(msg) = stream.next().await {
        match msg {
            Ok(Message::Text(t)) if t.starts_with(r#"{"type":"ack""#) => outcome.served += 1,
            Ok(Message::Text(t)) if t.contains(r#""code":"limit""#) => outcome.refused += 1,
            Ok(Message::Close(c)) => {
                outcome.closed_with = c.map(|c| u16::from(c.code));
                break;
            }
            Ok(_) => {}
            Err(_) => break,
        }
        if stop.load(Ordering::Relaxed) != 0 {
            break;
        }
    }
    writer.abort();
    Ok(outcome)
}

pub async fn run(o: &Options) -> anyhow::Result<Report> {
    let epoch = long_room(&o.target, &o.token).await?;
    let (alone, _) = normal_client(o, 1, 1).await?;
    let stop = Arc::new(AtomicU64::new(0));
    let counts: Arc<[AtomicU64; 2]> = Arc::new([AtomicU64::new(0), AtomicU64::new(0)]);
    let mut flooders = Vec::new();
    let send_flooder = match o.flood.as_str() {
        "backfill" => {
            for _ in 0..o.flooders {
                flooders.push(tokio::spawn(backfill_flood(
                    o.target.clone(),
                    epoch,
                    stop.clone(),
                    counts.clone(),
                )));
            }
            None
        }
        "send" => Some(tokio::spawn(send_flood(
            o.target.clone(),
            o.token.clone(),
            stop.clone(),
        ))),
        other => anyhow::bail!("unknown flood `{other}` (backfill or send)"),
    };
    let (flooded, failures) = normal_client(o, 1, 2).await?;
    stop.store(1, Ordering::Relaxed);
    for f in flooders {
        let _ = f.await;
    }
    let flooder = match send_flooder {
        Some(task) => task.await??,
        None => FloodOutcome {
            served: counts[0].load(Ordering::Relaxed),
            refused: counts[1].load(Ordering::Relaxed),
            closed_with: None,
        },
    };
    Ok(Report {
        scenario: "fairness".into(),
        flood: o.flood.clone(),
        flooders: o.flooders,
        interval_ms: o.interval.as_millis() as u64,
        duration_s: o.duration.as_secs_f64(),
        alone_us: Quantiles::of(&alone),
        flooded_us: Quantiles::of(&flooded),
        flooded_failures: failures,
        flooder,
    })
}
