//! What runs around every authenticated request, in this order: the key check, the face's own
//! admission check (which may choose what the rate limit counts against), the rate limit, and
//! the replay of idempotent POSTs; after a write that
//! succeeded, a nudge to the workers.
//!
//! All of it is one layer (`keyed`) rather than a layer per step: each `from_fn` layer clones
//! the route's service and boxes a future on every request, which showed in the access check's
//! profile.

pub mod auth;
pub mod idempotency;
pub mod rate_limit;

use std::future::Future;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

use crate::error::{ApiError, ErrorFormat};
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
    if let Err(err) = F::admit(&state, &mut request).await {
        return F::render(err);
    }
    let budget = match rate_limit::check::<F>(&state, &request) {
        Ok(budget) => budget,
        Err(refusal) => return *refusal,
    };
    let writes = request.method() != Method::GET;
    let mut response = idempotency::replay(&state, request, next)
        .await
        .unwrap_or_else(F::render);
    if let Some(budget) = budget {
        budget.set_headers(response.headers_mut());
    }
    if writes && response.status().is_success() {
        // The write may have recorded events: tell the in-process dispatcher.
        state.wake_workers();
    }
    response
}
