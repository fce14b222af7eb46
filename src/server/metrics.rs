//! Prometheus metrics, served at `/metrics` (ssr only).
//!
//! One process-wide recorder (the `metrics` facade is global), installed on
//! first use. Hot paths hold pre-registered handles (`Meters`), so recording
//! is an atomic add with no registry lookup, and they record per write batch,
//! not per delivery, where they can. Names and labels are documented in the
//! README's "Metrics" section.

use crate::protocol::TopicKind;
use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Counter,
    Gauge, Histogram, Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const CONNECTIONS: &str = "tandem_connections";
pub const CONNECTS: &str = "tandem_connects_total";
pub const SUBSCRIPTIONS: &str = "tandem_subscriptions";
pub const EVENTS_IN: &str = "tandem_events_in_total";
pub const EVENTS_OUT: &str = "tandem_events_out_total";
pub const QUEUE_DEPTH: &str = "tandem_delivery_queue_depth";
pub const WIRE_WRITES: &str = "tandem_wire_writes_total";
pub const DROPPED: &str = "tandem_deliveries_dropped_total";
pub const COALESCED: &str = "tandem_deliveries_coalesced_total";
pub const RESUMES: &str = "tandem_resumes_total";
pub const RESETS: &str = "tandem_resets_total";
pub const GAP_REPAIRS: &str = "tandem_gap_repairs_total";
pub const FALLBACKS: &str = "tandem_fallbacks_total";
pub const REJECTIONS: &str = "tandem_rejections_total";
pub const STORE_SECONDS: &str = "tandem_store_seconds";
pub const PASSWORD_HASH_SECONDS: &str = "tandem_password_hash_seconds";
pub const REVOCATIONS: &str = "tandem_revocations_total";
pub const CLOSES: &str = "tandem_ws_closes_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the recorder (once per process) and returns its handle.
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(STORE_SECONDS.into()),
                &[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    1.0,
                ],
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(PASSWORD_HASH_SECONDS.into()),
                    &[
                        0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0, 2.5,
                    ],
                )
            })
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full(QUEUE_DEPTH.into()),
                    &[
                        0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0,
                    ],
                )
            });
        let recorder = match builder {
            Ok(b) => b.build_recorder(),
            // Only reachable with empty bucket lists, which the constants above are not.
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        describe();
        handle
    })
}

/// The text exposition of every metric, as an HTTP response.
fn exposition() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        render(),
    )
        .into_response()
}

/// `GET /metrics` on the public port: only with `Authorization: Bearer
/// <metrics-token>`; anyone else gets 404, as if the route did not exist.
pub async fn scrape_with_token(
    axum::extract::State(state): axum::extract::State<super::state::AppState>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if super::security::bearer_matches(&headers, &state.settings.metrics_token) {
        exposition()
    } else {
        axum::http::StatusCode::NOT_FOUND.into_response()
    }
}

/// Serves `GET /metrics` on its own (loopback) listener until shutdown.
pub async fn serve(listener: tokio::net::TcpListener, shutdown: super::shutdown::Shutdown) {
    let app = axum::Router::new().route("/metrics", axum::routing::get(|| async { exposition() }));
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.wait().await })
        .await;
    if let Err(e) = served {
        tracing::error!(error = %e, "the metrics listener failed");
    }
}

/// The text exposition of every metric.
pub fn render() -> String {
    let handle = install();
    handle.run_upkeep();
    handle.render()
}

fn describe() {
    describe_gauge!(CONNECTIONS, "Open live connections, by transport.");
    describe_counter!(CONNECTS, "Live connections accepted, by transport.");
    describe_gauge!(SUBSCRIPTIONS, "Active topic subscriptions.");
    describe_counter!(
        EVENTS_IN,
        "Events accepted (persisted or appended), by topic kind."
    );
    describe_counter!(
        EVENTS_OUT,
        "Event frames written to clients, by topic kind."
    );
    describe_histogram!(
        QUEUE_DEPTH,
        "Deliveries waiting in a connection's queue, sampled each time its task takes them (events its wire wrote were never queued)."
    );
    describe_counter!(
        WIRE_WRITES,
        "Event frames the broker wrote to a connection itself, without waking its task (a parked connection over plain TCP)."
    );
    describe_counter!(
        DROPPED,
        "Deliveries not queued for a connection (then repaired from the log), by reason."
    );
    describe_counter!(
        COALESCED,
        "Deliveries replaced by a newer value before being written."
    );
    describe_counter!(
        RESUMES,
        "Subscriptions resumed from a client version, by whether events were replayed."
    );
    describe_counter!(RESETS, "Subscriptions told to reload their snapshot.");
    describe_counter!(
        GAP_REPAIRS,
        "Gaps in a connection's stream filled from the log."
    );
    describe_counter!(FALLBACKS, "Connections served on a fallback rung, by rung.");
    describe_counter!(REJECTIONS, "Requests or frames refused, by reason.");
    describe_histogram!(
        STORE_SECONDS,
        Unit::Seconds,
        "Store operation latency, by operation."
    );
    describe_histogram!(
        PASSWORD_HASH_SECONDS,
        Unit::Seconds,
        "Time per Argon2id password hash or verification."
    );
    describe_counter!(
        CLOSES,
        "WebSocket connections ended, by why (the server's close reason, or how the peer went)."
    );
    describe_counter!(
        REVOCATIONS,
        "Live connections closed or subscriptions ended by a revocation, by kind."
    );
}

/// Pre-registered handles for the hot paths.
#[derive(Clone)]
pub struct Meters {
    /// The fallback rungs, in the order sse, long_poll, short_poll.
    pub rungs: [RungMeters; 3],
    pub ws_connections: Gauge,
    pub ws_connects: Counter,
    pub subscriptions: Gauge,
    pub room_in: Counter,
    pub ticker_in: Counter,
    pub presence_in: Counter,
    pub user_in: Counter,
    pub room_out: Counter,
    pub ticker_out: Counter,
    pub presence_out: Counter,
    pub user_out: Counter,
    pub queue_depth: Histogram,
    pub wire_writes: Counter,
    pub dropped_full: Counter,
    pub resumes_replayed: Counter,
    pub resumes_current: Counter,
    pub resets: Counter,
    pub gap_repairs: Counter,
    pub coalesced: Counter,
}

/// One fallback rung's meters: requests (or streams) served, counted both
/// as `tandem_connects_total{transport}` and `tandem_fallbacks_total{rung}`,
/// and how many are open (streams, long polls waiting).
#[derive(Clone)]
pub struct RungMeters {
    pub connects: Counter,
    pub fallbacks: Counter,
    pub open: Gauge,
}

/// Event frames written, by topic kind (added up per write batch).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KindCounts {
    pub room: u64,
    pub ticker: u64,
    pub presence: u64,
    pub user: u64,
}

impl KindCounts {
    pub fn add(&mut self, kind: TopicKind, n: u64) {
        match kind {
            TopicKind::Room => self.room += n,
            TopicKind::Ticker => self.ticker += n,
            TopicKind::Presence => self.presence += n,
            TopicKind::User | TopicKind::Lobby => self.user += n,
        }
    }
}

impl Meters {
    pub fn new() -> Self {
        install();
        // Declared now so they appear (at 0) before anything happens.
        let rung = |name: &'static str| RungMeters {
            connects: counter!(CONNECTS, "transport" => name),
            fallbacks: counter!(FALLBACKS, "rung" => name),
            open: gauge!(CONNECTIONS, "transport" => name),
        };
        Meters {
            rungs: [rung("sse"), rung("long_poll"), rung("short_poll")],
            ws_connections: gauge!(CONNECTIONS, "transport" => "ws"),
            ws_connects: counter!(CONNECTS, "transport" => "ws"),
            subscriptions: gauge!(SUBSCRIPTIONS),
            room_in: counter!(EVENTS_IN, "kind" => "room"),
            ticker_in: counter!(EVENTS_IN, "kind" => "ticker"),
            presence_in: counter!(EVENTS_IN, "kind" => "presence"),
            user_in: counter!(EVENTS_IN, "kind" => "user"),
            room_out: counter!(EVENTS_OUT, "kind" => "room"),
            ticker_out: counter!(EVENTS_OUT, "kind" => "ticker"),
            presence_out: counter!(EVENTS_OUT, "kind" => "presence"),
            user_out: counter!(EVENTS_OUT, "kind" => "user"),
            queue_depth: histogram!(QUEUE_DEPTH),
            wire_writes: counter!(WIRE_WRITES),
            dropped_full: counter!(DROPPED, "reason" => "queue_full"),
            resumes_replayed: counter!(RESUMES, "backfill" => "true"),
            resumes_current: counter!(RESUMES, "backfill" => "false"),
            resets: counter!(RESETS),
            gap_repairs: counter!(GAP_REPAIRS),
            coalesced: counter!(COALESCED),
        }
    }

    /// Counts one accepted event (persisted or appended) of `kind`.
    pub fn event_in(&self, kind: TopicKind) {
        match kind {
            TopicKind::Room => self.room_in.increment(1),
            TopicKind::Ticker => self.ticker_in.increment(1),
            TopicKind::Presence => self.presence_in.increment(1),
            TopicKind::User | TopicKind::Lobby => self.user_in.increment(1),
        }
    }

    /// Adds event frames written to clients.
    pub fn events_out(&self, written: KindCounts) {
        if written.room > 0 {
            self.room_out.increment(written.room);
        }
        if written.ticker > 0 {
            self.ticker_out.increment(written.ticker);
        }
        if written.presence > 0 {
            self.presence_out.increment(written.presence);
        }
        if written.user > 0 {
            self.user_out.increment(written.user);
        }
    }
}

impl Default for Meters {
    fn default() -> Self {
        Self::new()
    }
}

/// Counts a refusal (cheap enough off the hot path: a registry lookup).
pub fn reject(reason: &'static str) {
    counter!(REJECTIONS, "reason" => reason).increment(1);
}

/// Records one password hash's duration.
pub fn password_hash(seconds: f64) {
    histogram!(PASSWORD_HASH_SECONDS).record(seconds);
}

/// Counts an ended WebSocket connection (`reason` is one of the server's
/// fixed reason texts).
pub fn closed(reason: &'static str) {
    counter!(CLOSES, "reason" => reason).increment(1);
}

/// Counts what a revocation reached.
pub fn revoked(kind: &'static str, n: usize) {
    counter!(REVOCATIONS, "kind" => kind).increment(n as u64);
}

/// Records one store operation's latency.
pub fn store_op(op: &'static str, seconds: f64) {
    histogram!(STORE_SECONDS, "op" => op).record(seconds);
}
