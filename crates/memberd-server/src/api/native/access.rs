//! The access check: may this member pass? The hottest path of a membership server: one
//! indexed query, and the decision in the domain core.

use axum::extract::{Path, State};
use axum::Json;
use memberd_core::access::{check, AccessQuery};
use memberd_core::{ConnectionStatus, PlanId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::members::member_id;
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{Authed, ValidQuery};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct AccessParams {
    /// A permission, granted by a plan the member holds actively or to the member directly.
    permission: Option<String>,
    /// A plan the member must hold actively. With neither parameter, any active plan passes.
    plan_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessOut {
    pub allowed: bool,
    /// `plan_connection`, `member_permission`, `plan_connection_inactive` or `no_match`.
    pub reason: &'static str,
    pub member_id: String,
    /// The connection that decided: the one that grants access, or else the matching one
    /// that would have, had it been active.
    pub plan_connection: Option<AccessConnectionOut>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessConnectionOut {
    pub id: String,
    pub plan_id: String,
    pub status: ConnectionStatus,
}

#[utoipa::path(get, path = "/v1/members/{id}/access", tag = "access",
    params(("id" = String, Path), AccessParams),
    responses((status = 200, body = AccessOut), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn check_access(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidQuery(params, _): ValidQuery<AccessParams>,
) -> ApiResult<Json<AccessOut>> {
    let id = member_id(&id)?;
    let query = match (params.permission, params.plan_id) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "planId",
                "conflicting_parameters",
                "ask for a permission or a planId, not both",
            ))
        }
        (Some(p), None) if !p.is_empty() => AccessQuery::Permission(p),
        (None, Some(plan)) if !plan.is_empty() => {
            AccessQuery::Plan(PlanId::parse(&plan).ok_or_else(|| {
                ApiError::invalid(
                    "planId",
                    "invalid_id",
                    format!("planId must be a plan id such as pln_…, got {plan:?}"),
                )
            })?)
        }
        _ => AccessQuery::AnyPlan,
    };
    let (member_permissions, grants) = state
        .store()
        .access_grants(&auth.scope, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("member", &id))?;
    let decision = check(&member_permissions, &grants, &query);
    Ok(Json(AccessOut {
        allowed: decision.allowed,
        reason: decision.reason.as_str(),
        member_id: id.to_string(),
        plan_connection: decision
            .connection
            .map(|(id, plan_id, status)| AccessConnectionOut {
                id: id.to_string(),
                plan_id: plan_id.to_string(),
                status,
            }),
    }))
}
