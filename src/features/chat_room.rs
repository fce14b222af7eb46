//! A chat room on screen: the message list (server-rendered from the
//! snapshot, then hydrated), older pages, the composer, editing and
//! deleting, and the room's sending rules. Keeping the room in step with the
//! server is the generic `TopicSync` (src/sync/topic.rs) over the room's
//! `Timeline`.
//!
//! Cost per incoming message: rows are keyed by version and revision, and
//! share the timeline's messages (`Arc`), so an event adds one row (or
//! redraws the one it changed); while the reader follows the end, the
//! timeline keeps the newest `WINDOW` messages. Rows are drawn in blocks of
//! `timeline::BLOCK` seqs, each laid out on its own (`contain: layout`), so
//! the browser's layout of a new row does not grow with the room either.
//! Blocks also bound memory: the reactive owner of a list keeps a small
//! record of every child it ever had until it is itself dropped
//! (reactive_graph 0.2's `Owner::child`), so rows are owned by their block,
//! which goes when trimmed, rather than by one list that lives as long as
//! the room is open.
//!
//! Every task here runs in the room's scope and is cancelled when the room
//! is left; signals are read with the `try_` accessors after any await.

use super::account::use_identity;
use super::chat_text::{self, Segment, GROUP_MS};
use super::members::Members;
use super::messages::{load_room, older_messages};
use crate::error::AppError;
use crate::model::RoomSnapshot;
use crate::protocol::Presence;
use crate::protocol::Topic;
use crate::sync::outbox::{Queued, QueuedState, WriteKind};
use crate::sync::presence::{arrivals, typing_line, PresenceState};
use crate::sync::sender::use_sender;
use crate::sync::timeline::{BlockKey, Row, Timeline};
use crate::sync::topic::TopicSync;
use crate::sync::{document_visible, new_client_id};
use futures::FutureExt;
use leptos::html;
use leptos::prelude::*;

/// One room, kept in step with the server.
type RoomSync = TopicSync<Timeline>;

/// Messages kept while the reader follows the end of the room.
pub const WINDOW: usize = 1000;

fn timeline_of(s: RoomSnapshot) -> Timeline {
    Timeline::from_snapshot(s.log.version, s.log.events, s.log.has_older)
}

/// Loads the page before the oldest message held and puts it on top, with
/// the reader's view kept on the messages it showed.
async fn load_older(
    sync: &RoomSync,
    room_id: i64,
    list: NodeRef<html::Div>,
) -> Result<(), AppError> {
    let Some(Some(before)) = sync.state().try_with_untracked(Timeline::oldest_seq) else {
        return Ok(());
    };
    let page = older_messages(room_id, before).await?;
    // The list scrolls from its end (`column-reverse`), so the distance from
    // the end is what keeps the view in place; browsers do not all keep it
    // when content is added above.
    let from_end = list.try_get_untracked().flatten().map(|el| el.scroll_top());
    sync.state()
        .try_update(|t| t.prepend_older(page.events, page.has_older));
    if let (Some(top), Some(el)) = (from_end, list.try_get_untracked().flatten()) {
        request_animation_frame(move || el.set_scroll_top(top));
    }
    Ok(())
}

/// The reader's clock: UTC as the server rendered it, the browser's zone
/// once hydrated.
#[derive(Clone, Copy)]
struct Zone(RwSignal<bool>);

impl Zone {
    /// Milliseconds the shown zone is ahead of UTC at `ms`. Tracked only
    /// until the zone is known: rows drawn later do not subscribe to it (a
    /// long-lived signal would collect a subscriber per row ever drawn).
    fn offset(self, ms: i64) -> i64 {
        if self.0.get_untracked() || self.0.get() {
            local_offset_ms(ms)
        } else {
            0
        }
    }
}

#[cfg(feature = "hydrate")]
fn local_offset_ms(ms: i64) -> i64 {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    -(date.get_timezone_offset() as i64) * 60_000
}

#[cfg(not(feature = "hydrate"))]
fn local_offset_ms(_ms: i64) -> i64 {
    0
}

/// Unix milliseconds now.
fn wall_ms() -> i64 {
    #[cfg(feature = "hydrate")]
    {
        js_sys::Date::now() as i64
    }
    #[cfg(not(feature = "hydrate"))]
    {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A change of this tab to a message, not confirmed yet.
#[derive(Clone, Debug, PartialEq)]
struct PendingChange {
    client_id: uuid::Uuid,
    kind: WriteKind,
    body: String,
    state: QueuedState,
}

/// What every row of a room needs.
#[derive(Clone, Copy)]
struct RoomCtx {
    topic: Topic,
    /// The reader's account.
    me: Option<i64>,
    /// The reader owns the room (deletes any message).
    owner: bool,
    zone: Zone,
    /// This tab's edits and deletions on their way, by target seq.
    changes: Memo<Vec<(u64, PendingChange)>>,
    composer: NodeRef<html::Textarea>,
}

#[component]
pub fn ChatRoom(snapshot: RoomSnapshot) -> impl IntoView {
    let room = snapshot.room.clone();
    let members = snapshot.members.clone();
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
    let me = use_identity().me.map(|m| m.id);
    let zone = Zone(RwSignal::new(false));
    // After hydration (effects run in the browser only): the reader's zone.
    Effect::new(move |_| zone.0.set(true));
    let outbox = sender.outbox();
    let changes = Memo::new(move |_| {
        outbox.with(|o| {
            o.of(topic)
                .filter_map(|q| {
                    let target = q.target()?;
                    Some((
                        target,
                        PendingChange {
                            client_id: q.client_id,
                            kind: q.kind,
                            body: q.body.clone(),
                            state: q.state.clone(),
                        },
                    ))
                })
                .collect()
        })
    });
    provide_context(RoomCtx {
        topic,
        me,
        owner: me == Some(room.owner_id),
        zone,
        changes,
        composer: NodeRef::new(),
    });
    // Who is here (a latest-wins topic: the server sends its current state
    // first, so there is nothing to load).
    let presence = TopicSync::new(Topic::presence(room_id), PresenceState::default(), || {
        async { Ok(PresenceState::default()) }.boxed_local()
    });
    presence.start();
    let problem = sync.problem();
    let private = room.private;
    view! {
        <section class="chat" data-topic=topic.to_string()>
            <h1 class="room-name">{room.name.clone()}
                {private.then(|| view! { <span class="badge" data-testid="private-badge">"private"</span> })}
            </h1>
            {private.then(|| view! { <Members room=room.clone() members=members.clone() /> })}
            <PresenceBar presence />
            <p class="error" role="alert" data-testid="room-problem">{move || problem.get()}</p>
            <MessageList sync=sync.clone() room_id />
            <Composer topic room_id />
        </section>
    }
}

/// Who is in the room, who is typing, and a short notice when someone
/// joins or leaves (never written to the message log).
#[component]
fn PresenceBar(presence: TopicSync<PresenceState>) -> impl IntoView {
    let me = expect_context::<RoomCtx>().me;
    let state = presence.state();
    let notice = RwSignal::new(None::<String>);
    Effect::new(move |before: Option<Option<Presence>>| {
        let now = state.with(|s| s.current().cloned());
        if let (Some(Some(before)), Some(after)) = (&before, &now) {
            if let Some(text) = arrivals(before, after, me) {
                notice.set(Some(text.clone()));
                presence.spawn(async move {
                    crate::sync::sleep_ms(6_000).await;
                    notice.try_update(|n| {
                        if n.as_deref() == Some(text.as_str()) {
                            *n = None;
                        }
                    });
                });
            }
        }
        now
    });
    let here = move || {
        state.with(|s| {
            let p = s.current()?;
            // A hidden page's account stays listed, away.
            let names: Vec<String> = p
                .users
                .iter()
                .map(|u| match u.away {
                    true => format!("{} (away)", u.name),
                    false => u.name.clone(),
                })
                .collect();
            if names.is_empty() {
                return None;
            }
            let more = (p.count as usize).saturating_sub(names.len());
            let mut text = names.join(", ");
            if more > 0 {
                text.push_str(&format!(" and {more} more"));
            }
            Some(text)
        })
    };
    let typing = move || typing_line(&state.with(|s| s.typing(me)));
    view! {
        <p class="presence" data-testid="presence">
            <span class="here" data-testid="here">{move || here().map(|t| format!("Here now: {t}"))}</span>
            <span class="notice" data-testid="presence-notice">{notice}</span>
            <span class="typing" data-testid="typing">{typing}</span>
        </p>
    }
}

/// A row and the one before it (for day headings and grouping).
#[derive(Clone)]
struct RowView {
    row: Row,
    prev: Option<Row>,
}

/// Equal when drawn the same: by key, not by text.
impl PartialEq for RowView {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl RowView {
    fn key(
        &self,
    ) -> (
        (crate::protocol::Version, u64),
        Option<crate::protocol::Version>,
    ) {
        (self.row.key(), self.prev.as_ref().map(|p| p.version))
    }
}

/// One block of rows (`timeline::BLOCK` consecutive seqs). Only the blocks
/// an event changes draw again; rows are keyed by version and revision (and
/// the row before, for headings and grouping), so an event adds or redraws
/// one row.
#[component]
fn MessageBlock(timeline: RwSignal<Timeline>, block: BlockKey) -> impl IntoView {
    let rows = Memo::new(move |_| {
        timeline.with(|t| {
            let (mut prev, rows) = t.block(block);
            rows.iter()
                .map(|r| {
                    let view = RowView {
                        row: r.clone(),
                        prev: prev.cloned(),
                    };
                    prev = Some(r);
                    view
                })
                .collect::<Vec<_>>()
        })
    });
    view! {
        <div class="block" role="none">
            <For each=move || rows.get() key=RowView::key let(view)>
                <MessageRow view />
            </For>
        </div>
    }
}

#[component]
fn MessageList(sync: RoomSync, room_id: i64) -> impl IntoView {
    let timeline = sync.state();
    let topic = sync.topic();
    let outbox = use_sender().outbox();
    let older_error = RwSignal::new(None::<String>);
    let loading_older = RwSignal::new(false);
    let list = NodeRef::<html::Div>::new();
    // The reader is at the end of the list (it scrolls from the bottom).
    let at_end = RwSignal::new(true);
    // Messages that arrived while the reader was scrolled up.
    let unseen = RwSignal::new(0usize);
    let older = {
        let sync = sync.clone();
        move || {
            if loading_older.get_untracked() {
                return;
            }
            loading_older.set(true);
            let sync = sync.clone();
            sync.clone().spawn(async move {
                let result = load_older(&sync, room_id, list).await;
                older_error.try_set(result.err().map(|e| e.to_string()));
                loading_older.try_set(false);
            });
        }
    };
    let on_older = {
        let older = older.clone();
        move |_| older()
    };
    let on_scroll = move |_| {
        let Some(el) = list.get_untracked() else {
            return;
        };
        // `column-reverse`: 0 at the end, negative above it.
        let top = el.scroll_top();
        let end = top >= -4;
        at_end.set(end);
        if end {
            unseen.set(0);
        }
        let room_above = el.scroll_height() - el.client_height() + top;
        if room_above < 120 && timeline.with_untracked(Timeline::has_older) {
            older();
        }
    };
    // New messages: counted while scrolled up; while following the end, the
    // timeline keeps only the newest `WINDOW`.
    Effect::new(move |prev: Option<Option<u64>>| {
        let last = timeline.with(|t| t.rows().last().map(|r| r.version.seq));
        if let (Some(Some(before)), Some(_)) = (prev, last) {
            if at_end.get_untracked() {
                if timeline.with_untracked(|t| t.rows().len() > WINDOW) {
                    timeline.update(|t| t.trim(WINDOW));
                }
            } else {
                let new = timeline.with_untracked(|t| {
                    t.rows()
                        .iter()
                        .rev()
                        .take_while(|r| r.version.seq > before)
                        .count()
                });
                unseen.update(|n| *n += new);
            }
        }
        last
    });
    // The read position: the newest version held while the room is on
    // screen (tab visible, list at its end), sent at most once a second.
    let visible = RwSignal::new(true);
    Effect::new(move |_| visible.set(document_visible()));
    let listener =
        window_event_listener_untyped("visibilitychange", move |_| visible.set(document_visible()));
    on_cleanup(move || listener.remove());
    let signed_in = use_identity().me.is_some();
    let marked = StoredValue::new(0u64);
    let marking = StoredValue::new(false);
    let reader = sync.clone();
    Effect::new(move |_| {
        let seq = timeline.with(|t| t.version().seq);
        if !signed_in || !visible.get() || !at_end.get() || seq <= marked.get_value() {
            return;
        }
        marked.set_value(seq);
        if marking.get_value() {
            return;
        }
        marking.set_value(true);
        reader.spawn(async move {
            loop {
                let seq = marked.get_value();
                if let Err(e) = super::messages::mark_read(room_id, seq).await {
                    tracing::debug!(error = %e, "read position not stored");
                }
                crate::sync::sleep_ms(1_000).await;
                if marked.try_get_value() == Some(seq) {
                    break;
                }
            }
            marking.try_set_value(false);
        });
    });
    let to_end = move |_| {
        if let Some(el) = list.get_untracked() {
            el.set_scroll_top(0);
        }
        unseen.set(0);
    };
    let blocks = Memo::new(move |_| timeline.with(Timeline::blocks));
    let empty = move || timeline.with(|t| t.rows().is_empty() && !t.has_older());
    view! {
        <div class="messages-frame">
            <div class="messages" data-testid="messages" role="log" aria-live="polite" aria-label="Messages"
                node_ref=list on:scroll=on_scroll>
                <div class="message-list" role="list">
                    <Show when=move || timeline.with(Timeline::has_older)>
                        <div class="older" role="listitem">
                            <button on:click=on_older.clone() data-testid="load-older" disabled=move || loading_older.get()>
                                {move || if loading_older.get() { "Loading older messages…" } else { "Load older messages" }}
                            </button>
                            <span class="error">{older_error}</span>
                        </div>
                    </Show>
                    <Show when=empty>
                        <div class="empty" role="listitem" data-testid="empty-room">"No messages yet. Say hello!"</div>
                    </Show>
                    <For each=move || blocks.get() key=|b| *b let(block)>
                        <MessageBlock timeline block />
                    </For>
                    // This tab's new messages not confirmed yet, in the order they were made.
                    <For each=move || outbox.with(|o| {
                            timeline.with(|t| o.of(topic)
                                .filter(|q| q.kind == WriteKind::Message && !t.is_confirmed(q.client_id))
                                .cloned()
                                .collect::<Vec<_>>())
                        })
                        key=|q| (q.client_id, q.state.clone()) let(q)>
                        <PendingRow q />
                    </For>
                </div>
            </div>
            <Show when=move || { unseen.get() > 0 }>
                <button class="new-below" data-testid="new-below" on:click=to_end>
                    {move || match unseen.get() { 1 => "↓ 1 new message".to_owned(), n => format!("↓ {n} new messages") }}
                </button>
            </Show>
        </div>
    }
    .into_any()
}

/// One of this tab's new messages on its way: waiting, sending, or refused
/// (with the server's reason and a button to discard it).
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
        <div role="listitem" class="message pending own" class:refused=refused data-testid="pending-message" data-state=if refused { "refused" } else { "pending" }>
            <div class="head">
                <span class="author">{q.author}</span>
                <span class="meta" role=refused.then_some("alert")>{status}</span>
                {cancellable.then(|| view! {
                    <button class="link" data-testid="cancel-pending" on:click=move |_| { sender.cancel(id); }>
                        {if refused { "discard" } else { "cancel" }}
                    </button>
                })}
            </div>
            <p class="body">{q.body}</p>
        </div>
    }
    .into_any()
}

/// A message's text: links are `<a>` elements with text inside, everything
/// else text nodes (never HTML).
fn body_view(body: &str) -> impl IntoView {
    chat_text::segments(body)
        .into_iter()
        .map(|segment| match segment {
            Segment::Text(t) => t.to_owned().into_any(),
            Segment::Link(url) => view! {
                <a href=url.to_owned() rel="noopener noreferrer nofollow" target="_blank">{url.to_owned()}</a>
            }
            .into_any(),
        })
        .collect_view()
}

#[component]
fn MessageRow(view: RowView) -> impl IntoView {
    let ctx = expect_context::<RoomCtx>();
    let sender = use_sender();
    let m = view.row.message.clone();
    let version = view.row.version;
    let seq = version.seq;
    let prev = view.prev.map(|p| p.message);
    let own = ctx.me.is_some_and(|id| id != 0 && id == m.author_id);
    let can_edit = own && !m.deleted;
    let can_delete = (own || ctx.owner) && !m.deleted;
    let zone = ctx.zone;
    let sent_at = m.sent_at;
    let (prev_at, same_author) = match &prev {
        Some(p) => (
            Some(p.sent_at),
            p.author == m.author && p.author_id == m.author_id && !p.deleted,
        ),
        None => (None, false),
    };
    let day = move || chat_text::day_of(sent_at, zone.offset(sent_at));
    let day_break = move || prev_at.is_none_or(|p| chat_text::day_of(p, zone.offset(p)) != day());
    let grouped =
        move || same_author && prev_at.is_some_and(|p| sent_at - p < GROUP_MS) && !day_break();
    let day_heading = move || {
        let now = wall_ms();
        chat_text::day_label(day(), chat_text::day_of(now, zone.offset(now)))
    };
    let changes = ctx.changes;
    // Only rows with controls can have changes on their way; the others do
    // not subscribe to them.
    let controls = can_edit || can_delete;
    let pending = move || {
        if !controls {
            return None;
        }
        changes.with(|c| {
            c.iter()
                .rev()
                .find(|(target, _)| *target == seq)
                .map(|(_, p)| p.clone())
        })
    };
    let editing = RwSignal::new(None::<String>);
    let confirming = RwSignal::new(false);
    let editor = NodeRef::<html::Textarea>::new();
    let author = m.author.clone();
    let original = StoredValue::new(m.body.clone());
    // Focus moves into the edit box once it is drawn (a callback, not a
    // per-row effect: rows are many, edits rare).
    let open_editor = move || {
        editing.set(Some(original.get_value()));
        request_animation_frame(move || {
            if let Some(el) = editor.get_untracked() {
                let _ = el.focus();
            }
        });
    };
    let my_name = StoredValue::new(use_identity().name().unwrap_or_default());
    let composer = ctx.composer;
    let focus_composer = move || {
        if let Some(el) = composer.get_untracked() {
            let _ = el.focus();
        }
    };
    let queue = move |kind: WriteKind, body: String| {
        sender.push(Queued {
            topic: ctx.topic,
            client_id: new_client_id(),
            kind,
            author: my_name.get_value(),
            body,
            via_socket: via_socket(),
            state: QueuedState::Waiting,
        });
    };
    let save = move || {
        let Some(body) = editing.get_untracked() else {
            return;
        };
        editing.set(None);
        if !body.trim().is_empty() && original.with_value(|o| body.trim() != o.trim()) {
            queue(WriteKind::Edit(seq), body);
        }
        focus_composer();
    };
    let shown_body = {
        let m = m.clone();
        move || match pending() {
            Some(PendingChange {
                kind: WriteKind::Edit(_),
                body,
                state,
                ..
            }) if !matches!(state, QueuedState::Refused(_)) => body,
            _ => m.body.clone(),
        }
    };
    let status = move || {
        let p = pending()?;
        let id = p.client_id;
        let (what, refused) = match (&p.kind, &p.state) {
            (_, QueuedState::Refused(why)) => (format!("not changed: {why}"), true),
            (WriteKind::Delete(_), _) => ("deleting…".to_owned(), false),
            _ => ("saving…".to_owned(), false),
        };
        Some(view! {
            <span class="meta change" data-testid="change-status" role=refused.then_some("alert")>{what}
                {(refused || p.state == QueuedState::Waiting).then(|| view! {
                    <button class="link" data-testid="cancel-change" on:click=move |_| { sender.cancel(id); }>
                        {if refused { "discard" } else { "cancel" }}
                    </button>
                })}
            </span>
        })
    };
    let deleted = m.deleted;
    let edited = m.edited_at.is_some() && !deleted;
    let when = move || chat_text::clock(sent_at, zone.offset(sent_at));
    let full = move || chat_text::full(sent_at, zone.offset(sent_at));
    view! {
        <div role="listitem" class="message" class:own=own class:grouped=grouped class:deleted=deleted
            data-seq=seq data-epoch=version.epoch data-testid="message">
            <p class="day" data-testid="day" hidden=move || !day_break()>{day_heading}</p>
            <div class="head">
                <span class="author">{author}</span>
                <time class="meta" title=full datetime=chat_text::iso_utc(sent_at)>{when}</time>
                {edited.then(|| view! { <span class="meta" data-testid="edited">"(edited)"</span> })}
                {status}
                {(can_edit || can_delete).then(|| view! {
                    <span class="actions">
                        {can_edit.then(|| view! {
                            <button class="link" data-testid="edit" aria-label="edit message"
                                on:click=move |_| open_editor()>"edit"</button>
                        })}
                        {can_delete.then(|| view! {
                            <button class="link" data-testid="delete" aria-label="delete message"
                                on:click=move |_| confirming.set(true)>"delete"</button>
                        })}
                    </span>
                })}
            </div>
            {move || if deleted {
                view! { <p class="body deleted" data-testid="deleted"><em>"message deleted"</em></p> }.into_any()
            } else if editing.with(Option::is_some) {
                view! {
                    <div class="edit">
                        <textarea node_ref=editor data-testid="edit-input" aria-label="edit message text" rows="2"
                            prop:value=move || editing.get().unwrap_or_default()
                            on:input=move |ev| editing.set(Some(event_target_value(&ev)))
                            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                                if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                                    ev.prevent_default();
                                    save();
                                } else if ev.key() == "Escape" {
                                    editing.set(None);
                                    focus_composer();
                                }
                            }></textarea>
                        <button data-testid="save-edit" on:click=move |_| save()>"Save"</button>
                        <button class="link" data-testid="cancel-edit" on:click=move |_| { editing.set(None); focus_composer(); }>"Cancel"</button>
                    </div>
                }.into_any()
            } else {
                let body = shown_body();
                view! { <p class="body">{body_view(&body)}</p> }.into_any()
            }}
            <Show when=move || confirming.get()>
                <p class="confirm" role="alert">"Delete this message?"
                    <button data-testid="confirm-delete" on:click=move |_| {
                        confirming.set(false);
                        queue(WriteKind::Delete(seq), String::new());
                        focus_composer();
                    }>"Delete"</button>
                    <button class="link" data-testid="keep" on:click=move |_| confirming.set(false)>"Keep"</button>
                </p>
            </Show>
        </div>
    }
    .into_any()
}

/// Whether writes go over the WebSocket (else the server functions): the
/// `?via=socket` or `?via=http` URL parameter, remembered in the browser
/// (`localStorage["tandem.via"]`). HTTP by default.
fn via_socket() -> bool {
    #[cfg(feature = "hydrate")]
    {
        let Some(window) = web_sys::window() else {
            return false;
        };
        let storage = window.local_storage().ok().flatten();
        let search = window.location().search().unwrap_or_default();
        for (param, value) in [("via=socket", "socket"), ("via=http", "http")] {
            if search
                .trim_start_matches('?')
                .split('&')
                .any(|p| p == param)
            {
                if let Some(s) = &storage {
                    let _ = s.set_item("tandem.via", value);
                }
            }
        }
        storage
            .and_then(|s| s.get_item("tandem.via").ok().flatten())
            .is_some_and(|v| v == "socket")
    }
    #[cfg(not(feature = "hydrate"))]
    {
        false
    }
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
    let ctx = expect_context::<RoomCtx>();
    // Without JavaScript the form posts to the server function itself (and is
    // redirected back); the id rendered with the form makes a resubmission
    // of the same form idempotent too.
    let form_id = new_client_id().to_string();
    let text = RwSignal::new(String::new());
    // The newest refusal in this room, until it is discarded; or a plain
    // form's refusal (no JavaScript), by its code.
    let outbox = sender.outbox();
    let query = leptos_router::hooks::use_query_map();
    let refused = move || {
        outbox
            .with(|o| {
                o.of(topic).rev().find_map(|q| match (&q.state, q.kind) {
                    (QueuedState::Refused(why), WriteKind::Message) => Some(why.clone()),
                    _ => None,
                })
            })
            .or_else(|| {
                let code = query.read().get("error")?;
                super::messages::send_error_text(&code).map(str::to_owned)
            })
    };
    let submit = move || {
        let body = text.get_untracked();
        if body.trim().is_empty() {
            return;
        }
        // Queued in this tab (and its storage) until acknowledged: in order,
        // through outages and reloads, never twice.
        sender.push(Queued {
            topic,
            client_id: new_client_id(),
            kind: WriteKind::Message,
            author: author.clone(),
            body,
            via_socket: via_socket(),
            state: QueuedState::Waiting,
        });
        text.set(String::new());
    };
    let on_submit = {
        let submit = submit.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            submit();
        }
    };
    // Others see "typing…": at most one signal per 3 s while the text
    // changes; it ends by itself, or when the message is posted.
    let live = crate::sync::use_live_client();
    let last_typing = StoredValue::new(f64::NEG_INFINITY);
    let on_input = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        let now = crate::sync::now_ms();
        if !value.trim().is_empty() && now - last_typing.get_value() > 3_000.0 {
            last_typing.set_value(now);
            live.typing(topic);
        }
        text.set(value);
    };
    // Enter sends; Shift+Enter (or Enter while composing text with an input
    // method) makes a new line.
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
            ev.prevent_default();
            submit();
        }
    };
    view! {
        <form class="composer" method="post" action="/api/send_message" on:submit=on_submit>
            <input type="hidden" name="room_id" value=room_id.to_string() />
            <input type="hidden" name="client_id" value=form_id />
            <textarea name="body" maxlength="2000" rows="2" placeholder="Write a message (Shift+Enter for a new line)"
                autocomplete="off" data-testid="message-input" aria-label="message" node_ref=ctx.composer
                prop:value=text on:input=on_input on:keydown=on_key></textarea>
            <button type="submit" data-testid="send">"Send"</button>
            <p class="error" role="alert" data-testid="send-error">{refused}</p>
        </form>
    }
    .into_any()
}
