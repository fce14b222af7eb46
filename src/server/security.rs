//! Request guards (ssr only): the same-origin rule for WebSocket upgrades and
//! state-changing requests (CSRF), security headers, and the display-name
//! cookie.
//!
//! Same-origin rule: a request that carries an `Origin` header must come from
//! the site itself (`Origin`'s host:port equals `Host`) or from a configured
//! allowed origin. Browsers always send `Origin` on WebSocket upgrades and on
//! POSTs, so a foreign page can neither open our socket with the user's
//! cookies nor post a server function. Clients that send no `Origin`
//! (command-line tools, native apps) are not browsers and carry no ambient
//! credentials, so they are let through.

use super::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Name of the cookie that keeps the display name.
pub const NAME_COOKIE: &str = "tandem_name";

/// Whether the request's `Origin` (if any) is the site's own or allowed.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // No Origin: not a browser request (see module docs). A browser's
        // `Sec-Fetch-Site: cross-site` without Origin is still refused.
        return !matches!(
            headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
            Some("cross-site")
        );
    };
    if allowed.iter().any(|a| a.eq_ignore_ascii_case(origin)) {
        return true;
    }
    let authority = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    match headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        Some(host) => !authority.is_empty() && authority.eq_ignore_ascii_case(host),
        None => false,
    }
}

/// Middleware: refuses cross-origin state-changing requests with 403 and adds
/// security headers to every response.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state && !origin_allowed(req.headers(), &state.settings.allowed_origins) {
        tracing::warn!(path = %req.uri().path(), "cross-origin request refused");
        super::metrics::reject("cross_origin_request");
        return (StatusCode::FORBIDDEN, "cross-origin request refused").into_response();
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval'; \
             style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
             object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'",
        ),
    );
    res
}

/// The display name from the request's cookie, if set and valid.
pub fn display_name(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == NAME_COOKIE)
        .and_then(|(_, v)| percent_decode(v))
        .and_then(|name| crate::validate::display_name(&name).ok())
}

/// Whether `headers` carry `Authorization: Bearer <token>` for a non-empty
/// `token` (compared in constant time).
pub fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    !token.is_empty()
        && given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The `Set-Cookie` value that stores `name` (already validated) for a year.
pub fn name_cookie(name: &str) -> String {
    format!(
        "{NAME_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly",
        percent_encode(name)
    )
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn same_origin_rule() {
        let ok = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
        ]);
        assert!(origin_allowed(&ok, &[]));
        let foreign = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://evil.example"),
        ]);
        assert!(!origin_allowed(&foreign, &[]));
        assert!(origin_allowed(&foreign, &["http://evil.example".into()]));
        let port = headers(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3001"),
        ]);
        assert!(!origin_allowed(&port, &[]));
        assert!(!origin_allowed(
            &headers(&[("host", "a"), ("origin", "null")]),
            &[]
        ));
        assert!(
            origin_allowed(&headers(&[("host", "a")]), &[]),
            "non-browser client"
        );
        assert!(!origin_allowed(
            &headers(&[("host", "a"), ("sec-fetch-site", "cross-site")]),
            &[]
        ));
    }

    #[test]
    fn bearer_tokens() {
        let h = headers(&[("authorization", "Bearer s3cret")]);
        assert!(bearer_matches(&h, "s3cret"));
        assert!(!bearer_matches(&h, "s3cre"));
        assert!(!bearer_matches(&h, ""));
        assert!(
            !bearer_matches(&headers(&[("authorization", "Bearer ")]), ""),
            "empty token never matches"
        );
        assert!(!bearer_matches(&headers(&[]), "s3cret"));
    }

    #[test]
    fn name_cookie_round_trips() {
        for name in ["Ada", "Zoë Li", "a;b=c", "%41"] {
            let set = name_cookie(name);
            let value = set.split(';').next().unwrap();
            let h = headers(&[("cookie", &format!("other=1; {value}; x=y"))]);
            assert_eq!(display_name(&h).as_deref(), Some(name), "{set}");
        }
        assert_eq!(
            display_name(&headers(&[("cookie", "tandem_name=%ZZ")])),
            None
        );
        assert_eq!(display_name(&headers(&[("cookie", "tandem_name=")])), None);
    }
}
