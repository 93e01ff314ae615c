//! Appstle Memberships' external API v2 at `/api/external/v2/`: a membership contract is a plan
//! connection, a customer id is a member's `externalId`, a store is an app with a shop domain.
//! Every call names its store with `shop=`; the merchant key must belong to it, and a store
//! without direct API access also needs a partner key (`X-App-Key`).

pub mod contracts;

use axum::extract::Request;
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
use crate::extract::Authed;
use crate::middleware::Face;
use crate::state::AppState;

/// Appstle's errors, in the problem-details shape of its Spring services:
/// `{"title", "status", "detail", "message": "error.<code>", "field"}`.
pub struct AppstleErrors;

impl ErrorFormat for AppstleErrors {
    fn body(err: &ApiError) -> serde_json::Value {
        json!({
            "title": err.status.canonical_reason().unwrap_or("Error"),
            "status": err.status.as_u16(),
            "detail": err.message,
            "message": format!("error.{}", err.code),
            "field": err.param,
        })
    }
}

/// Appstle's error body, for the OpenAPI document.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AppstleProblem {
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// `error.<code>`
    pub message: String,
    pub field: Option<String>,
}

#[derive(Debug)]
pub struct AppstleError(pub ApiError);

pub type AppstleResult<T> = Result<T, AppstleError>;

impl From<ApiError> for AppstleError {
    fn from(err: ApiError) -> Self {
        AppstleError(err)
    }
}

impl From<StoreError> for AppstleError {
    fn from(err: StoreError) -> Self {
        AppstleError(err.into())
    }
}

impl From<DomainError> for AppstleError {
    fn from(err: DomainError) -> Self {
        AppstleError(err.into())
    }
}

impl IntoResponse for AppstleError {
    fn into_response(self) -> Response {
        AppstleErrors::render(self.0)
    }
}

fn forbidden(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "permission_error", code, message)
}

/// The `shop` of the query string, lowercased.
fn shop_of(request: &Request) -> Option<String> {
    let query = request.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "shop")
        .map(|(_, v)| v.trim().to_ascii_lowercase())
        .filter(|v| !v.is_empty())
}

/// A request names its store with `shop=`; the key must belong to it.
impl Face for AppstleErrors {
    fn admit(
        _state: &AppState,
        request: &mut Request,
    ) -> impl std::future::Future<Output = Result<(), ApiError>> + Send {
        std::future::ready(check_store(request))
    }
}

/// Checks `shop` against the key's store, then counts the rate limit against the store rather
/// than the key.
fn check_store(request: &mut Request) -> Result<(), ApiError> {
    let shop = shop_of(request).ok_or_else(|| {
        ApiError::invalid(
            "shop",
            "shop_required",
            "shop is required, as in ?shop=your-store.myshopify.com",
        )
    })?;
    let authed = request
        .extensions_mut()
        .get_mut::<Authed>()
        .ok_or_else(ApiError::internal)?;
    match &authed.shop_domain {
        None => {
            return Err(forbidden(
                "not_a_store_key",
                "this key does not belong to a store",
            ))
        }
        Some(domain) if *domain != shop => {
            return Err(forbidden(
                "wrong_shop",
                format!("this key does not belong to {shop}"),
            ))
        }
        Some(_) => {}
    }
    // The partner key and the store's API access were checked with the key (`auth`).
    authed.limit_key = format!("store:{}", authed.scope.app_id);
    Ok(())
}

/// The external API, with its part of the OpenAPI document.
pub fn router(state: &AppState) -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (routes, doc) = OpenApiRouter::new()
        .routes(routes!(contracts::list, contracts::create))
        .routes(routes!(contracts::retrieve))
        .routes(routes!(contracts::cancel))
        .routes(routes!(contracts::pause))
        .routes(routes!(contracts::resume))
        .routes(routes!(contracts::status))
        .routes(routes!(contracts::plans))
        .split_for_parts();
    let routes = routes
        .method_not_allowed_fallback(|| async {
            AppstleError(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                "method_not_allowed",
                "this route does not take that method",
            ))
        })
        .fallback(|| async {
            AppstleError(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "route_not_found",
                "no such route in the external API",
            ))
        });
    let routes = with_key_layers::<AppstleErrors>(routes, state);
    (
        Router::new().nest("/api/external/v2", routes),
        utoipa::openapi::OpenApi::default().nest("/api/external/v2", doc),
    )
}
