//! Members' own accounts: publishable keys, the member-facing API's settings, sessions, the
//! keys that sign session tokens, and the count of failed logins.

use memberd_core::account::OriginPattern;
use memberd_core::{
    AppId, DomainError, Email, EnvSettings, Environment, MemberId, Scope, Session, SessionEnd,
    SessionId, SettingsPatch, Timestamp,
};
use std::sync::Arc;

use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use crate::read_cache::Lookup;
use crate::rows::{env, flag, int, opt_text, opt_ts, text, to_json, ts};
use crate::{Result, Store, StoreError};

/// An environment's publishable key (`pk_sb_…`, `pk_live_…`). It is no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishableKey {
    pub key: String,
    pub app_id: AppId,
    pub env: Environment,
    pub created_at: Timestamp,
}

/// What the member-facing API knows of the environment a publishable key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientEnv {
    pub scope: Scope,
    pub app_name: String,
    pub settings: EnvSettings,
}

/// A token signing key as stored. The private half is only ever handed to the signer.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRow {
    pub kid: String,
    /// PKCS#8, base64.
    pub private_key: String,
    pub public_x: String,
    pub public_y: String,
    pub created_at: Timestamp,
    pub retired_at: Option<Timestamp>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("created_at", &self.created_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

fn publishable_prefix(env: Environment) -> &'static str {
    match env {
        Environment::Live => "pk_live_",
        Environment::Sandbox => "pk_sb_",
    }
}

pub(crate) fn new_publishable_key(env: Environment) -> String {
    format!(
        "{}{}",
        publishable_prefix(env),
        memberd_core::ids::random_suffix(32)
    )
}

/// Gives an app its two publishable keys, in the transaction that creates it.
pub(crate) async fn insert_publishable_keys(
    conn: &mut AnyConnection,
    app_id: &AppId,
    now: Timestamp,
) -> Result<()> {
    for env in Environment::ALL {
        sqlx::query(
            "INSERT INTO publishable_keys (key, app_id, env, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(new_publishable_key(env))
        .bind(app_id.as_str())
        .bind(env.as_str())
        .bind(now.as_micros())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn parse_origins(raw: &str) -> Result<Vec<OriginPattern>> {
    let list: Vec<String> = serde_json::from_str(raw)
        .map_err(|e| StoreError::Corrupt(format!("allowed_origins: {e}")))?;
    list.iter()
        .map(|o| OriginPattern::parse("allowed_origins", o))
        .collect::<std::result::Result<Vec<_>, DomainError>>()
        .map_err(|e| StoreError::Corrupt(format!("allowed_origins: {e:?}")))
}

fn settings_from_row(row: &AnyRow) -> Result<EnvSettings> {
    let origins = opt_text(row, "allowed_origins")?
        .map(|raw| parse_origins(&raw))
        .transpose()?;
    let number = |column: &str| -> Result<u32> {
        u32::try_from(int(row, column)?)
            .map_err(|_| StoreError::Corrupt(format!("{column}: out of range")))
    };
    Ok(EnvSettings {
        allowed_origins: origins,
        signup_enabled: flag(row, "signup_enabled")?,
        session_lifetime_days: number("session_lifetime_days")?,
        password_min_length: number("password_min_length")?,
        email_from_name: opt_text(row, "email_from_name")?,
        email_from_address: opt_text(row, "email_from_address")?
            .map(|raw| {
                Email::parse(&raw)
                    .map_err(|_| StoreError::Corrupt("email_from_address: not an address".into()))
            })
            .transpose()?,
        verify_redirect_url: opt_text(row, "verify_redirect_url")?,
    })
}

pub(crate) fn session_from_row(row: &AnyRow) -> Result<Session> {
    Ok(Session {
        id: SessionId::from_trusted(text(row, "id")?),
        member_id: MemberId::from_trusted(text(row, "member_id")?),
        created_at: ts(row, "created_at")?,
        expires_at: ts(row, "expires_at")?,
        ended_at: opt_ts(row, "ended_at")?,
        end_reason: opt_text(row, "end_reason")?,
    })
}

const SESSION_COLUMNS: &str = "id, member_id, created_at, expires_at, ended_at, end_reason";

/// Inserts a session and notes the member's login, in the caller's transaction.
pub(crate) async fn insert_session(
    conn: &mut AnyConnection,
    scope: &Scope,
    session: &Session,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO member_sessions (id, app_id, env, member_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(session.id.as_str())
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .bind(session.member_id.as_str())
    .bind(session.created_at.as_micros())
    .bind(session.expires_at.as_micros())
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE members SET last_login = $1 WHERE app_id = $2 AND env = $3 AND id = $4")
        .bind(session.created_at.as_micros())
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(session.member_id.as_str())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Ends the member's live sessions but `keep`, in the caller's transaction; how many ended.
pub(crate) async fn end_member_sessions_in(
    conn: &mut AnyConnection,
    scope: &Scope,
    member_id: &MemberId,
    keep: Option<&SessionId>,
    reason: SessionEnd,
    now: Timestamp,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE member_sessions SET ended_at = $1, end_reason = $2 \
         WHERE app_id = $3 AND env = $4 AND member_id = $5 AND ended_at IS NULL AND id <> $6",
    )
    .bind(now.as_micros())
    .bind(reason.as_str())
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .bind(member_id.as_str())
    .bind(keep.map_or("", |k| k.as_str()))
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected())
}

impl Store {
    /// The publishable keys of one app, or of every app.
    pub async fn list_publishable_keys(
        &self,
        app_id: Option<&AppId>,
    ) -> Result<Vec<PublishableKey>> {
        let rows = sqlx::query(
            "SELECT p.key, p.app_id, p.env, p.created_at FROM publishable_keys p \
             JOIN apps a ON a.id = p.app_id WHERE ($1 = '' OR p.app_id = $1) \
             ORDER BY a.seq, p.env DESC",
        )
        .bind(app_id.map_or("", |a| a.as_str()))
        .fetch_all(self.reads().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PublishableKey {
                    key: text(row, "key")?,
                    app_id: AppId::from_trusted(text(row, "app_id")?),
                    env: env(row, "env")?,
                    created_at: ts(row, "created_at")?,
                })
            })
            .collect()
    }

    /// The environment a publishable key names, with its settings: on the path of every
    /// member-facing request, so kept in memory for a second (a change made through this
    /// store is seen at once).
    pub async fn client_env(&self, publishable_key: &str) -> Result<Option<Arc<ClientEnv>>> {
        if let Some(found) = self.client_envs.get(publishable_key) {
            return Ok(found);
        }
        let row = sqlx::query(
            "SELECT p.app_id, p.env, a.name, s.allowed_origins, \
             COALESCE(s.signup_enabled, 1) AS signup_enabled, \
             COALESCE(s.session_lifetime_days, 14) AS session_lifetime_days, \
             COALESCE(s.password_min_length, 8) AS password_min_length, \
             s.email_from_name, s.email_from_address, s.verify_redirect_url \
             FROM publishable_keys p JOIN apps a ON a.id = p.app_id \
             LEFT JOIN environment_settings s ON s.app_id = p.app_id AND s.env = p.env \
             WHERE p.key = $1",
        )
        .bind(publishable_key)
        .fetch_optional(self.reads().await?)
        .await?;
        let found = row
            .map(|row| {
                Ok::<_, StoreError>(Arc::new(ClientEnv {
                    scope: Scope::new(
                        AppId::from_trusted(text(&row, "app_id")?),
                        env(&row, "env")?,
                    ),
                    app_name: text(&row, "name")?,
                    settings: settings_from_row(&row)?,
                }))
            })
            .transpose()?;
        self.client_envs.put(publishable_key, &found);
        Ok(found)
    }

    /// Whether any environment of any app allows `origin` (for a CORS preflight, which
    /// names no environment). Kept in memory for a second, like `client_env`.
    pub async fn origin_allowed_anywhere(&self, origin: &str) -> Result<bool> {
        let lists = match self.all_origins.get("") {
            Some(lists) => lists,
            None => {
                let rows = sqlx::query(
                    "SELECT e.env, s.allowed_origins FROM apps a \
                     CROSS JOIN (SELECT 'live' AS env UNION ALL SELECT 'sandbox') e \
                     LEFT JOIN environment_settings s ON s.app_id = a.id AND s.env = e.env",
                )
                .fetch_all(self.reads().await?)
                .await?;
                let mut lists = Vec::with_capacity(rows.len());
                for row in &rows {
                    let env = env(row, "env")?;
                    let origins = match opt_text(row, "allowed_origins")? {
                        None => memberd_core::account::default_origins(env),
                        Some(raw) => parse_origins(&raw)?,
                    };
                    lists.push(origins);
                }
                let lists = Arc::new(lists);
                self.all_origins.put("", &lists);
                lists
            }
        };
        Ok(lists.iter().flatten().any(|o| o.matches(origin)))
    }

    /// The publishable key of one environment.
    pub async fn publishable_key(&self, scope: &Scope) -> Result<Option<String>> {
        let row = sqlx::query("SELECT key FROM publishable_keys WHERE app_id = $1 AND env = $2")
            .bind(scope.app_id.as_str())
            .bind(scope.env.as_str())
            .fetch_optional(self.reads().await?)
            .await?;
        row.map(|r| text(&r, "key")).transpose()
    }

    pub async fn env_settings(&self, scope: &Scope) -> Result<EnvSettings> {
        let mut conn = self.reads().await?.acquire().await?;
        load_settings(&mut conn, scope).await
    }

    /// Applies a change to an environment's settings, checked by the core's rules.
    pub async fn update_env_settings(
        &self,
        scope: &Scope,
        patch: SettingsPatch,
        now: Timestamp,
    ) -> Result<EnvSettings> {
        let mut tx = self.begin_write().await?;
        let current = load_settings(&mut tx, scope).await?;
        let next = current.apply(patch)?;
        let origins = next
            .allowed_origins
            .as_ref()
            .map(|list| to_json(&list.iter().map(ToString::to_string).collect::<Vec<_>>()));
        sqlx::query(
            "INSERT INTO environment_settings (app_id, env, allowed_origins, signup_enabled, \
             session_lifetime_days, password_min_length, email_from_name, email_from_address, \
             verify_redirect_url, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (app_id, env) DO UPDATE SET allowed_origins = excluded.allowed_origins, \
             signup_enabled = excluded.signup_enabled, session_lifetime_days = excluded.session_lifetime_days, \
             password_min_length = excluded.password_min_length, email_from_name = excluded.email_from_name, \
             email_from_address = excluded.email_from_address, verify_redirect_url = excluded.verify_redirect_url, \
             updated_at = excluded.updated_at",
        )
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(origins)
        .bind(i64::from(next.signup_enabled))
        .bind(i64::from(next.session_lifetime_days))
        .bind(i64::from(next.password_min_length))
        .bind(next.email_from_name.as_deref())
        .bind(next.email_from_address.as_ref().map(Email::as_str))
        .bind(next.verify_redirect_url.as_deref())
        .bind(now.as_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.client_envs.clear();
        self.all_origins.clear();
        Ok(next)
    }

    /// A session of the environment, live or not; kept in memory like a member's read, and
    /// dropped from it by any change to the environment.
    pub async fn get_session(&self, scope: &Scope, id: &SessionId) -> Result<Option<Session>> {
        self.flush_held().await?;
        let seen = match self.read_cache.session(scope, id) {
            Lookup::Hit(session) => return Ok(session),
            Lookup::Miss(seen) => seen,
        };
        let row = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM member_sessions WHERE app_id = $1 AND env = $2 AND id = $3"
        ))
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(id.as_str())
        .fetch_optional(&self.read)
        .await?;
        let session = row.as_ref().map(session_from_row).transpose()?;
        self.read_cache.put_session(scope, id, &session, seen);
        Ok(session)
    }

    /// A session and the member it is of, as `get_session` and `get_member` would read them,
    /// at the cost of one look at the cache (`GET /member`).
    pub async fn get_session_and_member(
        &self,
        scope: &Scope,
        session: &SessionId,
        member: &MemberId,
    ) -> Result<(Option<Session>, Option<crate::MemberView>)> {
        self.flush_held().await?;
        let (found_session, found_member) =
            self.read_cache.session_and_member(scope, session, member);
        let session = match found_session {
            Lookup::Hit(session) => session,
            Lookup::Miss(_) => self.get_session(scope, session).await?,
        };
        let member = match found_member {
            Lookup::Hit(member) => member,
            Lookup::Miss(_) => self.get_member(scope, member).await?,
        };
        Ok((session, member))
    }

    /// Opens a session for an existing member (a login) and notes the login.
    pub async fn open_session(&self, scope: &Scope, session: &Session) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_session(&mut tx, scope, session).await?;
        self.commit_write(tx, Some(scope)).await
    }

    /// A member's sessions, newest first.
    pub async fn list_sessions(&self, scope: &Scope, member_id: &MemberId) -> Result<Vec<Session>> {
        let rows = sqlx::query(&format!(
            "SELECT {SESSION_COLUMNS} FROM member_sessions \
             WHERE app_id = $1 AND env = $2 AND member_id = $3 ORDER BY seq DESC LIMIT 100"
        ))
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(member_id.as_str())
        .fetch_all(self.reads().await?)
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    /// Ends one session; `false` when it was not live (or not of this environment).
    pub async fn end_session(
        &self,
        scope: &Scope,
        id: &SessionId,
        reason: SessionEnd,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "UPDATE member_sessions SET ended_at = $1, end_reason = $2 \
             WHERE app_id = $3 AND env = $4 AND id = $5 AND ended_at IS NULL",
        )
        .bind(now.as_micros())
        .bind(reason.as_str())
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        self.commit_write(tx, Some(scope)).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Ends every live session of a member but `keep`; how many ended. `NotFound` for an
    /// unknown member.
    pub async fn end_member_sessions(
        &self,
        scope: &Scope,
        member_id: &MemberId,
        keep: Option<&SessionId>,
        reason: SessionEnd,
        now: Timestamp,
    ) -> Result<u64> {
        let mut tx = self.begin_write().await?;
        let exists =
            sqlx::query("SELECT id FROM members WHERE app_id = $1 AND env = $2 AND id = $3")
                .bind(scope.app_id.as_str())
                .bind(scope.env.as_str())
                .bind(member_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        if exists.is_none() {
            return Err(StoreError::not_found("member", member_id));
        }
        let ended = end_member_sessions_in(&mut tx, scope, member_id, keep, reason, now).await?;
        self.commit_write(tx, Some(scope)).await?;
        Ok(ended)
    }

    /// Every signing key, oldest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRow>> {
        let rows = sqlx::query(
            "SELECT kid, private_key, public_x, public_y, created_at, retired_at FROM signing_keys ORDER BY seq",
        )
        .fetch_all(self.reads().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(SigningKeyRow {
                    kid: text(row, "kid")?,
                    private_key: text(row, "private_key")?,
                    public_x: text(row, "public_x")?,
                    public_y: text(row, "public_y")?,
                    created_at: ts(row, "created_at")?,
                    retired_at: opt_ts(row, "retired_at")?,
                })
            })
            .collect()
    }

    /// Adds a signing key, retires the others as of `key.created_at`, and forgets the keys
    /// retired before `forget_before` (their tokens have all expired). With `only_if_none`,
    /// adds it only when there is no key yet (two nodes starting at once make one key).
    pub async fn add_signing_key(
        &self,
        key: &SigningKeyRow,
        forget_before: Timestamp,
        only_if_none: bool,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        if self.backend == crate::Backend::Postgres {
            sqlx::query(
                "SELECT pg_advisory_xact_lock(hashtextextended('memberd signing keys', 0))",
            )
            .execute(&mut *tx)
            .await?;
        }
        if only_if_none {
            let row =
                sqlx::query("SELECT COUNT(*) AS n FROM signing_keys WHERE retired_at IS NULL")
                    .fetch_one(&mut *tx)
                    .await?;
            if int(&row, "n")? > 0 {
                return Ok(false);
            }
        }
        sqlx::query("DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < $1")
            .bind(forget_before.as_micros())
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE signing_keys SET retired_at = $1 WHERE retired_at IS NULL")
            .bind(key.created_at.as_micros())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, private_key, public_x, public_y, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&key.kid)
        .bind(&key.private_key)
        .bind(&key.public_x)
        .bind(&key.public_y)
        .bind(key.created_at.as_micros())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Failures counted in the current windows of `buckets`: the largest count, and when its
    /// window ends.
    pub async fn login_failures(
        &self,
        buckets: &[String],
        now: Timestamp,
        window_secs: u64,
    ) -> Result<Option<(i64, Timestamp)>> {
        let since = now.as_micros() - window_micros(window_secs);
        let mut worst: Option<(i64, Timestamp)> = None;
        for bucket in buckets {
            let row = sqlx::query(
                "SELECT window_start, failures FROM login_failures WHERE bucket = $1 AND window_start > $2",
            )
            .bind(bucket)
            .bind(since)
            .fetch_optional(self.reads().await?)
            .await?;
            if let Some(row) = row {
                let failures = int(&row, "failures")?;
                let ends =
                    Timestamp::from_micros(int(&row, "window_start")? + window_micros(window_secs));
                if worst.is_none_or(|(n, _)| failures > n) {
                    worst = Some((failures, ends));
                }
            }
        }
        Ok(worst)
    }

    /// Counts one failure in each bucket's current window (a new window once the last ended).
    pub async fn record_login_failure(
        &self,
        buckets: &[String],
        now: Timestamp,
        window_secs: u64,
    ) -> Result<()> {
        let mut tx = self.writer().await?.begin().await?;
        for bucket in buckets {
            count_one(&mut tx, bucket, now, window_secs).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Counts one use in each bucket's window, unless one of them has had its `limit` in
    /// its current window already: then nothing is counted, and the answer is when that
    /// window ends. Each bucket is `(name, window in seconds, limit)`.
    pub async fn take_allowance(
        &self,
        buckets: &[(String, u64, u32)],
        now: Timestamp,
    ) -> Result<Option<Timestamp>> {
        let mut tx = self.writer().await?.begin().await?;
        let mut refused_until: Option<Timestamp> = None;
        for (bucket, window_secs, limit) in buckets {
            let since = now.as_micros() - window_micros(*window_secs);
            let row = sqlx::query(
                "SELECT window_start, failures FROM login_failures WHERE bucket = $1 AND window_start > $2",
            )
            .bind(bucket)
            .bind(since)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = row {
                if int(&row, "failures")? >= i64::from(*limit) {
                    let ends = Timestamp::from_micros(
                        int(&row, "window_start")? + window_micros(*window_secs),
                    );
                    refused_until = Some(refused_until.map_or(ends, |t| t.max(ends)));
                }
            }
        }
        if refused_until.is_some() {
            return Ok(refused_until);
        }
        for (bucket, window_secs, _) in buckets {
            count_one(&mut tx, bucket, now, *window_secs).await?;
        }
        tx.commit().await?;
        Ok(None)
    }

    /// Forgets a bucket's failures (an address that logged in).
    pub async fn clear_login_failures(&self, bucket: &str) -> Result<()> {
        sqlx::query("DELETE FROM login_failures WHERE bucket = $1")
            .bind(bucket)
            .execute(self.writer().await?)
            .await?;
        Ok(())
    }
}

/// Counts one in a bucket's current window (a new window once the last ended).
async fn count_one(
    conn: &mut AnyConnection,
    bucket: &str,
    now: Timestamp,
    window_secs: u64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO login_failures (bucket, window_start, failures) VALUES ($1, $2, 1) \
         ON CONFLICT (bucket) DO UPDATE SET \
         failures = CASE WHEN login_failures.window_start > $3 THEN login_failures.failures + 1 ELSE 1 END, \
         window_start = CASE WHEN login_failures.window_start > $3 THEN login_failures.window_start ELSE excluded.window_start END",
    )
    .bind(bucket)
    .bind(now.as_micros())
    .bind(now.as_micros() - window_micros(window_secs))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn window_micros(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX / 2_000_000) * 1_000_000
}

async fn load_settings(conn: &mut AnyConnection, scope: &Scope) -> Result<EnvSettings> {
    let row = sqlx::query(
        "SELECT allowed_origins, signup_enabled, session_lifetime_days, password_min_length, \
         email_from_name, email_from_address, verify_redirect_url FROM environment_settings WHERE app_id = $1 AND env = $2",
    )
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => settings_from_row(&row),
        None => Ok(EnvSettings::defaults()),
    }
}
