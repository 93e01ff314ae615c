//! The app and its plans, and the free plans a member adds and removes themselves.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use memberd_core::{PlanId, PlanStatus, PlanType};
use memberd_store::{Order, PageRequest, PlanFilter};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::render::{self, ClientApp, ClientMember, ClientPlan, Data};
use super::{Client, ClientError, ClientErrorEnvelope, ClientJson, ClientResult, Member, TAG};
use crate::state::AppState;

/// The most plans `GET /app` lists.
const PLANS_MAX: u32 = 100;

/// `GET /app`: the app, with its active plans.
#[utoipa::path(get, path = "/app", tag = TAG,
    params(("includeSSOText" = Option<String>, Query, description = "Accepted and ignored: memberd has no SSO text.")),
    responses((status = 200, body = Data<ClientApp>), (status = 401, body = ClientErrorEnvelope),
        (status = 403, body = ClientErrorEnvelope)))]
pub async fn get_app(
    State(state): State<AppState>,
    Client(client): Client,
) -> ClientResult<Json<Data<ClientApp>>> {
    Ok(Json(Data {
        data: app_of(&state, client).await?,
    }))
}

/// The app as the SDK reads it, with its active plans.
pub async fn app_of(
    state: &AppState,
    client: std::sync::Arc<memberd_store::ClientEnv>,
) -> ClientResult<ClientApp> {
    let plans = state
        .store()
        .list_plans(
            &client.scope,
            &PlanFilter {
                status: Some(PlanStatus::Active),
            },
            PageRequest {
                after: None,
                limit: PLANS_MAX,
                order: Order::Asc,
            },
        )
        .await?;
    let is_paid = plans.items.iter().any(|p| p.plan_type == PlanType::Paid);
    let plans: Vec<ClientPlan> = plans.items.iter().map(render::plan).collect();
    Ok(ClientApp {
        id: client.scope.app_id.to_string(),
        name: client.app_name.clone(),
        mode: client.scope.env.as_str(),
        plans,
        content_groups: Vec::new(),
        custom_fields: Vec::new(),
        allow_member_self_delete: true,
        captcha_required: false,
        auth_providers: Vec::new(),
        additional_auth_methods: json!({ "passwordless": { "enabled": false, "isDefault": false } }),
        sso_signup_button_url: None,
        is_paid,
        branding: json!({ "logo": null, "colors": { "lightMode": {} } }),
        signup_enabled: client.settings.signup_enabled,
    })
}

fn plan_id(raw: &str, field: &str) -> ClientResult<PlanId> {
    PlanId::parse(raw).ok_or_else(|| {
        ClientError::new(
            StatusCode::NOT_FOUND,
            "plan-not-found",
            format!("{field}: no such plan: {raw:?}"),
        )
    })
}

/// `GET /app/plans/{planId}`: one active plan.
#[utoipa::path(get, path = "/app/plans/{planId}", tag = TAG,
    params(("planId" = String, Path, description = "The plan's id (pln_…).")),
    responses((status = 200, body = Data<ClientPlan>), (status = 401, body = ClientErrorEnvelope),
        (status = 403, body = ClientErrorEnvelope), (status = 404, body = ClientErrorEnvelope)))]
pub async fn get_plan(
    State(state): State<AppState>,
    Client(client): Client,
    Path(id): Path<String>,
) -> ClientResult<Json<Data<ClientPlan>>> {
    let id = plan_id(&id, "planId")?;
    let plan = state
        .store()
        .get_plan(&client.scope, &id)
        .await?
        .filter(|p| p.status == PlanStatus::Active)
        .ok_or_else(|| {
            ClientError::new(
                StatusCode::NOT_FOUND,
                "plan-not-found",
                format!("no such plan: {id}"),
            )
        })?;
    Ok(Json(Data {
        data: render::plan(&plan),
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientPlanIn {
    plan_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct ClientWithMember {
    member: ClientMember,
}

/// `POST /member/plans/add` `{planId}`: the member takes a free plan.
#[utoipa::path(post, path = "/member/plans/add", tag = TAG, request_body = ClientPlanIn,
    responses((status = 200, body = Data<ClientWithMember>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope),
        (status = 404, body = ClientErrorEnvelope), (status = 409, body = ClientErrorEnvelope)))]
pub async fn add_plan(
    State(state): State<AppState>,
    member: Member,
    ClientJson(body): ClientJson<ClientPlanIn>,
) -> ClientResult<Json<Data<ClientWithMember>>> {
    let id = plan_id(&body.plan_id, "planId")?;
    state
        .store()
        .connect_free_plan(&member.client.scope, &member.member_id, &id, state.now())
        .await
        .map_err(not_found_plan)?;
    state.wake_workers();
    Ok(Json(Data {
        data: ClientWithMember {
            member: render::member(member.view(&state).await?),
        },
    }))
}

/// `POST /member/plans/remove` `{planId}`: the member leaves a free plan.
#[utoipa::path(post, path = "/member/plans/remove", tag = TAG, request_body = ClientPlanIn,
    responses((status = 200, body = Data<ClientWithMember>), (status = 400, body = ClientErrorEnvelope),
        (status = 401, body = ClientErrorEnvelope), (status = 403, body = ClientErrorEnvelope),
        (status = 404, body = ClientErrorEnvelope), (status = 409, body = ClientErrorEnvelope)))]
pub async fn remove_plan(
    State(state): State<AppState>,
    member: Member,
    ClientJson(body): ClientJson<ClientPlanIn>,
) -> ClientResult<Json<Data<ClientWithMember>>> {
    let id = plan_id(&body.plan_id, "planId")?;
    state
        .store()
        .remove_free_plan(&member.client.scope, &member.member_id, &id, state.now())
        .await
        .map_err(not_found_plan)?;
    state.wake_workers();
    Ok(Json(Data {
        data: ClientWithMember {
            member: render::member(member.view(&state).await?),
        },
    }))
}

fn not_found_plan(err: memberd_store::StoreError) -> ClientError {
    match err {
        memberd_store::StoreError::NotFound { what: "plan", id } => ClientError::new(
            StatusCode::NOT_FOUND,
            "plan-not-found",
            format!("no such plan: {id}"),
        ),
        memberd_store::StoreError::NotFound {
            what: "plan connection",
            ..
        } => ClientError::new(
            StatusCode::NOT_FOUND,
            "plan-not-found",
            "the member does not hold that plan",
        ),
        other => other.into(),
    }
}
