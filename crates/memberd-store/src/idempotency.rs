//! Idempotency keys, kept so that a retry is answered as the first request was and changes
//! nothing, even when the process running the first one died half-way.
//!
//! A key is claimed in a transaction of its own, with a lease as long as its request may run
//! and a random token. The request then runs inside `answering`: the last write it makes is
//! not committed but held, and `idempotency_finish` writes the answer into that same
//! transaction and commits the two together. So a key is either unanswered with nothing
//! written, or answered with its write, never a write without its answer. A claim whose
//! lease ran out unanswered (its process died, or its request is still running past every
//! timeout) is taken over by the next retry, which runs the request; the first request's write
//! then finds its token gone and rolls back, so the request is performed once.
//!
//! Only one transaction is held, and only until the request does anything else with the
//! store: a request that writes twice commits the first write when it starts the second
//! (`begin_write`), and one that reads after it wrote commits the write first (`reads`,
//! `flush_held`), so that it reads what it wrote (and, on SQLite, where the held transaction
//! has the only write connection, so that nothing waits for it). So the answer shares a
//! transaction with the request's last write when nothing is read after it; a request that
//! reads back what it wrote is answered after the write commits, as before.

use std::cell::RefCell;
use std::future::Future;
use std::time::Duration;

use memberd_core::{Scope, Timestamp};
use sqlx::{Any, Transaction};

use crate::rows::{opt_text, text};
use crate::{Result, Store};

/// How long a key is remembered; after that it may be reused for a new request.
const KEY_LIFETIME_MICROS: i64 = 24 * 60 * 60 * 1_000_000;

/// Where a request with an `Idempotency-Key` stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyState {
    /// The key is this request's: run it inside `answering`, then call `idempotency_finish`
    /// (or `idempotency_release`).
    Started(IdempotencyClaim),
    /// The same key is being processed by another request right now.
    InProgress,
    /// The key was used before with the same fingerprint: replay this response.
    Completed {
        status: u16,
        /// The response's Content-Type; `None` for answers kept before it was.
        content_type: Option<String>,
        body: String,
    },
    /// The key was used before for a different request.
    Mismatch,
}

/// A request's hold on its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyClaim {
    scope: Scope,
    key: String,
    token: String,
}

/// The write transaction a keyed request holds open for its answer, and the environment whose
/// cached reads it makes stale.
struct Held {
    tx: Transaction<'static, Any>,
    cached: Option<Scope>,
}

tokio::task_local! {
    static HELD: RefCell<Option<Held>>;
}

/// Runs `request` so that its last write waits, uncommitted, for `idempotency_finish`. A
/// write held when `request` ends without a finish (it failed, or was dropped) rolls back.
pub async fn answering<F: Future>(request: F) -> F::Output {
    HELD.scope(RefCell::new(None), request).await
}

/// Takes the held transaction, if this task holds one.
fn take_held() -> Option<Held> {
    HELD.try_with(|held| held.borrow_mut().take())
        .ok()
        .flatten()
}

impl Store {
    /// Starts a write: commits a held one first (see the module's documentation).
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>> {
        self.flush_held().await?;
        Ok(self.write.begin().await?)
    }

    /// Ends a write: inside `answering` it is held for the answer; elsewhere it commits.
    /// `cached`: the environment whose cached reads the write makes stale, if any.
    pub(crate) async fn commit_write(
        &self,
        tx: Transaction<'static, Any>,
        cached: Option<&Scope>,
    ) -> Result<()> {
        // A slot that is taken (a transaction begun past `begin_write`) leaves this one to
        // commit at once.
        let holds = HELD
            .try_with(|held| held.borrow().is_none())
            .unwrap_or(false);
        if !holds {
            return self.commit_now(tx, cached).await;
        }
        HELD.with(|held| {
            *held.borrow_mut() = Some(Held {
                tx,
                cached: cached.cloned(),
            })
        });
        Ok(())
    }

    async fn commit_now(
        &self,
        tx: Transaction<'static, Any>,
        cached: Option<&Scope>,
    ) -> Result<()> {
        tx.commit().await?;
        if let Some(scope) = cached {
            self.read_cache.changed_here(scope, &self.write).await;
        }
        Ok(())
    }

    /// The read pool, once any held write is committed: a request reads what it wrote.
    pub(crate) async fn reads(&self) -> Result<&sqlx::AnyPool> {
        self.flush_held().await?;
        Ok(&self.read)
    }

    /// The write pool, free of any held write (see the module's documentation).
    pub(crate) async fn writer(&self) -> Result<&sqlx::AnyPool> {
        self.flush_held().await?;
        Ok(&self.write)
    }

    /// Commits the held write, if any, so that the write pool is free for what comes next.
    pub(crate) async fn flush_held(&self) -> Result<()> {
        match take_held() {
            Some(held) => self.commit_now(held.tx, held.cached.as_ref()).await,
            None => Ok(()),
        }
    }

    /// Claims `key` for a request identified by `fingerprint` (a hash of its method, path and
    /// body) for `lease`, the longest the request may run.
    pub async fn idempotency_begin(
        &self,
        scope: &Scope,
        key: &str,
        fingerprint: &str,
        now: Timestamp,
        lease: Duration,
    ) -> Result<IdempotencyState> {
        let token = memberd_core::ids::random_suffix(24);
        let lease_until = now
            .as_micros()
            .saturating_add(i64::try_from(lease.as_micros()).unwrap_or(i64::MAX));
        let claim = IdempotencyClaim {
            scope: scope.clone(),
            key: key.to_owned(),
            token: token.clone(),
        };
        let mut tx = self.begin_write().await?;
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
            "INSERT INTO idempotency_keys (app_id, env, idempotency_key, fingerprint, created_at, claim_token, lease_until) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(key)
        .bind(fingerprint)
        .bind(now.as_micros())
        .bind(&token)
        .bind(lease_until)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let state = if inserted == 1 {
            IdempotencyState::Started(claim)
        } else {
            let row = sqlx::query(
                "SELECT fingerprint, status_code, response, response_type FROM idempotency_keys \
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
                    content_type: opt_text(&row, "response_type")?,
                    body: opt_text(&row, "response")?.unwrap_or_default(),
                }
            } else {
                // Unanswered: taken over when its lease has run out.
                let taken = sqlx::query(
                    "UPDATE idempotency_keys SET claim_token = $1, lease_until = $2 \
                     WHERE app_id = $3 AND env = $4 AND idempotency_key = $5 AND status_code IS NULL \
                     AND (lease_until IS NULL OR lease_until < $6)",
                )
                .bind(&token)
                .bind(lease_until)
                .bind(scope.app_id.as_str())
                .bind(scope.env.as_str())
                .bind(key)
                .bind(now.as_micros())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if taken == 1 {
                    IdempotencyState::Started(claim)
                } else {
                    IdempotencyState::InProgress
                }
            }
        };
        tx.commit().await?;
        Ok(state)
    }

    /// Records the response to replay for the claimed key, in the transaction of the write it
    /// answers when one is held, and commits both. `false` when the claim was taken over by
    /// a retry (its lease ran out): then nothing of this request is kept.
    pub async fn idempotency_finish(
        &self,
        claim: &IdempotencyClaim,
        status: u16,
        content_type: Option<&str>,
        body: &str,
    ) -> Result<bool> {
        let held = take_held();
        let (mut tx, cached) = match held {
            Some(held) => (held.tx, held.cached),
            None => (self.write.begin().await?, None),
        };
        let answered = sqlx::query(
            "UPDATE idempotency_keys SET status_code = $1, response = $2, response_type = $7, \
             lease_until = NULL WHERE app_id = $3 AND env = $4 AND idempotency_key = $5 \
             AND claim_token = $6 AND status_code IS NULL",
        )
        .bind(i64::from(status))
        .bind(body)
        .bind(claim.scope.app_id.as_str())
        .bind(claim.scope.env.as_str())
        .bind(&claim.key)
        .bind(&claim.token)
        .bind(content_type)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if answered != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        self.commit_now(tx, cached.as_ref()).await?;
        Ok(true)
    }

    /// Forgets a claim whose request failed in a way worth retrying (a 5xx), with whatever
    /// write it held.
    pub async fn idempotency_release(&self, claim: &IdempotencyClaim) -> Result<()> {
        if let Some(held) = take_held() {
            held.tx.rollback().await?;
        }
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE app_id = $1 AND env = $2 AND idempotency_key = $3 \
             AND claim_token = $4 AND status_code IS NULL",
        )
        .bind(claim.scope.app_id.as_str())
        .bind(claim.scope.env.as_str())
        .bind(&claim.key)
        .bind(&claim.token)
        .execute(&self.write)
        .await?;
        Ok(())
    }
}
