//! Credentials carried by requests (ssr only): the display-name cookie
//! (through the `cookie` crate) and the publish token (compared in constant
//! time, without leaking its length).

use axum::http::{header, HeaderMap};
use cookie::{Cookie, SameSite};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Name of the cookie that keeps the display name.
pub const NAME_COOKIE: &str = "tandem_name";

/// The display name from the request's cookie, if set and valid.
pub fn display_name(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse_encoded)
        .filter_map(Result::ok)
        .find(|c| c.name() == NAME_COOKIE)
        .and_then(|c| super::super::validate::display_name(c.value()).ok())
}

/// The `Set-Cookie` value that stores `name` (already validated) for a
/// year; `Secure` when the site is served over HTTPS.
pub fn name_cookie(name: &str, secure: bool) -> String {
    Cookie::build((NAME_COOKIE, name))
        .path("/")
        .max_age(cookie::time::Duration::days(365))
        .same_site(SameSite::Lax)
        .http_only(true)
        .secure(secure)
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
    fn name_cookie_round_trips() {
        for name in ["Ada", "Zoë Li", "a;b=c", "%41", "\"quoted\""] {
            let set = name_cookie(name, false);
            assert!(
                set.contains("HttpOnly") && set.contains("SameSite=Lax") && !set.contains("Secure")
            );
            let value = set.split(';').next().unwrap();
            let h = headers(&[("cookie", &format!("other=1; {value}; x=y"))]);
            assert_eq!(display_name(&h).as_deref(), Some(name), "{set}");
        }
        assert!(name_cookie("a", true).contains("Secure"));
        assert_eq!(
            display_name(&headers(&[("cookie", "tandem_name=%ZZ")])).as_deref(),
            Some("%ZZ"),
            "an invalid escape is kept as written"
        );
        assert_eq!(display_name(&headers(&[("cookie", "tandem_name=")])), None);
    }
}
