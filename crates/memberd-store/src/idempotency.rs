use memberd_core::{Scope, Timestamp};

use crate::rows::{opt_text, text};
use crate::{Result, Store};

/// How long a key is remembered; after that it may be reused for a new request.
const KEY_LIFETIME_MICROS: i64 = 24 * 60 * 60 * 1_000_000;

/// Where a request with an `Idempotency-Key` stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyState {
    /// First time: the caller runs the request and then calls `finish` (or `release`).
    Started,
    /// The same key is being processed by another request right now.
    InProgress,
    /// The key was used before with the same fingerprint: replay this response.
    Completed { status: u16, body: String },
    /// The key was used before for a different request.
    Mismatch,
}

impl Store {
    /// Claims `key` for a request identified by `fingerprint` (a hash of its method, path and body).
    pub async fn idempotency_begin(
        &self,
        scope: &Scope,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
    ) -> Result<IdempotencyState> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE app_id = $1 AND env = $2 AND idempotency_key = $3 AND created_at < $4",
        )
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(key)
        .bind(now.as_micros() - KEY_LIFETIME_MICROS)
        .execute(&mut *tx)
        .await?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (app_id, env, idempotency_key, fingerprint, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(key)
        .bind(fingerprint)
        .bind(now.as_micros())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let state = if inserted == 1 {
            IdempotencyState::Started
        } else {
            let row = sqlx::query(
                "SELECT fingerprint, status_code, response FROM idempotency_keys \
                 WHERE app_id = $1 AND env = $2 AND idempotency_key = $3",
            )
            .bind(scope.app_id.as_str())
            .bind(scope.env.as_str())
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
            let status: Option<i64> = sqlx::Row::try_get(&row, "status_code")?;
            if text(&row, "fingerprint")? != fingerprint {
                IdempotencyState::Mismatch
            } else if let Some(status) = status {
                IdempotencyState::Completed {
                    status: u16::try_from(status).unwrap_or(500),
                    body: opt_text(&row, "response")?.unwrap_or_default(),
                }
            } else {
                IdempotencyState::InProgress
            }
        };
        tx.commit().await?;
        Ok(state)
    }

    /// Records the response to replay for `key`.
    pub async fn idempotency_finish(
        &self,
        scope: &Scope,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET status_code = $1, response = $2 \
             WHERE app_id = $3 AND env = $4 AND idempotency_key = $5",
        )
        .bind(i64::from(status))
        .bind(body)
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(key)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Forgets a claim whose request failed in a way worth retrying (a 5xx).
    pub async fn idempotency_release(&self, scope: &Scope, key: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE app_id = $1 AND env = $2 AND idempotency_key = $3",
        )
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(key)
        .execute(&self.write)
        .await?;
        Ok(())
    }
}
