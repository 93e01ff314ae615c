//! A rate limit per API key, or per store on Appstle's face, answered with 429, `Retry-After`
//! and the `RateLimit-*` headers of the IETF draft on every response.
//!
//! On SQLite one process serves the database, and keeps the buckets (GCRA, from `governor`).
//! On PostgreSQL every node spends from the same buckets, kept in the database or in Redis
//! (`--redis-url`; see `shared`), so that a key's limit is one for the cluster.

mod redis;
mod shared;

use std::num::NonZeroU32;
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::Quota;
use memberd_store::Store;

use crate::error::{ApiError, ErrorFormat};
use crate::extract::Authed;
use crate::state::AppState;
use shared::{Buckets, Decision, SharedLimiter};

type Limiter = governor::RateLimiter<
    String,
    DashMapStateStore<String>,
    DefaultClock,
    StateInformationMiddleware,
>;

pub struct RateLimiter {
    /// This process's buckets: the limit on SQLite, and the fallback should the cluster's
    /// buckets be out of reach.
    local: Limiter,
    shared: Option<SharedLimiter>,
    per_second: u32,
    burst: u32,
}

impl RateLimiter {
    /// `None` when `per_second` is 0: rate limiting is off. On PostgreSQL the buckets are
    /// the cluster's, in Redis when `redis_url` is given, else in the database.
    pub fn new(
        per_second: u32,
        burst: u32,
        store: &Store,
        redis_url: Option<&str>,
    ) -> Result<Option<Self>, String> {
        let Some(rate) = NonZeroU32::new(per_second) else {
            return Ok(None);
        };
        let burst = NonZeroU32::new(burst.max(per_second)).unwrap_or(rate);
        let quota = Quota::per_second(rate).allow_burst(burst);
        let buckets = match redis_url {
            Some(url) => Some(Buckets::Redis(Box::new(redis::RedisBuckets::new(url)?))),
            None if store.shares_rate_limits() => Some(Buckets::Postgres(store.clone())),
            None => None,
        };
        Ok(Some(RateLimiter {
            local: governor::RateLimiter::dashmap(quota)
                .with_middleware::<StateInformationMiddleware>(),
            shared: buckets.map(|b| SharedLimiter::new(b, rate.get(), burst.get())),
            per_second: rate.get(),
            burst: burst.get(),
        }))
    }

    /// Where the buckets are kept, for `memberd serve` to say.
    pub fn describe(&self) -> String {
        let place = match self.shared.as_ref().map(SharedLimiter::buckets) {
            Some(buckets) => format!("one for every node, kept in {}", buckets.describe()),
            None => "kept in this process".into(),
        };
        format!(
            "{}/s per key, bursts of {}, {place}",
            self.per_second, self.burst
        )
    }

    /// Fails when the cluster's buckets are in a Redis that does not answer.
    pub async fn ready(&self) -> Result<(), String> {
        match self.shared.as_ref().map(SharedLimiter::buckets) {
            Some(Buckets::Redis(redis)) => redis.ping().await,
            _ => Ok(()),
        }
    }

    async fn decide(&self, key: &str) -> Decision {
        if let Some(shared) = &self.shared {
            if let Some(decided) = shared.check(key).await {
                return decided;
            }
        }
        match self.local.check_key(&key.to_owned()) {
            Ok(snapshot) => Decision::Allowed {
                remaining: snapshot.remaining_burst_capacity(),
            },
            Err(not_until) => Decision::Refused {
                retry_in: not_until.wait_time_from(self.local.clock().now()),
            },
        }
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
        self.limiter
            .set_headers(headers, self.remaining.min(self.limiter.burst));
    }
}

/// The key a request's budget is counted under, once it is authenticated.
pub fn limit_key(request: &Request) -> Option<String> {
    request
        .extensions()
        .get::<Authed>()
        .map(|authed| authed.limit_key.clone())
}

/// Takes one request from `key`'s budget: `None` when rate limiting is off or the request has
/// no key, a refusal in the envelope of the face `F` when the key is over its budget.
pub async fn check<F: ErrorFormat>(
    state: &AppState,
    key: Option<String>,
) -> Result<Option<Budget<'_>>, Box<Response>> {
    let (Some(limiter), Some(key)) = (state.limiter(), key) else {
        return Ok(None);
    };
    match limiter.decide(&key).await {
        Decision::Allowed { remaining } => Ok(Some(Budget { limiter, remaining })),
        Decision::Refused { retry_in } => Err(Box::new(refusal::<F>(limiter, retry_in))),
    }
}

fn refusal<F: ErrorFormat>(limiter: &RateLimiter, wait: Duration) -> Response {
    crate::telemetry::rate_limited();
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
