//! A rate limit per API key, or per store on Appstle's face (GCRA, from `governor`), answered with 429, `Retry-After` and the
//! `RateLimit-*` headers of the IETF draft on every response.

use std::num::NonZeroU32;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
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

/// What is left of a key's budget, for the `RateLimit-*` headers of its response.
pub struct Budget<'a> {
    limiter: &'a RateLimiter,
    remaining: u32,
}

impl Budget<'_> {
    pub fn set_headers(&self, headers: &mut HeaderMap) {
        self.limiter.set_headers(headers, self.remaining);
    }
}

/// Takes one request from the key's budget: `None` when rate limiting is off, a refusal in
/// the envelope of the face `F` when the key is over its budget.
pub fn check<'a, F: ErrorFormat>(
    state: &'a AppState,
    request: &Request,
) -> Result<Option<Budget<'a>>, Box<Response>> {
    let Some(limiter) = state.limiter() else {
        return Ok(None);
    };
    let Some(authed) = request.extensions().get::<Authed>() else {
        return Ok(None);
    };
    match limiter.limiter.check_key(&authed.limit_key) {
        Ok(snapshot) => Ok(Some(Budget {
            limiter,
            remaining: snapshot.remaining_burst_capacity(),
        })),
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
            Err(Box::new(response))
        }
    }
}
