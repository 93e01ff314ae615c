use memberd_core::mail::{EmailKind, TemplateVars};
use memberd_core::{
    ConnectionStatus, CustomFields, DomainError, Email, Member, MemberId, MetaData, NewEvent,
    PlanId, Scope, Session, SessionEnd, SessionId, TestClockId, Timestamp,
};
use sqlx::{Any, AnyConnection, Transaction};

use crate::accounts;
use crate::connections::{connect_in, load_views_with, lock_member};
use crate::emails;
use crate::plans::{into_page, page_tail};
use crate::read_cache::Lookup;
use crate::reads::Reader;
use crate::rows::Columns;
use crate::rows::{
    flag, int, json_object, opt_json_value, opt_micros, opt_text, opt_ts, string_list, text,
    to_json, ts, unique_violation,
};
use crate::sql::Sql;
use crate::{
    events, Backend, ConnectionView, Cursor, Page, PageRequest, Result, Store, StoreError,
};

#[derive(Debug, Clone, Default)]
pub struct MemberFilter {
    pub email: Option<Email>,
    /// Members holding this plan (in any status, unless `status` says which).
    pub plan_id: Option<PlanId>,
    /// Members with a plan connection in this status.
    pub status: Option<ConnectionStatus>,
    /// Members changed at or after this time.
    pub updated_since: Option<Timestamp>,
    /// Members found by what a person types: the id or `externalId` exactly, or a part of
    /// the email address or of a custom field's value (a name), in any case. For the
    /// dashboard: it reads every member of the environment, which is fine for a person's
    /// search and not for an integration's loop.
    pub search: Option<String>,
}

/// A member with their plan connections, as the API faces render it.
#[derive(Debug, Clone)]
pub struct MemberView {
    pub member: Member,
    /// Oldest first.
    pub connections: Vec<ConnectionView>,
}

impl MemberView {
    /// The member's own permissions and those of every plan they hold actively, deduplicated.
    pub fn permissions(&self) -> Vec<String> {
        let mut all = self.member.permissions.clone();
        for c in self.connections.iter().filter(|c| c.connection.active()) {
            for p in &c.plan_permissions {
                if !all.contains(p) {
                    all.push(p.clone());
                }
            }
        }
        all
    }
}

const MEMBER_COLUMNS: &str = "seq, id, email, password_hash, verified, custom_fields, meta_data, json, \
    login_redirect, profile_image, stripe_customer_id, external_id, permissions, last_login, test_clock_id, \
    created_at, updated_at";

/// `text` with LIKE's wildcards (and the escape character) taken literally.
fn like_escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The unique constraints of `members` and the fields they guard on the wire.
const UNIQUE_FIELDS: &[(&str, &str)] = &[("external_id", "externalId"), ("email", "email")];

fn member_from_row<R: Columns + ?Sized>(row: &R) -> Result<Member> {
    Ok(Member {
        id: MemberId::from_trusted(text(row, "id")?),
        email: Email::from_trusted(text(row, "email")?),
        password_hash: opt_text(row, "password_hash")?,
        verified: flag(row, "verified")?,
        custom_fields: CustomFields::from_trusted(json_object(row, "custom_fields")?),
        meta_data: MetaData::from_trusted(json_object(row, "meta_data")?),
        json: opt_json_value(row, "json")?,
        login_redirect: opt_text(row, "login_redirect")?,
        profile_image: opt_text(row, "profile_image")?,
        stripe_customer_id: opt_text(row, "stripe_customer_id")?,
        external_id: opt_text(row, "external_id")?,
        permissions: string_list(row, "permissions")?,
        last_login: opt_ts(row, "last_login")?,
        test_clock_id: opt_text(row, "test_clock_id")?.map(TestClockId::from_trusted),
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

/// Attaches their connections to members, keeping the members' order.
async fn with_connections(
    reader: &mut Reader<'_>,
    scope: &Scope,
    members: Vec<Member>,
) -> Result<Vec<MemberView>> {
    let ids: Vec<&MemberId> = members.iter().map(|m| &m.id).collect();
    let mut views = load_views_with(reader, scope, &ids).await?;
    Ok(members
        .into_iter()
        .map(|member| {
            let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut views)
                .into_iter()
                .partition(|v| v.connection.member_id == member.id);
            views = rest;
            MemberView {
                member,
                connections: mine,
            }
        })
        .collect())
}

/// Finds one member by a unique column of the scope.
async fn find_one(
    reader: &mut Reader<'_>,
    scope: &Scope,
    column: &str,
    value: &str,
) -> Result<Option<MemberView>> {
    let mut sql = Sql::new(format!(
        "SELECT {MEMBER_COLUMNS} FROM members WHERE app_id = "
    ));
    sql.text(scope.app_id.as_str());
    sql.push(" AND env = ").text(scope.env.as_str());
    sql.push(&format!(" AND {column} = ")).text(value);
    let members = reader.rows(&sql, |row| member_from_row(row)).await?;
    Ok(with_connections(reader, scope, members).await?.pop())
}

async fn insert_row(conn: &mut AnyConnection, scope: &Scope, member: &Member) -> Result<()> {
    sqlx::query(
        "INSERT INTO members (id, app_id, env, email, password_hash, verified, custom_fields, meta_data, json, \
         login_redirect, profile_image, stripe_customer_id, external_id, permissions, last_login, created_at, updated_at, \
         test_clock_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(member.id.as_str())
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .bind(member.email.as_str())
    .bind(member.password_hash.as_deref())
    .bind(i64::from(member.verified))
    .bind(to_json(&member.custom_fields))
    .bind(to_json(&member.meta_data))
    .bind(member.json.as_ref().map(to_json))
    .bind(member.login_redirect.as_deref())
    .bind(member.profile_image.as_deref())
    .bind(member.stripe_customer_id.as_deref())
    .bind(member.external_id.as_deref())
    .bind(to_json(&member.permissions))
    .bind(opt_micros(member.last_login))
    .bind(member.created_at.as_micros())
    .bind(member.updated_at.as_micros())
    .bind(member.test_clock_id.as_ref().map(|c| c.as_str()))
    .execute(&mut *conn)
    .await
    .map_err(|e| unique_violation(e, UNIQUE_FIELDS))?;
    Ok(())
}

/// Adds `$3` to the member count of the scope `$1`, `$2`, in its slot 0: on SQLite, whose
/// single writer never waits for another's row.
pub(crate) const COUNT_MEMBERS: &str = "INSERT INTO member_counts (app_id, env, slot, n) \
    VALUES ($1, $2, 0, $3) \
    ON CONFLICT (app_id, env, slot) DO UPDATE SET n = member_counts.n + excluded.n";

/// On PostgreSQL each connection adds to a slot of its own (its backend's pid picks it), so
/// that concurrent inserts into one scope do not queue for one row's lock until they commit.
const COUNT_MEMBERS_IN_SLOT: &str = "INSERT INTO member_counts (app_id, env, slot, n) \
    VALUES ($1, $2, pg_backend_pid() % 64, $3) \
    ON CONFLICT (app_id, env, slot) DO UPDATE SET n = member_counts.n + excluded.n";

/// Keeps `member_counts` in step with inserts (`delta` > 0) and deletes (< 0), in the
/// transaction that makes them. A scope's count is the sum of its slots.
pub(crate) async fn count_members(
    conn: &mut AnyConnection,
    backend: Backend,
    scope: &Scope,
    delta: i64,
) -> Result<()> {
    sqlx::query(match backend {
        Backend::Postgres => COUNT_MEMBERS_IN_SLOT,
        Backend::Sqlite => COUNT_MEMBERS,
    })
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .bind(delta)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// Inserts a member with its `member.created` event. `Duplicate { field: "email" }` or
    /// `"externalId"` when taken in this scope.
    pub async fn insert_member(
        &self,
        scope: &Scope,
        member: &Member,
        event: &NewEvent,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_row(&mut tx, scope, member).await?;
        events::record(
            &mut tx,
            scope,
            std::slice::from_ref(event),
            member.created_at,
        )
        .await?;
        count_members(&mut tx, self.backend, scope, 1).await?;
        self.commit_write(tx, Some(scope)).await?;
        Ok(())
    }

    /// Inserts a member and connects them to free plans, all or nothing: a paid or unknown
    /// plan leaves no member behind. The error names the plan as `plans[i].planId`. With a
    /// session, the member is logged in too (a sign-up).
    pub async fn insert_member_with_free_plans(
        &self,
        scope: &Scope,
        member: &Member,
        event: &NewEvent,
        plans: &[PlanId],
        session: Option<&Session>,
    ) -> Result<MemberView> {
        let mut tx = self.begin_write().await?;
        let view = insert_member_in(&mut tx, self, scope, member, event, plans, session).await?;
        self.commit_write(tx, Some(scope)).await?;
        Ok(view)
    }

    pub async fn get_member(&self, scope: &Scope, id: &MemberId) -> Result<Option<MemberView>> {
        self.flush_held().await?;
        let seen = match self.read_cache.member(scope, id) {
            Lookup::Hit(member) => return Ok(member),
            Lookup::Miss(seen) => seen,
        };
        let mut pooled = None;
        let mut reader = self.reader(&mut pooled).await?;
        let member = find_one(&mut reader, scope, "id", id.as_str()).await?;
        self.read_cache.put_member(scope, id, &member, seen);
        Ok(member)
    }

    pub async fn get_member_by_email(
        &self,
        scope: &Scope,
        email: &Email,
    ) -> Result<Option<MemberView>> {
        let mut pooled = None;
        let mut reader = self.reader(&mut pooled).await?;
        find_one(&mut reader, scope, "email", email.as_str()).await
    }

    pub async fn get_member_by_external_id(
        &self,
        scope: &Scope,
        external_id: &str,
    ) -> Result<Option<MemberView>> {
        let mut pooled = None;
        let mut reader = self.reader(&mut pooled).await?;
        find_one(&mut reader, scope, "external_id", external_id).await
    }

    pub async fn list_members(
        &self,
        scope: &Scope,
        filter: &MemberFilter,
        page: PageRequest,
    ) -> Result<Page<MemberView>> {
        let filtered = |sql: &mut Sql| {
            sql.push(" WHERE m.app_id = ").text(scope.app_id.as_str());
            sql.push(" AND m.env = ").text(scope.env.as_str());
            if let Some(email) = &filter.email {
                sql.push(" AND m.email = ").text(email.as_str());
            }
            if let Some(since) = filter.updated_since {
                sql.push(" AND m.updated_at >= ").int(since.as_micros());
            }
            if let Some(words) = filter
                .search
                .as_deref()
                .map(str::trim)
                .filter(|w| !w.is_empty())
            {
                let pattern = format!("%{}%", like_escaped(&words.to_lowercase()));
                sql.push(" AND (m.id = ").text(words);
                sql.push(" OR m.external_id = ").text(words);
                sql.push(" OR m.email LIKE ").text(&pattern);
                sql.push(" ESCAPE '\\' OR lower(m.custom_fields) LIKE ")
                    .text(&pattern);
                sql.push(" ESCAPE '\\')");
            }
            if filter.plan_id.is_some() || filter.status.is_some() {
                sql.push(" AND EXISTS (SELECT 1 FROM plan_connections c WHERE c.member_id = m.id");
                if let Some(plan_id) = &filter.plan_id {
                    sql.push(" AND c.plan_id = ").text(plan_id.as_str());
                }
                if let Some(status) = filter.status {
                    sql.push(" AND c.status = ").text(status.as_str());
                }
                sql.push(")");
            }
        };
        let unfiltered = filter.email.is_none()
            && filter.search.is_none()
            && filter.updated_since.is_none()
            && filter.plan_id.is_none()
            && filter.status.is_none();
        let count = if unfiltered {
            let mut count =
                Sql::new("SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) AS n FROM member_counts WHERE app_id = ");
            count.text(scope.app_id.as_str());
            count.push(" AND env = ").text(scope.env.as_str());
            count
        } else {
            let mut count = Sql::new("SELECT COUNT(*) AS n FROM members m");
            filtered(&mut count);
            count
        };
        let mut list = Sql::new(format!("SELECT {MEMBER_COLUMNS} FROM members m"));
        filtered(&mut list);
        page_tail(&mut list, "m.seq", page);

        let mut pooled = None;
        let mut reader = self.reader(&mut pooled).await?;
        let total = reader
            .rows(&count, |row| int(row, "n"))
            .await?
            .pop()
            .unwrap_or(0);
        let rows = reader
            .rows(&list, |row| {
                Ok((Cursor(int(row, "seq")?), member_from_row(row)?))
            })
            .await?;
        let (cursors, members): (Vec<Cursor>, Vec<Member>) = rows.into_iter().unzip();
        let views = with_connections(&mut reader, scope, members).await?;
        Ok(into_page(
            cursors.into_iter().zip(views).collect(),
            page.limit,
            total,
        ))
    }

    /// One numbered page of the scope's members, oldest first, for APIs that page by number
    /// (Memberstack 1.0). Unlike cursor pages, a deep page costs more than the first.
    pub async fn list_members_by_offset(
        &self,
        scope: &Scope,
        offset: u64,
        limit: u32,
    ) -> Result<Vec<MemberView>> {
        let mut conn = self.reads().await?.acquire().await?;
        let rows = sqlx::query(&format!(
            "SELECT {MEMBER_COLUMNS} FROM members WHERE app_id = $1 AND env = $2 ORDER BY seq LIMIT $3 OFFSET $4"
        ))
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(i64::from(limit))
        .bind(i64::try_from(offset).unwrap_or(i64::MAX))
        .fetch_all(&mut *conn)
        .await?;
        let members = rows
            .iter()
            .map(member_from_row)
            .collect::<Result<Vec<_>>>()?;
        // Bound before returning: the reader borrows `conn` and must be dropped first.
        let views = with_connections(&mut Reader::Any(&mut conn), scope, members).await;
        views
    }

    /// Loads a member, lets `change` decide the next state and its events (`None`: unchanged),
    /// and saves both in one transaction. Returns the member as it now stands.
    /// A new password ends every session of the member.
    pub async fn update_member<F>(
        &self,
        scope: &Scope,
        id: &MemberId,
        change: F,
    ) -> Result<MemberView>
    where
        F: FnOnce(&Member) -> Result<Option<(Member, Vec<NewEvent>)>, DomainError> + Send,
    {
        self.update_member_keeping(scope, id, None, change).await
    }

    /// `update_member` for the member themselves: a new password ends their other sessions
    /// and keeps `session`, the one they changed it from.
    pub async fn update_member_keeping<F>(
        &self,
        scope: &Scope,
        id: &MemberId,
        session: Option<&SessionId>,
        change: F,
    ) -> Result<MemberView>
    where
        F: FnOnce(&Member) -> Result<Option<(Member, Vec<NewEvent>)>, DomainError> + Send,
    {
        let mut tx = self.begin_write().await?;
        let (view, changed) = update_member_in(&mut tx, self, scope, id, session, change).await?;
        if changed {
            self.commit_write(tx, Some(scope)).await?;
        }
        Ok(view)
    }

    /// Deletes a member and their plan connections, recording `member.deleted`.
    pub async fn delete_member(&self, scope: &Scope, id: &MemberId, now: Timestamp) -> Result<()> {
        let mut tx = self.begin_write().await?;
        if lock_member(&mut tx, self, scope, id).await?.is_none() {
            return Err(StoreError::not_found("member", id));
        }
        for table_filter in [
            "DELETE FROM plan_connections WHERE app_id = $1 AND env = $2 AND member_id = $3",
            "DELETE FROM members WHERE app_id = $1 AND env = $2 AND id = $3",
        ] {
            sqlx::query(table_filter)
                .bind(scope.app_id.as_str())
                .bind(scope.env.as_str())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        accounts::end_member_sessions_in(&mut tx, scope, id, None, SessionEnd::MemberDeleted, now)
            .await?;
        events::record(&mut tx, scope, &[NewEvent::member_deleted(id)], now).await?;
        count_members(&mut tx, self.backend, scope, -1).await?;
        self.commit_write(tx, Some(scope)).await?;
        Ok(())
    }
}

/// Writes a new member, with any free plans and a first session, in the caller's
/// transaction.
pub(crate) async fn insert_member_in(
    tx: &mut Transaction<'static, Any>,
    store: &Store,
    scope: &Scope,
    member: &Member,
    event: &NewEvent,
    plans: &[PlanId],
    session: Option<&Session>,
) -> Result<MemberView> {
    insert_row(tx, scope, member).await?;
    let mut member = member.clone();
    if let Some(session) = session {
        accounts::insert_session(tx, scope, session).await?;
        member.last_login = Some(session.created_at);
    }
    let now = member.created_at;
    events::record(tx, scope, std::slice::from_ref(event), now).await?;
    count_members(tx, store.backend, scope, 1).await?;
    let mut connections = Vec::with_capacity(plans.len());
    for (i, plan_id) in plans.iter().enumerate() {
        let field = format!("plans[{i}].planId");
        let view = connect_in(
            tx,
            store,
            scope,
            &member.id,
            plan_id,
            None,
            Some(&field),
            now,
        )
        .await
        .map_err(|err| match err {
            StoreError::NotFound { what: "plan", .. } => StoreError::Domain(DomainError::invalid(
                field.clone(),
                "unknown_plan",
                format!("no such plan: {plan_id}"),
            )),
            other => other,
        })?;
        connections.push(view);
    }
    Ok(MemberView {
        member,
        connections,
    })
}

/// Changes a member in the caller's transaction; the member as they are after it, and
/// whether anything changed. A new password ends the member's sessions but `session`; a new
/// address tells the old one, by email.
pub(crate) async fn update_member_in<F>(
    tx: &mut Transaction<'static, Any>,
    store: &Store,
    scope: &Scope,
    id: &MemberId,
    session: Option<&SessionId>,
    change: F,
) -> Result<(MemberView, bool)>
where
    F: FnOnce(&Member) -> Result<Option<(Member, Vec<NewEvent>)>, DomainError> + Send,
{
    if lock_member(tx, store, scope, id).await?.is_none() {
        return Err(StoreError::not_found("member", id));
    }
    let current = find_one(&mut Reader::Any(tx), scope, "id", id.as_str())
        .await?
        .ok_or_else(|| StoreError::not_found("member", id))?;
    let Some((next, new_events)) = change(&current.member)? else {
        return Ok((current, false));
    };
    sqlx::query(
            "UPDATE members SET email = $1, password_hash = $2, verified = $3, custom_fields = $4, meta_data = $5, \
             json = $6, login_redirect = $7, profile_image = $8, stripe_customer_id = $9, external_id = $10, \
             permissions = $11, last_login = $12, updated_at = $13 \
             WHERE app_id = $14 AND env = $15 AND id = $16",
        )
        .bind(next.email.as_str())
        .bind(next.password_hash.as_deref())
        .bind(i64::from(next.verified))
        .bind(to_json(&next.custom_fields))
        .bind(to_json(&next.meta_data))
        .bind(next.json.as_ref().map(to_json))
        .bind(next.login_redirect.as_deref())
        .bind(next.profile_image.as_deref())
        .bind(next.stripe_customer_id.as_deref())
        .bind(next.external_id.as_deref())
        .bind(to_json(&next.permissions))
        .bind(opt_micros(next.last_login))
        .bind(next.updated_at.as_micros())
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(id.as_str())
        .execute(&mut **tx)
        .await
        .map_err(|e| unique_violation(e, UNIQUE_FIELDS))?;
    if next.password_hash != current.member.password_hash {
        accounts::end_member_sessions_in(
            tx,
            scope,
            id,
            session,
            SessionEnd::PasswordChanged,
            next.updated_at,
        )
        .await?;
    }
    if next.email != current.member.email {
        let vars = TemplateVars {
            old_email: Some(current.member.email.to_string()),
            new_email: Some(next.email.to_string()),
            ..TemplateVars::default()
        };
        let out = emails::Outgoing {
            kind: EmailKind::EmailChanged,
            to: &current.member.email,
            member: Some(&next),
            vars,
            for_nobody: false,
        };
        emails::queue_in(tx, scope, out, next.updated_at).await?;
    }
    events::record(tx, scope, &new_events, next.updated_at).await?;
    Ok((
        MemberView {
            member: next,
            connections: current.connections,
        },
        true,
    ))
}
