use std::sync::Arc;

use memberd_core::Timestamp;
use memberd_store::Store;
use tokio::sync::Notify;

use crate::middleware::rate_limit::RateLimiter;
use crate::Config;

/// What every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: Config,
    limiter: Option<RateLimiter>,
    /// Wakes the in-process workers after a write, so events go out without waiting for a poll.
    wake_workers: Option<Arc<Notify>>,
}

impl AppState {
    pub fn new(config: Config, store: Store, wake_workers: Option<Arc<Notify>>) -> Self {
        let limiter = RateLimiter::new(config.rate_limit_per_second, config.rate_limit_burst);
        AppState {
            inner: Arc::new(Inner {
                store,
                config,
                limiter,
                wake_workers,
            }),
        }
    }

    pub fn wake_workers(&self) {
        if let Some(wake) = &self.inner.wake_workers {
            wake.notify_one();
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn limiter(&self) -> Option<&RateLimiter> {
        self.inner.limiter.as_ref()
    }

    /// The time every rule of a request is decided at.
    pub fn now(&self) -> Timestamp {
        crate::ops::now()
    }
}
