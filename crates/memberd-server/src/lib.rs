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
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use axum::Router;
use memberd_store::Store;
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::clock::SystemClock;
use crate::error::ApiError;
use crate::workers::scheduler::Scheduler;
use crate::workers::webhooks::Dispatcher;

/// The router with every layer a request passes through: a request id (kept when the client
/// sends one), a tracing span, panic recovery, a timeout and the body limit.
pub fn app(config: Config, store: Store, wake_workers: Option<Arc<Notify>>) -> Router {
    let timeout = config.request_timeout;
    let body_limit = config.body_limit_bytes;
    let state = AppState::new(config, store, wake_workers);
    api::router(state).layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(PropagateRequestIdLayer::x_request_id())
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

async fn with_request_id(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let id: Box<str> = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .into();
    REQUEST_ID.scope(id, next.run(request)).await
}

/// The span of a request: method, path and request id. Headers, and so keys, stay out of it.
/// At DEBUG: a span per request at INFO cost about 15 % of an access check (the log layer
/// formats its fields and tracks it on every poll); internal errors carry the request id
/// themselves (`current_request_id`).
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let request_id = request
        .headers()
        .get("x-request-id")
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
