//! `publish`: append a tick to a ticker topic. Needs an access token with
//! the `publish` scope (the authorization rule, asked first); accepted
//! publishes get no answer, refusals an `error` with the topic.

use crate::protocol::{Tick, Topic};
use crate::server::accounts::Access;
use crate::server::realtime::frame::Frames;
use crate::server::realtime::session::{push_error, Session};

pub async fn run(session: &mut Session, topic: Topic, tick: Tick, out: &mut Frames) {
    let backend = session.services.backend.clone();
    let published = match backend
        .authorize(&session.peer.who, topic, Access::Publish)
        .await
    {
        Ok(()) => backend.publish_tick(topic, tick).map(|_| ()),
        Err(e) => {
            crate::server::metrics::reject("publish_forbidden");
            Err(e)
        }
    };
    if let Err(e) = published {
        push_error(out, e.code(), e.to_string(), Some(topic));
    }
}
