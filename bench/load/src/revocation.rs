//! `revocation`: how long a revoked session's live connection stays open,
//! and how long a log-in takes (one Argon2id verification plus the round
//! trip). Tandem-only.
//!
//! Each round logs the account in (timing the request), opens a WebSocket
//! with the new session cookie, then posts `log_out` with that cookie and
//! times from sending the request to receiving the socket's close frame
//! (code 4401). Rounds run one after another, so each log-in verifies
//! alone; the server needs a `login-burst` above `--rounds`.

use crate::scenario::Quantiles;
use anyhow::Context;
use futures::StreamExt;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

#[derive(Serialize, Debug, Default)]
pub struct Report {
    pub scenario: String,
    pub rounds: u64,
    /// `log_in` request → answer, microseconds.
    pub log_in_us: Quantiles,
    /// `log_out` request sent → the socket's close frame, microseconds.
    pub revocation_us: Quantiles,
    /// The close codes seen (all 4401 when correct).
    pub close_codes: Vec<u16>,
}

const PASSWORD: &str = "tandem-load revocation password";

pub async fn run(target: &str, rounds: u64) -> anyhow::Result<Report> {
    let http = reqwest::Client::new();
    let form = [("name", "revocation-bench"), ("password", PASSWORD)];
    let api = |f: &str| format!("http://{target}/api/{f}");
    let first = http
        .post(api("sign_up"))
        .header("accept", "application/json")
        .form(&form)
        .send()
        .await?;
    anyhow::ensure!(
        first.status().is_success() || first.status() == reqwest::StatusCode::CONFLICT,
        "sign up: HTTP {}",
        first.status()
    );
    let mut log_in = Histogram::<u64>::new(3)?;
    let mut revoked = Histogram::<u64>::new(3)?;
    let mut close_codes = Vec::new();
    for _ in 0..rounds {
        let started = Instant::now();
        let r = http
            .post(api("log_in"))
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await?;
        log_in.record(started.elapsed().as_micros() as u64)?;
        let status = r.status();
        let cookie =
            crate::auth::session_cookie(&r).with_context(|| format!("log in: HTTP {status}"))?;
        let mut req = format!("ws://{target}/ws").into_client_request()?;
        req.headers_mut()
            .insert("cookie", HeaderValue::from_str(&cookie)?);
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"hello\"") => {}
            other => anyhow::bail!("expected hello, got {other:?}"),
        }
        let started = Instant::now();
        let out = http
            .post(api("log_out"))
            .header("accept", "application/json")
            .header("cookie", &cookie)
            .send();
        let close = async {
            loop {
                match ws.next().await {
                    Some(Ok(Message::Close(frame))) => {
                        return Ok(frame.map_or(1005, |f| u16::from(f.code)))
                    }
                    Some(Ok(_)) => continue,
                    other => anyhow::bail!("socket ended without a close frame: {other:?}"),
                }
            }
        };
        let (answer, code) =
            tokio::time::timeout(Duration::from_secs(10), async { tokio::join!(out, close) })
                .await
                .context("no close within 10 s")?;
        revoked.record(started.elapsed().as_micros() as u64)?;
        answer?.error_for_status()?;
        close_codes.push(code?);
    }
    close_codes.sort_unstable();
    close_codes.dedup();
    Ok(Report {
        scenario: "revocation".into(),
        rounds,
        log_in_us: Quantiles::of(&log_in),
        revocation_us: Quantiles::of(&revoked),
        close_codes,
    })
}
