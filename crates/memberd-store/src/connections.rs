use memberd_core::access::Grant;
use memberd_core::{
    ConnectionCommand, ConnectionId, ConnectionStatus, ConnectionType, Interval, MemberId,
    PlanConnection, PlanId, PriceId, Scope, Timestamp,
};
use sqlx::AnyConnection;

use crate::plans::load_plan;
use crate::read_cache::{Grants, Lookup};
use crate::reads::Reader;
use crate::rows::Columns;
use crate::rows::{
    flag, int, opt_micros, opt_text, opt_ts, parsed, string_list, text, ts, unique_violation,
};
use crate::sql::Sql;
use crate::{events, Payment, Result, Store, StoreError};

/// A plan connection with the facts of its plan that faces render beside it.
#[derive(Debug, Clone)]
pub struct ConnectionView {
    pub connection: PlanConnection,
    /// The connection's number in its environment (each counts its own): the numeric id
    /// Appstle's face gives a membership contract.
    pub number: i64,
    pub plan_name: String,
    pub plan_permissions: Vec<String>,
}

/// A change asked of a connection, by id; the store loads what the domain needs.
#[derive(Debug, Clone)]
pub enum ConnectionRequest {
    Cancel {
        reason: Option<String>,
        at_period_end: bool,
    },
    Pause {
        resume_at: Option<Timestamp>,
    },
    Resume,
    Replace {
        plan_id: PlanId,
        price_id: Option<PriceId>,
        at_period_end: bool,
    },
}

/// The columns `view_from_row` reads, of `plan_connections c` joined with `plans p`.
macro_rules! view_columns {
    () => {
        "c.contract_number, c.id, c.member_id, c.plan_id, c.price_id, c.connection_type, c.status, \
         c.amount, c.currency, c.billing_interval, c.interval_count, c.start_date, c.current_period_start, \
         c.current_period_end, c.trial_end, c.cancel_at_period_end, c.canceled_at, c.cancel_reason, \
         c.paused_at, c.resume_at, c.end_date, c.retry_count, c.next_retry_at, c.scheduled_plan_id, \
         c.scheduled_price_id, c.created_at, c.updated_at, \
         p.name AS plan_name, p.permissions AS plan_permissions"
    };
}
pub(crate) use view_columns;

const VIEW_SELECT: &str = concat!(
    "SELECT ",
    view_columns!(),
    " FROM plan_connections c JOIN plans p ON p.id = c.plan_id"
);

fn connection_from_row<R: Columns + ?Sized>(row: &R) -> Result<PlanConnection> {
    let interval = opt_text(row, "billing_interval")?
        .map(|s| Interval::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("interval {s:?}"))))
        .transpose()?;
    Ok(PlanConnection {
        id: ConnectionId::from_trusted(text(row, "id")?),
        member_id: MemberId::from_trusted(text(row, "member_id")?),
        plan_id: PlanId::from_trusted(text(row, "plan_id")?),
        price_id: opt_text(row, "price_id")?.map(PriceId::from_trusted),
        connection_type: parsed(row, "connection_type", ConnectionType::parse)?,
        status: parsed(row, "status", ConnectionStatus::parse)?,
        amount: int(row, "amount")?,
        currency: opt_text(row, "currency")?,
        interval,
        interval_count: u32::try_from(int(row, "interval_count")?)
            .map_err(|e| StoreError::Corrupt(format!("interval_count: {e}")))?,
        start_date: ts(row, "start_date")?,
        current_period_start: opt_ts(row, "current_period_start")?,
        current_period_end: opt_ts(row, "current_period_end")?,
        trial_end: opt_ts(row, "trial_end")?,
        cancel_at_period_end: flag(row, "cancel_at_period_end")?,
        canceled_at: opt_ts(row, "canceled_at")?,
        cancel_reason: opt_text(row, "cancel_reason")?,
        paused_at: opt_ts(row, "paused_at")?,
        resume_at: opt_ts(row, "resume_at")?,
        end_date: opt_ts(row, "end_date")?,
        retry_count: u32::try_from(int(row, "retry_count")?)
            .map_err(|e| StoreError::Corrupt(format!("retry_count: {e}")))?,
        next_retry_at: opt_ts(row, "next_retry_at")?,
        scheduled_plan_id: opt_text(row, "scheduled_plan_id")?.map(PlanId::from_trusted),
        scheduled_price_id: opt_text(row, "scheduled_price_id")?.map(PriceId::from_trusted),
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub(crate) fn view_from_row<R: Columns + ?Sized>(row: &R) -> Result<ConnectionView> {
    Ok(ConnectionView {
        connection: connection_from_row(row)?,
        number: int(row, "contract_number")?,
        plan_name: text(row, "plan_name")?,
        plan_permissions: string_list(row, "plan_permissions")?,
    })
}

/// The connections of the given members, oldest first.
pub(crate) async fn load_views(
    conn: &mut AnyConnection,
    scope: &Scope,
    member_ids: &[&MemberId],
) -> Result<Vec<ConnectionView>> {
    load_views_with(&mut Reader::Any(conn), scope, member_ids).await
}

pub(crate) async fn load_views_with(
    reader: &mut Reader<'_>,
    scope: &Scope,
    member_ids: &[&MemberId],
) -> Result<Vec<ConnectionView>> {
    if member_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(VIEW_SELECT);
    sql.push(" WHERE c.app_id = ").text(scope.app_id.as_str());
    sql.push(" AND c.env = ").text(scope.env.as_str());
    sql.push(" AND c.member_id")
        .in_list(member_ids.iter().map(|id| id.as_str()))
        .push(" ORDER BY c.seq");
    reader.rows(&sql, |row| view_from_row(row)).await
}

async fn load_view(
    conn: &mut AnyConnection,
    scope: &Scope,
    id: &ConnectionId,
) -> Result<Option<ConnectionView>> {
    let row = sqlx::query(&format!(
        "{VIEW_SELECT} WHERE c.app_id = $1 AND c.env = $2 AND c.id = $3"
    ))
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(view_from_row).transpose()
}

/// A member locked for a change, with the clock the change happens by.
pub(crate) struct LockedMember {
    pub test_clock_id: Option<String>,
    clock_time: Option<Timestamp>,
}

impl LockedMember {
    /// The time of a change: the frozen time of the member's test clock, if they have one,
    /// and otherwise the system's.
    pub fn now(&self, system: Timestamp) -> Timestamp {
        self.clock_time.unwrap_or(system)
    }
}

/// Locks a member's row for the rest of the transaction on PostgreSQL, so that two changes to
/// one member's connections (two connects of the same plan, say) run one after the other.
/// SQLite has a single writer already. `None` when the member does not exist.
pub(crate) async fn lock_member(
    conn: &mut AnyConnection,
    store: &Store,
    scope: &Scope,
    id: &MemberId,
) -> Result<Option<LockedMember>> {
    let lock = match store.backend {
        crate::Backend::Postgres => " FOR UPDATE OF m",
        crate::Backend::Sqlite => "",
    };
    let row = sqlx::query(&format!(
        "SELECT m.test_clock_id, k.frozen_time FROM members m \
         LEFT JOIN test_clocks k ON k.id = m.test_clock_id \
         WHERE m.app_id = $1 AND m.env = $2 AND m.id = $3{lock}"
    ))
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    row.map(|row| {
        Ok(LockedMember {
            test_clock_id: opt_text(&row, "test_clock_id")?,
            clock_time: opt_ts(&row, "frozen_time")?,
        })
    })
    .transpose()
}

/// When the scheduler should next look at a connection.
fn next_action_at(c: &PlanConnection) -> Option<i64> {
    c.next_due().map(|(at, _)| at.as_micros())
}

/// Inserts a connection and returns its number. `test_clock_id` is that of its member.
pub(crate) async fn insert(
    conn: &mut AnyConnection,
    scope: &Scope,
    c: &PlanConnection,
    test_clock_id: Option<&str>,
) -> Result<i64> {
    let number = next_contract_number(conn, scope).await?;
    let row = sqlx::query(
        "INSERT INTO plan_connections (id, app_id, env, member_id, plan_id, price_id, connection_type, status, \
         amount, currency, billing_interval, interval_count, start_date, current_period_start, current_period_end, \
         trial_end, cancel_at_period_end, canceled_at, cancel_reason, paused_at, resume_at, end_date, created_at, updated_at, \
         retry_count, next_retry_at, scheduled_plan_id, scheduled_price_id, next_action_at, test_clock_id, contract_number) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, \
         $25, $26, $27, $28, $29, $30, $31) \
         RETURNING contract_number",
    )
    .bind(c.id.as_str())
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .bind(c.member_id.as_str())
    .bind(c.plan_id.as_str())
    .bind(c.price_id.as_ref().map(|p| p.as_str()))
    .bind(c.connection_type.as_str())
    .bind(c.status.as_str())
    .bind(c.amount)
    .bind(c.currency.as_deref())
    .bind(c.interval.map(|i| i.as_str()))
    .bind(i64::from(c.interval_count))
    .bind(c.start_date.as_micros())
    .bind(opt_micros(c.current_period_start))
    .bind(opt_micros(c.current_period_end))
    .bind(opt_micros(c.trial_end))
    .bind(i64::from(c.cancel_at_period_end))
    .bind(opt_micros(c.canceled_at))
    .bind(c.cancel_reason.as_deref())
    .bind(opt_micros(c.paused_at))
    .bind(opt_micros(c.resume_at))
    .bind(opt_micros(c.end_date))
    .bind(c.created_at.as_micros())
    .bind(c.updated_at.as_micros())
    .bind(i64::from(c.retry_count))
    .bind(opt_micros(c.next_retry_at))
    .bind(c.scheduled_plan_id.as_ref().map(|p| p.as_str()))
    .bind(c.scheduled_price_id.as_ref().map(|p| p.as_str()))
    .bind(next_action_at(c))
    .bind(test_clock_id)
    .bind(number)
    .fetch_one(&mut *conn)
    .await
    .map_err(|e| unique_violation(e, &[("id", "id")]))?;
    int(&row, "contract_number")
}

/// The next contract number of the environment: each environment counts its own, so that no
/// store can read from its numbers how many contracts other stores make.
async fn next_contract_number(conn: &mut AnyConnection, scope: &Scope) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO contract_numbers (app_id, env, last_number) VALUES ($1, $2, 1) \
         ON CONFLICT (app_id, env) DO UPDATE SET last_number = contract_numbers.last_number + 1 \
         RETURNING last_number",
    )
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .fetch_one(&mut *conn)
    .await?;
    int(&row, "last_number")
}

/// Saves a changed connection, and when the scheduler should next look at it.
pub(crate) async fn update(
    conn: &mut AnyConnection,
    scope: &Scope,
    c: &PlanConnection,
) -> Result<()> {
    sqlx::query(
        "UPDATE plan_connections SET plan_id = $1, price_id = $2, connection_type = $3, status = $4, amount = $5, \
         currency = $6, billing_interval = $7, interval_count = $8, current_period_start = $9, current_period_end = $10, \
         trial_end = $11, cancel_at_period_end = $12, canceled_at = $13, cancel_reason = $14, paused_at = $15, \
         resume_at = $16, end_date = $17, updated_at = $18, retry_count = $19, next_retry_at = $20, \
         scheduled_plan_id = $21, scheduled_price_id = $22, next_action_at = $23 \
         WHERE app_id = $24 AND env = $25 AND id = $26",
    )
    .bind(c.plan_id.as_str())
    .bind(c.price_id.as_ref().map(|p| p.as_str()))
    .bind(c.connection_type.as_str())
    .bind(c.status.as_str())
    .bind(c.amount)
    .bind(c.currency.as_deref())
    .bind(c.interval.map(|i| i.as_str()))
    .bind(i64::from(c.interval_count))
    .bind(opt_micros(c.current_period_start))
    .bind(opt_micros(c.current_period_end))
    .bind(opt_micros(c.trial_end))
    .bind(i64::from(c.cancel_at_period_end))
    .bind(opt_micros(c.canceled_at))
    .bind(c.cancel_reason.as_deref())
    .bind(opt_micros(c.paused_at))
    .bind(opt_micros(c.resume_at))
    .bind(opt_micros(c.end_date))
    .bind(c.updated_at.as_micros())
    .bind(i64::from(c.retry_count))
    .bind(opt_micros(c.next_retry_at))
    .bind(c.scheduled_plan_id.as_ref().map(|p| p.as_str()))
    .bind(c.scheduled_price_id.as_ref().map(|p| p.as_str()))
    .bind(next_action_at(c))
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .bind(c.id.as_str())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A member's change also moves the member's `updatedAt`, so that `updatedSince` finds members
/// whose plans changed.
pub(crate) async fn touch_member(
    conn: &mut AnyConnection,
    scope: &Scope,
    id: &MemberId,
    now: Timestamp,
) -> Result<()> {
    sqlx::query("UPDATE members SET updated_at = $1 WHERE app_id = $2 AND env = $3 AND id = $4")
        .bind(now.as_micros())
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(id.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Connects a member to a plan inside the caller's transaction. With `free_only`, a paid
/// plan is refused, naming that field. A member on a test clock connects at the clock's time.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn connect_in(
    conn: &mut AnyConnection,
    store: &Store,
    scope: &Scope,
    member_id: &MemberId,
    plan_id: &PlanId,
    price_id: Option<&PriceId>,
    free_only: Option<&str>,
    now: Timestamp,
) -> Result<ConnectionView> {
    let member = lock_member(conn, store, scope, member_id)
        .await?
        .ok_or_else(|| StoreError::not_found("member", member_id))?;
    let now = member.now(now);
    let plan = load_plan(conn, scope, plan_id)
        .await?
        .ok_or_else(|| StoreError::not_found("plan", plan_id))?;
    if let Some(field) = free_only {
        memberd_core::connection::ensure_free(&plan, field.to_owned())?;
    }
    let existing: Vec<PlanConnection> = load_views(conn, scope, &[member_id])
        .await?
        .into_iter()
        .map(|v| v.connection)
        .collect();
    let (connection, event) = PlanConnection::connect(member_id, &plan, price_id, &existing, now)?;
    let number = insert(conn, scope, &connection, member.test_clock_id.as_deref()).await?;
    touch_member(conn, scope, member_id, now).await?;
    events::record(conn, scope, &[event], now).await?;
    Ok(ConnectionView {
        connection,
        number,
        plan_name: plan.name,
        plan_permissions: plan.permissions,
    })
}

impl Store {
    /// Connects a member to a plan, with its `member.plan.created` event. `NotFound` for an
    /// unknown member or plan; the domain's refusals as `Domain`.
    pub async fn connect_plan(
        &self,
        scope: &Scope,
        member_id: &MemberId,
        plan_id: &PlanId,
        price_id: Option<&PriceId>,
        now: Timestamp,
    ) -> Result<ConnectionView> {
        self.connect_plan_paid(scope, member_id, plan_id, price_id, now, None)
            .await
    }

    /// Connects a member to a plan whose first charge, when it has one, succeeded already:
    /// the payment is recorded, with `payment.succeeded`, in the same transaction.
    pub async fn connect_plan_paid(
        &self,
        scope: &Scope,
        member_id: &MemberId,
        plan_id: &PlanId,
        price_id: Option<&PriceId>,
        now: Timestamp,
        payment: Option<Payment>,
    ) -> Result<ConnectionView> {
        let mut tx = self.begin_write().await?;
        let view = connect_in(
            &mut tx, self, scope, member_id, plan_id, price_id, None, now,
        )
        .await?;
        if let Some(mut payment) = payment {
            payment.connection_id = view.connection.id.clone();
            // At the member's time, which is the clock's for a member on a test clock.
            let now = view.connection.created_at;
            payment.created_at = now;
            crate::payments::insert(&mut tx, scope, &payment).await?;
            let event = memberd_core::NewEvent::payment(
                &view.connection,
                payment.succeeded,
                payment.failure_reason.as_deref(),
            );
            events::record(&mut tx, scope, &[event], now).await?;
        }
        self.commit_write(tx, Some(scope)).await?;
        Ok(view)
    }

    /// Connects a member to a free plan, refusing a paid one (Memberstack's `add-plan`).
    pub async fn connect_free_plan(
        &self,
        scope: &Scope,
        member_id: &MemberId,
        plan_id: &PlanId,
        now: Timestamp,
    ) -> Result<ConnectionView> {
        let mut tx = self.begin_write().await?;
        let view = connect_in(
            &mut tx,
            self,
            scope,
            member_id,
            plan_id,
            None,
            Some("planId"),
            now,
        )
        .await?;
        self.commit_write(tx, Some(scope)).await?;
        Ok(view)
    }

    /// Ends the member's hold on a free plan now (Memberstack's `remove-plan`): `NotFound`
    /// when the member does not hold it, a domain refusal when it is paid.
    pub async fn remove_free_plan(
        &self,
        scope: &Scope,
        member_id: &MemberId,
        plan_id: &PlanId,
        now: Timestamp,
    ) -> Result<ConnectionView> {
        let mut tx = self.begin_write().await?;
        let member = lock_member(&mut tx, self, scope, member_id)
            .await?
            .ok_or_else(|| StoreError::not_found("member", member_id))?;
        let now = member.now(now);
        let plan = load_plan(&mut tx, scope, plan_id)
            .await?
            .ok_or_else(|| StoreError::not_found("plan", plan_id))?;
        memberd_core::connection::ensure_free(&plan, "planId")?;
        let views = load_views(&mut tx, scope, &[member_id]).await?;
        let connections: Vec<PlanConnection> = views.iter().map(|v| v.connection.clone()).collect();
        let current = memberd_core::connection::held(&connections, plan_id).ok_or_else(|| {
            StoreError::not_found("plan connection", format!("{member_id} on {plan_id}"))
        })?;
        let number = views
            .iter()
            .find(|v| v.connection.id == current.id)
            .map_or(0, |v| v.number);
        let command = ConnectionCommand::Cancel {
            reason: None,
            at_period_end: false,
        };
        let (next, new_events) = current.apply(command, &connections, now)?;
        update(&mut tx, scope, &next).await?;
        touch_member(&mut tx, scope, member_id, now).await?;
        events::record(&mut tx, scope, &new_events, now).await?;
        self.commit_write(tx, Some(scope)).await?;
        Ok(ConnectionView {
            connection: next,
            number,
            plan_name: plan.name,
            plan_permissions: plan.permissions,
        })
    }

    /// A member's connections, oldest first; `NotFound` for an unknown member.
    pub async fn list_connections(
        &self,
        scope: &Scope,
        member_id: &MemberId,
    ) -> Result<Vec<ConnectionView>> {
        let mut conn = self.reads().await?.acquire().await?;
        let exists =
            sqlx::query("SELECT id FROM members WHERE app_id = $1 AND env = $2 AND id = $3")
                .bind(scope.app_id.as_str())
                .bind(scope.env.as_str())
                .bind(member_id.as_str())
                .fetch_optional(&mut *conn)
                .await?
                .is_some();
        if !exists {
            return Err(StoreError::not_found("member", member_id));
        }
        load_views(&mut conn, scope, &[member_id]).await
    }

    pub async fn get_connection(
        &self,
        scope: &Scope,
        id: &ConnectionId,
    ) -> Result<Option<ConnectionView>> {
        let mut conn = self.reads().await?.acquire().await?;
        load_view(&mut conn, scope, id).await
    }

    /// Applies a change through the domain's state machine and records its events.
    pub async fn change_connection(
        &self,
        scope: &Scope,
        id: &ConnectionId,
        request: ConnectionRequest,
        now: Timestamp,
    ) -> Result<ConnectionView> {
        let mut tx = self.begin_write().await?;
        let member_id = {
            let row = sqlx::query(
                "SELECT member_id FROM plan_connections WHERE app_id = $1 AND env = $2 AND id = $3",
            )
            .bind(scope.app_id.as_str())
            .bind(scope.env.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::not_found("plan connection", id))?;
            MemberId::from_trusted(text(&row, "member_id")?)
        };
        let member = lock_member(&mut tx, self, scope, &member_id)
            .await?
            .ok_or_else(|| StoreError::not_found("plan connection", id))?;
        let now = member.now(now);
        let views = load_views(&mut tx, scope, &[&member_id]).await?;
        let (current, others): (Vec<_>, Vec<_>) = views
            .into_iter()
            .map(|v| v.connection)
            .partition(|c| &c.id == id);
        let current = current
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::not_found("plan connection", id))?;
        let command = match request {
            ConnectionRequest::Cancel {
                reason,
                at_period_end,
            } => ConnectionCommand::Cancel {
                reason,
                at_period_end,
            },
            ConnectionRequest::Pause { resume_at } => ConnectionCommand::Pause { resume_at },
            ConnectionRequest::Resume => ConnectionCommand::Resume,
            ConnectionRequest::Replace {
                plan_id,
                price_id,
                at_period_end,
            } => {
                let plan = load_plan(&mut tx, scope, &plan_id)
                    .await?
                    .ok_or_else(|| StoreError::not_found("plan", &plan_id))?;
                ConnectionCommand::Replace {
                    plan,
                    price_id,
                    at_period_end,
                }
            }
        };
        let (next, new_events) = current.apply(command, &others, now)?;
        update(&mut tx, scope, &next).await?;
        touch_member(&mut tx, scope, &member_id, now).await?;
        events::record(&mut tx, scope, &new_events, now).await?;
        let view = load_view(&mut tx, scope, id)
            .await?
            .ok_or_else(|| StoreError::not_found("plan connection", id))?;
        self.commit_write(tx, Some(scope)).await?;
        Ok(view)
    }

    /// What the access check needs, in one query: the member's own permissions and, for each
    /// plan connection, its status and its plan's permissions. `None` for an unknown member.
    pub async fn access_grants(
        &self,
        scope: &Scope,
        member_id: &MemberId,
    ) -> Result<Option<(Vec<String>, Vec<Grant>)>> {
        self.flush_held().await?;
        let seen = match self.read_cache.grants(scope, member_id) {
            Lookup::Hit(grants) => return Ok(grants),
            Lookup::Miss(seen) => seen,
        };
        let grants = self.read_access_grants(scope, member_id).await?;
        self.read_cache.put_grants(scope, member_id, &grants, seen);
        Ok(grants)
    }

    async fn read_access_grants(&self, scope: &Scope, member_id: &MemberId) -> Result<Grants> {
        let mut sql = Sql::new(
            "SELECT m.permissions AS member_permissions, c.id AS connection_id, c.plan_id, c.status, \
             p.permissions AS plan_permissions \
             FROM members m \
             LEFT JOIN plan_connections c ON c.member_id = m.id \
             LEFT JOIN plans p ON p.id = c.plan_id \
             WHERE m.app_id = ",
        );
        sql.text(scope.app_id.as_str());
        sql.push(" AND m.env = ").text(scope.env.as_str());
        sql.push(" AND m.id = ").text(member_id.as_str());
        // Each row: the member's permissions, and one of their connections if they have any.
        let rows = self
            .read_rows(&sql, |row| {
                let grant = match opt_text(row, "connection_id")? {
                    None => None,
                    Some(connection_id) => Some(Grant {
                        connection_id: ConnectionId::from_trusted(connection_id),
                        plan_id: PlanId::from_trusted(text(row, "plan_id")?),
                        status: parsed(row, "status", ConnectionStatus::parse)?,
                        permissions: string_list(row, "plan_permissions")?,
                    }),
                };
                Ok((string_list(row, "member_permissions")?, grant))
            })
            .await?;
        let mut rows = rows.into_iter();
        let Some((member_permissions, first)) = rows.next() else {
            return Ok(None);
        };
        let grants = first
            .into_iter()
            .chain(rows.filter_map(|(_, grant)| grant))
            .collect();
        Ok(Some((member_permissions, grants)))
    }

    /// Every connection of the scope, for figures over all of them. Reads them all: fine for
    /// analytics on demand, not for a hot path.
    pub async fn all_connections(&self, scope: &Scope) -> Result<Vec<ConnectionView>> {
        let rows = sqlx::query(&format!(
            "{VIEW_SELECT} WHERE c.app_id = $1 AND c.env = $2 ORDER BY c.seq"
        ))
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .fetch_all(self.reads().await?)
        .await?;
        rows.iter().map(view_from_row).collect()
    }
}
