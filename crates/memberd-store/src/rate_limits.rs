//! The cluster's rate-limit buckets, kept in PostgreSQL so that every node serving one
//! database spends from the same budget (migration 0013). One statement takes tokens from a
//! bucket, by the generic cell rate algorithm on the database's clock, so that the nodes' clocks
//! need not agree. SQLite has none: one process serves a SQLite file, and keeps its buckets.

use sqlx::Row;

use crate::{Backend, Result, Store, StoreError};

/// What a take from a bucket gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokensTaken {
    /// How many of the tokens asked for were given (none when the bucket is empty).
    pub granted: u32,
    /// How far ahead of now the bucket's theoretical arrival time stands after the take, in
    /// seconds: `tolerance − debt` is what is left of the burst, and an empty bucket gives its
    /// next token `debt − tolerance + interval` seconds from now.
    pub debt_secs: f64,
}

/// GCRA: a bucket's `tat` moves `interval` ahead per token, never behind now, and a take is
/// allowed while `tat − now` stays within `tolerance` (the burst's worth of intervals). The
/// tiny term absorbs floating-point error in `tolerance / interval`.
const TAKE: &str = "\
INSERT INTO rate_limits AS b (bucket, tat, checked_at, granted) \
SELECT $1, clock.now_s + fresh.g * $3, clock.now_s, fresh.g \
FROM (SELECT extract(epoch FROM statement_timestamp())::float8 AS now_s) AS clock, \
     LATERAL (SELECT LEAST($2::bigint, floor($4::float8 / $3::float8 + 1e-6)::bigint)::int AS g) AS fresh \
ON CONFLICT (bucket) DO UPDATE SET \
    granted = LEAST($2::bigint, GREATEST(0, floor(($4::float8 - (GREATEST(b.tat, EXCLUDED.checked_at) - EXCLUDED.checked_at)) / $3::float8 + 1e-6)))::int, \
    tat = GREATEST(b.tat, EXCLUDED.checked_at) \
        + LEAST($2::bigint, GREATEST(0, floor(($4::float8 - (GREATEST(b.tat, EXCLUDED.checked_at) - EXCLUDED.checked_at)) / $3::float8 + 1e-6))) * $3::float8, \
    checked_at = EXCLUDED.checked_at \
RETURNING granted::bigint AS granted, (tat - checked_at)::float8 AS debt";

impl Store {
    /// Whether this store keeps rate-limit buckets for the cluster (on PostgreSQL).
    pub fn shares_rate_limits(&self) -> bool {
        self.backend == Backend::Postgres
    }

    /// Takes up to `want` tokens from `bucket`, which refills one token per `interval_secs`
    /// and holds at most `tolerance_secs / interval_secs` of them.
    pub async fn take_rate_tokens(
        &self,
        bucket: &str,
        want: u32,
        interval_secs: f64,
        tolerance_secs: f64,
    ) -> Result<TokensTaken> {
        if !self.shares_rate_limits() {
            return Err(StoreError::Unsupported(
                "rate-limit buckets are kept in PostgreSQL only",
            ));
        }
        // The read pool: on PostgreSQL the same connections, and never a held write's.
        let row = sqlx::query(TAKE)
            .bind(bucket)
            .bind(i64::from(want))
            .bind(interval_secs)
            .bind(tolerance_secs)
            .fetch_one(&self.read)
            .await?;
        let granted: i64 = row.try_get("granted")?;
        Ok(TokensTaken {
            granted: u32::try_from(granted).unwrap_or(0),
            debt_secs: row.try_get("debt")?,
        })
    }

    /// Forgets buckets that have been full for a while: a missing bucket is a full one, so
    /// this changes no answer and keeps the table to the keys in use.
    pub async fn prune_rate_limits(&self) -> Result<u64> {
        if !self.shares_rate_limits() {
            return Ok(0);
        }
        let done = sqlx::query(
            "DELETE FROM rate_limits WHERE tat < extract(epoch FROM statement_timestamp())::float8 - 60",
        )
        .execute(&self.read)
        .await?;
        Ok(done.rows_affected())
    }
}
