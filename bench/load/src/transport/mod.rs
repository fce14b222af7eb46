//! The client interface every transport implements. A new transport (SSE,
//! long poll, ...) is one more file here and one more arm in `open`.
//!
//! A `Subscriber` is one connected client already subscribed to the bench
//! topic; `next` yields each delivery's sequence number and publish time.
//! A `Publisher` sends one payload per call, stamped with the time it was
//! handed to the transport (the same host clock the receivers read).

pub mod socketio;
pub mod tandem_ws;

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
    /// The next delivery; `None` when the connection ended.
    async fn next(&mut self) -> anyhow::Result<Option<Msg>>;
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
    /// Connects one client and subscribes it; returns the seq it starts after.
    async fn subscribe(&self) -> anyhow::Result<(Box<dyn Subscriber>, u64)>;
    async fn publisher(&self) -> anyhow::Result<Box<dyn Publisher>>;
}

/// Builds the transport named on the command line.
pub fn open(
    name: &str,
    target: &str,
    topic: &str,
    token: &str,
) -> anyhow::Result<Box<dyn Transport>> {
    Ok(match name {
        "ws" => Box::new(tandem_ws::TandemWs::new(target, topic, token)),
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
        other => anyhow::bail!("unknown transport `{other}` (ws, sio-ws, sio-poll)"),
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
    let at = text.find(key)? + key.len();
    let digits: &str = text[at..].trim_start();
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
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
}
