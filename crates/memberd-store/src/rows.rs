//! Reading rows back into domain types. Stored values were valid when written; a value that
//! no longer parses is reported as `Corrupt`, never as a panic.

use memberd_core::{Environment, Timestamp};
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Result, StoreError};

/// A row of either driver: the hot reads on SQLite go to rusqlite directly (see `reads`),
/// everything else through sqlx; the domain types are read back from both by the same code.
pub(crate) trait Columns {
    fn opt_text(&self, column: &str) -> Result<Option<String>>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>>;
}

impl Columns for AnyRow {
    fn opt_text(&self, column: &str) -> Result<Option<String>> {
        Ok(self.try_get::<Option<String>, _>(column)?)
    }

    fn opt_int(&self, column: &str) -> Result<Option<i64>> {
        Ok(self.try_get::<Option<i64>, _>(column)?)
    }
}

fn not_null<T>(value: Option<T>, column: &str) -> Result<T> {
    value.ok_or_else(|| StoreError::Corrupt(format!("{column}: unexpected NULL")))
}

pub(crate) fn text<R: Columns + ?Sized>(row: &R, column: &str) -> Result<String> {
    not_null(row.opt_text(column)?, column)
}

pub(crate) fn opt_text<R: Columns + ?Sized>(row: &R, column: &str) -> Result<Option<String>> {
    row.opt_text(column)
}

pub(crate) fn int<R: Columns + ?Sized>(row: &R, column: &str) -> Result<i64> {
    not_null(row.opt_int(column)?, column)
}

pub(crate) fn flag<R: Columns + ?Sized>(row: &R, column: &str) -> Result<bool> {
    Ok(int(row, column)? != 0)
}

pub(crate) fn ts<R: Columns + ?Sized>(row: &R, column: &str) -> Result<Timestamp> {
    Ok(Timestamp::from_micros(int(row, column)?))
}

pub(crate) fn opt_ts<R: Columns + ?Sized>(row: &R, column: &str) -> Result<Option<Timestamp>> {
    Ok(row.opt_int(column)?.map(Timestamp::from_micros))
}

pub(crate) fn env<R: Columns + ?Sized>(row: &R, column: &str) -> Result<Environment> {
    let s = text(row, column)?;
    s.parse().map_err(StoreError::Corrupt)
}

/// Parses a stored enum with the given parser.
pub(crate) fn parsed<T, R: Columns + ?Sized>(
    row: &R,
    column: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T> {
    let s = text(row, column)?;
    parse(&s).ok_or_else(|| StoreError::Corrupt(format!("{column}: unknown value {s:?}")))
}

pub(crate) fn json_value<R: Columns + ?Sized>(row: &R, column: &str) -> Result<Value> {
    let s = text(row, column)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

pub(crate) fn opt_json_value<R: Columns + ?Sized>(row: &R, column: &str) -> Result<Option<Value>> {
    match opt_text(row, column)? {
        None => Ok(None),
        Some(s) => serde_json::from_str(&s)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("{column}: {e}"))),
    }
}

pub(crate) fn json_object<R: Columns + ?Sized>(
    row: &R,
    column: &str,
) -> Result<Map<String, Value>> {
    match json_value(row, column)? {
        Value::Object(map) => Ok(map),
        _ => Err(StoreError::Corrupt(format!("{column}: not an object"))),
    }
}

pub(crate) fn string_list<R: Columns + ?Sized>(row: &R, column: &str) -> Result<Vec<String>> {
    let s = text(row, column)?;
    serde_json::from_str(&s).map_err(|e| StoreError::Corrupt(format!("{column}: {e}")))
}

pub(crate) fn to_json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    // Serialising plain maps, vectors and values cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

pub(crate) fn opt_micros(t: Option<Timestamp>) -> Option<i64> {
    t.map(Timestamp::as_micros)
}

/// Maps a unique violation to `Duplicate`, naming the field the constraint guards.
pub(crate) fn unique_violation(err: sqlx::Error, fields: &[(&str, &'static str)]) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        if db.is_unique_violation() {
            // PostgreSQL names the constraint; SQLite names the columns in its message.
            let haystack = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
            for (needle, field) in fields {
                if haystack.contains(needle) {
                    return StoreError::Duplicate { field };
                }
            }
        }
    }
    StoreError::Database(err)
}
