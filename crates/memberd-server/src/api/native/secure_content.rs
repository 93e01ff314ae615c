//! `/v1/secure-content`: content memberd keeps and gives members through the member-facing
//! API's `POST /secure-content` only when their plans or permissions unlock it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use memberd_core::account::{parse_content_id, ContentDraft};
use memberd_core::SecureContent;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::members::DeletedOut;
use crate::api::schemas::Permission;
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{Authed, ValidJson};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContentIn {
    /// Letters, digits, `-`, `_` and `.`; up to 128.
    #[schema(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub id: String,
    /// HTML (the default) or TEXT.
    #[serde(rename = "type")]
    #[schema(value_type = Option<String>, pattern = "^(HTML|TEXT)$")]
    pub content_type: Option<String>,
    pub content: String,
    /// Members holding any of these plans actively may see it.
    #[serde(default)]
    pub plan_ids: Vec<String>,
    /// Members with any of these permissions may see it. With no plans and no permissions,
    /// any logged-in member may.
    #[serde(default)]
    #[schema(value_type = Vec<Permission>, max_items = 100)]
    pub permissions: Vec<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContentPatchIn {
    #[serde(rename = "type")]
    #[schema(value_type = Option<String>, pattern = "^(HTML|TEXT)$")]
    pub content_type: Option<String>,
    pub content: Option<String>,
    pub plan_ids: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<Permission>>, max_items = 100)]
    pub permissions: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContentOut {
    pub id: String,
    #[serde(rename = "type")]
    pub content_type: &'static str,
    pub content: String,
    pub plan_ids: Vec<String>,
    pub permissions: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct ContentList {
    /// Oldest first, at most 1,000.
    pub data: Vec<ContentOut>,
}

fn render(c: SecureContent) -> ContentOut {
    ContentOut {
        id: c.id,
        content_type: c.content_type.as_str(),
        content: c.content,
        plan_ids: c.plan_ids.iter().map(ToString::to_string).collect(),
        permissions: c.permissions,
        created_at: c.created_at.to_rfc3339(),
        updated_at: c.updated_at.to_rfc3339(),
    }
}

fn known_id(raw: &str) -> ApiResult<String> {
    parse_content_id(raw).map_err(|_| ApiError::not_found("secure content", raw))
}

/// Keeps content for members.
#[utoipa::path(post, path = "/v1/secure-content", tag = "secure content", request_body = ContentIn,
    responses((status = 201, body = ContentOut), (status = 400, body = ErrorEnvelope),
        (status = 409, body = ErrorEnvelope)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authed,
    ValidJson(body, _): ValidJson<ContentIn>,
) -> ApiResult<(StatusCode, Json<ContentOut>)> {
    let draft = ContentDraft {
        content_type: body.content_type,
        content: Some(body.content),
        plan_ids: Some(body.plan_ids),
        permissions: Some(body.permissions),
    };
    let content = SecureContent::create(&body.id, draft, state.now())?;
    state
        .store()
        .insert_secure_content(&auth.scope, &content)
        .await
        .map_err(|e| match e {
            memberd_store::StoreError::Duplicate { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "already_exists",
                format!(
                    "this environment has secure content {:?} already",
                    content.id
                ),
            )
            .with_param("id"),
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, Json(render(content))))
}

/// The environment's content.
#[utoipa::path(get, path = "/v1/secure-content", tag = "secure content",
    responses((status = 200, body = ContentList)))]
pub async fn list(State(state): State<AppState>, auth: Authed) -> ApiResult<Json<ContentList>> {
    let all = state
        .store()
        .list_secure_content(&auth.scope, 1_000)
        .await?;
    Ok(Json(ContentList {
        data: all.into_iter().map(render).collect(),
    }))
}

#[utoipa::path(get, path = "/v1/secure-content/{id}", tag = "secure content",
    params(("id" = String, Path, description = "The content's id.")),
    responses((status = 200, body = ContentOut), (status = 404, body = ErrorEnvelope)))]
pub async fn retrieve(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<ContentOut>> {
    let id = known_id(&id)?;
    let content = state
        .store()
        .get_secure_content(&auth.scope, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("secure content", &id))?;
    Ok(Json(render(content)))
}

/// Changes content; fields left out stay as they are.
#[utoipa::path(patch, path = "/v1/secure-content/{id}", tag = "secure content",
    params(("id" = String, Path, description = "The content's id.")), request_body = ContentPatchIn,
    responses((status = 200, body = ContentOut), (status = 400, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(body, _): ValidJson<ContentPatchIn>,
) -> ApiResult<Json<ContentOut>> {
    let id = known_id(&id)?;
    let draft = ContentDraft {
        content_type: body.content_type,
        content: body.content,
        plan_ids: body.plan_ids,
        permissions: body.permissions,
    };
    let content = state
        .store()
        .update_secure_content(&auth.scope, &id, draft, state.now())
        .await?;
    Ok(Json(render(content)))
}

#[utoipa::path(delete, path = "/v1/secure-content/{id}", tag = "secure content",
    params(("id" = String, Path, description = "The content's id.")),
    responses((status = 200, body = DeletedOut), (status = 404, body = ErrorEnvelope)))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<DeletedOut>> {
    let id = known_id(&id)?;
    if !state
        .store()
        .delete_secure_content(&auth.scope, &id)
        .await?
    {
        return Err(ApiError::not_found("secure content", &id));
    }
    Ok(Json(DeletedOut { id, deleted: true }))
}
