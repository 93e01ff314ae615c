//! Backups of a SQLite database while it runs, and the check a restore makes of one. A file
//! copy of a live WAL database can miss what the WAL holds or catch a page half written;
//! `VACUUM INTO` writes a consistent copy from one read snapshot, without stopping writers.

use std::path::{Path, PathBuf};

use crate::{Backend, Result, Store, StoreError};

/// The file of a `sqlite:` URL; `None` for an in-memory database or another backend.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, options) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || options.contains("mode=memory") {
        return None;
    }
    Some(PathBuf::from(path))
}

impl Store {
    /// Writes a consistent copy of the database to `to`, which must not exist yet. SQLite
    /// only: PostgreSQL is backed up with its own tools.
    pub async fn backup_to(&self, to: &Path) -> Result<()> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::Unsupported(
                "memberd backup copies SQLite databases; back PostgreSQL up with pg_dump",
            ));
        }
        let to = to
            .to_str()
            .ok_or(StoreError::Unsupported("the backup's path must be UTF-8"))?;
        // A reader's snapshot: writers go on while the copy is made.
        sqlx::query("VACUUM INTO $1")
            .bind(to)
            .execute(&self.read)
            .await?;
        Ok(())
    }
}

/// Whether `path` is a sound memberd database: SQLite's integrity check passes and memberd's
/// schema is there; what is wrong, if not. Read only: the file is not changed.
pub fn check_backup(path: &Path) -> std::result::Result<(), String> {
    use rusqlite::OpenFlags;
    let not_sqlite = |e: rusqlite::Error| format!("not a SQLite database ({e})");
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(not_sqlite)?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .map_err(not_sqlite)?;
    if integrity != "ok" {
        return Err(format!("SQLite's integrity check failed: {integrity}"));
    }
    let tables: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
             AND name IN ('_sqlx_migrations', 'apps', 'members')",
            [],
            |row| row.get(0),
        )
        .map_err(not_sqlite)?;
    if tables != 3 {
        return Err(
            "a SQLite database, but not memberd's (it has no apps, members or migrations)".into(),
        );
    }
    Ok(())
}
