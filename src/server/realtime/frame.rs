//! `Frame`: one encoded server frame, the unit every transport writes (ssr
//! only). Transport-neutral: shared bytes of JSON text, cheap to clone, so
//! one event serialized once is written to any number of connections.

use crate::protocol::ServerFrame;
use bytes::Bytes;

/// An encoded server frame: UTF-8 JSON text (only ever built from a `String`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame(Bytes);

impl Frame {
    /// Encodes `frame`; logs and returns `None` if it cannot be serialized
    /// (a frame is never replaced by another).
    pub fn encode(frame: &ServerFrame) -> Option<Frame> {
        match frame.to_json() {
            Ok(json) => Some(Frame(Bytes::from(json))),
            Err(e) => {
                tracing::error!(error = %e, frame = ?frame, "cannot serialize a server frame; not sent");
                None
            }
        }
    }

    /// The JSON text (for tests and logs; transports use the bytes).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn into_bytes(self) -> Bytes {
        self.0
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
