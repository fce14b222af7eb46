//! `unsubscribe`: stop a topic; always answered with `unsubscribed`.

use crate::protocol::{ServerFrame, Topic};
use crate::server::realtime::frame::{self, Frames};
use crate::server::realtime::session::Session;

pub fn run(session: &mut Session, topic: Topic, out: &mut Frames) {
    session.untrack(topic);
    frame::push(out, ServerFrame::Unsubscribed { topic });
}
