//! The room list: list and create rooms (server functions) and the lobby's
//! components. The list comes in pages (`room-page` rooms, then a link to
//! the next page, `/?after=<id>`), so its size does not grow with the
//! number of rooms. Creating a room works without JavaScript (a plain form
//! post).

use crate::error::AppError;
use crate::model::{Room, RoomList};
use leptos::prelude::*;
use leptos::server_fn::codec::GetUrl;

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
    let rooms = Resource::new(
        move || (create.version().get(), after()),
        |(_, after)| list_rooms(after),
    );
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
                                {list.rooms.into_iter().map(|s| view! {
                                    <li>
                                        <a href=format!("/rooms/{}", s.room.id)>{s.room.name}</a>
                                        {s.room.private.then(|| view! { <span class="badge">"private"</span> })}
                                        <span class="count">{format!("{} messages", s.messages)}</span>
                                    </li>
                                }).collect_view()}
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
                    <ActionForm action=create attr:class="create-room">
                        <input name="name" required maxlength="64" placeholder="new room name" aria-label="New room name" data-testid="room-name" />
                        <label class="private">
                            <input type="checkbox" name="private" data-testid="room-private" />
                            " private (members only)"
                        </label>
                        <button type="submit">"Create room"</button>
                        <span class="error" role="alert">{error}</span>
                    </ActionForm>
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
