//! tandem over its WebSocket (`GET /ws?batch=1`, docs/PROTOCOL.md): every
//! connection presents the access token (`Authorization: Bearer`);
//! subscribers send `subscribe` and read `event` frames (alone or in `batch`
//! frames); the publisher sends `publish` frames with a `tick` whose `ts` is
//! the scheduled publish time (the token's `publish` scope), or, on a `room:`
//! topic, chat messages whose body is that time.
//!
//! Subscribers read through `wire` (many frames per read, no copies).

use super::wire::{self, Conn};
use super::{deliveries, field_u64, Msg, Publisher, Subscriber, Transport};
use async_trait::async_trait;

pub struct TandemWs {
    target: String,
    topic: String,
    token: String,
    /// Whether `ticker:` topics are latest-wins here (tandem: yes; the
    /// calibration server: no, it delivers every value).
    coalesces: bool,
    extras: super::Extras,
}

impl TandemWs {
    pub fn new(
        target: &str,
        topic: &str,
        token: &str,
        coalesces: bool,
        extras: super::Extras,
    ) -> Self {
        TandemWs {
            target: target.to_owned(),
            topic: topic.to_owned(),
            token: token.to_owned(),
            coalesces,
            extras,
        }
    }

    /// Room topics are durable chat: the publisher sends messages (persisted
    /// before broadcast) instead of ticks.
    fn durable(&self) -> bool {
        self.topic.starts_with("room:")
    }

    async fn connect(&self) -> anyhow::Result<Conn> {
        let bearer = format!("Bearer {}", self.token);
        let headers: &[(&str, &str)] = if self.token.is_empty() {
            &[]
        } else {
            &[("Authorization", bearer.as_str())]
        };
        let mut conn = wire::connect(
            &self.target,
            "/ws?protocol=1&batch=1",
            headers,
            self.extras.deflate,
        )
        .await?;
        match conn.next_text().await? {
            Some(t) if t.contains("\"hello\"") => Ok(conn),
            other => anyhow::bail!("expected hello, got {other:?}"),
        }
    }
}

#[async_trait]
impl Transport for TandemWs {
    fn name(&self) -> &'static str {
        if self.coalesces {
            "tandem-ws"
        } else {
            "floor-ws"
        }
    }

    fn server_seq(&self) -> bool {
        true
    }

    fn latest_wins(&self) -> bool {
        self.coalesces && self.topic.starts_with("ticker:")
    }

    async fn subscribe(&self) -> anyhow::Result<(Box<dyn Subscriber>, u64)> {
        let mut conn = self.connect().await?;
        let frame = format!(r#"{{"type":"subscribe","topic":"{}"}}"#, self.topic);
        conn.send_text(&frame).await?;
        loop {
            match conn.next_text().await? {
                Some(t) if t.contains("\"subscribed\"") => {
                    let head = field_u64(&t, "\"seq\":").unwrap_or(0);
                    let ts_key: &'static [u8] = if self.durable() {
                        br#""body":""#
                    } else {
                        br#""ts":"#
                    };
                    return Ok((Box::new(Sub { conn, ts_key }), head));
                }
                Some(t) if t.contains("\"error\"") => anyhow::bail!("subscribe refused: {t}"),
                Some(_) => continue,
                None => anyhow::bail!("socket ended while subscribing"),
            }
        }
    }

    async fn publisher(&self) -> anyhow::Result<Box<dyn Publisher>> {
        let conn = self.connect().await?;
        Ok(Box::new(Pub {
            conn,
            topic: self.topic.clone(),
            durable: self.durable(),
            run: (super::now_us() / 1_000_000) as u32,
            pad: pad_text(self.extras.pad),
        }))
    }
}

struct Sub {
    conn: Conn,
    ts_key: &'static [u8],
}

#[async_trait]
impl Subscriber for Sub {
    async fn recv(&mut self, out: &mut Vec<Msg>) -> anyhow::Result<bool> {
        let mut refused = None;
        let ts_key = self.ts_key;
        let open = self
            .conn
            .frames(|_, text| {
                // An application `ping` needs no answer: the WebSocket layer
                // answers the server's ping frames as it reads, as a browser
                // does (docs/PROTOCOL.md §10).
                if deliveries(text, br#"{"type":"event""#, ts_key, out) == 0
                    && (text.starts_with(br#"{"type":"reset""#) || said_error(text))
                {
                    refused = Some(String::from_utf8_lossy(text).into_owned());
                }
            })
            .await?;
        if let Some(t) = refused {
            anyhow::bail!("server said: {t}");
        }
        Ok(open)
    }
}

struct Pub {
    conn: Conn,
    topic: String,
    durable: bool,
    /// Distinguishes this run's client ids from earlier runs'.
    run: u32,
    /// Text after the time in each chat body (`--pad`).
    pad: String,
}

/// `n` bytes of ordinary chat text to follow the time in a message body.
fn pad_text(n: usize) -> String {
    const LINE: &str =
        " sounds good, I will send the numbers after lunch and we can go over them together";
    LINE.chars().cycle().take(n).collect()
}

#[async_trait]
impl Publisher for Pub {
    async fn publish(&mut self, seq: u64, ts_us: i64) -> anyhow::Result<()> {
        let frame = if self.durable {
            format!(
                r#"{{"type":"send","topic":"{}","client_id":"{:08x}-0000-4000-8000-{seq:012x}","body":"{ts_us}{}"}}"#,
                self.topic, self.run, self.pad
            )
        } else {
            format!(
                r#"{{"type":"publish","topic":"{}","tick":{{"price":100.25,"ts":{ts_us}}}}}"#,
                self.topic
            )
        };
        self.conn.send_text(&frame).await?;
        // Surface refusals (bad token, limits) instead of publishing into the void.
        let mut refused = None;
        self.conn
            .try_frames(|_, t| {
                if said_error(t) {
                    refused = Some(String::from_utf8_lossy(t).into_owned());
                }
            })
            .await?;
        if let Some(t) = refused {
            anyhow::bail!("publish refused: {t}");
        }
        Ok(())
    }
}

/// Whether a frame is, or a batch holds, an `error` frame.
fn said_error(text: &[u8]) -> bool {
    super::find(text, br#"{"type":"error""#).is_some()
}
