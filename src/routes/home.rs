//! `/`: what tandem is, and the room list.

use crate::features::rooms::RoomList;
use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn HomePage() -> impl IntoView {
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
}
