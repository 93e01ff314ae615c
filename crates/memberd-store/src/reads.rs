//! The read path of the hottest requests (key lookups, access checks, member reads and list
//! pages). On SQLite it bypasses sqlx: sqlx runs each SQLite connection on a thread of its
//! own and hands every query and row across threads, and under load the profile of an access
//! check was mostly those hand-offs (futex wake-ups and context switches), not SQLite. An
//! indexed read takes microseconds, so these run on the calling thread over a small pool of
//! read-only rusqlite connections. Everything else, and every read on PostgreSQL, stays on
//! sqlx; the SQL text and the code that turns rows into domain types are shared.

use std::path::PathBuf;
use std::sync::Mutex;

use sqlx::AnyConnection;

use crate::rows::Columns;
use crate::sql::{Arg, Sql};
use crate::{Result, StoreError};

/// How many idle connections are kept; more are opened while more requests read at once.
const IDLE_CONNECTIONS: usize = 8;

/// A rusqlite row with its statement's column names, read once per statement: rusqlite's own
/// lookup by name asks SQLite for every name (and measures it) on every call.
struct NamedRow<'a> {
    row: &'a rusqlite::Row<'a>,
    names: &'a [String],
}

impl NamedRow<'_> {
    fn index(&self, column: &str) -> Result<usize> {
        self.names
            .iter()
            .position(|name| name == column)
            .ok_or_else(|| StoreError::Corrupt(format!("no column {column}")))
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

/// Connections of this process's own to the SQLite file: read-only ones for the hot reads,
/// and a writer for bulk loads (`import_sqlite`).
pub(crate) struct DirectSqlite {
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
    writer: Mutex<Option<rusqlite::Connection>>,
}

impl DirectSqlite {
    /// For the file a `sqlite:` URL names; `None` for an in-memory database, which other
    /// connections cannot see.
    pub(crate) fn for_url(url: &str) -> Option<DirectSqlite> {
        let rest = url.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, options) = rest.split_once('?').unwrap_or((rest, ""));
        if path.is_empty() || path == ":memory:" || options.contains("mode=memory") {
            return None;
        }
        Some(DirectSqlite {
            path: PathBuf::from(path),
            idle: Mutex::new(Vec::new()),
            writer: Mutex::new(None),
        })
    }

    fn open(&self) -> Result<rusqlite::Connection> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
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
        let conn = self.take()?;
        let result = run(&conn, sql, map);
        self.give_back(conn);
        result
    }

    fn take(&self) -> Result<rusqlite::Connection> {
        match self.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            Some(conn) => Ok(conn),
            None => self.open(),
        }
    }

    fn give_back(&self, conn: rusqlite::Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE_CONNECTIONS {
                idle.push(conn);
            }
        }
    }
}

/// Several direct reads in one read transaction: they see one snapshot (a member and their
/// connections as they were at one moment), and SQLite starts and ends its WAL read, which
/// takes file locks, once rather than per query (about a sixth of a member retrieve's time).
pub(crate) struct Session<'a> {
    direct: &'a DirectSqlite,
    conn: Option<rusqlite::Connection>,
}

impl<'a> Session<'a> {
    pub(crate) fn new(direct: &'a DirectSqlite) -> Self {
        Session { direct, conn: None }
    }

    fn rows<T>(&mut self, sql: &Sql, map: impl Fn(&dyn Columns) -> Result<T>) -> Result<Vec<T>> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            slot @ None => {
                let conn = self.direct.take()?;
                if let Err(err) = conn.execute_batch("BEGIN") {
                    self.direct.give_back(conn);
                    return Err(err.into());
                }
                slot.insert(conn)
            }
        };
        run(conn, sql, map)
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // A read transaction: ending it cannot lose anything; a connection that cannot end
            // it is not reused.
            if conn.execute_batch("COMMIT").is_ok() {
                self.direct.give_back(conn);
            }
        }
    }
}

fn run<T>(
    conn: &rusqlite::Connection,
    sql: &Sql,
    map: impl Fn(&dyn Columns) -> Result<T>,
) -> Result<Vec<T>> {
    let mut statement = conn.prepare_cached(sql.as_str())?;
    // Placeholders are numbered in the order they first appear, so `$n` binds at index n.
    for (i, arg) in sql.args().iter().enumerate() {
        match arg {
            Arg::Text(s) => statement.raw_bind_parameter(i + 1, s.as_str())?,
            Arg::Int(n) => statement.raw_bind_parameter(i + 1, n)?,
        }
    }
    let names: Vec<String> = statement
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(&NamedRow { row, names: &names })?);
    }
    Ok(out)
}

/// Where a read goes: a connection of sqlx (a pooled one, or a transaction's), or the
/// direct SQLite reads.
pub(crate) enum Reader<'a> {
    Any(&'a mut AnyConnection),
    Sqlite(Session<'a>),
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
