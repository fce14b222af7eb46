//! permessage-deflate (RFC 7692) as tandem uses it (ssr only): every message
//! is compressed on its own (`server_no_context_takeover`, and the client is
//! asked for `client_no_context_takeover`), so no compressor or window is
//! kept per connection. The compressor and inflater are one per thread,
//! reset before each message; an event is compressed once and the same bytes
//! go to every subscriber that negotiated compression (`Frame::deflated`).
//!
//! Bounds: a compressed message is inflated only up to the message limit
//! (`max-ws-message-bytes`); one byte more refuses it as too big, so a small
//! compressed message cannot expand into memory ("zip bomb").

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::cell::RefCell;

/// The empty stored block a sync flush ends with; the sender removes it and
/// the receiver appends it back (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

/// The `Sec-WebSocket-Extensions` answer when compression is agreed.
pub const AGREED: &str =
    "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

thread_local! {
    static COMPRESSOR: RefCell<Compress> = RefCell::new(Compress::new(Compression::default(), false));
    static INFLATER: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// Why a compressed message was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum InflateError {
    /// It inflates past the limit.
    TooBig,
    /// It is not valid DEFLATE data.
    Invalid,
}

/// Whether one of the client's `Sec-WebSocket-Extensions` offers of
/// permessage-deflate can be accepted as tandem runs it (no context
/// takeover, a 32 KiB window). An offer with an unknown or repeated
/// parameter, or asking the server for a smaller window, is declined (RFC
/// 7692 §5); any `client_max_window_bits` is fine, since each client message
/// is inflated on its own with a full window.
pub fn negotiate<'a>(offers: impl IntoIterator<Item = &'a str>) -> bool {
    offers
        .into_iter()
        .flat_map(|header| header.split(','))
        .any(acceptable)
}

fn acceptable(offer: &str) -> bool {
    let mut parts = offer.split(';').map(str::trim);
    if parts.next() != Some("permessage-deflate") {
        return false;
    }
    let mut seen: Vec<&str> = Vec::new();
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().trim_matches('"'))),
            None => (param, None),
        };
        if seen.contains(&name) {
            return false;
        }
        seen.push(name);
        let bits_ok = |v: &str| v.parse::<u8>().is_ok_and(|b| (8..=15).contains(&b));
        let ok = match (name, value) {
            ("server_no_context_takeover" | "client_no_context_takeover", None) => true,
            ("client_max_window_bits", None) => true,
            ("client_max_window_bits", Some(v)) => bits_ok(v),
            // The server compresses with a 15-bit window; a smaller one
            // asked for is declined rather than ignored.
            ("server_max_window_bits", Some(v)) => v == "15",
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// `text` compressed as one permessage-deflate message (the trailing empty
/// block removed), or `None` when that would not be smaller.
pub fn deflate(text: &[u8]) -> Option<Bytes> {
    COMPRESSOR.with_borrow_mut(|c| {
        c.reset();
        let mut out = Vec::with_capacity(text.len() / 2 + 64);
        loop {
            let at = usize::try_from(c.total_in()).ok()?;
            c.compress_vec(&text[at..], &mut out, FlushCompress::Sync)
                .ok()?;
            let done = usize::try_from(c.total_in()).ok()? == text.len();
            if done && out.len() < out.capacity() {
                break;
            }
            out.reserve(out.capacity().max(64));
        }
        // A sync flush ends with the tail; pieces are joined by it (`Joined`).
        if !out.ends_with(&TAIL) {
            return None;
        }
        out.truncate(out.len() - TAIL.len());
        (out.len() < text.len()).then(|| Bytes::from(out))
    })
}

/// One compressed message made of pieces compressed apart: each piece
/// compressed alone (by `deflate`, as an event is, once for every
/// subscriber) and text stored as it is, joined without compressing
/// anything again. Valid because every piece ends on a byte boundary (a sync
/// flush, or a stored block) and, with no context kept, refers to nothing
/// before it. This is how a `batch` of shared events goes compressed to one
/// connection at the cost of a copy.
pub struct Joined {
    out: Vec<u8>,
    /// Plain text not yet written.
    plain: Vec<u8>,
    /// Plain text at least this long is compressed (in one go) rather than
    /// stored.
    compress_from: usize,
}

impl Joined {
    pub fn new(capacity: usize, compress_from: usize) -> Self {
        Joined {
            out: Vec::with_capacity(capacity),
            plain: Vec::new(),
            compress_from,
        }
    }

    /// Text to go uncompressed.
    pub fn plain(&mut self, text: &[u8]) {
        self.plain.extend_from_slice(text);
    }

    /// A piece `deflate` made (its tail removed).
    pub fn compressed(&mut self, piece: &[u8]) {
        self.store();
        self.out.extend_from_slice(piece);
        self.out.extend_from_slice(&TAIL);
    }

    fn store(&mut self) {
        if self.plain.len() >= self.compress_from {
            if let Some(piece) = deflate(&self.plain) {
                self.out.extend_from_slice(&piece);
                self.out.extend_from_slice(&TAIL);
                self.plain.clear();
                return;
            }
        }
        for chunk in self.plain.chunks(usize::from(u16::MAX)) {
            // A stored block: its header bits (not final, type 00) padded to
            // a byte, then LEN and its complement, little-endian.
            let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
            self.out.push(0);
            self.out.extend_from_slice(&len.to_le_bytes());
            self.out.extend_from_slice(&(!len).to_le_bytes());
            self.out.extend_from_slice(chunk);
        }
        self.plain.clear();
    }

    /// The message: it ends with the header of an empty stored block, whose
    /// LEN and NLEN (the tail) the receiver appends.
    pub fn finish(mut self) -> Vec<u8> {
        self.store();
        self.out.push(0);
        self.out
    }
}

/// Inflates one compressed message of at most `max` bytes once inflated.
pub fn inflate(data: &[u8], max: usize) -> Result<Vec<u8>, InflateError> {
    INFLATER.with_borrow_mut(|d| {
        d.reset(false);
        let mut out: Vec<u8> = Vec::with_capacity((data.len() * 3).clamp(256, max + 1));
        for chunk in [data, &TAIL[..]] {
            let mut at = 0;
            loop {
                if out.len() == out.capacity() {
                    if out.len() > max {
                        return Err(InflateError::TooBig);
                    }
                    let room = max + 1 - out.len();
                    out.reserve(out.len().max(256).min(room));
                }
                let (was_in, was_out) = (d.total_in(), d.total_out());
                let status = d
                    .decompress_vec(&chunk[at..], &mut out, FlushDecompress::Sync)
                    .map_err(|_| InflateError::Invalid)?;
                at += usize::try_from(d.total_in() - was_in).map_err(|_| InflateError::Invalid)?;
                if out.len() > max {
                    return Err(InflateError::TooBig);
                }
                if status == Status::StreamEnd {
                    // A final block: nothing may follow it but the tail.
                    return if at == chunk.len() || chunk[at..] == TAIL[..] {
                        Ok(out)
                    } else {
                        Err(InflateError::Invalid)
                    };
                }
                let spare = out.len() < out.capacity();
                if at == chunk.len() && spare {
                    break;
                }
                if spare && d.total_in() == was_in && d.total_out() == was_out {
                    // Input left, room to write, and no progress.
                    return Err(InflateError::Invalid);
                }
            }
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests may unwrap
    use super::*;

    #[test]
    fn chromium_offer_is_accepted() {
        assert!(negotiate(["permessage-deflate; client_max_window_bits"]));
        assert!(negotiate(["x-webkit-deflate-frame, permessage-deflate"]));
        assert!(negotiate([
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; client_max_window_bits=\"12\"; server_no_context_takeover"
        ]));
    }

    #[test]
    fn offers_tandem_cannot_honour_are_declined() {
        assert!(!negotiate(std::iter::empty()));
        assert!(!negotiate(["x-webkit-deflate-frame"]));
        assert!(!negotiate([
            "permessage-deflate; server_max_window_bits=10"
        ]));
        assert!(!negotiate([
            "permessage-deflate; client_max_window_bits=16"
        ]));
        assert!(!negotiate(["permessage-deflate; mystery"]));
        assert!(!negotiate([
            "permessage-deflate; client_no_context_takeover; client_no_context_takeover"
        ]));
        assert!(!negotiate([
            "permessage-deflate; server_no_context_takeover=1"
        ]));
    }

    #[test]
    fn a_message_round_trips_and_repeats_compress_alike() {
        let text = br#"{"type":"event","topic":"room:1","epoch":1,"seq":42,"data":{"kind":"message","body":"hello hello hello hello"}}"#;
        let small = deflate(text).unwrap();
        assert!(small.len() < text.len());
        assert!(!small.ends_with(&TAIL));
        assert_eq!(inflate(&small, 1024).unwrap(), text);
        // No context carried from one message to the next.
        assert_eq!(deflate(text).unwrap(), small);
    }

    #[test]
    fn incompressible_text_is_left_alone() {
        assert_eq!(deflate(b"hi"), None);
    }

    #[test]
    fn large_messages_need_several_output_buffers() {
        let text: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 7) as u8)
            .collect();
        let packed = deflate(&text).unwrap_or_else(|| Bytes::from(text.clone()));
        if packed.len() < text.len() {
            assert_eq!(inflate(&packed, text.len()).unwrap(), text);
        }
        let zeros = vec![b'a'; 100_000];
        let packed = deflate(&zeros).unwrap();
        assert_eq!(inflate(&packed, 100_000).unwrap(), zeros);
    }

    #[test]
    fn inflating_stops_at_the_limit() {
        // 1 MB of one byte compresses to about a kilobyte.
        let bomb = deflate(&vec![b'x'; 1 << 20]).unwrap();
        assert!(bomb.len() < 4096, "{}", bomb.len());
        assert_eq!(inflate(&bomb, 64 * 1024), Err(InflateError::TooBig));
        // Exactly at the limit is fine.
        let fits = deflate(&vec![b'x'; 64 * 1024]).unwrap();
        assert_eq!(inflate(&fits, 64 * 1024).unwrap().len(), 64 * 1024);
    }

    #[test]
    fn pieces_compressed_apart_join_into_one_valid_message() {
        let a =
            br#"{"type":"event","data":{"body":"the numbers look like the numbers we expected"}}"#;
        let b = br#"{"type":"event","data":{"body":"and the same numbers again, the numbers"}}"#;
        let mut joined = Joined::new(0, usize::MAX);
        joined.plain(b"[");
        joined.compressed(&deflate(a).unwrap());
        joined.plain(b",");
        joined.plain(b"{\"short\":1},");
        joined.compressed(&deflate(b).unwrap());
        joined.plain(b"]");
        let message = joined.finish();
        let mut want = b"[".to_vec();
        want.extend_from_slice(a);
        want.extend_from_slice(b",{\"short\":1},");
        want.extend_from_slice(b);
        want.extend_from_slice(b"]");
        assert_eq!(inflate(&message, 4096).unwrap(), want);
        // An independent inflater agrees (what a browser's zlib does).
        let mut d = Decompress::new(false);
        let mut input = message.clone();
        input.extend_from_slice(&TAIL);
        let mut out = Vec::with_capacity(4096);
        d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(out, want);
        // Only plain text, longer than one stored block can hold.
        let mut long = Joined::new(0, usize::MAX);
        let text = vec![b'z'; 70_000];
        long.plain(&text);
        assert_eq!(inflate(&long.finish(), 70_000).unwrap(), text);
        // Plain runs from a threshold on are compressed, in one go.
        let mut mixed = Joined::new(0, 100);
        mixed.plain(&[b'q'; 500]);
        mixed.compressed(&deflate(a).unwrap());
        mixed.plain(b"]");
        let message = mixed.finish();
        assert!(message.len() < 200, "{}", message.len());
        let mut want = vec![b'q'; 500];
        want.extend_from_slice(a);
        want.push(b']');
        assert_eq!(inflate(&message, 4096).unwrap(), want);
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(
            inflate(&[0xff, 0xff, 0xff, 0xff, 0x00], 1024),
            Err(InflateError::Invalid)
        );
    }

    #[test]
    fn a_final_block_from_another_deflater_is_read() {
        // A sender may end with BFINAL set instead of a sync flush.
        let mut c = Compress::new(Compression::fast(), false);
        let mut out = Vec::with_capacity(256);
        c.compress_vec(b"{\"type\":\"ping\"}", &mut out, FlushCompress::Finish)
            .unwrap();
        assert_eq!(inflate(&out, 1024).unwrap(), b"{\"type\":\"ping\"}");
    }
}
