//! Finds the app and environment a secret key belongs to. Keys arrive as
//! `Authorization: Bearer <key>`, `X-API-KEY: <key>` (Memberstack) or `X-API-Key: <key>`
//! (Appstle; header names are case-insensitive, so it is the same header).

use axum::extract::Request;
use axum::http::HeaderMap;

use crate::error::ApiError;
use crate::extract::Authed;
use crate::ops::hash_secret;
use crate::state::AppState;

/// The secret a request presents, if any.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(value) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) {
        return Some(value.trim());
    }
    let auth = headers.get("authorization")?.to_str().ok()?;
    let (scheme, key) = auth.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| key.trim())
}

/// Resolves the key to its tenant and puts it in the request's extensions.
pub(crate) async fn authenticate(
    state: &AppState,
    mut request: Request,
) -> Result<Request, ApiError> {
    let Some(secret) = presented_key(request.headers()).filter(|s| !s.is_empty()) else {
        return Err(ApiError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            "authentication_error",
            "missing_api_key",
            "pass your secret key as Authorization: Bearer sk_… or X-API-KEY: sk_…",
        ));
    };
    let owner = state
        .store()
        .key_owner(&hash_secret(secret))
        .await?
        .ok_or_else(|| {
            ApiError::unauthenticated("the API key is not valid: it is unknown or revoked")
        })?;
    request.extensions_mut().insert(Authed {
        limit_key: owner.key_id.to_string(),
        key_id: owner.key_id,
        scope: owner.scope,
        shop_domain: owner.shop_domain,
        api_access: owner.api_access,
    });
    Ok(request)
}
