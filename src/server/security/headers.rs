//! Security headers (ssr only), set through tower-http layers, and the
//! Content Security Policy of pages, which carries the per-response nonce
//! that leptos_axum puts on every inline script it writes.
//!
//! The policy allows no inline script without the response's nonce (no
//! `'unsafe-inline'`), wasm compilation (`'wasm-unsafe-eval'`), and nothing
//! from elsewhere. Responses that are not pages (server functions, files,
//! errors) get the same policy without a nonce.

use axum::http::{header, HeaderValue};
use axum::Router;
use tower_http::set_header::SetResponseHeaderLayer;

/// The policy, with the response's nonce for pages.
pub fn csp(nonce: Option<&str>) -> String {
    let scripts = match nonce {
        Some(n) => format!("'self' 'nonce-{n}' 'wasm-unsafe-eval'"),
        None => "'self' 'wasm-unsafe-eval'".to_owned(),
    };
    format!(
        "default-src 'self'; script-src {scripts}; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; \
         form-action 'self'"
    )
}

/// Sets the page's policy with this response's nonce (called while the page
/// renders; `leptos_axum` made the nonce for this response).
pub fn set_page_csp() {
    let Some(res) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() else {
        return;
    };
    let nonce = leptos::nonce::use_nonce();
    if let Ok(value) = HeaderValue::from_str(&csp(nonce.as_deref())) {
        res.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Adds the security headers to every response of `router`; HSTS when the
/// site is served over HTTPS.
pub fn apply<S: Clone + Send + Sync + 'static>(router: Router<S>, https: bool) -> Router<S> {
    let fixed = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    let mut router = router.layer(SetResponseHeaderLayer::if_not_present(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&csp(None)).unwrap_or(HeaderValue::from_static("default-src 'none'")),
    ));
    for (name, value) in fixed {
        router = router.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ));
    }
    if https {
        router = router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    router
}

#[cfg(test)]
mod tests {
    use super::csp;

    #[test]
    fn no_inline_script_without_the_nonce() {
        let page = csp(Some("abc"));
        assert!(page.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval';"));
        assert!(!page.contains("unsafe-inline"));
        assert!(!csp(None).contains("nonce") && !csp(None).contains("unsafe-inline"));
    }
}
