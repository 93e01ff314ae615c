//! The dispatcher's side of the store: fan the event log out into deliveries, claim due ones
//! with a lease, record each attempt and what follows from it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use memberd_core::event::Event;
use memberd_core::webhook::Endpoint;
use memberd_core::{AppId, AttemptId, DeliveryId, EndpointId, EventId, Scope, Timestamp};
use sqlx::any::AnyRow;

use super::endpoints::{endpoint_from_row, load_endpoint, ENDPOINT_COLUMNS};
use crate::events::{event_from_row, FeedRead, FeedWait};
use crate::plans::{fetch_page, page_tail};
use crate::rows::{env, int, opt_text, text, ts};
use crate::sql::Sql;
use crate::{Backend, EventCursor, Page, PageRequest, Result, Store, StoreError};

/// A delivery a worker holds the lease of, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: DeliveryId,
    pub scope: Scope,
    pub endpoint: Endpoint,
    pub event: Event,
    /// Attempts made before this one.
    pub attempts: u32,
    /// Whether an operator asked for this attempt.
    pub replay: bool,
}

/// One attempt, as logged.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub id: AttemptId,
    pub delivery_id: DeliveryId,
    pub endpoint_id: EndpointId,
    pub event_id: EventId,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// `automatic` or `manual`.
    pub trigger: String,
    pub started_at: Timestamp,
    pub duration_ms: i64,
    pub status_code: Option<u16>,
    /// The start of the response body, bounded.
    pub response_body: Option<String>,
    pub error: Option<String>,
}

/// What becomes of a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeliveryNext {
    Delivered,
    RetryAt(Timestamp),
    GiveUp,
}

#[derive(Debug, Clone)]
pub struct AttemptResult {
    pub scope: Scope,
    pub attempt: AttemptRecord,
    pub next: DeliveryNext,
    /// Turn the endpoint off, for this reason (`gone`, `failing`).
    pub disable_endpoint: Option<String>,
    pub lease_owner: String,
    pub now: Timestamp,
}

#[derive(Debug, Clone)]
pub enum AttemptFilter {
    Endpoint(EndpointId),
    Event(EventId),
    /// The attempts at any of these events (none when the list is empty).
    Events(Vec<EventId>),
}

const ATTEMPT_COLUMNS: &str =
    "seq, id, delivery_id, endpoint_id, event_id, attempt, trigger, started_at, \
    duration_ms, status_code, response_body, error";

fn attempt_from_row(row: &AnyRow) -> Result<AttemptRecord> {
    let status: Option<i64> = sqlx::Row::try_get(row, "status_code")?;
    Ok(AttemptRecord {
        id: AttemptId::from_trusted(text(row, "id")?),
        delivery_id: DeliveryId::from_trusted(text(row, "delivery_id")?),
        endpoint_id: EndpointId::from_trusted(text(row, "endpoint_id")?),
        event_id: EventId::from_trusted(text(row, "event_id")?),
        attempt: u32::try_from(int(row, "attempt")?).unwrap_or(u32::MAX),
        trigger: text(row, "trigger")?,
        started_at: ts(row, "started_at")?,
        duration_ms: int(row, "duration_ms")?,
        status_code: status.and_then(|s| u16::try_from(s).ok()),
        response_body: opt_text(row, "response_body")?,
        error: opt_text(row, "error")?,
    })
}

/// Takes this transaction's turn at fanning out `endpoint` (PostgreSQL), and returns the
/// endpoint's cursor as the last turn left it; `None` when another dispatcher has the turn or
/// the endpoint is gone. The turn is an advisory lock, so that nothing else that writes the
/// endpoint's row (an attempt's outcome, an operator's change) waits for it.
async fn take_turn_at(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    endpoint: &EndpointId,
) -> Result<Option<EventCursor>> {
    let row = sqlx::query(
        "SELECT event_cursor_tx, event_cursor FROM webhook_endpoints \
         WHERE id = $1 AND pg_try_advisory_xact_lock(hashtextextended('memberd fan-out ' || $1, 0))",
    )
    .bind(endpoint.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    row.map(|row| {
        Ok(EventCursor {
            tx: int(&row, "event_cursor_tx")?,
            seq: int(&row, "event_cursor")?,
        })
    })
    .transpose()
}

impl Store {
    /// Turns new events into deliveries for every enabled endpoint that wants them, at most
    /// `batch` events per endpoint per call. Returns how many deliveries it created. Safe to
    /// run from several workers at once: a delivery exists once per endpoint and event, and
    /// an endpoint's cursor only moves forward from where a worker read it.
    pub async fn fan_out(&self, batch: u32) -> Result<usize> {
        let rows = sqlx::query(&format!(
            "SELECT {ENDPOINT_COLUMNS}, event_cursor_tx, event_cursor FROM webhook_endpoints \
             WHERE enabled = 1 ORDER BY seq"
        ))
        .fetch_all(self.reads().await?)
        .await?;
        // Events that committed but are not settled yet are waited for briefly, once for
        // all endpoints: a dispatcher woken by a write then sends its event at once, and one
        // held back by a long transaction of this database still gets on with its deliveries.
        let wait = FeedWait::ForAny(Instant::now() + Duration::from_millis(50));
        let mut created = 0;
        for row in &rows {
            let endpoint = endpoint_from_row(row)?;
            let scope = Scope::new(AppId::from_trusted(text(row, "app_id")?), env(row, "env")?);
            let cursor = EventCursor {
                tx: int(row, "event_cursor_tx")?,
                seq: int(row, "event_cursor")?,
            };
            created += self
                .fan_out_endpoint(&scope, &endpoint, cursor, batch, wait)
                .await?;
        }
        Ok(created)
    }

    async fn fan_out_endpoint(
        &self,
        scope: &Scope,
        endpoint: &Endpoint,
        cursor: EventCursor,
        batch: u32,
        wait: FeedWait,
    ) -> Result<usize> {
        let read = FeedRead {
            scope,
            types: &[],
            after: Some(cursor),
            limit: i64::from(batch),
        };
        let events = self.read_feed(&read, wait).await?;
        let Some(&(new_cursor, _)) = events.last() else {
            return Ok(0);
        };
        // Several dispatchers over one PostgreSQL database take turns at an endpoint with new
        // events: those that all read the same cursor would each build the same deliveries,
        // and each insert would wait for the others' transactions to end before finding them
        // there. An endpoint with none costs a pass one read, as before. One whose cursor moved
        // since it was read was just fanned out by another: what that left is for the next
        // pass (reading it again here would hold a connection while waiting for another).
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres
            && take_turn_at(&mut tx, &endpoint.id).await? != Some(cursor)
        {
            return Ok(0);
        }
        // The cursor moves first, and only from where this pass read it. The turn alone does
        // not settle that: the check above reads a snapshot taken before its lock, so a pass
        // that takes the turn just as another commits sees the old cursor there. Moving it
        // first also locks the endpoint before its deliveries, in the order every other
        // writer takes them. On SQLite the turn is the write lock.
        let moved = sqlx::query(
            "UPDATE webhook_endpoints SET event_cursor_tx = $1, event_cursor = $2 \
             WHERE id = $3 AND event_cursor_tx = $4 AND event_cursor = $5",
        )
        .bind(new_cursor.tx)
        .bind(new_cursor.seq)
        .bind(endpoint.id.as_str())
        .bind(cursor.tx)
        .bind(cursor.seq)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if moved == 0 {
            return Ok(0);
        }
        let mut created = 0;
        let wanted: Vec<_> = events
            .into_iter()
            .filter(|(_, event)| endpoint.wants(&event.kind, &event.data).is_some())
            .map(|(_, event)| (event.id, event.created_at))
            .collect();
        if !wanted.is_empty() {
            let mut insert = Sql::new(
                "INSERT INTO webhook_deliveries (id, app_id, env, endpoint_id, event_id, status, attempts, \
                 next_attempt_at, created_at, updated_at) VALUES ",
            );
            for (i, (event_id, created_at)) in wanted.iter().enumerate() {
                if i > 0 {
                    insert.push(", ");
                }
                insert.push("(");
                insert.text(DeliveryId::generate().as_str()).push(", ");
                insert.text(scope.app_id.as_str()).push(", ");
                insert.text(scope.env.as_str()).push(", ");
                insert.text(endpoint.id.as_str()).push(", ");
                // Due at once, whatever the dispatcher's clock says.
                insert.text(event_id.as_str()).push(", 'pending', 0, 0, ");
                insert.int(created_at.as_micros()).push(", ");
                insert.int(created_at.as_micros()).push(")");
            }
            insert.push(" ON CONFLICT DO NOTHING");
            created = insert.query().execute(&mut *tx).await?.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(created)
    }

    /// Leases up to `limit` deliveries that are due at `now` and belong to enabled endpoints,
    /// until `lease_until`. A delivery under a live lease is never handed out again, on either
    /// backend: the lease condition is checked again on the row being updated.
    pub async fn claim_deliveries(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<DueDelivery>> {
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE OF d SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // The rows are picked once, in a CTE: as `id IN (SELECT … LIMIT n SKIP LOCKED)`,
        // PostgreSQL may run the subquery again for each row it updates, each time skipping
        // what it locked before, and lease more than `limit`.
        let claimed = sqlx::query(&format!(
            "WITH picked AS (SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                 WHERE d.status = 'pending' AND d.next_attempt_at <= $3 \
                 AND (d.lease_until IS NULL OR d.lease_until < $3) AND e.enabled = 1 \
                 ORDER BY d.next_attempt_at, d.seq LIMIT $4{skip_locked}) \
             UPDATE webhook_deliveries SET lease_until = $1, lease_owner = $2 FROM picked \
             WHERE webhook_deliveries.id = picked.id AND webhook_deliveries.status = 'pending' \
             AND (webhook_deliveries.lease_until IS NULL OR webhook_deliveries.lease_until < $3) \
             RETURNING webhook_deliveries.id, webhook_deliveries.app_id, webhook_deliveries.env, \
             webhook_deliveries.endpoint_id, webhook_deliveries.event_id, webhook_deliveries.attempts, \
             webhook_deliveries.replay"
        ))
        .bind(lease_until.as_micros())
        .bind(owner)
        .bind(now.as_micros())
        .bind(i64::from(limit))
        .fetch_all(self.writer().await?)
        .await?;
        if claimed.is_empty() {
            return Ok(Vec::new());
        }
        let endpoint_ids: Vec<String> = claimed
            .iter()
            .map(|r| text(r, "endpoint_id"))
            .collect::<Result<_>>()?;
        let event_ids: Vec<String> = claimed
            .iter()
            .map(|r| text(r, "event_id"))
            .collect::<Result<_>>()?;
        let mut conn = self.reads().await?.acquire().await?;
        let mut q = Sql::new(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id"
        ));
        q.in_list(endpoint_ids.iter().map(String::as_str));
        let endpoints: HashMap<String, Endpoint> = q
            .query()
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| endpoint_from_row(r).map(|e| (e.id.to_string(), e)))
            .collect::<Result<_>>()?;
        let mut q = Sql::new("SELECT id, type, data, created_at FROM events WHERE id");
        q.in_list(event_ids.iter().map(String::as_str));
        let events: HashMap<String, Event> = q
            .query()
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|r| event_from_row(r).map(|e| (e.id.to_string(), e)))
            .collect::<Result<_>>()?;
        let mut due = Vec::with_capacity(claimed.len());
        for row in &claimed {
            let endpoint_id = text(row, "endpoint_id")?;
            let event_id = text(row, "event_id")?;
            let (Some(endpoint), Some(event)) =
                (endpoints.get(&endpoint_id), events.get(&event_id))
            else {
                // Deleted between the claim and the read: nothing left to send.
                continue;
            };
            due.push(DueDelivery {
                id: DeliveryId::from_trusted(text(row, "id")?),
                scope: Scope::new(AppId::from_trusted(text(row, "app_id")?), env(row, "env")?),
                endpoint: endpoint.clone(),
                event: event.clone(),
                attempts: u32::try_from(int(row, "attempts")?).unwrap_or(u32::MAX),
                replay: int(row, "replay")? != 0,
            });
        }
        Ok(due)
    }

    /// The attempt log of an endpoint or of an event, newest first.
    pub async fn list_attempts(
        &self,
        scope: &Scope,
        filter: &AttemptFilter,
        page: PageRequest,
    ) -> Result<Page<AttemptRecord>> {
        let filtered = |sql: &mut Sql| {
            sql.push(" WHERE app_id = ").text(scope.app_id.as_str());
            sql.push(" AND env = ").text(scope.env.as_str());
            match filter {
                AttemptFilter::Endpoint(id) => sql.push(" AND endpoint_id = ").text(id.as_str()),
                AttemptFilter::Event(id) => sql.push(" AND event_id = ").text(id.as_str()),
                AttemptFilter::Events(ids) if ids.is_empty() => sql.push(" AND 1 = 0"),
                AttemptFilter::Events(ids) => {
                    sql.push(" AND event_id IN (");
                    for (i, id) in ids.iter().enumerate() {
                        if i > 0 {
                            sql.push(", ");
                        }
                        sql.text(id.as_str());
                    }
                    sql.push(")")
                }
            };
        };
        let mut count = Sql::new("SELECT COUNT(*) AS n FROM webhook_attempts");
        filtered(&mut count);
        let mut list = Sql::new(format!("SELECT {ATTEMPT_COLUMNS} FROM webhook_attempts"));
        filtered(&mut list);
        page_tail(&mut list, "seq", page);
        fetch_page(self.reads().await?, &count, &list, page, attempt_from_row).await
    }

    /// Sends an event to an endpoint again, now, whatever became of it before. `NotFound`
    /// for an endpoint or event of another scope.
    pub async fn redeliver(
        &self,
        scope: &Scope,
        endpoint_id: &EndpointId,
        event_id: &EventId,
        now: Timestamp,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        if load_endpoint(&mut tx, scope, endpoint_id).await?.is_none() {
            return Err(StoreError::not_found("webhook endpoint", endpoint_id));
        }
        let event = sqlx::query("SELECT id FROM events WHERE app_id = $1 AND env = $2 AND id = $3")
            .bind(scope.app_id.as_str())
            .bind(scope.env.as_str())
            .bind(event_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if event.is_none() {
            return Err(StoreError::not_found("event", event_id));
        }
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, app_id, env, endpoint_id, event_id, status, attempts, replay, \
             next_attempt_at, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', 0, 1, 0, $6, $6) \
             ON CONFLICT (endpoint_id, event_id) DO UPDATE SET status = 'pending', attempts = 0, replay = 1, \
             next_attempt_at = 0, updated_at = $6",
        )
        .bind(DeliveryId::generate().as_str())
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(endpoint_id.as_str())
        .bind(event_id.as_str())
        .bind(now.as_micros())
        .execute(&mut *tx)
        .await?;
        self.commit_write(tx, None).await
    }

    /// Sends again every delivery to an endpoint that failed for good and was made at or after
    /// `since`. Returns how many.
    pub async fn recover_endpoint(
        &self,
        scope: &Scope,
        endpoint_id: &EndpointId,
        since: Timestamp,
        now: Timestamp,
    ) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        if load_endpoint(&mut tx, scope, endpoint_id).await?.is_none() {
            return Err(StoreError::not_found("webhook endpoint", endpoint_id));
        }
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET status = 'pending', attempts = 0, replay = 1, next_attempt_at = 0, \
             updated_at = $1 WHERE endpoint_id = $2 AND status = 'failed' AND created_at >= $3",
        )
        .bind(now.as_micros())
        .bind(endpoint_id.as_str())
        .bind(since.as_micros())
        .execute(&mut *tx)
        .await?;
        self.commit_write(tx, None).await?;
        Ok(done.rows_affected())
    }

    /// How many deliveries are still pending, across every scope (for tests and benchmarks
    /// that wait for the dispatcher to finish).
    pub async fn pending_deliveries(&self) -> Result<i64> {
        let row =
            sqlx::query("SELECT COUNT(*) AS n FROM webhook_deliveries WHERE status = 'pending'")
                .fetch_one(self.reads().await?)
                .await?;
        int(&row, "n")
    }
}
