//! `subscribe`: start (or restart) a topic from the client's version.
//!
//! Asks the authorization rule first (`read`): a refusal is an `error` with
//! the topic (`not_found` for a private room, whether or not it exists).
//! Registers with the broker first, then reads the log, so nothing committed
//! in between is missed. Answers with the events the client lacks (by the
//! topic's policy; for a lossless topic one page now, the rest page by page
//! as the connection drains) then `subscribed`; or `reset`; or `error` (the
//! topic is then not subscribed, even if it was before).

use crate::protocol::{ErrorCode, Topic, Version};
use crate::server::accounts::Access;
use crate::server::realtime::frame::{self, Frames};
use crate::server::realtime::session::{
    limit_error, push_error, push_subscribed, CatchUp, Finish, Session,
};

pub async fn run(session: &mut Session, topic: Topic, since: Option<Version>, out: &mut Frames) {
    let max = session.services.settings.max_subscriptions;
    if !session.subs.contains_key(&topic) && session.subs.len() >= max {
        crate::server::metrics::reject("subscription_limit");
        let msg = format!("at most {max} subscriptions per connection");
        return push_error(out, ErrorCode::Limit, msg, Some(topic));
    }
    if since.is_some() {
        if let Err(exceeded) = session.budget.resume() {
            // Like any error naming the topic: it is not subscribed now.
            session.untrack(topic);
            return frame::push(out, limit_error(&exceeded, Some(topic), None));
        }
    }
    let backend = session.services.backend.clone();
    let allowed = backend
        .authorize(&session.peer.who, topic, Access::Read)
        .await;
    if let Err(e) = allowed {
        // Refused: not subscribed now, even if it was before.
        session.untrack(topic);
        return push_error(out, e.code(), e.to_string(), Some(topic));
    }
    session.register(topic);
    // A resubscription restarts any catch-up in progress.
    session.behind.remove(&topic);
    match session.read_from(topic, since, out).await {
        Ok(CatchUp::At(version)) => {
            if let Some(from) = since {
                let m = &session.services.meters;
                let resumed = if version == from {
                    &m.resumes_current
                } else {
                    &m.resumes_replayed
                };
                resumed.increment(1);
            }
            session.track(topic, version);
            push_subscribed(out, topic, version);
        }
        Ok(CatchUp::Partial(version)) => {
            // The rest follows page by page; `subscribed` comes after it.
            session.track(topic, version);
            session.behind.insert(topic, Finish::Subscribed);
        }
        Ok(CatchUp::Reset(head)) => session.reset(topic, head, out),
        Err(e) => {
            session.untrack(topic);
            push_error(out, e.code(), e.to_string(), Some(topic));
        }
    }
}
