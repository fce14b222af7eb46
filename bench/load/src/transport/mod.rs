//! The client interface every transport implements. A new transport is one
//! more file here and one more arm in `open`.
//!
//! A `Subscriber` is one connected client already subscribed to the bench
//! topic; `recv` yields the deliveries' sequence numbers and publish times.
//! A `Publisher` sends one payload per call, stamped with the time it was
//! scheduled for (the same host clock the receivers read).

pub mod socketio;
pub mod tandem_http;
pub mod tandem_ws;
pub mod wire;

use async_trait::async_trait;

/// One delivery as a receiver sees it.
#[derive(Clone, Copy, Debug)]
pub struct Msg {
    /// Position in the stream: the server's seq (tandem) or the publisher's (Socket.IO).
    pub seq: u64,
    /// Publish time, microseconds since the Unix epoch.
    pub ts_us: i64,
}

#[async_trait]
pub trait Subscriber: Send {
    /// Waits for deliveries and appends every one received so far to `out`
    /// (keep-alives are answered meanwhile); `false` when the connection ended.
    async fn recv(&mut self, out: &mut Vec<Msg>) -> anyhow::Result<bool>;
}

#[async_trait]
pub trait Publisher: Send {
    /// Publishes one payload carrying `seq` and `ts_us`.
    async fn publish(&mut self, seq: u64, ts_us: i64) -> anyhow::Result<()>;
}

#[async_trait]
pub trait Transport: Send + Sync {
    fn name(&self) -> &'static str;
    /// Whether `Msg::seq` starts after the subscription's reported head
    /// (server-assigned) rather than at the publisher's first seq.
    fn server_seq(&self) -> bool;
    /// Whether the topic is latest-wins: a receiver behind may be sent only
    /// the newest value (the values in between are coalesced, not lost).
    fn latest_wins(&self) -> bool {
        false
    }
    /// Connects one client and subscribes it; returns the seq it starts after.
    async fn subscribe(&self) -> anyhow::Result<(Box<dyn Subscriber>, u64)>;
    async fn publisher(&self) -> anyhow::Result<Box<dyn Publisher>>;
}

/// Builds the transport named on the command line.
/// Options of tandem's WebSocket transport.
#[derive(Clone, Copy, Debug, Default)]
pub struct Extras {
    /// Offer permessage-deflate (`--deflate 1`).
    pub deflate: bool,
    /// Bytes of chat text after the time in each message body (`--pad N`).
    pub pad: usize,
}

pub fn open(
    name: &str,
    target: &str,
    topic: &str,
    token: &str,
    extras: Extras,
) -> anyhow::Result<Box<dyn Transport>> {
    Ok(match name {
        "ws" => Box::new(tandem_ws::TandemWs::new(target, topic, token, true, extras)),
        // The calibration server (`src/bin/floor.rs`): tandem's frames, no
        // coalescing, no accounts.
        "floor" => Box::new(tandem_ws::TandemWs::new(target, topic, "", false, extras)),
        // Its long polls.
        "floor-long-poll" => Box::new(tandem_http::TandemHttp::floor(target, topic)),
        "sse" => Box::new(tandem_http::TandemHttp::new(
            target,
            topic,
            token,
            tandem_http::Rung::Sse,
        )),
        "long-poll" => Box::new(tandem_http::TandemHttp::new(
            target,
            topic,
            token,
            tandem_http::Rung::LongPoll,
        )),
        "short-poll" => Box::new(tandem_http::TandemHttp::new(
            target,
            topic,
            token,
            tandem_http::Rung::ShortPoll,
        )),
        "sio-ws" => Box::new(socketio::SocketIo::new(
            target,
            topic,
            socketio::Mode::WebSocket,
        )),
        "sio-poll" => Box::new(socketio::SocketIo::new(
            target,
            topic,
            socketio::Mode::Polling,
        )),
        other => anyhow::bail!(
            "unknown transport `{other}` (ws, sse, long-poll, short-poll, floor, floor-long-poll, sio-ws, sio-poll)"
        ),
    })
}

/// Microseconds since the Unix epoch.
pub fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// The unsigned integer after `"key":` in `text` (a scan, not a JSON parse:
/// the load tool must stay cheaper than what it measures).
pub fn field_u64(text: &str, key: &str) -> Option<u64> {
    field(text.as_bytes(), key.as_bytes()).map(|(v, _)| v)
}

/// The unsigned integer after the first `key` in `bytes`, and where it ends.
pub fn field(bytes: &[u8], key: &[u8]) -> Option<(u64, usize)> {
    let mut at = find(bytes, key)? + key.len();
    while bytes.get(at) == Some(&b' ') {
        at += 1;
    }
    let mut value: u64 = 0;
    let start = at;
    while let Some(d) = bytes.get(at).filter(|b| b.is_ascii_digit()) {
        value = value.checked_mul(10)?.checked_add((d - b'0') as u64)?;
        at += 1;
    }
    (at > start).then_some((value, at))
}

/// Where `needle` first occurs in `hay`. Frames are short: jumping between
/// occurrences of the first byte beats building a searcher per frame.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while let Some(i) = memchr::memchr(first, &hay[from..]) {
        let at = from + i;
        if hay[at + 1..].starts_with(rest) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// Every delivery in `text`: each occurrence of `marker` starts one, whose
/// `"seq":` and then `ts_key` follow it (a batch frame holds several).
pub fn deliveries(text: &[u8], marker: &[u8], ts_key: &[u8], out: &mut Vec<Msg>) -> usize {
    let mut n = 0;
    let mut rest = text;
    while let Some(i) = find(rest, marker) {
        rest = &rest[i + marker.len()..];
        let Some((seq, after)) = field(rest, b"\"seq\":") else {
            break;
        };
        rest = &rest[after..];
        let ts = field(rest, ts_key).map_or(0, |(v, after)| {
            rest = &rest[after..];
            v as i64
        });
        out.push(Msg { seq, ts_us: ts });
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    #[test]
    fn scans_fields() {
        let t = r#"{"type":"event","version":{"epoch":5,"seq":42},"data":{"kind":"tick","price":1.0,"ts":1700}}"#;
        assert_eq!(super::field_u64(t, "\"seq\":"), Some(42));
        assert_eq!(super::field_u64(t, "\"ts\":"), Some(1700));
        assert_eq!(super::field_u64(t, "\"nope\":"), None);
    }

    #[test]
    fn finds_every_delivery_of_a_batch() {
        let one = r#"{"type":"event","topic":"ticker:B","version":{"epoch":5,"seq":42},"data":{"kind":"tick","price":1.0,"ts":1700}}"#;
        let batch = format!(
            r#"{{"type":"batch","frames":[{one},{}]}}"#,
            one.replace("42", "43").replace("1700", "1800")
        );
        let mut out = Vec::new();
        let n = super::deliveries(
            batch.as_bytes(),
            br#"{"type":"event""#,
            br#""ts":"#,
            &mut out,
        );
        assert_eq!(n, 2);
        assert_eq!(
            (out[0].seq, out[0].ts_us, out[1].seq, out[1].ts_us),
            (42, 1700, 43, 1800)
        );
        out.clear();
        assert_eq!(
            super::deliveries(
                br#"{"type":"ping"}"#,
                br#"{"type":"event""#,
                br#""ts":"#,
                &mut out
            ),
            0
        );
    }
}
