//! TLS in the one binary: with a certificate and key configured, the server
//! speaks HTTPS and wss itself (same serving path, same limits), sends HSTS,
//! refuses plain HTTP on its TLS port, and can redirect a plain listener to
//! the HTTPS site. The certificate is self-signed, made by `rcgen`.
#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::TestServer;
use futures::StreamExt;
use std::sync::Arc;
use tandem::protocol::ServerFrame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, pki_types::ServerName, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

/// A self-signed certificate for localhost, written as PEM files.
struct Certificate {
    dir: tempfile::TempDir,
    der: rustls::pki_types::CertificateDer<'static>,
}

impl Certificate {
    fn new() -> Self {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), cert.key_pair.serialize_pem()).unwrap();
        Certificate {
            der: cert.cert.der().clone(),
            dir,
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn connector(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }
}

async fn tls_stream(
    server: &TestServer,
    cert: &Certificate,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    cert.connector().connect(name, tcp).await.unwrap()
}

async fn tls_server(
    cert: &Certificate,
    tweak: impl FnOnce(&mut tandem::server::config::Settings),
) -> TestServer {
    let (c, k) = (cert.file("cert.pem"), cert.file("key.pem"));
    TestServer::with(|s| {
        s.tls_cert_file = c;
        s.tls_key_file = k;
        tweak(s);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_are_served_by_the_binary() {
    let cert = Certificate::new();
    let server = tls_server(&cert, |_| {}).await;
    let port = server.addr.port();

    let mut https = tls_stream(&server, &cert).await;
    let request =
        format!("GET /healthz HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n");
    https.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    https.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age="),
        "{answer}"
    );

    let stream = tls_stream(&server, &cert).await;
    let url = format!("wss://localhost:{port}/ws?protocol=1");
    let (mut wss, _) = tokio_tungstenite::client_async(url, stream).await.unwrap();
    match wss.next().await {
        Some(Ok(Message::Text(t))) => {
            let hello: ServerFrame = serde_json::from_str(t.as_str()).unwrap();
            assert!(matches!(hello, ServerFrame::Hello { .. }));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_the_tls_port_gets_no_answer() {
    let cert = Certificate::new();
    let server = tls_server(&cert, |_| {}).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(common::WAIT, tcp.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&buf).contains("200 OK"),
        "no HTTP over the TLS port"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_listener_redirects_to_the_https_site() {
    let cert = Certificate::new();
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server = tls_server(&cert, |s| {
        s.http_redirect_addr = free.to_string();
        s.public_origins = vec!["https://localhost:8443".into()];
    })
    .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut answer = None;
    for _ in 0..50 {
        // The redirect listener starts with the server.
        if let Ok(r) = client
            .get(format!("http://{free}/rooms/1?x=1"))
            .send()
            .await
        {
            answer = Some(r);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let r = answer.expect("the redirect listener answers");
    assert_eq!(r.status(), 308);
    assert_eq!(
        r.headers()["location"],
        "https://localhost:8443/rooms/1?x=1"
    );
    drop(server);
}
