use memberd_core::webhook::{Endpoint, Flavour};
use memberd_core::{DomainError, EndpointId, Scope};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use crate::plans::{fetch_page, page_tail};
use crate::rows::{flag, opt_micros, opt_text, opt_ts, parsed, string_list, text, to_json, ts};
use crate::sql::Sql;
use crate::{events, Page, PageRequest, Result, Store, StoreError};

pub(crate) const ENDPOINT_COLUMNS: &str = "seq, id, app_id, env, url, description, event_types, flavour, enabled, \
    disabled_reason, secret, previous_secret, previous_secret_until, failing_since, last_success_at, created_at, updated_at";

pub(crate) fn endpoint_from_row(row: &AnyRow) -> Result<Endpoint> {
    Ok(Endpoint {
        id: EndpointId::from_trusted(text(row, "id")?),
        url: text(row, "url")?,
        description: opt_text(row, "description")?,
        event_types: string_list(row, "event_types")?,
        flavour: parsed(row, "flavour", Flavour::parse)?,
        enabled: flag(row, "enabled")?,
        disabled_reason: opt_text(row, "disabled_reason")?,
        secret: text(row, "secret")?,
        previous_secret: opt_text(row, "previous_secret")?,
        previous_secret_until: opt_ts(row, "previous_secret_until")?,
        failing_since: opt_ts(row, "failing_since")?,
        last_success_at: opt_ts(row, "last_success_at")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

pub(crate) async fn load_endpoint(
    conn: &mut AnyConnection,
    scope: &Scope,
    id: &EndpointId,
) -> Result<Option<Endpoint>> {
    let row = sqlx::query(&format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE app_id = $1 AND env = $2 AND id = $3"
    ))
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(endpoint_from_row).transpose()
}

impl Store {
    /// Stores a new endpoint. It receives the events recorded from now on, not the past ones.
    pub async fn insert_endpoint(&self, scope: &Scope, e: &Endpoint) -> Result<()> {
        let start = events::feed_end(self.writer().await?, self.backend, scope).await?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, app_id, env, url, description, event_types, flavour, enabled, \
             disabled_reason, secret, previous_secret, previous_secret_until, failing_since, last_success_at, \
             event_cursor_tx, event_cursor, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        )
        .bind(e.id.as_str())
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(&e.url)
        .bind(e.description.as_deref())
        .bind(to_json(&e.event_types))
        .bind(e.flavour.as_str())
        .bind(i64::from(e.enabled))
        .bind(e.disabled_reason.as_deref())
        .bind(&e.secret)
        .bind(e.previous_secret.as_deref())
        .bind(opt_micros(e.previous_secret_until))
        .bind(opt_micros(e.failing_since))
        .bind(opt_micros(e.last_success_at))
        .bind(start.tx)
        .bind(start.seq)
        .bind(e.created_at.as_micros())
        .bind(e.updated_at.as_micros())
        .execute(&mut *tx)
        .await?;
        self.commit_write(tx, None).await
    }

    pub async fn get_endpoint(&self, scope: &Scope, id: &EndpointId) -> Result<Option<Endpoint>> {
        let mut conn = self.reads().await?.acquire().await?;
        load_endpoint(&mut conn, scope, id).await
    }

    pub async fn list_endpoints(&self, scope: &Scope, page: PageRequest) -> Result<Page<Endpoint>> {
        let filtered = |sql: &mut Sql| {
            sql.push(" WHERE app_id = ").text(scope.app_id.as_str());
            sql.push(" AND env = ").text(scope.env.as_str());
        };
        let mut count = Sql::new("SELECT COUNT(*) AS n FROM webhook_endpoints");
        filtered(&mut count);
        let mut list = Sql::new(format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints"));
        filtered(&mut list);
        page_tail(&mut list, "seq", page);
        fetch_page(self.reads().await?, &count, &list, page, endpoint_from_row).await
    }

    /// Loads an endpoint, lets `change` decide its next state (`None`: unchanged) and saves it.
    pub async fn update_endpoint<F>(
        &self,
        scope: &Scope,
        id: &EndpointId,
        change: F,
    ) -> Result<Endpoint>
    where
        F: FnOnce(&Endpoint) -> Result<Option<Endpoint>, DomainError> + Send,
    {
        let mut tx = self.begin_write().await?;
        let current = load_endpoint(&mut tx, scope, id)
            .await?
            .ok_or_else(|| StoreError::not_found("webhook endpoint", id))?;
        let Some(next) = change(&current)? else {
            return Ok(current);
        };
        sqlx::query(
            "UPDATE webhook_endpoints SET url = $1, description = $2, event_types = $3, flavour = $4, enabled = $5, \
             disabled_reason = $6, secret = $7, previous_secret = $8, previous_secret_until = $9, failing_since = $10, \
             updated_at = $11 WHERE app_id = $12 AND env = $13 AND id = $14",
        )
        .bind(&next.url)
        .bind(next.description.as_deref())
        .bind(to_json(&next.event_types))
        .bind(next.flavour.as_str())
        .bind(i64::from(next.enabled))
        .bind(next.disabled_reason.as_deref())
        .bind(&next.secret)
        .bind(next.previous_secret.as_deref())
        .bind(opt_micros(next.previous_secret_until))
        .bind(opt_micros(next.failing_since))
        .bind(next.updated_at.as_micros())
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        self.commit_write(tx, None).await?;
        Ok(next)
    }

    /// Deletes an endpoint with its deliveries and their attempts.
    pub async fn delete_endpoint(&self, scope: &Scope, id: &EndpointId) -> Result<()> {
        let done =
            sqlx::query("DELETE FROM webhook_endpoints WHERE app_id = $1 AND env = $2 AND id = $3")
                .bind(scope.app_id.as_str())
                .bind(scope.env.as_str())
                .bind(id.as_str())
                .execute(self.writer().await?)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("webhook endpoint", id));
        }
        Ok(())
    }
}
