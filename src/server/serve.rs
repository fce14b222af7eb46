//! The one serving path (ssr only): accepts TCP connections and serves HTTP/1
//! (WebSocket upgrades included) with hyper, under limits that no client can
//! lift:
//! - at most `max-http-connections` connections are served at once: past
//!   that the server stops accepting and new connections wait in the
//!   kernel's backlog, so descriptors cannot run out;
//! - a connection must send a request's complete headers within
//!   `http-header-timeout-ms` of starting to wait for them, which covers a
//!   slowloris, a connection that never speaks, and an idle keep-alive one;
//! - on shutdown, connections are told to finish (keep-alive ends), and the
//!   server waits for the requests in flight.
//!
//! With TLS configured (`tls.rs`), each accepted connection completes its
//! handshake first, within the same header timeout, so HTTPS and wss get
//! the same limits. A WebSocket leaves this path once upgraded (its session
//! has limits of its own).
//!
//! Concurrency: one accept loop; one task per connection.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// The limits of the serving path, and its TLS if any.
#[derive(Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    /// Connections are TLS first (HTTPS, wss) when set.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Serves `app` on `listener` until `stop` resolves, then waits for the
/// requests in flight to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stop: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let max = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max));
    // Tells every connection to finish: answer what is in flight, then close.
    let (finish, finishing) = watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            _ = &mut stop => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break, // closed: cannot happen while `permits` lives
            },
        };
        let (tcp, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Out of descriptors, or a connection reset before
                    // accept: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Live frames are small and latency-bound: never hold them back for
        // Nagle's algorithm.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(req)
        });
        let (http, finishing, tls) = (http.clone(), finishing.clone(), limits.tls.clone());
        let handshake = limits.header_timeout;
        tokio::spawn(async move {
            match tls {
                None => serve_one(TokioIo::new(tcp), http, service, finishing).await,
                Some(acceptor) => {
                    match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            serve_one(TokioIo::new(stream), http, service, finishing).await
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
    }
    drop(listener);
    finish.send_replace(true);
    // Every connection holds a permit until it ends: all of them back means
    // every request in flight was answered.
    let _all_done = permits.acquire_many(max as u32).await;
    Ok(())
}

/// Serves HTTP/1 on one connection until it ends, or finishes it
/// gracefully once `finishing` turns true.
async fn serve_one<I, S>(
    io: I,
    http: hyper::server::conn::http1::Builder,
    service: S,
    mut finishing: watch::Receiver<bool>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming> + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = http.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let ended = tokio::select! {
        ended = conn.as_mut() => ended,
        _ = async { drop(finishing.wait_for(|&f| f).await) } => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = ended {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}
