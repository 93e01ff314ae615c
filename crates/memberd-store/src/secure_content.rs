//! Content memberd keeps for an environment and hands only to members who may see it.

use memberd_core::account::{ContentDraft, ContentType};
use memberd_core::{PlanId, Scope, SecureContent, Timestamp};
use sqlx::any::AnyRow;

use crate::rows::{parsed, string_list, text, to_json, ts, unique_violation};
use crate::{Result, Store, StoreError};

const COLUMNS: &str = "id, type, content, plan_ids, permissions, created_at, updated_at";

fn from_row(row: &AnyRow) -> Result<SecureContent> {
    Ok(SecureContent {
        id: text(row, "id")?,
        content_type: parsed(row, "type", ContentType::parse)?,
        content: text(row, "content")?,
        plan_ids: string_list(row, "plan_ids")?
            .into_iter()
            .map(PlanId::from_trusted)
            .collect(),
        permissions: string_list(row, "permissions")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

fn plan_ids(content: &SecureContent) -> String {
    to_json(
        &content
            .plan_ids
            .iter()
            .map(PlanId::as_str)
            .collect::<Vec<_>>(),
    )
}

impl Store {
    /// `Duplicate { field: "id" }` when the environment has content of that id already.
    pub async fn insert_secure_content(
        &self,
        scope: &Scope,
        content: &SecureContent,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO secure_content (app_id, env, id, type, content, plan_ids, permissions, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(&content.id)
        .bind(content.content_type.as_str())
        .bind(&content.content)
        .bind(plan_ids(content))
        .bind(to_json(&content.permissions))
        .bind(content.created_at.as_micros())
        .bind(content.updated_at.as_micros())
        .execute(self.writer().await?)
        .await
        .map_err(|e| unique_violation(e, &[("id", "id")]))?;
        Ok(())
    }

    pub async fn get_secure_content(
        &self,
        scope: &Scope,
        id: &str,
    ) -> Result<Option<SecureContent>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM secure_content WHERE app_id = $1 AND env = $2 AND id = $3"
        ))
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(id)
        .fetch_optional(self.reads().await?)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The environment's content, oldest first (at most `limit`).
    pub async fn list_secure_content(
        &self,
        scope: &Scope,
        limit: u32,
    ) -> Result<Vec<SecureContent>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM secure_content WHERE app_id = $1 AND env = $2 ORDER BY seq LIMIT $3"
        ))
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(i64::from(limit))
        .fetch_all(self.reads().await?)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Applies an operator's change; `NotFound` for unknown content.
    pub async fn update_secure_content(
        &self,
        scope: &Scope,
        id: &str,
        draft: ContentDraft,
        now: Timestamp,
    ) -> Result<SecureContent> {
        let mut tx = self.begin_write().await?;
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM secure_content WHERE app_id = $1 AND env = $2 AND id = $3"
        ))
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let current = row
            .as_ref()
            .map(from_row)
            .transpose()?
            .ok_or_else(|| StoreError::not_found("secure content", id))?;
        let next = current.change(draft, now)?;
        sqlx::query(
            "UPDATE secure_content SET type = $1, content = $2, plan_ids = $3, permissions = $4, updated_at = $5 \
             WHERE app_id = $6 AND env = $7 AND id = $8",
        )
        .bind(next.content_type.as_str())
        .bind(&next.content)
        .bind(plan_ids(&next))
        .bind(to_json(&next.permissions))
        .bind(next.updated_at.as_micros())
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(next)
    }

    /// `false` when there was no such content.
    pub async fn delete_secure_content(&self, scope: &Scope, id: &str) -> Result<bool> {
        let done =
            sqlx::query("DELETE FROM secure_content WHERE app_id = $1 AND env = $2 AND id = $3")
                .bind(scope.app_id.as_str())
                .bind(scope.env.as_str())
                .bind(id)
                .execute(self.writer().await?)
                .await?;
        Ok(done.rows_affected() > 0)
    }
}
