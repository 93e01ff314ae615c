//! The Memberstack faces: the 2.0 Admin API at `/memberstack/` (what the official
//! `@memberstack/admin` SDK speaks) and the 1.0 REST API at `/memberstack/v1/`. Thin adapters:
//! every rule is the domain core's; these files only translate the wire formats.

pub mod members;
pub mod v1;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use memberd_core::DomainError;
use memberd_store::StoreError;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::with_key_layers;
use crate::error::{ApiError, ErrorFormat};
use crate::state::AppState;

/// Memberstack's envelope, `{"error": {"code", "message"}}`: the SDK rejects with exactly
/// that object.
pub struct MemberstackErrors;

impl crate::middleware::Face for MemberstackErrors {}

impl ErrorFormat for MemberstackErrors {
    fn body(err: &ApiError) -> serde_json::Value {
        json!({ "error": { "code": err.code, "message": err.message } })
    }
}

/// Memberstack's error envelope, for the OpenAPI document.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct MsErrorEnvelope {
    pub error: MsErrorBody,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct MsErrorBody {
    pub code: String,
    pub message: String,
}

/// An error of a Memberstack handler, written in Memberstack's envelope.
#[derive(Debug)]
pub struct MsError(pub ApiError);

pub type MsResult<T> = Result<T, MsError>;

impl From<ApiError> for MsError {
    fn from(err: ApiError) -> Self {
        MsError(err)
    }
}

impl From<StoreError> for MsError {
    fn from(err: StoreError) -> Self {
        MsError(err.into())
    }
}

impl From<DomainError> for MsError {
    fn from(err: DomainError) -> Self {
        MsError(err.into())
    }
}

impl IntoResponse for MsError {
    fn into_response(self) -> Response {
        MemberstackErrors::render(self.0)
    }
}

/// Both Memberstack faces, behind the key check, in Memberstack's error envelope, with their
/// part of the OpenAPI document (made from the same registrations, so the two agree).
pub fn router(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, doc) = OpenApiRouter::new()
        .routes(routes!(members::list, members::create))
        .routes(routes!(members::retrieve, members::update, members::delete))
        .routes(routes!(members::add_plan))
        .routes(routes!(members::verify_token))
        .routes(routes!(members::remove_plan))
        .routes(routes!(v1::list, v1::create))
        .routes(routes!(v1::retrieve, v1::update, v1::delete))
        .split_for_parts();
    let routes = routes
        .method_not_allowed_fallback(|| async {
            MsError(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                "method_not_allowed",
                "this route does not take that method",
            ))
        })
        .fallback(|| async {
            MsError(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "route_not_found",
                "no such route in the Memberstack API",
            ))
        });
    let router = Router::new().nest(
        "/memberstack",
        with_key_layers::<MemberstackErrors>(routes, state),
    );
    (
        router,
        utoipa::openapi::OpenApi::default().nest("/memberstack", doc),
    )
}
