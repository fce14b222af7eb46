//! Everything that runs only on the server (ssr), gated once in `lib.rs`.
//!
//! `run` is the whole server: open the store (migrating and seeding it) and
//! start the pump from its commit feed to the broker, build the shared
//! `AppState`, serve HTTP and WebSocket on the given listener until the
//! shutdown signal, let every session say goodbye, then close the store.

pub mod accounts;
pub mod broker;
pub mod chat;
pub mod config;
pub mod ephemeral;
pub mod limits;
pub mod logs;
pub mod mailbox;
pub mod metrics;
pub mod presence;
pub mod realtime;
pub mod security;
pub mod serve;
pub mod shutdown;
pub mod site;
pub mod state;
pub mod store;
pub mod tls;
pub mod unread;
pub mod validate;

use crate::app::{shell, App};
use axum::routing::get;
use axum::Router;
use broker::LocalBroker;
use config::Config;
use leptos_axum::{generate_route_list, LeptosRoutes};
use shutdown::Shutdown;
use state::AppState;
use std::sync::Arc;
use std::time::Duration;
use store::Hooks;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The longest a stop waits for sessions beyond their goodbye bound: a
/// session may be inside a store call (bounded by SQLite's busy timeout).
const DRAIN_SLACK: Duration = Duration::from_secs(15);

/// The app's page routes, generated once per process.
///
/// Leptos generates the list by rendering the app with every resource
/// suppressed, and that suppression is a process-wide flag
/// (`leptos_server::SuppressResourceLoad`): while any router is being built,
/// every page rendering anywhere in the process has its resources
/// suppressed, and its response never completes. Generating the list once,
/// before any server of the process can serve, means no rendering can ever
/// overlap a generation (`tests/pages.rs` starts servers while rendering).
fn page_routes() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The HTTP routes: `/ws`, `/sse`, `/poll`, `/healthz`, the Leptos pages and server functions
/// (`/api/...`), the site's files (`site`), and a 404 page for the rest.
///
/// `/sse` and `/poll` are routed around the pages' middleware: a poll per
/// delivery is the long-polling rung's whole cost, and the rules that
/// middleware applies (Host, Origin, shutdown, credentials) are checked by
/// the rungs' own gate (`realtime::rungs::admit`); they keep the security
/// headers and the request timeout, and are not compressed (a poll answer
/// is a few hundred bytes; an event stream is never compressed) or traced
/// per request.
pub fn router(state: AppState) -> Router {
    let routes = page_routes();
    let options = (*state.leptos).clone();
    let mut router = site::router(&options);
    if state.settings.metrics && !state.settings.metrics_token.is_empty() {
        router = router.route("/metrics", get(metrics::scrape_with_token));
    }
    let https = state.rules.https();
    let body_limit = state.settings.max_body_bytes;
    let request_timeout = Duration::from_millis(state.settings.request_timeout_ms);
    let router = router
        .route("/ws", get(realtime::ws::upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .leptos_routes(&state, routes, move || shell(options.clone()))
        // Files are served above; what is left is a page that does not exist.
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(axum::middleware::from_fn(api_error_status))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            accounts::attach,
        ))
        .layer(RequestBodyLimitLayer::new(body_limit))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.shutdown.clone(),
            shutdown::refuse_when_stopping,
        ))
        .with_state(state.clone());
    let rungs = Router::new()
        .route("/sse", get(realtime::sse::stream))
        .route("/poll", get(realtime::poll::poll))
        // Until the answer starts (a stream's body is not bounded by it).
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .with_state(state);
    security::apply_headers(router, https)
        .layer(CompressionLayer::new())
        .layer(TraceLayer::new_for_http())
        .merge(security::apply_headers(rungs, https))
}

/// Gives server-function errors their proper HTTP status (400, 404, 409...).
/// Leptos answers every failed server function with 500, including when it
/// could not decode the arguments; the body is our `AppError`, which knows
/// its status. (A plain form post without JavaScript is answered with a
/// redirect back instead, and is left alone.)
async fn api_error_status(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::StatusCode;
    let is_api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    if !is_api || res.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    if let Ok(err) = serde_json::from_slice::<crate::error::AppError>(&bytes) {
        parts.status = StatusCode::from_u16(err.status()).unwrap_or(parts.status);
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Rules(#[from] security::RulesError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// Serves until `shutdown` is triggered, then stops gracefully (see
/// `shutdown.rs` for the order). Returns once the store is closed.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), ServeError> {
    run_with(config, listener, shutdown, Hooks::default()).await
}

/// `run`, with test seams in the store.
pub async fn run_with(
    config: Config,
    listener: TcpListener,
    shutdown: Shutdown,
    hooks: Hooks,
) -> Result<(), ServeError> {
    let settings = config.settings;
    let (store, accounts, feed) = store::open(&settings.database_url, hooks).await?;
    if settings.seed_demo_data && store::seed_demo(store.as_ref()).await? {
        tracing::info!("seeded demo rooms into the empty database");
    }
    let tls = if settings.tls_cert_file.is_empty() {
        None
    } else {
        Some(tls::acceptor(
            settings.tls_cert_file.as_ref(),
            settings.tls_key_file.as_ref(),
        )?)
    };
    let rules = security::Rules::new(
        &settings.public_origins,
        &settings.allowed_hosts,
        listener.local_addr()?,
        tls.is_some(),
    )?;
    // Embedded: the files are decompressed and gzipped once (CPU-bound).
    let options = config.leptos.clone();
    tokio::task::spawn_blocking(move || site::prepare(&options))
        .await
        .map_err(std::io::Error::other)?;
    let drain_limit = Duration::from_millis(settings.shutdown_grace_ms.max(100)) + DRAIN_SLACK;
    let broker: Arc<dyn broker::Broker> = Arc::new(LocalBroker::default());
    let state = AppState::new(
        config.leptos,
        settings,
        store.clone(),
        accounts,
        broker.clone(),
        shutdown.clone(),
        rules,
    );
    let pump = tokio::spawn(broker::pump(
        feed,
        broker,
        state.meters.clone(),
        state.logs.heads(),
    ));
    tokio::spawn({
        // Addresses seen once do not stay in the rate limiters' memory.
        let (limits, throttle, shutdown) = (
            state.limits.clone(),
            state.throttle.clone(),
            shutdown.clone(),
        );
        async move {
            let mut every = tokio::time::interval(Duration::from_secs(60));
            loop {
                tokio::select! {
                    _ = every.tick() => {
                        limits.forget_idle();
                        throttle.forget_idle();
                    }
                    _ = shutdown.wait() => break,
                }
            }
        }
    });
    if state.settings.metrics && !state.settings.metrics_addr.is_empty() {
        let private = tokio::net::TcpListener::bind(&state.settings.metrics_addr).await?;
        tracing::info!(addr = %private.local_addr()?, "metrics listening");
        tokio::spawn(metrics::serve(private, shutdown.clone()));
    }
    tracing::info!(addr = %listener.local_addr()?, "listening");
    let limits = serve::Limits {
        max_connections: state.settings.max_http_connections,
        header_timeout: Duration::from_millis(state.settings.http_header_timeout_ms),
        tls,
    };
    if !state.settings.http_redirect_addr.is_empty() {
        let plain = TcpListener::bind(&state.settings.http_redirect_addr).await?;
        let target = state.rules.public[0].to_string();
        tracing::info!(addr = %plain.local_addr()?, to = %target, "redirecting plain HTTP");
        let plain_limits = serve::Limits {
            tls: None,
            ..limits.clone()
        };
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let redirect = tls::redirect_router(target);
            if let Err(e) = serve::serve(
                plain,
                redirect,
                plain_limits,
                async move { stop.wait().await },
            )
            .await
            {
                tracing::error!(error = %e, "the redirect listener failed");
            }
        });
    }
    let stopping = shutdown.clone();
    let stop = async move {
        stopping.wait().await;
        // New requests get 503 from now on (`refuse_when_stopping`); the
        // listener stays open until every session said goodbye.
        if tokio::time::timeout(drain_limit, stopping.drained())
            .await
            .is_err()
        {
            tracing::error!(
                sessions = stopping.live_sessions(),
                "sessions still open after the drain limit; stopping anyway"
            );
        }
    };
    serve::serve(listener, router(state), limits, stop).await?;
    store.close().await;
    if let Err(e) = pump.await {
        tracing::error!(error = %e, "the feed pump failed");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Sets the HTTP status of the page being rendered (server-side rendering only).
pub fn set_page_status(status: u16) {
    if let Some(res) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        res.set_status(
            axum::http::StatusCode::from_u16(status)
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
        );
    }
}

/// The calling client's address, inside a server function (see
/// `limits::PerIp::client_ip`).
pub async fn client_ip(state: &AppState) -> Result<std::net::IpAddr, crate::error::AppError> {
    use axum::extract::ConnectInfo;
    let (ConnectInfo(peer), headers): (ConnectInfo<std::net::SocketAddr>, axum::http::HeaderMap) =
        leptos_axum::extract().await.map_err(|e| {
            tracing::error!(error = %e, "no peer address for a server function");
            crate::error::AppError::Internal
        })?;
    Ok(state.limits.client_ip(peer, &headers))
}

/// The answer to a server function refused by a rate limit: 429 with
/// `Retry-After`.
pub fn limited(exceeded: limits::Exceeded) -> crate::error::AppError {
    metrics::reject("rate_limited");
    if let Some(res) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(v) = axum::http::HeaderValue::from_str(&exceeded.retry_after_secs().to_string()) {
            res.insert_header(axum::http::header::RETRY_AFTER, v);
        }
    }
    crate::error::AppError::Limit(format!("too many requests: {}", exceeded.what))
}

/// Who the request acts for, inside a server function or a page (resolved
/// once per request by `accounts::attach`). An invalid bearer token is
/// `Unauthenticated`.
pub fn principal() -> Result<accounts::Principal, crate::error::AppError> {
    let parts = leptos::prelude::use_context::<http::request::Parts>().ok_or_else(|| {
        tracing::error!("no request parts in the server-function context");
        crate::error::AppError::Internal
    })?;
    match parts.extensions.get::<accounts::Auth>() {
        Some(accounts::Auth(result)) => result.clone(),
        None => Ok(accounts::Principal::Anonymous),
    }
}

/// The client's address and user agent, inside a server function.
pub async fn client(state: &AppState) -> Result<accounts::service::Client, crate::error::AppError> {
    let ip = client_ip(state).await?;
    let user_agent = leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|p| {
            p.headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_default();
    Ok(accounts::service::Client { ip, user_agent })
}

/// Sets the session cookie on the response being built (`None` clears it).
pub fn set_session_cookie(
    state: &AppState,
    secret: Option<&str>,
) -> Result<(), crate::error::AppError> {
    let https = state.rules.https();
    let max_age = match secret {
        Some(_) => i64::from(state.settings.session_days) * 86_400,
        None => 0,
    };
    let value = security::session_cookie(secret.unwrap_or(""), https, max_age);
    let value =
        axum::http::HeaderValue::from_str(&value).map_err(|_| crate::error::AppError::Internal)?;
    if let Some(res) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        res.append_header(axum::http::header::SET_COOKIE, value);
    }
    Ok(())
}

/// After a plain form post (no JavaScript: the request accepts HTML), answer
/// with a redirect to `to`; a script-driven call gets the plain answer and
/// navigates itself.
pub fn redirect_form_post(to: &str) {
    let Some(parts) = leptos::prelude::use_context::<http::request::Parts>() else {
        return;
    };
    let plain_form = parts
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    if plain_form {
        if let (Some(res), Ok(to)) = (
            leptos::prelude::use_context::<leptos_axum::ResponseOptions>(),
            axum::http::HeaderValue::from_str(to),
        ) {
            res.set_status(axum::http::StatusCode::SEE_OTHER);
            res.insert_header(axum::http::header::LOCATION, to);
        }
    }
}

/// The shared state, inside a server function.
pub fn app_state() -> Result<AppState, crate::error::AppError> {
    leptos::prelude::use_context::<AppState>().ok_or_else(|| {
        tracing::error!("AppState missing from the server-function context");
        crate::error::AppError::Internal
    })
}
