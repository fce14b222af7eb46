//! The room list: list and create rooms (server functions) and the lobby's
//! components. The list comes in pages (`room-page` rooms, then a link to
//! the next page, `/?after=<id>`), so its size does not grow with the
//! number of rooms. Creating a room works without JavaScript (a plain form
//! post).

use super::forms;
use crate::error::AppError;
use crate::json::{self, Json};
use crate::model::{Room, RoomList};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;
use leptos::server_fn::ServerFn;

/// A page of rooms with an id above `after` (from the first if absent).
#[server(endpoint = "list_rooms", input = GetUrl)]
pub async fn list_rooms(after: Option<i64>) -> Result<RoomList, AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    crate::server::chat::list_rooms(&state, &who, after).await
}

/// Creates a room owned by the caller; `private` (a checkbox: any value)
/// makes it members-only.
#[server(endpoint = "create_room")]
pub async fn create_room(name: String, private: Option<String>) -> Result<Room, AppError> {
    let state = crate::server::app_state()?;
    let who = crate::server::principal()?;
    who.require_user()?;
    let ip = crate::server::client_ip(&state).await?;
    state
        .limits
        .create_room(ip)
        .map_err(crate::server::limited)?;
    let room = crate::server::chat::create_room(&state, &who, &name, private.is_some()).await?;
    crate::server::redirect_form_post(&format!("/rooms/{}", room.id));
    Ok(room)
}

/// Follows every listed room's topic from its head, and the lobby (new
/// public rooms); any event there bumps `activity` (at most once a second),
/// which refetches the list.
fn follow_listed_rooms(rooms: Resource<Result<RoomList, AppError>, Json>, activity: RwSignal<u64>) {
    use crate::protocol::{ErrorFrame, Event, Topic, Version};
    use crate::sync::{use_live_client, SubId, TopicHandler};
    use std::collections::HashMap;
    use std::rc::Rc;

    struct Changed(StoredValue<bool>);
    impl TopicHandler for Changed {
        fn since(&self) -> Option<Version> {
            None
        }
        fn on_event(&self, _: Event) {
            self.0.try_set_value(true);
        }
        fn on_subscribed(&self, _: Version) {}
        fn on_reset(&self) {
            self.0.try_set_value(true);
        }
        fn on_error(&self, _: ErrorFrame) {}
    }

    let live = use_live_client();
    let dirty = StoredValue::new(false);
    let followed = StoredValue::new(HashMap::<i64, SubId>::new());
    let scope = crate::sync::scope::Scope::current();
    // Effects run in the browser only.
    Effect::new(move |started: Option<()>| {
        let ids: Vec<i64> = rooms
            .get()
            .and_then(Result::ok)
            .map(|l| l.rooms.iter().map(|s| s.room.id).collect())
            .unwrap_or_default();
        followed.update_value(|f| {
            f.retain(|id, sub| {
                let keep = *id == 0 || ids.contains(id);
                if !keep {
                    live.unsubscribe(Topic::room(*id), *sub);
                }
                keep
            });
            for id in ids {
                f.entry(id)
                    .or_insert_with(|| live.subscribe(Topic::room(id), Rc::new(Changed(dirty))));
            }
        });
        // New public rooms (room 0 in the map stands for the lobby topic).
        if started.is_none() {
            let sub = live.subscribe(Topic::Lobby, Rc::new(Changed(dirty)));
            followed.update_value(|f| {
                f.insert(0, sub);
            });
        }
        if started.is_none() {
            scope.spawn(async move {
                loop {
                    crate::sync::sleep_ms(1_000).await;
                    if dirty.try_get_value() == Some(true) {
                        dirty.try_set_value(false);
                        activity.try_update(|n| *n += 1);
                    }
                    if dirty.try_get_value().is_none() {
                        return;
                    }
                }
            });
        }
    });
    on_cleanup(move || {
        if let Some(f) = followed.try_get_value() {
            for (id, sub) in f {
                let topic = if id == 0 {
                    Topic::Lobby
                } else {
                    Topic::room(id)
                };
                live.unsubscribe(topic, sub);
            }
        }
    });
}

/// One room in the list: its name, unread count (rooms the viewer has
/// read), and newest message.
#[component]
fn RoomRow(s: crate::model::RoomSummary) -> impl IntoView {
    let summary = crate::sync::summary::use_summary();
    let id = s.room.id;
    let listed = s.unread;
    // The live summary knows rooms with unread messages; the list knows
    // the rest (and the count when the page was rendered).
    let unread = move || match (summary.version(), listed) {
        (0, listed) => listed.filter(|n| *n > 0),
        (_, Some(_)) => Some(summary.count(id)).filter(|n| *n > 0),
        (_, None) => None,
    };
    let last = s.last.map(|m| {
        let text = if m.deleted {
            "message deleted".to_owned()
        } else {
            m.preview
        };
        view! {
            <span class="last" data-testid="room-last">
                <span class="author">{m.author}</span>": "{text}
            </span>
        }
    });
    view! {
        <li data-testid="room-row" data-room=id>
            <span class="room-title">
                <a href=format!("/rooms/{id}")>{s.room.name}</a>
                {s.room.private.then(|| view! { <span class="badge">"private"</span> })}
                {move || unread().map(|n| view! {
                    <span class="unread" data-testid="room-unread" aria-label=format!("{n} unread")>
                        {crate::sync::summary::badge(n)}
                    </span>
                })}
            </span>
            {last}
        </li>
    }
}

/// The lobby: every room, and a form to open a new one.
#[component]
pub fn RoomList() -> impl IntoView {
    let create = ServerAction::<CreateRoom>::new();
    let signed_in = super::account::use_identity().me.is_some();
    let query = leptos_router::hooks::use_query_map();
    let after = move || {
        query
            .read()
            .get("after")
            .and_then(|a| a.parse::<i64>().ok())
    };
    // The list stays live: a new summary (unread counts moved) or any event
    // in a listed room refetches it, at most once a second (request/response
    // for the data, the socket only for "something changed").
    let summary = crate::sync::summary::use_summary();
    let activity = RwSignal::new(0u64);
    let rooms = json::resource(
        move || {
            (
                create.version().get(),
                after(),
                summary.version(),
                activity.get(),
            )
        },
        |(_, after, _, _)| list_rooms(after),
    );
    follow_listed_rooms(rooms, activity);
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(room)) = create.value().get() {
            navigate(&format!("/rooms/{}", room.id), Default::default());
        }
    });
    let error = move || match create.value().get() {
        Some(Err(e)) => Some(e.to_string()),
        _ => None,
    };
    view! {
        <section class="rooms">
            <h1>"Rooms"</h1>
            <Transition fallback=|| view! { <p>"Loading rooms…"</p> }>
                {move || Suspend::new(async move {
                    match rooms.await {
                        Ok(list) => view! {
                            <ul class="room-list" data-testid="room-list">
                                {list.rooms.into_iter().map(|s| view! { <RoomRow s /> }).collect_view()}
                            </ul>
                            {list.next.map(|next| view! {
                                <a class="more-rooms" data-testid="more-rooms" href=format!("/?after={next}")>
                                    "More rooms →"
                                </a>
                            })}
                        }.into_any(),
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
            {if signed_in {
                view! {
                    <form class="create-room" method="post" action={CreateRoom::url()}
                        on:submit={forms::submit(create, |f| CreateRoom { name: f.text("name"), private: f.get("private") })}>
                        <input name="name" required maxlength="64" placeholder="new room name" aria-label="New room name" data-testid="room-name" />
                        <label class="private">
                            <input type="checkbox" name="private" data-testid="room-private" />
                            " private (members only)"
                        </label>
                        <button type="submit">"Create room"</button>
                        <span class="error" role="alert">{error}</span>
                    </form>
                }.into_any()
            } else {
                view! {
                    <p class="create-room" data-testid="sign-in-to-create">
                        <a href="/login">"Log in"</a> " to open a room."
                    </p>
                }.into_any()
            }}
        </section>
    }
}
