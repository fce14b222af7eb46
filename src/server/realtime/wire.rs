//! `Wire`: the write side of a WebSocket's TCP connection, shared by its
//! connection task and the broker, so that an event reaches a connection
//! that keeps up without waking its task (ssr only).
//!
//! The task writes through `WireIo` (the `Socket`'s transport) as before.
//! When it has nothing left to do (nothing to write, nothing queued, no
//! catch-up, no flush window) it *parks*: it hands the wire its
//! subscriptions' versions. While parked, the broker writes each event
//! itself (`offer`, from `publish`): if the event is the next one of its
//! topic (same epoch; lossless: seq + 1; latest-wins: newer), and
//! nothing is waiting to be written, its frame (the bytes every subscriber
//! shares, compressed once if agreed) goes to the kernel with one
//! non-blocking write, and the version moves on. Anything else (a gap, a
//! new epoch, a topic not known, bytes still waiting, a write cut short by
//! a full socket buffer, an error) ends the parking: the event goes to the
//! connection's outbox as before and the task, woken by it (or by `bell`
//! when the write was cut short), takes its versions back (`unpark`) and
//! goes on by the usual rules. So order and repair stay `Session`'s, and a
//! slow reader falls back to its bounded outbox and catch-up.
//!
//! An SSE stream has a wire too (`Wire::stream`), over its body's channel
//! instead of a socket: the broker sends the event as one SSE message, with
//! the `id:` (the resume list, `rungs::resume`) its versions make once the
//! event is counted, and a channel with no room ends the parking the way a
//! full socket does (nothing is cut short: a message goes whole or not at
//! all). So a stream that keeps up costs its connection's task nothing per
//! event either; only the body's task wakes, to write it.
//!
//! Concurrency: one `std::sync::Mutex` per wire, never held across an
//! await; every write to the socket (the task's and the broker's) happens
//! under it, whole frames at a time, after any bytes already waiting
//! (`unsent`), so frames never interleave. The broker queues into the
//! outbox under the same lock, so the task parks only with an empty outbox.
//!
//! Memory: `unsent` is released once written; a parked wire holds the
//! connection's own versions map (moved, not copied).
//!
//! Slow readers: the socket takes at most `NOTSENT_LOWAT` bytes the kernel
//! has not sent yet (`TCP_NOTSENT_LOWAT`). Without it the kernel would
//! take megabytes for a client that does not read (its send buffer grows
//! to `tcp_wmem`'s maximum), every direct write would succeed, and the
//! client would later read seconds of stale ticks; with it the write is
//! cut short early, the task takes over, and latest-wins topics coalesce
//! to the newest value.

use crate::protocol::{Admit, Topic, Version};
use crate::server::broker::Delivery;
use bytes::{Buf, Bytes, BytesMut};
use std::collections::HashMap;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Notify};

/// Bytes waiting in `unsent` past which the task's writes wait for the
/// kernel to take some.
const UNSENT_HIGH: usize = 64 * 1024;

/// One connection's versions, per subscribed topic.
pub type Versions = HashMap<Topic, Version>;

/// The shared write side of one WebSocket connection over TCP, or of one
/// SSE stream.
pub struct Wire {
    port: Port,
    state: Mutex<State>,
    /// Rung when a parked wire stops taking events with bytes left waiting:
    /// the task must write them.
    bell: Notify,
}

/// Where a wire writes.
enum Port {
    Socket {
        /// The write half (the task's `WireIo` reads the other).
        tcp: OwnedWriteHalf,
        /// Compression agreed, from this many bytes (`socket::Config`).
        min_deflate: Option<usize>,
    },
    /// An SSE stream's body.
    Stream(mpsc::Sender<Bytes>),
}

#[derive(Default)]
struct State {
    /// Bytes of whole frames accepted and not yet taken by the kernel.
    unsent: BytesMut,
    /// The task's versions while it is parked (`parked`), or until it takes
    /// them back.
    versions: Option<Versions>,
    /// The broker may write events.
    parked: bool,
    /// The broker wrote something since the task parked.
    wrote: bool,
    /// A stream's resume list being made (kept for its allocation).
    id: String,
}

/// What became of an event offered to a wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Written to the socket (or, cut short, its rest left for the task),
    /// passing over `skipped` older latest-wins values (coalesced: the
    /// caller counts them).
    Written { skipped: u64 },
    /// Already written (a latest-wins value not newer than the last).
    Stale,
    /// Queued in the outbox for the task (by the `queue` callback).
    Queued,
}

/// Bytes a connection's socket may hold that the kernel has not sent yet
/// (beyond what is in flight): enough for a burst of frames, small enough
/// that a client that stops reading soon stops taking writes.
pub const NOTSENT_LOWAT: u32 = 16 * 1024;

impl Wire {
    /// The wire of `tcp`, and the task's side of it.
    pub fn new(tcp: TcpStream, min_deflate: Option<usize>) -> (Arc<Self>, WireIo) {
        if let Err(e) = socket2::SockRef::from(&tcp).set_tcp_notsent_lowat(NOTSENT_LOWAT) {
            tracing::debug!(error = %e, "TCP_NOTSENT_LOWAT not set");
        }
        let (read, write) = tcp.into_split();
        let wire = Arc::new(Wire {
            port: Port::Socket {
                tcp: write,
                min_deflate,
            },
            state: Mutex::new(State::default()),
            bell: Notify::new(),
        });
        (wire.clone(), WireIo { wire, read })
    }

    /// The wire of an SSE stream whose body reads `body`.
    pub fn stream(body: mpsc::Sender<Bytes>) -> Arc<Self> {
        Arc::new(Wire {
            port: Port::Stream(body),
            state: Mutex::new(State::default()),
            bell: Notify::new(),
        })
    }

    /// The socket's write half; an error for a stream's wire, which has no
    /// `WireIo`.
    fn tcp(&self) -> io::Result<&OwnedWriteHalf> {
        match &self.port {
            Port::Socket { tcp, .. } => Ok(tcp),
            Port::Stream(_) => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes `d` now if the task is parked and `d` is the next event of its
    /// topic; otherwise runs `queue` (under the wire's lock, so the task
    /// cannot park in between) and stops the parking.
    pub fn offer(&self, d: &Delivery, queue: impl FnOnce()) -> Offer {
        let mut st = self.lock();
        let offer = self.try_direct(&mut st, d);
        if matches!(offer, Offer::Queued) {
            st.parked = false;
            queue();
        }
        offer
    }

    fn try_direct(&self, st: &mut State, d: &Delivery) -> Offer {
        if !st.parked || !st.unsent.is_empty() {
            return Offer::Queued;
        }
        let Some(last) = st.versions.as_ref().and_then(|v| v.get(&d.topic)).copied() else {
            return Offer::Queued;
        };
        // The rule the task follows (`Session::deliver`); what it would do
        // other than write (repair a gap, reset) is left to it.
        let skipped = match d.topic.policy().admit(last, d.version) {
            Admit::Write { skipped } => skipped,
            Admit::Stale => return Offer::Stale,
            Admit::Gap | Admit::NewEpoch => return Offer::Queued,
        };
        let written = match &self.port {
            Port::Socket { tcp, min_deflate } => self.to_socket(st, tcp, *min_deflate, d),
            Port::Stream(body) => to_stream(st, body, d),
        };
        if !written {
            return Offer::Queued;
        }
        st.wrote = true;
        Offer::Written { skipped }
    }

    /// Writes `d`'s frame to the socket; the rest, if the kernel's buffer
    /// fills, waits for the task (rung). `false`: a broken connection (the
    /// task finds out by itself).
    fn to_socket(
        &self,
        st: &mut State,
        tcp: &OwnedWriteHalf,
        min_deflate: Option<usize>,
        d: &Delivery,
    ) -> bool {
        let (compressed, payload) = d.frame.payload(min_deflate);
        let head = super::socket::Head::new(super::socket::TEXT, compressed, payload.len());
        let total = head.bytes().len() + payload.len();
        let n = match tcp.try_write_vectored(&[IoSlice::new(head.bytes()), IoSlice::new(payload)]) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(_) => return false,
        };
        if let Some(v) = st.versions.as_mut().and_then(|v| v.get_mut(&d.topic)) {
            *v = d.version;
        }
        if n < total {
            // The kernel's buffer is full: the rest waits for the task.
            let rest_head = head.bytes().get(n..).unwrap_or_default();
            let skip = n.saturating_sub(head.bytes().len());
            st.unsent.extend_from_slice(rest_head);
            st.unsent.extend_from_slice(&payload[skip..]);
            st.parked = false;
            self.bell.notify_one();
        }
        true
    }

    /// Parks the task: hands over its versions if nothing waits to be
    /// written and `idle()` (its outbox and its revocations are empty)
    /// holds under the lock; otherwise gives them back.
    pub fn park(&self, versions: Versions, idle: impl FnOnce() -> bool) -> Result<(), Versions> {
        let mut st = self.lock();
        if !st.unsent.is_empty() || !idle() {
            return Err(versions);
        }
        st.versions = Some(versions);
        st.parked = true;
        st.wrote = false;
        Ok(())
    }

    /// Ends the parking: the versions back (moved on by what the broker
    /// wrote), and whether it wrote anything.
    pub fn unpark(&self) -> Option<(Versions, bool)> {
        let mut st = self.lock();
        st.parked = false;
        let versions = st.versions.take()?;
        Some((versions, std::mem::take(&mut st.wrote)))
    }

    /// Stops the broker's writes until the task parks again, and runs
    /// `tell` (which queues a revocation for the task) under the wire's
    /// lock: so nothing the revocation forbids is written once it is
    /// queued, and a task that parks checks its revocations under the same
    /// lock (its `idle`) and cannot park past one (`accounts::live`).
    pub fn halt(&self, tell: impl FnOnce()) {
        let mut st = self.lock();
        st.parked = false;
        tell();
    }

    /// Bytes are waiting for the task to write them.
    pub fn has_unsent(&self) -> bool {
        !self.lock().unsent.is_empty()
    }

    /// Waits until the broker stopped taking events with bytes left waiting.
    pub async fn rung(&self) {
        self.bell.notified().await
    }

    /// Hands `unsent` to the kernel until it is empty or the socket is full.
    fn drain(&self, st: &mut State) -> io::Result<()> {
        while !st.unsent.is_empty() {
            match self.tcp()?.try_write(&st.unsent) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => st.unsent.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        // Written: give the buffer back rather than keep it while idle.
        st.unsent = BytesMut::new();
        Ok(())
    }
}

/// Sends `d` to an SSE stream's body as one message, its `id:` the resume
/// list with `d` counted. `false` (the version left as it was): the channel
/// is full or the body gone, and the task takes over.
fn to_stream(st: &mut State, body: &mpsc::Sender<Bytes>, d: &Delivery) -> bool {
    let State { versions, id, .. } = st;
    let Some(versions) = versions.as_mut() else {
        return false;
    };
    let Some(before) = versions
        .get_mut(&d.topic)
        .map(|v| std::mem::replace(v, d.version))
    else {
        return false;
    };
    super::rungs::write_resume(versions.iter().map(|(t, v)| (*t, *v)), id);
    if body
        .try_send(super::sse::message(id, d.frame.bytes()))
        .is_ok()
    {
        return true;
    }
    if let Some(v) = versions.get_mut(&d.topic) {
        *v = before;
    }
    false
}

/// The connection task's side of a wire: what its `Socket` reads from (the
/// read half, through tokio's own reading, which knows a short read left
/// the socket empty and so saves a read per message) and writes to.
pub struct WireIo {
    wire: Arc<Wire>,
    read: OwnedReadHalf,
}

impl AsyncRead for WireIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for WireIo {
    /// Takes all of `buf` (whole frames) once fewer than `UNSENT_HIGH` bytes
    /// wait: what the kernel does not take now waits in `unsent`, behind
    /// anything already there.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let wire = &self.wire;
        loop {
            {
                let mut st = wire.lock();
                wire.drain(&mut st)?;
                if st.unsent.len() < UNSENT_HIGH {
                    let n = match st.unsent.is_empty() {
                        true => match wire.tcp()?.try_write(buf) {
                            Ok(n) => n,
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
                            Err(e) => return Poll::Ready(Err(e)),
                        },
                        false => 0,
                    };
                    st.unsent.extend_from_slice(&buf[n..]);
                    return Poll::Ready(Ok(buf.len()));
                }
            }
            ready!(wire.tcp()?.as_ref().poll_write_ready(cx))?;
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let wire = &self.wire;
        loop {
            {
                let mut st = wire.lock();
                wire.drain(&mut st)?;
                if st.unsent.is_empty() {
                    return Poll::Ready(Ok(()));
                }
            }
            ready!(wire.tcp()?.as_ref().poll_write_ready(cx))?;
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        let result =
            socket2::SockRef::from(self.wire.tcp()?.as_ref()).shutdown(std::net::Shutdown::Write);
        Poll::Ready(match result {
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
            other => other,
        })
    }
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
