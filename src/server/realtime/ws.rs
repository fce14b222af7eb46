//! The WebSocket transport, `GET /ws` (ssr only).
//!
//! One task per connection: a `select!` over the socket's reads, the
//! connection's outbox, the broker's lag signal, the heartbeat tick and the
//! shutdown signal. Replies and deliveries are queued with `feed` and written
//! with one `flush` per batch. Every write has a deadline (the heartbeat
//! timeout), so a peer that stops reading cannot hold the task forever.
//!
//! Limits: text frames above `max-frame-bytes` get a `too_large` error frame
//! and the connection stays; messages above `max-ws-message-bytes` are cut
//! off by the WebSocket layer, which closes with 1009. More than
//! `max-bad-frames` refused frames close with 4400.

use super::session::{Session, Verdict};
use crate::protocol::{CloseCode, ErrorCode, ProtocolError, ServerFrame};
use crate::server::broker::Outbox;
use crate::server::security;
use crate::server::state::AppState;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::SinkExt;
use std::time::Duration;
use tokio::time::{timeout, Instant};

/// Most deliveries taken from the outbox per write batch.
const BATCH: usize = 64;

pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !security::origin_allowed(&headers, &state.settings.allowed_origins) {
        tracing::warn!(origin = ?headers.get("origin"), "cross-origin WebSocket refused");
        crate::server::metrics::reject("cross_origin_websocket");
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused").into_response();
    }
    if state.shutdown.is_triggered() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response();
    }
    let author = security::display_name(&headers);
    let may_publish = security::bearer_matches(&headers, &state.settings.publish_token);
    let max = state.settings.max_ws_message_bytes;
    ws.read_buffer_size(1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| run(socket, state, author, may_publish))
}

struct Conn {
    socket: WebSocket,
    deadline: Duration,
}

impl Conn {
    /// Queues and flushes frames; `false` if the peer is gone or too slow.
    async fn write(&mut self, frames: &mut Vec<Utf8Bytes>) -> bool {
        if frames.is_empty() {
            return true;
        }
        let socket = &mut self.socket;
        let all = async {
            for f in frames.drain(..) {
                socket.feed(Message::Text(f)).await?;
            }
            socket.flush().await
        };
        matches!(timeout(self.deadline, all).await, Ok(Ok(())))
    }

    async fn close(&mut self, code: CloseCode, reason: &str) {
        let frame = CloseFrame {
            code: code as u16,
            reason: reason.into(),
        };
        let _ = timeout(
            Duration::from_secs(1),
            self.socket.send(Message::Close(Some(frame))),
        )
        .await;
    }
}

async fn run(socket: WebSocket, state: AppState, author: Option<String>, may_publish: bool) {
    let _guard = state.shutdown.track_session();
    let settings = state.settings.clone();
    let meters = state.meters.clone();
    meters.ws_connects.increment(1);
    meters.ws_connections.increment(1.0);
    let (outbox, mut inbox) =
        Outbox::counted(settings.outbox_capacity, Some(meters.dropped_full.clone()));
    let mut session = Session::new(state.clone(), author, may_publish, outbox.clone());
    let mut conn = Conn {
        socket,
        deadline: Duration::from_millis(settings.heartbeat_timeout_ms),
    };
    let conn_id = session.conn;
    tracing::debug!(conn_id, "websocket open");

    let beat = Duration::from_millis(settings.heartbeat_interval_ms);
    let silence = Duration::from_millis(settings.heartbeat_timeout_ms);
    let mut tick = tokio::time::interval_at(Instant::now() + beat, beat);
    let mut heard = Instant::now();
    let mut out = vec![session.hello()];
    let mut batch = Vec::with_capacity(BATCH);
    let shutdown = state.shutdown.clone();

    let end = loop {
        if !conn.write(&mut out).await {
            break "write failed or timed out";
        }
        tokio::select! {
            biased;
            _ = shutdown.wait() => {
                out.push(ServerFrame::Reconnect { reason: "server restarting".into(), after_ms: 500 }.to_json().into());
                let _ = conn.write(&mut out).await;
                conn.close(CloseCode::ServiceRestart, "server restarting").await;
                break "shutdown";
            }
            incoming = conn.socket.recv() => {
                heard = Instant::now();
                match incoming {
                    Some(Ok(Message::Text(text))) => {
                        if session.handle_text(text.as_str(), &mut out).await == Verdict::Close {
                            let _ = conn.write(&mut out).await;
                            conn.close(CloseCode::ProtocolViolation, "too many malformed frames").await;
                            break "protocol violation";
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let err = ProtocolError::BadFrame("binary frames are not supported; send JSON text".into());
                        if session.refuse(err, &mut out) == Verdict::Close {
                            let _ = conn.write(&mut out).await;
                            conn.close(CloseCode::ProtocolViolation, "too many malformed frames").await;
                            break "protocol violation";
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_))) | None => break "closed by peer",
                    Some(Err(e)) => {
                        if is_capacity(&e) {
                            let msg = ServerFrame::Error(crate::protocol::ErrorFrame {
                                code: ErrorCode::TooLarge,
                                message: format!("message above {} bytes", settings.max_ws_message_bytes),
                                topic: None,
                                client_id: None,
                            });
                            out.push(msg.to_json().into());
                            let _ = conn.write(&mut out).await;
                            conn.close(CloseCode::MessageTooBig, "message too big").await;
                            // The oversized payload is still unread in the kernel: closing
                            // the TCP socket now would send a reset that can destroy the
                            // close frame in flight. Linger briefly (this path only).
                            tokio::time::sleep(Duration::from_millis(250)).await;
                        }
                        tracing::debug!(conn_id, error = %e, "websocket read error");
                        break "read error";
                    }
                }
            }
            n = inbox.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    break "outbox closed";
                }
                meters.queue_depth.record((inbox.len() + n) as f64);
                for d in batch.drain(..) {
                    session.deliver(&d, &mut out).await;
                }
                session.flush_meters();
            }
            _ = outbox.lagged() => session.repair_lagged(&mut out).await,
            _ = tick.tick() => {
                if heard.elapsed() > silence {
                    conn.close(CloseCode::HeartbeatTimeout, "heartbeat timeout").await;
                    break "heartbeat timeout";
                }
                out.push(ServerFrame::Ping {}.to_json().into());
            }
        }
    };
    drop(session);
    meters.ws_connections.decrement(1.0);
    tracing::debug!(conn_id, reason = end, "websocket closed");
}

fn is_capacity(e: &axum::Error) -> bool {
    let text = e.to_string();
    text.contains("Space limit exceeded")
        || text.contains("Message too long")
        || text.contains("capacity")
}
