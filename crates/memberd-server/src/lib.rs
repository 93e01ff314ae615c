//! memberd's server: the HTTP faces over the store, authentication, rate limits,
//! idempotency, and (later) the workers.
#![forbid(unsafe_code)]

pub mod config;
pub mod ops;

pub use config::Config;

use std::future::Future;

use memberd_store::Store;
use tokio::net::TcpListener;

/// Serves the API on an already-bound listener until `shutdown` resolves, then finishes the
/// requests in flight and returns. Tests bind port 0 and pass the listener in, so they never
/// race for ports.
pub async fn serve(
    config: Config,
    store: Store,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let _ = (config, store, listener, shutdown);
    todo!("router, middleware and handlers")
}
