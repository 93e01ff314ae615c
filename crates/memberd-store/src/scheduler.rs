//! The lifecycle scheduler's side of the store: leasing plan connections whose next
//! transition is due, and applying a transition with its payment and events in one
//! transaction.
//!
//! A transition is applied only if the connection still has exactly the transition that was
//! claimed ahead of it, so two workers (or a worker and an API call) can never apply one
//! twice, or bill one period twice: the second finds the connection moved on.

use memberd_core::lifecycle::{Charge, Due, DunningPolicy};
use memberd_core::{
    AppId, ConnectionId, MemberId, Plan, PlanConnection, Scope, TestClockId, Timestamp,
};

use sqlx::AnyConnection;

use crate::connections::{load_views, lock_member, touch_member, update};
use crate::plans::load_plan;
use crate::rows::{env, opt_text, text};
use crate::{events, Backend, Payment, PaymentMethod, Result, Store};

/// Which connections a pass of the scheduler looks at.
#[derive(Debug, Clone)]
pub enum DueBy {
    /// Connections that live by the system clock, due at this time.
    System(Timestamp),
    /// Connections of the members of a test clock, due at its frozen time.
    TestClock(TestClockId, Timestamp),
}

/// A connection leased to one worker.
#[derive(Debug, Clone)]
pub struct ClaimedConnection {
    pub scope: Scope,
    pub id: ConnectionId,
    pub member_id: MemberId,
    /// Whether it lives by a test clock: its transitions then happen at the time they fall due.
    pub on_test_clock: bool,
}

/// What charging a claimed connection needs, read before any money moves.
#[derive(Debug, Clone)]
pub struct DueContext {
    pub connection: PlanConnection,
    /// The plan the connection is scheduled to move to, if any and if it still exists.
    pub scheduled_plan: Option<Plan>,
    /// The member's newest payment method.
    pub payment_method: Option<PaymentMethod>,
}

/// How applying a transition ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// The connection moved on since it was claimed (another worker or an API call changed
    /// it): nothing was written, and a charge made for it must be given back.
    Stale,
}

async fn release(conn: &mut AnyConnection, id: &ConnectionId) -> Result<()> {
    sqlx::query("UPDATE plan_connections SET lease_until = NULL WHERE id = $1")
        .bind(id.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl Store {
    /// Leases up to `limit` connections whose next transition is due, until `lease_until`.
    /// A lease that ran out (its worker died) can be taken again.
    pub async fn claim_due_connections(
        &self,
        due_by: &DueBy,
        system_now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<ClaimedConnection>> {
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let (clock_filter, clock_id, due_at) = match due_by {
            DueBy::System(now) => ("test_clock_id IS NULL AND $5 = ''", "", *now),
            DueBy::TestClock(id, frozen) => ("test_clock_id = $5", id.as_str(), *frozen),
        };
        let rows = sqlx::query(&format!(
            "UPDATE plan_connections SET lease_until = $1 \
             WHERE id IN (SELECT id FROM plan_connections \
                 WHERE next_action_at <= $2 AND {clock_filter} AND (lease_until IS NULL OR lease_until < $3) \
                 ORDER BY next_action_at LIMIT $4{skip_locked}) \
             AND next_action_at <= $2 AND (lease_until IS NULL OR lease_until < $3) \
             RETURNING id, app_id, env, member_id, test_clock_id"
        ))
        .bind(lease_until.as_micros())
        .bind(due_at.as_micros())
        .bind(system_now.as_micros())
        .bind(i64::from(limit))
        .bind(clock_id)
        .fetch_all(self.writer().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ClaimedConnection {
                    scope: Scope {
                        app_id: AppId::from_trusted(text(row, "app_id")?),
                        env: env(row, "env")?,
                    },
                    id: ConnectionId::from_trusted(text(row, "id")?),
                    member_id: MemberId::from_trusted(text(row, "member_id")?),
                    on_test_clock: opt_text(row, "test_clock_id")?.is_some(),
                })
            })
            .collect()
    }

    /// Gives a lease back, so that the connection is looked at again when it is next due.
    pub async fn release_connection(&self, id: &ConnectionId) -> Result<()> {
        let mut conn = self.writer().await?.acquire().await?;
        release(&mut conn, id).await
    }

    /// Reads what charging a claimed connection needs. `None` when it is gone.
    pub async fn due_context(&self, claimed: &ClaimedConnection) -> Result<Option<DueContext>> {
        let scope = &claimed.scope;
        let mut conn = self.writer().await?.acquire().await?;
        let connection = load_views(&mut conn, scope, &[&claimed.member_id])
            .await?
            .into_iter()
            .map(|v| v.connection)
            .find(|c| c.id == claimed.id);
        let Some(connection) = connection else {
            return Ok(None);
        };
        let scheduled_plan = match &connection.scheduled_plan_id {
            Some(plan_id) => load_plan(&mut conn, scope, plan_id).await?,
            None => None,
        };
        let payment_method =
            crate::payment_methods::load(&mut conn, scope, &claimed.member_id, Some(1))
                .await?
                .pop();
        Ok(Some(DueContext {
            connection,
            scheduled_plan,
            payment_method,
        }))
    }

    /// Applies the transition `expected` (when, and what) that was claimed and charged for,
    /// at `at`, with the payment the charge made (if it charged), and releases the lease.
    pub async fn apply_due(
        &self,
        claimed: &ClaimedConnection,
        expected: (Timestamp, Due),
        payment: Option<&Payment>,
        at: Timestamp,
        policy: &DunningPolicy,
    ) -> Result<Applied> {
        let scope = &claimed.scope;
        let mut tx = self.begin_write().await?;
        if lock_member(&mut tx, self, scope, &claimed.member_id)
            .await?
            .is_none()
        {
            return Ok(Applied::Stale);
        }
        let current = load_views(&mut tx, scope, &[&claimed.member_id])
            .await?
            .into_iter()
            .map(|v| v.connection)
            .find(|c| c.id == claimed.id);
        let Some(current) = current.filter(|c| c.next_due() == Some(expected)) else {
            return Ok(Applied::Stale);
        };
        let scheduled_plan = match &current.scheduled_plan_id {
            Some(plan_id) => load_plan(&mut tx, scope, plan_id).await?,
            None => None,
        };
        let prepared = current.prepare_due(expected.1, scheduled_plan.as_ref());
        let charged = payment.map(|p| (p.amount, p.currency.clone()));
        if prepared.charge != charged {
            return Ok(Applied::Stale);
        }
        let outcome = payment.map(|p| {
            if p.succeeded {
                Charge::Succeeded
            } else {
                Charge::Failed {
                    reason: p.failure_reason.clone().unwrap_or_default(),
                }
            }
        });
        let (next, new_events) = prepared.finish(at, outcome.as_ref(), policy);
        update(&mut tx, scope, &next).await?;
        release(&mut tx, &claimed.id).await?;
        if let Some(payment) = payment {
            crate::payments::insert(&mut tx, scope, payment).await?;
        }
        touch_member(&mut tx, scope, &claimed.member_id, at).await?;
        events::record(&mut tx, scope, &new_events, at).await?;
        tx.commit().await?;
        self.read_cache.changed_here(scope, &self.write).await;
        Ok(Applied::Done)
    }

    /// Puts a claimed connection that is not due after all (written before the scheduler
    /// kept its time exactly) back on its true schedule.
    pub async fn reschedule_connection(&self, connection: &PlanConnection) -> Result<()> {
        sqlx::query(
            "UPDATE plan_connections SET next_action_at = $1, lease_until = NULL WHERE id = $2",
        )
        .bind(connection.next_due().map(|(at, _)| at.as_micros()))
        .bind(connection.id.as_str())
        .execute(self.writer().await?)
        .await?;
        Ok(())
    }
}
