//! tandem's fallback rungs (docs/PROTOCOL.md §15): every subscriber is one
//! HTTP client with the access token (`Authorization: Bearer`), as a browser
//! on that rung is one tab with its cookie.
//!
//! - `sse`: one `GET /sse?topics=<topic>` stream per subscriber; events are
//!   found in the stream's bytes as they arrive.
//! - `long-poll`: `GET /poll?topics=<topic>@<epoch>.<seq>&wait=1` again as
//!   soon as each answer arrives, from the answer's `resume`.
//! - `short-poll`: the same without `wait`, every `SHORT_POLL_MS`.
//!
//! The publisher is the WebSocket transport's (ticks, or chat messages on a
//! `room:` topic): the rung under test is the subscribers'.

use super::tandem_ws::TandemWs;
use super::{deliveries, field_u64, find, Msg, Publisher, Subscriber, Transport};
use async_trait::async_trait;
use std::time::Duration;

/// The reference client's short-polling interval (the server's
/// `short-poll-ms` default).
const SHORT_POLL_MS: u64 = 2_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rung {
    Sse,
    LongPoll,
    ShortPoll,
}

pub struct TandemHttp {
    target: String,
    topic: String,
    token: String,
    rung: Rung,
    publisher: TandemWs,
    /// Against the calibration server.
    floor: bool,
}

impl TandemHttp {
    pub fn new(target: &str, topic: &str, token: &str, rung: Rung) -> Self {
        TandemHttp {
            target: target.to_owned(),
            topic: topic.to_owned(),
            token: token.to_owned(),
            rung,
            publisher: TandemWs::new(target, topic, token, true, super::Extras::default()),
            floor: false,
        }
    }

    /// Long polls against the calibration server (`src/bin/floor.rs`): no
    /// credentials, a publisher that expects no coalescing.
    pub fn floor(target: &str, topic: &str) -> Self {
        TandemHttp {
            publisher: TandemWs::new(target, topic, "", false, super::Extras::default()),
            floor: true,
            ..TandemHttp::new(target, topic, "", Rung::LongPoll)
        }
    }

    fn client(&self) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if !self.token.is_empty() {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", self.token).parse()?,
            );
        }
        Ok(reqwest::Client::builder()
            .default_headers(headers)
            .pool_max_idle_per_host(1)
            .build()?)
    }

    fn ts_key(&self) -> &'static [u8] {
        if self.topic.starts_with("room:") {
            br#""body":""#
        } else {
            br#""ts":"#
        }
    }
}

#[async_trait]
impl Transport for TandemHttp {
    fn name(&self) -> &'static str {
        match self.rung {
            Rung::Sse => "tandem-sse",
            Rung::LongPoll if self.floor => "floor-long-poll",
            Rung::LongPoll => "tandem-long-poll",
            Rung::ShortPoll => "tandem-short-poll",
        }
    }

    fn server_seq(&self) -> bool {
        true
    }

    fn latest_wins(&self) -> bool {
        self.topic.starts_with("ticker:")
    }

    async fn subscribe(&self) -> anyhow::Result<(Box<dyn Subscriber>, u64)> {
        let http = self.client()?;
        let ts_key = self.ts_key();
        if self.rung == Rung::Sse {
            let url = format!("http://{}/sse?topics={}", self.target, self.topic);
            let mut resp = http.get(url).send().await?.error_for_status()?;
            let mut buf = Vec::new();
            // Up to the `subscribed` frame: its seq is where events start.
            loop {
                let chunk = resp
                    .chunk()
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("stream ended while subscribing"))?;
                buf.extend_from_slice(&chunk);
                if let Some(at) = find(&buf, br#"{"type":"subscribed""#) {
                    let rest = &buf[at..];
                    let Some(end) = find(rest, b"\n\n") else {
                        continue;
                    };
                    let text = String::from_utf8_lossy(&rest[..end]).into_owned();
                    let head = field_u64(&text, "\"seq\":").unwrap_or(0);
                    buf.drain(..at + end + 2);
                    return Ok((Box::new(Stream { resp, buf, ts_key }), head));
                }
                if find(&buf, br#"{"type":"error""#).is_some() {
                    anyhow::bail!("subscribe refused: {}", String::from_utf8_lossy(&buf));
                }
            }
        }
        // A poll without a version answers at once with the head.
        let url = format!("http://{}/poll?topics={}", self.target, self.topic);
        let body = text(&http, url).await?;
        let head = field_u64(&body, "\"seq\":").unwrap_or(0);
        let resume = resume_of(&body).ok_or_else(|| anyhow::anyhow!("no resume in {body}"))?;
        Ok((
            Box::new(Poll {
                http,
                target: self.target.clone(),
                resume,
                long: self.rung == Rung::LongPoll,
                ts_key,
            }),
            head,
        ))
    }

    async fn publisher(&self) -> anyhow::Result<Box<dyn Publisher>> {
        self.publisher.publisher().await
    }
}

/// The body of a successful GET.
async fn text(http: &reqwest::Client, url: String) -> anyhow::Result<String> {
    Ok(http
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?)
}

/// The `resume` string of a poll answer.
fn resume_of(body: &str) -> Option<String> {
    let rest = body.split("\"resume\":\"").nth(1)?;
    Some(rest.split('"').next()?.to_owned())
}

/// The deliveries in `text`; an error if it holds no event but a `reset`
/// or an `error` (the subscription ended: the run is invalid).
fn take(text: &[u8], ts_key: &[u8], out: &mut Vec<Msg>) -> anyhow::Result<()> {
    let ended = || {
        find(text, br#"{"type":"reset""#).is_some() || find(text, br#"{"type":"error""#).is_some()
    };
    if deliveries(text, br#"{"type":"event""#, ts_key, out) == 0 && ended() {
        anyhow::bail!("server said: {}", String::from_utf8_lossy(text));
    }
    Ok(())
}

struct Stream {
    resp: reqwest::Response,
    /// Bytes after the last complete message.
    buf: Vec<u8>,
    ts_key: &'static [u8],
}

#[async_trait]
impl Subscriber for Stream {
    async fn recv(&mut self, out: &mut Vec<Msg>) -> anyhow::Result<bool> {
        let Some(chunk) = self.resp.chunk().await? else {
            return Ok(false);
        };
        self.buf.extend_from_slice(&chunk);
        // Whole messages only: the last one may still be on its way.
        let Some(end) = self.buf.windows(2).rposition(|w| w == b"\n\n") else {
            return Ok(true);
        };
        take(&self.buf[..end + 2], self.ts_key, out)?;
        self.buf.drain(..end + 2);
        Ok(true)
    }
}

struct Poll {
    http: reqwest::Client,
    target: String,
    resume: String,
    long: bool,
    ts_key: &'static [u8],
}

#[async_trait]
impl Subscriber for Poll {
    async fn recv(&mut self, out: &mut Vec<Msg>) -> anyhow::Result<bool> {
        if !self.long {
            tokio::time::sleep(Duration::from_millis(SHORT_POLL_MS)).await;
        }
        let wait = if self.long { "&wait=1" } else { "" };
        let url = format!("http://{}/poll?topics={}{wait}", self.target, self.resume);
        let body = text(&self.http, url).await?;
        take(body.as_bytes(), self.ts_key, out)?;
        self.resume = resume_of(&body).ok_or_else(|| anyhow::anyhow!("no resume in {body}"))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_resume_list() {
        let body = r#"{"resume":"ticker:BENCH@7.42","poll_ms":0,"frames":[]}"#;
        assert_eq!(super::resume_of(body).as_deref(), Some("ticker:BENCH@7.42"));
        assert_eq!(super::resume_of("{}"), None);
    }
}
