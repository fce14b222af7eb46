//! The Socket.IO 4 peer (`bench/socketio/server.js`), spoken directly:
//! Engine.IO v4 packets (`0` open, `2`/`3` ping/pong, `4` message) carrying
//! Socket.IO packets (`0` connect, `2` event, `3` ack), over a WebSocket or
//! over HTTP long polling (packets joined by the record separator 0x1e).
//!
//! Receivers `join` the room (acknowledged) and read `event` payloads
//! `{"seq":N,"ts":T}`; the publisher, which does not join (so it does not
//! receive its own broadcasts), emits `publish(room, payload)`.

use super::wire::{self, Conn};
use super::{deliveries, Msg, Publisher, Subscriber, Transport};
use async_trait::async_trait;
use std::collections::VecDeque;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    WebSocket,
    Polling,
}

pub struct SocketIo {
    target: String,
    room: String,
    mode: Mode,
}

const EVENT: &[u8] = br#"42["event""#;

impl SocketIo {
    pub fn new(target: &str, room: &str, mode: Mode) -> Self {
        SocketIo {
            target: target.to_owned(),
            room: room.to_owned(),
            mode,
        }
    }

    /// Opens an Engine.IO session and connects to the default namespace.
    async fn open(&self, mode: Mode) -> anyhow::Result<Link> {
        let mut link = match mode {
            Mode::WebSocket => {
                let mut conn = wire::connect(
                    &self.target,
                    "/socket.io/?EIO=4&transport=websocket",
                    &[],
                    false,
                )
                .await?;
                let open = conn.next_text().await?.unwrap_or_default();
                anyhow::ensure!(open.starts_with('0'), "expected engine.io open, got {open}");
                Link::Ws(conn)
            }
            Mode::Polling => {
                let http = reqwest::Client::builder()
                    .pool_max_idle_per_host(2)
                    .build()?;
                let url = format!("http://{}/socket.io/?EIO=4&transport=polling", self.target);
                let open = http
                    .get(&url)
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await?;
                let sid = open
                    .split("\"sid\":\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .ok_or_else(|| anyhow::anyhow!("no sid in {open}"))?
                    .to_owned();
                Link::Poll {
                    http,
                    url: format!("{url}&sid={sid}"),
                    queue: VecDeque::new(),
                }
            }
        };
        link.send_packet("40").await?;
        loop {
            let p = link.recv_packet().await?;
            if p.starts_with("40") {
                return Ok(link);
            }
        }
    }

    /// Opens, connects and joins the room.
    async fn joined(&self) -> anyhow::Result<Link> {
        let mut link = self.open(self.mode).await?;
        link.send_packet(&format!(r#"420["join","{}"]"#, self.room))
            .await?;
        loop {
            let p = link.recv_packet().await?;
            if p.starts_with("430") {
                return Ok(link);
            }
            if p == "2" {
                link.send_packet("3").await?;
            }
        }
    }
}

#[async_trait]
impl Transport for SocketIo {
    fn name(&self) -> &'static str {
        match self.mode {
            Mode::WebSocket => "socketio-ws",
            Mode::Polling => "socketio-polling",
        }
    }

    fn server_seq(&self) -> bool {
        false
    }

    async fn subscribe(&self) -> anyhow::Result<(Box<dyn Subscriber>, u64)> {
        Ok((
            Box::new(Sub {
                link: self.joined().await?,
            }),
            0,
        ))
    }

    async fn publisher(&self) -> anyhow::Result<Box<dyn Publisher>> {
        // The publisher always speaks WebSocket (only receivers change
        // rungs) and does not join the room.
        Ok(Box::new(Pub {
            link: self.open(Mode::WebSocket).await?,
            room: self.room.clone(),
        }))
    }
}

enum Link {
    Ws(Conn),
    Poll {
        http: reqwest::Client,
        url: String,
        queue: VecDeque<String>,
    },
}

impl Link {
    async fn send_packet(&mut self, packet: &str) -> anyhow::Result<()> {
        match self {
            Link::Ws(conn) => conn.send_text(packet).await?,
            Link::Poll { http, url, .. } => {
                http.post(url.as_str())
                    .body(packet.to_owned())
                    .send()
                    .await?
                    .error_for_status()?;
            }
        }
        Ok(())
    }

    async fn recv_packet(&mut self) -> anyhow::Result<String> {
        match self {
            Link::Ws(conn) => conn
                .next_text()
                .await?
                .ok_or_else(|| anyhow::anyhow!("socket closed")),
            Link::Poll { http, url, queue } => loop {
                if let Some(p) = queue.pop_front() {
                    return Ok(p);
                }
                let body = http
                    .get(url.as_str())
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await?;
                queue.extend(
                    body.split('\u{1e}')
                        .filter(|p| !p.is_empty())
                        .map(str::to_owned),
                );
            },
        }
    }
}

struct Sub {
    link: Link,
}

#[async_trait]
impl Subscriber for Sub {
    async fn recv(&mut self, out: &mut Vec<Msg>) -> anyhow::Result<bool> {
        if let Link::Ws(conn) = &mut self.link {
            let (mut ping, mut closed) = (false, false);
            let open = conn
                .frames(|_, p| {
                    if deliveries(p, EVENT, br#""ts":"#, out) == 0 {
                        ping |= p == b"2";
                        closed |= p.starts_with(b"1");
                    }
                })
                .await?;
            if ping {
                conn.send_text("3").await?;
            }
            return Ok(open && !closed);
        }
        loop {
            let p = self.link.recv_packet().await?;
            if deliveries(p.as_bytes(), EVENT, br#""ts":"#, out) > 0 {
                return Ok(true);
            }
            if p == "2" {
                self.link.send_packet("3").await?;
            } else if p.starts_with('1') {
                return Ok(false);
            }
        }
    }
}

struct Pub {
    link: Link,
    room: String,
}

#[async_trait]
impl Publisher for Pub {
    async fn publish(&mut self, seq: u64, ts_us: i64) -> anyhow::Result<()> {
        // Answer the server's pings (it drops a silent client after ~45 s).
        if let Link::Ws(conn) = &mut self.link {
            let mut ping = false;
            conn.try_frames(|_, p| ping |= p == b"2").await?;
            if ping {
                conn.send_text("3").await?;
            }
        }
        let packet = format!(
            r#"42["publish","{}",{{"seq":{seq},"ts":{ts_us}}}]"#,
            self.room
        );
        self.link.send_packet(&packet).await
    }
}
