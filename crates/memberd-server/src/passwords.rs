//! Member passwords: argon2id with the crate's recommended parameters, hashed on the blocking
//! pool because a good hash is slow on purpose.

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHasher};
use rand::rngs::OsRng;

use crate::error::ApiError;

/// Hashes a password on the calling thread (tens of milliseconds): for callers that spread
/// many hashes over their own threads, such as `memberd import`.
pub fn hash_password_blocking(password: &str) -> Result<String, argon2::password_hash::Error> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
}

pub async fn hash_password(password: String) -> Result<String, ApiError> {
    let hashed = tokio::task::spawn_blocking(move || hash_password_blocking(&password)).await;
    match hashed {
        Ok(Ok(hash)) => Ok(hash),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "password hashing failed");
            Err(ApiError::internal())
        }
        Err(err) => {
            tracing::error!(error = %err, "password hashing task failed");
            Err(ApiError::internal())
        }
    }
}
