//! TLS in the one binary (ssr only): when `tls-cert-file` and `tls-key-file`
//! are set, the serving path (`serve.rs`) wraps every accepted connection in
//! rustls before HTTP, so HTTPS and wss get the same timeouts and caps as
//! plain HTTP (the handshake itself must finish within the header timeout).
//! Optionally a plain listener (`http-redirect-addr`) sends every request to
//! the HTTPS site with a permanent redirect.

use axum::extract::{OriginalUri, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the certificate chain {0}: {1}")]
    Certificates(String, String),
    #[error("cannot read the private key {0}: {1}")]
    Key(String, String),
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The TLS acceptor for the certificate chain and key in these PEM files.
pub fn acceptor(cert_file: &Path, key_file: &Path) -> Result<TlsAcceptor, TlsError> {
    let shown = |p: &Path| p.display().to_string();
    let certs = CertificateDer::pem_file_iter(cert_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| TlsError::Certificates(shown(cert_file), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::Certificates(
            shown(cert_file),
            "no certificate in the file".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| TlsError::Key(shown(key_file), e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // The serving path speaks HTTP/1.1 (WebSocket upgrades included).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The router of the plain listener: every request is sent to `origin`
/// (the HTTPS site's canonical origin) with the same path and query.
pub fn redirect_router(origin: String) -> Router {
    Router::new()
        .fallback(redirect)
        .with_state(Arc::new(origin))
}

async fn redirect(State(origin): State<Arc<String>>, OriginalUri(uri): OriginalUri) -> Response {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, format!("{origin}{path}"))],
    )
        .into_response()
}
