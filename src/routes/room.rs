//! `/rooms/:id`: one chat room. Its recent messages are in the server-rendered
//! HTML (readable without JavaScript); the page then hydrates and goes live.

use crate::error::AppError;
use crate::features::chat_room::ChatRoom;
use crate::features::messages::load_room;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

/// The text for `<Title>`. leptos_meta 0.8 writes the title into the
/// server-rendered `<head>` without escaping it, so a room named
/// `</title><script>…` would be markup there: escape it on the server. In the
/// browser the title is set as `document.title`, which is text already.
fn title_text(text: String) -> String {
    #[cfg(feature = "ssr")]
    {
        html_escape::encode_text(&text).into_owned()
    }
    #[cfg(not(feature = "ssr"))]
    {
        text
    }
}

#[component]
pub fn RoomPage() -> impl IntoView {
    let params = use_params_map();
    let room_id = move || params.read().get("id").and_then(|s| s.parse::<i64>().ok());
    let snapshot = crate::json::resource(room_id, |id| async move {
        match id {
            Some(id) => load_room(id).await,
            None => Err(AppError::NotFound("room".into())),
        }
    });
    view! {
        <p class="crumbs"><a href="/">"← all rooms"</a></p>
        <Suspense fallback=|| view! { <p>"Loading room…"</p> }>
            {move || Suspend::new(async move {
                match snapshot.await {
                    Ok(s) => view! {
                        <Title text=title_text(format!("{} · tandem", s.room.name)) />
                        <ChatRoom snapshot=s />
                    }.into_any(),
                    Err(e) => {
                        #[cfg(feature = "ssr")]
                        crate::server::set_page_status(e.status());
                        let title = if e.status() == 404 { "Room not found · tandem" } else { "Room unavailable · tandem" };
                        view! {
                            <Title text=title />
                            <h1>"Room unavailable"</h1>
                            <p class="error" data-testid="room-error">{e.to_string()}</p>
                        }.into_any()
                    }
                }
            })}
        </Suspense>
    }
}
