//! `Idempotency-Key` on POST: the first request with a key runs and its response is kept for
//! 24 hours; a retry with the same key and the same request gets that response again and
//! changes nothing; the same key on a different request is a 422. The response is kept in the
//! transaction of the write it answers, and a claim left by a process that died is taken over
//! once the request timeout has passed (see `memberd_store::idempotency`).

use axum::body::{to_bytes, Body};
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use memberd_store::IdempotencyState;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::extract::{body_too_large, Authed};
use crate::state::AppState;

const HEADER: &str = "idempotency-key";
const MAX_KEY_LEN: usize = 255;

fn fingerprint(method: &Method, path_and_query: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(method.as_str());
    hash.update(b" ");
    hash.update(path_and_query);
    hash.update(b"\n");
    hash.update(body);
    crate::ops::to_hex(&hash.finalize())
}

/// Runs the request, or answers it from what was kept for its idempotency key.
pub(crate) async fn replay(
    state: &AppState,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if request.method() != Method::POST {
        return Ok(next.run(request).await);
    }
    let Some(key) = request.headers().get(HEADER) else {
        return Ok(next.run(request).await);
    };
    let key = key
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN)
        .ok_or_else(|| {
            ApiError::invalid(
                "Idempotency-Key",
                "invalid_idempotency_key",
                format!("Idempotency-Key must be 1 to {MAX_KEY_LEN} visible ASCII characters"),
            )
        })?
        .to_owned();
    let Some(scope) = request
        .extensions()
        .get::<Authed>()
        .map(|a| a.scope.clone())
    else {
        return Ok(next.run(request).await);
    };

    let (parts, body) = request.into_parts();
    let body = to_bytes(body, state.config().body_limit_bytes)
        .await
        .map_err(|_| body_too_large())?;
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let print = fingerprint(&parts.method, path, &body);
    let store = state.store();
    let lease = state.config().request_timeout;
    let claim = match store
        .idempotency_begin(&scope, &key, &print, state.now(), lease)
        .await?
    {
        IdempotencyState::Started(claim) => claim,
        IdempotencyState::InProgress => return Err(in_use()),
        IdempotencyState::Mismatch => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_error",
                "idempotency_key_reused",
                "this Idempotency-Key was used for a different request; use a new key for a new request",
            )
            .with_param("Idempotency-Key"))
        }
        IdempotencyState::Completed {
            status,
            content_type,
            body,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let content_type = content_type
                .and_then(|t| HeaderValue::from_str(&t).ok())
                .unwrap_or(HeaderValue::from_static("application/json"));
            let mut response = (
                status,
                [(axum::http::header::CONTENT_TYPE, content_type)],
                Body::from(body),
            )
                .into_response();
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            return Ok(response);
        }
    };

    let request = Request::from_parts(parts, Body::from(body));
    memberd_store::answering(async move {
        let response = next.run(request).await;
        let (parts, body) = response.into_parts();
        let bytes = match to_bytes(body, usize::MAX).await {
            Ok(bytes) => bytes,
            Err(err) => {
                tracing::error!(error = %err, request_id = %crate::current_request_id(), "could not buffer a response to keep for its idempotency key");
                store.idempotency_release(&claim).await?;
                return Err(ApiError::internal());
            }
        };
        if parts.status.is_server_error() {
            // Worth retrying: what the request wrote is rolled back with its claim.
            store.idempotency_release(&claim).await?;
        } else if !store
            .idempotency_finish(
                &claim,
                parts.status.as_u16(),
                parts
                    .headers
                    .get(axum::http::header::CONTENT_TYPE)
                    .and_then(|t| t.to_str().ok()),
                &String::from_utf8_lossy(&bytes),
            )
            .await?
        {
            // The request ran past its lease and a retry took the key over: that retry
            // performs it, and nothing of this one is kept.
            return Err(in_use());
        }
        Ok(Response::from_parts(parts, Body::from(bytes)))
    })
    .await
}

fn in_use() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_error",
        "idempotency_key_in_use",
        "a request with this Idempotency-Key is still being processed; retry shortly",
    )
    .with_param("Idempotency-Key")
}
