//! `typing`: the connection's account is typing in a room. Authorized like a
//! write to the room (asked first) and counted against the message budget;
//! accepted frames get no answer, refusals an `error` with the topic. The
//! state shows on the room's `presence:` topic (`server::presence`).

use crate::protocol::Topic;
use crate::server::realtime::frame::Frames;
use crate::server::realtime::session::{limit_error, push_error, Session};

pub async fn run(session: &mut Session, topic: Topic, out: &mut Frames) {
    if let Err(exceeded) = session.budget.message() {
        return crate::server::realtime::frame::push(
            out,
            limit_error(&exceeded, Some(topic), None),
        );
    }
    let backend = session.services.backend.clone();
    if let Err(e) = backend.typing(&session.peer.who, topic).await {
        push_error(out, e.code(), e.to_string(), Some(topic));
    }
}
