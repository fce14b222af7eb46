//! Credentials carried by requests (ssr only): the session cookie (through
//! the `cookie` crate) and bearer tokens compared in constant time.

use axum::http::{header, HeaderMap};
use cookie::{Cookie, SameSite};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session cookie's name: with the `__Host-` prefix whenever the site is
/// https (the browser then only accepts it `Secure`, for this host, on `/`).
pub fn session_cookie_name(https: bool) -> &'static str {
    if https {
        "__Host-tandem_session"
    } else {
        "tandem_session"
    }
}

/// The value of the first cookie named `name` across all `Cookie` headers.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse_encoded)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that keeps a session secret for `max_age_secs`:
/// `HttpOnly`, `SameSite=Lax`, `Path=/`, and `Secure` (with the `__Host-`
/// name) when the site is https. `max_age_secs = 0` clears it.
pub fn session_cookie(secret: &str, https: bool, max_age_secs: i64) -> String {
    Cookie::build((session_cookie_name(https), secret))
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age_secs))
        .same_site(SameSite::Lax)
        .http_only(true)
        .secure(https)
        .build()
        .encoded()
        .to_string()
}

/// Whether `headers` carry `Authorization: Bearer <token>` for a non-empty
/// `token`. Both sides are hashed first, so the comparison takes the same
/// time whatever the lengths and contents.
pub fn bearer_matches(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let (a, b) = (Sha256::digest(given), Sha256::digest(token));
    !token.is_empty() && bool::from(a.ct_eq(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn bearer_tokens() {
        let h = headers(&[("authorization", "Bearer s3cret")]);
        assert!(bearer_matches(&h, "s3cret"));
        assert!(!bearer_matches(&h, "s3cre"));
        assert!(!bearer_matches(&h, "s3creX"), "same length, other token");
        assert!(!bearer_matches(&h, ""));
        assert!(
            !bearer_matches(&headers(&[("authorization", "Bearer ")]), ""),
            "empty token never matches"
        );
        assert!(!bearer_matches(&headers(&[]), "s3cret"));
    }

    #[test]
    fn session_cookies() {
        let set = session_cookie("abc", false, 60);
        assert!(set.starts_with("tandem_session=abc"), "{set}");
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.contains("Path=/"));
        assert!(!set.contains("Secure"));
        let secure = session_cookie("abc", true, 60);
        assert!(secure.starts_with("__Host-tandem_session=abc") && secure.contains("Secure"));
        assert!(!secure.contains("Domain"), "__Host- cookies have no Domain");
        let h = headers(&[
            ("cookie", "a=1; tandem_session=xyz"),
            ("cookie", "tandem_session=later"),
        ]);
        assert_eq!(cookie_value(&h, "tandem_session").as_deref(), Some("xyz"));
        assert_eq!(
            cookie_value(&headers(&[("cookie", "tandem_session=")]), "tandem_session"),
            None
        );
    }
}
