use memberd_core::plan::Price;
use memberd_core::{DomainError, Interval, Plan, PlanId, PlanStatus, PlanType, PriceId, Scope};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use crate::rows::{opt_text, parsed, string_list, text, to_json, ts};
use crate::sql::Sql;
use crate::{Cursor, Order, Page, PageRequest, Result, Store, StoreError};

#[derive(Debug, Clone, Default)]
pub struct PlanFilter {
    pub status: Option<PlanStatus>,
}

/// A price as stored in the plan's `prices` column.
#[derive(Serialize, Deserialize)]
struct PriceRow {
    id: String,
    amount: i64,
    currency: String,
    interval: String,
    interval_count: u32,
    trial_days: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    term_days: Option<u32>,
    /// Left out while the price is active, so that plans written before prices could be
    /// retired read as they were.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    retired: bool,
}

fn prices_to_json(prices: &[Price]) -> String {
    let rows: Vec<PriceRow> = prices
        .iter()
        .map(|p| PriceRow {
            id: p.id.to_string(),
            amount: p.amount,
            currency: p.currency.clone(),
            interval: p.interval.as_str().to_owned(),
            interval_count: p.interval_count,
            trial_days: p.trial_days,
            term_days: p.term_days,
            retired: !p.active,
        })
        .collect();
    to_json(&rows)
}

fn prices_from_row(row: &AnyRow) -> Result<Vec<Price>> {
    let rows: Vec<PriceRow> = serde_json::from_str(&text(row, "prices")?)
        .map_err(|e| StoreError::Corrupt(format!("prices: {e}")))?;
    rows.into_iter()
        .map(|p| {
            Ok(Price {
                id: PriceId::from_trusted(p.id),
                amount: p.amount,
                currency: p.currency,
                interval: Interval::parse(&p.interval)
                    .ok_or_else(|| StoreError::Corrupt(format!("interval {:?}", p.interval)))?,
                interval_count: p.interval_count,
                trial_days: p.trial_days,
                term_days: p.term_days,
                active: !p.retired,
            })
        })
        .collect()
}

pub(crate) const PLAN_COLUMNS: &str =
    "seq, id, name, description, plan_type, status, permissions, prices, created_at, updated_at";

pub(crate) fn plan_from_row(row: &AnyRow) -> Result<Plan> {
    Ok(Plan {
        id: PlanId::from_trusted(text(row, "id")?),
        name: text(row, "name")?,
        description: opt_text(row, "description")?,
        plan_type: parsed(row, "plan_type", PlanType::parse)?,
        status: parsed(row, "status", PlanStatus::parse)?,
        permissions: string_list(row, "permissions")?,
        prices: prices_from_row(row)?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// Loads a plan of the scope, on a connection that may be inside a transaction.
pub(crate) async fn load_plan(
    conn: &mut AnyConnection,
    scope: &Scope,
    id: &PlanId,
) -> Result<Option<Plan>> {
    let row = sqlx::query(&format!(
        "SELECT {PLAN_COLUMNS} FROM plans WHERE app_id = $1 AND env = $2 AND id = $3"
    ))
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(plan_from_row).transpose()
}

/// Adds `AND seq > $n` (or `<` for descending pages) and the ORDER BY / LIMIT of a page.
pub(crate) fn page_tail(sql: &mut Sql, column: &str, page: PageRequest) {
    let (cmp, dir) = match page.order {
        Order::Asc => (">", "ASC"),
        Order::Desc => ("<", "DESC"),
    };
    if let Some(Cursor(after)) = page.after {
        sql.push(&format!(" AND {column} {cmp} ")).int(after);
    }
    sql.push(&format!(" ORDER BY {column} {dir} LIMIT "))
        .int(i64::from(page.limit) + 1);
}

/// Cuts the extra row a page query fetched to learn whether more follow.
pub(crate) fn into_page<T, C: Copy>(
    mut rows: Vec<(C, T)>,
    limit: u32,
    total_count: i64,
) -> Page<T, C> {
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = rows.last().map(|(cursor, _)| *cursor);
    Page {
        items: rows.into_iter().map(|(_, item)| item).collect(),
        has_more,
        next_cursor,
        total_count,
    }
}

/// Runs a page query and its count on one connection, and cuts the page.
pub(crate) async fn fetch_page<T>(
    pool: &sqlx::AnyPool,
    count: &Sql,
    list: &Sql,
    page: PageRequest,
    from_row: fn(&AnyRow) -> Result<T>,
) -> Result<Page<T>> {
    let mut conn = pool.acquire().await?;
    let total = crate::rows::int(&count.query().fetch_one(&mut *conn).await?, "n")?;
    let rows = list.query().fetch_all(&mut *conn).await?;
    let items = rows
        .iter()
        .map(|row| Ok((Cursor(crate::rows::int(row, "seq")?), from_row(row)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(into_page(items, page.limit, total))
}

impl Store {
    pub async fn insert_plan(&self, scope: &Scope, plan: &Plan) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO plans (id, app_id, env, name, description, plan_type, status, permissions, prices, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(plan.id.as_str())
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(&plan.name)
        .bind(plan.description.as_deref())
        .bind(plan.plan_type.as_str())
        .bind(plan.status.as_str())
        .bind(to_json(&plan.permissions))
        .bind(prices_to_json(&plan.prices))
        .bind(plan.created_at.as_micros())
        .bind(plan.updated_at.as_micros())
        .execute(&mut *tx)
        .await?;
        self.commit_write(tx, None).await
    }

    pub async fn get_plan(&self, scope: &Scope, id: &PlanId) -> Result<Option<Plan>> {
        let mut conn = self.reads().await?.acquire().await?;
        load_plan(&mut conn, scope, id).await
    }

    pub async fn list_plans(
        &self,
        scope: &Scope,
        filter: &PlanFilter,
        page: PageRequest,
    ) -> Result<Page<Plan>> {
        let filtered = |sql: &mut Sql| {
            sql.push(" WHERE app_id = ").text(scope.app_id.as_str());
            sql.push(" AND env = ").text(scope.env.as_str());
            if let Some(status) = filter.status {
                sql.push(" AND status = ").text(status.as_str());
            }
        };
        let mut count = Sql::new("SELECT COUNT(*) AS n FROM plans");
        filtered(&mut count);
        let mut list = Sql::new(format!("SELECT {PLAN_COLUMNS} FROM plans"));
        filtered(&mut list);
        page_tail(&mut list, "seq", page);

        fetch_page(self.reads().await?, &count, &list, page, plan_from_row).await
    }

    /// Loads a plan, lets `change` decide its next state (`None`: unchanged), and saves it.
    /// Returns the plan as it now stands. `NotFound` when the scope has no such plan.
    pub async fn update_plan<F>(&self, scope: &Scope, id: &PlanId, change: F) -> Result<Plan>
    where
        F: FnOnce(&Plan) -> Result<Option<Plan>, DomainError> + Send,
    {
        let mut tx = self.begin_write().await?;
        let current = load_plan(&mut tx, scope, id)
            .await?
            .ok_or_else(|| StoreError::not_found("plan", id))?;
        let Some(next) = change(&current)? else {
            return Ok(current);
        };
        sqlx::query(
            "UPDATE plans SET name = $1, description = $2, status = $3, permissions = $4, prices = $5, updated_at = $6 \
             WHERE app_id = $7 AND env = $8 AND id = $9",
        )
        .bind(&next.name)
        .bind(next.description.as_deref())
        .bind(next.status.as_str())
        .bind(to_json(&next.permissions))
        .bind(prices_to_json(&next.prices))
        .bind(next.updated_at.as_micros())
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        self.commit_write(tx, Some(scope)).await?;
        Ok(next)
    }
}
