//! The Socket.IO 4 peer (`bench/socketio/server.js`), spoken directly:
//! Engine.IO v4 packets (`0` open, `2`/`3` ping/pong, `4` message) carrying
//! Socket.IO packets (`0` connect, `2` event, `3` ack), over a WebSocket or
//! over HTTP long polling (packets joined by the record separator 0x1e).
//!
//! Receivers `join` the room (acknowledged) and read `event` payloads
//! `{"seq":N,"ts":T}`; the publisher emits `publish(room, payload)`.

use super::{field_u64, Msg, Publisher, Subscriber, Transport};
use async_trait::async_trait;
use futures::{FutureExt, SinkExt, StreamExt};
use std::collections::VecDeque;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    WebSocket,
    Polling,
}

pub struct SocketIo {
    base: String,
    room: String,
    mode: Mode,
}

impl SocketIo {
    pub fn new(target: &str, room: &str, mode: Mode) -> Self {
        SocketIo {
            base: format!("{target}/socket.io/?EIO=4"),
            room: room.to_owned(),
            mode,
        }
    }

    async fn open(&self) -> anyhow::Result<Link> {
        match self.mode {
            Mode::WebSocket => {
                let url = format!("ws://{}&transport=websocket", self.base);
                let config = WebSocketConfig::default()
                    .read_buffer_size(4096)
                    .write_buffer_size(0);
                let (ws, _) =
                    tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
                let mut link = Link::Ws(Box::new(ws));
                let open = link.recv_packet().await?;
                anyhow::ensure!(open.starts_with('0'), "expected engine.io open, got {open}");
                link.send_packet("40").await?;
                Ok(link)
            }
            Mode::Polling => {
                let http = reqwest::Client::builder()
                    .pool_max_idle_per_host(2)
                    .build()?;
                let url = format!("http://{}&transport=polling", self.base);
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
                let mut link = Link::Poll {
                    http,
                    url: format!("{url}&sid={sid}"),
                    queue: VecDeque::new(),
                };
                link.send_packet("40").await?;
                Ok(link)
            }
        }
    }

    /// Opens, connects to the default namespace and joins the room.
    async fn joined(&self) -> anyhow::Result<Link> {
        let mut link = self.open().await?;
        loop {
            let p = link.recv_packet().await?;
            if p.starts_with("40") {
                break;
            }
        }
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
        // The publisher always speaks WebSocket: only receivers change rungs.
        let publisher = SocketIo {
            base: self.base.clone(),
            room: self.room.clone(),
            mode: Mode::WebSocket,
        };
        Ok(Box::new(Pub {
            link: publisher.joined().await?,
            room: self.room.clone(),
        }))
    }
}

enum Link {
    Ws(Box<Ws>),
    Poll {
        http: reqwest::Client,
        url: String,
        queue: VecDeque<String>,
    },
}

impl Link {
    async fn send_packet(&mut self, packet: &str) -> anyhow::Result<()> {
        match self {
            Link::Ws(ws) => ws.send(Message::Text(packet.into())).await?,
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
            Link::Ws(ws) => loop {
                match ws.next().await {
                    Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(e.into()),
                    None => anyhow::bail!("socket closed"),
                }
            },
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
    async fn next(&mut self) -> anyhow::Result<Option<Msg>> {
        loop {
            let p = self.link.recv_packet().await?;
            if p.starts_with(r#"42["event""#) {
                let seq =
                    field_u64(&p, "\"seq\":").ok_or_else(|| anyhow::anyhow!("no seq in {p}"))?;
                let ts = field_u64(&p, "\"ts\":").unwrap_or(0) as i64;
                return Ok(Some(Msg { seq, ts_us: ts }));
            }
            if p == "2" {
                self.link.send_packet("3").await?;
            } else if p.starts_with('1') {
                return Ok(None);
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
        if let Link::Ws(ws) = &mut self.link {
            while let Some(Some(Ok(Message::Text(t)))) = ws.next().now_or_never() {
                if t.as_str() == "2" {
                    ws.send(Message::Text("3".into())).await?;
                }
            }
        }
        let packet = format!(
            r#"42["publish","{}",{{"seq":{seq},"ts":{ts_us}}}]"#,
            self.room
        );
        self.link.send_packet(&packet).await
    }
}
