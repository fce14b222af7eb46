//! Passwords (ssr only): Argon2id with OWASP's recommended parameters
//! (m = 19 MiB, t = 2, p = 1), a random salt per hash, PHC strings in the
//! database. Hashing runs on the blocking pool, at most `PARALLEL` at once,
//! so a burst of sign-ups or log-ins costs bounded memory (19 MiB each) and
//! cannot starve the async workers. Every hash's duration is recorded
//! (`tandem_password_hash_seconds`).

use crate::error::AppError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::OnceLock;
use tokio::sync::Semaphore;

/// Memory cost in KiB (OWASP: 19 MiB).
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Passes (OWASP: 2 with 19 MiB).
pub const PASSES: u32 = 2;
/// Lanes.
pub const LANES: u32 = 1;

/// Shortest password, in characters.
pub const MIN_CHARS: usize = 10;
/// Longest password, in bytes: hashing cost must not grow with the input.
pub const MAX_BYTES: usize = 256;

/// Hashes running at once, at most.
const PARALLEL: usize = 2;

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn permits() -> &'static Semaphore {
    static PERMITS: Semaphore = Semaphore::const_new(PARALLEL);
    &PERMITS
}

/// A new password's rules: 10 characters or more, at most 256 bytes, not
/// the account name.
pub fn check_new(password: &str, name: &str) -> Result<(), AppError> {
    if password.chars().count() < MIN_CHARS {
        return Err(AppError::Validation(format!(
            "a password has at least {MIN_CHARS} characters"
        )));
    }
    if password.len() > MAX_BYTES {
        return Err(AppError::Validation(format!(
            "a password has at most {MAX_BYTES} bytes"
        )));
    }
    if password.trim().eq_ignore_ascii_case(name.trim()) {
        return Err(AppError::Validation(
            "the password cannot be the account name".into(),
        ));
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    let _permit = permits().acquire().await.map_err(|_| AppError::Internal)?;
    let start = std::time::Instant::now();
    let out = tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(error = %e, "password hashing failed");
        AppError::Internal
    })?;
    crate::server::metrics::password_hash(start.elapsed().as_secs_f64());
    Ok(out)
}

/// The PHC string of a new password.
pub async fn hash(password: String) -> Result<String, AppError> {
    blocking(move || {
        let salt =
            SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await?
    .map_err(|e| {
        tracing::error!(error = %e, "argon2 failed");
        AppError::Internal
    })
}

/// Whether `password` matches `phc`. With `None` (no such account, or an
/// account without a password) a dummy hash is verified instead, so the
/// answer takes as long either way and reveals nothing, then `false`.
pub async fn verify(password: String, phc: Option<String>) -> Result<bool, AppError> {
    if password.len() > MAX_BYTES {
        return Ok(false);
    }
    blocking(move || {
        let real = phc.is_some();
        let phc = phc.unwrap_or_else(|| dummy().to_owned());
        let Ok(parsed) = PasswordHash::new(&phc) else {
            tracing::error!("a stored password hash does not parse");
            return false;
        };
        // The stored hash's own parameters apply (older hashes still verify).
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        real && ok
    })
    .await
}

/// A hash of a random password, with the current parameters.
fn dummy() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        SaltString::encode_b64(&rand::random::<[u8; 16]>())
            .and_then(|salt| {
                argon2()
                    .hash_password(&rand::random::<[u8; 16]>(), &salt)
                    .map(|h| h.to_string())
            })
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_carry_the_parameters() {
        let phc = hash("correct horse battery".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery".into(), Some(phc.clone()))
            .await
            .unwrap());
        assert!(!verify("correct horse batterx".into(), Some(phc.clone()))
            .await
            .unwrap());
        assert!(!verify("correct horse battery".into(), None).await.unwrap());
        let again = hash("correct horse battery".into()).await.unwrap();
        assert_ne!(phc, again, "salted");
    }

    #[test]
    fn new_password_rules() {
        assert!(check_new("short", "ann").is_err());
        assert!(check_new("0123456789", "ann").is_ok());
        assert!(check_new("Annabelle10", "annabelle10").is_err());
        assert!(check_new(&"x".repeat(257), "ann").is_err());
        assert!(
            check_new("ééééééééé", "ann").is_err(),
            "9 characters, 18 bytes"
        );
    }
}
