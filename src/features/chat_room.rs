//! A chat room on screen: the message list (server-rendered from the
//! snapshot, then hydrated), "load older", the composer, and the room's
//! sending rules. Keeping the room in step with the server is the generic
//! `TopicSync` (src/sync/topic.rs) over the room's `Timeline`.
//!
//! Every task here runs in the room's scope and is cancelled when the room
//! is left; signals are read with the `try_` accessors after any await.

use super::account::use_identity;
use super::members::Members;
use super::messages::{load_room, older_messages, send_message};
use crate::error::AppError;
use crate::model::RoomSnapshot;
use crate::protocol::{Event, EventData, Topic};
use crate::sync::timeline::Timeline;
use crate::sync::topic::TopicSync;
use crate::sync::{new_client_id, sleep_ms};
use futures::FutureExt;
use leptos::prelude::*;
use uuid::Uuid;

/// Server-function send attempts on transient failures (same client id each time).
const SEND_ATTEMPTS: u32 = 3;

/// One room, kept in step with the server.
type RoomSync = TopicSync<Timeline>;

fn timeline_of(s: RoomSnapshot) -> Timeline {
    Timeline::from_snapshot(s.log.version, s.log.events, s.log.has_older)
}

/// Sends a message (optimistically shown as pending) over the chosen path.
async fn send(
    sync: &RoomSync,
    room_id: i64,
    client_id: Uuid,
    author: String,
    body: String,
    over_socket: bool,
) -> Result<(), AppError> {
    sync.state()
        .try_update(|t| t.add_pending(client_id, author, body.clone()));
    let result = if over_socket {
        match sync
            .live()
            .send_message(sync.topic(), client_id, body.clone())
            .await
        {
            // Socket down or no answer: the same id over HTTP cannot double it.
            Err(AppError::Transport(_)) => send_over_http(room_id, client_id, body).await,
            other => other,
        }
    } else {
        send_over_http(room_id, client_id, body).await
    };
    match result {
        Ok(event) => {
            sync.receive(event);
            Ok(())
        }
        Err(e) => {
            sync.state().try_update(|t| t.remove_pending(client_id));
            Err(e)
        }
    }
}

/// The server-function path, retried with the same id on transient failures.
async fn send_over_http(room_id: i64, client_id: Uuid, body: String) -> Result<Event, AppError> {
    let mut attempt = 1;
    loop {
        match send_message(room_id, client_id, body.clone()).await {
            Err(e) if e.is_transient() && attempt < SEND_ATTEMPTS => {
                sleep_ms(400 * attempt).await;
                attempt += 1;
            }
            other => return other,
        }
    }
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
    let problem = sync.problem();
    let private = room.private;
    view! {
        <section class="chat" data-topic=topic.to_string()>
            <h2 class="room-name">{room.name.clone()}
                {private.then(|| view! { <span class="badge" data-testid="private-badge">"private"</span> })}
            </h2>
            {private.then(|| view! { <Members room=room.clone() /> })}
            <p class="error" role="alert" data-testid="room-problem">{move || problem.get()}</p>
            <MessageList sync=sync.clone() room_id />
            <Composer sync room_id />
        </section>
    }
}

#[component]
fn MessageList(sync: RoomSync, room_id: i64) -> impl IntoView {
    let timeline = sync.state();
    let older_error = RwSignal::new(None::<String>);
    let on_older = move |_| {
        let sync = sync.clone();
        sync.clone().spawn(async move {
            let result = load_older(&sync, room_id).await;
            older_error.try_set(result.err().map(|e| e.to_string()));
        });
    };
    view! {
        <div class="messages" data-testid="messages">
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
                <For each=move || timeline.with(|t| t.pending().to_vec()) key=|p| p.client_id let(p)>
                    <li class="message pending" data-testid="pending-message">
                        <span class="author">{p.author}</span>
                        <span class="meta">"sending…"</span>
                        <p class="body">{p.body}</p>
                    </li>
                </For>
            </ol>
        </div>
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
fn Composer(sync: RoomSync, room_id: i64) -> impl IntoView {
    let Some(author) = use_identity().name() else {
        return view! {
            <p class="composer signed-out" data-testid="sign-in-to-write">
                <a href="/login">"Log in"</a> " or " <a href="/signup">"sign up"</a> " to write here."
            </p>
        }
        .into_any();
    };
    // Without JavaScript the form posts to the server function itself (and is
    // redirected back); the id rendered with the form makes a resubmission
    // of the same form idempotent too.
    let form_id = new_client_id().to_string();
    let text = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let over_socket = RwSignal::new(false);
    // The id of the last failed send: re-sending the same text reuses it, so
    // a send that did land (but whose answer was lost) is not doubled.
    let retry = StoredValue::new(None::<(String, Uuid)>);
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = text.get_untracked();
        if body.trim().is_empty() {
            return;
        }
        let author = author.clone();
        let client_id = match retry.get_value() {
            Some((b, id)) if b == body => id,
            _ => new_client_id(),
        };
        retry.set_value(Some((body.clone(), client_id)));
        text.set(String::new());
        error.set(None);
        let via_socket = over_socket.get_untracked();
        let sync = sync.clone();
        sync.clone().spawn(async move {
            match send(&sync, room_id, client_id, author, body.clone(), via_socket).await {
                Ok(()) => {
                    retry.try_set_value(None);
                }
                Err(e) => {
                    if text.try_get_untracked().is_some_and(|t| t.is_empty()) {
                        text.try_set(body);
                    }
                    error.try_set(Some(e.to_string()));
                }
            }
        });
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
            <p class="error" role="alert" data-testid="send-error">{move || error.get()}</p>
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
