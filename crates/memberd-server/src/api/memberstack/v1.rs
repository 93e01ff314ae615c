//! The Memberstack 1.0 REST API (seed 001): members with one `membership` each, paged by
//! number, updated by POST.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use memberd_core::member::check_password;
use memberd_core::{
    ConnectionStatus, ConnectionType, Environment, Member, MemberId, MemberPatch, NewMember, PlanId,
};
use memberd_store::{ConnectionView, MemberView};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{MemberstackErrors, MsError, MsErrorEnvelope, MsResult};
use crate::error::ApiError;
use crate::extract::{Authed, ValidJson, ValidQuery};
use crate::passwords::hash_password;
use crate::state::AppState;

type Body<T> = ValidJson<T, MemberstackErrors>;

const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 100;

/// A 1.0 member: `stripeInfo`, `metaData` and `customFields` appear only when they hold
/// something.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct V1Member {
    id: String,
    #[schema(format = Email, max_length = 254)]
    email: String,
    created_at: String,
    membership: Option<Membership>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stripe_info: Option<StripeInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::api::schemas::meta_data)]
    meta_data: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::api::schemas::custom_fields)]
    custom_fields: Option<Map<String, Value>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct Membership {
    one_time: bool,
    test_mode: bool,
    status: &'static str,
    plan: String,
    #[serde(rename = "type")]
    plan_type: &'static str,
    #[serde(rename = "cancel_at_period_end")]
    cancel_at_period_end: bool,
    /// Unix seconds, as a string.
    #[serde(rename = "current_period_end")]
    current_period_end: Option<String>,
    amount: i64,
    customer: Option<String>,
    #[schema(value_type = Option<Object>)]
    card: Option<Value>,
}

#[derive(Serialize, ToSchema)]
struct StripeInfo {
    customer: String,
}

/// Seed 001's lower-case vocabulary. It has no word for a paused subscription; Stripe's
/// `paused` is the one its clients know.
fn status(s: ConnectionStatus) -> &'static str {
    match s {
        ConnectionStatus::Active => "active",
        ConnectionStatus::Trialing => "trialing",
        ConnectionStatus::PastDue => "past_due",
        ConnectionStatus::RequiresPayment | ConnectionStatus::Incomplete => "incomplete",
        ConnectionStatus::Unpaid => "unpaid",
        ConnectionStatus::Paused => "paused",
        ConnectionStatus::Canceled => "canceled",
        ConnectionStatus::Expired => "expired",
    }
}

/// The one membership 1.0 shows: the first connection that grants access, else the newest.
fn primary(connections: &[ConnectionView]) -> Option<&ConnectionView> {
    connections
        .iter()
        .find(|v| v.connection.active())
        .or_else(|| connections.last())
}

pub fn render(view: MemberView, env: Environment) -> V1Member {
    let m = &view.member;
    let membership = primary(&view.connections).map(|v| {
        let c = &v.connection;
        Membership {
            one_time: c.connection_type == ConnectionType::Onetime,
            test_mode: env == Environment::Sandbox,
            status: status(c.status),
            plan: c.plan_id.to_string(),
            plan_type: if c.connection_type == ConnectionType::Free {
                "free"
            } else {
                "paid"
            },
            cancel_at_period_end: c.cancel_at_period_end,
            current_period_end: c
                .current_period_end
                .map(|t| t.as_unix_millis().div_euclid(1000).to_string()),
            amount: c.amount,
            customer: m.stripe_customer_id.clone(),
            card: None,
        }
    });
    let non_empty = |map: &Map<String, Value>| (!map.is_empty()).then(|| map.clone());
    V1Member {
        id: m.id.to_string(),
        email: m.email.to_string(),
        created_at: m.created_at.to_rfc3339(),
        membership,
        stripe_info: m
            .stripe_customer_id
            .clone()
            .map(|customer| StripeInfo { customer }),
        meta_data: non_empty(m.meta_data.as_map()),
        custom_fields: non_empty(m.custom_fields.as_map()),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// 1 to 100; 100 by default.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// From 1.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295_i64)]
    page: Option<String>,
}

fn positive(name: &str, raw: Option<&str>, max: u32, default: u32) -> MsResult<u32> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(default),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                MsError(ApiError::invalid(
                    name,
                    "invalid_parameter",
                    format!("{name} must be a whole number from 1 to {max}, got {raw:?}"),
                ))
            }),
    }
}

/// `GET v1/members?limit=&page=`: an array of members, oldest first; `page` counts from 1.
#[utoipa::path(get, path = "/v1/members", tag = "memberstack 1.0", params(ListQuery),
    responses((status = 200, body = Vec<V1Member>), (status = 400, body = MsErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authed,
    ValidQuery(q, _): ValidQuery<ListQuery, crate::api::memberstack::MemberstackErrors>,
) -> MsResult<Json<Vec<V1Member>>> {
    let limit = positive("limit", q.limit.as_deref(), MAX_LIMIT, DEFAULT_LIMIT)?;
    let page = positive("page", q.page.as_deref(), u32::MAX, 1)?;
    let offset = u64::from(page - 1) * u64::from(limit);
    let views = state
        .store()
        .list_members_by_offset(&auth.scope, offset, limit)
        .await?;
    let env = auth.scope.env;
    Ok(Json(views.into_iter().map(|v| render(v, env)).collect()))
}

fn member_id(raw: &str) -> MsResult<MemberId> {
    MemberId::parse(raw).ok_or_else(|| MsError(ApiError::not_found("member", raw)))
}

#[utoipa::path(get, path = "/v1/members/{id}", tag = "memberstack 1.0", params(("id" = String, Path)),
    responses((status = 200, body = V1Member), (status = 404, body = MsErrorEnvelope)))]
pub async fn retrieve(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> MsResult<Json<V1Member>> {
    let id = member_id(&id)?;
    let view = state
        .store()
        .get_member(&auth.scope, &id)
        .await?
        .ok_or_else(|| MsError(ApiError::not_found("member", &id)))?;
    Ok(Json(render(view, auth.scope.env)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct V1MemberIn {
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[schema(min_length = 8, max_length = 1024)]
    password: Option<String>,
    /// A free plan's id.
    plan: Option<String>,
    #[schema(schema_with = crate::api::schemas::custom_fields)]
    custom_fields: Option<Map<String, Value>>,
    #[schema(schema_with = crate::api::schemas::meta_data)]
    meta_data: Option<Map<String, Value>>,
}

async fn hashed(password: Option<String>) -> MsResult<Option<String>> {
    match password {
        None => Ok(None),
        Some(password) => {
            check_password(&password)?;
            Ok(Some(hash_password(password).await?))
        }
    }
}

/// Creates a member, on a free plan when `plan` is given (seed 001: free plans only).
#[utoipa::path(post, path = "/v1/members", tag = "memberstack 1.0", request_body = V1MemberIn,
    responses((status = 201, body = V1Member), (status = 400, body = MsErrorEnvelope), (status = 409, body = MsErrorEnvelope)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authed,
    ValidJson(input, _): Body<V1MemberIn>,
) -> MsResult<(StatusCode, Json<V1Member>)> {
    let plans = match input.plan.as_deref().filter(|p| !p.is_empty()) {
        None => Vec::new(),
        Some(raw) => vec![PlanId::parse(raw).ok_or_else(|| {
            MsError(ApiError::invalid(
                "plan",
                "invalid_id",
                format!("plan must be a plan id such as pln_…, got {raw:?}"),
            ))
        })?],
    };
    let draft = NewMember {
        email: input.email,
        custom_fields: input.custom_fields,
        meta_data: input.meta_data,
        ..NewMember::default()
    };
    let (mut member, event) = Member::create(draft, state.now())?;
    member.password_hash = hashed(input.password).await?;
    let view = state
        .store()
        .insert_member_with_free_plans(&auth.scope, &member, &event, &plans, None)
        .await
        .map_err(|e| {
            let mut err = ApiError::from(e);
            // The store names the plan as it would in a list; 1.0 has a single `plan`.
            if err.param.as_deref() == Some("plans[0].planId") {
                err.param = Some("plan".into());
                err.message = err.message.replace("plans[0].planId", "plan");
            }
            MsError(err)
        })?;
    Ok((StatusCode::CREATED, Json(render(view, auth.scope.env))))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct V1MemberPatch {
    #[schema(format = Email, max_length = 254)]
    email: Option<String>,
    #[schema(min_length = 8, max_length = 1024)]
    password: Option<String>,
    #[schema(schema_with = crate::api::schemas::custom_fields)]
    custom_fields: Option<Map<String, Value>>,
    #[schema(schema_with = crate::api::schemas::meta_data)]
    meta_data: Option<Map<String, Value>>,
}

/// `POST v1/members/{id}` updates: `customFields` and `metaData` are shallow-merged.
#[utoipa::path(post, path = "/v1/members/{id}", tag = "memberstack 1.0", params(("id" = String, Path)),
    request_body = V1MemberPatch,
    responses((status = 200, body = V1Member), (status = 400, body = MsErrorEnvelope), (status = 404, body = MsErrorEnvelope), (status = 409, body = MsErrorEnvelope)))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): Body<V1MemberPatch>,
) -> MsResult<Json<V1Member>> {
    let id = member_id(&id)?;
    let patch = MemberPatch {
        email: input.email,
        password_hash: hashed(input.password).await?,
        custom_fields: input.custom_fields,
        meta_data: input.meta_data,
        ..MemberPatch::default()
    };
    let now = state.now();
    let view = state
        .store()
        .update_member(&auth.scope, &id, |m| m.patch(patch, now))
        .await?;
    Ok(Json(render(view, auth.scope.env)))
}

#[derive(Serialize, ToSchema)]
pub struct Deleted {
    id: String,
    deleted: bool,
}

#[utoipa::path(delete, path = "/v1/members/{id}", tag = "memberstack 1.0", params(("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = 404, body = MsErrorEnvelope)))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> MsResult<Json<Deleted>> {
    let id = member_id(&id)?;
    state
        .store()
        .delete_member(&auth.scope, &id, state.now())
        .await?;
    Ok(Json(Deleted {
        id: id.to_string(),
        deleted: true,
    }))
}
