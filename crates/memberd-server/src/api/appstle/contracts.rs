//! Membership contracts, membership status and plans, as seed 002 shows them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use memberd_core::appstle::{self, contract, Contract};
use memberd_core::plan::Plan;
use memberd_core::{PlanId, PriceId};
use memberd_store::{
    ConnectionRequest, ContractFilter, ContractView, Order, PageRequest, PlanFilter,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{AppstleError, AppstleErrors, AppstleProblem, AppstleResult};
use crate::error::ApiError;
use crate::extract::{parse_timestamp, Authed, ValidJson, ValidQuery};
use crate::state::AppState;

type Body<T> = ValidJson<T, AppstleErrors>;

const DEFAULT_SIZE: u32 = 20;
const MAX_SIZE: u32 = 200;

fn invalid(field: &str, message: String) -> AppstleError {
    AppstleError(ApiError::invalid(field, "invalid_parameter", message))
}

fn render(c: &ContractView) -> Contract {
    contract(c.facts())
}

/// A page in the shape of Spring Data's `Page`, which Appstle's API answers lists with.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageOut<T> {
    content: Vec<T>,
    total_elements: i64,
    total_pages: i64,
    /// The page number, from 0.
    number: u64,
    size: u32,
    number_of_elements: usize,
    first: bool,
    last: bool,
    empty: bool,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    /// Only the contracts of this customer (a member's `externalId`).
    customer_id: Option<String>,
    /// ACTIVE, TRIALING, PAST_DUE, PAUSED, CANCELLED (or CANCELED), EXPIRED, …, in any case.
    #[param(
        pattern = "^([Aa][Cc][Tt][Ii][Vv][Ee]|[Tt][Rr][Ii][Aa][Ll][Ii][Nn][Gg]|[Pp][Aa][Ss][Tt]_[Dd][Uu][Ee]|[Rr][Ee][Qq][Uu][Ii][Rr][Ee][Ss]_[Pp][Aa][Yy][Mm][Ee][Nn][Tt]|[Uu][Nn][Pp][Aa][Ii][Dd]|[Pp][Aa][Uu][Ss][Ee][Dd]|[Cc][Aa][Nn][Cc][Ee][Ll][Ee][Dd]|[Cc][Aa][Nn][Cc][Ee][Ll][Ll][Ee][Dd]|[Ee][Xx][Pp][Ii][Rr][Ee][Dd]|[Ii][Nn][Cc][Oo][Mm][Pp][Ll][Ee][Tt][Ee])?$"
    )]
    status: Option<String>,
    /// The page, from 0.
    #[param(value_type = Option<u32>, minimum = 0)]
    page: Option<String>,
    /// 1 to 200; 20 by default.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 200)]
    size: Option<String>,
}

/// `GET membership-contracts?customerId=&status=&page=&size=`: pages count from 0.
#[utoipa::path(get, path = "/membership-contracts", tag = "appstle", params(("shop" = String, Query, min_length = 1, pattern = "\\S", description = "The store, such as your-store.myshopify.com: the store of the key"), ListQuery),
    responses((status = 200, body = PageOut<Contract>), (status = 400, body = AppstleProblem)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authed,
    ValidQuery(q, _): ValidQuery<ListQuery, crate::api::appstle::AppstleErrors>,
) -> AppstleResult<Json<PageOut<Contract>>> {
    let page = match q.page.as_deref().filter(|s| !s.is_empty()) {
        None => 0,
        Some(raw) => raw
            .parse::<u64>()
            .ok()
            .filter(|p| *p <= u64::from(u32::MAX))
            .ok_or_else(|| {
                invalid(
                    "page",
                    format!("page must be a whole number from 0, got {raw:?}"),
                )
            })?,
    };
    let size = match q.size.as_deref().filter(|s| !s.is_empty()) {
        None => DEFAULT_SIZE,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_SIZE).contains(n))
            .ok_or_else(|| {
                invalid(
                    "size",
                    format!("size must be a whole number from 1 to {MAX_SIZE}, got {raw:?}"),
                )
            })?,
    };
    let status = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(appstle::parse_status(raw).ok_or_else(|| {
            invalid(
                "status",
                format!("status must be ACTIVE, PAUSED, CANCELLED, EXPIRED, …; got {raw:?}"),
            )
        })?),
    };
    let filter = ContractFilter {
        customer_id: q.customer_id.filter(|c| !c.trim().is_empty()),
        status,
    };
    let (contracts, total) = state
        .store()
        .list_contracts(&auth.scope, &filter, page * u64::from(size), size)
        .await?;
    let total_pages = (total + i64::from(size) - 1) / i64::from(size);
    let content: Vec<Contract> = contracts.iter().map(render).collect();
    Ok(Json(PageOut {
        total_elements: total,
        total_pages,
        number: page,
        size,
        number_of_elements: content.len(),
        first: page == 0,
        last: (page as i64) + 1 >= total_pages,
        empty: content.is_empty(),
        content,
    }))
}

fn contract_number(raw: &str) -> AppstleResult<i64> {
    raw.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        invalid(
            "contractId",
            format!("contractId must be a contract's number, got {raw:?}"),
        )
    })
}

async fn load(state: &AppState, auth: &Authed, raw: &str) -> AppstleResult<ContractView> {
    let number = contract_number(raw)?;
    state
        .store()
        .get_contract(&auth.scope, number)
        .await?
        .ok_or_else(|| AppstleError(ApiError::not_found("membership contract", number)))
}

#[utoipa::path(get, path = "/membership-contracts/{id}", tag = "appstle", params(("shop" = String, Query, min_length = 1, pattern = "\\S", description = "The store, such as your-store.myshopify.com: the store of the key"), ("id" = i64, Path, minimum = 1, description = "The contract's number")),
    responses((status = 200, body = Contract), (status = 400, body = AppstleProblem), (status = 404, body = AppstleProblem)))]
pub async fn retrieve(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> AppstleResult<Json<Contract>> {
    Ok(Json(render(&load(&state, &auth, &id).await?)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreateIn {
    customer_id: String,
    plan_id: String,
    price_id: Option<String>,
}

/// Puts a customer on a plan: a new contract.
#[utoipa::path(post, path = "/membership-contracts", tag = "appstle", params(("shop" = String, Query, min_length = 1, pattern = "\\S", description = "The store, such as your-store.myshopify.com: the store of the key")), request_body = CreateIn,
    responses((status = 201, body = Contract), (status = 400, body = AppstleProblem), (status = 402, body = AppstleProblem), (status = 404, body = AppstleProblem), (status = 409, body = AppstleProblem)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authed,
    ValidJson(input, _): Body<CreateIn>,
) -> AppstleResult<(StatusCode, Json<Contract>)> {
    let plan = PlanId::parse(&input.plan_id).ok_or_else(|| {
        invalid(
            "planId",
            format!(
                "planId must be a plan id such as pln_…, got {:?}",
                input.plan_id
            ),
        )
    })?;
    let price = match input.price_id.as_deref().filter(|p| !p.is_empty()) {
        None => None,
        Some(raw) => Some(PriceId::parse(raw).ok_or_else(|| {
            invalid(
                "priceId",
                format!("priceId must be a price id such as prc_…, got {raw:?}"),
            )
        })?),
    };
    let store = state.store();
    let member = store
        .get_member_by_external_id(&auth.scope, &input.customer_id)
        .await?
        .ok_or_else(|| {
            AppstleError(
                ApiError::not_found("customer", &input.customer_id).with_param("customerId"),
            )
        })?;
    let view = crate::billing::connect::connect(
        &state,
        &auth.scope,
        &member.member.id,
        &plan,
        price.as_ref(),
    )
    .await
    .map_err(|err| {
        AppstleError(if err.code == "plan_not_found" {
            err.or_param("planId")
        } else {
            err
        })
    })?;
    let created = ContractView {
        view,
        customer_id: member.member.external_id,
    };
    Ok((StatusCode::CREATED, Json(render(&created))))
}

async fn change(
    state: &AppState,
    auth: &Authed,
    raw: &str,
    request: ConnectionRequest,
) -> AppstleResult<Json<Contract>> {
    let current = load(state, auth, raw).await?;
    let view = state
        .store()
        .change_connection(
            &auth.scope,
            &current.view.connection.id,
            request,
            state.now(),
        )
        .await?;
    // Rendered from what the change returns, not read back, so that the answer is kept in
    // the change's own transaction (see the idempotency middleware).
    let changed = ContractView {
        view,
        customer_id: current.customer_id,
    };
    Ok(Json(render(&changed)))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase")]
// Named apart from the native face's schema of the same Rust name, which it would
// replace in the merged document.
#[schema(as = AppstleCancelIn)]
pub struct CancelIn {
    /// Kept on the contract and sent with `membership.cancelled`.
    reason: Option<String>,
    /// Keep the membership to the end of the paid period.
    #[serde(default)]
    cancel_at_period_end: bool,
}

#[utoipa::path(post, path = "/membership-contracts/{id}/cancel", tag = "appstle", params(("shop" = String, Query, min_length = 1, pattern = "\\S", description = "The store, such as your-store.myshopify.com: the store of the key"), ("id" = i64, Path, minimum = 1, description = "The contract's number")), request_body = CancelIn,
    responses((status = 200, body = Contract), (status = 400, body = AppstleProblem), (status = 404, body = AppstleProblem), (status = 409, body = AppstleProblem)))]
pub async fn cancel(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): Body<CancelIn>,
) -> AppstleResult<Json<Contract>> {
    let request = ConnectionRequest::Cancel {
        reason: input.reason,
        at_period_end: input.cancel_at_period_end,
    };
    change(&state, &auth, &id, request).await
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase")]
// Named apart from the native face's schema of the same Rust name, which it would
// replace in the merged document.
#[schema(as = AppstlePauseIn)]
pub struct PauseIn {
    /// When to resume by itself.
    #[schema(value_type = Option<crate::api::schemas::TimeText>)]
    resume_date: Option<String>,
}

#[utoipa::path(post, path = "/membership-contracts/{id}/pause", tag = "appstle", params(("shop" = String, Query, min_length = 1, pattern = "\\S", description = "The store, such as your-store.myshopify.com: the store of the key"), ("id" = i64, Path, minimum = 1, description = "The contract's number")), request_body = PauseIn,
    responses((status = 200, body = Contract), (status = 400, body = AppstleProblem), (status = 404, body = AppstleProblem), (status = 409, body = AppstleProblem)))]
pub async fn pause(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): Body<PauseIn>,
) -> AppstleResult<Json<Contract>> {
    let resume_at = parse_timestamp("resumeDate", input.resume_date.as_deref())?;
    change(&state, &auth, &id, ConnectionRequest::Pause { resume_at }).await
}

#[utoipa::path(post, path = "/membership-contracts/{id}/resume", tag = "appstle", params(("shop" = String, Query, min_length = 1, pattern = "\\S", description = "The store, such as your-store.myshopify.com: the store of the key"), ("id" = i64, Path, minimum = 1, description = "The contract's number")),
    responses((status = 200, body = Contract), (status = 400, body = AppstleProblem), (status = 404, body = AppstleProblem), (status = 409, body = AppstleProblem)))]
pub async fn resume(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> AppstleResult<Json<Contract>> {
    change(&state, &auth, &id, ConnectionRequest::Resume).await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct StatusQuery {
    /// The customer (a member's `externalId`).
    #[param(value_type = String, required = true, min_length = 1, pattern = "^[^\\u0000]*\\S[^\\u0000]*$")]
    customer_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusOut {
    customer_id: String,
    /// Whether any membership of the customer grants access now.
    active: bool,
    /// `ACTIVE` when one does, `INACTIVE` otherwise (also for an unknown customer).
    status: &'static str,
    active_plans: Vec<ActivePlan>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivePlan {
    contract_id: i64,
    plan_id: String,
    plan_name: String,
    permissions: Vec<String>,
    status: &'static str,
    next_billing_date: Option<String>,
}

/// `GET membership-status?customerId=`: the call a storefront makes on every gated page, in
/// one query.
#[utoipa::path(get, path = "/membership-status", tag = "appstle", params(("shop" = String, Query, min_length = 1, pattern = "\\S", description = "The store, such as your-store.myshopify.com: the store of the key"), StatusQuery),
    responses((status = 200, body = StatusOut), (status = 400, body = AppstleProblem)))]
pub async fn status(
    State(state): State<AppState>,
    auth: Authed,
    ValidQuery(q, _): ValidQuery<StatusQuery, crate::api::appstle::AppstleErrors>,
) -> AppstleResult<Json<StatusOut>> {
    let customer = q
        .customer_id
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            AppstleError(ApiError::invalid(
                "customerId",
                "required",
                "customerId is required",
            ))
        })?;
    let contracts = state
        .store()
        .customer_contracts(&auth.scope, &customer)
        .await?
        .unwrap_or_default();
    let active_plans: Vec<ActivePlan> = contracts
        .into_iter()
        .filter(|c| c.view.connection.active())
        .map(|c| ActivePlan {
            contract_id: c.view.number,
            plan_id: c.view.connection.plan_id.to_string(),
            status: appstle::status(c.view.connection.status),
            next_billing_date: c.view.connection.next_billing_date().map(|t| t.to_date()),
            plan_name: c.view.plan_name,
            permissions: c.view.plan_permissions,
        })
        .collect();
    let active = !active_plans.is_empty();
    Ok(Json(StatusOut {
        customer_id: customer,
        active,
        status: if active { "ACTIVE" } else { "INACTIVE" },
        active_plans,
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
// Named apart from the native face's schema of the same Rust name, which it would
// replace in the merged document.
#[schema(as = AppstlePlan)]
pub struct PlanOut {
    id: String,
    name: String,
    description: Option<String>,
    status: &'static str,
    #[serde(rename = "type")]
    plan_type: &'static str,
    permissions: Vec<String>,
    prices: Vec<PriceOut>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
// Named apart from the native face's schema of the same Rust name, which it would
// replace in the merged document.
#[schema(as = AppstlePrice)]
pub struct PriceOut {
    id: String,
    amount: i64,
    currency: String,
    billing_cycle_type: Option<&'static str>,
    billing_cycle_count: u32,
    trial_days: u32,
}

fn plan_out(p: Plan) -> PlanOut {
    PlanOut {
        id: p.id.to_string(),
        status: p.status.as_str(),
        plan_type: p.plan_type.as_str(),
        prices: p
            .prices
            .iter()
            .map(|price| PriceOut {
                id: price.id.to_string(),
                amount: price.amount,
                currency: price.currency.clone(),
                billing_cycle_type: appstle::billing_cycle(
                    memberd_core::ConnectionType::Subscription,
                    Some(price.interval),
                ),
                billing_cycle_count: price.interval_count,
                trial_days: price.trial_days,
            })
            .collect(),
        name: p.name,
        description: p.description,
        permissions: p.permissions,
    }
}

/// Every plan of the store, oldest first.
#[utoipa::path(get, path = "/membership-plans", tag = "appstle", params(("shop" = String, Query, min_length = 1, pattern = "\\S", description = "The store, such as your-store.myshopify.com: the store of the key")),
    responses((status = 200, body = Vec<PlanOut>)))]
pub async fn plans(
    State(state): State<AppState>,
    auth: Authed,
) -> AppstleResult<Json<Vec<PlanOut>>> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = state
            .store()
            .list_plans(
                &auth.scope,
                &PlanFilter::default(),
                PageRequest {
                    after,
                    limit: 100,
                    order: Order::Asc,
                },
            )
            .await?;
        after = page.next_cursor;
        let more = page.has_more;
        all.extend(page.items.into_iter().map(plan_out));
        if !more {
            return Ok(Json(all));
        }
    }
}
