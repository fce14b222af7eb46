//! `Socket`: the server end of a WebSocket connection (RFC 6455), run by
//! tandem itself over the upgraded HTTP connection, with permessage-deflate
//! (RFC 7692, `deflate`) when the client offers it (ssr only).
//!
//! Why not axum's `WebSocket`: tungstenite, under it, has no
//! permessage-deflate, and writes every message through its own copy; here
//! an event's frame is compressed once and the same bytes go to every
//! subscriber (`Frame::deflated`).
//!
//! `Upgrade` is the extractor that checks the opening handshake and answers
//! it (101, `Sec-WebSocket-Accept`, the agreed extension). `Socket` is a
//! `Stream` of the peer's messages and a `Sink` of `Out`:
//! - reading: frames must be masked, control frames short and whole, RSV1
//!   only on the first frame of a message and only with compression agreed,
//!   RSV2/RSV3 never; fragments are joined; a message above the limit is
//!   refused from its header, before its payload is read; a compressed one
//!   is inflated up to the limit only; text must be UTF-8. A ping is
//!   answered with a pong and a Close echoed, with the next write.
//! - writing: frames are encoded into one buffer and written in as few
//!   writes as the kernel takes; a text of at least `min_deflate` bytes is
//!   sent compressed when that is smaller: an event by its one shared
//!   compressed form, a `batch` joined from its events' (the broker's
//!   events are never compressed per connection). A frame made for this
//!   connection alone is compressed only from `frame::OWN_MIN_BYTES`.
//! - memory: no buffer is kept while idle. Reads go through a buffer on the
//!   stack and only a frame not yet whole is kept; the write buffer is
//!   released once written.

use super::deflate;
use super::frame::Frame;
use super::wire::{Wire, WireIo};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::{Buf, Bytes, BytesMut};
use futures::future::Either;
use futures::{FutureExt, Sink, Stream};
use hyper_util::rt::TokioIo;
use std::io::Cursor;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Bytes queued for writing before `poll_ready` writes them out.
const WRITE_HIGH: usize = 64 * 1024;
/// The stack buffer one read goes through.
const READ_CHUNK: usize = 8 * 1024;

/// What the server writes.
#[derive(Debug)]
pub enum Out {
    /// A frame many connections may write (compressed once for all).
    Frame(Frame),
    /// Several frames as one `batch` message (compressed, it is joined from
    /// the frames' shared compressed forms, nothing compressed again).
    Batch(Vec<Frame>),
    Ping,
    /// A Close frame with its code and reason.
    Close(u16, String),
}

/// Why a connection cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("message above {limit} bytes")]
    TooBig { limit: usize },
    #[error("WebSocket protocol error: {0}")]
    Protocol(&'static str),
    #[error("a text message is not UTF-8")]
    NotUtf8,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl WsError {
    /// The close code a peer is told (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> Option<u16> {
        match self {
            WsError::TooBig { .. } => Some(1009),
            WsError::Protocol(_) => Some(1002),
            WsError::NotUtf8 => Some(1007),
            WsError::Io(_) => None,
        }
    }
}

/// The opening handshake of `GET /ws`, checked (RFC 6455 §4.2.1).
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: hyper::upgrade::OnUpgrade,
    deflate_offered: bool,
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        const BAD: StatusCode = StatusCode::BAD_REQUEST;
        if parts.method != Method::GET {
            return Err((StatusCode::METHOD_NOT_ALLOWED, "a WebSocket opens with GET"));
        }
        let has_token = |name: header::HeaderName, token: &str| {
            parts.headers.get_all(name).iter().any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            })
        };
        if !has_token(header::CONNECTION, "upgrade") {
            return Err((BAD, "Connection header did not include 'upgrade'"));
        }
        if !has_token(header::UPGRADE, "websocket") {
            return Err((BAD, "`Upgrade` header did not include 'websocket'"));
        }
        if parts.headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13"))
        {
            return Err((BAD, "`Sec-WebSocket-Version` header did not include '13'"));
        }
        let key = parts
            .headers
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or((BAD, "`Sec-WebSocket-Key` header missing"))?;
        let on_upgrade = parts
            .extensions
            .remove::<hyper::upgrade::OnUpgrade>()
            .ok_or((
                StatusCode::UPGRADE_REQUIRED,
                "WebSocket request couldn't be upgraded since no upgrade state was present",
            ))?;
        let deflate_offered = deflate::negotiate(
            parts
                .headers
                .get_all(header::SEC_WEBSOCKET_EXTENSIONS)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        Ok(Upgrade {
            key,
            on_upgrade,
            deflate_offered,
        })
    }
}

/// How a connection's socket is set up.
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The largest message (all its fragments, inflated) read from the peer.
    pub max_message: usize,
    /// Compression agreed when offered; texts of at least this many bytes
    /// are compressed. `None`: never agreed.
    pub min_deflate: Option<usize>,
}

impl Upgrade {
    /// Answers `101 Switching Protocols` and runs `serve` on the socket once
    /// the connection is handed over.
    ///
    /// Over plain TCP the socket writes through a `Wire`, which `serve` also
    /// gets, for the broker to write events to directly; over TLS `serve`
    /// gets `None` and every write goes through the connection's task.
    pub fn on_upgrade<F, Fut>(self, config: Config, serve: F) -> Response
    where
        F: FnOnce(Socket<Io>, Option<Arc<Wire>>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let min_deflate = config.min_deflate.filter(|_| self.deflate_offered);
        let accept = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        // The upgrade, then `serve`, chained rather than awaited in one
        // block: the task holds one of the two futures at a time, not the
        // upgrade's state beside the connection's for its whole life.
        let upgrade = async move {
            let upgraded = match on_upgrade.await {
                Ok(upgraded) => upgraded,
                Err(e) => {
                    tracing::debug!(error = %e, "WebSocket upgrade failed");
                    return None;
                }
            };
            let (io, early, wire) = match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => {
                    let (wire, io) = Wire::new(parts.io.into_inner(), min_deflate);
                    (Io::Wire(io), parts.read_buf, Some(wire))
                }
                Err(upgraded) => (Io::Other(TokioIo::new(upgraded)), Bytes::new(), None),
            };
            let mut socket = Socket::new(io, config.max_message, min_deflate);
            // Bytes the client sent right after its request, read by hyper,
            // copied: `early` shares hyper's whole read buffer, which must
            // not live as long as the connection.
            if !early.is_empty() {
                socket.rd.extend_from_slice(&early);
            }
            Some((socket, wire))
        };
        tokio::spawn(upgrade.then(move |upgraded| match upgraded {
            Some((socket, wire)) => Either::Left(serve(socket, wire)),
            None => Either::Right(std::future::ready(())),
        }));
        let mut response = (
            StatusCode::SWITCHING_PROTOCOLS,
            [
                (header::CONNECTION, "upgrade"),
                (header::UPGRADE, "websocket"),
            ],
        )
            .into_response();
        let headers = response.headers_mut();
        if let Ok(accept) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        if min_deflate.is_some() {
            headers.insert(
                header::SEC_WEBSOCKET_EXTENSIONS,
                HeaderValue::from_static(deflate::AGREED),
            );
        }
        response
    }
}

/// What a socket runs over: a shared `Wire` (plain TCP) or whatever hyper
/// upgraded (TLS).
pub enum Io {
    Wire(WireIo),
    Other(TokioIo<hyper::upgrade::Upgraded>),
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Wire(io) => Pin::new(io).poll_read(cx, buf),
            Io::Other(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Io::Wire(io) => Pin::new(io).poll_write(cx, buf),
            Io::Other(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Wire(io) => Pin::new(io).poll_flush(cx),
            Io::Other(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Io::Wire(io) => Pin::new(io).poll_shutdown(cx),
            Io::Other(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}

/// A message being received in fragments.
struct Partial {
    text: bool,
    compressed: bool,
    data: BytesMut,
}

/// Turns the peer's bytes into messages (the reading half, without I/O).
pub struct Reader {
    max: usize,
    deflate: bool,
    partial: Option<Partial>,
}

impl Reader {
    pub fn new(max: usize, deflate: bool) -> Self {
        Reader {
            max,
            deflate,
            partial: None,
        }
    }

    /// The next message whole in `buf` (its bytes consumed), or `None` if
    /// more bytes are needed.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, WsError> {
        loop {
            let mut cursor = Cursor::new(&buf[..]);
            let (head, len) = match FrameHeader::parse(&mut cursor) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => return Ok(None),
                Err(_) => return Err(WsError::Protocol("invalid frame header")),
            };
            let at = usize::try_from(cursor.position()).unwrap_or(usize::MAX);
            let too_big = || WsError::TooBig { limit: self.max };
            let len = usize::try_from(len).map_err(|_| too_big())?;
            let control = matches!(head.opcode, OpCode::Control(_));
            if control && (len > 125 || !head.is_final) {
                return Err(WsError::Protocol("control frame too long or fragmented"));
            }
            let so_far = self.partial.as_ref().map_or(0, |p| p.data.len());
            if !control && so_far.saturating_add(len) > self.max {
                return Err(too_big());
            }
            let Some(mask) = head.mask else {
                return Err(WsError::Protocol("a client frame was not masked"));
            };
            if head.rsv2 || head.rsv3 {
                return Err(WsError::Protocol("reserved bits set"));
            }
            if buf.len() < at + len {
                buf.reserve(at + len - buf.len());
                return Ok(None);
            }
            buf.advance(at);
            let mut payload = buf.split_to(len);
            unmask(&mut payload, mask);
            let message = match head.opcode {
                OpCode::Control(_) if head.rsv1 => {
                    return Err(WsError::Protocol("RSV1 on a control frame"))
                }
                OpCode::Control(Control::Ping) => Some(Message::Ping(payload.freeze())),
                OpCode::Control(Control::Pong) => Some(Message::Pong(payload.freeze())),
                OpCode::Control(Control::Close) => Some(Message::Close(close_frame(&payload)?)),
                OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                    return Err(WsError::Protocol("reserved opcode"))
                }
                OpCode::Data(Data::Continue) => {
                    if head.rsv1 {
                        return Err(WsError::Protocol("RSV1 on a continuation frame"));
                    }
                    let Some(partial) = self.partial.as_mut() else {
                        return Err(WsError::Protocol("continuation with no message begun"));
                    };
                    partial.data.extend_from_slice(&payload);
                    if head.is_final {
                        self.partial
                            .take()
                            .map(|p| self.finish(p.text, p.compressed, p.data))
                            .transpose()?
                    } else {
                        None
                    }
                }
                OpCode::Data(data @ (Data::Text | Data::Binary)) => {
                    if self.partial.is_some() {
                        return Err(WsError::Protocol("a new message inside a fragmented one"));
                    }
                    if head.rsv1 && !self.deflate {
                        return Err(WsError::Protocol("RSV1 without compression agreed"));
                    }
                    let text = data == Data::Text;
                    if head.is_final {
                        Some(self.finish(text, head.rsv1, payload)?)
                    } else {
                        self.partial = Some(Partial {
                            text,
                            compressed: head.rsv1,
                            data: payload,
                        });
                        None
                    }
                }
            };
            if let Some(message) = message {
                return Ok(Some(message));
            }
        }
    }

    fn finish(&self, text: bool, compressed: bool, data: BytesMut) -> Result<Message, WsError> {
        let data = if compressed {
            Bytes::from(deflate::inflate(&data, self.max).map_err(|e| match e {
                deflate::InflateError::TooBig => WsError::TooBig { limit: self.max },
                deflate::InflateError::Invalid => WsError::Protocol("invalid compressed data"),
            })?)
        } else {
            data.freeze()
        };
        if text {
            Utf8Bytes::try_from(data)
                .map(Message::Text)
                .map_err(|_| WsError::NotUtf8)
        } else {
            Ok(Message::Binary(data))
        }
    }
}

fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// A Close frame's body: empty, or a code and a UTF-8 reason (§5.5.1).
fn close_frame(payload: &[u8]) -> Result<Option<CloseFrame>, WsError> {
    match payload {
        [] => Ok(None),
        [_] => Err(WsError::Protocol("a one-byte close frame")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            let valid = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !valid {
                return Err(WsError::Protocol("invalid close code"));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| WsError::NotUtf8)?;
            Ok(Some(CloseFrame {
                code,
                reason: reason.into(),
            }))
        }
    }
}

/// Appends one unmasked, final server frame.
pub fn put_frame(out: &mut BytesMut, opcode: u8, compressed: bool, payload: &[u8]) {
    let head = Head::new(opcode, compressed, payload.len());
    out.reserve(head.len + payload.len());
    out.extend_from_slice(head.bytes());
    out.extend_from_slice(payload);
}

/// The header of an unmasked, final server frame (2 to 10 bytes).
pub struct Head {
    buf: [u8; 10],
    len: usize,
}

impl Head {
    pub fn new(opcode: u8, compressed: bool, len: usize) -> Self {
        let mut buf = [0u8; 10];
        buf[0] = 0x80 | if compressed { 0x40 } else { 0 } | opcode;
        let n = match len {
            0..=125 => {
                buf[1] = len as u8;
                2
            }
            126..=0xffff => {
                buf[1] = 126;
                buf[2..4].copy_from_slice(&(len as u16).to_be_bytes());
                4
            }
            _ => {
                buf[1] = 127;
                buf[2..10].copy_from_slice(&(len as u64).to_be_bytes());
                10
            }
        };
        Head { buf, len: n }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

pub const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// The server end of one WebSocket connection over `T`.
pub struct Socket<T> {
    io: T,
    /// Bytes read and not yet a whole message (empty, unallocated, when idle).
    rd: BytesMut,
    /// Frames encoded and not yet written.
    wr: BytesMut,
    reader: Reader,
    min_deflate: Option<usize>,
    close_sent: bool,
    eof: bool,
}

impl<T> Socket<T> {
    pub fn new(io: T, max_message: usize, min_deflate: Option<usize>) -> Self {
        Socket {
            io,
            rd: BytesMut::new(),
            wr: BytesMut::new(),
            reader: Reader::new(max_message, min_deflate.is_some()),
            min_deflate,
            close_sent: false,
            eof: false,
        }
    }
}

impl<T: AsyncWrite + Unpin> Socket<T> {
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while !self.wr.is_empty() {
            let n = ready!(Pin::new(&mut self.io).poll_write(cx, &self.wr))?;
            if n == 0 {
                return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
            }
            self.wr.advance(n);
        }
        // Written: give the buffer back rather than keep it while idle.
        self.wr = BytesMut::new();
        Poll::Ready(Ok(()))
    }
}

fn error(e: impl Into<WsError>) -> axum::Error {
    axum::Error::new(e.into())
}

impl<T: AsyncRead + AsyncWrite + Unpin> Stream for Socket<T> {
    type Item = Result<Message, axum::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if !this.wr.is_empty() {
            // Pongs and a Close echo go out as soon as they can; an error
            // here shows on the next write.
            let _ = this.poll_write_out(cx);
        }
        loop {
            match this.reader.next(&mut this.rd) {
                Err(e) => return Poll::Ready(Some(Err(error(e)))),
                Ok(Some(message)) => {
                    match &message {
                        Message::Ping(data) if !this.close_sent => {
                            put_frame(&mut this.wr, PONG, false, data);
                        }
                        Message::Close(frame) if !this.close_sent => {
                            // Echo the peer's code (§5.5.1).
                            let body = frame
                                .as_ref()
                                .map(|f| f.code.to_be_bytes().to_vec())
                                .unwrap_or_default();
                            put_frame(&mut this.wr, CLOSE, false, &body);
                            this.close_sent = true;
                        }
                        _ => {}
                    }
                    if this.rd.is_empty() {
                        this.rd = BytesMut::new();
                    }
                    return Poll::Ready(Some(Ok(message)));
                }
                Ok(None) => {}
            }
            if this.eof {
                return Poll::Ready(if this.rd.is_empty() && this.reader.partial.is_none() {
                    None
                } else {
                    Some(Err(error(WsError::Protocol(
                        "connection closed inside a frame",
                    ))))
                });
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut read = ReadBuf::new(&mut chunk);
            if let Err(e) = ready!(Pin::new(&mut this.io).poll_read(cx, &mut read)) {
                return Poll::Ready(Some(Err(error(e))));
            }
            if read.filled().is_empty() {
                this.eof = true;
            } else {
                this.rd.extend_from_slice(read.filled());
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> Sink<Out> for Socket<T> {
    type Error = axum::Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        if this.wr.len() >= WRITE_HIGH {
            ready!(this.poll_write_out(cx)).map_err(error)?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Out) -> Result<(), Self::Error> {
        let this = self.get_mut();
        if this.close_sent {
            return Err(error(WsError::Protocol("write after Close")));
        }
        match item {
            Out::Frame(frame) => {
                let (compressed, payload) = frame.payload(this.min_deflate);
                put_frame(&mut this.wr, TEXT, compressed, payload);
            }
            Out::Batch(frames) => {
                let plain = super::frame::batch_len(&frames);
                let packed = match this.min_deflate {
                    Some(min) if plain >= min => Some(super::frame::batch_deflated(&frames, min)),
                    _ => None,
                };
                match packed {
                    Some(packed) if packed.len() < plain => {
                        put_frame(&mut this.wr, TEXT, true, &packed)
                    }
                    _ => put_frame(
                        &mut this.wr,
                        TEXT,
                        false,
                        &super::frame::batch_text(&frames),
                    ),
                }
            }
            Out::Ping => put_frame(&mut this.wr, PING, false, &[]),
            Out::Close(code, reason) => {
                let mut body = code.to_be_bytes().to_vec();
                // A control frame's body is at most 125 bytes.
                let mut cut = reason.len().min(123);
                while !reason.is_char_boundary(cut) {
                    cut -= 1;
                }
                body.extend_from_slice(&reason.as_bytes()[..cut]);
                put_frame(&mut this.wr, CLOSE, false, &body);
                this.close_sent = true;
            }
        }
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx)).map_err(error)?;
        Pin::new(&mut this.io).poll_flush(cx).map_err(error)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        ready!(this.poll_write_out(cx)).map_err(error)?;
        ready!(Pin::new(&mut this.io).poll_flush(cx)).map_err(error)?;
        Pin::new(&mut this.io).poll_shutdown(cx).map_err(error)
    }
}

#[cfg(test)]
#[path = "socket_tests.rs"]
mod tests;
