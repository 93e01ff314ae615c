//! Recording the attempts a dispatcher made: the attempt log, where each delivery stands now,
//! and the health of each endpoint. A pass's attempts are recorded together, in a handful of
//! statements: a statement per attempt and table made each pass wait for a couple of hundred
//! round trips, on a database busy with the writes that make the events.

use std::collections::HashSet;

use memberd_core::NewEvent;
use sqlx::AnyConnection;

use super::deliveries::{AttemptResult, DeliveryNext};
use crate::rows::text;
use crate::sql::Sql;
use crate::{events, Backend, Result, Store};

/// Rows per statement: far below either backend's limit on bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

impl Store {
    /// Logs attempts, in the order given, and applies what follows from each: the delivery is
    /// delivered, retried later or given up on, and the endpoint's health is updated (and it
    /// is turned off, with a `webhook.endpoint.disabled` event, when asked). All in one
    /// transaction: a commit per attempt made every delivery wait for a WAL flush. An attempt
    /// whose delivery is gone (its endpoint was deleted meanwhile) is dropped.
    pub async fn record_attempts(&self, results: &[AttemptResult]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            lock_endpoints(&mut tx, results).await?;
        }
        let live = live_deliveries(&mut tx, results).await?;
        let results: Vec<&AttemptResult> = results
            .iter()
            .filter(|r| live.contains(r.attempt.delivery_id.as_str()))
            .collect();
        for chunk in results.chunks(ROWS_PER_STATEMENT) {
            insert_attempts(&mut tx, chunk).await?;
            update_deliveries(&mut tx, chunk).await?;
        }
        update_health(&mut tx, &results).await?;
        for result in &results {
            if let Some(reason) = &result.disable_endpoint {
                disable_endpoint(&mut tx, result, reason).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Locks the attempts' endpoints, in the order of their ids, before any of their deliveries. A
/// deleted endpoint's deliveries go with it (a cascade that locks the endpoint, then its
/// deliveries), and two dispatchers may record attempts at the same endpoints: taking the
/// locks in another order made each wait for the other until PostgreSQL ended one of them.
async fn lock_endpoints(tx: &mut AnyConnection, results: &[AttemptResult]) -> Result<()> {
    let mut ids: Vec<&str> = results
        .iter()
        .map(|r| r.attempt.endpoint_id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut q = Sql::new("SELECT id FROM webhook_endpoints WHERE id");
        q.in_list(chunk.iter().copied())
            .push(" ORDER BY id FOR NO KEY UPDATE");
        q.query().fetch_all(&mut *tx).await?;
    }
    Ok(())
}

async fn live_deliveries(
    tx: &mut AnyConnection,
    results: &[AttemptResult],
) -> Result<HashSet<String>> {
    let mut live = HashSet::with_capacity(results.len());
    for chunk in results.chunks(ROWS_PER_STATEMENT) {
        let mut q = Sql::new("SELECT id FROM webhook_deliveries WHERE id");
        q.in_list(chunk.iter().map(|r| r.attempt.delivery_id.as_str()));
        for row in q.query().fetch_all(&mut *tx).await? {
            live.insert(text(&row, "id")?);
        }
    }
    Ok(live)
}

async fn insert_attempts(tx: &mut AnyConnection, results: &[&AttemptResult]) -> Result<()> {
    let mut q = Sql::new(
        "INSERT INTO webhook_attempts (id, app_id, env, delivery_id, endpoint_id, event_id, attempt, \
         trigger, started_at, duration_ms, status_code, response_body, error) VALUES ",
    );
    for (i, result) in results.iter().enumerate() {
        let a = &result.attempt;
        q.push(if i == 0 { "(" } else { ", (" });
        q.text(a.id.as_str()).push(", ");
        q.text(result.scope.app_id.as_str()).push(", ");
        q.text(result.scope.env.as_str()).push(", ");
        q.text(a.delivery_id.as_str()).push(", ");
        q.text(a.endpoint_id.as_str()).push(", ");
        q.text(a.event_id.as_str()).push(", ");
        q.int(i64::from(a.attempt)).push(", ");
        q.text(a.trigger.as_str()).push(", ");
        q.int(a.started_at.as_micros()).push(", ");
        q.int(a.duration_ms).push(", ");
        q.opt_int(a.status_code.map(i64::from)).push(", ");
        q.opt_text(a.response_body.as_deref()).push(", ");
        q.opt_text(a.error.as_deref()).push(")");
    }
    q.query().execute(&mut *tx).await?;
    Ok(())
}

/// Where each delivery stands after its attempt, for the dispatcher that holds its lease.
async fn update_deliveries(tx: &mut AnyConnection, results: &[&AttemptResult]) -> Result<()> {
    // VALUES names its columns column1, column2, … on both backends.
    let mut q = Sql::new(
        "UPDATE webhook_deliveries SET status = v.column2, attempts = v.column3, \
         next_attempt_at = v.column4, lease_until = NULL, lease_owner = NULL, replay = 0, \
         last_attempt_at = v.column5, updated_at = v.column5 FROM (VALUES ",
    );
    for (i, result) in results.iter().enumerate() {
        let (status, next_at) = match result.next {
            DeliveryNext::Delivered => ("delivered", None),
            DeliveryNext::RetryAt(at) => ("pending", Some(at.as_micros())),
            DeliveryNext::GiveUp => ("failed", None),
        };
        q.push(if i == 0 { "(" } else { ", (" });
        q.text(result.attempt.delivery_id.as_str()).push(", ");
        q.text(status).push(", ");
        q.int(i64::from(result.attempt.attempt)).push(", ");
        q.opt_int(next_at).push(", ");
        q.int(result.now.as_micros()).push(", ");
        q.text(result.lease_owner.as_str()).push(")");
    }
    q.push(") AS v WHERE webhook_deliveries.id = v.column1 AND webhook_deliveries.lease_owner = v.column6");
    q.query().execute(&mut *tx).await?;
    Ok(())
}

/// An endpoint's health after the attempts, in their order. A run of successes comes to what
/// its last one says (succeeded then, failing since never); a run of failures to what its
/// first one says (failing since then, unless it already was): one statement per run.
async fn update_health(tx: &mut AnyConnection, results: &[&AttemptResult]) -> Result<()> {
    let mut endpoints: Vec<&str> = Vec::new();
    for result in results {
        let id = result.attempt.endpoint_id.as_str();
        if !endpoints.contains(&id) {
            endpoints.push(id);
        }
    }
    for endpoint in endpoints {
        let mut runs: Vec<(bool, i64)> = Vec::new();
        for result in results
            .iter()
            .filter(|r| r.attempt.endpoint_id.as_str() == endpoint)
        {
            let success = result.next == DeliveryNext::Delivered;
            let now = result.now.as_micros();
            match runs.last_mut() {
                Some((true, at)) if success => *at = now,
                Some((false, _)) if !success => {}
                _ => runs.push((success, now)),
            }
        }
        for (success, at) in runs {
            let health = if success {
                "UPDATE webhook_endpoints SET last_success_at = $1, failing_since = NULL WHERE id = $2"
            } else {
                "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) WHERE id = $2"
            };
            sqlx::query(health)
                .bind(at)
                .bind(endpoint)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// Turns the endpoint off and records `webhook.endpoint.disabled`, unless it already is off.
async fn disable_endpoint(
    tx: &mut AnyConnection,
    result: &AttemptResult,
    reason: &str,
) -> Result<()> {
    let endpoint_id = result.attempt.endpoint_id.as_str();
    let now = result.now.as_micros();
    let turned_off = sqlx::query(
        "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $1, updated_at = $2 \
         WHERE id = $3 AND enabled = 1",
    )
    .bind(reason)
    .bind(now)
    .bind(endpoint_id)
    .execute(&mut *tx)
    .await?;
    if turned_off.rows_affected() == 1 {
        let url = sqlx::query("SELECT url FROM webhook_endpoints WHERE id = $1")
            .bind(endpoint_id)
            .fetch_one(&mut *tx)
            .await?;
        let event = NewEvent::endpoint_disabled(endpoint_id, &text(&url, "url")?, reason);
        events::record(tx, &result.scope, &[event], result.now).await?;
    }
    Ok(())
}
