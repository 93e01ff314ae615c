//! `memberd import` on a SQLite file: rows go through a rusqlite connection of the command's
//! own, one prepared single-row INSERT each (the multi-row path's statement, one row long), in
//! one transaction per batch. Through sqlx, two thirds of a million-row import was its SQLite
//! thread receiving and copying bound values; here a row costs a bind and a step, and
//! `changes()` tells at once which rows a unique constraint turned away.

use memberd_core::{Member, Scope};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::import::{insert_sql, Taken};
use crate::members::COUNT_MEMBERS;
use crate::reads::DirectSqlite;
use crate::rows::to_json;
use crate::{Backend, Result};

/// Inserts the members in one transaction; answers the index of each member that was skipped
/// and what of theirs (id, email or externalId) is taken.
pub(crate) fn import(
    direct: &DirectSqlite,
    scope: &Scope,
    members: &[Member],
) -> Result<Vec<(usize, Taken)>> {
    direct.with_writer(|conn| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut skipped = Vec::new();
        {
            let mut insert = tx.prepare_cached(&insert_sql(Backend::Sqlite, 1))?;
            let mut email_taken = tx.prepare_cached(
                "SELECT 1 FROM members WHERE app_id = ?1 AND env = ?2 AND email = ?3",
            )?;
            let mut id_taken = tx.prepare_cached("SELECT 1 FROM members WHERE id = ?1")?;
            for (i, m) in members.iter().enumerate() {
                let inserted = insert.execute(params![
                    m.id.as_str(),
                    scope.app_id.as_str(),
                    scope.env.as_str(),
                    m.email.as_str(),
                    m.password_hash.as_deref(),
                    i64::from(m.verified),
                    to_json(&m.custom_fields),
                    to_json(&m.meta_data),
                    m.json.as_ref().map(to_json),
                    m.login_redirect.as_deref(),
                    m.profile_image.as_deref(),
                    m.stripe_customer_id.as_deref(),
                    m.external_id.as_deref(),
                    to_json(&m.permissions),
                    m.created_at.as_micros(),
                    m.updated_at.as_micros(),
                ])?;
                if inserted == 0 {
                    let by_email = email_taken
                        .query_row(
                            params![scope.app_id.as_str(), scope.env.as_str(), m.email.as_str()],
                            |_| Ok(()),
                        )
                        .optional()?
                        .is_some();
                    let by_id = !by_email
                        && id_taken
                            .query_row(params![m.id.as_str()], |_| Ok(()))
                            .optional()?
                            .is_some();
                    let taken = match (by_email, by_id) {
                        (true, _) => Taken::Email,
                        (false, true) => Taken::Id,
                        (false, false) => Taken::ExternalId,
                    };
                    skipped.push((i, taken));
                }
            }
            let added = i64::try_from(members.len() - skipped.len()).unwrap_or(i64::MAX);
            if added > 0 {
                tx.execute(
                    COUNT_MEMBERS,
                    params![scope.app_id.as_str(), scope.env.as_str(), added],
                )?;
            }
        }
        tx.commit()?;
        Ok(skipped)
    })
}
