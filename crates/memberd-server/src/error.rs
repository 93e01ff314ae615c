//! The one error envelope of the native API: `{"error": {"type", "code", "message", "param"}}`.
//!
//! Every failure a handler or middleware can meet becomes an `ApiError`. Internal errors are
//! logged with the request's span and reach the client as a bare 500: nothing internal (SQL,
//! paths) leaks.

use std::borrow::Cow;

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use memberd_core::DomainError;
use memberd_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: &'static str,
    pub code: Cow<'static, str>,
    pub message: String,
    pub param: Option<String>,
    /// Seconds to wait before retrying, for 429 and 503.
    pub retry_after: Option<u64>,
}

/// The error envelope, as documented in the OpenAPI document.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The family of the error: `invalid_request_error`, `authentication_error`,
    /// `permission_error`, `not_found`, `conflict`, `idempotency_error`, `rate_limit_error`,
    /// `api_error`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// A stable, machine-readable code such as `invalid_email` or `member_not_found`.
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// The request field at fault (`metaData.plan`, `prices[1].amount`), when one is.
    pub param: Option<String>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        kind: &'static str,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ApiError {
            status,
            kind,
            code: code.into(),
            message: message.into(),
            param: None,
            retry_after: None,
        }
    }

    pub fn invalid(
        param: impl Into<String>,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            code,
            message,
        )
        .with_param(param)
    }

    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{}_not_found", what.replace(' ', "_")),
            format!("no such {what}: {id}"),
        )
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid_api_key",
            message,
        )
    }

    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "internal_error",
            "something went wrong on our side; the request was not applied",
        )
    }

    pub fn with_param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Adds the request field a not-found or conflict refers to, unless one is already named.
    pub fn or_param(mut self, param: &str) -> Self {
        if self.param.is_none() {
            self.param = Some(param.to_owned());
        }
        self
    }

    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            error: ErrorBody {
                kind: self.kind,
                code: self.code.to_string(),
                message: self.message.clone(),
                param: self.param.clone(),
            },
        }
    }
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::Invalid {
                field,
                code,
                message,
            } => ApiError::invalid(field.into_owned(), code, message),
            DomainError::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", code, message)
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { what, id } => ApiError::not_found(what, id),
            StoreError::Duplicate { field } => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "already_exists",
                format!("{field} is already taken by another member of this environment"),
            )
            .with_param(field),
            StoreError::Domain(e) => e.into(),
            other => {
                tracing::error!(error = %other, request_id = %crate::current_request_id(), "store failure");
                ApiError::internal()
            }
        }
    }
}

/// How a face writes its errors on the wire. The middleware and extractors shared by every
/// face are generic over it, so a Memberstack client sees Memberstack's envelope.
pub trait ErrorFormat: Send + Sync + 'static {
    fn body(err: &ApiError) -> serde_json::Value;

    fn render(err: ApiError) -> Response {
        let mut response = (err.status, axum::Json(Self::body(&err))).into_response();
        if let Some(secs) = err.retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from(secs));
        }
        response
    }
}

/// The native envelope, `{"error": {"type", "code", "message", "param"}}`.
pub struct NativeErrors;

impl ErrorFormat for NativeErrors {
    fn body(err: &ApiError) -> serde_json::Value {
        serde_json::to_value(err.envelope()).unwrap_or_default()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        NativeErrors::render(self)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
