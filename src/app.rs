//! The HTML shell and the router; pages live in `routes/`.

use crate::features::account::{provide_identity, AccountBadge};
use crate::routes::account::{AccountPage, LoginPage, SignupPage};
use crate::routes::{home::HomePage, room::RoomPage};
use crate::sync::{provide_live_client, use_live_client};
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, Lazy, SsrMode};

/// The document around the app, rendered on the server.
#[cfg(feature = "ssr")]
pub fn shell(options: LeptosOptions) -> impl IntoView {
    use crate::server::site::site_head;
    use leptos_meta::MetaTags;
    // The page's Content Security Policy carries this response's nonce.
    crate::server::security::set_page_csp();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <link rel="icon" href="/favicon.svg" type="image/svg+xml" />
                <AutoReload options=options.clone() />
                // Opens the page's WebSocket while the wasm loads (`sync::early`).
                <script nonce=leptos::nonce::use_nonce()>{crate::sync::early::boot_script()}</script>
                {site_head(options)}
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_live_client();
    crate::sync::sender::provide_sender();
    provide_identity();
    let me = crate::features::account::use_identity().me.map(|m| m.id);
    let summary = crate::sync::summary::provide_summary(me);
    // Every page's title starts with the unread count, so a hidden tab shows
    // it. Only in the browser: the server has no count yet, and leptos_meta
    // calls the formatter while writing the head, outside the request's
    // reactive arena, where no signal may be read.
    let formatter = move |text: String| {
        let total = if cfg!(feature = "hydrate") {
            summary.total()
        } else {
            0
        };
        match total {
            0 => text,
            n => format!("({}) {text}", crate::sync::summary::badge(n)),
        }
    };
    view! {
        <Title text="tandem" formatter />
        <Router>
            <header class="top">
                <a href="/" class="brand">"tandem"</a>
                <AccountBadge />
                <LinkBadge />
            </header>
            <main>
                <Routes fallback=|| {
                    #[cfg(feature = "ssr")]
                    crate::server::set_page_status(404);
                    view! {
                        <Title text="Page not found · tandem" />
                        <h1>"Page not found"</h1>
                        <p class="error">"There is no page at this address. " <a href="/">"Go to the rooms"</a></p>
                    }
                }>
                    // Async rendering: Suspense content is in the HTML where it
                    // belongs (pages read fine without JavaScript), and a missing room
                    // can still answer 404. All but the room page are lazy routes:
                    // their code is in chunks of their own (`routes/account.rs`).
                    <Route path=path!("/") view={Lazy::<HomePage>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/rooms/:id") view=RoomPage ssr=SsrMode::Async />
                    <Route path=path!("/login") view={Lazy::<LoginPage>::new()} />
                    <Route path=path!("/signup") view={Lazy::<SignupPage>::new()} />
                    <Route path=path!("/account") view={Lazy::<AccountPage>::new()} ssr=SsrMode::Async />
                </Routes>
            </main>
        </Router>
    }
}

/// The live connection's state: live / reconnecting / offline / signed
/// out, while live the rung of the transport ladder it is on (WebSocket,
/// SSE, long or short polling), and while it is down a "retry now" control
/// that connects at once instead of waiting out the backoff.
#[component]
fn LinkBadge() -> impl IntoView {
    use crate::sync::LinkStatus;
    let live = use_live_client();
    let status = live.status();
    let rung = live.rung();
    let down = move || matches!(status.get(), LinkStatus::Reconnecting | LinkStatus::Offline);
    let is_live = move || status.get() == LinkStatus::Live;
    view! {
        <span class="link-status" role="status" data-testid="link-status" data-status=move || status.get().label()>
            {move || status.get().label()}
        </span>
        <Show when=is_live>
            <span class="link-rung" data-testid="link-rung" data-rung=move || rung.get().name() title="How this page receives live updates">
                {move || rung.get().label()}
            </span>
        </Show>
        <Show when=down>
            <button class="link" data-testid="retry-now" on:click=move |_| live.reconnect()>"retry now"</button>
        </Show>
    }
}
