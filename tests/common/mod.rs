//! Test harness: starts the real server on 127.0.0.1:0 with a temporary
//! SQLite database, and gives real HTTP and WebSocket clients for it.
#![allow(dead_code)]

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tandem::protocol::{ClientFrame, ServerFrame};
use tandem::server::config::{Config, Settings};
use tandem::server::shutdown::Shutdown;
use tandem::server::store::Hooks;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const WAIT: Duration = Duration::from_secs(5);

/// The metrics token test servers are started with.
pub const METRICS_TOKEN: &str = "test-metrics-token";

pub struct TestServer {
    pub addr: SocketAddr,
    pub shutdown: Shutdown,
    handle: Option<JoinHandle<()>>,
    pub db: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

pub fn settings(db: &std::path::Path) -> Settings {
    Settings {
        database_url: format!("sqlite://{}", db.display()),
        // Many servers run at once in a test process: no fixed metrics port;
        // tests scrape the public port with the token (`TestServer::metrics`).
        metrics_addr: String::new(),
        metrics_token: METRICS_TOKEN.into(),
        ..Settings::default()
    }
}

impl TestServer {
    pub async fn start() -> Self {
        Self::with(|_| {}).await
    }

    pub async fn with(tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::with_hooks(tweak, Hooks::default()).await
    }

    /// A server on a fresh database whose store has these test seams.
    pub async fn with_hooks(tweak: impl FnOnce(&mut Settings), hooks: Hooks) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("test.db");
        let mut s = settings(&db);
        tweak(&mut s);
        let mut server = Self::launch_with(s, hooks).await;
        server._dir = Some(dir);
        server
    }

    /// Starts a server with exactly these settings (e.g. on an existing database).
    pub async fn launch(settings: Settings) -> Self {
        Self::launch_with(settings, Hooks::default()).await
    }

    async fn launch_with(settings: Settings, hooks: Hooks) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_test_writer()
            .try_init();
        let leptos = leptos::config::get_config_from_str(
            "[package.metadata.leptos]\noutput-name = \"tandem\"\nsite-root = \"target/site\"\nsite-pkg-dir = \"pkg\"\n",
        )
        .expect("leptos options");
        let db = settings.database_url.trim_start_matches("sqlite://").into();
        let config = Config { leptos, settings };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = Shutdown::default();
        let handle = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                tandem::server::run_with(config, listener, shutdown, hooks)
                    .await
                    .expect("server runs")
            }
        });
        TestServer {
            addr,
            shutdown,
            handle: Some(handle),
            db,
            _dir: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn origin(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The Prometheus text of `/metrics`, scraped with the token.
    pub async fn metrics(&self) -> String {
        let r = reqwest::Client::new()
            .get(self.url("/metrics"))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .expect("GET /metrics");
        assert_eq!(r.status(), 200, "metrics scraped");
        r.text().await.expect("metrics text")
    }

    /// Triggers graceful shutdown and waits for the server to finish.
    pub async fn stop(&mut self) {
        self.shutdown.trigger();
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), h)
                .await
                .expect("stops in time")
                .expect("no panic");
        }
    }

    /// A cookie-keeping HTTP client that has chosen `name`.
    pub async fn user(&self, name: &str) -> Http {
        let http = Http::new(self);
        let r = http.post("set_display_name", &[("name", name)]).await;
        assert_eq!(r.0, 200, "set name: {}", r.1);
        http
    }

    pub async fn ws(&self) -> Ws {
        Ws::connect(self, None, None).await.expect("ws connects")
    }

    pub async fn ws_as(&self, name: &str) -> Ws {
        let cookie = format!("tandem_name={name}");
        Ws::connect(self, Some(&self.origin()), Some(&cookie))
            .await
            .expect("ws connects")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

pub struct Http {
    pub client: reqwest::Client,
    base: String,
}

impl Http {
    pub fn new(server: &TestServer) -> Self {
        Http {
            client: reqwest::Client::builder()
                .cookie_store(true)
                .timeout(WAIT * 6)
                .build()
                .expect("client"),
            base: server.url("/api/"),
        }
    }

    /// GET a server function; returns (status, JSON body).
    pub async fn get(&self, name: &str, query: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .client
            .get(format!("{}{}", self.base, name))
            .query(query)
            .send()
            .await
            .expect("GET");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    /// POST a server function with form-encoded arguments.
    pub async fn post(&self, name: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self
            .client
            .post(format!("{}{}", self.base, name))
            .form(form)
            .send()
            .await
            .expect("POST");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    pub async fn send(&self, room: i64, client_id: &str, body: &str) -> (u16, Value) {
        self.post(
            "send_message",
            &[
                ("room_id", &room.to_string()),
                ("client_id", client_id),
                ("body", body),
            ],
        )
        .await
    }
}

pub struct Ws {
    pub stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    pub async fn connect(
        server: &TestServer,
        origin: Option<&str>,
        cookie: Option<&str>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let mut req = format!("ws://{}/ws", server.addr).into_client_request()?;
        if let Some(o) = origin {
            req.headers_mut()
                .insert("origin", HeaderValue::from_str(o).expect("header"));
        }
        if let Some(c) = cookie {
            req.headers_mut()
                .insert("cookie", HeaderValue::from_str(c).expect("header"));
        }
        let (stream, _) = tokio_tungstenite::connect_async(req).await?;
        let mut ws = Ws { stream };
        match ws.recv().await {
            ServerFrame::Hello { .. } => Ok(ws),
            other => panic!("expected hello, got {other:?}"),
        }
    }

    pub async fn send(&mut self, frame: &ClientFrame) {
        self.send_text(&frame.to_json().expect("serializable"))
            .await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::Text(text.into()))
            .await
            .expect("ws send");
    }

    /// The next server frame other than a ping.
    pub async fn recv(&mut self) -> ServerFrame {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("a frame within the wait")
                .expect("socket open")
                .expect("no socket error");
            if let Message::Text(t) = msg {
                let frame: ServerFrame =
                    serde_json::from_str(t.as_str()).expect("valid server frame");
                if frame != (ServerFrame::Ping {}) {
                    return frame;
                }
            }
        }
    }

    /// Asserts nothing but pings arrive for `d`.
    pub async fn expect_silence(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Text(t)))) => {
                    let f: ServerFrame = serde_json::from_str(t.as_str()).expect("frame");
                    assert_eq!(f, ServerFrame::Ping {}, "unexpected frame");
                }
                Ok(other) => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Waits for the server's close frame and returns its code.
    pub async fn closed_with(&mut self) -> u16 {
        loop {
            let msg = tokio::time::timeout(WAIT * 3, self.stream.next())
                .await
                .expect("closes within the wait");
            match msg {
                Some(Ok(Message::Close(Some(c)))) => return u16::from(c.code),
                Some(Ok(Message::Close(None))) => return u16::from(WsCloseCode::Status),
                Some(Ok(_)) => continue,
                Some(Err(e)) => panic!("socket error before close frame: {e}"),
                None => panic!("socket ended without close frame"),
            }
        }
    }
}

/// A fresh client id.
pub fn cid() -> String {
    tandem::sync::new_client_id().to_string()
}
