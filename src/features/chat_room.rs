//! A chat room on screen: the message list (server-rendered from the
//! snapshot, then hydrated), "load older", the composer, and `RoomSync`, the
//! glue between the room's `Timeline` and both channels (live pushes from the
//! socket, request/response for sends, backfills and reloads).

use super::events::events_since;
use super::identity::use_identity;
use super::messages::{load_room, older_messages, send_message};
use crate::error::AppError;
use crate::model::RoomSnapshot;
use crate::protocol::{Event, EventData, Topic, Version};
use crate::sync::timeline::{Follow, Timeline};
use crate::sync::{new_client_id, sleep_ms, use_live_client, LiveClient, TopicHandler};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::rc::Rc;
use uuid::Uuid;

/// Server-function send attempts on transient failures (same client id each time).
const SEND_ATTEMPTS: u32 = 3;
/// How long a gap may stay open before it is backfilled: out-of-order pushes
/// usually close it sooner.
const GAP_GRACE_MS: u32 = 250;

/// Keeps one room's timeline in step with the server. Cheap to clone.
#[derive(Clone)]
pub struct RoomSync {
    room_id: i64,
    topic: Topic,
    timeline: RwSignal<Timeline>,
    live: LiveClient,
    backfilling: StoredValue<bool>,
}

impl TopicHandler for RoomSync {
    fn since(&self) -> Option<Version> {
        Some(self.timeline.with_untracked(Timeline::version))
    }

    fn on_event(&self, event: Event) {
        self.receive(event);
    }

    fn on_reset(&self) {
        self.reload();
    }
}

impl RoomSync {
    fn subscribe(&self) {
        self.live
            .subscribe(self.topic.clone(), Rc::new(self.clone()));
    }

    fn receive(&self, event: Event) {
        let follow = self
            .timeline
            .try_update(|t| t.receive(event))
            .unwrap_or(Follow::Nothing);
        self.follow(follow);
    }

    fn follow(&self, follow: Follow) {
        match follow {
            Follow::Nothing => {}
            Follow::Backfill(_) => self.backfill(),
            Follow::Reload => self.reload(),
        }
    }

    /// Fills the gap through `events_since`, page by page, until none is left.
    fn backfill(&self) {
        if self.backfilling.get_value() {
            return;
        }
        self.backfilling.set_value(true);
        let sync = self.clone();
        spawn_local(async move {
            sleep_ms(GAP_GRACE_MS).await;
            let mut failures = 0;
            while sync.timeline.with_untracked(Timeline::has_gap) && failures < 5 {
                let v = sync.timeline.with_untracked(Timeline::version);
                match events_since(sync.topic.to_string(), v.epoch, v.seq).await {
                    Ok(b) if b.reset => {
                        sync.backfilling.set_value(false);
                        return sync.reload();
                    }
                    Ok(b) => {
                        let follow = sync.timeline.try_update(|t| t.receive_all(b.events));
                        if follow == Some(Follow::Reload) {
                            sync.backfilling.set_value(false);
                            return sync.reload();
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        tracing::warn!(topic = %sync.topic, error = %e, "backfill failed");
                        sleep_ms(1000 * failures).await;
                    }
                }
            }
            sync.backfilling.set_value(false);
        });
    }

    /// Replaces the timeline with a fresh snapshot (keeping pending sends), then resubscribes.
    fn reload(&self) {
        let sync = self.clone();
        spawn_local(async move {
            match load_room(sync.room_id).await {
                Ok(s) => {
                    let pending = sync.timeline.with_untracked(|t| t.pending().to_vec());
                    let mut fresh =
                        Timeline::from_snapshot(s.log.version, s.log.events, s.log.has_older);
                    for p in pending {
                        fresh.add_pending(p.client_id, p.author, p.body);
                    }
                    sync.timeline.set(fresh);
                    sync.subscribe();
                }
                Err(e) => tracing::warn!(topic = %sync.topic, error = %e, "snapshot reload failed"),
            }
        });
    }

    /// Sends a message (optimistically shown as pending) over the chosen path.
    async fn send(
        &self,
        client_id: Uuid,
        author: String,
        body: String,
        over_socket: bool,
    ) -> Result<(), AppError> {
        self.timeline
            .update(|t| t.add_pending(client_id, author, body.clone()));
        let result = if over_socket {
            match self
                .live
                .send_message(self.topic.clone(), client_id, body.clone())
                .await
            {
                // Socket down or no answer: the same id over HTTP cannot double it.
                Err(AppError::Transport(_)) => self.send_over_http(client_id, body).await,
                other => other,
            }
        } else {
            self.send_over_http(client_id, body).await
        };
        match result {
            Ok(event) => {
                self.receive(event);
                Ok(())
            }
            Err(e) => {
                self.timeline.update(|t| t.remove_pending(client_id));
                Err(e)
            }
        }
    }

    /// The server-function path, retried with the same id on transient failures.
    async fn send_over_http(&self, client_id: Uuid, body: String) -> Result<Event, AppError> {
        let mut attempt = 1;
        loop {
            match send_message(self.room_id, client_id, body.clone()).await {
                Err(e) if e.is_transient() && attempt < SEND_ATTEMPTS => {
                    sleep_ms(400 * attempt).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn load_older(&self) -> Result<(), AppError> {
        let Some(before) = self.timeline.with_untracked(Timeline::oldest_seq) else {
            return Ok(());
        };
        let page = older_messages(self.room_id, before).await?;
        self.timeline
            .update(|t| t.prepend_older(page.events, page.has_older));
        Ok(())
    }
}

#[component]
pub fn ChatRoom(snapshot: RoomSnapshot) -> impl IntoView {
    let RoomSnapshot { room, log } = snapshot;
    let sync = RoomSync {
        room_id: room.id,
        topic: log.topic.clone(),
        timeline: RwSignal::new(Timeline::from_snapshot(
            log.version,
            log.events,
            log.has_older,
        )),
        live: use_live_client(),
        backfilling: StoredValue::new(false),
    };
    // Effects run only in the browser, after hydration.
    let start = sync.clone();
    Effect::new(move |_| start.subscribe());
    let (live, topic) = (sync.live, sync.topic.clone());
    on_cleanup(move || live.unsubscribe(&topic));
    view! {
        <section class="chat" data-topic=log.topic.to_string()>
            <h2 class="room-name">{room.name}</h2>
            <MessageList sync=sync.clone() />
            <Composer sync />
        </section>
    }
}

#[component]
fn MessageList(sync: RoomSync) -> impl IntoView {
    let timeline = sync.timeline;
    let older_error = RwSignal::new(None::<String>);
    let load_older = move |_| {
        let sync = sync.clone();
        spawn_local(async move {
            older_error.set(sync.load_older().await.err().map(|e| e.to_string()));
        });
    };
    view! {
        <div class="messages" data-testid="messages">
            <ol class="message-list">
                <Show when=move || timeline.with(Timeline::has_older)>
                    <li class="older">
                        <button on:click=load_older.clone() data-testid="load-older">"Load older messages"</button>
                        <span class="error">{older_error}</span>
                    </li>
                </Show>
                <For each=move || timeline.with(|t| t.confirmed().to_vec()) key=|e| e.version.seq let(event)>
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
    // Room topics carry only messages.
    let EventData::Message(m) = event.data else {
        return ().into_any();
    };
    view! {
        <li class="message" data-seq=event.version.seq data-testid="message">
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
fn Composer(sync: RoomSync) -> impl IntoView {
    let identity = use_identity();
    // Without JavaScript the form posts to the server function itself (and is
    // redirected back); the id rendered with the form makes a resubmission
    // of the same form idempotent too.
    let room_id = sync.room_id.to_string();
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
        let Some(author) = identity.current() else {
            error.set(Some(AppError::NameRequired.to_string()));
            return;
        };
        let client_id = match retry.get_value() {
            Some((b, id)) if b == body => id,
            _ => new_client_id(),
        };
        retry.set_value(Some((body.clone(), client_id)));
        text.set(String::new());
        error.set(None);
        let sync = sync.clone();
        spawn_local(async move {
            match sync
                .send(client_id, author, body.clone(), over_socket.get_untracked())
                .await
            {
                Ok(()) => retry.set_value(None),
                Err(e) => {
                    if text.get_untracked().is_empty() {
                        text.set(body);
                    }
                    error.set(Some(e.to_string()));
                }
            }
        });
    };
    view! {
        <form class="composer" method="post" action="/api/send_message" on:submit=on_submit>
            <input type="hidden" name="room_id" value=room_id />
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
