//! memberd's server: the HTTP faces over the store, authentication, rate limits,
//! idempotency, and the workers.
#![forbid(unsafe_code)]

pub mod api;
pub mod billing;
pub mod clock;
pub mod config;
pub mod error;
pub mod extract;
pub mod middleware;
pub mod ops;
pub mod passwords;
pub mod state;
pub mod workers;

pub use config::Config;
pub use state::AppState;

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Request};
use axum::response::{IntoResponse, Response};
use axum::Router;
use memberd_store::Store;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::clock::SystemClock;
use crate::error::ApiError;
use crate::workers::scheduler::Scheduler;
use crate::workers::webhooks::Dispatcher;

/// The router with every layer a request passes through: a request id (kept when the client
/// sends one, and echoed in the response), a tracing span, panic recovery, a timeout and the
/// body limit.
pub fn app(config: Config, store: Store, wake_workers: Option<Arc<Notify>>) -> Router {
    let timeout = config.request_timeout;
    let body_limit = config.body_limit_bytes;
    let state = AppState::new(config, store, wake_workers);
    api::router(state).layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn(with_request_id))
            .layer(TraceLayer::new_for_http().make_span_with(request_span))
            .layer(CatchPanicLayer::custom(panic_response))
            .layer(TimeoutLayer::with_status_code(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                timeout,
            ))
            .layer(DefaultBodyLimit::max(body_limit)),
    )
}

tokio::task_local! {
    /// The id of the request being served, for the log line of an internal error.
    static REQUEST_ID: Box<str>;
}

/// The id of the request this task serves, or "" outside of one.
pub(crate) fn current_request_id() -> String {
    REQUEST_ID.try_with(|id| id.to_string()).unwrap_or_default()
}

const X_REQUEST_ID: &str = "x-request-id";

/// Gives the request an id unless the client sent one, serves it with the id in the
/// task-local, and echoes the id on the response. One layer for what tower-http's set and
/// propagate layers do, and a random UUID drawn from the thread's generator instead of a
/// getrandom call per request.
async fn with_request_id(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let id = match request.headers().get(X_REQUEST_ID) {
        Some(id) => id.clone(),
        None => {
            let id = HeaderValue::from_str(&random_uuid()).expect("hex digits and dashes");
            request.headers_mut().insert(X_REQUEST_ID, id.clone());
            id
        }
    };
    let text: Box<str> = id.to_str().unwrap_or("").into();
    let mut response = REQUEST_ID.scope(text, next.run(request)).await;
    response.headers_mut().entry(X_REQUEST_ID).or_insert(id);
    response
}

/// A version 4 UUID, hyphenated.
fn random_uuid() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = rand::random::<u128>() & !(0xf << 76) & !(0x3 << 62) | (0x4 << 76) | (0x2 << 62);
    let mut out = String::with_capacity(36);
    for i in 0..32 {
        if matches!(i, 8 | 12 | 16 | 20) {
            out.push('-');
        }
        let nibble = (bits >> (124 - 4 * i)) & 0xf;
        out.push(HEX[nibble as usize] as char);
    }
    out
}

/// The span of a request: method, path and request id. Headers, and so keys, stay out of it.
/// At DEBUG: a span per request at INFO cost about 15 % of an access check (the log layer
/// formats its fields and tracks it on every poll); internal errors carry the request id
/// themselves (`current_request_id`).
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let request_id = request
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::debug_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id,
    )
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %detail, request_id = %current_request_id(), "a request handler panicked");
    ApiError::internal().into_response()
}

/// Serves the API on an already-bound listener until `shutdown` resolves, then finishes the
/// requests in flight and returns. Tests bind port 0 and pass the listener in, so they never
/// race for ports. Unless `config.run_workers` is off, the webhook dispatcher runs alongside
/// and finishes its pass in flight too.
pub async fn serve(
    config: Config,
    store: Store,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let dispatcher = if config.run_workers {
        Some(Dispatcher::new(
            store.clone(),
            config.webhooks.clone(),
            Arc::new(SystemClock),
        )?)
    } else {
        None
    };
    let scheduler = config.run_workers.then(|| {
        Scheduler::new(
            store.clone(),
            config.scheduler.clone(),
            Arc::new(SystemClock),
        )
    });
    let app = app(config, store, dispatcher.as_ref().map(|d| d.waker()));
    let worker = dispatcher.map(|d| tokio::spawn(d.run(until(stopped.clone()))));
    let scheduler = scheduler.map(|s| tokio::spawn(s.run(until(stopped.clone()))));
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(until(stopped))
        .await?;
    for worker in [worker, scheduler].into_iter().flatten() {
        let _ = worker.await;
    }
    Ok(())
}

/// Runs the workers alone (`memberd worker`), polling the database, until `shutdown` resolves.
pub async fn run_workers(
    config: Config,
    store: Store,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let dispatcher = Dispatcher::new(store.clone(), config.webhooks, Arc::new(SystemClock))?;
    let scheduler = Scheduler::new(store, config.scheduler, Arc::new(SystemClock));
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    tokio::join!(
        dispatcher.run(until(stopped.clone())),
        scheduler.run(until(stopped))
    );
    Ok(())
}

/// Resolves once the flag turns true.
async fn until(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|stop| *stop).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_ids_are_version_4_uuids() {
        let id = super::random_uuid();
        assert_eq!(id.len(), 36);
        let groups: Vec<&str> = id.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(groups[2].starts_with('4'), "version 4: {id}");
        assert!(
            matches!(&groups[3][..1], "8" | "9" | "a" | "b"),
            "RFC 4122 variant: {id}"
        );
        assert!(id.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_ne!(id, super::random_uuid());
    }
}
