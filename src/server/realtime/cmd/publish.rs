//! `publish`: append a tick to a ticker topic. Needs the publish token
//! (checked first); accepted publishes get no answer, refusals an `error`
//! with the topic.

use crate::error::AppError;
use crate::protocol::{Tick, Topic};
use crate::server::realtime::frame::Frames;
use crate::server::realtime::session::{push_error, Session};

pub fn run(session: &mut Session, topic: Topic, tick: Tick, out: &mut Frames) {
    let published = if session.peer.may_publish {
        session
            .services
            .backend
            .publish_tick(topic, tick)
            .map(|_| ())
    } else {
        crate::server::metrics::reject("publish_forbidden");
        Err(AppError::Forbidden(
            "this connection may not publish".into(),
        ))
    };
    if let Err(e) = published {
        push_error(out, e.code(), e.to_string(), Some(topic));
    }
}
