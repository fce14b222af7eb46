//! `send`, `edit` and `delete`: a chat write as the connection's account
//! (authorized by the service: `write`, and authorship for changes).
//! Answered by `ack` (the stored event, or the original for a retried
//! `client_id`) or `error` carrying the same `client_id`. Limited by the
//! connection's messages per second (counted towards `max-refusals`) and,
//! once authorized, by its account's chat writes, which the account's other
//! connections and HTTP requests share (`chat::write`). The event reaches
//! subscribers through the store's feed, not from here.

use crate::protocol::{ChatWrite, ErrorFrame, ServerFrame, Topic};
use crate::server::chat::WriteError;
use crate::server::realtime::frame::{self, Frames};
use crate::server::realtime::session::{limit_error, Session};
use uuid::Uuid;

pub async fn run(
    session: &mut Session,
    topic: Topic,
    client_id: Uuid,
    write: ChatWrite,
    out: &mut Frames,
) {
    if let Err(exceeded) = session.budget.message() {
        return frame::push(out, limit_error(&exceeded, Some(topic), Some(client_id)));
    }
    let backend = session.services.backend.clone();
    let sent = backend
        .write(&session.peer.who, topic, client_id, write)
        .await;
    frame::push(
        out,
        match sent {
            Ok(event) => ServerFrame::Ack { client_id, event },
            // Not counted towards `max-refusals`: the account's other
            // connections and requests may have spent its writes.
            Err(WriteError::Limited(exceeded)) => {
                limit_error(&exceeded, Some(topic), Some(client_id))
            }
            Err(WriteError::App(e)) => ServerFrame::Error(ErrorFrame {
                code: e.code(),
                message: e.to_string(),
                topic: Some(topic),
                client_id: Some(client_id),
                retry_after_ms: None,
            }),
        },
    );
}
