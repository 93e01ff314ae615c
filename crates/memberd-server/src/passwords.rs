//! Member passwords: argon2id with the crate's recommended parameters. A good hash is slow on
//! purpose, so hashing and checking run on the blocking pool, and at most `HASHERS` at once: a
//! storm of logins then queues for the hasher instead of taking every core from the requests
//! that serve reads (access checks, `GET /member`).

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use rand::rngs::OsRng;
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Hashes a password on the calling thread (tens of milliseconds): for callers that spread
/// many hashes over their own threads, such as `memberd import`.
pub fn hash_password_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
}

/// How many hashes run at once: all cores but one, and at least one.
fn hashers() -> &'static Semaphore {
    static HASHERS: OnceLock<Semaphore> = OnceLock::new();
    HASHERS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Semaphore::new(cores.saturating_sub(1).max(1))
    })
}

async fn on_hasher<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = hashers()
        .acquire()
        .await
        .map_err(|_| ApiError::internal())?;
    tokio::task::spawn_blocking(work).await.map_err(|err| {
        tracing::error!(error = %err, "password hashing task failed");
        ApiError::internal()
    })
}

pub async fn hash_password(password: String) -> Result<String, ApiError> {
    match on_hasher(move || hash_password_blocking(&password)).await? {
        Ok(hash) => Ok(hash),
        Err(err) => {
            tracing::error!(error = %err, "password hashing failed");
            Err(ApiError::internal())
        }
    }
}

/// A hash of a password nobody knows, checked in place of a member's when there is no member
/// (or no password): an unknown address then costs as long as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let secret = memberd_core::ids::random_suffix(32);
        hash_password_blocking(&secret).unwrap_or_default()
    })
}

/// Whether `password` is the one `hash` was made from. `None` checks against a dummy hash and
/// is always false.
pub async fn verify_password(hash: Option<String>, password: String) -> Result<bool, ApiError> {
    on_hasher(move || {
        let real = hash.is_some();
        let hash = hash.unwrap_or_else(|| dummy_hash().to_owned());
        let matches = PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        });
        real && matches
    })
    .await
}
