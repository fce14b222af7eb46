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

/// The password every test account gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// The account test servers let hold the `publish` scope.
pub const PUBLISHER: &str = "publisher";

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
        publishers: vec![PUBLISHER.into()],
        // Tests sign the same accounts in many times from one address; the
        // throttle's own tests (tests/accounts.rs) set the defaults back.
        login_burst: 10_000,
        login_ip_burst: 10_000,
        signups_per_hour: 10_000,
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
        Self::fresh(tweak, hooks, "target/site").await
    }

    /// A server on a fresh database serving its files from `site_root`.
    pub async fn with_site_root(site_root: &std::path::Path) -> Self {
        Self::fresh(|_| {}, Hooks::default(), &site_root.display().to_string()).await
    }

    async fn fresh(tweak: impl FnOnce(&mut Settings), hooks: Hooks, site_root: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("test.db");
        let mut s = settings(&db);
        tweak(&mut s);
        let mut server = Self::launch_in(s, hooks, site_root).await;
        server._dir = Some(dir);
        server
    }

    /// Starts a server with exactly these settings (e.g. on an existing database).
    pub async fn launch(settings: Settings) -> Self {
        Self::launch_in(settings, Hooks::default(), "target/site").await
    }

    async fn launch_in(settings: Settings, hooks: Hooks, site_root: &str) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("warn")
            .with_test_writer()
            .try_init();
        let leptos = leptos::config::get_config_from_str(&format!(
            "[package.metadata.leptos]\noutput-name = \"tandem\"\nsite-root = {site_root:?}\nsite-pkg-dir = \"pkg\"\n"
        ))
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

    /// A cookie-keeping HTTP client signed in as `name` (the account is
    /// created with `PASSWORD` if it does not exist yet).
    pub async fn user(&self, name: &str) -> Http {
        let http = Http::new(self);
        let form = [("name", name), ("password", PASSWORD)];
        let (status, body) = http.post("sign_up", &form).await;
        if status == 409 {
            let (status, body) = http.post("log_in", &form).await;
            assert_eq!(status, 200, "log in {name}: {body}");
        } else {
            assert_eq!(status, 200, "sign up {name}: {body}");
        }
        http
    }

    /// An anonymous WebSocket.
    pub async fn ws(&self) -> Ws {
        Ws::connect(self, None, None).await.expect("ws connects")
    }

    /// A WebSocket signed in as `name` (its session cookie, from `user`).
    pub async fn ws_as(&self, name: &str) -> Ws {
        let http = self.user(name).await;
        self.ws_for(&http).await
    }

    /// A WebSocket with the session cookie of `http`.
    pub async fn ws_for(&self, http: &Http) -> Ws {
        let cookie = http.cookie_header().expect("signed in");
        Ws::connect(self, Some(&self.origin()), Some(&cookie))
            .await
            .expect("ws connects")
    }

    /// A new access token of `name`'s account with these scopes
    /// (`read,write,publish`); returns its secret.
    pub async fn token(&self, name: &str, scopes: &str) -> String {
        let http = self.user(name).await;
        let (status, body) = http
            .post("create_token", &[("label", "test"), ("scopes", scopes)])
            .await;
        assert_eq!(status, 200, "create token: {body}");
        body["secret"].as_str().expect("secret").to_owned()
    }

    /// A WebSocket authenticated by a bearer token (no Origin, no cookie).
    pub async fn ws_token(&self, token: &str) -> Ws {
        Ws::connect_with(self, &[("authorization", &format!("Bearer {token}"))])
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
    pub jar: std::sync::Arc<reqwest::cookie::Jar>,
    base: String,
}

impl Http {
    pub fn new(server: &TestServer) -> Self {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        Http {
            client: reqwest::Client::builder()
                .cookie_provider(jar.clone())
                .timeout(WAIT * 6)
                .build()
                .expect("client"),
            jar,
            base: server.url("/api/"),
        }
    }

    /// The `Cookie` header this client sends (its session), if any.
    pub fn cookie_header(&self) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let url = self.base.parse().expect("url");
        self.jar
            .cookies(&url)
            .map(|v| v.to_str().expect("ascii").to_owned())
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
        let mut headers = Vec::new();
        if let Some(o) = origin {
            headers.push(("origin", o));
        }
        if let Some(c) = cookie {
            headers.push(("cookie", c));
        }
        Self::connect_with(server, &headers).await
    }

    /// Connects with these upgrade headers; waits for `hello`.
    pub async fn connect_with(
        server: &TestServer,
        headers: &[(&'static str, &str)],
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let mut req = format!("ws://{}/ws", server.addr).into_client_request()?;
        for (k, v) in headers {
            req.headers_mut()
                .insert(*k, HeaderValue::from_str(v).expect("header"));
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
            let frame = self.recv_raw().await;
            if frame != (ServerFrame::Ping {}) {
                return frame;
            }
        }
    }

    /// The next frame, pings included (for tests that answer them).
    pub async fn recv_raw(&mut self) -> ServerFrame {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("a frame within the wait")
                .expect("socket open")
                .expect("no socket error");
            if let Message::Text(t) = msg {
                return serde_json::from_str(t.as_str()).expect("valid server frame");
            }
        }
    }

    /// Asserts nothing but pings (application and WebSocket ones) arrive
    /// for `d`. Reading answers WebSocket pings, as a browser does.
    pub async fn expect_silence(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => {}
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

/// A TCP stream whose writes can be swallowed: a peer whose machine still
/// acknowledges packets but whose software sends nothing, not even the
/// WebSocket layer's automatic pongs.
pub struct Mute {
    inner: TcpStream,
    pub muted: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl tokio::io::AsyncRead for Mute {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Mute {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        if self.muted.load(std::sync::atomic::Ordering::Relaxed) {
            return std::task::Poll::Ready(Ok(buf.len()));
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl TestServer {
    /// A WebSocket that goes mute once its `hello` has arrived: it reads
    /// everything and answers nothing (a crashed tab).
    pub async fn ws_mute(&self) -> WebSocketStream<Mute> {
        let tcp = TcpStream::connect(self.addr).await.expect("connect");
        let mute = Mute {
            inner: tcp,
            muted: Default::default(),
        };
        let flag = mute.muted.clone();
        let req = format!("ws://{}/ws", self.addr)
            .into_client_request()
            .expect("request");
        let (mut ws, _) = tokio_tungstenite::client_async(req, mute)
            .await
            .expect("upgrade");
        match ws.next().await {
            Some(Ok(Message::Text(t))) if t.contains(r#""type":"hello""#) => {}
            other => panic!("expected hello, got {other:?}"),
        }
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
        ws
    }
}

/// Reads `ws` until the server's close frame; returns its code.
pub async fn close_code<S>(ws: &mut WebSocketStream<S>) -> u16
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let msg = tokio::time::timeout(WAIT * 3, ws.next())
            .await
            .expect("closes within the wait");
        match msg {
            Some(Ok(Message::Close(Some(c)))) => return u16::from(c.code),
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    }
}
