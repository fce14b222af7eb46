//! `AppState`: what every handler, server function and session shares
//! (ssr only). Cheap to clone: everything is behind `Arc`.

use super::broker::{Broker, ConnId, Delivery};
use super::config::Settings;
use super::shutdown::Shutdown;
use super::store::Store;
use crate::protocol::Event;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub leptos: LeptosOptions,
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub broker: Arc<dyn Broker>,
    pub shutdown: Shutdown,
    next_conn: Arc<AtomicU64>,
}

impl AppState {
    pub fn new(
        leptos: LeptosOptions,
        settings: Settings,
        store: Arc<dyn Store>,
        broker: Arc<dyn Broker>,
        shutdown: Shutdown,
    ) -> Self {
        AppState {
            leptos,
            settings: Arc::new(settings),
            store,
            broker,
            shutdown,
            next_conn: Arc::new(AtomicU64::new(1)),
        }
    }

    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Broadcasts a persisted event to its topic's subscribers.
    pub fn publish(&self, event: &Event) {
        self.broker.publish(Delivery::new(event));
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}
