//! Accounts in the database (ssr only): users, sessions, access tokens and
//! room memberships, behind one trait so the PostgreSQL backend can follow.
//! Secrets are never stored: sessions and tokens are found by the SHA-256 of
//! their secret (`hash_secret`), on a unique index.

use super::{Scopes, User};
use crate::model::{Member, SessionInfo, TokenInfo};
use crate::server::store::{now_ms, StoreError};
use async_trait::async_trait;
use sqlx::{Row, SqlitePool};

/// What the authorization rule needs to know about a room and a principal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoomAccess {
    pub private: bool,
    /// The principal's account is a member (always true for the owner of a
    /// private room; false for anonymous visitors).
    pub member: bool,
    pub owner_id: i64,
}

/// A new session's details.
pub struct NewSession<'a> {
    pub user_id: i64,
    pub secret_hash: &'a [u8; 32],
    pub expires_at: i64,
    pub user_agent: &'a str,
    pub ip: &'a str,
}

#[async_trait]
pub trait Accounts: Send + Sync + 'static {
    /// Creates an account; `Conflict` if the name (by its key) is taken.
    async fn create_user(&self, name: &str, key: &str, phc: &str) -> Result<User, StoreError>;
    /// The account with this name key, and its password hash (`None` for
    /// the system account).
    async fn user_by_key(&self, key: &str) -> Result<Option<(User, Option<String>)>, StoreError>;
    async fn create_session(&self, s: NewSession<'_>) -> Result<i64, StoreError>;
    /// The unexpired session with this secret hash: its user, id and expiry.
    async fn session(
        &self,
        secret_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<(User, i64, i64)>, StoreError>;
    async fn sessions(&self, user_id: i64, now: i64) -> Result<Vec<SessionInfo>, StoreError>;
    /// Deletes one of the user's sessions; whether it existed.
    async fn delete_session(&self, user_id: i64, session_id: i64) -> Result<bool, StoreError>;
    /// Deletes every session of the user; their ids.
    async fn delete_sessions(&self, user_id: i64) -> Result<Vec<i64>, StoreError>;
    async fn create_token(
        &self,
        user_id: i64,
        label: &str,
        scopes: Scopes,
        secret_hash: &[u8; 32],
    ) -> Result<TokenInfo, StoreError>;
    /// The token with this secret hash: its user, id and scopes.
    async fn token(
        &self,
        secret_hash: &[u8; 32],
    ) -> Result<Option<(User, i64, Scopes)>, StoreError>;
    async fn tokens(&self, user_id: i64) -> Result<Vec<TokenInfo>, StoreError>;
    /// Whether this session still exists and is unexpired.
    async fn session_alive(&self, session_id: i64, now: i64) -> Result<bool, StoreError>;
    /// Whether this token still exists.
    async fn token_alive(&self, token_id: i64) -> Result<bool, StoreError>;
    async fn delete_token(&self, user_id: i64, token_id: i64) -> Result<bool, StoreError>;
    /// The room's visibility and the account's membership; `None` if there
    /// is no such room.
    async fn room_access(
        &self,
        room_id: i64,
        user_id: Option<i64>,
    ) -> Result<Option<RoomAccess>, StoreError>;
    /// Adds a member; whether they were not one already.
    async fn add_member(&self, room_id: i64, user_id: i64) -> Result<bool, StoreError>;
    /// Removes a member; whether they were one.
    async fn remove_member(&self, room_id: i64, user_id: i64) -> Result<bool, StoreError>;
    async fn members(&self, room_id: i64) -> Result<Vec<Member>, StoreError>;
}

/// The SQLite accounts, on the store's pool.
pub struct SqliteAccounts {
    pool: SqlitePool,
}

impl SqliteAccounts {
    pub fn new(pool: SqlitePool) -> Self {
        SqliteAccounts { pool }
    }
}

fn user_from(row: &sqlx::sqlite::SqliteRow) -> User {
    User {
        id: row.get("user_id"),
        name: row.get("user_name"),
    }
}

fn token_from(row: &sqlx::sqlite::SqliteRow) -> TokenInfo {
    TokenInfo {
        id: row.get("id"),
        label: row.get("label"),
        scopes: row.get("scopes"),
        created_at: row.get("created_at"),
    }
}

#[async_trait]
impl Accounts for SqliteAccounts {
    async fn create_user(&self, name: &str, key: &str, phc: &str) -> Result<User, StoreError> {
        let inserted = sqlx::query(
            "INSERT INTO users (name, name_key, password_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        )
        .bind(name)
        .bind(key)
        .bind(phc)
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await;
        match inserted {
            Ok(row) => Ok(User {
                id: row.get(0),
                name: name.to_owned(),
            }),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                format!("the name “{name}” (or one that looks the same) is taken"),
            )),
            Err(e) => Err(e.into()),
        }
    }

    async fn user_by_key(&self, key: &str) -> Result<Option<(User, Option<String>)>, StoreError> {
        let row = sqlx::query(
            "SELECT id AS user_id, name AS user_name, password_hash FROM users WHERE name_key = ?",
        )
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (user_from(&r), r.get("password_hash"))))
    }

    async fn create_session(&self, s: NewSession<'_>) -> Result<i64, StoreError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        // Expired sessions of this account go as a new one comes.
        sqlx::query("DELETE FROM sessions WHERE user_id = ? AND expires_at <= ?")
            .bind(s.user_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let id: i64 = sqlx::query(
            "INSERT INTO sessions (secret_hash, user_id, created_at, expires_at, user_agent, ip) \
             VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&s.secret_hash[..])
        .bind(s.user_id)
        .bind(now)
        .bind(s.expires_at)
        .bind(s.user_agent)
        .bind(s.ip)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        tx.commit().await?;
        Ok(id)
    }

    async fn session(
        &self,
        secret_hash: &[u8; 32],
        now: i64,
    ) -> Result<Option<(User, i64, i64)>, StoreError> {
        let row = sqlx::query(
            "SELECT s.id, s.expires_at, u.id AS user_id, u.name AS user_name \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.secret_hash = ? AND s.expires_at > ?",
        )
        .bind(&secret_hash[..])
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| (user_from(&r), r.get("id"), r.get("expires_at"))))
    }

    async fn sessions(&self, user_id: i64, now: i64) -> Result<Vec<SessionInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, created_at, expires_at, user_agent, ip FROM sessions \
             WHERE user_id = ? AND expires_at > ? ORDER BY id DESC LIMIT 100",
        )
        .bind(user_id)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| SessionInfo {
                id: r.get("id"),
                created_at: r.get("created_at"),
                expires_at: r.get("expires_at"),
                user_agent: r.get("user_agent"),
                ip: r.get("ip"),
                current: false,
            })
            .collect())
    }

    async fn delete_session(&self, user_id: i64, session_id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id = ? AND user_id = ?")
            .bind(session_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_sessions(&self, user_id: i64) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query("DELETE FROM sessions WHERE user_id = ? RETURNING id")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn create_token(
        &self,
        user_id: i64,
        label: &str,
        scopes: Scopes,
        secret_hash: &[u8; 32],
    ) -> Result<TokenInfo, StoreError> {
        let row = sqlx::query(
            "INSERT INTO tokens (secret_hash, user_id, label, scopes, created_at) \
             VALUES (?, ?, ?, ?, ?) RETURNING id, label, scopes, created_at",
        )
        .bind(&secret_hash[..])
        .bind(user_id)
        .bind(label)
        .bind(scopes.to_string())
        .bind(now_ms())
        .fetch_one(&self.pool)
        .await?;
        Ok(token_from(&row))
    }

    async fn token(
        &self,
        secret_hash: &[u8; 32],
    ) -> Result<Option<(User, i64, Scopes)>, StoreError> {
        let row = sqlx::query(
            "SELECT t.id, t.scopes, u.id AS user_id, u.name AS user_name \
             FROM tokens t JOIN users u ON u.id = t.user_id WHERE t.secret_hash = ?",
        )
        .bind(&secret_hash[..])
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let scopes = Scopes::parse(r.get("scopes"))
            .map_err(|e| StoreError::Corrupt(format!("token scopes: {e}")))?;
        Ok(Some((user_from(&r), r.get("id"), scopes)))
    }

    async fn tokens(&self, user_id: i64) -> Result<Vec<TokenInfo>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, label, scopes, created_at FROM tokens WHERE user_id = ? ORDER BY id DESC LIMIT 100",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(token_from).collect())
    }

    async fn session_alive(&self, session_id: i64, now: i64) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM sessions WHERE id = ? AND expires_at > ?")
            .bind(session_id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn token_alive(&self, token_id: i64) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM tokens WHERE id = ?")
            .bind(token_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    async fn delete_token(&self, user_id: i64, token_id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM tokens WHERE id = ? AND user_id = ?")
            .bind(token_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn room_access(
        &self,
        room_id: i64,
        user_id: Option<i64>,
    ) -> Result<Option<RoomAccess>, StoreError> {
        let row = sqlx::query(
            "SELECT r.private, r.owner_id, \
             EXISTS (SELECT 1 FROM members m WHERE m.room_id = r.id AND m.user_id = ?) AS member \
             FROM rooms r WHERE r.id = ?",
        )
        .bind(user_id.unwrap_or(0))
        .bind(room_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| RoomAccess {
            private: r.get::<i64, _>("private") != 0,
            member: user_id.is_some() && r.get::<i64, _>("member") != 0,
            owner_id: r.get("owner_id"),
        }))
    }

    async fn add_member(&self, room_id: i64, user_id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO members (room_id, user_id, added_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        )
        .bind(room_id)
        .bind(user_id)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn remove_member(&self, room_id: i64, user_id: i64) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM members WHERE room_id = ? AND user_id = ?")
            .bind(room_id)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn members(&self, room_id: i64) -> Result<Vec<Member>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.id, u.name, (r.owner_id = u.id) AS owner FROM members m \
             JOIN users u ON u.id = m.user_id JOIN rooms r ON r.id = m.room_id \
             WHERE m.room_id = ? ORDER BY owner DESC, u.name LIMIT 500",
        )
        .bind(room_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Member {
                user_id: r.get(0),
                name: r.get(1),
                owner: r.get::<i64, _>(2) != 0,
            })
            .collect())
    }
}
