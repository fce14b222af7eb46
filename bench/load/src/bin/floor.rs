//! `floor`: the calibration server of `bench/run.sh`, the least a WebSocket
//! fan-out server can do per delivery. Against it the load tool shows how
//! fast it can receive, so that no figure it reports about a real server is
//! a figure about itself.
//!
//! It speaks the part of tandem's protocol the load tool uses: `hello` on
//! connect, `subscribe` answered with `subscribed`, `publish` fanned out as
//! an `event` of the next seq to every subscriber. Each event is framed
//! once and written to each subscriber's socket at once (`try_write`); what
//! a socket does not take waits in that subscriber's buffer for its writer.
//! One thread, no locks, no per-delivery allocation. Loopback only.
//!
//! With a flush window (second argument, ms), events wait in each
//! subscriber's buffer and every buffer is written once per window: several
//! frames per write, as tandem's `flush-window-ms` does.
//!
//! It also answers tandem's long polls (`GET /poll?topics=T@1.N&wait=1`,
//! docs/PROTOCOL.md §15), the least a long-polling server can do per
//! delivery: HTTP/1.1 keep-alive, a poll behind the head answered at once
//! from the last events kept, a poll at the head parked until the next
//! publish, whose answer (head and body) is built once and written to every
//! parked poll at once. No headers beyond the length and type, no
//! credentials, no per-topic rules.
//!
//!   floor [ADDR] [FLUSH_MS]    (default 127.0.0.1:3302, 0)

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::ErrorKind::WouldBlock;
use std::rc::Rc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{tcp::OwnedWriteHalf, TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

struct Peer {
    w: OwnedWriteHalf,
    pending: RefCell<Vec<u8>>,
    wake: Notify,
}

impl Peer {
    fn send(&self, frame: &[u8], now: bool) {
        let mut pending = self.pending.borrow_mut();
        if !pending.is_empty() || !now {
            return pending.extend_from_slice(frame);
        }
        match self.w.try_write(frame) {
            Ok(n) if n == frame.len() => return,
            Ok(n) => pending.extend_from_slice(&frame[n..]),
            Err(e) if e.kind() == WouldBlock => pending.extend_from_slice(frame),
            Err(_) => return, // its reader sees the end
        }
        self.wake.notify_one();
    }

    /// Hands what waits to the writer (flush window).
    fn flush(&self) {
        if !self.pending.borrow().is_empty() {
            self.wake.notify_one();
        }
    }

    async fn writer(self: Rc<Self>) {
        loop {
            self.wake.notified().await;
            while !self.pending.borrow().is_empty() {
                if self.w.writable().await.is_err() {
                    return;
                }
                let mut pending = self.pending.borrow_mut();
                match self.w.try_write(&pending) {
                    Ok(n) => drop(pending.drain(..n)),
                    Err(e) if e.kind() == WouldBlock => {}
                    Err(_) => return,
                }
            }
        }
    }
}

#[derive(Default)]
struct Hub {
    /// Write at once (no flush window).
    now: bool,
    subscribers: RefCell<Vec<Rc<Peer>>>,
    seq: Cell<u64>,
    frame: RefCell<Vec<u8>>,
    /// Long polls waiting for the next event.
    parked: RefCell<Vec<Rc<Peer>>>,
    /// The last events (seq, JSON), for polls that are behind.
    recent: RefCell<VecDeque<(u64, Vec<u8>)>>,
}

/// Events kept for polls that are behind.
const RECENT: usize = 1024;

/// A `200` poll answer, as tandem writes a long poll's (this server answers
/// a short poll the same way):
/// `{"resume":"ticker:BENCH@1.<seq>","poll_ms":0,"frames":[...]}`.
fn poll_answer(seq: u64, frames: &[&[u8]]) -> Vec<u8> {
    let mut body =
        format!(r#"{{"resume":"ticker:BENCH@1.{seq}","poll_ms":0,"frames":["#).into_bytes();
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(f);
    }
    body.extend_from_slice(b"]}");
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

/// A keep-alive connection of long and short polls.
async fn polls(
    mut r: tokio::net::tcp::OwnedReadHalf,
    peer: Rc<Peer>,
    mut buf: Vec<u8>,
    hub: Rc<Hub>,
) -> std::io::Result<()> {
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let line_end = buf.iter().position(|&b| b == b'\r').unwrap_or(end);
            let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
            buf.drain(..end + 4);
            let since = line
                .split("topics=")
                .nth(1)
                .and_then(|t| t.split(['&', ' ']).next())
                .and_then(|t| t.rsplit_once('.'))
                .and_then(|(_, seq)| seq.parse::<u64>().ok());
            let head = hub.seq.get();
            match since {
                None => {
                    let subscribed =
                        format!(r#"{{"type":"subscribed","version":{{"epoch":1,"seq":{head}}}}}"#);
                    peer.send(&poll_answer(head, &[subscribed.as_bytes()]), true);
                }
                Some(at) if at < head => {
                    let recent = hub.recent.borrow();
                    let frames: Vec<&[u8]> = recent
                        .iter()
                        .filter(|(seq, _)| *seq > at)
                        .map(|(_, e)| e.as_slice())
                        .collect();
                    peer.send(&poll_answer(head, &frames), true);
                }
                Some(_) if line.contains("wait=1") => hub.parked.borrow_mut().push(peer.clone()),
                Some(_) => peer.send(&poll_answer(head, &[]), true),
            }
        }
        if r.read_buf(&mut buf).await? == 0 {
            hub.parked.borrow_mut().retain(|s| !Rc::ptr_eq(s, &peer));
            return Ok(());
        }
    }
}

/// An unmasked server text frame.
fn frame(out: &mut Vec<u8>, text: &[u8]) {
    out.clear();
    out.push(0x81);
    match text.len() {
        n if n < 126 => out.push(n as u8),
        n => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(text);
}

/// The digits after `key` in `text` ("0" if none).
fn number<'a>(text: &'a [u8], key: &[u8]) -> &'a [u8] {
    let Some(at) = text.windows(key.len()).position(|w| w == key) else {
        return b"0";
    };
    let rest = &text[at + key.len()..];
    &rest[..rest.iter().take_while(|b| b.is_ascii_digit()).count()]
}

async fn serve(stream: TcpStream, hub: Rc<Hub>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (mut r, w) = stream.into_split();
    let mut buf = Vec::with_capacity(4096);
    let head = loop {
        if r.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    if buf.starts_with(b"GET /poll") {
        let peer = Rc::new(Peer {
            w,
            pending: RefCell::new(Vec::new()),
            wake: Notify::new(),
        });
        tokio::task::spawn_local(peer.clone().writer());
        return polls(r, peer, buf, hub).await;
    }
    let request = String::from_utf8_lossy(&buf[..head]).to_ascii_lowercase();
    let key = request
        .lines()
        .find_map(|l| l.strip_prefix("sec-websocket-key:"))
        .map(str::trim)
        .unwrap_or_default();
    // The key's case matters: take it from the original bytes.
    let at = request.find(key).unwrap_or(0);
    let key = String::from_utf8_lossy(&buf[at..at + key.len()]).into_owned();
    let mut w = w;
    let mut hello = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {}\r\n\r\n",
        derive_accept_key(key.as_bytes())
    )
    .into_bytes();
    let mut f = Vec::new();
    frame(&mut f, br#"{"type":"hello","protocol":1}"#);
    hello.extend_from_slice(&f);
    w.write_all(&hello).await?;
    buf.drain(..head);
    let peer = Rc::new(Peer {
        w,
        pending: RefCell::new(Vec::new()),
        wake: Notify::new(),
    });
    tokio::task::spawn_local(peer.clone().writer());
    loop {
        // Client frames: masked, short (< 64 KiB), unfragmented.
        while buf.len() >= 6 {
            let (op, len7) = (buf[0] & 0x0f, (buf[1] & 0x7f) as usize);
            let (len, at) = if len7 == 126 {
                if buf.len() < 8 {
                    break;
                }
                (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
            } else {
                (len7, 2)
            };
            if buf.len() < at + 4 + len {
                break;
            }
            let mask = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
            let mut text: Vec<u8> = buf[at + 4..at + 4 + len].to_vec();
            text.iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b ^= mask[i % 4]);
            buf.drain(..at + 4 + len);
            if op == 0x8 {
                return Ok(());
            }
            if text.starts_with(br#"{"type":"subscribe""#) {
                let reply = format!(
                    r#"{{"type":"subscribed","version":{{"epoch":1,"seq":{}}}}}"#,
                    hub.seq.get()
                );
                frame(&mut f, reply.as_bytes());
                peer.send(&f, true);
                hub.subscribers.borrow_mut().push(peer.clone());
            } else if text.starts_with(br#"{"type":"publish""#) {
                let seq = hub.seq.get() + 1;
                hub.seq.set(seq);
                let mut event = Vec::with_capacity(160);
                event.extend_from_slice(
                    br#"{"type":"event","topic":"ticker:BENCH","version":{"epoch":1,"seq":"#,
                );
                event.extend_from_slice(seq.to_string().as_bytes());
                event.extend_from_slice(br#"},"data":{"kind":"tick","price":100.25,"ts":"#);
                event.extend_from_slice(number(&text, br#""ts":"#));
                event.extend_from_slice(b"}}");
                let mut out = hub.frame.borrow_mut();
                frame(&mut out, &event);
                for s in hub.subscribers.borrow().iter() {
                    s.send(&out, hub.now);
                }
                let parked = std::mem::take(&mut *hub.parked.borrow_mut());
                if !parked.is_empty() {
                    let answer = poll_answer(seq, &[&event]);
                    for p in parked {
                        p.send(&answer, true);
                    }
                }
                let mut recent = hub.recent.borrow_mut();
                if recent.len() == RECENT {
                    recent.pop_front();
                }
                recent.push_back((seq, event));
            }
        }
        if r.read_buf(&mut buf).await? == 0 {
            hub.subscribers
                .borrow_mut()
                .retain(|s| !Rc::ptr_eq(s, &peer));
            return Ok(());
        }
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3302".into());
    let flush_ms: u64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let listener = TcpListener::bind(&addr).await?;
        eprintln!("floor listening on {addr}");
        let hub = Rc::new(Hub {
            now: flush_ms == 0,
            ..Hub::default()
        });
        if flush_ms > 0 {
            let hub = hub.clone();
            tokio::task::spawn_local(async move {
                let mut window = tokio::time::interval(std::time::Duration::from_millis(flush_ms));
                loop {
                    window.tick().await;
                    hub.subscribers.borrow().iter().for_each(|s| s.flush());
                }
            });
        }
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::task::spawn_local(serve(stream, hub.clone()));
        }
    })
}
