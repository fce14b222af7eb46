//! The server binary: read `Leptos.toml` (or `$TANDEM_CONFIG`), bind, serve
//! until SIGTERM or Ctrl-C, then shut down gracefully.

use anyhow::Context;
use std::path::PathBuf;
use tandem::server::{config::Config, run, shutdown::Shutdown};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tandem=info,sqlx=warn".into()),
        )
        .init();
    let path = std::env::var_os("TANDEM_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("Leptos.toml"));
    let config = Config::load(&path).with_context(|| format!("loading {}", path.display()))?;
    let addr = config.leptos.site_addr;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(url = %format!("http://{addr}"), db = %config.settings.database_url, "tandem starting");
    let shutdown = Shutdown::default();
    tokio::spawn(signal_shutdown(shutdown.clone()));
    run(config, listener, shutdown).await?;
    Ok(())
}

async fn signal_shutdown(shutdown: Shutdown) {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = term => tracing::info!("SIGTERM: shutting down"),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: shutting down"),
    }
    shutdown.trigger();
}
