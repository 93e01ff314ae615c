//! What runs around every authenticated request, in this order: the key check, the face's own
//! admission check (which may choose what the rate limit counts against), the rate limit, and
//! the replay of idempotent POSTs; after a write that succeeded, a nudge to the workers. A body
//! declared larger than the server takes is refused there too, once it has been read (see
//! `discard`).
//!
//! All of it is one layer (`keyed`) rather than a layer per step: each `from_fn` layer clones
//! the route's service and boxes a future on every request, which showed in the access check's
//! profile.

pub mod auth;
pub mod idempotency;
pub mod rate_limit;

use std::future::Future;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use tokio::runtime::Handle;
use tracing::Instrument;

use crate::error::{ApiError, ErrorFormat};
use crate::extract::body_too_large;
use crate::state::AppState;

/// An API face: the envelope its refusals take, and what it checks of a request beyond its key.
pub trait Face: ErrorFormat {
    /// Runs once the key is known, before the rate limit; an error refuses the request.
    fn admit(
        _state: &AppState,
        _request: &mut Request,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        std::future::ready(Ok(()))
    }
}

/// How much of a body over the limit is read and thrown away, in multiples of the limit.
const DISCARD_FACTOR: usize = 4;

fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Reads and throws away up to `cap` bytes of a body that will not be used. A client is
/// usually still sending it when the refusal is ready; a server that closes the connection
/// with the body unread makes the kernel reset it, and the client may then see the reset
/// instead of the answer.
async fn discard(mut body: Body, cap: usize) {
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        seen = seen.saturating_add(frame.data_ref().map_or(0, |data| data.len()));
        if seen > cap {
            break;
        }
    }
}

/// Runs a write as a task of its own on `runtime` (see `serving`), so that nothing cuts it off
/// between statements: neither the request's timeout nor a client that hangs up. The write, its
/// events and its Idempotency-Key's record all run to their end, and a client that retries with
/// the key is answered as the first request would have been. A panic goes on unwinding here,
/// so that it is answered and logged as one on the request's own thread would be.
async fn write_on(
    runtime: &Handle,
    state: AppState,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let write =
        crate::keep_request_id(async move { idempotency::replay(&state, request, next).await });
    let write = runtime.spawn(write.in_current_span());
    match write.await {
        Ok(outcome) => outcome,
        Err(err) if err.is_panic() => std::panic::resume_unwind(err.into_panic()),
        // The shared runtime is shutting down.
        Err(_) => Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "api_error",
            "shutting_down",
            "the server is shutting down; retry the request (with its Idempotency-Key)",
        )),
    }
}

/// The layer of a face's keyed routes (see the module's documentation).
pub async fn keyed<F: Face>(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let mut request = match auth::authenticate(&state, request).await {
        Ok(request) => request,
        Err(err) => return F::render(err),
    };
    if let Err(err) = crate::extract::refuse_nul_in_uri(request.uri()) {
        return F::render(err);
    }
    if let Err(err) = F::admit(&state, &mut request).await {
        return F::render(err);
    }
    let budget = match rate_limit::check::<F>(&state, rate_limit::limit_key(&request)).await {
        Ok(budget) => budget,
        Err(refusal) => return *refusal,
    };
    let writes = request.method() != Method::GET;
    let limit = state.config().body_limit_bytes;
    let mut response = if declared_length(&request).is_some_and(|n| n > limit as u64) {
        discard(request.into_body(), limit.saturating_mul(DISCARD_FACTOR)).await;
        F::render(body_too_large())
    } else {
        if writes {
            // With serving threads, writes go to the shared runtime; else they stay on it.
            let runtime = state
                .writes_runtime()
                .cloned()
                .unwrap_or_else(Handle::current);
            write_on(&runtime, state.clone(), request, next).await
        } else {
            idempotency::replay(&state, request, next).await
        }
        .unwrap_or_else(F::render)
    };
    if let Some(budget) = budget {
        budget.set_headers(response.headers_mut());
    }
    if writes && response.status().is_success() {
        // The write may have recorded events: tell the in-process dispatcher.
        state.wake_workers();
    }
    response
}
