//! Server-build stand-in for the live client: same API, does nothing (there
//! is no socket during server rendering).

use super::ladder::Rung;
use super::{LinkStatus, TopicHandler};
use crate::error::AppError;
use crate::protocol::{Event, Topic};
use leptos::prelude::*;
use std::rc::Rc;
use uuid::Uuid;

/// See the browser build.
pub type SubId = u64;

#[derive(Clone, Copy)]
pub struct LiveClient {
    status: RwSignal<LinkStatus>,
    rung: RwSignal<Rung>,
}

pub fn provide_live_client() -> LiveClient {
    let client = LiveClient {
        status: RwSignal::new(LinkStatus::Connecting),
        rung: RwSignal::new(Rung::WebSocket),
    };
    provide_context(client);
    client
}

pub fn use_live_client() -> LiveClient {
    use_context::<LiveClient>().unwrap_or_else(provide_live_client)
}

impl LiveClient {
    pub fn status(&self) -> Signal<LinkStatus> {
        self.status.into()
    }

    pub fn rung(&self) -> Signal<Rung> {
        self.rung.into()
    }

    pub fn subscribe(&self, _topic: Topic, _handler: Rc<dyn TopicHandler>) -> SubId {
        0
    }

    pub fn unsubscribe(&self, _topic: Topic, _id: SubId) {}

    pub fn reconnect(&self) {}

    pub fn typing(&self, _topic: Topic) {}

    pub async fn send_write(
        &self,
        _topic: Topic,
        _client_id: Uuid,
        _write: crate::protocol::ChatWrite,
    ) -> Result<Event, AppError> {
        Err(AppError::Transport(
            "no live connection on the server".into(),
        ))
    }
}

/// A fresh random client id.
pub fn new_client_id() -> Uuid {
    uuid::Builder::from_random_bytes(rand::random::<[u8; 16]>()).into_uuid()
}

/// Never awaited in the server build (only browser-side code waits).
pub async fn sleep_ms(_ms: u32) {}

/// A uniform random number in [0, 1).
pub fn random() -> f64 {
    rand::random::<f64>()
}

/// Not used for timing in the server build.
pub fn now_ms() -> f64 {
    0.0
}

/// No setting on the server (see the browser build).
pub fn transport_setting() -> Option<Rung> {
    None
}

/// Nothing to save on the server (see the browser build).
pub fn set_transport_setting(_rung: Option<Rung>) {}
