//! Finds the app and environment a secret key belongs to. Keys arrive as
//! `Authorization: Bearer <key>`, `X-API-KEY: <key>` (Memberstack) or `X-API-Key: <key>`
//! (Appstle; header names are case-insensitive, so it is the same header).
//!
//! One rule decides which key a request presents: a header that is empty (or only spaces) is no
//! key; of the two headers, the one that holds a key is used; when both hold one, they must be
//! the same key, and two different keys are a 400 rather than a guess at which one was meant.
//!
//! An app whose direct API access is off (`memberd apps update APP --api-access off`) answers
//! its own keys only beside a valid partner key (`X-App-Key`), on every face.

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};

use crate::error::ApiError;
use crate::extract::Authed;
use crate::ops::hash_secret;
use crate::state::AppState;

/// What one header holds: nothing, a key, or bytes that cannot be one.
fn header_key<'a>(headers: &'a HeaderMap, name: &str) -> Option<Result<&'a str, ()>> {
    let value = headers.get(name)?;
    match value.to_str() {
        Ok(text) => Some(Ok(text.trim())).filter(|k| k != &Ok("")),
        Err(_) => Some(Err(())),
    }
}

fn bearer_key(headers: &HeaderMap) -> Option<Result<&str, ()>> {
    let key = match header_key(headers, "authorization")? {
        Ok(auth) => {
            let (scheme, key) = auth.split_once(' ')?;
            if !scheme.eq_ignore_ascii_case("bearer") {
                return None;
            }
            key.trim()
        }
        Err(()) => return Some(Err(())),
    };
    Some(Ok(key)).filter(|k| k != &Ok(""))
}

/// The secret a request presents, if any, by the module's rule.
pub fn presented_key(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let not_a_key =
        || ApiError::unauthenticated("the API key is not valid: it is unknown or revoked");
    match (header_key(headers, "x-api-key"), bearer_key(headers)) {
        (None, None) => Ok(None),
        (Some(one), None) | (None, Some(one)) => one.map(Some).map_err(|()| not_a_key()),
        (Some(Ok(a)), Some(Ok(b))) if a == b => Ok(Some(a)),
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "X-API-KEY",
            "conflicting_api_keys",
            "X-API-KEY and Authorization: Bearer hold two different keys; send one key, in either header",
        )),
    }
}

/// Resolves the key to its tenant and puts it in the request's extensions.
pub(crate) async fn authenticate(
    state: &AppState,
    mut request: Request,
) -> Result<Request, ApiError> {
    let Some(secret) = presented_key(request.headers())? else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
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
    check_partner_key(state, request.headers(), owner.api_access).await?;
    request.extensions_mut().insert(Authed {
        limit_key: owner.key_id.to_string(),
        key_id: owner.key_id,
        scope: owner.scope,
        shop_domain: owner.shop_domain,
    });
    Ok(request)
}

/// A partner key, when one is sent, must be valid, on every face; an app without direct API
/// access is reached only with one.
async fn check_partner_key(
    state: &AppState,
    headers: &HeaderMap,
    api_access: bool,
) -> Result<(), ApiError> {
    let partner_key = headers
        .get("x-app-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty());
    match partner_key {
        Some(partner) => {
            if state
                .store()
                .partner_key_is_valid(&hash_secret(partner))
                .await?
            {
                Ok(())
            } else {
                Err(ApiError::unauthenticated(
                    "the partner key (X-App-Key) is not valid",
                ))
            }
        }
        None if api_access => Ok(()),
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "api_access_required",
            "direct API access is not on for this app: call with a partner key (X-App-Key), or ask the operator to turn API access on",
        )),
    }
}
