//! `AppState`: what every handler, server function and session shares
//! (ssr only). Cheap to clone: everything is behind `Arc`.
//!
//! It also routes each topic to its log: durable kinds (`room:`) to the
//! `Store`, ephemeral kinds (`ticker:`) to the in-memory `EphemeralLogs`, so
//! transports and server functions never care which kind they serve.

use super::broker::{Broker, ConnId, Delivery};
use super::config::Settings;
use super::ephemeral::EphemeralLogs;
use super::metrics::Meters;
use super::shutdown::Shutdown;
use super::store::Store;
use crate::error::AppError;
use crate::model::Backfill;
use crate::protocol::{Event, EventData, Tick, Topic, TopicKind, Version};
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
    pub ephemeral: Arc<EphemeralLogs>,
    pub meters: Meters,
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
            ephemeral: Arc::new(EphemeralLogs::new(settings.ephemeral_window)),
            settings: Arc::new(settings),
            store,
            broker,
            shutdown,
            meters: Meters::new(),
            next_conn: Arc::new(AtomicU64::new(1)),
        }
    }

    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Broadcasts a persisted event to its topic's subscribers.
    pub fn publish(&self, event: &Event) {
        self.meters.room_in.increment(1);
        self.broker.publish(Delivery::new(event));
    }

    /// The newest version of any topic.
    pub async fn head(&self, topic: &Topic) -> Result<Version, AppError> {
        match topic.kind() {
            TopicKind::Room(_) => Ok(self.store.head(topic).await?),
            TopicKind::Ticker => Ok(self.ephemeral.head(topic)),
        }
    }

    /// Events of any topic after `after` (see `Store::since`).
    pub async fn since(
        &self,
        topic: &Topic,
        after: Version,
        limit: u32,
    ) -> Result<Backfill, AppError> {
        match topic.kind() {
            TopicKind::Room(_) => Ok(self.store.since(topic, after, limit).await?),
            TopicKind::Ticker => Ok(self.ephemeral.since(topic, after, limit)),
        }
    }

    /// Appends a tick to a ticker topic and broadcasts it.
    pub fn publish_tick(&self, topic: &Topic, tick: Tick) -> Result<Event, AppError> {
        if topic.kind() != TopicKind::Ticker {
            return Err(AppError::Validation(format!("{topic} does not take ticks")));
        }
        if !tick.price.is_finite() {
            return Err(AppError::Validation("a price is a finite number".into()));
        }
        let event = self
            .ephemeral
            .append(topic, EventData::Tick(tick), self.broker.as_ref())
            .ok_or(AppError::Internal)?;
        self.meters.ticker_in.increment(1);
        Ok(event)
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}
