//! A rate limit per API key, or per store on Appstle's face (GCRA, from `governor`), answered with 429, `Retry-After` and the
//! `RateLimit-*` headers of the IETF draft on every response.

use std::num::NonZeroU32;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::Quota;

use crate::error::{ApiError, ErrorFormat};
use crate::extract::Authed;
use crate::state::AppState;

type Limiter = governor::RateLimiter<
    String,
    DashMapStateStore<String>,
    DefaultClock,
    StateInformationMiddleware,
>;

pub struct RateLimiter {
    limiter: Limiter,
    per_second: u32,
    burst: u32,
}

impl RateLimiter {
    /// `None` when `per_second` is 0: rate limiting is off.
    pub fn new(per_second: u32, burst: u32) -> Option<Self> {
        let rate = NonZeroU32::new(per_second)?;
        let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
        let quota = Quota::per_second(rate).allow_burst(burst);
        Some(RateLimiter {
            limiter: governor::RateLimiter::dashmap(quota)
                .with_middleware::<StateInformationMiddleware>(),
            per_second: rate.get(),
            burst: burst.get(),
        })
    }

    /// Seconds until a key that has `remaining` requests left is back to a full burst.
    fn reset_secs(&self, remaining: u32) -> u64 {
        u64::from(self.burst - remaining.min(self.burst)).div_ceil(u64::from(self.per_second))
    }

    fn set_headers(&self, headers: &mut HeaderMap, remaining: u32) {
        headers.insert("ratelimit-limit", HeaderValue::from(self.burst));
        headers.insert("ratelimit-remaining", HeaderValue::from(remaining));
        headers.insert(
            "ratelimit-reset",
            HeaderValue::from(self.reset_secs(remaining)),
        );
    }
}

/// Refuses a key over its budget in the envelope of the face `F`.
pub async fn limit_per_key<F: ErrorFormat>(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(limiter) = state.limiter() else {
        return next.run(request).await;
    };
    let Some(authed) = request.extensions().get::<Authed>() else {
        return next.run(request).await;
    };
    match limiter.limiter.check_key(&authed.limit_key) {
        Ok(snapshot) => {
            let mut response = next.run(request).await;
            limiter.set_headers(response.headers_mut(), snapshot.remaining_burst_capacity());
            response
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(limiter.limiter.clock().now());
            let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut err = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "rate_limited",
                format!(
                    "at most {} requests per second (bursts of {}) are allowed; retry after {retry_after} s",
                    limiter.per_second, limiter.burst
                ),
            );
            err.retry_after = Some(retry_after.max(1));
            let mut response = F::render(err);
            limiter.set_headers(response.headers_mut(), 0);
            response
        }
    }
}
