//! A minimal WebSocket client (RFC 6455) for receiving at high rates: one
//! read takes in whatever the socket holds, and every complete frame in it
//! is handed out without copying, so the load tool's cost per received frame
//! stays well below the servers' cost per sent frame (the calibration in
//! `bench/run.sh` measures it against `bench/load/src/bin/floor.rs`).
//!
//! Compression: with `deflate`, it offers permessage-deflate as Chromium
//! does; compressed frames (RSV1) are then inflated before they are handed
//! out (tandem asks for no context takeover, so each frame inflates alone).
//! It does not read fragmented messages (no server measured here sends
//! them). Server pings are answered with pongs, as a browser's WebSocket
//! does. `WIRE_BYTES` counts the bytes of the text and binary frames
//! received (headers included), for bytes on the wire per delivery.

use flate2::{Decompress, FlushDecompress};
use std::io::ErrorKind;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bytes of text and binary frames received by every connection so far.
pub static WIRE_BYTES: AtomicU64 = AtomicU64::new(0);

pub const TEXT: u8 = 0x1;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// One open WebSocket.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Start of the bytes not handed out yet.
    pos: usize,
    /// permessage-deflate was agreed.
    deflate: bool,
}

thread_local! {
    /// One inflater for every connection a thread reads (each message
    /// inflates alone), and its output buffer.
    static INFLATER: std::cell::RefCell<(Decompress, Vec<u8>)> =
        std::cell::RefCell::new((Decompress::new(false), Vec::with_capacity(64 * 1024)));
}

/// Opens `ws://{target}{path}` with the extra request headers given.
pub async fn connect(
    target: &str,
    path: &str,
    headers: &[(&str, &str)],
    deflate: bool,
) -> anyhow::Result<Conn> {
    let mut stream = TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {target}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if deflate {
        req.push_str("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut conn = Conn {
        stream,
        buf: Vec::with_capacity(4096),
        pos: 0,
        deflate: false,
    };
    let head_end = loop {
        if let Some(i) = super::find(&conn.buf, b"\r\n\r\n") {
            break i + 4;
        }
        anyhow::ensure!(conn.buf.len() < 16 * 1024, "handshake response too long");
        if !conn.fill().await? {
            anyhow::bail!("connection closed during the handshake");
        }
    };
    let head = String::from_utf8_lossy(&conn.buf[..head_end]).into_owned();
    anyhow::ensure!(
        head.starts_with("HTTP/1.1 101"),
        "upgrade refused: {}",
        head.lines().next().unwrap_or("")
    );
    conn.pos = head_end;
    if head.to_ascii_lowercase().contains("permessage-deflate") {
        anyhow::ensure!(deflate, "the server agreed compression nobody offered");
        conn.deflate = true;
    }
    Ok(conn)
}

/// A server frame's header: opcode (with 0x40 set if compressed), and the
/// payload's place in `buf`.
fn parse(buf: &[u8]) -> anyhow::Result<Option<(u8, usize, usize)>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    anyhow::ensure!(b0 & 0x80 != 0, "fragmented messages are not supported");
    anyhow::ensure!(b0 & 0x30 == 0, "RSV2/RSV3 frames are not supported");
    anyhow::ensure!(b1 & 0x80 == 0, "the server masked a frame");
    let (len, at) = match b1 & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(n) as usize, 10)
        }
        126 | 127 => return Ok(None),
        n => (n as usize, 2),
    };
    if buf.len() < at + len {
        return Ok(None);
    }
    Ok(Some((b0 & 0x4f, at, at + len)))
}

/// Inflates one compressed message (the trailing empty block appended).
fn inflate(d: &mut Decompress, out: &mut Vec<u8>, data: &[u8]) -> anyhow::Result<()> {
    d.reset(false);
    out.clear();
    for chunk in [data, &[0, 0, 0xff, 0xff][..]] {
        let mut at = 0;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity().max(4096));
            }
            let before = d.total_in();
            d.decompress_vec(&chunk[at..], out, FlushDecompress::Sync)?;
            at += (d.total_in() - before) as usize;
            if at == chunk.len() && out.len() < out.capacity() {
                break;
            }
        }
    }
    Ok(())
}

impl Conn {
    /// Makes room and reads more bytes; `false` when the peer closed.
    async fn fill(&mut self) -> anyhow::Result<bool> {
        self.compact();

        Ok(self.stream.read_buf(&mut self.buf).await? > 0)
    }

    fn compact(&mut self) {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > self.buf.capacity() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.capacity() - self.buf.len() < 2048 {
            self.buf.reserve(self.buf.capacity().max(4096));
        }
    }

    /// Hands every complete frame from `pos` on to `each`; answers pings.
    /// `Some(n)`: `n` text or binary frames; `None`: the server closed.
    async fn drain(&mut self, each: &mut impl FnMut(u8, &[u8])) -> anyhow::Result<Option<usize>> {
        let mut pings = Vec::new();
        let mut n = 0;
        let mut wire = 0;
        while let Some((op, from, to)) = parse(&self.buf[self.pos..])? {
            let payload = &self.buf[self.pos + from..self.pos + to];
            match op {
                CLOSE => return Ok(None),
                PING => pings.push(payload.to_vec()),
                PONG => {}
                _ if op & 0x40 != 0 => {
                    anyhow::ensure!(
                        self.deflate,
                        "a compressed frame without compression agreed"
                    );
                    INFLATER.with_borrow_mut(|(d, out)| {
                        inflate(d, out, payload)?;
                        each(op & 0x0f, out);
                        anyhow::Ok(())
                    })?;
                    n += 1;
                    wire += to;
                }
                _ => {
                    each(op, payload);
                    n += 1;
                    wire += to;
                }
            }
            self.pos += to;
        }
        WIRE_BYTES.fetch_add(wire as u64, Ordering::Relaxed);
        for p in pings {
            self.send(PONG, &p).await?;
        }
        Ok(Some(n))
    }

    /// Waits until at least one text or binary frame came, hands every
    /// complete one received so far to `each(opcode, payload)` (pings are
    /// answered). `false` when the connection ended.
    pub async fn frames(&mut self, mut each: impl FnMut(u8, &[u8])) -> anyhow::Result<bool> {
        loop {
            match self.drain(&mut each).await? {
                None => return Ok(false),
                Some(n) if n > 0 => return Ok(true),
                Some(_) => {}
            }
            if !self.fill().await? {
                return Ok(false);
            }
        }
    }

    /// The frames already received, without waiting. `false` when the
    /// connection ended.
    pub async fn try_frames(&mut self, mut each: impl FnMut(u8, &[u8])) -> anyhow::Result<bool> {
        self.compact();
        loop {
            match self.stream.try_read_buf(&mut self.buf) {
                Ok(0) => return Ok(false),
                Ok(_) => self.compact(),
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.drain(&mut each).await?.is_some())
    }

    /// The next text message alone (the frames after it stay unread).
    pub async fn next_text(&mut self) -> anyhow::Result<Option<String>> {
        loop {
            while let Some((op, from, to)) = parse(&self.buf[self.pos..])? {
                let mut payload = self.buf[self.pos + from..self.pos + to].to_vec();
                self.pos += to;
                let mut op = op;
                if op & 0x40 != 0 {
                    anyhow::ensure!(
                        self.deflate,
                        "a compressed frame without compression agreed"
                    );
                    payload = INFLATER.with_borrow_mut(|(d, out)| {
                        inflate(d, out, &payload).map(|()| out.clone())
                    })?;
                    op &= 0x0f;
                }
                match op {
                    CLOSE => return Ok(None),
                    PING => self.send(PONG, &payload).await?,
                    TEXT => return Ok(Some(String::from_utf8_lossy(&payload).into_owned())),
                    _ => {}
                }
            }
            if !self.fill().await? {
                return Ok(None);
            }
        }
    }

    /// Sends one frame, masked as a client must (with a zero key: the
    /// payload bytes are unchanged).
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) -> anyhow::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 14);
        frame.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= u16::MAX as usize => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&[0, 0, 0, 0]);
        frame.extend_from_slice(payload);
        self.stream.write_all(&frame).await?;
        Ok(())
    }

    pub async fn send_text(&mut self, text: &str) -> anyhow::Result<()> {
        self.send(TEXT, text.as_bytes()).await
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_server_frames_of_every_length_form() {
        let mut short = vec![0x81, 3];
        short.extend_from_slice(b"abc");
        assert_eq!(parse(&short).unwrap(), Some((1, 2, 5)));
        assert_eq!(parse(&short[..4]).unwrap(), None, "incomplete payload");

        let mut mid = vec![0x81, 126, 0x01, 0x00];
        mid.extend(std::iter::repeat_n(b'x', 256));
        assert_eq!(parse(&mid).unwrap(), Some((1, 4, 260)));

        let mut long = vec![0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0];
        long.extend(std::iter::repeat_n(0, 65536));
        assert_eq!(parse(&long).unwrap(), Some((2, 10, 65546)));

        assert!(parse(&[0x01, 0]).is_err(), "a fragment is refused");
        assert_eq!(
            parse(&[0xC1, 0]).unwrap(),
            Some((0x41, 2, 2)),
            "compressed: RSV1 kept"
        );
        assert!(parse(&[0xA1, 0]).is_err(), "RSV2 is refused");
    }

    #[test]
    fn inflates_what_a_server_compressed_without_context() {
        use flate2::{Compress, Compression, Decompress, FlushCompress};
        let text =
            br#"{"type":"event","topic":"room:1","data":{"body":"hello hello hello hello"}}"#;
        let mut c = Compress::new(Compression::default(), false);
        let mut packed = Vec::with_capacity(256);
        c.compress_vec(text, &mut packed, FlushCompress::Sync)
            .unwrap();
        packed.truncate(packed.len() - 4);
        let (mut d, mut out) = (Decompress::new(false), Vec::new());
        for _ in 0..2 {
            super::inflate(&mut d, &mut out, &packed).unwrap();
            assert_eq!(out, text);
        }
    }
}
