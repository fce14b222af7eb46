//! tandem over its WebSocket (`GET /ws`, docs/PROTOCOL.md): every connection
//! presents the access token (`Authorization: Bearer`); subscribers send
//! `subscribe` and read `event` frames; the publisher sends `publish` frames
//! with a `tick` whose `ts` is the send time (the token's `publish` scope).

use super::{field_u64, Msg, Publisher, Subscriber, Transport};
use async_trait::async_trait;
use futures::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct TandemWs {
    url: String,
    topic: String,
    token: String,
}

impl TandemWs {
    pub fn new(target: &str, topic: &str, token: &str) -> Self {
        TandemWs {
            url: format!("ws://{target}/ws"),
            topic: topic.to_owned(),
            token: token.to_owned(),
        }
    }

    /// Room topics are durable chat: the publisher sends messages (persisted
    /// before broadcast) instead of ticks.
    fn durable(&self) -> bool {
        self.topic.starts_with("room:")
    }

    async fn connect(&self) -> anyhow::Result<Ws> {
        let mut req = self.url.as_str().into_client_request()?;
        if !self.token.is_empty() {
            req.headers_mut().insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {}", self.token))?,
            );
        }
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (mut ws, _) =
            tokio_tungstenite::connect_async_with_config(req, Some(config), true).await?;
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains("\"hello\"") => Ok(ws),
            other => anyhow::bail!("expected hello, got {other:?}"),
        }
    }
}

#[async_trait]
impl Transport for TandemWs {
    fn name(&self) -> &'static str {
        "tandem-ws"
    }

    fn server_seq(&self) -> bool {
        true
    }

    async fn subscribe(&self) -> anyhow::Result<(Box<dyn Subscriber>, u64)> {
        let mut ws = self.connect().await?;
        let frame = format!(r#"{{"type":"subscribe","topic":"{}"}}"#, self.topic);
        ws.send(Message::Text(frame.into())).await?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(t))) if t.contains("\"subscribed\"") => {
                    let head = field_u64(&t, "\"seq\":").unwrap_or(0);
                    return Ok((Box::new(Sub { ws }), head));
                }
                Some(Ok(Message::Text(t))) if t.contains("\"error\"") => {
                    anyhow::bail!("subscribe refused: {t}")
                }
                Some(Ok(_)) => continue,
                other => anyhow::bail!("socket ended while subscribing: {other:?}"),
            }
        }
    }

    async fn publisher(&self) -> anyhow::Result<Box<dyn Publisher>> {
        let ws = self.connect().await?;
        Ok(Box::new(Pub {
            ws,
            topic: self.topic.clone(),
            durable: self.durable(),
            run: (super::now_us() / 1_000_000) as u32,
        }))
    }
}

struct Sub {
    ws: Ws,
}

#[async_trait]
impl Subscriber for Sub {
    async fn next(&mut self) -> anyhow::Result<Option<Msg>> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    if t.starts_with(r#"{"type":"event""#) {
                        let seq = field_u64(&t, "\"seq\":")
                            .ok_or_else(|| anyhow::anyhow!("no seq in {t}"))?;
                        let ts = field_u64(&t, "\"ts\":")
                            .or_else(|| field_u64(&t, "\"body\":\""))
                            .unwrap_or(0) as i64;
                        return Ok(Some(Msg { seq, ts_us: ts }));
                    }
                    // An application `ping` needs no answer: the WebSocket
                    // layer answers the server's ping frames as it reads,
                    // as a browser does (docs/PROTOCOL.md §10).
                    if t.starts_with(r#"{"type":"reset""#)
                        || t.starts_with(r#"{"type":"error""#)
                    {
                        anyhow::bail!("server said: {t}");
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(None),
            }
        }
    }
}

struct Pub {
    ws: Ws,
    topic: String,
    durable: bool,
    /// Distinguishes this run's client ids from earlier runs'.
    run: u32,
}

#[async_trait]
impl Publisher for Pub {
    async fn publish(&mut self, seq: u64, ts_us: i64) -> anyhow::Result<()> {
        let frame = if self.durable {
            format!(
                r#"{{"type":"send","topic":"{}","client_id":"{:08x}-0000-4000-8000-{seq:012x}","body":"{ts_us}"}}"#,
                self.topic, self.run
            )
        } else {
            format!(
                r#"{{"type":"publish","topic":"{}","tick":{{"price":100.25,"ts":{ts_us}}}}}"#,
                self.topic
            )
        };
        self.ws.send(Message::Text(frame.into())).await?;
        // Surface refusals (bad token) instead of publishing into the void;
        // answer heartbeats.
        while let Some(Some(Ok(msg))) = self.ws.next().now_or_never() {
            if let Message::Text(t) = msg {
                if t.contains("\"error\"") {
                    anyhow::bail!("publish refused: {t}");
                }
                if t.contains("\"ping\"") {
                    self.ws
                        .send(Message::Text(r#"{"type":"pong"}"#.into()))
                        .await?;
                }
            }
        }
        Ok(())
    }
}
