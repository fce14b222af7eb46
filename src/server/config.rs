//! Runtime configuration, read once at start from `Leptos.toml` (ssr only).
//!
//! The file has two parts: `[tandem]`, this app's settings, and
//! `[package.metadata.leptos]`, Leptos's own (site address, site root, ...),
//! which must come last in the file because Leptos reads from its header to
//! the end. Every key can be overridden by an environment variable:
//! `LEPTOS_<KEY>` for Leptos's keys, `TANDEM_<KEY>` for ours (key upper-cased,
//! dashes as underscores). Without a file, built-in defaults apply.

use leptos::config::LeptosOptions;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// This app's settings; see `Leptos.toml` for what each key means.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    pub database_url: String,
    pub seed_demo_data: bool,
    pub public_origins: Vec<String>,
    pub allowed_hosts: Vec<String>,
    pub max_frame_bytes: usize,
    pub max_ws_message_bytes: usize,
    pub heartbeat_interval_ms: u64,
    pub heartbeat_timeout_ms: u64,
    pub idle_close_ms: u64,
    pub hidden_tab_ms: u64,
    pub flush_window_ms: u64,
    pub ws_compression: bool,
    pub ws_compress_min_bytes: usize,
    pub outbox_capacity: usize,
    pub max_subscriptions: usize,
    pub max_bad_frames: u32,
    pub catch_up_limit: u32,
    pub history_page: u32,
    pub max_message_chars: usize,
    pub max_room_name_chars: usize,
    pub shutdown_grace_ms: u64,
    pub reconnect_window_ms: u64,
    pub publishers: Vec<String>,
    pub session_days: u32,
    pub login_burst: u32,
    pub login_refill_seconds: u64,
    pub login_ip_burst: u32,
    pub login_ip_refill_seconds: u64,
    pub signups_per_hour: u32,
    pub ephemeral_window: usize,
    pub metrics: bool,
    pub metrics_addr: String,
    pub metrics_token: String,
    pub max_ticker_topics: usize,
    pub max_http_connections: usize,
    pub http_header_timeout_ms: u64,
    pub request_timeout_ms: u64,
    pub max_body_bytes: usize,
    pub page_bytes: usize,
    pub messages_per_second: u32,
    pub messages_burst: u32,
    /// Chat writes per account, per minute, and the burst: one bucket for
    /// all of its connections and HTTP requests (`PerIp::write`).
    pub writes_per_minute: u32,
    pub writes_burst: u32,
    pub resumes_per_second: u32,
    pub resumes_burst: u32,
    pub max_refusals: u32,
    pub connects_per_minute: u32,
    pub polls_per_minute: u32,
    pub polls_burst: u32,
    pub long_poll_ms: u64,
    pub short_poll_ms: u64,
    pub backfills_per_minute: u32,
    pub backfills_burst: u32,
    pub rooms_per_hour: u32,
    pub max_ws_connections: usize,
    pub max_ws_connections_per_ip: usize,
    pub trusted_proxies: Vec<String>,
    pub room_page: u32,
    pub tls_cert_file: String,
    pub tls_key_file: String,
    pub http_redirect_addr: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "sqlite://tandem.db".into(),
            seed_demo_data: true,
            public_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_frame_bytes: 16 * 1024,
            max_ws_message_bytes: 64 * 1024,
            heartbeat_interval_ms: 20_000,
            heartbeat_timeout_ms: 45_000,
            idle_close_ms: 120_000,
            hidden_tab_ms: 60_000,
            flush_window_ms: 0,
            ws_compression: true,
            ws_compress_min_bytes: 128,
            outbox_capacity: 512,
            max_subscriptions: 64,
            max_bad_frames: 20,
            catch_up_limit: 1000,
            history_page: 50,
            max_message_chars: 2000,
            max_room_name_chars: 64,
            shutdown_grace_ms: 500,
            reconnect_window_ms: 5000,
            publishers: Vec::new(),
            session_days: 30,
            login_burst: 10,
            login_refill_seconds: 60,
            login_ip_burst: 50,
            login_ip_refill_seconds: 10,
            signups_per_hour: 20,
            ephemeral_window: 1024,
            metrics: true,
            metrics_addr: "127.0.0.1:9464".into(),
            metrics_token: String::new(),
            max_ticker_topics: 1000,
            max_http_connections: 4096,
            http_header_timeout_ms: 10_000,
            request_timeout_ms: 30_000,
            max_body_bytes: 64 * 1024,
            page_bytes: 256 * 1024,
            messages_per_second: 10,
            messages_burst: 30,
            writes_per_minute: 600,
            writes_burst: 30,
            resumes_per_second: 10,
            resumes_burst: 128,
            max_refusals: 100,
            connects_per_minute: 120,
            polls_per_minute: 1200,
            polls_burst: 60,
            long_poll_ms: 25_000,
            short_poll_ms: 2_000,
            backfills_per_minute: 600,
            backfills_burst: 20,
            rooms_per_hour: 20,
            max_ws_connections: 50_000,
            max_ws_connections_per_ip: 256,
            trusted_proxies: Vec::new(),
            room_page: 50,
            tls_cert_file: String::new(),
            tls_key_file: String::new(),
            http_redirect_addr: String::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid TOML in {path}: {source}")]
    Toml {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("invalid [tandem] settings: {0}")]
    Settings(String),
    #[error("invalid Leptos settings: {0}")]
    Leptos(String),
}

/// Everything the server needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    pub leptos: LeptosOptions,
    pub settings: Settings,
}

impl Config {
    /// Reads `path` if it exists, else uses defaults; then applies env overrides.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => {
                return Err(ConfigError::Read {
                    path: shown,
                    source,
                })
            }
        };
        let (table, leptos) = match &text {
            Some(text) => {
                let doc: toml::Table = toml::from_str(text).map_err(|e| ConfigError::Toml {
                    path: shown.clone(),
                    source: Box::new(e),
                })?;
                let table = match doc.get("tandem") {
                    Some(toml::Value::Table(t)) => t.clone(),
                    _ => toml::Table::new(),
                };
                let leptos = leptos::config::get_config_from_str(text)
                    .map_err(|e| ConfigError::Leptos(e.to_string()))?;
                (table, leptos)
            }
            None => (
                toml::Table::new(),
                leptos::config::get_configuration(None)
                    .map_err(|e| ConfigError::Leptos(e.to_string()))?
                    .leptos_options,
            ),
        };
        let settings = settings_from(table, |k| std::env::var(k).ok())?;
        Ok(Config { leptos, settings })
    }
}

/// Builds settings from the `[tandem]` table, each key overridable by `TANDEM_<KEY>`.
/// An env value is read as TOML (numbers, booleans, arrays) and else as a string.
pub fn settings_from(
    mut table: toml::Table,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let defaults = toml::Table::try_from(Settings::default())
        .map_err(|e| ConfigError::Settings(e.to_string()))?;
    for key in defaults.keys() {
        let var = format!("TANDEM_{}", key.to_uppercase().replace('-', "_"));
        if let Some(raw) = env(&var) {
            // Text settings take the value as is; others parse it as TOML.
            let value = if defaults[key].is_str() {
                toml::Value::String(raw)
            } else {
                toml::from_str::<toml::Table>(&format!("v = {raw}"))
                    .ok()
                    .and_then(|mut t| t.remove("v"))
                    .unwrap_or(toml::Value::String(raw))
            };
            table.insert(key.clone(), value);
        }
    }
    let settings: Settings = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Settings(e.to_string()))?;
    settings.check()?;
    Ok(settings)
}

impl Settings {
    /// The limit of one page read from a log: `catch-up-limit` events and
    /// `page-bytes` bytes.
    pub fn page(&self) -> crate::server::store::PageLimit {
        crate::server::store::PageLimit {
            events: self.catch_up_limit,
            bytes: self.page_bytes,
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        let fail = |m: &str| Err(ConfigError::Settings(m.to_owned()));
        if self.max_frame_bytes < 256 || self.max_frame_bytes > self.max_ws_message_bytes {
            return fail("max-frame-bytes must be at least 256 and at most max-ws-message-bytes");
        }
        if self.heartbeat_interval_ms == 0
            || self.heartbeat_timeout_ms <= self.heartbeat_interval_ms
        {
            return fail("heartbeat-timeout-ms must exceed heartbeat-interval-ms (> 0)");
        }
        if self.outbox_capacity == 0 || self.history_page == 0 || self.catch_up_limit == 0 {
            return fail("outbox-capacity, history-page and catch-up-limit must be positive");
        }
        if self.session_days == 0 || self.login_burst == 0 || self.login_ip_burst == 0 {
            return fail("session-days, login-burst and login-ip-burst must be positive");
        }
        if self.tls_cert_file.is_empty() != self.tls_key_file.is_empty() {
            return fail("tls-cert-file and tls-key-file go together");
        }
        if !self.http_redirect_addr.is_empty() && self.tls_cert_file.is_empty() {
            return fail(
                "http-redirect-addr redirects to HTTPS: set tls-cert-file and tls-key-file too",
            );
        }
        if self.max_http_connections == 0
            || self.http_header_timeout_ms == 0
            || self.request_timeout_ms == 0
            || self.max_body_bytes == 0
            || self.page_bytes == 0
        {
            return fail("max-http-connections, http-header-timeout-ms, request-timeout-ms, max-body-bytes and page-bytes must be positive");
        }
        if self.long_poll_ms == 0
            || self.long_poll_ms > 30_000
            || self.long_poll_ms + 1000 > self.request_timeout_ms
        {
            return fail("long-poll-ms must be 1 to 30000 and at least a second below request-timeout-ms (the reference client gives a long poll 40 s)");
        }
        if self.writes_per_minute == 0 || self.writes_burst == 0 {
            return fail("writes-per-minute and writes-burst must be positive");
        }
        if self.short_poll_ms == 0 || self.polls_per_minute == 0 || self.polls_burst == 0 {
            return fail("short-poll-ms, polls-per-minute and polls-burst must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_file_values_and_env_overrides_layer() {
        let table: toml::Table =
            toml::from_str("max-frame-bytes = 4096\ndatabase-url = \"sqlite://a.db\"").unwrap();
        let s = settings_from(table, |k| match k {
            "TANDEM_DATABASE_URL" => Some("sqlite://b.db".into()),
            "TANDEM_SEED_DEMO_DATA" => Some("false".into()),
            "TANDEM_PUBLIC_ORIGINS" => Some("[\"https://x.example\"]".into()),
            "TANDEM_METRICS_TOKEN" => Some("12345".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.max_frame_bytes, 4096);
        assert_eq!(s.metrics_token, "12345", "text settings stay text");
        assert_eq!(s.database_url, "sqlite://b.db");
        assert!(!s.seed_demo_data);
        assert_eq!(s.public_origins, vec!["https://x.example".to_string()]);
        assert_eq!(
            s.heartbeat_interval_ms,
            Settings::default().heartbeat_interval_ms
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let t: toml::Table = toml::from_str("max-fram-bytes = 1").unwrap();
        assert!(settings_from(t, |_| None).is_err());
        let t: toml::Table =
            toml::from_str("heartbeat-timeout-ms = 10\nheartbeat-interval-ms = 20").unwrap();
        assert!(settings_from(t, |_| None).is_err());
        assert!(
            settings_from(toml::Table::new(), |k| (k == "TANDEM_MAX_FRAME_BYTES")
                .then(|| "lots".into()))
            .is_err()
        );
    }

    #[test]
    fn the_shipped_leptos_toml_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("Leptos.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let doc: toml::Table = toml::from_str(&text).unwrap();
        let table = doc["tandem"].as_table().unwrap().clone();
        let shipped = settings_from(table, |_| None).unwrap();
        assert_eq!(
            shipped,
            Settings::default(),
            "Leptos.toml documents the defaults"
        );
        let leptos = leptos::config::get_config_from_str(&text).unwrap();
        assert_eq!(leptos.site_addr.to_string(), "127.0.0.1:3000");
    }
}
