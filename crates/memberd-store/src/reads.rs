//! The read path of the hottest requests (key lookups, access checks, member reads and list
//! pages). On SQLite it bypasses sqlx: sqlx runs each SQLite connection on a thread of its
//! own and hands every query and row across threads, and under load the profile of an access
//! check was mostly those hand-offs (futex wake-ups and context switches), not SQLite. An
//! indexed read takes microseconds, so these run on the calling thread over a small pool of
//! read-only rusqlite connections. Everything else, and every read on PostgreSQL, stays on
//! sqlx; the SQL text and the code that turns rows into domain types are shared.
//!
//! A read connection keeps its read transaction open after use for as long as nothing has
//! committed since it began (`wal_index` tells), and the next request reads in it: beginning
//! and ending a transaction per request cost about a sixth of a read in lock traffic. An idle
//! connection gives its snapshot up after `IDLE_SNAPSHOT_LIFETIME`, so that checkpoints are
//! not held back.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Weak};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use sqlx::AnyConnection;

use crate::rows::Columns;
use crate::sql::{Arg, Sql};
use crate::wal_index::{Header, WalIndex};
use crate::{Result, StoreError};

/// How many idle connections are kept; more are opened while more requests read at once.
const IDLE_CONNECTIONS: usize = 8;

/// How long an idle connection may keep its snapshot.
const IDLE_SNAPSHOT_LIFETIME: Duration = Duration::from_millis(100);

/// A rusqlite row with its statement's column names, read once per statement: rusqlite's own
/// lookup by name asks SQLite for every name (and measures it) on every call.
struct NamedRow<'a> {
    row: &'a rusqlite::Row<'a>,
    names: &'a [String],
    /// Where the search for the next column starts: rows are mostly read in the order of
    /// their columns, so the next one asked for is usually the one after the last found (a
    /// contract has 31 columns, and searching each from the start showed in the profile).
    next: Cell<usize>,
}

impl NamedRow<'_> {
    fn index(&self, column: &str) -> Result<usize> {
        let start = self.next.get().min(self.names.len());
        let (before, after) = self.names.split_at(start);
        let found = match after.iter().position(|name| name == column) {
            Some(i) => start + i,
            None => before
                .iter()
                .position(|name| name == column)
                .ok_or_else(|| StoreError::Corrupt(format!("no column {column}")))?,
        };
        self.next.set(found + 1);
        Ok(found)
    }
}

impl Columns for NamedRow<'_> {
    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        Ok(self.row.get::<_, Option<String>>(self.index(column)?)?)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        Ok(self.row.get::<_, Option<i64>>(self.index(column)?)?)
    }
}

/// A read connection of the pool and the snapshot it keeps open between uses.
struct ReadConnection {
    conn: rusqlite::Connection,
    /// The WAL-index header as it was just before the open read transaction began: while the
    /// header is unchanged, no commit has happened since, so the snapshot is the latest.
    /// `None` when no transaction is open, or when the one open is not to be kept (there is no
    /// WAL index to check it against).
    snapshot: Option<Header>,
    idle_since: Instant,
    names: ColumnNames,
}

/// Connections of this process's own to the SQLite file: read-only ones for the hot reads,
/// and a writer for bulk loads (`import_sqlite`).
pub(crate) struct DirectSqlite {
    path: PathBuf,
    idle: Mutex<Vec<ReadConnection>>,
    writer: Mutex<Option<rusqlite::Connection>>,
    /// `None` when snapshots cannot be checked; then each use begins and ends its own.
    wal: Option<WalIndex>,
    /// Held open so that the `-shm` file `wal` reads stays the live one: SQLite deletes it
    /// when the last connection to the database closes, and makes a new one on the next open.
    _anchor: Option<Mutex<rusqlite::Connection>>,
}

impl DirectSqlite {
    /// For the file a `sqlite:` URL names; `None` for an in-memory database, which other
    /// connections cannot see. Call it once the database is open in WAL mode.
    pub(crate) fn for_url(url: &str) -> Option<DirectSqlite> {
        let path = crate::backup::sqlite_file(url)?;
        let anchor = open_read_only(&path).ok();
        let wal = anchor.as_ref().and_then(|_| WalIndex::open(&path));
        Some(DirectSqlite {
            path,
            idle: Mutex::new(Vec::new()),
            writer: Mutex::new(None),
            wal,
            _anchor: anchor.map(Mutex::new),
        })
    }

    /// Runs `write` on this process's writer connection, opened on first use. It waits for
    /// other writers (the server's, another command's) through SQLite's busy timeout. A large
    /// cache keeps a big table's index pages in memory across the batches of a bulk load.
    pub(crate) fn with_writer<T>(
        &self,
        write: impl FnOnce(&mut rusqlite::Connection) -> Result<T>,
    ) -> Result<T> {
        let mut slot = self
            .writer
            .lock()
            .map_err(|_| StoreError::Sqlite("the writer connection was poisoned".into()))?;
        let conn = match &mut *slot {
            Some(conn) => conn,
            None => {
                let conn = rusqlite::Connection::open(&self.path)?;
                conn.busy_timeout(std::time::Duration::from_secs(30))?;
                conn.execute_batch(
                    "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA cache_size = -262144; PRAGMA wal_autocheckpoint = 16384;",
                )?;
                slot.insert(conn)
            }
        };
        write(conn)
    }

    /// Runs `sql` and turns each row into a `T`.
    pub(crate) fn rows<T>(
        &self,
        sql: &Sql,
        map: impl Fn(&dyn Columns) -> Result<T>,
    ) -> Result<Vec<T>> {
        let mut conn = self.take()?;
        let result = run(&conn.conn, &mut conn.names, sql, map);
        self.give_back(conn, result.is_ok());
        result
    }

    /// The WAL-index header as it is now: it changes with every commit, from any process.
    /// `None` when it cannot be read, which callers take as "changed".
    pub(crate) fn wal_header(&self) -> Option<Header> {
        self.wal.as_ref().and_then(WalIndex::header)
    }

    /// A connection in a read transaction that sees every commit made before this call.
    fn take(&self) -> Result<ReadConnection> {
        let header = self.wal_header();
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut conn = match pooled {
            Some(conn) => conn,
            None => ReadConnection {
                conn: open_read_only(&self.path)?,
                snapshot: None,
                idle_since: Instant::now(),
                names: ColumnNames::default(),
            },
        };
        if conn.snapshot.is_some() && conn.snapshot == header {
            return Ok(conn);
        }
        if conn.snapshot.take().is_some() {
            conn.conn.execute_batch("COMMIT")?;
        }
        conn.conn.execute_batch("BEGIN")?;
        conn.snapshot = header;
        Ok(conn)
    }

    /// Returns a connection after use; one whose use failed is closed instead, so that no
    /// transaction in an unknown state is reused.
    fn give_back(&self, mut conn: ReadConnection, healthy: bool) {
        if !healthy {
            return;
        }
        if conn.snapshot.is_none() && conn.conn.execute_batch("COMMIT").is_err() {
            return;
        }
        conn.idle_since = Instant::now();
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE_CONNECTIONS {
                idle.push(conn);
            }
        }
    }

    /// Ends the snapshots of connections idle for longer than `idle_for`. A snapshot keeps
    /// the WAL from being checkpointed past it, so one must not outlive a quiet spell while
    /// another process (an import, say) writes.
    pub(crate) fn end_idle_snapshots(&self, idle_for: Duration) {
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        idle.retain_mut(|conn| {
            if conn.snapshot.is_none() || conn.idle_since.elapsed() < idle_for {
                return true;
            }
            conn.snapshot = None;
            conn.conn.execute_batch("COMMIT").is_ok()
        });
    }
}

/// Ends idle snapshots every `IDLE_SNAPSHOT_LIFETIME` for as long as the connections live.
pub(crate) async fn end_idle_snapshots(direct: Weak<DirectSqlite>) {
    let mut ticks = tokio::time::interval(IDLE_SNAPSHOT_LIFETIME);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(direct) = direct.upgrade() else {
            return;
        };
        direct.end_idle_snapshots(IDLE_SNAPSHOT_LIFETIME);
    }
}

fn open_read_only(path: &Path) -> Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
    Ok(conn)
}

/// Several direct reads on one connection: they see one snapshot (a member and their
/// connections as they were at one moment).
pub(crate) struct Session<'a> {
    direct: &'a DirectSqlite,
    conn: Option<ReadConnection>,
    healthy: bool,
}

impl<'a> Session<'a> {
    pub(crate) fn new(direct: &'a DirectSqlite) -> Self {
        Session {
            direct,
            conn: None,
            healthy: true,
        }
    }

    fn rows<T>(&mut self, sql: &Sql, map: impl Fn(&dyn Columns) -> Result<T>) -> Result<Vec<T>> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            slot @ None => slot.insert(self.direct.take()?),
        };
        let result = run(&conn.conn, &mut conn.names, sql, map);
        self.healthy &= result.is_ok();
        result
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.direct.give_back(conn, self.healthy);
        }
    }
}

/// The column names of each statement a connection has run, by SQL text: copying them out
/// of SQLite on every query was a String per column per request. The texts run to hundreds
/// of bytes, which the standard library's SipHash showed in the profile; FxHash is several
/// times cheaper, and the keys are our own SQL, not input an attacker picks.
type ColumnNames = FxHashMap<String, Vec<String>>;

/// How many statements a connection keeps prepared, and the names of.
const STATEMENTS_KEPT: usize = 64;

fn run<T>(
    conn: &rusqlite::Connection,
    names: &mut ColumnNames,
    sql: &Sql,
    map: impl Fn(&dyn Columns) -> Result<T>,
) -> Result<Vec<T>> {
    let mut statement = conn.prepare_cached(sql.as_str())?;
    // Placeholders are numbered in the order they first appear, so `$n` binds at index n.
    for (i, arg) in sql.args().iter().enumerate() {
        match arg {
            Arg::Text(s) => statement.raw_bind_parameter(i + 1, s.as_str())?,
            Arg::Int(n) => statement.raw_bind_parameter(i + 1, n)?,
            Arg::NullText | Arg::NullInt => {
                statement.raw_bind_parameter(i + 1, rusqlite::types::Null)?
            }
        }
    }
    let key = sql.as_str();
    if names
        .get(key)
        .is_none_or(|known| known.len() != statement.column_count())
    {
        if names.len() >= STATEMENTS_KEPT {
            names.clear();
        }
        let found = statement.column_names().into_iter().map(str::to_owned);
        names.insert(key.to_owned(), found.collect());
    }
    let names = &names[key];
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(&NamedRow {
            row,
            names,
            next: Cell::new(0),
        })?);
    }
    Ok(out)
}

/// Where a read goes: a connection of sqlx (a pooled one, or a transaction's), or the
/// direct SQLite reads.
pub(crate) enum Reader<'a> {
    Any(&'a mut AnyConnection),
    Sqlite(Box<Session<'a>>),
}

impl Reader<'_> {
    pub(crate) async fn rows<T>(
        &mut self,
        sql: &Sql,
        map: impl Fn(&dyn Columns) -> Result<T>,
    ) -> Result<Vec<T>> {
        match self {
            Reader::Sqlite(session) => session.rows(sql, map),
            Reader::Any(conn) => {
                let rows = sql.query().fetch_all(&mut **conn).await?;
                rows.iter().map(|row| map(row)).collect()
            }
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Sqlite(err.to_string())
    }
}
