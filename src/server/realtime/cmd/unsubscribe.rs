//! `unsubscribe`: stop a topic; always answered with `unsubscribed`. With
//! `away`, a room the connection was in keeps its account in the room's
//! presence, marked away, while the connection lasts.

use crate::protocol::{ServerFrame, Topic};
use crate::server::realtime::frame::{self, Frames};
use crate::server::realtime::session::Session;

pub fn run(session: &mut Session, topic: Topic, away: bool, out: &mut Frames) {
    session.leave(topic, away);
    frame::push(out, ServerFrame::Unsubscribed { topic });
}
