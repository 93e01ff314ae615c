//! CORS for the member-facing API, by tower-http's layer: every call of the SDK is
//! preflighted, and the answer must echo the page's exact origin with credentials allowed.
//!
//! A preflight carries no publishable key (only the names of the headers to come), so it is
//! answered for an origin that any environment allows; the request that follows is answered
//! only for an origin its own environment allows (and refused by `Client` otherwise). A
//! response for an origin that is not allowed carries no CORS header at all: tower-http adds
//! the ones that do not depend on the origin to every preflight, so those are taken off again.

use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::Response;
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::state::AppState;

/// How long a browser may keep a preflight's answer.
pub const MAX_AGE: Duration = Duration::from_secs(600);

const SDK_HEADERS: [&str; 7] = [
    "authorization",
    "content-type",
    "x-api-key",
    "x-app-id",
    "x-user-agent",
    "x-session-id",
    "referring-path",
];

async fn allowed(state: AppState, origin: HeaderValue, key: Option<String>) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let store = state.store();
    if let Some(key) = key {
        if let Ok(Some(env)) = store.client_env(&key).await {
            return env.settings.allows_origin(env.scope.env, origin);
        }
    }
    match store.origin_allowed_anywhere(origin).await {
        Ok(allowed) => allowed,
        Err(err) => {
            tracing::warn!(error = %err, "could not read the allowed origins");
            false
        }
    }
}

fn strip_unless_allowed(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN) {
        for name in [
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            header::ACCESS_CONTROL_ALLOW_METHODS,
            header::ACCESS_CONTROL_MAX_AGE,
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
        ] {
            headers.remove(name);
        }
    }
    response
}

pub fn layer(routes: Router<AppState>, state: &AppState) -> Router<AppState> {
    let state = state.clone();
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::async_predicate(move |origin, parts| {
            let key = parts
                .headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().to_owned())
                .filter(|v| v.starts_with("pk_"));
            let state = state.clone();
            async move { allowed(state, origin, key).await }
        }))
        .allow_credentials(true)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers(SDK_HEADERS.map(HeaderName::from_static))
        .expose_headers([HeaderName::from_static("retry-after")])
        .max_age(MAX_AGE);
    // A plain map of the response: axum's `map_response` would box a future per request.
    routes
        .layer(cors)
        .layer(tower::util::MapResponseLayer::new(strip_unless_allowed))
}
