//! The Memberstack 2.0 Admin API's members, as `@memberstack/admin` 1.7.0 sends and reads them.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use memberd_core::member::check_password;
use memberd_core::{Email, Member, MemberId, MemberPatch, NewMember, PlanId, Timestamp};
use memberd_store::{ConnectionView, Cursor, MemberFilter, MemberView, Order, PageRequest};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{MemberstackErrors, MsError, MsErrorEnvelope, MsResult};
use crate::error::ApiError;
use crate::extract::{double_option, Authed, ValidJson, ValidQuery};
use crate::passwords::hash_password;
use crate::state::AppState;

type Body<T> = ValidJson<T, MemberstackErrors>;

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 100;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MsMember {
    id: String,
    auth: MsAuth,
    verified: bool,
    #[schema(value_type = Object)]
    meta_data: Map<String, Value>,
    /// Left out of list pages unless `includeJSON=true`, as Memberstack does.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = crate::api::schemas::json_document)]
    json: Option<Value>,
    #[schema(max_length = 2048, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    login_redirect: Option<String>,
    #[schema(max_length = 2048, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    profile_image: Option<String>,
    #[schema(max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    stripe_customer_id: Option<String>,
    last_login: Option<String>,
    created_at: String,
    #[schema(value_type = Object)]
    custom_fields: Map<String, Value>,
    permissions: Vec<String>,
    plan_connections: Vec<MsPlanConnection>,
}

#[derive(Serialize, ToSchema)]
struct MsAuth {
    #[schema(format = Email, max_length = 254)]
    email: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct MsPlanConnection {
    id: String,
    active: bool,
    status: &'static str,
    plan_id: String,
    plan_name: String,
    #[serde(rename = "type")]
    connection_type: &'static str,
    payment: Option<MsPayment>,
}

/// The billing terms of a paid connection. Dates are Unix seconds, as Stripe gives them.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct MsPayment {
    amount: i64,
    currency: String,
    status: &'static str,
    last_billing_date: Option<i64>,
    next_billing_date: Option<i64>,
    cancel_at_date: Option<i64>,
    last_invoice: Option<String>,
    last_receipt: Option<String>,
    card: Option<String>,
}

fn unix_seconds(t: Option<Timestamp>) -> Option<i64> {
    t.map(|t| t.as_unix_millis().div_euclid(1000))
}

fn connection(view: ConnectionView) -> MsPlanConnection {
    let c = view.connection;
    let payment = (c.amount > 0).then(|| MsPayment {
        amount: c.amount,
        currency: c.currency.clone().unwrap_or_default().to_ascii_lowercase(),
        status: if c.active() { "PAID" } else { "UNPAID" },
        last_billing_date: unix_seconds(c.current_period_start),
        next_billing_date: unix_seconds(c.next_billing_date()),
        cancel_at_date: unix_seconds(c.end_date.filter(|_| c.cancel_at_period_end)),
        last_invoice: None,
        last_receipt: None,
        card: None,
    });
    MsPlanConnection {
        id: c.id.to_string(),
        active: c.active(),
        status: c.status.as_str(),
        plan_id: c.plan_id.to_string(),
        plan_name: view.plan_name,
        connection_type: c.connection_type.as_str(),
        payment,
    }
}

pub fn render(view: MemberView, include_json: bool) -> MsMember {
    let permissions = view.permissions();
    let m = view.member;
    MsMember {
        id: m.id.to_string(),
        auth: MsAuth {
            email: m.email.to_string(),
        },
        verified: m.verified,
        meta_data: m.meta_data.as_map().clone(),
        json: include_json.then(|| m.json.unwrap_or(Value::Null)),
        login_redirect: m.login_redirect,
        profile_image: m.profile_image,
        stripe_customer_id: m.stripe_customer_id,
        last_login: m.last_login.map(|t| t.to_rfc3339()),
        created_at: m.created_at.to_rfc3339(),
        custom_fields: m.custom_fields.as_map().clone(),
        permissions,
        plan_connections: view.connections.into_iter().map(connection).collect(),
    }
}

#[derive(Serialize, ToSchema)]
pub struct Single<T> {
    data: T,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MsPage {
    data: Vec<MsMember>,
    has_next_page: bool,
    end_cursor: i64,
    total_count: i64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, from 1; larger than 100 is capped to 100; 50 by default.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295_i64)]
    first: Option<String>,
    /// The same as `first`, which wins when both are given.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295_i64)]
    limit: Option<String>,
    /// The `endCursor` of the previous page.
    #[param(pattern = "^([0-9]{1,18})?$")]
    after: Option<String>,
    /// `ASC` (oldest first, the default) or `DESC`, in any case.
    #[param(pattern = "^([Aa][Ss][Cc]|[Dd][Ee][Ss][Cc])?$")]
    order: Option<String>,
    /// `true` adds each member's `json`.
    #[serde(rename = "includeJSON")]
    include_json: Option<String>,
}

fn invalid(param: &str, message: String) -> MsError {
    MsError(ApiError::invalid(param, "invalid_parameter", message))
}

/// A page size: from 1, capped to `MAX_PAGE`.
fn page_size(name: &str, raw: Option<&str>) -> MsResult<Option<u32>> {
    match raw.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if n >= 1 => Ok(Some(n.min(MAX_PAGE))),
            _ => Err(invalid(
                name,
                format!("{name} must be a whole number from 1 to {MAX_PAGE}, got {raw:?}"),
            )),
        },
    }
}

/// `GET members?first=&after=&order=`: `endCursor` is the position of the page's last member
/// (the `after` given, or 0, on an empty page), so a walk never sees a member twice even while
/// members are created and deleted.
#[utoipa::path(get, path = "/members", tag = "memberstack 2.0", params(ListQuery),
    responses((status = 200, body = MsPage), (status = 400, body = MsErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authed,
    ValidQuery(q, _): ValidQuery<ListQuery, crate::api::memberstack::MemberstackErrors>,
) -> MsResult<Json<MsPage>> {
    // Both are checked, so that a bad `limit` is named even beside a good `first`.
    let first = page_size("first", q.first.as_deref())?;
    let limit = page_size("limit", q.limit.as_deref())?;
    let size = first.or(limit).unwrap_or(DEFAULT_PAGE);
    let after = match q.after.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(Cursor::decode(raw).ok_or_else(|| {
            invalid(
                "after",
                format!("after must be the endCursor of a previous page, got {raw:?}"),
            )
        })?),
    };
    let order = match q.order.as_deref().filter(|s| !s.is_empty()) {
        None => Order::Asc,
        Some(o) if o.eq_ignore_ascii_case("asc") => Order::Asc,
        Some(o) if o.eq_ignore_ascii_case("desc") => Order::Desc,
        Some(o) => {
            return Err(invalid(
                "order",
                format!("order must be ASC or DESC, got {o:?}"),
            ))
        }
    };
    let include_json = q
        .include_json
        .as_deref()
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1");
    let page = state
        .store()
        .list_members(
            &auth.scope,
            &MemberFilter::default(),
            PageRequest {
                after,
                limit: size,
                order,
            },
        )
        .await?;
    let end_cursor = page.next_cursor.or(after).map(|Cursor(n)| n).unwrap_or(0);
    Ok(Json(MsPage {
        has_next_page: page.has_more,
        end_cursor,
        total_count: page.total_count,
        data: page
            .items
            .into_iter()
            .map(|v| render(v, include_json))
            .collect(),
    }))
}

/// By id or by email. A miss answers `{"data": null}` with 200, which the SDK resolves.
#[utoipa::path(get, path = "/members/{id}", tag = "memberstack 2.0",
    params(("id" = String, Path, description = "A member id or a URL-encoded email")),
    responses((status = 200, body = Single<Option<MsMember>>)))]
pub async fn retrieve(
    State(state): State<AppState>,
    auth: Authed,
    Path(key): Path<String>,
) -> MsResult<Json<Single<Option<MsMember>>>> {
    let store = state.store();
    let found = if let Some(id) = MemberId::parse(&key) {
        store.get_member(&auth.scope, &id).await?
    } else if let Ok(email) = Email::parse(&key) {
        store.get_member_by_email(&auth.scope, &email).await?
    } else {
        None
    };
    Ok(Json(Single {
        data: found.map(|v| render(v, true)),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct PlanRef {
    #[serde(rename = "planId")]
    plan_id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MsMemberIn {
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[schema(min_length = 8, max_length = 1024)]
    password: Option<String>,
    #[serde(default)]
    plans: Vec<PlanRef>,
    #[schema(schema_with = crate::api::schemas::custom_fields)]
    custom_fields: Option<Map<String, Value>>,
    #[schema(schema_with = crate::api::schemas::meta_data)]
    meta_data: Option<Map<String, Value>>,
    #[schema(schema_with = crate::api::schemas::json_document)]
    json: Option<Value>,
    #[schema(max_length = 2048, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    login_redirect: Option<String>,
}

fn plan_id(field: String, raw: &str) -> MsResult<PlanId> {
    PlanId::parse(raw).ok_or_else(|| {
        MsError(ApiError::invalid(
            field.clone(),
            "invalid_id",
            format!("{field} must be a plan id such as pln_…, got {raw:?}"),
        ))
    })
}

/// Creates a member with free plans only, all or nothing.
#[utoipa::path(post, path = "/members", tag = "memberstack 2.0", request_body = MsMemberIn,
    responses((status = 201, body = Single<MsMember>), (status = 400, body = MsErrorEnvelope), (status = 409, body = MsErrorEnvelope)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authed,
    ValidJson(input, _): Body<MsMemberIn>,
) -> MsResult<(StatusCode, Json<Single<MsMember>>)> {
    let plans = input
        .plans
        .iter()
        .enumerate()
        .map(|(i, p)| plan_id(format!("plans[{i}].planId"), &p.plan_id))
        .collect::<MsResult<Vec<_>>>()?;
    let draft = NewMember {
        email: input.email,
        custom_fields: input.custom_fields,
        meta_data: input.meta_data,
        json: input.json,
        login_redirect: input.login_redirect,
        ..NewMember::default()
    };
    let (mut member, event) = Member::create(draft, state.now())?;
    if let Some(password) = input.password {
        check_password(&password)?;
        member.password_hash = Some(hash_password(password).await?);
    }
    let view = state
        .store()
        .insert_member_with_free_plans(&auth.scope, &member, &event, &plans, None)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Single {
            data: render(view, true),
        }),
    ))
}

#[derive(Deserialize, Default, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MsMemberPatch {
    #[schema(format = Email, max_length = 254)]
    email: Option<String>,
    verified: Option<bool>,
    #[schema(schema_with = crate::api::schemas::custom_fields)]
    custom_fields: Option<Map<String, Value>>,
    #[schema(schema_with = crate::api::schemas::meta_data)]
    meta_data: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = crate::api::schemas::json_document)]
    json: Option<Option<Value>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    login_redirect: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    profile_image: Option<Option<String>>,
}

fn member_id(raw: &str) -> MsResult<MemberId> {
    MemberId::parse(raw).ok_or_else(|| MsError(ApiError::not_found("member", raw)))
}

/// `customFields` and `metaData` are shallow-merged; `json` is replaced whole.
#[utoipa::path(patch, path = "/members/{id}", tag = "memberstack 2.0", params(("id" = String, Path)),
    request_body = MsMemberPatch,
    responses((status = 200, body = Single<MsMember>), (status = 400, body = MsErrorEnvelope), (status = 404, body = MsErrorEnvelope), (status = 409, body = MsErrorEnvelope)))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): Body<MsMemberPatch>,
) -> MsResult<Json<Single<MsMember>>> {
    let id = member_id(&id)?;
    let patch = MemberPatch {
        email: input.email,
        verified: input.verified,
        custom_fields: input.custom_fields,
        meta_data: input.meta_data,
        json: input.json,
        login_redirect: input.login_redirect,
        profile_image: input.profile_image,
        ..MemberPatch::default()
    };
    let now = state.now();
    let view = state
        .store()
        .update_member(&auth.scope, &id, |m| m.patch(patch, now))
        .await?;
    Ok(Json(Single {
        data: render(view, true),
    }))
}

#[derive(Serialize, ToSchema)]
pub struct DeletedId {
    id: String,
}

/// The SDK may send `deleteStripeCustomer` and `cancelStripeSubscriptions`; memberd keeps no
/// Stripe objects of its own to act on, so they change nothing.
#[utoipa::path(delete, path = "/members/{id}", tag = "memberstack 2.0", params(("id" = String, Path)),
    responses((status = 200, body = Single<DeletedId>), (status = 404, body = MsErrorEnvelope)))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> MsResult<Json<Single<DeletedId>>> {
    let id = member_id(&id)?;
    state
        .store()
        .delete_member(&auth.scope, &id, state.now())
        .await?;
    Ok(Json(Single {
        data: DeletedId { id: id.to_string() },
    }))
}

/// Memberstack answers the plan routes with a plain-text `OK`, which the SDK hands back.
#[utoipa::path(post, path = "/members/{id}/add-plan", tag = "memberstack 2.0", params(("id" = String, Path)),
    request_body = PlanRef,
    responses((status = 200, body = String, content_type = "text/plain"), (status = 400, body = MsErrorEnvelope), (status = 404, body = MsErrorEnvelope)))]
pub async fn add_plan(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): Body<PlanRef>,
) -> MsResult<&'static str> {
    let member = member_id(&id)?;
    let plan = plan_id("planId".into(), &input.plan_id)?;
    state
        .store()
        .connect_free_plan(&auth.scope, &member, &plan, state.now())
        .await
        .map_err(|e| MsError(ApiError::from(e)))?;
    Ok("OK")
}

#[utoipa::path(post, path = "/members/{id}/remove-plan", tag = "memberstack 2.0", params(("id" = String, Path)),
    request_body = PlanRef,
    responses((status = 200, body = String, content_type = "text/plain"), (status = 400, body = MsErrorEnvelope), (status = 404, body = MsErrorEnvelope)))]
pub async fn remove_plan(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): Body<PlanRef>,
) -> MsResult<&'static str> {
    let member = member_id(&id)?;
    let plan = plan_id("planId".into(), &input.plan_id)?;
    state
        .store()
        .remove_free_plan(&auth.scope, &member, &plan, state.now())
        .await?;
    Ok("OK")
}

#[derive(Deserialize, ToSchema)]
pub struct VerifyTokenIn {
    token: String,
}

/// `POST members/verify-token` `{token}`: the claims of a member's live token, as
/// Memberstack's Admin REST API answers them; a token that fails any check is a 401.
#[utoipa::path(post, path = "/members/verify-token", tag = "memberstack 2.0", request_body = VerifyTokenIn,
    responses((status = 200, body = Single<crate::api::native::accounts::TokenClaims>),
        (status = 400, body = MsErrorEnvelope)))]
pub async fn verify_token(
    State(state): State<AppState>,
    auth: Authed,
    ValidJson(body, _): Body<VerifyTokenIn>,
) -> MsResult<Json<Single<crate::api::native::accounts::TokenClaims>>> {
    let (claims, _) = crate::api::native::accounts::verify(&state, &auth, &body.token).await?;
    Ok(Json(Single { data: claims }))
}
