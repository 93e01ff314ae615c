//! What `/metrics` reads of the store at each scrape: the pools, the read cache's counts and
//! the queues the workers drain. The queues are the database's, so every node of a cluster
//! reports the same figures for them.

use std::time::{Duration, Instant};

use memberd_core::{Environment, Timestamp};
use sqlx::AnyPool;

use crate::read_cache::CacheCounts;
use crate::rows::{env, int, opt_ts};
use crate::{Backend, Result, Store};

/// One connection pool as it stands.
#[derive(Debug, Clone, Copy)]
pub struct PoolGauge {
    /// `read` or `write`; on PostgreSQL one pool serves both and is reported as `write`.
    pub name: &'static str,
    pub open: u32,
    pub idle: u32,
    pub max: u32,
}

/// The webhook deliveries of one kind of environment still to be made.
#[derive(Debug, Clone)]
pub struct WebhookBacklog {
    pub env: Environment,
    pub pending: i64,
    /// When the oldest event still waiting for a delivery happened.
    pub oldest_event_at: Option<Timestamp>,
}

impl Store {
    fn pools(&self) -> Vec<(&'static str, &AnyPool)> {
        match self.backend {
            Backend::Sqlite => vec![("read", &self.read), ("write", &self.write)],
            Backend::Postgres => vec![("write", &self.write)],
        }
    }

    pub fn pool_gauges(&self) -> Vec<PoolGauge> {
        self.pools()
            .into_iter()
            .map(|(name, pool)| PoolGauge {
                name,
                open: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
                max: pool.options().get_max_connections(),
            })
            .collect()
    }

    /// How long taking a connection from each pool takes now: what a request waits before its
    /// first query when the pools are busy.
    pub async fn probe_pool_waits(&self) -> Vec<(&'static str, Result<Duration>)> {
        let mut waits = Vec::new();
        for (name, pool) in self.pools() {
            let started = Instant::now();
            let taken = pool.acquire().await.map(|_| started.elapsed());
            waits.push((name, taken.map_err(Into::into)));
        }
        waits
    }

    pub fn read_cache_counts(&self) -> CacheCounts {
        self.read_cache.counts()
    }

    /// Pending webhook deliveries per kind of environment, all apps together.
    pub async fn webhook_backlog(&self) -> Result<Vec<WebhookBacklog>> {
        let rows = sqlx::query(
            "SELECT d.env AS env, COUNT(*) AS pending, MIN(e.created_at) AS oldest \
             FROM webhook_deliveries d JOIN events e ON e.id = d.event_id \
             WHERE d.status = 'pending' GROUP BY d.env",
        )
        .fetch_all(self.reads().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(WebhookBacklog {
                    env: env(row, "env")?,
                    pending: int(row, "pending")?,
                    oldest_event_at: opt_ts(row, "oldest")?,
                })
            })
            .collect()
    }

    /// Emails waiting to be sent, all apps together.
    pub async fn emails_queued(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM emails WHERE status = 'queued'")
            .fetch_one(self.reads().await?)
            .await?;
        int(&row, "n")
    }
}
