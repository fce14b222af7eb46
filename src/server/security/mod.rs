//! Request guards (ssr only): the request rules (`origin`: allowed hosts,
//! and the Origin rule for state-changing requests and WebSocket upgrades,
//! against CSRF and cross-site WebSocket hijacking), security headers and
//! the pages' Content Security Policy (`headers`), and the credentials
//! requests carry (`cookies`).

mod cookies;
mod headers;
mod origin;

pub use cookies::{bearer_matches, cookie_value, session_cookie, session_cookie_name};
pub use headers::{apply as apply_headers, csp, set_page_csp};
pub use origin::{Origin, Refusal, Rules, RulesError};

use super::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The answer to a request refused by a rule.
pub fn refused(refusal: Refusal) -> Response {
    match refusal {
        Refusal::Host => {
            super::metrics::reject("host_not_allowed");
            (StatusCode::BAD_REQUEST, "host not allowed").into_response()
        }
        Refusal::Origin => {
            super::metrics::reject("cross_origin_request");
            (StatusCode::FORBIDDEN, "cross-origin request refused").into_response()
        }
    }
}

/// Middleware, for every request: the Host rule; the Origin rule for
/// state-changing requests (except those with a bearer token); and no
/// redirect to another site. (Leptos
/// answers a plain form post, one that accepts HTML, with a redirect to its
/// `Referer`: a `Referer` that is not one of our pages is dropped, so the
/// redirect goes to `/`.)
pub async fn guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    if let Err(r) = state.rules.check_host(req.headers()) {
        tracing::warn!(host = ?req.headers().get(header::HOST), "host not allowed");
        return refused(r);
    }
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    // A bearer token is not an ambient credential (a page cannot make a
    // browser send one to another site), so such requests are exempt from
    // the Origin rule; they never act on the request's cookies.
    let bearer = super::accounts::bearer(req.headers()).is_some();
    if changes_state && !bearer {
        if let Err(r) = state.rules.check_origin(req.headers()) {
            tracing::warn!(path = %req.uri().path(), "cross-origin request refused");
            return refused(r);
        }
    }
    if req.uri().path().starts_with("/api/") {
        let foreign = req
            .headers()
            .get(header::REFERER)
            .is_some_and(|r| !r.to_str().is_ok_and(|r| state.rules.is_own_url(r)));
        if foreign {
            req.headers_mut().remove(header::REFERER);
        }
    }
    next.run(req).await
}
