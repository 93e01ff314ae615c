//! `/v1/emails` and `/v1/email-templates`: what memberd sends members, as the operator's
//! server sees it, and the templates it is written from. Also the sends a server may ask for
//! a member: a verification link, a password reset code.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use memberd_core::codes::CodePurpose;
use memberd_core::mail::{EmailKind, EmailTemplate};
use memberd_core::{Email, EmailId, MemberId};
use memberd_store::{EmailRecord, StoredTemplate};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::page::{list_schema, page_request, ListOut};
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{query_param, Authed, ValidJson, ValidQuery};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailOut {
    pub id: String,
    pub object: &'static str,
    /// `password_reset`, `email_verification`, `passwordless_login`, `passwordless_signup`
    /// or `email_changed`.
    pub kind: &'static str,
    pub member_id: Option<String>,
    pub to: String,
    /// The environment's own sender, when it has one; `null`: the server's `--email-from`.
    pub from: Option<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// `queued` (also between tries), `sent`, `failed` or `not_sent`.
    pub state: &'static str,
    /// Why it failed or was not sent (`no SMTP server configured`).
    pub state_reason: Option<String>,
    /// SMTP conversations tried.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// When a queued email is tried next.
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub sent_at: Option<String>,
}

list_schema!(EmailList, EmailOut);

impl From<EmailRecord> for EmailOut {
    fn from(e: EmailRecord) -> Self {
        let from = match (e.from_name, e.from_address) {
            (Some(name), Some(address)) => Some(format!("{name} <{address}>")),
            (None, Some(address)) => Some(address),
            _ => None,
        };
        EmailOut {
            id: e.id.to_string(),
            object: "email",
            kind: e.kind.as_str(),
            member_id: e.member_id.map(|m| m.to_string()),
            to: e.to,
            from,
            subject: e.subject,
            text: e.text,
            html: e.html,
            state: e.state.as_str(),
            state_reason: e.state_reason,
            attempts: e.attempts,
            last_error: e.last_error,
            next_attempt_at: e.next_attempt_at.map(|t| t.to_rfc3339()),
            created_at: e.created_at.to_rfc3339(),
            updated_at: e.updated_at.to_rfc3339(),
            sent_at: e.sent_at.map(|t| t.to_rfc3339()),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EmailListQuery {
    /// Only the emails to this address.
    to: Option<String>,
    /// 1 to 100; 50 by default.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `nextCursor` of the previous page.
    #[param(pattern = "^[0-9]{1,18}$")]
    after: Option<String>,
    /// `desc` (newest first, the default) or `asc`.
    #[param(pattern = "^(asc|desc|ASC|DESC)$")]
    order: Option<String>,
}

/// The environment's emails, newest first: with their state, recipient, subject and bodies.
/// Without an SMTP server, this is where a developer reads the codes memberd would send.
#[utoipa::path(get, path = "/v1/emails", tag = "emails", params(EmailListQuery),
    responses((status = 200, body = EmailList), (status = 400, body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authed,
    ValidQuery(q, _): ValidQuery<EmailListQuery>,
) -> ApiResult<Json<ListOut<EmailOut>>> {
    let mut page = page_request(q.limit.as_deref(), q.after.as_deref(), None)?;
    page.order = match q.order.as_deref() {
        None => memberd_store::Order::Desc,
        Some(raw) => super::page::parse_order(Some(raw))?,
    };
    let to = query_param("to", q.to.as_deref(), "an email address", |raw| {
        Email::parse(raw).ok()
    })?;
    let emails = state
        .store()
        .list_emails(&auth.scope, to.as_ref(), page)
        .await?;
    Ok(Json(ListOut::from_page(emails, EmailOut::from)))
}

/// One email of the environment.
#[utoipa::path(get, path = "/v1/emails/{id}", tag = "emails",
    params(("id" = String, Path, description = "The email's id (eml_…).")),
    responses((status = 200, body = EmailOut), (status = 404, body = ErrorEnvelope)))]
pub async fn retrieve(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<EmailOut>> {
    let found = match EmailId::parse(&id) {
        Some(id) => state.store().get_email(&auth.scope, &id).await?,
        None => None,
    };
    found
        .map(|e| Json(e.into()))
        .ok_or_else(|| ApiError::not_found("email", &id))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateOut {
    pub kind: &'static str,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// `false`: the built-in template, in use until one is set.
    pub custom: bool,
    pub updated_at: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TemplateList {
    /// Every kind, in a fixed order.
    pub data: Vec<TemplateOut>,
}

impl From<StoredTemplate> for TemplateOut {
    fn from(t: StoredTemplate) -> Self {
        TemplateOut {
            kind: t.kind.as_str(),
            subject: t.template.subject,
            text: t.template.text,
            html: t.template.html,
            custom: t.custom,
            updated_at: t.updated_at.map(|u| u.to_rfc3339()),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateIn {
    /// One line; at most 998 bytes.
    #[schema(min_length = 1, max_length = 998)]
    pub subject: String,
    #[schema(max_length = 100000)]
    pub text: String,
    /// Variables in it are HTML-escaped.
    #[schema(max_length = 100000)]
    pub html: String,
}

fn kind_of(raw: &str) -> ApiResult<EmailKind> {
    EmailKind::parse(raw).ok_or_else(|| {
        ApiError::not_found(
            "email template",
            format!("{raw:?} (the kinds are {KIND_PARAM})"),
        )
    })
}

const KIND_PARAM: &str =
    "password_reset, email_verification, passwordless_login, passwordless_signup or email_changed";

/// The templates of every kind, the built-in ones where none is set.
#[utoipa::path(get, path = "/v1/email-templates", tag = "emails",
    responses((status = 200, body = TemplateList)))]
pub async fn list_templates(
    State(state): State<AppState>,
    auth: Authed,
) -> ApiResult<Json<TemplateList>> {
    let mut data = Vec::with_capacity(EmailKind::ALL.len());
    for kind in EmailKind::ALL {
        data.push(
            state
                .store()
                .email_template(&auth.scope, kind)
                .await?
                .into(),
        );
    }
    Ok(Json(TemplateList { data }))
}

/// The template of one kind. Variables: `member.email`, `member.id`, `member.customFields.*`,
/// `member.metaData.*`, `app.name`, `app.id`, `code`, `link`, `expires_in_minutes`,
/// `expires_in_hours`, `old_email`, `new_email`.
#[utoipa::path(get, path = "/v1/email-templates/{kind}", tag = "emails",
    params(("kind" = String, Path, description = KIND_PARAM)),
    responses((status = 200, body = TemplateOut), (status = 404, body = ErrorEnvelope)))]
pub async fn retrieve_template(
    State(state): State<AppState>,
    auth: Authed,
    Path(kind): Path<String>,
) -> ApiResult<Json<TemplateOut>> {
    let kind = kind_of(&kind)?;
    Ok(Json(
        state
            .store()
            .email_template(&auth.scope, kind)
            .await?
            .into(),
    ))
}

/// Sets the template of one kind, for the emails written from now on. A template that does
/// not parse is refused with the part and the line at fault.
#[utoipa::path(put, path = "/v1/email-templates/{kind}", tag = "emails", request_body = TemplateIn,
    params(("kind" = String, Path, description = KIND_PARAM)),
    responses((status = 200, body = TemplateOut), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub async fn update_template(
    State(state): State<AppState>,
    auth: Authed,
    Path(kind): Path<String>,
    ValidJson(body, _): ValidJson<TemplateIn>,
) -> ApiResult<Json<TemplateOut>> {
    let kind = kind_of(&kind)?;
    let template = EmailTemplate::parse(body.subject, body.text, body.html)?;
    Ok(Json(
        state
            .store()
            .put_email_template(&auth.scope, kind, &template, state.now())
            .await?
            .into(),
    ))
}

/// Goes back to the built-in template of one kind.
#[utoipa::path(delete, path = "/v1/email-templates/{kind}", tag = "emails",
    params(("kind" = String, Path, description = KIND_PARAM)),
    responses((status = 200, body = TemplateOut), (status = 404, body = ErrorEnvelope)))]
pub async fn reset_template(
    State(state): State<AppState>,
    auth: Authed,
    Path(kind): Path<String>,
) -> ApiResult<Json<TemplateOut>> {
    let kind = kind_of(&kind)?;
    Ok(Json(
        state
            .store()
            .reset_email_template(&auth.scope, kind)
            .await?
            .into(),
    ))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EmailQueuedOut {
    /// The email, as `GET /v1/emails/{id}` shows it.
    pub email_id: String,
    /// When its code or link stops working.
    pub expires_at: String,
}

async fn send_to_member(
    state: &AppState,
    auth: &Authed,
    id: &str,
    purpose: CodePurpose,
) -> ApiResult<(StatusCode, Json<EmailQueuedOut>)> {
    let view = match MemberId::parse(id) {
        Some(id) => state.store().get_member(&auth.scope, &id).await?,
        None => None,
    }
    .ok_or_else(|| ApiError::not_found("member", id))?;
    let link = purpose
        .is_link()
        .then(|| crate::api::client::codes::verification_link_base(state, &auth.scope));
    let issued = state
        .store()
        .issue_code(
            &auth.scope,
            purpose,
            &view.member.email,
            Some(&view.member),
            link.as_deref(),
            state.now(),
        )
        .await?;
    state.wake_mailer();
    Ok((
        StatusCode::ACCEPTED,
        Json(EmailQueuedOut {
            email_id: issued.email_id.to_string(),
            expires_at: issued.expires_at.to_rfc3339(),
        }),
    ))
}

/// Emails a member a link that marks their address verified.
#[utoipa::path(post, path = "/v1/members/{id}/send-verification-email", tag = "members",
    params(("id" = String, Path, description = "The member's id (mem_…).")),
    responses((status = 202, body = EmailQueuedOut), (status = 404, body = ErrorEnvelope)))]
pub async fn send_verification(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<EmailQueuedOut>)> {
    send_to_member(&state, &auth, &id, CodePurpose::EmailVerification).await
}

/// Emails a member a 6-digit code that the member-facing API's `POST /auth/reset-password`
/// takes with a new password.
#[utoipa::path(post, path = "/v1/members/{id}/send-password-reset-email", tag = "members",
    params(("id" = String, Path, description = "The member's id (mem_…).")),
    responses((status = 202, body = EmailQueuedOut), (status = 404, body = ErrorEnvelope)))]
pub async fn send_password_reset(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<EmailQueuedOut>)> {
    send_to_member(&state, &auth, &id, CodePurpose::PasswordReset).await
}
