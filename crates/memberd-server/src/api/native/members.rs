//! `/v1/members`: the people of an app, with their plan connections.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use memberd_core::member::check_password;
use memberd_core::{ConnectionStatus, Email, Member, MemberId, MemberPatch, NewMember, PlanId};
use memberd_store::{MemberFilter, MemberView};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::connections::ConnectionOut;
use super::page::{list_schema, page_request, ListOut};
use crate::api::schemas::Permission;
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{double_option, parse_timestamp, query_param, Authed, ValidJson, ValidQuery};
use crate::passwords::hash_password;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberIn {
    /// Stored lowercase; unique in the environment.
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// 8 to 1,024 characters; stored as an argon2id hash and never returned.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: Option<String>,
    pub verified: Option<bool>,
    /// The fields of the member's signup form.
    #[schema(schema_with = crate::api::schemas::custom_fields)]
    pub custom_fields: Option<Map<String, Value>>,
    /// At most 50 keys of at most 50 characters, values of at most 500 characters.
    #[schema(schema_with = crate::api::schemas::meta_data)]
    pub meta_data: Option<Map<String, Value>>,
    /// Any JSON document, up to 64 KiB.
    #[schema(schema_with = crate::api::schemas::json_document)]
    pub json: Option<Value>,
    #[schema(max_length = 2048, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub login_redirect: Option<String>,
    #[schema(max_length = 2048, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub profile_image: Option<String>,
    #[schema(max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub stripe_customer_id: Option<String>,
    /// The member's id in another system, such as a Shopify customer id; unique in the environment.
    #[schema(max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub external_id: Option<String>,
    /// Permissions granted directly, on top of those of the member's plans.
    #[schema(value_type = Option<Vec<Permission>>, max_items = 100)]
    pub permissions: Option<Vec<String>>,
    /// Sandbox only: the test clock (`clock_…`) the member lives by. The member is created
    /// at the clock's time, and every later change of their plans happens at it.
    pub test_clock_id: Option<String>,
}

impl MemberIn {
    /// The core's draft of this member, and what the core does not take: the password in
    /// plain text (to check, then hash) and the test clock (to look up). `memberd import`
    /// reads its rows through this too, so that it accepts exactly what the API accepts.
    pub fn into_draft(self) -> (NewMember, Option<String>, Option<String>) {
        let draft = NewMember {
            email: self.email,
            password_hash: None,
            verified: self.verified,
            custom_fields: self.custom_fields,
            meta_data: self.meta_data,
            json: self.json,
            login_redirect: self.login_redirect,
            profile_image: self.profile_image,
            stripe_customer_id: self.stripe_customer_id,
            external_id: self.external_id,
            permissions: self.permissions,
        };
        (draft, self.password, self.test_clock_id)
    }
}

/// `customFields` and `metaData` are shallow-merged (a key set to `null` is removed); `json`
/// is replaced; `null` clears the other optional fields.
#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberPatchIn {
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    #[schema(min_length = 8, max_length = 1024)]
    pub password: Option<String>,
    pub verified: Option<bool>,
    #[schema(schema_with = crate::api::schemas::custom_fields)]
    pub custom_fields: Option<Map<String, Value>>,
    #[schema(schema_with = crate::api::schemas::meta_data)]
    pub meta_data: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(schema_with = crate::api::schemas::json_document)]
    pub json: Option<Option<Value>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub login_redirect: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub profile_image: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub stripe_customer_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>, max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub external_id: Option<Option<String>>,
    #[schema(value_type = Option<Vec<Permission>>, max_items = 100)]
    pub permissions: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemberOut {
    pub id: String,
    pub object: &'static str,
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    pub verified: bool,
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    #[schema(value_type = Object)]
    pub meta_data: Map<String, Value>,
    #[schema(schema_with = crate::api::schemas::json_document)]
    pub json: Option<Value>,
    #[schema(max_length = 2048, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub login_redirect: Option<String>,
    #[schema(max_length = 2048, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub profile_image: Option<String>,
    #[schema(max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub stripe_customer_id: Option<String>,
    #[schema(max_length = 255, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub external_id: Option<String>,
    /// Granted to the member directly.
    #[schema(value_type = Vec<Permission>, max_items = 100)]
    pub permissions: Vec<String>,
    /// Everything the member may do now: their own permissions and those of every plan they
    /// hold actively.
    pub effective_permissions: Vec<String>,
    pub plan_connections: Vec<ConnectionOut>,
    pub last_login: Option<String>,
    /// The sandbox test clock the member lives by, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_clock_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

list_schema!(MemberList, MemberOut);

#[derive(Serialize, ToSchema)]
pub struct DeletedOut {
    pub id: String,
    pub deleted: bool,
}

impl From<MemberView> for MemberOut {
    fn from(view: MemberView) -> Self {
        let effective_permissions = view.permissions();
        let m = view.member;
        MemberOut {
            id: m.id.to_string(),
            object: "member",
            email: m.email.to_string(),
            verified: m.verified,
            custom_fields: m.custom_fields.as_map().clone(),
            meta_data: m.meta_data.as_map().clone(),
            json: m.json,
            login_redirect: m.login_redirect,
            profile_image: m.profile_image,
            stripe_customer_id: m.stripe_customer_id,
            external_id: m.external_id,
            permissions: m.permissions,
            effective_permissions,
            plan_connections: view
                .connections
                .into_iter()
                .map(ConnectionOut::from)
                .collect(),
            last_login: m.last_login.map(|t| t.to_rfc3339()),
            test_clock_id: m.test_clock_id.map(|c| c.to_string()),
            created_at: m.created_at.to_rfc3339(),
            updated_at: m.updated_at.to_rfc3339(),
        }
    }
}

/// A member id from a path: one that does not parse cannot exist.
pub fn member_id(raw: &str) -> ApiResult<MemberId> {
    MemberId::parse(raw).ok_or_else(|| ApiError::not_found("member", raw))
}

async fn hash_if_given(password: Option<String>) -> ApiResult<Option<String>> {
    match password {
        None => Ok(None),
        Some(password) => {
            check_password(&password)?;
            Ok(Some(hash_password(password).await?))
        }
    }
}

#[utoipa::path(post, path = "/v1/members", tag = "members", request_body = MemberIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: it replays the first response")),
    responses((status = 201, body = MemberOut), (status = 400, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authed,
    ValidJson(input, _): ValidJson<MemberIn>,
) -> ApiResult<(StatusCode, Json<MemberOut>)> {
    let (draft, password, test_clock_id) = input.into_draft();
    let clock = match test_clock_id.as_deref() {
        None => None,
        Some(raw) => Some(
            super::test_clocks::find_clock(&state, &auth.scope, raw)
                .await
                .map_err(|err| {
                    if err.status == StatusCode::NOT_FOUND {
                        ApiError::invalid(
                            "testClockId",
                            "unknown_test_clock",
                            format!("no such test clock in this environment: {raw}"),
                        )
                    } else {
                        err.with_param("testClockId")
                    }
                })?,
        ),
    };
    let now = clock
        .as_ref()
        .map_or_else(|| state.now(), |c| c.frozen_time);
    // Everything cheap is validated before the deliberately slow password hash.
    let (mut member, event) = Member::create(draft, now)?;
    member.test_clock_id = clock.map(|c| c.id);
    member.password_hash = hash_if_given(password).await?;
    state
        .store()
        .insert_member(&auth.scope, &member, &event)
        .await?;
    let view = MemberView {
        member,
        connections: Vec::new(),
    };
    Ok((StatusCode::CREATED, Json(view.into())))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct MemberListQuery {
    /// Only the member with this email.
    #[param(format = Email, max_length = 254)]
    email: Option<String>,
    /// Members holding this plan.
    #[param(pattern = "^pln_[A-Za-z0-9_]{1,64}$")]
    plan_id: Option<String>,
    /// Members with a plan connection in this status, such as ACTIVE or PAST_DUE, in any case.
    #[param(
        pattern = "^([Aa][Cc][Tt][Ii][Vv][Ee]|[Tt][Rr][Ii][Aa][Ll][Ii][Nn][Gg]|[Pp][Aa][Ss][Tt]_[Dd][Uu][Ee]|[Rr][Ee][Qq][Uu][Ii][Rr][Ee][Ss]_[Pp][Aa][Yy][Mm][Ee][Nn][Tt]|[Uu][Nn][Pp][Aa][Ii][Dd]|[Pp][Aa][Uu][Ss][Ee][Dd]|[Cc][Aa][Nn][Cc][Ee][Ll][Ee][Dd]|[Ee][Xx][Pp][Ii][Rr][Ee][Dd]|[Ii][Nn][Cc][Oo][Mm][Pp][Ll][Ee][Tt][Ee])?$"
    )]
    status: Option<String>,
    /// Members changed at or after this time (RFC 3339 or YYYY-MM-DD).
    #[param(value_type = Option<crate::api::schemas::TimeText>)]
    updated_since: Option<String>,
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

#[utoipa::path(get, path = "/v1/members", tag = "members", params(MemberListQuery),
    responses((status = 200, body = MemberList), (status = 400, body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authed,
    ValidQuery(q, _): ValidQuery<MemberListQuery>,
) -> ApiResult<Json<ListOut<MemberOut>>> {
    let email = match q.email.as_deref().filter(|e| !e.is_empty()) {
        Some(raw) => Some(Email::parse(raw).map_err(ApiError::from)?),
        None => None,
    };
    let filter = MemberFilter {
        email,
        plan_id: query_param("planId", q.plan_id.as_deref(), "a plan id", PlanId::parse)?,
        status: query_param(
            "status",
            q.status.as_deref(),
            "a plan connection status such as ACTIVE",
            ConnectionStatus::parse,
        )?,
        updated_since: parse_timestamp("updatedSince", q.updated_since.as_deref())?,
        search: None,
    };
    let page = page_request(q.limit.as_deref(), q.after.as_deref(), q.order.as_deref())?;
    let page = state
        .store()
        .list_members(&auth.scope, &filter, page)
        .await?;
    Ok(Json(ListOut::from_page(page, MemberOut::from)))
}

/// By id (`mem_…`) or by email address.
#[utoipa::path(get, path = "/v1/members/{id}", tag = "members",
    params(("id" = String, Path, description = "A member id (`mem_…`) or an email address")),
    responses((status = 200, body = MemberOut), (status = 404, body = ErrorEnvelope)))]
pub async fn retrieve(
    State(state): State<AppState>,
    auth: Authed,
    Path(key): Path<String>,
) -> ApiResult<Json<MemberOut>> {
    let store = state.store();
    let found = if let Some(id) = MemberId::parse(&key) {
        store.get_member(&auth.scope, &id).await?
    } else if let Ok(email) = Email::parse(&key) {
        store.get_member_by_email(&auth.scope, &email).await?
    } else {
        None
    };
    let view = found.ok_or_else(|| ApiError::not_found("member", &key))?;
    Ok(Json(view.into()))
}

#[utoipa::path(patch, path = "/v1/members/{id}", tag = "members", params(("id" = String, Path)),
    request_body = MemberPatchIn,
    responses((status = 200, body = MemberOut), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): ValidJson<MemberPatchIn>,
) -> ApiResult<Json<MemberOut>> {
    let id = member_id(&id)?;
    let password_hash = hash_if_given(input.password).await?;
    let patch = MemberPatch {
        email: input.email,
        password_hash,
        verified: input.verified,
        custom_fields: input.custom_fields,
        meta_data: input.meta_data,
        json: input.json,
        login_redirect: input.login_redirect,
        profile_image: input.profile_image,
        stripe_customer_id: input.stripe_customer_id,
        external_id: input.external_id,
        permissions: input.permissions,
    };
    let now = state.now();
    let view = state
        .store()
        .update_member(&auth.scope, &id, |member| member.patch(patch, now))
        .await?;
    Ok(Json(view.into()))
}

/// Deletes the member and their plan connections, and records `member.deleted`.
#[utoipa::path(delete, path = "/v1/members/{id}", tag = "members", params(("id" = String, Path)),
    responses((status = 200, body = DeletedOut), (status = 404, body = ErrorEnvelope)))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<DeletedOut>> {
    let id = member_id(&id)?;
    state
        .store()
        .delete_member(&auth.scope, &id, state.now())
        .await?;
    Ok(Json(DeletedOut {
        id: id.to_string(),
        deleted: true,
    }))
}
