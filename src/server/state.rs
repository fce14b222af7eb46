//! `AppState`: what every handler, server function and session shares
//! (ssr only). Cheap to clone: everything is behind `Arc`.

use super::accounts::live::LiveConnections;
use super::accounts::throttle::LoginThrottle;
use super::accounts::Accounts;
use super::broker::{Broker, ConnId};
use super::config::Settings;
use super::ephemeral::EphemeralLogs;
use super::limits::PerIp;
use super::logs::Logs;
use super::metrics::Meters;
use super::presence::PresenceBoard;
use super::realtime::session::Services;
use super::security::Rules;
use super::shutdown::Shutdown;
use super::store::Store;
use super::unread::UnreadBoard;
use axum::extract::FromRef;
use leptos::config::LeptosOptions;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The server's shared state: one `Arc`, so the clones that every request
/// makes (each middleware, each extractor) are one counter each, not one
/// per field (they were 7% of a long poll's CPU).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What `AppState` shares (reached through it: `state.settings`, ...).
pub struct Shared {
    pub leptos: Arc<LeptosOptions>,
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    /// Users, sessions, tokens, memberships.
    pub accounts: Arc<dyn Accounts>,
    /// Live connections by credential, for revocations.
    pub live: LiveConnections,
    /// Credentials resolved recently (`accounts::recent`).
    pub recent: Arc<crate::server::accounts::recent::Recent>,
    /// Rooms read as public (the authorization rule's).
    pub public_rooms: Arc<crate::server::accounts::recent::PublicRooms>,
    pub throttle: Arc<LoginThrottle>,
    /// Every topic's log, routed by kind.
    pub logs: Arc<Logs>,
    pub presence: Arc<PresenceBoard>,
    pub unread: Arc<UnreadBoard>,
    pub broker: Arc<dyn Broker>,
    pub shutdown: Shutdown,
    pub meters: Arc<Meters>,
    /// The request rules (hosts, origins), fixed at start.
    pub rules: Arc<Rules>,
    /// Rate limits and caps per client address.
    pub limits: Arc<PerIp>,
    /// The flush window's one timer (`None` when `flush-window-ms` is 0).
    pub flusher: Option<Arc<crate::server::realtime::flush::Flusher>>,
    next_conn: Arc<AtomicU64>,
}

impl AppState {
    pub fn new(
        leptos: LeptosOptions,
        settings: Settings,
        store: Arc<dyn Store>,
        accounts: Arc<dyn Accounts>,
        broker: Arc<dyn Broker>,
        shutdown: Shutdown,
        rules: Rules,
    ) -> Self {
        let limits = Arc::new(PerIp::new(&settings));
        let ephemeral = Arc::new(EphemeralLogs::new(
            settings.ephemeral_window,
            settings.max_ticker_topics,
        ));
        AppState(Arc::new(Shared {
            leptos: Arc::new(leptos),
            presence: PresenceBoard::new(ephemeral.clone(), broker.clone()),
            unread: UnreadBoard::new(store.clone(), ephemeral.clone(), broker.clone()),
            logs: Arc::new(Logs::new(store.clone(), ephemeral)),
            settings: Arc::new(settings.clone()),
            store,
            accounts,
            live: LiveConnections::default(),
            recent: Arc::default(),
            public_rooms: Arc::default(),
            throttle: Arc::new(LoginThrottle::new(&settings)),
            broker,
            shutdown,
            meters: Arc::new(Meters::new()),
            rules: Arc::new(rules),
            limits,
            flusher: crate::server::realtime::flush::Flusher::of(std::time::Duration::from_millis(
                settings.flush_window_ms,
            )),
            next_conn: Arc::new(AtomicU64::new(1)),
        }))
    }

    /// The session cookie's name (`__Host-` prefixed on https sites).
    pub fn session_cookie(&self) -> &'static str {
        super::security::session_cookie_name(self.rules.https())
    }

    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// What a live session needs, over this server's logs and store.
    pub fn services(&self) -> Services {
        Services {
            backend: Arc::new(self.clone()),
            broker: self.broker.clone(),
            settings: self.settings.clone(),
            meters: self.meters.clone(),
        }
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        (*state.leptos).clone()
    }
}

impl FromRef<AppState> for Shutdown {
    fn from_ref(state: &AppState) -> Self {
        state.shutdown.clone()
    }
}
