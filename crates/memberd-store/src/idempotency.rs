use memberd_core::{Scope, Timestamp};

use crate::{Result, Store};

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
        todo!()
    }

    /// Records the response to replay for `key`.
    pub async fn idempotency_finish(
        &self,
        scope: &Scope,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<()> {
        todo!()
    }

    /// Forgets a claim whose request failed in a way worth retrying (a 5xx).
    pub async fn idempotency_release(&self, scope: &Scope, key: &str) -> Result<()> {
        todo!()
    }
}
