//! # tandem
//!
//! A Leptos + axum application built on the hybrid request/response +
//! WebSocket architecture (see `DESIGN.md` in the steering repo and
//! `docs/PROTOCOL.md`).
//!
//! # Layout
//! - `protocol` — wire frames, topics (an enum of kinds, each with a delivery
//!   policy and a durability) and versions, shared by server and browser;
//!   `protocol/decode.rs` decodes client frames with typed refusals.
//! - `model` — rooms, snapshots and backfills that server functions return.
//! - `error` — `AppError`, the server-function error type.
//! - `json` — the one JSON reader of the browser's code, and the resources' codec.
//! - `validate` — input rules for names and messages.
//! - `sync` — client state, both builds: `cursor` (the apply rule, by
//!   policy), `timeline` (a room's state), `topic` (`TopicSync`: keeps any
//!   topic's state in step: subscribe, backfill, reload, errors), `scope`
//!   (tasks owned by their component), `backoff`; `live/` is the tab's one
//!   WebSocket (hydrate build; an inert stand-in on the server).
//! - `app` — the HTML shell and the router.
//! - `routes` — one file per page.
//! - `features` — components with their server functions (rooms, chat, identity).
//! - `server` — everything ssr-only: `config`, `state`, `store/` (trait,
//!   SQLite, its writer task and commit feed), `broker` (fan-out, fed by the
//!   store's feed), `logs` (topic routing: durable or in-memory log),
//!   `ephemeral`, `chat`, `realtime/` (`session`, `backend`, `cmd/` one
//!   handler per client frame kind, `frame`, `ws`), `security`, `shutdown`,
//!   `metrics`, `site` (the site's files: embedded in a release binary, or
//!   from the site folder).

pub mod app;
pub mod error;
pub mod features;
pub mod json;
pub mod model;
pub mod protocol;
pub mod routes;
pub mod sync;

#[cfg(feature = "ssr")]
pub mod server;

/// Browser entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // Browser-console logging in development builds only: a release wasm
    // carries no tracing subscriber.
    #[cfg(debug_assertions)]
    tracing_wasm::set_as_global_default();
    // As `leptos::mount::hydrate_lazy`, which the lazy routes (`routes/`)
    // need: the page's route may be in a chunk, fetched before it can be
    // hydrated, so hydration finishes later than this function returns. It
    // marks `tandem:hydrated` then (`bench/first_load.mjs`, real-user
    // monitoring), after the boot script's `tandem:wasm-ready`.
    let _ = any_spawner::Executor::init_wasm_bindgen();
    leptos::task::spawn_local(async {
        let body = leptos::prelude::document()
            .body()
            .expect("a page has a body");
        let owner = leptos::mount::hydrate_from_async(body, app::App).await;
        if let Some(p) = leptos::prelude::window().performance() {
            let _ = p.mark("tandem:hydrated");
        }
        owner.forget();
    });
}
