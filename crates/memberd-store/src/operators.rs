//! Operators of the dashboard, their sign-ins, the one-time links that set their passwords,
//! and the audit log. Tokens (session cookies, links) are kept only as their SHA-256, which
//! the caller computes.

use memberd_core::operator::{AppAccess, AuditEntry, Operator, Role};
use memberd_core::{AppId, AuditId, Email, Environment, OperatorId, Timestamp};
use sqlx::any::AnyRow;
use sqlx::Any;

use crate::rows::{flag, opt_text, text, ts, unique_violation};
use crate::{Result, Store, StoreError};

/// What a valid link lets its holder do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkFor {
    /// Make the first owner (the link `memberd serve` prints on a database with no operator).
    FirstOwner,
    /// Set this operator's password.
    Operator(Operator),
}

/// A page of the audit log, newest first.
#[derive(Debug, Clone)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// Pass as `before` for the next (older) page.
    pub next_before: Option<i64>,
}

const OPERATOR_COLUMNS: &str =
    "o.id, o.email, o.role, o.all_apps, o.password_hash, o.created_at, o.updated_at";

fn role(raw: &str) -> Result<Role> {
    raw.parse()
        .map_err(|_| StoreError::Corrupt(format!("role: unknown value {raw:?}")))
}

async fn operator_from_row(row: &AnyRow, conn: &mut sqlx::AnyConnection) -> Result<Operator> {
    let id = OperatorId::from_trusted(text(row, "id")?);
    let apps = if flag(row, "all_apps")? {
        AppAccess::All
    } else {
        let rows =
            sqlx::query("SELECT app_id FROM operator_apps WHERE operator_id = $1 ORDER BY app_id")
                .bind(id.as_str())
                .fetch_all(&mut *conn)
                .await?;
        AppAccess::Only(
            rows.iter()
                .map(|r| text(r, "app_id").map(AppId::from_trusted))
                .collect::<Result<_>>()?,
        )
    };
    Ok(Operator {
        id,
        email: Email::from_trusted(text(row, "email")?),
        role: role(&text(row, "role")?)?,
        apps,
        password_hash: opt_text(row, "password_hash")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

async fn insert_operator(tx: &mut sqlx::AnyConnection, op: &Operator) -> Result<()> {
    sqlx::query(
        "INSERT INTO operators (id, email, role, all_apps, password_hash, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(op.id.as_str())
    .bind(op.email.as_str())
    .bind(op.role.as_str())
    .bind(i64::from(op.apps == AppAccess::All))
    .bind(op.password_hash.as_deref())
    .bind(op.created_at.as_micros())
    .bind(op.updated_at.as_micros())
    .execute(&mut *tx)
    .await
    .map_err(|e| unique_violation(e, &[("email", "email")]))?;
    if let AppAccess::Only(apps) = &op.apps {
        for app in apps {
            sqlx::query("INSERT INTO operator_apps (operator_id, app_id) VALUES ($1, $2)")
                .bind(op.id.as_str())
                .bind(app.as_str())
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

async fn insert_link(
    tx: &mut sqlx::AnyConnection,
    token_hash: &str,
    operator: Option<&OperatorId>,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO operator_links (token_hash, operator_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(operator.map(|o| o.as_str()))
    .bind(now.as_micros())
    .bind(expires_at.as_micros())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Marks a live link used; `false` when it was not live (used, expired or unknown), which
/// also settles two tabs racing to use one link.
async fn use_link(tx: &mut sqlx::AnyConnection, token_hash: &str, now: Timestamp) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE operator_links SET used_at = $1 \
         WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1",
    )
    .bind(now.as_micros())
    .bind(token_hash)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

impl Store {
    async fn operator_where(&self, condition: &str, value: &str) -> Result<Option<Operator>> {
        let mut conn = self.reads().await?.acquire().await?;
        let row = sqlx::query(&format!(
            "SELECT {OPERATOR_COLUMNS} FROM operators o WHERE {condition}"
        ))
        .bind(value)
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(row) => Ok(Some(operator_from_row(&row, &mut conn).await?)),
            None => Ok(None),
        }
    }

    pub async fn count_operators(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM operators")
            .fetch_one(self.reads().await?)
            .await?;
        crate::rows::int(&row, "n")
    }

    /// Oldest first.
    pub async fn list_operators(&self) -> Result<Vec<Operator>> {
        let mut conn = self.reads().await?.acquire().await?;
        let rows = sqlx::query(&format!(
            "SELECT {OPERATOR_COLUMNS} FROM operators o ORDER BY o.seq"
        ))
        .fetch_all(&mut *conn)
        .await?;
        let mut operators = Vec::with_capacity(rows.len());
        for row in &rows {
            operators.push(operator_from_row(row, &mut conn).await?);
        }
        Ok(operators)
    }

    pub async fn get_operator(&self, id: &OperatorId) -> Result<Option<Operator>> {
        self.operator_where("o.id = $1", id.as_str()).await
    }

    pub async fn get_operator_by_email(&self, email: &Email) -> Result<Option<Operator>> {
        self.operator_where("o.email = $1", email.as_str()).await
    }

    /// Stores a new operator with the link that sets their password.
    /// `Duplicate { field: "email" }` when the address is another operator's.
    pub async fn create_operator(
        &self,
        operator: &Operator,
        link_hash: &str,
        link_expires_at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.writer().await?.begin().await?;
        insert_operator(&mut tx, operator).await?;
        insert_link(
            &mut tx,
            link_hash,
            Some(&operator.id),
            operator.created_at,
            link_expires_at,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A new link for an operator who exists (a forgotten password); links given before stay
    /// good until they are used or expire.
    pub async fn add_operator_link(
        &self,
        operator: &OperatorId,
        link_hash: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        let mut tx = self.writer().await?.begin().await?;
        insert_link(&mut tx, link_hash, Some(operator), now, expires_at).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The link that makes the first owner, in place of any earlier one; `false` (and no
    /// link) once an operator exists.
    pub async fn replace_first_owner_link(
        &self,
        link_hash: &str,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.writer().await?.begin().await?;
        let row = sqlx::query("SELECT COUNT(*) AS n FROM operators")
            .fetch_one(&mut *tx)
            .await?;
        if crate::rows::int(&row, "n")? > 0 {
            return Ok(false);
        }
        sqlx::query("DELETE FROM operator_links WHERE operator_id IS NULL")
            .execute(&mut *tx)
            .await?;
        insert_link(&mut tx, link_hash, None, now, expires_at).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// What a live link is for; `None` when it is unknown, used or expired, or when it would
    /// make a first owner and an operator already exists.
    pub async fn operator_link(&self, link_hash: &str, now: Timestamp) -> Result<Option<LinkFor>> {
        let row = sqlx::query(
            "SELECT operator_id FROM operator_links \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(link_hash)
        .bind(now.as_micros())
        .fetch_optional(self.reads().await?)
        .await?;
        let Some(row) = row else { return Ok(None) };
        match opt_text(&row, "operator_id")? {
            None => Ok((self.count_operators().await? == 0).then_some(LinkFor::FirstOwner)),
            Some(id) => Ok(self
                .get_operator(&OperatorId::from_trusted(id))
                .await?
                .map(LinkFor::Operator)),
        }
    }

    /// Uses the first owner's link to store `owner`, who already has a password; `false` when
    /// the link is no longer live or an operator exists.
    pub async fn make_first_owner(
        &self,
        link_hash: &str,
        owner: &Operator,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.writer().await?.begin().await?;
        let row = sqlx::query("SELECT COUNT(*) AS n FROM operators")
            .fetch_one(&mut *tx)
            .await?;
        let first = crate::rows::int(&row, "n")? == 0;
        let ours = sqlx::query(
            "SELECT 1 AS one FROM operator_links WHERE token_hash = $1 AND operator_id IS NULL",
        )
        .bind(link_hash)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        if !first || !ours || !use_link(&mut tx, link_hash, now).await? {
            return Ok(false);
        }
        insert_operator(&mut tx, owner).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Uses an operator's link to set their password, and ends their sign-ins elsewhere.
    /// `None` when the link is no longer live.
    pub async fn set_operator_password(
        &self,
        link_hash: &str,
        password_hash: &str,
        now: Timestamp,
    ) -> Result<Option<OperatorId>> {
        let mut tx = self.writer().await?.begin().await?;
        let row = sqlx::query("SELECT operator_id FROM operator_links WHERE token_hash = $1")
            .bind(link_hash)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(id) = row
            .as_ref()
            .map(|r| opt_text(r, "operator_id"))
            .transpose()?
            .flatten()
        else {
            return Ok(None);
        };
        if !use_link(&mut tx, link_hash, now).await? {
            return Ok(None);
        }
        sqlx::query("UPDATE operators SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(now.as_micros())
            .bind(&id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE operator_sessions SET ended_at = $1 WHERE operator_id = $2 AND ended_at IS NULL",
        )
        .bind(now.as_micros())
        .bind(&id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(OperatorId::from_trusted(id)))
    }

    /// Removes an operator, their sign-ins and links; `false` when there was none.
    pub async fn delete_operator(&self, id: &OperatorId) -> Result<bool> {
        let mut tx = self.writer().await?.begin().await?;
        for table in ["operator_sessions", "operator_links", "operator_apps"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE operator_id = $1"))
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query("DELETE FROM operators WHERE id = $1")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn open_operator_session(
        &self,
        token_hash: &str,
        operator: &OperatorId,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO operator_sessions (token_hash, operator_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(operator.as_str())
        .bind(now.as_micros())
        .bind(expires_at.as_micros())
        .execute(self.writer().await?)
        .await?;
        Ok(())
    }

    /// The operator signed in with this session, while it lasts.
    pub async fn operator_session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<Option<Operator>> {
        let mut conn = self.reads().await?.acquire().await?;
        let row = sqlx::query(&format!(
            "SELECT {OPERATOR_COLUMNS} FROM operator_sessions s \
             JOIN operators o ON o.id = s.operator_id \
             WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2"
        ))
        .bind(token_hash)
        .bind(now.as_micros())
        .fetch_optional(&mut *conn)
        .await?;
        match row {
            Some(row) => Ok(Some(operator_from_row(&row, &mut conn).await?)),
            None => Ok(None),
        }
    }

    pub async fn end_operator_session(&self, token_hash: &str, now: Timestamp) -> Result<()> {
        sqlx::query(
            "UPDATE operator_sessions SET ended_at = $1 WHERE token_hash = $2 AND ended_at IS NULL",
        )
        .bind(now.as_micros())
        .bind(token_hash)
        .execute(self.writer().await?)
        .await?;
        Ok(())
    }

    pub async fn record_audit(&self, entry: &AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (id, at, operator_id, operator_email, app_id, env, action, target, summary) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(entry.id.as_str())
        .bind(entry.at.as_micros())
        .bind(entry.operator_id.as_str())
        .bind(&entry.operator_email)
        .bind(entry.app_id.as_ref().map(|a| a.as_str()))
        .bind(entry.env.map(Environment::as_str))
        .bind(&entry.action)
        .bind(entry.target.as_deref())
        .bind(&entry.summary)
        .execute(self.writer().await?)
        .await?;
        Ok(())
    }

    /// The audit log of one app (both environments, and changes to who may enter it are
    /// outside any: `app` None lists everything), newest first.
    pub async fn list_audit(
        &self,
        app: Option<&AppId>,
        before: Option<i64>,
        limit: u32,
    ) -> Result<AuditPage> {
        let mut sql = String::from(
            "SELECT seq, id, at, operator_id, operator_email, app_id, env, action, target, summary \
             FROM audit_log WHERE seq < $1",
        );
        if app.is_some() {
            sql.push_str(" AND app_id = $2");
        }
        sql.push_str(&format!(" ORDER BY seq DESC LIMIT {}", limit + 1));
        let mut query = sqlx::query::<Any>(&sql).bind(before.unwrap_or(i64::MAX));
        if let Some(app) = app {
            query = query.bind(app.as_str());
        }
        let rows = query.fetch_all(self.reads().await?).await?;
        let mut entries = Vec::with_capacity(rows.len());
        let mut last_seq = None;
        for row in rows.iter().take(limit as usize) {
            last_seq = Some(crate::rows::int(row, "seq")?);
            entries.push(AuditEntry {
                id: AuditId::from_trusted(text(row, "id")?),
                at: ts(row, "at")?,
                operator_id: OperatorId::from_trusted(text(row, "operator_id")?),
                operator_email: text(row, "operator_email")?,
                app_id: opt_text(row, "app_id")?.map(AppId::from_trusted),
                env: opt_text(row, "env")?
                    .map(|e| e.parse().map_err(StoreError::Corrupt))
                    .transpose()?,
                action: text(row, "action")?,
                target: opt_text(row, "target")?,
                summary: text(row, "summary")?,
            });
        }
        Ok(AuditPage {
            next_before: if rows.len() > limit as usize {
                last_seq
            } else {
                None
            },
            entries,
        })
    }
}
