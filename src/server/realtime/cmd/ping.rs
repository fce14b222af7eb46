//! `ping` (answered with `pong`) and `pong` (liveness only: the transport
//! already counted the frame as heard).

use crate::protocol::ServerFrame;
use crate::server::realtime::frame::{self, Frames};

pub fn ping(out: &mut Frames) {
    frame::push(out, ServerFrame::Pong {});
}

pub fn pong() {}
