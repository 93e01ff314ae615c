//! Prometheus metrics at `/metrics`, through the `metrics` facade. Nothing is recorded until
//! `install` runs (when the server is asked for metrics), so a server without them pays one
//! check per event. Label values are never ids, emails or keys: a route is its template, an
//! environment is `live` or `sandbox`.
//!
//! Counters are recorded where things happen; what the store knows (its pools, the read
//! cache's counts, the queues the workers drain) is read at each scrape.

use std::cell::RefCell;
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use memberd_core::lifecycle::Due;
use memberd_store::Store;
use metrics::{counter, gauge, histogram, Counter, Histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rustc_hash::FxHashMap;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

const REQUEST_SECONDS: &str = "memberd_http_request_duration_seconds";
const POOL_WAIT_SECONDS: &str = "memberd_db_pool_wait_seconds";

/// Seconds, from half a millisecond (a cached access check) to the request timeout.
const LATENCY_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Starts recording, once per process; later calls get the same handle.
pub fn install() -> anyhow::Result<&'static PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle);
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(REQUEST_SECONDS.into()), &LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(POOL_WAIT_SECONDS.into()), &LATENCY_BUCKETS)?
        .build_recorder();
    let handle = recorder.handle();
    if metrics::set_global_recorder(recorder).is_ok() {
        let _ = HANDLE.set(handle);
        describe();
        gauge!("memberd_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    }
    HANDLE
        .get()
        .ok_or_else(|| anyhow::anyhow!("another metrics recorder was installed first"))
}

fn enabled() -> bool {
    HANDLE.get().is_some()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "memberd_http_requests_total",
        "HTTP requests answered, by route template, method and status class."
    );
    describe_histogram!(
        REQUEST_SECONDS,
        Unit::Seconds,
        "How long requests took to answer, by route template and method."
    );
    describe_counter!(
        "memberd_rate_limited_total",
        "Requests refused with 429 by the per-key rate limit."
    );
    describe_gauge!(
        "memberd_db_pool_open_connections",
        "Connections the pool holds open."
    );
    describe_gauge!(
        "memberd_db_pool_in_use_connections",
        "Connections of the pool in use."
    );
    describe_gauge!(
        "memberd_db_pool_max_connections",
        "The most connections the pool opens."
    );
    describe_histogram!(
        POOL_WAIT_SECONDS,
        Unit::Seconds,
        "How long taking a connection from the pool took, probed every second."
    );
    describe_counter!(
        "memberd_webhook_attempts_total",
        "Webhook delivery attempts made by this process, by outcome (succeeded, failed, gone)."
    );
    describe_counter!(
        "memberd_webhook_deliveries_total",
        "Webhook deliveries ended by this process: delivered, or given up after the last retry."
    );
    describe_gauge!(
        "memberd_webhook_queue_depth",
        "Webhook deliveries not yet made, by environment (all apps; the same on every node)."
    );
    describe_gauge!(
        "memberd_webhook_oldest_undelivered_seconds",
        "Age of the oldest event with a delivery not yet made, by environment; 0 when none."
    );
    describe_counter!(
        "memberd_lifecycle_transitions_total",
        "Transitions time brought to plan connections (renewal, trial_end, …), by kind."
    );
    describe_counter!(
        "memberd_charges_total",
        "Charges made, by kind (first, renewal) and outcome (succeeded, failed)."
    );
    describe_counter!(
        "memberd_emails_total",
        "Emails this process finished with, by state (sent, failed, not_sent)."
    );
    describe_gauge!(
        "memberd_emails_queued",
        "Emails waiting to be sent (all apps; the same on every node)."
    );
    describe_counter!(
        "memberd_logins_total",
        "Sign-ins, by who (member, operator) and outcome (succeeded, failed, limited)."
    );
    describe_counter!(
        "memberd_read_cache_hits_total",
        "Reads answered from the read cache."
    );
    describe_counter!(
        "memberd_read_cache_misses_total",
        "Reads the read cache could not answer."
    );
    describe_counter!(
        "memberd_read_cache_invalidations_total",
        "Times the read cache dropped entries because their data changed."
    );
    describe_gauge!(
        "memberd_build_info",
        "Always 1; its labels say which memberd this is."
    );
}

/// `/metrics`'s answer, in Prometheus's text format.
pub async fn answer(store: &Store) -> Response {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        render(store).await,
    )
        .into_response()
}

/// The text `/metrics` answers, with the store's figures read now.
pub async fn render(store: &Store) -> String {
    let Some(handle) = HANDLE.get() else {
        return String::new();
    };
    for pool in store.pool_gauges() {
        gauge!("memberd_db_pool_open_connections", "pool" => pool.name).set(pool.open);
        gauge!("memberd_db_pool_in_use_connections", "pool" => pool.name)
            .set(pool.open.saturating_sub(pool.idle));
        gauge!("memberd_db_pool_max_connections", "pool" => pool.name).set(pool.max);
    }
    let cache = store.read_cache_counts();
    counter!("memberd_read_cache_hits_total").absolute(cache.hits);
    counter!("memberd_read_cache_misses_total").absolute(cache.misses);
    counter!("memberd_read_cache_invalidations_total").absolute(cache.invalidations);
    match store.webhook_backlog().await {
        Ok(backlog) => {
            let now = crate::clock::Clock::now(&crate::clock::SystemClock);
            for env in [
                memberd_core::Environment::Live,
                memberd_core::Environment::Sandbox,
            ] {
                let of_env = backlog.iter().find(|b| b.env == env);
                let pending = of_env.map_or(0, |b| b.pending);
                let age = of_env.and_then(|b| b.oldest_event_at).map_or(0.0, |at| {
                    (now.as_micros() - at.as_micros()).max(0) as f64 / 1e6
                });
                gauge!("memberd_webhook_queue_depth", "env" => env.as_str()).set(pending as f64);
                gauge!("memberd_webhook_oldest_undelivered_seconds", "env" => env.as_str())
                    .set(age);
            }
        }
        Err(error) => tracing::warn!(%error, "/metrics could not read the webhook backlog"),
    }
    match store.emails_queued().await {
        Ok(queued) => gauge!("memberd_emails_queued").set(queued as f64),
        Err(error) => tracing::warn!(%error, "/metrics could not count the queued emails"),
    }
    handle.render()
}

/// Every second, probes the pools' wait and drains the histograms' samples into their
/// buckets (the recorder keeps raw samples until then), until `stop` resolves.
pub async fn keep_up(store: Store, stop: impl std::future::Future<Output = ()>) {
    let Some(handle) = HANDLE.get() else { return };
    let mut every = tokio::time::interval(Duration::from_secs(1));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = every.tick() => {}
        }
        for (pool, waited) in store.probe_pool_waits().await {
            match waited {
                Ok(waited) => histogram!(POOL_WAIT_SECONDS, "pool" => pool).record(waited),
                Err(error) => {
                    tracing::warn!(%error, pool, "could not take a connection from the pool")
                }
            }
        }
        handle.run_upkeep();
    }
}

/// One request answered. `route` is the matched route's template, `unmatched` for none.
pub fn request(route: &str, method: &Method, status: StatusCode, took: Duration) {
    if !enabled() {
        return;
    }
    let method = method_label(method);
    let class = match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    REQUEST_HANDLES.with_borrow_mut(|routes| {
        if !routes.contains_key(route) {
            routes.insert(route.into(), Vec::new());
        }
        let Some(methods) = routes.get_mut(route) else {
            return;
        };
        let at = match methods.iter().position(|m| m.method == method) {
            Some(at) => at,
            None => {
                methods.push(MethodHandles {
                    method,
                    took: histogram!(REQUEST_SECONDS, "route" => route.to_owned(), "method" => method),
                    answered: Vec::new(),
                });
                methods.len() - 1
            }
        };
        let handles = &mut methods[at];
        handles.took.record(took);
        match handles.answered.iter().find(|(c, _)| *c == class) {
            Some((_, counter)) => counter.increment(1),
            None => {
                let counter = counter!("memberd_http_requests_total",
                    "route" => route.to_owned(), "method" => method, "status" => class);
                counter.increment(1);
                handles.answered.push((class, counter));
            }
        }
    });
}

/// A route's metrics for one method: found by a lookup of the template on this thread, since
/// building a metric's key (its labels) on every request cost a sixth of the access check.
/// Templates are few, so these stay few.
struct MethodHandles {
    method: &'static str,
    took: Histogram,
    answered: Vec<(&'static str, Counter)>,
}

thread_local! {
    static REQUEST_HANDLES: RefCell<FxHashMap<Box<str>, Vec<MethodHandles>>> =
        RefCell::new(FxHashMap::default());
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

pub fn rate_limited() {
    if enabled() {
        counter!("memberd_rate_limited_total").increment(1);
    }
}

/// `who`: member or operator; `outcome`: succeeded, failed or limited.
pub fn login(who: &'static str, outcome: &'static str) {
    if enabled() {
        counter!("memberd_logins_total", "who" => who, "outcome" => outcome).increment(1);
    }
}

/// `outcome`: succeeded, failed or gone (the receiver answered 410).
pub fn webhook_attempt(outcome: &'static str) {
    if enabled() {
        counter!("memberd_webhook_attempts_total", "outcome" => outcome).increment(1);
    }
}

/// `outcome`: delivered or given_up.
pub fn webhook_delivery(outcome: &'static str) {
    if enabled() {
        counter!("memberd_webhook_deliveries_total", "outcome" => outcome).increment(1);
    }
}

/// `kind`: first (when a member takes a paid plan) or renewal (the scheduler's, retries too).
pub fn charge(kind: &'static str, succeeded: bool) {
    if enabled() {
        let outcome = if succeeded { "succeeded" } else { "failed" };
        counter!("memberd_charges_total", "kind" => kind, "outcome" => outcome).increment(1);
    }
}

pub fn transition(due: Due) {
    if enabled() {
        counter!("memberd_lifecycle_transitions_total", "kind" => due_label(due)).increment(1);
    }
}

fn due_label(due: Due) -> &'static str {
    match due {
        Due::TrialEnd => "trial_end",
        Due::Renewal => "renewal",
        Due::Retry => "retry",
        Due::ScheduledCancel => "scheduled_cancel",
        Due::ScheduledReplace => "scheduled_replace",
        Due::Resume => "resume",
        Due::Expiry => "expiry",
    }
}

/// `state`: sent, failed or not_sent.
pub fn email(state: &'static str) {
    if enabled() {
        counter!("memberd_emails_total", "state" => state).increment(1);
    }
}
