//! Plan connections: a member's hold on a plan, moved through the domain's state machine.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use memberd_core::{ConnectionId, ConnectionStatus, ConnectionType, Interval, PlanId, PriceId};
use memberd_store::{ConnectionRequest, ConnectionView};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::members::member_id;
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{parse_timestamp, Authed, ValidJson};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionOut {
    pub id: String,
    pub object: &'static str,
    pub member_id: String,
    pub plan_id: String,
    pub plan_name: String,
    pub price_id: Option<String>,
    #[serde(rename = "type")]
    pub connection_type: ConnectionType,
    pub status: ConnectionStatus,
    /// Whether the member gets what the plan grants now.
    pub active: bool,
    /// Per period, in minor units; 0 for free plans.
    pub amount: i64,
    pub currency: Option<String>,
    pub interval: Option<Interval>,
    pub interval_count: u32,
    pub start_date: String,
    pub current_period_start: Option<String>,
    pub current_period_end: Option<String>,
    pub next_billing_date: Option<String>,
    pub trial_end: Option<String>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<String>,
    pub cancel_reason: Option<String>,
    pub paused_at: Option<String>,
    pub resume_at: Option<String>,
    pub end_date: Option<String>,
    /// The plan the connection moves to at the end of its period, if a move is scheduled.
    pub scheduled_plan_id: Option<String>,
    pub scheduled_price_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// The list of one member's connections; short, so not paginated.
#[derive(Serialize, ToSchema)]
pub struct ConnectionList {
    pub data: Vec<ConnectionOut>,
}

impl From<ConnectionView> for ConnectionOut {
    fn from(view: ConnectionView) -> Self {
        let c = view.connection;
        let rfc = |t: Option<memberd_core::Timestamp>| t.map(|t| t.to_rfc3339());
        ConnectionOut {
            id: c.id.to_string(),
            object: "plan_connection",
            active: c.active(),
            next_billing_date: rfc(c.next_billing_date()),
            member_id: c.member_id.to_string(),
            plan_id: c.plan_id.to_string(),
            plan_name: view.plan_name,
            price_id: c.price_id.map(|p| p.to_string()),
            connection_type: c.connection_type,
            status: c.status,
            amount: c.amount,
            currency: c.currency,
            interval: c.interval,
            interval_count: c.interval_count,
            start_date: c.start_date.to_rfc3339(),
            current_period_start: rfc(c.current_period_start),
            current_period_end: rfc(c.current_period_end),
            trial_end: rfc(c.trial_end),
            cancel_at_period_end: c.cancel_at_period_end,
            canceled_at: rfc(c.canceled_at),
            cancel_reason: c.cancel_reason,
            paused_at: rfc(c.paused_at),
            resume_at: rfc(c.resume_at),
            end_date: rfc(c.end_date),
            scheduled_plan_id: c.scheduled_plan_id.map(|p| p.to_string()),
            scheduled_price_id: c.scheduled_price_id.map(|p| p.to_string()),
            created_at: c.created_at.to_rfc3339(),
            updated_at: c.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectIn {
    pub plan_id: String,
    /// Which price of a PAID plan; optional when the plan has only one.
    pub price_id: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelIn {
    /// Kept on the connection and sent in `member.plan.canceled`.
    pub reason: Option<String>,
    /// Keep the plan until the end of the paid period instead of ending it now.
    #[serde(default)]
    pub at_period_end: bool,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PauseIn {
    /// When to resume by itself (RFC 3339); paused until resumed otherwise.
    #[schema(value_type = Option<crate::api::schemas::TimeText>)]
    pub resume_at: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ResumeIn {}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplaceIn {
    pub plan_id: String,
    pub price_id: Option<String>,
    /// Keep the current plan until the end of the period, then move (and charge the new
    /// price then). A recurring price or a free plan; moves now by default.
    #[serde(default)]
    pub at_period_end: bool,
}

fn connection_id(raw: &str) -> ApiResult<ConnectionId> {
    ConnectionId::parse(raw).ok_or_else(|| ApiError::not_found("plan connection", raw))
}

/// A plan named in a body: malformed is a 400 and unknown a 404, both naming `planId`.
fn body_plan(plan_id: &str, price_id: Option<&str>) -> ApiResult<(PlanId, Option<PriceId>)> {
    let plan = PlanId::parse(plan_id).ok_or_else(|| {
        ApiError::invalid(
            "planId",
            "invalid_id",
            format!("planId must be a plan id such as pln_…, got {plan_id:?}"),
        )
    })?;
    let price = match price_id.filter(|p| !p.is_empty()) {
        None => None,
        Some(raw) => Some(PriceId::parse(raw).ok_or_else(|| {
            ApiError::invalid(
                "priceId",
                "invalid_id",
                format!("priceId must be a price id such as prc_…, got {raw:?}"),
            )
        })?),
    };
    Ok((plan, price))
}

fn name_plan_param(err: ApiError) -> ApiError {
    if err.code == "plan_not_found" {
        err.or_param("planId")
    } else {
        err
    }
}

/// FREE plans connect ACTIVE; PAID ones TRIALING when the price has trial days, else ACTIVE
/// once the first period is charged to the member's newest card (402 when it cannot be).
#[utoipa::path(post, path = "/v1/members/{id}/plan-connections", tag = "plan connections",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: it replays the first response")),
    request_body = ConnectIn,
    responses((status = 201, body = ConnectionOut), (status = 400, body = ErrorEnvelope), (status = 402, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn connect(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): ValidJson<ConnectIn>,
) -> ApiResult<(StatusCode, Json<ConnectionOut>)> {
    let member = member_id(&id)?;
    let (plan, price) = body_plan(&input.plan_id, input.price_id.as_deref())?;
    let view =
        crate::billing::connect::connect(&state, &auth.scope, &member, &plan, price.as_ref())
            .await
            .map_err(name_plan_param)?;
    Ok((StatusCode::CREATED, Json(view.into())))
}

#[utoipa::path(get, path = "/v1/members/{id}/plan-connections", tag = "plan connections",
    params(("id" = String, Path)),
    responses((status = 200, body = ConnectionList), (status = 404, body = ErrorEnvelope)))]
pub async fn list_for_member(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<ConnectionList>> {
    let member = member_id(&id)?;
    let views = state.store().list_connections(&auth.scope, &member).await?;
    Ok(Json(ConnectionList {
        data: views.into_iter().map(ConnectionOut::from).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/plan-connections/{id}", tag = "plan connections",
    params(("id" = String, Path)),
    responses((status = 200, body = ConnectionOut), (status = 404, body = ErrorEnvelope)))]
pub async fn retrieve(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<ConnectionOut>> {
    let id = connection_id(&id)?;
    let view = state
        .store()
        .get_connection(&auth.scope, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("plan connection", &id))?;
    Ok(Json(view.into()))
}

async fn change(
    state: &AppState,
    auth: &Authed,
    id: &str,
    request: ConnectionRequest,
) -> ApiResult<Json<ConnectionOut>> {
    let id = connection_id(id)?;
    let view = state
        .store()
        .change_connection(&auth.scope, &id, request, state.now())
        .await
        .map_err(|e| name_plan_param(e.into()))?;
    Ok(Json(view.into()))
}

/// Ends the connection now, or at the end of the paid period with `atPeriodEnd`.
#[utoipa::path(post, path = "/v1/plan-connections/{id}/cancel", tag = "plan connections",
    params(("id" = String, Path)), request_body = CancelIn,
    responses((status = 200, body = ConnectionOut), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn cancel(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): ValidJson<CancelIn>,
) -> ApiResult<Json<ConnectionOut>> {
    let request = ConnectionRequest::Cancel {
        reason: input.reason,
        at_period_end: input.at_period_end,
    };
    change(&state, &auth, &id, request).await
}

/// A paused connection grants nothing and is not billed until resumed.
#[utoipa::path(post, path = "/v1/plan-connections/{id}/pause", tag = "plan connections",
    params(("id" = String, Path)), request_body = PauseIn,
    responses((status = 200, body = ConnectionOut), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn pause(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): ValidJson<PauseIn>,
) -> ApiResult<Json<ConnectionOut>> {
    let resume_at = parse_timestamp("resumeAt", input.resume_at.as_deref())?;
    change(&state, &auth, &id, ConnectionRequest::Pause { resume_at }).await
}

#[utoipa::path(post, path = "/v1/plan-connections/{id}/resume", tag = "plan connections",
    params(("id" = String, Path)), request_body = ResumeIn,
    responses((status = 200, body = ConnectionOut), (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn resume(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(ResumeIn {}, _): ValidJson<ResumeIn>,
) -> ApiResult<Json<ConnectionOut>> {
    change(&state, &auth, &id, ConnectionRequest::Resume).await
}

/// Moves the connection to another plan (or price) now, emitting `member.plan.replaced`, or
/// at the end of the period with `atPeriodEnd` (`member.plan.updated` now, with the change
/// `replace_scheduled`; `member.plan.replaced` when the period ends).
#[utoipa::path(post, path = "/v1/plan-connections/{id}/replace", tag = "plan connections",
    params(("id" = String, Path)), request_body = ReplaceIn,
    responses((status = 200, body = ConnectionOut), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn replace(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): ValidJson<ReplaceIn>,
) -> ApiResult<Json<ConnectionOut>> {
    let (plan_id, price_id) = body_plan(&input.plan_id, input.price_id.as_deref())?;
    change(
        &state,
        &auth,
        &id,
        ConnectionRequest::Replace {
            plan_id,
            price_id,
            at_period_end: input.at_period_end,
        },
    )
    .await
}
