//! `Frame`: one encoded server frame, the unit every transport writes (ssr
//! only). Transport-neutral: shared bytes of JSON text, cheap to clone, so
//! one event serialized once is written to any number of connections, and
//! compressed at most once for all those that negotiated compression.

use crate::protocol::ServerFrame;
use bytes::Bytes;
use std::sync::{Arc, OnceLock};

/// An encoded server frame: UTF-8 JSON text (only ever built from a `String`).
#[derive(Clone)]
pub struct Frame(Arc<Encoded>);

struct Encoded {
    text: Bytes,
    /// Written to many connections (an event from the broker).
    shared: bool,
    /// The permessage-deflate form, made by the first connection that needs
    /// it (`None`: compressing would not make it smaller).
    deflated: OnceLock<Option<Bytes>>,
}

impl PartialEq for Frame {
    fn eq(&self, other: &Self) -> bool {
        self.0.text == other.0.text
    }
}

impl Eq for Frame {}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Frame").field(&self.as_str()).finish()
    }
}

impl Frame {
    /// Encodes `frame`; logs and returns `None` if it cannot be serialized
    /// (a frame is never replaced by another).
    pub fn encode(frame: &ServerFrame) -> Option<Frame> {
        Self::build(frame, false)
    }

    /// Encodes a frame many connections will write (the broker's events):
    /// worth compressing once even when short (`socket`).
    pub fn encode_shared(frame: &ServerFrame) -> Option<Frame> {
        Self::build(frame, true)
    }

    fn build(frame: &ServerFrame, shared: bool) -> Option<Frame> {
        match frame.to_json() {
            Ok(json) => Some(Frame(Arc::new(Encoded {
                text: Bytes::from(json),
                shared,
                deflated: OnceLock::new(),
            }))),
            Err(e) => {
                tracing::error!(error = %e, frame = ?frame, "cannot serialize a server frame; not sent");
                None
            }
        }
    }

    /// The JSON text (for tests and logs; transports use the bytes).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0.text).unwrap_or_default()
    }

    /// The JSON text's bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.0.text
    }

    /// Whether a connection that agreed compression sends this frame
    /// compressed (when that makes it smaller): a shared frame from `min`
    /// bytes (compressed once for all its connections), one made for a
    /// single connection from `OWN_MIN_BYTES` only, since compressing a
    /// message costs several microseconds whatever its size.
    pub fn worth_compressing(&self, min: usize) -> bool {
        let len = self.0.text.len();
        len >= min && (self.0.shared || len >= OWN_MIN_BYTES)
    }

    /// What a connection writes for this frame alone: its compressed form
    /// (`true`) when compression was agreed with threshold `min_deflate`,
    /// the frame is worth compressing and that makes it smaller; else its
    /// text.
    pub fn payload(&self, min_deflate: Option<usize>) -> (bool, &[u8]) {
        let small = min_deflate
            .filter(|&min| self.worth_compressing(min))
            .and_then(|_| self.deflated());
        match small {
            Some(small) => (true, small),
            None => (false, &self.0.text),
        }
    }

    /// The frame compressed as one permessage-deflate message, made once
    /// for every connection; `None` if compressing does not make it smaller.
    pub fn deflated(&self) -> Option<&Bytes> {
        self.0
            .deflated
            .get_or_init(|| super::deflate::deflate(&self.0.text))
            .as_ref()
    }
}

/// Frames waiting to be written, in order.
pub type Frames = Vec<Frame>;

/// Encodes `frame` onto `out` (skipping it, logged, if it cannot be encoded).
pub fn push(out: &mut Frames, frame: ServerFrame) {
    if let Some(f) = Frame::encode(&frame) {
        out.push(f);
    }
}

/// Encodes the `reconnect` frame of a shutdown onto `out`: come back at a
/// random moment within `window_ms`.
pub fn push_reconnect(out: &mut Frames, window_ms: u64) {
    push(
        out,
        ServerFrame::Reconnect {
            reason: "server restarting".into(),
            window_ms,
        },
    );
}

/// The smallest frame made for one connection alone (`hello`, `ack`, a
/// catch-up's event...) that is compressed, or run of such frames in a
/// batch, which is compressed in one go.
pub const OWN_MIN_BYTES: usize = 1024;

/// How a `batch` frame begins and ends (docs/PROTOCOL.md §5).
pub const BATCH_HEAD: &str = r#"{"type":"batch","frames":["#;
pub const BATCH_TAIL: &str = "]}";

/// The length of the `batch` frame holding `frames`.
pub fn batch_len(frames: &[Frame]) -> usize {
    BATCH_HEAD.len() + BATCH_TAIL.len() + frames.iter().map(|f| f.0.text.len() + 1).sum::<usize>()
        - usize::from(!frames.is_empty())
}

/// The `batch` frame holding `frames`, their bytes copied once, never
/// re-serialized.
pub fn batch_text(frames: &[Frame]) -> Vec<u8> {
    let mut s = Vec::with_capacity(batch_len(frames));
    s.extend_from_slice(BATCH_HEAD.as_bytes());
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            s.push(b',');
        }
        s.extend_from_slice(&f.0.text);
    }
    s.extend_from_slice(BATCH_TAIL.as_bytes());
    s
}

/// The `batch` frame holding `frames` as one permessage-deflate message:
/// each shared frame of at least `min` bytes by its one compressed form, the
/// text between them compressed in one go if it is at least
/// `OWN_MIN_BYTES` long (a catch-up page: this connection's own frames),
/// else stored (`deflate::Joined`).
pub fn batch_deflated(frames: &[Frame], min: usize) -> Vec<u8> {
    let mut joined = super::deflate::Joined::new(batch_len(frames), OWN_MIN_BYTES);
    joined.plain(BATCH_HEAD.as_bytes());
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            joined.plain(b",");
        }
        let piece = match f.0.shared && f.0.text.len() >= min {
            true => f.deflated(),
            false => None,
        };
        match piece {
            Some(piece) => joined.compressed(piece),
            None => joined.plain(&f.0.text),
        }
    }
    joined.plain(BATCH_TAIL.as_bytes());
    joined.finish()
}
