use std::sync::Arc;

use memberd_core::Timestamp;
use memberd_store::Store;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, Notify};

use crate::clock::SystemClock;
use crate::middleware::rate_limit::RateLimiter;
use crate::tokens::Tokens;
use crate::workers::scheduler::Scheduler;
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
    /// Wakes the in-process email sender after a write queued an email.
    wake_mailer: Option<Arc<Notify>>,
    /// Advances test clocks on request, also when the workers run elsewhere.
    scheduler: Arc<Scheduler>,
    /// Signs and verifies member tokens.
    tokens: Tokens,
    /// Where writes run when requests are served on threads of their own (see `serving`).
    writes_runtime: Option<Handle>,
    /// The dashboard's imports on this node.
    imports: crate::pages::ImportJobs,
    /// Closed when the last copy of the state is dropped. A write whose client hung up runs on
    /// as a task of its own and holds a copy: `serve` waits for this before it returns.
    _last_copy: mpsc::Sender<()>,
}

/// The rate limiter `config` asks for on `store`.
pub fn rate_limiter(config: &Config, store: &Store) -> Result<Option<RateLimiter>, String> {
    RateLimiter::new(
        config.rate_limit_per_second,
        config.rate_limit_burst,
        store,
        config.redis_url.as_ref().map(|url| url.0.as_str()),
    )
}

impl AppState {
    pub fn new(
        config: Config,
        store: Store,
        wake_workers: Option<Arc<Notify>>,
        wake_mailer: Option<Arc<Notify>>,
        last_copy: mpsc::Sender<()>,
    ) -> Self {
        // `serve` checks the settings first (see `rate_limiter`); a router built without it
        // and with a bad Redis URL limits nothing, and says so.
        let limiter = rate_limiter(&config, &store).unwrap_or_else(|error| {
            tracing::error!(%error, "rate limiting is off: its settings are invalid");
            None
        });
        let scheduler = Scheduler::new(
            store.clone(),
            config.scheduler.clone(),
            Arc::new(SystemClock),
        );
        let tokens = Tokens::new(store.clone(), config.issuer());
        let writes_runtime = (config.serving_threads > 0)
            .then(Handle::try_current)
            .and_then(Result::ok);
        AppState {
            inner: Arc::new(Inner {
                store,
                config,
                limiter,
                wake_workers,
                wake_mailer,
                scheduler,
                tokens,
                writes_runtime,
                imports: crate::pages::ImportJobs::default(),
                _last_copy: last_copy,
            }),
        }
    }

    pub fn wake_workers(&self) {
        if let Some(wake) = &self.inner.wake_workers {
            wake.notify_one();
        }
    }

    pub fn wake_mailer(&self) {
        if let Some(wake) = &self.inner.wake_mailer {
            wake.notify_one();
        }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    pub fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.inner.scheduler
    }

    /// The runtime writes are handed to, when requests are served elsewhere.
    pub(crate) fn writes_runtime(&self) -> Option<&Handle> {
        self.inner.writes_runtime.as_ref()
    }

    pub fn imports(&self) -> &crate::pages::ImportJobs {
        &self.inner.imports
    }

    pub fn limiter(&self) -> Option<&RateLimiter> {
        self.inner.limiter.as_ref()
    }

    /// The time every rule of a request is decided at.
    pub fn now(&self) -> Timestamp {
        crate::ops::now()
    }
}
