//! A chat room on screen: the message list (server-rendered from the
//! snapshot, then hydrated), "load older", the composer, and the room's
//! sending rules. Keeping the room in step with the server is the generic
//! `TopicSync` (src/sync/topic.rs) over the room's `Timeline`.
//!
//! Every task here runs in the room's scope and is cancelled when the room
//! is left; signals are read with the `try_` accessors after any await.

use super::account::use_identity;
use super::members::Members;
use super::messages::{load_room, older_messages};
use crate::error::AppError;
use crate::model::RoomSnapshot;
use crate::protocol::{Event, EventData, Topic};
use crate::sync::new_client_id;
use crate::sync::outbox::{Queued, QueuedState};
use crate::sync::sender::use_sender;
use crate::sync::timeline::Timeline;
use crate::sync::topic::TopicSync;
use futures::FutureExt;
use leptos::prelude::*;

/// One room, kept in step with the server.
type RoomSync = TopicSync<Timeline>;

fn timeline_of(s: RoomSnapshot) -> Timeline {
    Timeline::from_snapshot(s.log.version, s.log.events, s.log.has_older)
}

async fn load_older(sync: &RoomSync, room_id: i64) -> Result<(), AppError> {
    let Some(Some(before)) = sync.state().try_with_untracked(Timeline::oldest_seq) else {
        return Ok(());
    };
    let page = older_messages(room_id, before).await?;
    sync.state()
        .try_update(|t| t.prepend_older(page.events, page.has_older));
    Ok(())
}

#[component]
pub fn ChatRoom(snapshot: RoomSnapshot) -> impl IntoView {
    let room = snapshot.room.clone();
    let topic = Topic::room(room.id);
    let room_id = room.id;
    let sync = TopicSync::new(topic, timeline_of(snapshot), move || {
        async move { load_room(room_id).await.map(timeline_of) }.boxed_local()
    });
    sync.start();
    // Acknowledged writes of this tab reach the room (whichever path carried them).
    let sender = use_sender();
    let confirming = sync.clone();
    let registration = StoredValue::new(None::<u64>);
    Effect::new(move |_| {
        let sync = confirming.clone();
        let id = sender.on_confirm(topic, move |event| sync.receive(event));
        registration.set_value(Some(id));
    });
    on_cleanup(move || {
        if let Some(id) = registration.try_get_value().flatten() {
            sender.off_confirm(topic, id);
        }
    });
    let problem = sync.problem();
    let private = room.private;
    view! {
        <section class="chat" data-topic=topic.to_string()>
            <h1 class="room-name">{room.name.clone()}
                {private.then(|| view! { <span class="badge" data-testid="private-badge">"private"</span> })}
            </h1>
            {private.then(|| view! { <Members room=room.clone() /> })}
            <p class="error" role="alert" data-testid="room-problem">{move || problem.get()}</p>
            <MessageList sync=sync.clone() room_id />
            <Composer topic room_id />
        </section>
    }
}

#[component]
fn MessageList(sync: RoomSync, room_id: i64) -> impl IntoView {
    let timeline = sync.state();
    let topic = sync.topic();
    let outbox = use_sender().outbox();
    let older_error = RwSignal::new(None::<String>);
    let on_older = move |_| {
        let sync = sync.clone();
        sync.clone().spawn(async move {
            let result = load_older(&sync, room_id).await;
            older_error.try_set(result.err().map(|e| e.to_string()));
        });
    };
    view! {
        <div class="messages" data-testid="messages" role="log" aria-live="polite" aria-label="Messages">
            <ol class="message-list">
                <Show when=move || timeline.with(Timeline::has_older)>
                    <li class="older">
                        <button on:click=on_older.clone() data-testid="load-older">"Load older messages"</button>
                        <span class="error">{older_error}</span>
                    </li>
                </Show>
                // Keyed by the full version: after an epoch change, a row
                // with the same seq is another message.
                <For each=move || timeline.with(|t| t.confirmed().to_vec()) key=|e| e.version let(event)>
                    <MessageRow event />
                </For>
                // This tab's writes not confirmed yet, in the order they were made.
                <For each=move || outbox.with(|o| {
                        timeline.with(|t| o.of(topic).filter(|q| !t.is_confirmed(q.client_id)).cloned().collect::<Vec<_>>())
                    })
                    key=|q| (q.client_id, q.state.clone()) let(q)>
                    <PendingRow q />
                </For>
            </ol>
        </div>
    }
}

/// One of this tab's writes on its way: waiting, sending, or refused (with
/// the server's reason and a button to discard it).
#[component]
fn PendingRow(q: Queued) -> impl IntoView {
    let sender = use_sender();
    let id = q.client_id;
    let (status, refused) = match &q.state {
        QueuedState::Waiting => ("waiting to send…".to_owned(), false),
        QueuedState::Sending => ("sending…".to_owned(), false),
        QueuedState::Refused(why) => (format!("not sent: {why}"), true),
    };
    let cancellable = q.state != QueuedState::Sending;
    view! {
        <li class="message pending" class:refused=refused data-testid="pending-message" data-state=if refused { "refused" } else { "pending" }>
            <span class="author">{q.author}</span>
            <span class="meta" role=refused.then_some("alert")>{status}</span>
            {cancellable.then(|| view! {
                <button class="link" data-testid="cancel-pending" on:click=move |_| { sender.cancel(id); }>
                    {if refused { "discard" } else { "cancel" }}
                </button>
            })}
            <p class="body">{q.body}</p>
        </li>
    }
}

#[component]
fn MessageRow(event: Event) -> impl IntoView {
    let EventData::Message(m) = event.data else {
        // Room topics carry messages; a kind from a newer server shows nothing.
        return ().into_any();
    };
    view! {
        <li class="message" data-seq=event.version.seq data-epoch=event.version.epoch data-testid="message">
            <span class="author">{m.author}</span>
            <time class="meta" title="UTC">{clock(m.sent_at)}</time>
            <p class="body">{m.body}</p>
        </li>
    }
    .into_any()
}

/// `HH:MM` (UTC) of a unix-millisecond time; the same in both builds, so
/// hydration matches the server's markup.
fn clock(ms: i64) -> String {
    let minutes = ms.div_euclid(60_000);
    format!(
        "{:02}:{:02}",
        minutes.div_euclid(60).rem_euclid(24),
        minutes.rem_euclid(60)
    )
}

#[component]
fn Composer(topic: Topic, room_id: i64) -> impl IntoView {
    let Some(author) = use_identity().name() else {
        return view! {
            <p class="composer signed-out" data-testid="sign-in-to-write">
                <a href="/login">"Log in"</a> " or " <a href="/signup">"sign up"</a> " to write here."
            </p>
        }
        .into_any();
    };
    let sender = use_sender();
    // Without JavaScript the form posts to the server function itself (and is
    // redirected back); the id rendered with the form makes a resubmission
    // of the same form idempotent too.
    let form_id = new_client_id().to_string();
    let text = RwSignal::new(String::new());
    let over_socket = RwSignal::new(false);
    // The newest refusal in this room, until it is discarded.
    let outbox = sender.outbox();
    let refused = move || {
        outbox.with(|o| {
            o.of(topic).rev().find_map(|q| match &q.state {
                QueuedState::Refused(why) => Some(why.clone()),
                _ => None,
            })
        })
    };
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = text.get_untracked();
        if body.trim().is_empty() {
            return;
        }
        // Queued in this tab (and its storage) until acknowledged: in order,
        // through outages and reloads, never twice.
        sender.push(Queued {
            topic,
            client_id: new_client_id(),
            author: author.clone(),
            body,
            via_socket: over_socket.get_untracked(),
            state: QueuedState::Waiting,
        });
        text.set(String::new());
    };
    view! {
        <form class="composer" method="post" action="/api/send_message" on:submit=on_submit>
            <input type="hidden" name="room_id" value=room_id.to_string() />
            <input type="hidden" name="client_id" value=form_id />
            <input type="text" name="body" maxlength="2000" placeholder="Write a message" autocomplete="off"
                data-testid="message-input" aria-label="message"
                prop:value=text on:input=move |ev| text.set(event_target_value(&ev)) />
            <button type="submit" data-testid="send">"Send"</button>
            <label class="via">
                <input type="checkbox" data-testid="via-socket" prop:checked=over_socket
                    on:change=move |ev| over_socket.set(event_target_checked(&ev)) />
                " over WebSocket"
            </label>
            <p class="error" role="alert" data-testid="send-error">{refused}</p>
        </form>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_is_utc_hours_and_minutes() {
        assert_eq!(super::clock(0), "00:00");
        assert_eq!(super::clock(((13 * 60 + 7) * 60 + 59) * 1000), "13:07");
        assert_eq!(super::clock(86_400_000 + 60_000), "00:01");
    }
}
