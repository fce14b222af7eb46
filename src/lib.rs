//! # tandem
//!
//! A Leptos + axum application built on the hybrid request/response +
//! WebSocket architecture (see `DESIGN.md` in the steering repo and
//! `docs/PROTOCOL.md`).
//!
//! # Layout
//! - `protocol` — wire frames and versioned events, shared by server and browser.
//! - `model` — rooms, snapshots and backfills that server functions return.
//! - `error` — `AppError`, the server-function error type.
//! - `validate` — input rules for names and messages.
//! - `sync` — client state: `cursor` (per-topic reconciliation), `timeline`
//!   (a chat room's messages and pending sends), `backoff`, and `live` (the
//!   tab's one WebSocket, hydrate build only).
//! - `app` — the HTML shell and the router.
//! - `routes` — one file per page.
//! - `features` — components with their server functions (rooms, chat, identity).
//! - `server` — everything ssr-only: config, state, store, broker, realtime, security.

pub mod app;
pub mod error;
pub mod features;
pub mod model;
pub mod protocol;
pub mod routes;
pub mod sync;
pub mod validate;

#[cfg(feature = "ssr")]
pub mod server;

/// Browser entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    tracing_wasm::set_as_global_default();
    leptos::mount::hydrate_body(app::App);
}
