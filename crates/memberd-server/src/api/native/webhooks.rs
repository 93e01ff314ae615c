//! `/v1/webhook-endpoints`: where events are sent, their secrets, their attempt log, and
//! redelivery. `/v1/event-types`: what can be sent.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use memberd_core::webhook::{catalog, Endpoint, EndpointDraft, EndpointPatch, Flavour};
use memberd_core::{EndpointId, EventId};
use memberd_store::{AttemptFilter, AttemptRecord};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::page::{list_schema, page_request, ListOut};
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{double_option, parse_timestamp, Authed, ValidJson, ValidQuery};
use crate::state::AppState;
use crate::workers::webhooks::signing::new_secret;
use crate::workers::webhooks::target;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointIn {
    /// Where to POST events: an `https://` (or `http://`) URL.
    pub url: String,
    /// The types to send, in the flavour's vocabulary; empty or absent means every type.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// `native` (the default), `memberstack` or `appstle`.
    pub flavour: Option<Flavour>,
    pub enabled: Option<bool>,
    pub description: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointPatchIn {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub flavour: Option<Flavour>,
    /// Turning an endpoint back on resumes deliveries where they stopped.
    pub enabled: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointOut {
    pub id: String,
    pub object: &'static str,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub flavour: Flavour,
    pub enabled: bool,
    /// `gone` (the receiver answered 410) or `failing` (5 days without a success).
    pub disabled_reason: Option<String>,
    pub failing_since: Option<String>,
    pub last_success_at: Option<String>,
    /// Only in the answer to create: `whsec_…`. Later, `GET …/secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

list_schema!(EndpointList, EndpointOut);

impl From<Endpoint> for EndpointOut {
    fn from(e: Endpoint) -> Self {
        EndpointOut {
            id: e.id.to_string(),
            object: "webhook_endpoint",
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            flavour: e.flavour,
            enabled: e.enabled,
            disabled_reason: e.disabled_reason,
            failing_since: e.failing_since.map(|t| t.to_rfc3339()),
            last_success_at: e.last_success_at.map(|t| t.to_rfc3339()),
            secret: None,
            created_at: e.created_at.to_rfc3339(),
            updated_at: e.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct SecretOut {
    /// `whsec_<base64>`: the key of the HMAC-SHA256 signatures.
    pub secret: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptOut {
    pub id: String,
    pub object: &'static str,
    pub delivery_id: String,
    pub endpoint_id: String,
    pub event_id: String,
    /// 1 for the first attempt of a delivery.
    pub attempt: u32,
    /// `automatic` or `manual` (a redelivery).
    pub trigger: String,
    pub started_at: String,
    pub duration_ms: i64,
    /// The receiver's status; null when no answer came.
    pub status_code: Option<u16>,
    /// The first 2 KiB of the receiver's answer.
    pub response_body: Option<String>,
    /// Why no answer came: a timeout, a refused connection, a refused address.
    pub error: Option<String>,
}

list_schema!(AttemptList, AttemptOut);

impl From<AttemptRecord> for AttemptOut {
    fn from(a: AttemptRecord) -> Self {
        AttemptOut {
            id: a.id.to_string(),
            object: "webhook_attempt",
            delivery_id: a.delivery_id.to_string(),
            endpoint_id: a.endpoint_id.to_string(),
            event_id: a.event_id.to_string(),
            attempt: a.attempt,
            trigger: a.trigger,
            started_at: a.started_at.to_rfc3339(),
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            response_body: a.response_body,
            error: a.error,
        }
    }
}

fn endpoint_id(raw: &str) -> ApiResult<EndpointId> {
    EndpointId::parse(raw).ok_or_else(|| ApiError::not_found("webhook endpoint", raw))
}

#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks", request_body = EndpointIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: it replays the first response")),
    responses((status = 201, body = EndpointOut), (status = 400, body = ErrorEnvelope)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authed,
    ValidJson(input, _): ValidJson<EndpointIn>,
) -> ApiResult<(StatusCode, Json<EndpointOut>)> {
    check_target(&state, &input.url)?;
    let draft = EndpointDraft {
        url: input.url,
        description: input.description,
        event_types: input.event_types,
        flavour: input.flavour,
        enabled: input.enabled,
    };
    let endpoint = Endpoint::create(draft, new_secret(), state.now())?;
    state
        .store()
        .insert_endpoint(&auth.scope, &endpoint)
        .await?;
    let secret = endpoint.secret.clone();
    let mut out = EndpointOut::from(endpoint);
    out.secret = Some(secret);
    Ok((StatusCode::CREATED, Json(out)))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
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

#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks", params(PageQuery),
    responses((status = 200, body = EndpointList), (status = 400, body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authed,
    ValidQuery(q, _): ValidQuery<PageQuery>,
) -> ApiResult<Json<ListOut<EndpointOut>>> {
    let page = page_request(q.limit.as_deref(), q.after.as_deref(), q.order.as_deref())?;
    let page = state.store().list_endpoints(&auth.scope, page).await?;
    Ok(Json(ListOut::from_page(page, EndpointOut::from)))
}

/// A URL that names an internal address is refused when it is registered, not only when
/// something is sent to it; a name is checked after resolution, at every delivery.
pub(crate) fn check_target(state: &AppState, raw: &str) -> ApiResult<()> {
    let Ok(url) = reqwest::Url::parse(raw.trim()) else {
        // The core names what is wrong with it.
        return Ok(());
    };
    let allow_private = state.config().webhooks.allow_private_targets;
    target::check_literal(&url, allow_private)
        .map_err(|message| ApiError::invalid("url", "internal_target", message))
}

async fn load(state: &AppState, auth: &Authed, id: &str) -> ApiResult<Endpoint> {
    let id = endpoint_id(id)?;
    state
        .store()
        .get_endpoint(&auth.scope, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("webhook endpoint", &id))
}

#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = EndpointOut), (status = 404, body = ErrorEnvelope)))]
pub async fn retrieve(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<EndpointOut>> {
    Ok(Json(load(&state, &auth, &id).await?.into()))
}

#[utoipa::path(patch, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", params(("id" = String, Path)),
    request_body = EndpointPatchIn,
    responses((status = 200, body = EndpointOut), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn update(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): ValidJson<EndpointPatchIn>,
) -> ApiResult<Json<EndpointOut>> {
    let id = endpoint_id(&id)?;
    if let Some(url) = &input.url {
        check_target(&state, url)?;
    }
    let patch = EndpointPatch {
        url: input.url,
        description: input.description,
        event_types: input.event_types,
        flavour: input.flavour,
        enabled: input.enabled,
    };
    let now = state.now();
    let endpoint = state
        .store()
        .update_endpoint(&auth.scope, &id, |e| e.patch(patch, now))
        .await?;
    Ok(Json(endpoint.into()))
}

#[derive(Serialize, ToSchema)]
pub struct DeletedOut {
    pub id: String,
    pub deleted: bool,
}

/// Deletes the endpoint with its pending deliveries and attempt log.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = DeletedOut), (status = 404, body = ErrorEnvelope)))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<DeletedOut>> {
    let id = endpoint_id(&id)?;
    state.store().delete_endpoint(&auth.scope, &id).await?;
    Ok(Json(DeletedOut {
        id: id.to_string(),
        deleted: true,
    }))
}

#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/secret", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = SecretOut), (status = 404, body = ErrorEnvelope)))]
pub async fn secret(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<SecretOut>> {
    let endpoint = load(&state, &auth, &id).await?;
    Ok(Json(SecretOut {
        secret: endpoint.secret,
    }))
}

/// A new secret signs from now on; the previous one keeps signing beside it for 24 hours.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/secret/rotate", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, body = SecretOut), (status = 404, body = ErrorEnvelope)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<SecretOut>> {
    let id = endpoint_id(&id)?;
    let now = state.now();
    let fresh = new_secret();
    let endpoint = state
        .store()
        .update_endpoint(&auth.scope, &id, |e| Ok(Some(e.rotate(fresh, now))))
        .await?;
    Ok(Json(SecretOut {
        secret: endpoint.secret,
    }))
}

#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/attempts", tag = "webhooks",
    params(("id" = String, Path), PageQuery),
    responses((status = 200, body = AttemptList), (status = 404, body = ErrorEnvelope)))]
pub async fn endpoint_attempts(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidQuery(q, _): ValidQuery<PageQuery>,
) -> ApiResult<Json<ListOut<AttemptOut>>> {
    let endpoint = load(&state, &auth, &id).await?;
    let page = page_request(q.limit.as_deref(), q.after.as_deref(), q.order.as_deref())?;
    let page = state
        .store()
        .list_attempts(&auth.scope, &AttemptFilter::Endpoint(endpoint.id), page)
        .await?;
    Ok(Json(ListOut::from_page(page, AttemptOut::from)))
}

#[utoipa::path(get, path = "/v1/events/{id}/attempts", tag = "webhooks",
    params(("id" = String, Path), PageQuery),
    responses((status = 200, body = AttemptList), (status = 404, body = ErrorEnvelope)))]
pub async fn event_attempts(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidQuery(q, _): ValidQuery<PageQuery>,
) -> ApiResult<Json<ListOut<AttemptOut>>> {
    let id = EventId::parse(&id).ok_or_else(|| ApiError::not_found("event", &id))?;
    if state.store().get_event(&auth.scope, &id).await?.is_none() {
        return Err(ApiError::not_found("event", &id));
    }
    let page = page_request(q.limit.as_deref(), q.after.as_deref(), q.order.as_deref())?;
    let page = state
        .store()
        .list_attempts(&auth.scope, &AttemptFilter::Event(id), page)
        .await?;
    Ok(Json(ListOut::from_page(page, AttemptOut::from)))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RedeliverIn {
    pub event_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct RedeliveringOut {
    /// How many deliveries were queued again.
    pub redelivering: u64,
}

/// Sends one event to this endpoint again, now.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/redeliver", tag = "webhooks",
    params(("id" = String, Path)), request_body = RedeliverIn,
    responses((status = 202, body = RedeliveringOut), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn redeliver(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): ValidJson<RedeliverIn>,
) -> ApiResult<(StatusCode, Json<RedeliveringOut>)> {
    let id = endpoint_id(&id)?;
    let event = EventId::parse(&input.event_id).ok_or_else(|| {
        ApiError::invalid(
            "eventId",
            "invalid_id",
            format!(
                "eventId must be an event id such as evt_…, got {:?}",
                input.event_id
            ),
        )
    })?;
    state
        .store()
        .redeliver(&auth.scope, &id, &event, state.now())
        .await
        .map_err(|e| {
            let err = ApiError::from(e);
            if err.code == "event_not_found" {
                err.or_param("eventId")
            } else {
                err
            }
        })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RedeliveringOut { redelivering: 1 }),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecoverIn {
    /// Redeliver what failed for good among the deliveries made at or after this time.
    #[schema(value_type = crate::api::schemas::TimeText)]
    pub since: String,
}

/// Sends again everything that failed for good since a time: after an outage of the receiver.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/recover", tag = "webhooks",
    params(("id" = String, Path)), request_body = RecoverIn,
    responses((status = 202, body = RedeliveringOut), (status = 400, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn recover(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): ValidJson<RecoverIn>,
) -> ApiResult<(StatusCode, Json<RedeliveringOut>)> {
    let id = endpoint_id(&id)?;
    let since = parse_timestamp("since", Some(&input.since))?
        .ok_or_else(|| ApiError::invalid("since", "required", "since is required"))?;
    let n = state
        .store()
        .recover_endpoint(&auth.scope, &id, since, state.now())
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RedeliveringOut { redelivering: n }),
    ))
}

#[derive(Serialize, ToSchema)]
pub struct EventTypeOut {
    /// The type, as the flavours below name it.
    pub name: &'static str,
    pub description: &'static str,
    /// The payload flavours that send this type.
    pub flavours: Vec<Flavour>,
    /// A body as an endpoint of the first flavour receives it.
    #[schema(value_type = Object)]
    pub example: Value,
}

#[derive(Serialize, ToSchema)]
pub struct EventTypeList {
    pub data: Vec<EventTypeOut>,
}

/// Every type memberd sends to webhook endpoints, with an example body each.
#[utoipa::path(get, path = "/v1/event-types", tag = "webhooks",
    responses((status = 200, body = EventTypeList)))]
pub async fn event_types(_auth: Authed) -> Json<EventTypeList> {
    Json(EventTypeList {
        data: catalog()
            .into_iter()
            .map(|t| EventTypeOut {
                name: t.name,
                description: t.description,
                flavours: t.flavours,
                example: t.example,
            })
            .collect(),
    })
}
