//! A minimal WebSocket client (RFC 6455) for receiving at high rates: one
//! read takes in whatever the socket holds, and every complete frame in it
//! is handed out without copying, so the load tool's cost per received frame
//! stays well below the servers' cost per sent frame (the calibration in
//! `bench/run.sh` measures it against `bench/load/src/bin/floor.rs`).
//!
//! What it does not do, because no server measured here sends it:
//! fragmented messages and compressed frames (refused with an error).
//! Server pings are answered with pongs, as a browser's WebSocket does.

use std::io::ErrorKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
}

/// Opens `ws://{target}{path}` with the extra request headers given.
pub async fn connect(target: &str, path: &str, headers: &[(&str, &str)]) -> anyhow::Result<Conn> {
    let mut stream = TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {target}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut conn = Conn {
        stream,
        buf: Vec::with_capacity(4096),
        pos: 0,
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
    Ok(conn)
}

/// A server frame's header: opcode, and the payload's place in `buf`.
fn parse(buf: &[u8]) -> anyhow::Result<Option<(u8, usize, usize)>> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    anyhow::ensure!(b0 & 0x80 != 0, "fragmented messages are not supported");
    anyhow::ensure!(
        b0 & 0x70 == 0,
        "compressed or extended frames are not supported"
    );
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
    Ok(Some((b0 & 0x0f, at, at + len)))
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
        while let Some((op, from, to)) = parse(&self.buf[self.pos..])? {
            let payload = &self.buf[self.pos + from..self.pos + to];
            match op {
                CLOSE => return Ok(None),
                PING => pings.push(payload.to_vec()),
                PONG => {}
                _ => {
                    each(op, payload);
                    n += 1;
                }
            }
            self.pos += to;
        }
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
                let payload = self.buf[self.pos + from..self.pos + to].to_vec();
                self.pos += to;
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
        assert!(parse(&[0xC1, 0]).is_err(), "a compressed frame is refused");
    }
}
