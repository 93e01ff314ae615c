//! `/v1/plans`: what members can hold, with their prices and the permissions they grant.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use memberd_core::plan::{PlanDraft, PriceDraft};
use memberd_core::{Interval, Plan, PlanId, PlanPatch, PlanStatus, PlanType, Price, PriceId};
use memberd_store::PlanFilter;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::page::{list_schema, page_request, ListOut};
use crate::api::schemas::Permission;
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{double_option, query_param, Authed, ValidJson, ValidQuery};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PriceIn {
    /// In the currency's minor unit (cents).
    pub amount: i64,
    /// ISO 4217, such as `USD`.
    pub currency: String,
    pub interval: Interval,
    /// How many intervals a period lasts; 1 by default.
    pub interval_count: Option<u32>,
    /// Days of free trial before the first charge; 0 by default.
    pub trial_days: Option<u32>,
    /// ONETIME prices only: the days the plan is held for, after which the connection
    /// EXPIRES. Without it a one-time purchase is held for good.
    pub term_days: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanIn {
    pub name: String,
    /// FREE or PAID; PAID when prices are given, FREE otherwise.
    #[serde(rename = "type")]
    pub plan_type: Option<PlanType>,
    pub description: Option<String>,
    /// What holding the plan grants, such as `view:premium`.
    #[serde(default)]
    #[schema(value_type = Vec<Permission>, max_items = 100)]
    pub permissions: Vec<String>,
    /// The prices of a PAID plan; a FREE plan has none.
    #[serde(default)]
    pub prices: Vec<PriceIn>,
}

/// A price never changes once created, because members hold it: to change what a plan
/// costs, add a price and retire the old one. A retired price takes no new members; those
/// who hold it keep it, renewals included.
#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanPatchIn {
    pub name: Option<String>,
    /// `null` clears it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    #[schema(value_type = Option<Vec<Permission>>, max_items = 100)]
    pub permissions: Option<Vec<String>>,
    /// New prices for a PAID plan, up to 20 prices on the plan, retired ones included.
    #[serde(default)]
    #[schema(max_items = 20)]
    pub add_prices: Vec<PriceIn>,
    /// Ids of prices to retire. A PAID plan keeps at least one active price.
    #[serde(default)]
    pub retire_prices: Vec<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceOut {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    pub interval: Interval,
    pub interval_count: u32,
    pub trial_days: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term_days: Option<u32>,
    /// `false` once retired: it takes no new members.
    pub active: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanOut {
    pub id: String,
    pub object: &'static str,
    pub name: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub plan_type: PlanType,
    pub status: PlanStatus,
    #[schema(value_type = Vec<Permission>, max_items = 100)]
    pub permissions: Vec<String>,
    pub prices: Vec<PriceOut>,
    pub created_at: String,
    pub updated_at: String,
}

list_schema!(PlanList, PlanOut);

impl From<&Price> for PriceOut {
    fn from(p: &Price) -> Self {
        PriceOut {
            id: p.id.to_string(),
            amount: p.amount,
            currency: p.currency.clone(),
            interval: p.interval,
            interval_count: p.interval_count,
            trial_days: p.trial_days,
            term_days: p.term_days,
            active: p.active,
        }
    }
}

impl From<PriceIn> for PriceDraft {
    fn from(p: PriceIn) -> Self {
        PriceDraft {
            amount: p.amount,
            currency: p.currency,
            interval: p.interval,
            interval_count: p.interval_count,
            trial_days: p.trial_days,
            term_days: p.term_days,
        }
    }
}

impl From<Plan> for PlanOut {
    fn from(p: Plan) -> Self {
        PlanOut {
            id: p.id.to_string(),
            object: "plan",
            prices: p.prices.iter().map(PriceOut::from).collect(),
            name: p.name,
            description: p.description,
            plan_type: p.plan_type,
            status: p.status,
            permissions: p.permissions,
            created_at: p.created_at.to_rfc3339(),
            updated_at: p.updated_at.to_rfc3339(),
        }
    }
}

/// Price ids from a request; one that does not parse is named by its place in the list.
pub fn price_ids(field: &str, raw: &[String]) -> ApiResult<Vec<PriceId>> {
    raw.iter()
        .enumerate()
        .map(|(i, id)| {
            PriceId::parse(id).ok_or_else(|| {
                ApiError::invalid(
                    format!("{field}[{i}]"),
                    "unknown_price",
                    format!("{id:?} is not a price id"),
                )
            })
        })
        .collect()
}

/// A plan id from a path: one that does not parse cannot exist.
pub fn plan_id(raw: &str) -> ApiResult<PlanId> {
    PlanId::parse(raw).ok_or_else(|| ApiError::not_found("plan", raw))
}

#[utoipa::path(post, path = "/v1/plans", tag = "plans", request_body = PlanIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: it replays the first response")),
    responses((status = 201, body = PlanOut), (status = 400, body = ErrorEnvelope)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authed,
    ValidJson(input, _): ValidJson<PlanIn>,
) -> ApiResult<(StatusCode, Json<PlanOut>)> {
    let plan_type = input.plan_type.unwrap_or(if input.prices.is_empty() {
        PlanType::Free
    } else {
        PlanType::Paid
    });
    let draft = PlanDraft {
        name: input.name,
        description: input.description,
        plan_type,
        permissions: input.permissions,
        prices: input.prices.into_iter().map(PriceDraft::from).collect(),
    };
    let plan = Plan::create(draft, state.now())?;
    state.store().insert_plan(&auth.scope, &plan).await?;
    Ok((StatusCode::CREATED, Json(plan.into())))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlanListQuery {
    /// ACTIVE or ARCHIVED, in any case.
    #[param(pattern = "^([Aa][Cc][Tt][Ii][Vv][Ee]|[Aa][Rr][Cc][Hh][Ii][Vv][Ee][Dd])?$")]
    status: Option<String>,
    /// 1 to 100; 50 by default.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `nextCursor` of the previous page.
    #[param(pattern = "^([0-9]{1,18})?$")]
    after: Option<String>,
    /// `asc` (oldest first, the default) or `desc`, in any case.
    #[param(pattern = "^([Aa][Ss][Cc]|[Dd][Ee][Ss][Cc])?$")]
    order: Option<String>,
}

#[utoipa::path(get, path = "/v1/plans", tag = "plans", params(PlanListQuery),
    responses((status = 200, body = PlanList), (status = 400, body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authed,
    ValidQuery(q, _): ValidQuery<PlanListQuery>,
) -> ApiResult<Json<ListOut<PlanOut>>> {
    let filter = PlanFilter {
        status: query_param(
            "status",
            q.status.as_deref(),
            "ACTIVE or ARCHIVED",
            PlanStatus::parse,
        )?,
    };
    let page = page_request(q.limit.as_deref(), q.after.as_deref(), q.order.as_deref())?;
    let page = state.store().list_plans(&auth.scope, &filter, page).await?;
    Ok(Json(ListOut::from_page(page, PlanOut::from)))
}

#[utoipa::path(get, path = "/v1/plans/{id}", tag = "plans", params(("id" = String, Path)),
    responses((status = 200, body = PlanOut), (status = 404, body = ErrorEnvelope)))]
pub async fn retrieve(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<PlanOut>> {
    let id = plan_id(&id)?;
    let plan = state
        .store()
        .get_plan(&auth.scope, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("plan", &id))?;
    Ok(Json(plan.into()))
}

#[utoipa::path(patch, path = "/v1/plans/{id}", tag = "plans", params(("id" = String, Path)),
    request_body = PlanPatchIn,
    responses((status = 200, body = PlanOut), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): ValidJson<PlanPatchIn>,
) -> ApiResult<Json<PlanOut>> {
    let id = plan_id(&id)?;
    let now = state.now();
    let patch = PlanPatch {
        name: input.name,
        description: input.description,
        permissions: input.permissions,
        add_prices: input.add_prices.into_iter().map(PriceDraft::from).collect(),
        retire_prices: price_ids("retirePrices", &input.retire_prices)?,
    };
    let plan = state
        .store()
        .update_plan(&auth.scope, &id, |plan| plan.patch(patch, now))
        .await?;
    Ok(Json(plan.into()))
}

/// Archived plans keep their members but take no new ones. Archiving twice is harmless.
#[utoipa::path(post, path = "/v1/plans/{id}/archive", tag = "plans", params(("id" = String, Path)),
    responses((status = 200, body = PlanOut), (status = 404, body = ErrorEnvelope)))]
pub async fn archive(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<PlanOut>> {
    let id = plan_id(&id)?;
    let now = state.now();
    let plan = state
        .store()
        .update_plan(&auth.scope, &id, |plan| Ok(plan.archive(now)))
        .await?;
    Ok(Json(plan.into()))
}
