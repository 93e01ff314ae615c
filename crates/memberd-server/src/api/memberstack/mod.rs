//! The Memberstack faces: the 2.0 Admin API at `/memberstack/` (what the official
//! `@memberstack/admin` SDK speaks) and the 1.0 REST API at `/memberstack/v1/`. Thin adapters:
//! every rule is the domain core's; these files only translate the wire formats.

pub mod members;
pub mod v1;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use memberd_core::DomainError;
use memberd_store::StoreError;
use serde_json::json;

use crate::api::with_key_layers;
use crate::error::{ApiError, ErrorFormat};
use crate::state::AppState;

/// Memberstack's envelope, `{"error": {"code", "message"}}`: the SDK rejects with exactly
/// that object.
pub struct MemberstackErrors;

impl ErrorFormat for MemberstackErrors {
    fn body(err: &ApiError) -> serde_json::Value {
        json!({ "error": { "code": err.code, "message": err.message } })
    }
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

/// Both Memberstack faces, behind the key check, in Memberstack's error envelope.
pub fn router(state: &AppState) -> Router<AppState> {
    let routes = Router::new()
        .route("/members", get(members::list).post(members::create))
        .route(
            "/members/{id}",
            get(members::retrieve)
                .patch(members::update)
                .delete(members::delete),
        )
        .route("/members/{id}/add-plan", post(members::add_plan))
        .route("/members/{id}/remove-plan", post(members::remove_plan))
        .route("/v1/members", get(v1::list).post(v1::create))
        .route(
            "/v1/members/{id}",
            get(v1::retrieve).post(v1::update).delete(v1::delete),
        )
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
    Router::new().nest(
        "/memberstack",
        with_key_layers::<MemberstackErrors>(routes, state),
    )
}
