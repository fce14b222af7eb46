//! Accounts and authorization (ssr only).
//!
//! - **Principals** (`Principal`): who a request or a connection acts for:
//!   an account's browser session (cookie), an account's personal access
//!   token (`Authorization: Bearer`), or an anonymous visitor. `resolve`
//!   reads them from request headers; a bearer token that is not valid is an
//!   error, never a fallback to the cookie or to anonymous.
//! - **The one authorization rule** (`authorize`): every read and write of a
//!   topic, on every path (server functions, WebSocket `subscribe`, `send`
//!   and `publish`, `events_since`, history pages), asks it. A private room a
//!   principal may not read is *not found*, exactly like a room that does
//!   not exist.
//! - Passwords (`password`), the login throttle (`throttle`), sessions and
//!   tokens in the database (`store`), and the registry that ends live
//!   connections when their credentials or memberships end (`live`).

pub mod live;
pub mod password;
pub mod recent;
pub mod service;
pub mod store;
pub mod throttle;

pub use store::{Accounts, SqliteAccounts};

use crate::error::AppError;
use crate::protocol::Topic;
use crate::server::state::AppState;
use axum::http::{header, HeaderMap};
use base64::Engine;
use sha2::{Digest, Sha256};

/// An account, as far as authorization cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub name: String,
}

/// The system account (id 1): owns the demo rooms and what was written
/// before accounts existed; it has no password and cannot sign in.
pub const SYSTEM_USER: i64 = 1;

/// What an access token may do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scopes {
    /// Subscribe, backfill and read history of what the account may read.
    pub read: bool,
    /// Post messages and create rooms as the account.
    pub write: bool,
    /// Publish ticks to ticker topics (only for `publishers` accounts).
    pub publish: bool,
}

impl Scopes {
    pub const ALL: Scopes = Scopes {
        read: true,
        write: true,
        publish: true,
    };

    /// Parses `read,write,publish` (any subset, any order, at least one).
    pub fn parse(s: &str) -> Result<Scopes, AppError> {
        let mut scopes = Scopes::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "read" => scopes.read = true,
                "write" => scopes.write = true,
                "publish" => scopes.publish = true,
                other => {
                    return Err(AppError::Validation(format!(
                        "unknown scope `{other}` (read, write, publish)"
                    )))
                }
            }
        }
        if scopes == Scopes::default() {
            return Err(AppError::Validation(
                "a token needs at least one scope".into(),
            ));
        }
        Ok(scopes)
    }

    fn allows(self, access: Access) -> bool {
        match access {
            Access::Read => self.read,
            Access::Write => self.write,
            Access::Publish => self.publish,
        }
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = [
            (self.read, "read"),
            (self.write, "write"),
            (self.publish, "publish"),
        ];
        let list: Vec<&str> = names
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect();
        f.write_str(&list.join(","))
    }
}

/// Who a request or connection acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    Anonymous,
    /// A browser session of `user` (the session cookie).
    Session {
        user: User,
        session_id: i64,
        /// Unix milliseconds; past it the session is over.
        expires_at: i64,
    },
    /// A personal access token of `user`.
    Token {
        user: User,
        token_id: i64,
        scopes: Scopes,
    },
}

impl Principal {
    pub fn user(&self) -> Option<&User> {
        match self {
            Principal::Anonymous => None,
            Principal::Session { user, .. } | Principal::Token { user, .. } => Some(user),
        }
    }

    pub fn user_id(&self) -> Option<i64> {
        self.user().map(|u| u.id)
    }

    /// The account, or `Unauthenticated`.
    pub fn require_user(&self) -> Result<&User, AppError> {
        self.user().ok_or_else(AppError::sign_in)
    }

    /// The browser session, for account management (tokens cannot manage
    /// sessions or mint tokens).
    pub fn require_session(&self) -> Result<(&User, i64), AppError> {
        match self {
            Principal::Session {
                user, session_id, ..
            } => Ok((user, *session_id)),
            Principal::Token { .. } => Err(AppError::Forbidden(
                "account management needs a signed-in browser session, not an access token".into(),
            )),
            Principal::Anonymous => Err(AppError::sign_in()),
        }
    }
}

/// What a principal wants to do with a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Subscribe, backfill, read history.
    Read,
    /// Post a message.
    Write,
    /// Publish a tick.
    Publish,
}

/// The one authorization rule: may `who` do `access` on `topic`?
///
/// - Tokens need the scope for the access (`read`, `write`, `publish`).
/// - Public rooms: anyone reads; any account writes. Private rooms: members
///   read and write; for anyone else the room is *not found*, whether or
///   not it exists.
/// - Tickers: anyone reads; only a token with the `publish` scope, of an
///   account listed in `publishers` (now, not only when the token was
///   made), publishes. Rooms take no ticks (`Validation`).
/// - Anonymous visitors never write or publish (`Unauthenticated`).
///
/// Whether a ticker takes a chat message is the chat service's business,
/// checked after this rule.
pub async fn authorize(
    state: &AppState,
    who: &Principal,
    topic: Topic,
    access: Access,
) -> Result<(), AppError> {
    match who {
        Principal::Anonymous if access != Access::Read => return Err(AppError::sign_in()),
        Principal::Token { scopes, .. } if !scopes.allows(access) => {
            crate::server::metrics::reject("token_scope");
            return Err(AppError::Forbidden(format!(
                "this access token lacks the `{}` scope",
                scope_name(access)
            )));
        }
        Principal::Session { .. } if access == Access::Publish => {
            return Err(AppError::Forbidden(
                "publishing needs an access token with the `publish` scope".into(),
            ))
        }
        _ => {}
    }
    if access == Access::Publish {
        if let Topic::Room(_) | Topic::Presence(_) | Topic::User(_) | Topic::Lobby = topic {
            return Err(AppError::Validation(format!("{topic} does not take ticks")));
        }
        let publisher = who.user().is_some_and(|u| is_publisher(&state.settings, u));
        if !publisher {
            crate::server::metrics::reject("not_a_publisher");
            return Err(AppError::Forbidden(
                "this account may not publish (see the `publishers` setting)".into(),
            ));
        }
    }
    let room_id = match topic {
        Topic::Ticker(_) => return Ok(()),
        // The public room list: anyone reads; the server writes.
        Topic::Lobby if access == Access::Read => return Ok(()),
        Topic::Lobby => {
            return Err(AppError::Forbidden(
                "the lobby is written by the server".into(),
            ))
        }
        // An account's summary: its own only; written by the server.
        Topic::User(id) if access == Access::Read && who.user_id() == Some(id) => return Ok(()),
        Topic::User(id) if access == Access::Read => {
            return Err(AppError::NotFound(format!("user {id}")))
        }
        Topic::User(_) => {
            return Err(AppError::Forbidden(
                "account summaries are written by the server".into(),
            ))
        }
        Topic::Room(id) => id,
        // Who is in a room: readable by whoever reads the room; written by
        // the server only (from connections and `typing` frames).
        Topic::Presence(id) if access == Access::Read => id,
        Topic::Presence(_) => {
            return Err(AppError::Forbidden(
                "presence topics are written by the server".into(),
            ))
        }
    };
    match Topic::Room(room_id) {
        // A public room is open to every principal that passed the checks
        // above (`recent::PublicRooms`: no query for one read before).
        Topic::Room(id) if state.public_rooms.contains(id) => Ok(()),
        Topic::Room(id) => {
            let room = state.accounts.room_access(id, who.user_id()).await?;
            if room.as_ref().is_some_and(|r| !r.private) {
                state.public_rooms.insert(id);
            }
            match room {
                Some(r) if !r.private || r.member => Ok(()),
                _ => {
                    if room.is_some() {
                        crate::server::metrics::reject("private_room");
                    }
                    Err(AppError::NotFound(format!("room {id}")))
                }
            }
        }
        _ => Ok(()),
    }
}

/// Whether `user` is listed in the `publishers` setting (by name key).
pub fn is_publisher(settings: &crate::server::config::Settings, user: &User) -> bool {
    let key = crate::server::validate::name_key(&user.name);
    settings
        .publishers
        .iter()
        .any(|p| crate::server::validate::name_key(p) == key)
}

fn scope_name(access: Access) -> &'static str {
    match access {
        Access::Read => "read",
        Access::Write => "write",
        Access::Publish => "publish",
    }
}

/// A new random secret (256 bits), as unpadded base64url, and its hash.
pub fn new_secret(prefix: &str) -> (String, [u8; 32]) {
    let bytes: [u8; 32] = rand::random();
    let secret = format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = hash_secret(&secret);
    (secret, hash)
}

/// What the database keeps of a secret: its SHA-256. Secrets are 256
/// random bits, so a fast hash suffices, and lookups are by equality on an
/// index (no comparison of secret bytes in application code).
pub fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// The prefix of every access token (so scanners and people recognise one).
pub const TOKEN_PREFIX: &str = "tdm_";

/// Longest secret read from a request; anything longer is not one of ours.
const MAX_SECRET: usize = 128;

/// The bearer token of a request, if it carries `Authorization: Bearer`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Who the request acts for: its bearer token if it has one (an invalid
/// one is `Unauthenticated`), else its session cookie (a missing, unknown
/// or expired one is anonymous).
///
/// `recent` keeps what was resolved at revocation epoch `epoch` (read
/// before this call), so a client that presents the same credentials many
/// times a second (a polling rung) is looked up once (`recent`).
pub async fn resolve(
    accounts: &dyn Accounts,
    cookie_name: &str,
    headers: &HeaderMap,
    recent: &recent::Recent,
    epoch: u64,
) -> Result<Principal, AppError> {
    let now = crate::server::store::now_ms();
    if let Some(token) = bearer(headers) {
        let invalid = || AppError::Unauthenticated("invalid or revoked access token".into());
        if token.len() > MAX_SECRET || !token.starts_with(TOKEN_PREFIX) {
            return Err(invalid());
        }
        let key = hash_secret(token);
        if let Some(who) = recent.get(&key, epoch, now) {
            return Ok(who);
        }
        let (user, token_id, scopes) = accounts.token(&key).await?.ok_or_else(invalid)?;
        let who = Principal::Token {
            user,
            token_id,
            scopes,
        };
        recent.put(key, &who, epoch);
        return Ok(who);
    }
    let Some(secret) = crate::server::security::cookie_value(headers, cookie_name) else {
        return Ok(Principal::Anonymous);
    };
    if secret.len() > MAX_SECRET {
        return Ok(Principal::Anonymous);
    }
    let key = hash_secret(&secret);
    if let Some(who) = recent.get(&key, epoch, now) {
        return Ok(who);
    }
    let who = match accounts.session(&key, now).await? {
        Some((user, session_id, expires_at)) => Principal::Session {
            user,
            session_id,
            expires_at,
        },
        None => Principal::Anonymous,
    };
    recent.put(key, &who, epoch);
    Ok(who)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_print() {
        let s = Scopes::parse("write, read").unwrap();
        assert!(s.read && s.write && !s.publish);
        assert_eq!(s.to_string(), "read,write");
        assert_eq!(Scopes::parse("publish").unwrap().to_string(), "publish");
        assert!(Scopes::parse("").is_err());
        assert!(Scopes::parse("read,admin").is_err());
        assert!(Scopes::ALL.allows(Access::Publish));
        assert!(!Scopes::parse("read").unwrap().allows(Access::Write));
    }

    #[test]
    fn secrets_are_long_random_and_hashed() {
        let (a, ha) = new_secret(TOKEN_PREFIX);
        let (b, _) = new_secret(TOKEN_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 43);
        assert_eq!(hash_secret(&a), ha);
    }
}

/// The request's principal, resolved once by `attach` and kept in the
/// request's extensions (pages, server functions and `/ws` read it there).
#[derive(Clone, Debug)]
pub struct Auth(pub Result<Principal, AppError>);

/// The revocation epoch (`live::LiveConnections::epoch`) read just before
/// the request's credentials were looked up.
#[derive(Clone, Copy, Debug)]
pub struct ResolvedAt(pub u64);

/// Middleware: resolves who the request acts for (see `resolve`), except
/// for static files.
pub async fn attach(
    axum::extract::State(state): axum::extract::State<crate::server::state::AppState>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let path = req.uri().path();
    if !(path.starts_with("/pkg/") || path == "/favicon.svg" || path == "/healthz") {
        let epoch = ResolvedAt(state.live.epoch());
        let auth = resolve(
            state.accounts.as_ref(),
            state.session_cookie(),
            req.headers(),
            &state.recent,
            epoch.0,
        )
        .await;
        req.extensions_mut().insert(Auth(auth));
        req.extensions_mut().insert(epoch);
    }
    next.run(req).await
}
