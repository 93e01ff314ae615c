use std::sync::Arc;

use memberd_core::Timestamp;
use memberd_store::Store;

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
}

impl AppState {
    pub fn new(config: Config, store: Store) -> Self {
        let limiter = RateLimiter::new(config.rate_limit_per_second, config.rate_limit_burst);
        AppState {
            inner: Arc::new(Inner {
                store,
                config,
                limiter,
            }),
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
