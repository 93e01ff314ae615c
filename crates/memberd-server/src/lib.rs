//! memberd's server: the HTTP faces over the store, authentication, rate limits,
//! idempotency, and the workers.
#![forbid(unsafe_code)]

pub mod api;
pub mod billing;
pub mod clock;
pub mod config;
pub mod error;
pub mod export;
pub mod extract;
pub mod forwarded;
pub mod import;
pub mod middleware;
pub mod ops;
pub mod pages;
pub mod passwords;
pub mod records;
mod serving;
pub use serving::PeerAddr;
pub mod state;
pub mod telemetry;
pub mod tokens;
pub mod workers;

pub use config::Config;
pub use state::AppState;

use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Router;
use memberd_store::{Backend, Store};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Notify};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument;

use crate::clock::SystemClock;
use crate::error::ApiError;
use crate::workers::email::Mailer;
use crate::workers::scheduler::Scheduler;
use crate::workers::webhooks::Dispatcher;

/// The router with every layer a request passes through: a request id (kept when the client
/// sends one, and echoed in the response) with the request's span and its log of server
/// errors, panic recovery, a timeout and the body limit. `last_copy` is closed once the router
/// and every write it started are gone.
pub fn app(
    config: Config,
    store: Store,
    wake_workers: Option<Arc<Notify>>,
    wake_mailer: Option<Arc<Notify>>,
    last_copy: mpsc::Sender<()>,
) -> Router {
    let timeout = config.request_timeout;
    let body_limit = config.body_limit_bytes;
    let state = AppState::new(config, store, wake_workers, wake_mailer, last_copy);
    api::router(state).layer(
        ServiceBuilder::new()
            .layer(axum::middleware::from_fn(with_request_id))
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

/// `work` with the id of the request being served, for work handed to a task of its own.
pub(crate) fn keep_request_id<F: Future>(work: F) -> impl Future<Output = F::Output> {
    let id = REQUEST_ID.try_with(|id| id.clone()).ok();
    async move {
        match id {
            Some(id) => REQUEST_ID.scope(id, work).await,
            None => work.await,
        }
    }
}

const X_REQUEST_ID: &str = "x-request-id";

/// Gives the request an id unless the client sent one, serves it with the id in the
/// task-local, and echoes the id on the response; logs a server error's status and latency.
/// One layer for what tower-http's request-id and trace layers did: those cost a getrandom
/// call, a clock read on each side and a wrapped body per request, for a span that is only
/// recorded at DEBUG (a span per request at INFO cost about 15 % of an access check).
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
    let id_text = id.to_str().unwrap_or("");
    let method = request.method().clone();
    // The template, never the path: paths carry ids and emails, query strings tokens.
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .cloned();
    let started = Instant::now();
    let serve = REQUEST_ID.scope(id_text.into(), next.run(request));
    let mut response = if tracing::enabled!(tracing::Level::DEBUG) {
        // Headers, and so keys, stay out of the span.
        let span = tracing::debug_span!(
            "request",
            method = %method,
            route = route.as_ref().map_or("unmatched", |r| r.as_str()),
            request_id = id_text,
        );
        serve.instrument(span).await
    } else {
        serve.await
    };
    let status = response.status();
    let took = started.elapsed();
    let route = route.as_ref().map_or("unmatched", |r| r.as_str());
    telemetry::request(route, &method, status, took);
    if status.is_server_error() {
        // Internal errors and panics say what failed where they happen; this line also
        // covers the timeouts.
        tracing::error!(
            method = %method,
            route,
            status = status.as_u16(),
            latency_ms = took.as_secs_f64() * 1e3,
            request_id = id_text,
            "request failed"
        );
    } else {
        tracing::info!(
            method = %method,
            route,
            status = status.as_u16(),
            latency_ms = took.as_secs_f64() * 1e3,
            request_id = id_text,
            "request"
        );
    }
    response.headers_mut().entry(X_REQUEST_ID).or_insert(id);
    response
}

/// A version 4 UUID, hyphenated.
fn random_uuid() -> String {
    let bits = rand::random::<u128>() & !(0xf << 76) & !(0x3 << 62) | (0x4 << 76) | (0x2 << 62);
    let hex = ops::to_hex(&bits.to_be_bytes());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
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
/// race for ports. With `config.serving_threads` (SQLite only), requests are served on
/// threads of their own and writes come back to the caller's runtime (see `serving`). Unless
/// `config.run_workers` is off, the webhook dispatcher runs alongside and finishes its pass in
/// flight too. The hottest reads are kept in memory while it serves (see the store's
/// `read_cache`).
pub async fn serve(
    config: Config,
    store: Store,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_with_metrics(config, store, listener, None, shutdown).await
}

/// `serve`, with `/metrics` on a listener of its own as well (no key is asked for there: keep
/// it off the public network).
pub async fn serve_with_metrics(
    mut config: Config,
    store: Store,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop, stopped) = watch::channel(false);
    start_metrics(
        &store,
        config.metrics_on_main_listener,
        metrics_listener,
        &stopped,
    )?;
    if config.public_url.is_none() {
        config.listen = listener.local_addr()?;
    }
    if store.backend() == Backend::Postgres {
        config.serving_threads = 0;
    }
    let serving_threads = config.serving_threads;
    if let Some(limiter) = state::rate_limiter(&config, &store).map_err(anyhow::Error::msg)? {
        limiter
            .ready()
            .await
            .map_err(|e| anyhow::anyhow!("the rate limits' Redis does not answer: {e}"))?;
    }
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
    let mailer = if config.run_workers {
        Some(mailer(&config, &store)?)
    } else {
        None
    };
    // At the first start, so that the JWKS is there before any member logs in; should the
    // database be busy now, the key is made when the first token is signed.
    if let Err(error) = tokens::ensure_signing_key(&store).await {
        tracing::warn!(%error, "the key member tokens are signed with is made on first use instead");
    }
    store.start_read_cache(config.read_cache_lifetime).await;
    let cache = store.clone();
    let grace = config.request_timeout;
    let (last_copy, mut all_copies_gone) = mpsc::channel::<()>(1);
    let app = app(
        config,
        store,
        dispatcher.as_ref().map(|d| d.waker()),
        mailer.as_ref().map(|m| m.waker()),
        last_copy,
    );
    let worker = dispatcher.map(|d| tokio::spawn(d.run(until(stopped.clone()))));
    let scheduler = scheduler.map(|s| tokio::spawn(s.run(until(stopped.clone()))));
    let mailer = mailer.map(|m| tokio::spawn(m.run(until(stopped.clone()))));
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    let served = serving::serve(listener, app, serving_threads, stopped).await;
    // Writes whose clients hung up run on as tasks of their own (see `write_on`): let them
    // end, rather than be cut off with the process, for as long as a request may take.
    if tokio::time::timeout(grace, all_copies_gone.recv())
        .await
        .is_err()
    {
        tracing::warn!("stopping with writes still running; each is rolled back whole");
    }
    if served.is_ok() {
        for worker in [worker, scheduler, mailer].into_iter().flatten() {
            let _ = worker.await;
        }
    }
    cache.stop_read_cache();
    Ok(served?)
}

/// Starts recording metrics when they are asked for (on the main listener, or on
/// `listener`), and serves them on `listener` until `stopped`.
fn start_metrics(
    store: &Store,
    on_main_listener: bool,
    listener: Option<TcpListener>,
    stopped: &watch::Receiver<bool>,
) -> anyhow::Result<()> {
    if !on_main_listener && listener.is_none() {
        return Ok(());
    }
    telemetry::install()?;
    tokio::spawn(telemetry::keep_up(store.clone(), until(stopped.clone())));
    let Some(listener) = listener else {
        return Ok(());
    };
    let metrics = Router::new()
        .route(
            "/metrics",
            axum::routing::get(
                |axum::extract::State(store): axum::extract::State<Store>| async move {
                    telemetry::answer(&store).await
                },
            ),
        )
        .with_state(store.clone());
    let stopping = until(stopped.clone());
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, metrics)
            .with_graceful_shutdown(stopping)
            .await
        {
            tracing::error!(%error, "the metrics listener stopped");
        }
    });
    Ok(())
}

/// Runs the workers alone (`memberd worker`), polling the database, until `shutdown` resolves;
/// with `metrics_listener`, serves their metrics there.
pub async fn run_workers(
    config: Config,
    store: Store,
    metrics_listener: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (stop, stopped) = watch::channel(false);
    start_metrics(&store, false, metrics_listener, &stopped)?;
    let dispatcher = Dispatcher::new(
        store.clone(),
        config.webhooks.clone(),
        Arc::new(SystemClock),
    )?;
    let mailer = mailer(&config, &store)?;
    // Tells the nodes that cache reads of the changes the scheduler makes.
    store.start_read_cache(std::time::Duration::ZERO).await;
    let scheduler = Scheduler::new(store, config.scheduler, Arc::new(SystemClock));
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop.send(true);
    });
    tokio::join!(
        dispatcher.run(until(stopped.clone())),
        mailer.run(until(stopped.clone())),
        scheduler.run(until(stopped))
    );
    Ok(())
}

/// The email sender `config` asks for.
pub fn mailer(config: &Config, store: &Store) -> anyhow::Result<Arc<Mailer>> {
    let from = workers::email::default_sender(&config.email, &config.issuer())
        .map_err(anyhow::Error::msg)?;
    Mailer::new(
        store.clone(),
        config.email.clone(),
        from,
        Arc::new(SystemClock),
    )
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
