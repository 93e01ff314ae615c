//! The HTTP faces and the routes every deployment needs (health, readiness, the OpenAPI
//! document), assembled into one router.

pub mod appstle;
pub mod client;
pub mod memberstack;
pub mod native;
pub mod openapi;
mod openapi_text;
pub mod schemas;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, NativeErrors};
use crate::middleware::{self, Face};
use crate::state::AppState;

/// The whole API. A face's keyed routes pass the key check, the rate limit, the face's own
/// check and the idempotency replay before the handler (`with_key_layers`).
pub fn router(state: AppState) -> Router {
    let (v1, mut openapi) = native::router().split_for_parts();
    let (memberstack, memberstack_doc) = memberstack::router(&state);
    openapi.merge(memberstack_doc);
    let (appstle, appstle_doc) = appstle::router(&state);
    openapi.merge(appstle_doc);
    let (client, client_doc) = client::router(&state);
    openapi.merge(client_doc);
    let (well_known, well_known_doc) = OpenApiRouter::new().routes(routes!(jwks)).split_for_parts();
    openapi.merge(well_known_doc);
    openapi::complete(&mut openapi);
    openapi_text::apply(&mut openapi);
    let openapi_json = openapi
        .to_pretty_json()
        .expect("the OpenAPI document serialises");
    let v1 =
        with_key_layers::<NativeErrors>(v1.method_not_allowed_fallback(method_not_allowed), &state);
    let metrics = state.config().metrics_on_main_listener;
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route(
            "/openapi.json",
            get(
                move || async move { ([(header::CONTENT_TYPE, "application/json")], openapi_json) },
            ),
        )
        .merge(v1)
        .merge(well_known)
        .merge(client)
        .merge(memberstack)
        .merge(appstle)
        .merge(crate::pages::router());
    let router = match metrics {
        true => router.route("/metrics", get(metrics_text)),
        false => router,
    };
    router.fallback(not_found).with_state(state)
}

/// `/metrics`, in Prometheus's text format; off the main listener unless asked for.
async fn metrics_text(State(state): State<AppState>) -> axum::response::Response {
    crate::telemetry::answer(state.store()).await
}

/// Wraps a face's routes in the key check, the rate limit, the face's own admission check and
/// the idempotency replay, which refuse in the face's own envelope (see `middleware`).
pub fn with_key_layers<F: Face>(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    router.layer(from_fn_with_state(state.clone(), middleware::keyed::<F>))
}

impl Face for NativeErrors {}

async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Ready when the database answers.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.store().ping().await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check: the database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "reason": "the database does not answer" })),
            )
        }
    }
}

/// A JSON Web Key Set, as RFC 7517 writes it.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct JwkSet {
    /// The ES256 keys (`kty: EC`, `crv: P-256`) member tokens are signed with, by `kid`.
    #[schema(value_type = Vec<Object>)]
    pub keys: Vec<serde_json::Value>,
}

/// The public keys member tokens are signed with, for sites that verify them offline (with
/// `jose`'s `createRemoteJWKSet`, say). Needs no key.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "members",
    responses((status = 200, body = JwkSet)))]
async fn jwks(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let keys = state.tokens().jwks().await.map_err(|err| {
        tracing::error!(error = %err, "could not load the token signing keys");
        ApiError::internal()
    })?;
    Ok((
        [
            (header::CACHE_CONTROL, "public, max-age=300"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        Json(keys),
    ))
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "route_not_found",
        "no such route; see /openapi.json for the routes this server has",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "invalid_request_error",
        "method_not_allowed",
        "this route does not take that method; see /openapi.json",
    )
}
