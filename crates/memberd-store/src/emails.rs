//! The email outbox and the templates emails are rendered from.
//!
//! An email is rendered and written in the transaction of the change that asks for it (a code
//! issued, an address changed), so a change that rolls back leaves no email and one that
//! commits always has its email. The sender claims queued emails with a lease, as the webhook
//! dispatcher claims deliveries: several senders over one database never hold one email at
//! once, and one that dies mid-send leaves a lease that simply runs out.

use memberd_core::mail::{EmailKind, EmailTemplate, TemplateVars};
use memberd_core::sending::EmailState;
use memberd_core::{AppId, Email, EmailId, Member, MemberId, Scope, Timestamp};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use crate::plans::{fetch_page, page_tail};
use crate::rows::{env, int, opt_text, opt_ts, text, ts};
use crate::sql::Sql;
use crate::{Backend, Page, PageRequest, Result, Store, StoreError};

/// An email as the outbox keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailRecord {
    pub id: EmailId,
    pub kind: EmailKind,
    pub member_id: Option<MemberId>,
    pub to: String,
    /// The environment's sender, when it has one; else the server's.
    pub from_name: Option<String>,
    pub from_address: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub state: EmailState,
    pub state_reason: Option<String>,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub sent_at: Option<Timestamp>,
}

/// An email a sender holds the lease of.
#[derive(Debug, Clone)]
pub struct DueEmail {
    pub record: EmailRecord,
    pub scope: Scope,
}

/// How a try went, and what becomes of the email.
#[derive(Debug, Clone, PartialEq)]
pub enum EmailOutcome {
    Sent,
    RetryAt { at: Timestamp, error: String },
    Failed { reason: String },
    NotSent { reason: String },
}

/// An environment's template for a kind, and whether it is the built-in default.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredTemplate {
    pub kind: EmailKind,
    pub template: EmailTemplate,
    pub custom: bool,
    pub updated_at: Option<Timestamp>,
}

/// An email a change asks for, before it is rendered.
pub(crate) struct Outgoing<'a> {
    pub kind: EmailKind,
    pub to: &'a Email,
    pub member: Option<&'a Member>,
    pub vars: TemplateVars,
    /// A stand-in for an address with no account: all the work of an email, and no email.
    pub for_nobody: bool,
}

const COLUMNS: &str = "seq, id, app_id, env, kind, member_id, to_address, from_name, from_address, subject, \
    text_body, html_body, status, status_reason, attempts, last_error, next_attempt_at, created_at, \
    updated_at, sent_at";

/// `COLUMNS` of the updated row, where a join leaves `id` ambiguous.
const RETURNED: &str =
    "emails.seq, emails.id, emails.app_id, emails.env, emails.kind, emails.member_id, \
    emails.to_address, emails.from_name, emails.from_address, emails.subject, emails.text_body, \
    emails.html_body, emails.status, emails.status_reason, emails.attempts, emails.last_error, \
    emails.next_attempt_at, emails.created_at, emails.updated_at, emails.sent_at";

fn record_from_row(row: &AnyRow) -> Result<EmailRecord> {
    let kind = text(row, "kind")?;
    let status = text(row, "status")?;
    let state = EmailState::parse(&status)
        .ok_or_else(|| StoreError::Corrupt(format!("emails.status: {status:?}")))?;
    Ok(EmailRecord {
        id: EmailId::from_trusted(text(row, "id")?),
        kind: EmailKind::parse(&kind)
            .ok_or_else(|| StoreError::Corrupt(format!("emails.kind: {kind:?}")))?,
        member_id: opt_text(row, "member_id")?.map(MemberId::from_trusted),
        to: text(row, "to_address")?,
        from_name: opt_text(row, "from_name")?,
        from_address: opt_text(row, "from_address")?,
        subject: text(row, "subject")?,
        text: text(row, "text_body")?,
        html: text(row, "html_body")?,
        state,
        state_reason: opt_text(row, "status_reason")?,
        attempts: u32::try_from(int(row, "attempts")?).unwrap_or(u32::MAX),
        last_error: opt_text(row, "last_error")?,
        next_attempt_at: (state == EmailState::Queued)
            .then(|| ts(row, "next_attempt_at"))
            .transpose()?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
        sent_at: opt_ts(row, "sent_at")?,
    })
}

/// The template an environment sends `kind` with, inside a transaction.
async fn template_in(
    conn: &mut sqlx::AnyConnection,
    scope: &Scope,
    kind: EmailKind,
) -> Result<StoredTemplate> {
    let row = sqlx::query(
        "SELECT subject, text_body, html_body, updated_at FROM email_templates \
         WHERE app_id = $1 AND env = $2 AND kind = $3",
    )
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .bind(kind.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match row {
        Some(row) => StoredTemplate {
            kind,
            template: EmailTemplate {
                subject: text(&row, "subject")?,
                text: text(&row, "text_body")?,
                html: text(&row, "html_body")?,
            },
            custom: true,
            updated_at: Some(ts(&row, "updated_at")?),
        },
        None => StoredTemplate {
            kind,
            template: EmailTemplate::default_for(kind),
            custom: false,
            updated_at: None,
        },
    })
}

/// Renders an email with the environment's template and sender, and writes it to the outbox
/// in `tx`, due at once.
pub(crate) async fn queue_in(
    tx: &mut Transaction<'static, Any>,
    scope: &Scope,
    out: Outgoing<'_>,
    now: Timestamp,
) -> Result<EmailId> {
    let app = sqlx::query("SELECT name FROM apps WHERE id = $1")
        .bind(scope.app_id.as_str())
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| StoreError::not_found("app", &scope.app_id))?;
    let mut vars = out.vars;
    vars.app = memberd_core::mail::AppVars {
        id: scope.app_id.to_string(),
        name: text(&app, "name")?,
    };
    if let Some(member) = out.member {
        vars.member = memberd_core::mail::MemberVars::of(member);
    }
    let template = template_in(tx, scope, out.kind).await?;
    let rendered = template.template.render(&vars)?;
    let sender = sqlx::query(
        "SELECT email_from_name, email_from_address FROM environment_settings \
         WHERE app_id = $1 AND env = $2",
    )
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .fetch_optional(&mut **tx)
    .await?;
    let (from_name, from_address) = match &sender {
        Some(row) => (
            opt_text(row, "email_from_name")?,
            opt_text(row, "email_from_address")?,
        ),
        None => (None, None),
    };
    let id = EmailId::generate();
    if out.for_nobody {
        return Ok(id);
    }
    sqlx::query(
        "INSERT INTO emails (id, app_id, env, kind, member_id, to_address, from_name, from_address, \
         subject, text_body, html_body, status, attempts, next_attempt_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued', 0, $12, $12, $12)",
    )
    .bind(id.as_str())
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .bind(out.kind.as_str())
    .bind(out.member.map(|m| m.id.as_str()))
    .bind(out.to.as_str())
    .bind(from_name)
    .bind(from_address)
    .bind(rendered.subject)
    .bind(rendered.text)
    .bind(rendered.html)
    .bind(now.as_micros())
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

impl Store {
    /// Leases up to `limit` queued emails that are due at `now`, until `lease_until`. An email
    /// under a live lease is never handed out again: the lease is checked again on the row
    /// being updated.
    pub async fn claim_emails(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        owner: &str,
        limit: u32,
    ) -> Result<Vec<DueEmail>> {
        let skip_locked = match self.backend {
            Backend::Postgres => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // The rows are picked once, in a CTE: as `id IN (SELECT … LIMIT n SKIP LOCKED)`,
        // PostgreSQL may run the subquery again for each row it updates, each time skipping
        // what it locked before, and claim far more than `limit`.
        let rows = sqlx::query(&format!(
            "WITH picked AS (SELECT id FROM emails WHERE status = 'queued' AND next_attempt_at <= $3 \
                 AND (lease_until IS NULL OR lease_until < $3) ORDER BY next_attempt_at, seq LIMIT $4{skip_locked}) \
             UPDATE emails SET lease_until = $1, lease_owner = $2 FROM picked \
             WHERE emails.id = picked.id AND emails.status = 'queued' \
             AND (emails.lease_until IS NULL OR emails.lease_until < $3) \
             RETURNING {RETURNED}"
        ))
        .bind(lease_until.as_micros())
        .bind(owner)
        .bind(now.as_micros())
        .bind(i64::from(limit))
        .fetch_all(self.writer().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DueEmail {
                    record: record_from_row(row)?,
                    scope: Scope::new(AppId::from_trusted(text(row, "app_id")?), env(row, "env")?),
                })
            })
            .collect()
    }

    /// Records how a try of an email went, if `owner` still holds its lease. Returns whether
    /// it did: a sender whose lease ran out and was taken over records nothing.
    pub async fn record_email(
        &self,
        id: &EmailId,
        owner: &str,
        outcome: &EmailOutcome,
        now: Timestamp,
    ) -> Result<bool> {
        let (status, reason, error, next, sent_at) = match outcome {
            EmailOutcome::Sent => ("sent", None, None, now, Some(now.as_micros())),
            EmailOutcome::RetryAt { at, error } => {
                ("queued", None, Some(error.as_str()), *at, None)
            }
            EmailOutcome::Failed { reason } => (
                "failed",
                Some(reason.as_str()),
                Some(reason.as_str()),
                now,
                None,
            ),
            EmailOutcome::NotSent { reason } => {
                ("not_sent", Some(reason.as_str()), None, now, None)
            }
        };
        // A send that was not tried (no server) is no attempt.
        let tried = i64::from(!matches!(outcome, EmailOutcome::NotSent { .. }));
        let done = sqlx::query(
            "UPDATE emails SET status = $1, status_reason = $2, last_error = COALESCE($3, last_error), \
             next_attempt_at = $4, sent_at = $5, attempts = attempts + $6, lease_until = NULL, \
             lease_owner = NULL, updated_at = $7 WHERE id = $8 AND lease_owner = $9",
        )
        .bind(status)
        .bind(reason)
        .bind(error)
        .bind(next.as_micros())
        .bind(sent_at)
        .bind(tried)
        .bind(now.as_micros())
        .bind(id.as_str())
        .bind(owner)
        .execute(self.writer().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The environment's emails, newest first unless the page asks otherwise; `to` keeps
    /// those to one address.
    pub async fn list_emails(
        &self,
        scope: &Scope,
        to: Option<&Email>,
        page: PageRequest,
    ) -> Result<Page<EmailRecord>> {
        let filtered = |sql: &mut Sql| {
            sql.push(" WHERE app_id = ").text(scope.app_id.as_str());
            sql.push(" AND env = ").text(scope.env.as_str());
            if let Some(to) = to {
                sql.push(" AND to_address = ").text(to.as_str());
            }
        };
        let mut count = Sql::new("SELECT COUNT(*) AS n FROM emails");
        filtered(&mut count);
        let mut list = Sql::new(format!("SELECT {COLUMNS} FROM emails"));
        filtered(&mut list);
        page_tail(&mut list, "seq", page);
        fetch_page(self.reads().await?, &count, &list, page, record_from_row).await
    }

    /// One email of the environment.
    pub async fn get_email(&self, scope: &Scope, id: &EmailId) -> Result<Option<EmailRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM emails WHERE app_id = $1 AND env = $2 AND id = $3"
        ))
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(id.as_str())
        .fetch_optional(self.reads().await?)
        .await?;
        row.as_ref().map(record_from_row).transpose()
    }

    /// How many emails wait to be sent, across every environment (for tests and `serve`).
    pub async fn queued_emails(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM emails WHERE status = 'queued'")
            .fetch_one(self.reads().await?)
            .await?;
        int(&row, "n")
    }

    /// How many queued emails a sender holds the lease of now (for tests).
    pub async fn queued_emails_leased(&self) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM emails WHERE status = 'queued' AND lease_until IS NOT NULL",
        )
        .fetch_one(self.reads().await?)
        .await?;
        int(&row, "n")
    }

    /// The template the environment sends `kind` with: its own, or the built-in default.
    pub async fn email_template(&self, scope: &Scope, kind: EmailKind) -> Result<StoredTemplate> {
        let mut conn = self.reads().await?.acquire().await?;
        template_in(&mut conn, scope, kind).await
    }

    /// Sets the environment's template for a kind (checked by the core before it gets here).
    pub async fn put_email_template(
        &self,
        scope: &Scope,
        kind: EmailKind,
        template: &EmailTemplate,
        now: Timestamp,
    ) -> Result<StoredTemplate> {
        sqlx::query(
            "INSERT INTO email_templates (app_id, env, kind, subject, text_body, html_body, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (app_id, env, kind) DO UPDATE SET \
             subject = excluded.subject, text_body = excluded.text_body, html_body = excluded.html_body, \
             updated_at = excluded.updated_at",
        )
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(kind.as_str())
        .bind(&template.subject)
        .bind(&template.text)
        .bind(&template.html)
        .bind(now.as_micros())
        .execute(self.writer().await?)
        .await?;
        Ok(StoredTemplate {
            kind,
            template: template.clone(),
            custom: true,
            updated_at: Some(now),
        })
    }

    /// Goes back to the built-in template for a kind.
    pub async fn reset_email_template(
        &self,
        scope: &Scope,
        kind: EmailKind,
    ) -> Result<StoredTemplate> {
        sqlx::query("DELETE FROM email_templates WHERE app_id = $1 AND env = $2 AND kind = $3")
            .bind(scope.app_id.as_str())
            .bind(scope.env.as_str())
            .bind(kind.as_str())
            .execute(self.writer().await?)
            .await?;
        Ok(StoredTemplate {
            kind,
            template: EmailTemplate::default_for(kind),
            custom: false,
            updated_at: None,
        })
    }
}
