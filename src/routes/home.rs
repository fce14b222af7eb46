//! `/`: what tandem is, and the room list.
//!
//! A lazy route (see `routes/account.rs`): a visitor who opens a room first
//! does not download the lobby's code. The page that renders it names its
//! chunks in preload links, so a visitor who opens the lobby fetches them
//! beside the main wasm.

use crate::features::rooms::RoomList;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{lazy_route, LazyRoute};

pub struct HomePage;

#[lazy_route]
impl LazyRoute for HomePage {
    fn data() -> Self {
        #[cfg(feature = "ssr")]
        crate::server::site::preload_lazy("__home_page_view");
        HomePage
    }

    fn view(_this: Self) -> AnyView {
        view! {
            <Title text="Rooms · tandem" />
            <section class="intro">
                <p>
                    "Pick a room. Messages arrive live in every open tab; drop your connection and "
                    "tandem catches up without losing or doubling anything."
                </p>
            </section>
            <RoomList />
        }
        .into_any()
    }
}
