//! Account operations (ssr only): what the account server functions call.
//! Each validates, talks to the database, and tells live connections about
//! revocations (`LiveConnections`). Server functions stay thin.

use super::store::NewSession;
use super::throttle::{Pace, SLOW_DOWN};
use super::{hash_secret, new_secret, password, Principal, Scopes, User, TOKEN_PREFIX};
use crate::error::AppError;
use crate::model::{Member, NewToken, Room, SessionInfo, TokenInfo};
use crate::protocol::Topic;
use crate::server::state::AppState;
use crate::server::validate;
use std::net::IpAddr;

/// Where a request comes from, for the sessions page and the throttle.
#[derive(Clone, Debug)]
pub struct Client {
    pub ip: IpAddr,
    pub user_agent: String,
}

/// The answer to a failed log-in, whatever failed.
fn wrong() -> AppError {
    AppError::Unauthenticated("wrong name or password".into())
}

/// Creates an account and signs it in; returns the session secret.
pub async fn sign_up(
    state: &AppState,
    client: &Client,
    name: &str,
    pass: &str,
) -> Result<(User, String), AppError> {
    state
        .throttle
        .sign_up(client.ip)
        .map_err(crate::server::limited)?;
    let name = validate::display_name(name)?;
    password::check_new(pass, &name)?;
    let phc = password::hash(pass.to_owned()).await?;
    let user = state
        .accounts
        .create_user(&name, &validate::name_key(&name), &phc)
        .await?;
    tracing::info!(user = user.id, "account created");
    let secret = start_session(state, &user, client).await?;
    Ok((user, secret))
}

/// Checks a name and password (throttled); returns a new session secret.
pub async fn log_in(
    state: &AppState,
    client: &Client,
    name: &str,
    pass: &str,
) -> Result<(User, String), AppError> {
    let key = validate::name_key(name.trim());
    let pace = state
        .throttle
        .attempt(client.ip, &key)
        .map_err(crate::server::limited)?;
    if pace == Pace::Slowed {
        tokio::time::sleep(SLOW_DOWN).await;
    }
    let found = state.accounts.user_by_key(&key).await?;
    let (user, phc) = match found {
        Some((user, phc)) => (Some(user), phc),
        None => (None, None),
    };
    // Verified either way, so the time taken says nothing about the name.
    let ok = password::verify(pass.to_owned(), phc).await?;
    let Some(user) = user.filter(|_| ok) else {
        crate::server::metrics::reject("login_failed");
        return Err(wrong());
    };
    let secret = start_session(state, &user, client).await?;
    Ok((user, secret))
}

async fn start_session(state: &AppState, user: &User, client: &Client) -> Result<String, AppError> {
    let (secret, hash) = new_secret("");
    let expires_at =
        crate::server::store::now_ms() + i64::from(state.settings.session_days) * 86_400_000;
    let ua: String = client.user_agent.chars().take(200).collect();
    state
        .accounts
        .create_session(NewSession {
            user_id: user.id,
            secret_hash: &hash,
            expires_at,
            user_agent: &ua,
            ip: &client.ip.to_string(),
        })
        .await?;
    Ok(secret)
}

/// Closes a just-registered live connection whose credentials were revoked
/// after its upgrade request was authenticated but before it registered
/// (a revocation in that window found no connection to close).
pub async fn confirm_live(state: &AppState, who: &Principal) {
    let now = crate::server::store::now_ms();
    let alive = match who {
        Principal::Anonymous => Ok(true),
        Principal::Session { session_id, .. } => {
            state.accounts.session_alive(*session_id, now).await
        }
        Principal::Token { token_id, .. } => state.accounts.token_alive(*token_id).await,
    };
    match (alive, who) {
        (Ok(true), _) | (_, Principal::Anonymous) => {}
        (Ok(false), Principal::Session { session_id, .. }) => {
            state.live.revoke_sessions(&[*session_id]);
        }
        (Ok(false), Principal::Token { token_id, .. }) => {
            state.live.revoke_token(*token_id);
        }
        (Err(e), _) => tracing::warn!(error = %e, "could not re-check a connection's credentials"),
    }
}

/// Ends the caller's session (if any) and closes its live connections.
pub async fn log_out(state: &AppState, who: &Principal) -> Result<(), AppError> {
    if let Principal::Session {
        user, session_id, ..
    } = who
    {
        state.accounts.delete_session(user.id, *session_id).await?;
        let n = state.live.revoke_sessions(&[*session_id]);
        crate::server::metrics::revoked("session", n);
    }
    Ok(())
}

/// Ends every session of the caller's account, this one included.
pub async fn log_out_everywhere(state: &AppState, who: &Principal) -> Result<usize, AppError> {
    let (user, _) = who.require_session()?;
    let ids = state.accounts.delete_sessions(user.id).await?;
    let n = state.live.revoke_sessions(&ids);
    crate::server::metrics::revoked("session", n);
    Ok(ids.len())
}

pub async fn sessions(state: &AppState, who: &Principal) -> Result<Vec<SessionInfo>, AppError> {
    let (user, current) = who.require_session()?;
    let mut list = state
        .accounts
        .sessions(user.id, crate::server::store::now_ms())
        .await?;
    for s in &mut list {
        s.current = s.id == current;
    }
    Ok(list)
}

pub async fn revoke_session(state: &AppState, who: &Principal, id: i64) -> Result<(), AppError> {
    let (user, _) = who.require_session()?;
    if !state.accounts.delete_session(user.id, id).await? {
        return Err(AppError::NotFound(format!("session {id}")));
    }
    let n = state.live.revoke_sessions(&[id]);
    crate::server::metrics::revoked("session", n);
    Ok(())
}

/// The account's tokens (never their secrets).
pub async fn tokens(state: &AppState, who: &Principal) -> Result<Vec<TokenInfo>, AppError> {
    let (user, _) = who.require_session()?;
    Ok(state.accounts.tokens(user.id).await?)
}

/// Creates an access token; its secret is in the answer and nowhere else.
pub async fn create_token(
    state: &AppState,
    who: &Principal,
    label: &str,
    scopes: &str,
) -> Result<NewToken, AppError> {
    let (user, _) = who.require_session()?;
    let label = validate::room_name(label, 64)
        .map_err(|_| AppError::Validation("a token label has 1 to 64 characters".into()))?;
    let scopes = Scopes::parse(scopes)?;
    if scopes.publish && !super::is_publisher(&state.settings, user) {
        return Err(AppError::Forbidden(
            "this account may not hold the `publish` scope (see the `publishers` setting)".into(),
        ));
    }
    let (secret, hash) = new_secret(TOKEN_PREFIX);
    debug_assert_eq!(hash, hash_secret(&secret));
    let info = state
        .accounts
        .create_token(user.id, &label, scopes, &hash)
        .await?;
    Ok(NewToken { info, secret })
}

/// Deletes a token and closes the connections that use it.
pub async fn revoke_token(state: &AppState, who: &Principal, id: i64) -> Result<(), AppError> {
    let (user, _) = who.require_session()?;
    if !state.accounts.delete_token(user.id, id).await? {
        return Err(AppError::NotFound(format!("token {id}")));
    }
    let n = state.live.revoke_token(id);
    crate::server::metrics::revoked("token", n);
    Ok(())
}

/// A room's owner, for member management: the room exists, the caller may
/// read it and owns it, and it is private.
async fn owned_private_room(
    state: &AppState,
    who: &Principal,
    room_id: i64,
) -> Result<Room, AppError> {
    let user = who.require_user()?;
    super::authorize(state, who, Topic::room(room_id), super::Access::Write).await?;
    let room = state.store.room(room_id).await?;
    if room.owner_id != user.id {
        return Err(AppError::Forbidden(
            "only the room's owner manages its members".into(),
        ));
    }
    if !room.private {
        return Err(AppError::Validation(
            "public rooms have no member list".into(),
        ));
    }
    Ok(room)
}

pub async fn members(
    state: &AppState,
    who: &Principal,
    room_id: i64,
) -> Result<Vec<Member>, AppError> {
    super::authorize(state, who, Topic::room(room_id), super::Access::Read).await?;
    Ok(state.accounts.members(room_id).await?)
}

/// Adds the account named `name` to a private room the caller owns.
pub async fn invite(
    state: &AppState,
    who: &Principal,
    room_id: i64,
    name: &str,
) -> Result<Member, AppError> {
    owned_private_room(state, who, room_id).await?;
    let key = validate::name_key(&validate::display_name(name)?);
    let (user, _) = state
        .accounts
        .user_by_key(&key)
        .await?
        .filter(|(u, _)| u.id != super::SYSTEM_USER)
        .ok_or_else(|| AppError::NotFound(format!("account “{}”", name.trim())))?;
    state.accounts.add_member(room_id, user.id).await?;
    Ok(Member {
        user_id: user.id,
        name: user.name,
        owner: false,
    })
}

/// Removes a member from a private room the caller owns; their live
/// subscriptions to it end at once.
pub async fn remove_member(
    state: &AppState,
    who: &Principal,
    room_id: i64,
    user_id: i64,
) -> Result<(), AppError> {
    let room = owned_private_room(state, who, room_id).await?;
    if user_id == room.owner_id {
        return Err(AppError::Validation("the owner cannot be removed".into()));
    }
    if !state.accounts.remove_member(room_id, user_id).await? {
        return Err(AppError::NotFound(format!("member {user_id}")));
    }
    let n = state.live.lost_access(user_id, Topic::room(room_id));
    crate::server::metrics::revoked("membership", n);
    // The room leaves the account's unread summary.
    state.unread.user_changed(user_id);
    Ok(())
}
