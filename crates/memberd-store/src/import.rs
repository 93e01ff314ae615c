//! Bulk loading of members (`memberd import`): many rows per statement, many statements per
//! transaction, and no events: a load from another platform must not announce a million
//! members to the webhook endpoints.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use memberd_core::{ConnectionId, Member, PlanConnection, Scope};
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

    /// Inserts members and their plan connections into the scope in one transaction, without
    /// events. A member whose id, email or externalId is already taken (also by an earlier
    /// member of the same slice), or one of whose connections has an id already taken, is
    /// skipped whole; the answer lists those, by index in `members`, with what is taken.
    /// Every other member is written whole, with every connection that names them.
    pub async fn import_members(
        &self,
        scope: &Scope,
        members: &[Member],
        connections: &[PlanConnection],
    ) -> Result<Vec<(usize, Taken)>> {
        // On a SQLite file, members without connections go straight through rusqlite (see
        // `import_sqlite`). It blocks this thread for the batch: fine for the command it
        // serves, which waits for it anyway. What follows serves the rest.
        if let (Some(direct), true) = (&self.fast, connections.is_empty()) {
            return crate::import_sqlite::import(direct, scope, members);
        }
        let mut tx = self.begin_write().await?;
        let mut skipped = Vec::new();
        let mut excluded = HashSet::new();
        let taken_ids =
            existing_ids(&mut tx, "members", members.iter().map(|m| m.id.as_str())).await?;
        let mut seen = HashSet::new();
        for (i, m) in members.iter().enumerate() {
            if taken_ids.contains(m.id.as_str()) || !seen.insert(m.id.as_str()) {
                skipped.push((i, Taken::Id));
                excluded.insert(i);
            }
        }
        if !connections.is_empty() {
            let index: HashMap<&str, usize> = members
                .iter()
                .enumerate()
                .map(|(i, m)| (m.id.as_str(), i))
                .collect();
            let taken = existing_ids(
                &mut tx,
                "plan_connections",
                connections.iter().map(|c| c.id.as_str()),
            )
            .await?;
            let mut seen = HashSet::new();
            for c in connections {
                let clash = taken.contains(c.id.as_str()) || !seen.insert(c.id.as_str());
                if let (true, Some(&i)) = (clash, index.get(c.member_id.as_str())) {
                    if excluded.insert(i) {
                        skipped.push((i, Taken::Connection(c.id.clone())));
                    }
                }
            }
        }
        let writing: Vec<(usize, &Member)> = members
            .iter()
            .enumerate()
            .filter(|(i, _)| !excluded.contains(i))
            .collect();
        let mut full_sql: Option<String> = None;
        for chunk in writing.chunks(ROWS_PER_STATEMENT) {
            // One statement shape for every full chunk, so it is prepared once and cached.
            let partial_sql;
            let sql = if chunk.len() == ROWS_PER_STATEMENT {
                full_sql.get_or_insert_with(|| insert_sql(self.backend, ROWS_PER_STATEMENT))
            } else {
                partial_sql = insert_sql(self.backend, chunk.len());
                &partial_sql
            };
            let mut query = sqlx::query(sql);
            for (_, m) in chunk {
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
            // No id was in the table before, so a member found by id is one just written.
            let ids =
                existing_ids(&mut tx, "members", chunk.iter().map(|(_, m)| m.id.as_str())).await?;
            let missing: Vec<(usize, &Member)> = chunk
                .iter()
                .filter(|(_, m)| !ids.contains(m.id.as_str()))
                .copied()
                .collect();
            let taken_emails = existing_emails(&mut tx, scope, &missing).await?;
            for (index, m) in missing {
                let taken = if taken_emails.contains(m.email.as_str()) {
                    Taken::Email
                } else {
                    Taken::ExternalId
                };
                excluded.insert(index);
                skipped.push((index, taken));
            }
        }
        let written: HashSet<&str> = members
            .iter()
            .enumerate()
            .filter(|(i, _)| !excluded.contains(i))
            .map(|(_, m)| m.id.as_str())
            .collect();
        for c in connections {
            if written.contains(c.member_id.as_str()) {
                crate::connections::insert(&mut tx, scope, c, None).await?;
            }
        }
        let inserted = written.len();
        if inserted > 0 {
            count_members(&mut tx, self.backend, scope, inserted as i64).await?;
        }
        tx.commit().await?;
        self.read_cache.changed_here(scope, &self.write).await;
        skipped.sort_by_key(|(i, _)| *i);
        Ok(skipped)
    }
}

/// What made an import skip a member: a value another member (or connection) already has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The member's id, anywhere in the database.
    Id,
    /// The email, in the environment.
    Email,
    /// The externalId, in the environment.
    ExternalId,
    /// The id of one of the member's connections, anywhere in the database.
    Connection(ConnectionId),
}

/// Which of the ids `table` holds.
async fn existing_ids<'a>(
    conn: &mut sqlx::AnyConnection,
    table: &str,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashSet<String>> {
    let ids: Vec<&str> = ids.collect();
    let mut found = HashSet::new();
    for chunk in ids.chunks(ROWS_PER_STATEMENT) {
        let mut sql = Sql::new(format!("SELECT id FROM {table} WHERE id"));
        sql.in_list(chunk.iter().copied());
        for row in sql.query().fetch_all(&mut *conn).await? {
            found.insert(row.try_get::<String, _>(0)?);
        }
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
