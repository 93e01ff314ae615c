use std::str::FromStr;
use std::sync::{Arc, Once};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Connection, Executor};

use crate::key_cache::{KeyCache, TtlCache};
use crate::read_cache::ReadCache;
use crate::reads::{end_idle_snapshots, DirectSqlite, Reader, Session};
use crate::rows::Columns;
use crate::sql::Sql;
use crate::{Result, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::InvalidUrl(
                "expected sqlite:PATH or postgres://USER@HOST/DB".into(),
            ))
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// The store. Cheap to clone; clones share the pools.
#[derive(Clone)]
pub struct Store {
    /// Reads. On SQLite, several connections read side by side in WAL mode.
    pub(crate) read: AnyPool,
    /// Writes. On SQLite, one connection, so that writers queue in the pool instead of failing
    /// with SQLITE_BUSY; on PostgreSQL, the same pool as `read`.
    pub(crate) write: AnyPool,
    pub(crate) backend: Backend,
    /// On SQLite, the hot reads on the caller's thread (see `reads`).
    pub(crate) fast: Option<Arc<DirectSqlite>>,
    /// Keys recently looked up (see `key_cache`).
    pub(crate) keys: Arc<KeyCache>,
    /// Publishable keys recently looked up, with their environments' settings.
    pub(crate) client_envs: Arc<TtlCache<Option<Arc<crate::ClientEnv>>>>,
    /// Every environment's allowed origins, for CORS preflights.
    pub(crate) all_origins: Arc<TtlCache<Arc<Vec<Vec<memberd_core::account::OriginPattern>>>>>,
    /// The hottest reads, once `start_read_cache` is called (see `read_cache`).
    pub(crate) read_cache: Arc<ReadCache>,
}

static DRIVERS: Once = Once::new();

/// How a store connects, beyond its URL.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// The most connections the store keeps open to PostgreSQL (SQLite has its own fixed
    /// pools). Several nodes over one database share what it serves well, which on a small
    /// machine is a few connections per core, not this many per node.
    pub postgres_connections: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            postgres_connections: 16,
        }
    }
}

/// A pooled connection idle for longer than this is pinged before it is handed out.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// Pings a pooled connection before use only when it has been idle for a while. sqlx's
/// default pings on every acquire: on PostgreSQL a round trip to the server before every
/// query (the access check's profile was mostly the wake-ups of those round trips), on
/// SQLite a hop to the connection's thread and back. A connection in steady use is known to
/// be alive; one that has sat idle may have been dropped by the server or a proxy.
fn pinged_when_idle(options: AnyPoolOptions) -> AnyPoolOptions {
    options
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for > PING_WHEN_IDLE_FOR {
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

impl Store {
    /// Opens the database named by `url` (`sqlite:memberd.db`, `postgres://…`). A SQLite file
    /// is created when missing. Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &str) -> Result<Store> {
        Store::connect_with(url, StoreOptions::default()).await
    }

    /// [`Store::connect`] with `options`.
    pub async fn connect_with(url: &str, options: StoreOptions) -> Result<Store> {
        let StoreOptions {
            postgres_connections,
        } = options;
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = Backend::from_url(url)?;
        match backend {
            Backend::Sqlite => {
                let url = if url.contains("mode=") {
                    url.to_owned()
                } else if url.contains('?') {
                    format!("{url}&mode=rwc")
                } else {
                    format!("{url}?mode=rwc")
                };
                let options = AnyConnectOptions::from_str(&url)
                    .map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
                let pool = |max: u32| {
                    pinged_when_idle(AnyPoolOptions::new())
                        .max_connections(max)
                        .min_connections(1)
                        .acquire_timeout(Duration::from_secs(30))
                        .after_connect(|conn, _meta| {
                            Box::pin(async move {
                                for pragma in [
                                    "PRAGMA journal_mode = WAL",
                                    "PRAGMA synchronous = NORMAL",
                                    "PRAGMA busy_timeout = 5000",
                                    "PRAGMA foreign_keys = ON",
                                ] {
                                    conn.execute(pragma).await?;
                                }
                                Ok(())
                            })
                        })
                };
                // The writer connects first so that WAL mode is set before readers open.
                let write = pool(1).connect_with(options.clone()).await?;
                let read = pool(8).connect_with(options).await?;
                let fast = DirectSqlite::for_url(&url).map(Arc::new);
                if let Some(fast) = &fast {
                    tokio::spawn(end_idle_snapshots(Arc::downgrade(fast)));
                }
                let read_cache = Arc::new(ReadCache::for_sqlite(fast.clone()));
                Ok(Store {
                    read,
                    write,
                    backend,
                    fast,
                    keys: Arc::default(),
                    client_envs: Arc::default(),
                    all_origins: Arc::default(),
                    read_cache,
                })
            }
            Backend::Postgres => {
                let options = AnyConnectOptions::from_str(url)
                    .map_err(|e| StoreError::InvalidUrl(e.to_string()))?;
                let pool = pinged_when_idle(AnyPoolOptions::new())
                    .max_connections(postgres_connections.max(1))
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _meta| {
                        // The store tells other nodes of its changes itself, after commit;
                        // the triggers of migration 0013 stay quiet for its connections.
                        Box::pin(async move {
                            // Named, so that an operator's pg_stat_activity says whose it is.
                            conn.execute(
                                "SELECT set_config('memberd.store', 'on', false), \
                                 set_config('application_name', 'memberd', false)",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?;
                Ok(Store {
                    read: pool.clone(),
                    write: pool,
                    backend,
                    fast: None,
                    keys: Arc::default(),
                    client_envs: Arc::default(),
                    all_origins: Arc::default(),
                    read_cache: Arc::new(ReadCache::for_postgres(url)),
                })
            }
        }
    }

    /// The rows of a hot read: on SQLite on this thread, else through the read pool.
    pub(crate) async fn read_rows<T>(
        &self,
        sql: &Sql,
        map: impl Fn(&dyn Columns) -> Result<T>,
    ) -> Result<Vec<T>> {
        self.flush_held().await?;
        if let Some(fast) = &self.fast {
            return fast.rows(sql, map);
        }
        let mut conn = self.read.acquire().await?;
        // Bound before returning: the reader borrows `conn` and must be dropped first.
        let rows = Reader::Any(&mut conn).rows(sql, map).await;
        rows
    }

    /// Where a hot read of several queries goes; `slot` holds the pooled connection, if one
    /// is needed, for as long as the reader lives.
    pub(crate) async fn reader<'a>(
        &'a self,
        slot: &'a mut Option<PoolConnection<Any>>,
    ) -> Result<Reader<'a>> {
        self.flush_held().await?;
        Ok(match &self.fast {
            Some(fast) => Reader::Sqlite(Box::new(Session::new(fast))),
            None => Reader::Any(slot.insert(self.read.acquire().await?)),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Brings the schema up to date. Safe to run from several nodes at once on PostgreSQL
    /// (sqlx takes an advisory lock).
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.write)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.write)
                    .await?
            }
        }
        Ok(())
    }

    /// The migrations `migrate` would run now, oldest first, as (version, description).
    pub async fn pending_migrations(&self) -> Result<Vec<(i64, String)>> {
        let migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        let applied: Vec<i64> =
            match sqlx::query_scalar::<_, i64>("SELECT version FROM _sqlx_migrations")
                .fetch_all(&self.read)
                .await
            {
                Ok(versions) => versions,
                // A database memberd has never migrated has no table of migrations yet.
                Err(sqlx::Error::Database(_)) => Vec::new(),
                Err(other) => return Err(other.into()),
            };
        Ok(migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration() && !applied.contains(&m.version))
            .map(|m| (m.version, m.description.to_string()))
            .collect())
    }

    /// Answers whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Keeps the hottest reads in memory from now on, each for at most `lifetime` (see
    /// `read_cache`); on PostgreSQL, returns once the connection that listens for changes has
    /// heard this node, or failed to. The server calls this; tools that only write, or read
    /// once, need not. A zero lifetime keeps nothing; on PostgreSQL it still starts the task
    /// that tells other nodes of this one's changes (without it, each write tells them itself).
    pub async fn start_read_cache(&self, lifetime: Duration) {
        self.read_cache.start(lifetime).await;
    }

    /// Stops keeping reads in memory, and closes the connection that listens for changes.
    pub fn stop_read_cache(&self) {
        self.read_cache.stop();
    }

    /// Closes the pools, waiting for connections in use to be returned.
    pub async fn close(&self) {
        self.read_cache.stop_and_tell(&self.write).await;
        self.read.close().await;
        self.write.close().await;
    }
}

impl Store {
    /// Runs one statement outside any transaction, for set-up such as `CREATE DATABASE`
    /// in tests and tools.
    pub async fn execute_admin(&self, sql: &str) -> Result<()> {
        sqlx::query(sql).execute(&self.write).await?;
        Ok(())
    }
}
