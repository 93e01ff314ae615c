//! Bulk loading of members (`memberd import`): many rows per statement, many statements per
//! transaction, and no events: a load from another platform must not announce a million
//! members to the webhook endpoints.

use std::collections::HashSet;
use std::fmt::Write;

use memberd_core::{Member, Scope};
use sqlx::Row;

use crate::members::count_members;
use crate::rows::to_json;
use crate::sql::Sql;
use crate::{Backend, Result, Store};

/// Rows in one INSERT, each with `PER_ROW` placeholders: well under SQLite's limit of 32,766
/// variables and PostgreSQL's 65,535.
const ROWS_PER_STATEMENT: usize = 1_000;
const PER_ROW: usize = 16;
const _: () = assert!(ROWS_PER_STATEMENT * PER_ROW <= 32_766);

const INSERT_HEAD: &str = "INSERT INTO members (id, app_id, env, email, password_hash, verified, \
    custom_fields, meta_data, json, login_redirect, profile_image, stripe_customer_id, external_id, \
    permissions, created_at, updated_at) VALUES ";

/// `INSERT … VALUES (…), (…) … ON CONFLICT DO NOTHING` for `rows` rows.
///
/// SQLite gets anonymous `?` placeholders: it looks a numbered or named one up by a linear scan
/// of every name in the statement, so that binding 16,000 `$N` takes seconds a statement.
pub(crate) fn insert_sql(backend: Backend, rows: usize) -> String {
    let mut sql = String::with_capacity(INSERT_HEAD.len() + rows * PER_ROW * 7 + 40);
    sql.push_str(INSERT_HEAD);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..PER_ROW {
            if column > 0 {
                sql.push_str(", ");
            }
            match backend {
                Backend::Sqlite => sql.push('?'),
                Backend::Postgres => {
                    let _ = write!(sql, "${}", row * PER_ROW + column + 1);
                }
            }
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT DO NOTHING");
    sql
}

impl Store {
    /// Refreshes the planner's statistics of the members table after a bulk load. Until
    /// PostgreSQL's autovacuum gets to it (up to a minute or more), the planner takes a freshly
    /// loaded table for empty and picks plans that scan it: reads of single members ran at a
    /// fifteenth of their speed after importing 20,000. SQLite's planner needs no statistics
    /// for the lookups memberd makes.
    pub async fn analyze_members(&self) -> Result<()> {
        if self.backend == Backend::Postgres {
            sqlx::query("ANALYZE members")
                .execute(self.writer().await?)
                .await?;
        }
        Ok(())
    }

    /// Inserts members into the scope in one transaction, without events. A member whose
    /// email or externalId is already taken in the scope (also by an earlier member of the
    /// same slice) is skipped whole; the answer lists those, by index in `members`, with the
    /// wire name of the field that is taken. Every other member is written whole.
    pub async fn import_members(
        &self,
        scope: &Scope,
        members: &[Member],
    ) -> Result<Vec<(usize, &'static str)>> {
        // On a SQLite file, straight through rusqlite (see `import_sqlite`). It blocks this
        // thread for the batch: fine for the command it serves, which waits for it anyway.
        // What follows serves PostgreSQL (and an in-memory SQLite database).
        if let Some(direct) = &self.fast {
            return crate::import_sqlite::import(direct, scope, members);
        }
        let mut tx = self.begin_write().await?;
        let mut skipped = Vec::new();
        let mut full_sql: Option<String> = None;
        for (chunk_no, chunk) in members.chunks(ROWS_PER_STATEMENT).enumerate() {
            // One statement shape for every full chunk, so it is prepared once and cached.
            let partial_sql;
            let sql = if chunk.len() == ROWS_PER_STATEMENT {
                full_sql.get_or_insert_with(|| insert_sql(self.backend, ROWS_PER_STATEMENT))
            } else {
                partial_sql = insert_sql(self.backend, chunk.len());
                &partial_sql
            };
            let mut query = sqlx::query(sql);
            for m in chunk {
                query = query
                    .bind(m.id.as_str())
                    .bind(scope.app_id.as_str())
                    .bind(scope.env.as_str())
                    .bind(m.email.as_str())
                    .bind(m.password_hash.as_deref())
                    .bind(i64::from(m.verified))
                    .bind(to_json(&m.custom_fields))
                    .bind(to_json(&m.meta_data))
                    .bind(m.json.as_ref().map(to_json))
                    .bind(m.login_redirect.as_deref())
                    .bind(m.profile_image.as_deref())
                    .bind(m.stripe_customer_id.as_deref())
                    .bind(m.external_id.as_deref())
                    .bind(to_json(&m.permissions))
                    .bind(m.created_at.as_micros())
                    .bind(m.updated_at.as_micros());
            }
            let inserted = query.execute(&mut *tx).await?.rows_affected();
            if usize::try_from(inserted).is_ok_and(|n| n == chunk.len()) {
                continue;
            }
            // Rare: look up which rows went in, rather than have every row of every statement
            // sent back (RETURNING costs a message per row between sqlx's SQLite thread and us).
            let ids = inserted_ids(&mut tx, chunk).await?;
            let offset = chunk_no * ROWS_PER_STATEMENT;
            let missing: Vec<(usize, &Member)> = chunk
                .iter()
                .enumerate()
                .filter(|(_, m)| !ids.contains(m.id.as_str()))
                .map(|(i, m)| (offset + i, m))
                .collect();
            let taken_emails = existing_emails(&mut tx, scope, &missing).await?;
            for (index, m) in missing {
                let field = if taken_emails.contains(m.email.as_str()) {
                    "email"
                } else {
                    "externalId"
                };
                skipped.push((index, field));
            }
        }
        let inserted = members.len() - skipped.len();
        if inserted > 0 {
            count_members(&mut tx, self.backend, scope, inserted as i64).await?;
        }
        tx.commit().await?;
        self.read_cache.changed_here(scope, &self.write).await;
        Ok(skipped)
    }
}

/// Which of the members are in the table: those a statement inserted (ids are new, so a
/// member found by id is one just written).
async fn inserted_ids(
    conn: &mut sqlx::AnyConnection,
    members: &[Member],
) -> Result<HashSet<String>> {
    let mut sql = Sql::new("SELECT id FROM members WHERE id");
    sql.in_list(members.iter().map(|m| m.id.as_str()));
    let mut found = HashSet::new();
    for row in sql.query().fetch_all(&mut *conn).await? {
        found.insert(row.try_get::<String, _>(0)?);
    }
    Ok(found)
}

/// Which of the members' emails the scope holds: a skipped member whose email is not among
/// them was skipped for its externalId.
async fn existing_emails(
    conn: &mut sqlx::AnyConnection,
    scope: &Scope,
    members: &[(usize, &Member)],
) -> Result<HashSet<String>> {
    let mut found = HashSet::new();
    for chunk in members.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new("SELECT email FROM members WHERE app_id = ");
        sql.text(scope.app_id.as_str())
            .push(" AND env = ")
            .text(scope.env.as_str())
            .push(" AND email")
            .in_list(chunk.iter().map(|(_, m)| m.email.as_str()));
        for row in sql.query().fetch_all(&mut *conn).await? {
            found.insert(row.try_get::<String, _>(0)?);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_its_own_placeholders() {
        let sql = insert_sql(Backend::Postgres, 2);
        assert!(sql.contains("VALUES ($1, $2, $3,"), "{sql}");
        assert!(sql.contains("$16), ($17, $18,"), "{sql}");
        assert!(sql.ends_with("$32) ON CONFLICT DO NOTHING"), "{sql}");
        let sql = insert_sql(Backend::Sqlite, 2);
        assert_eq!(sql.matches('?').count(), 2 * PER_ROW);
    }
}
