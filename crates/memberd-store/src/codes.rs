//! One-time codes, and the changes they allow: a password reset, a login or sign-up without
//! a password, a verified address.
//!
//! A code is kept only as a hash, one per address and purpose (a new one replaces the last),
//! and no two live codes of a purpose are alike in an environment, so that a reset code alone
//! (which is all the SDK sends back) finds its member. Each change checks the code and makes
//! itself in one transaction: the code is used up exactly when the change is made. A wrong
//! code counts against the code it was tried for, and that count is kept even though the
//! change is refused.

use memberd_core::codes::{CodePurpose, MAX_WRONG_TRIES};
use memberd_core::mail::TemplateVars;
use memberd_core::{
    Email, Member, MemberId, MemberPatch, NewEvent, PlanId, Scope, Session, Timestamp,
};
use sha2::{Digest, Sha256};
use sqlx::{Any, Transaction};

use crate::emails::{self, Outgoing};
use crate::members::{insert_member_in, update_member_in};
use crate::rows::{int, opt_text, opt_ts, text, ts};
use crate::{accounts, MemberView, Result, Store};

/// What `issue_code` wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeIssued {
    pub email_id: memberd_core::EmailId,
    pub expires_at: Timestamp,
}

/// The hash a code is kept as: of the environment and the purpose too, so that the same code
/// of two environments are two hashes.
fn code_hash(scope: &Scope, purpose: CodePurpose, code: &str) -> String {
    let mut hash = Sha256::new();
    for part in [
        scope.app_id.as_str(),
        scope.env.as_str(),
        purpose.as_str(),
        code,
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a code that was checked may be used.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Checked {
    Good {
        email: String,
        member_id: Option<MemberId>,
    },
    Refused,
}

/// Checks `code` in the caller's transaction and, if it is good, uses it up. With `email`,
/// the code is the one issued to that address, and a wrong one counts against it; without,
/// the code finds its own row.
async fn check_code_in(
    tx: &mut Transaction<'static, Any>,
    scope: &Scope,
    purpose: CodePurpose,
    email: Option<&Email>,
    code: &str,
    now: Timestamp,
) -> Result<Checked> {
    let hash = code_hash(scope, purpose, code);
    let row = match email {
        Some(email) => {
            sqlx::query(
                "SELECT email, member_id, code_hash, wrong_tries, expires_at, used_at FROM member_codes \
                 WHERE app_id = $1 AND env = $2 AND purpose = $3 AND email = $4",
            )
            .bind(scope.app_id.as_str())
            .bind(scope.env.as_str())
            .bind(purpose.as_str())
            .bind(email.as_str())
            .fetch_optional(&mut **tx)
            .await?
        }
        None => {
            sqlx::query(
                "SELECT email, member_id, code_hash, wrong_tries, expires_at, used_at FROM member_codes \
                 WHERE app_id = $1 AND env = $2 AND purpose = $3 AND code_hash = $4",
            )
            .bind(scope.app_id.as_str())
            .bind(scope.env.as_str())
            .bind(purpose.as_str())
            .bind(&hash)
            .fetch_optional(&mut **tx)
            .await?
        }
    };
    let Some(row) = row else {
        return Ok(Checked::Refused);
    };
    let address = text(&row, "email")?;
    let live = opt_ts(&row, "used_at")?.is_none()
        && now < ts(&row, "expires_at")?
        && int(&row, "wrong_tries")? < i64::from(MAX_WRONG_TRIES);
    let right = text(&row, "code_hash")? == hash;
    if live && right {
        let used = sqlx::query(
            "UPDATE member_codes SET used_at = $1 WHERE app_id = $2 AND env = $3 AND purpose = $4 \
             AND email = $5 AND used_at IS NULL AND wrong_tries < $6",
        )
        .bind(now.as_micros())
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(purpose.as_str())
        .bind(&address)
        .bind(i64::from(MAX_WRONG_TRIES))
        .execute(&mut **tx)
        .await?;
        if used.rows_affected() == 1 {
            return Ok(Checked::Good {
                email: address,
                member_id: opt_text(&row, "member_id")?.map(MemberId::from_trusted),
            });
        }
        return Ok(Checked::Refused);
    }
    if live {
        sqlx::query(
            "UPDATE member_codes SET wrong_tries = wrong_tries + 1 WHERE app_id = $1 AND env = $2 \
             AND purpose = $3 AND email = $4",
        )
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(purpose.as_str())
        .bind(&address)
        .execute(&mut **tx)
        .await?;
    }
    Ok(Checked::Refused)
}

impl Store {
    /// Issues a new code for `to` (replacing any it had for `purpose`) and queues the email
    /// that carries it, in one transaction. A link's code is appended to `link_base`.
    pub async fn issue_code(
        &self,
        scope: &Scope,
        purpose: CodePurpose,
        to: &Email,
        member: Option<&Member>,
        link_base: Option<&str>,
        now: Timestamp,
    ) -> Result<CodeIssued> {
        self.issue(scope, purpose, to, member, link_base, false, now)
            .await
    }

    /// What `issue_code` does for an address with no account, but the email: a code that no
    /// member can use is written in its place, in a transaction of the same statements, so
    /// that a send to an unknown address takes as long as one to a member's.
    pub async fn issue_code_for_nobody(
        &self,
        scope: &Scope,
        purpose: CodePurpose,
        to: &Email,
        now: Timestamp,
    ) -> Result<()> {
        self.issue(scope, purpose, to, None, None, true, now)
            .await
            .map(|_| ())
    }

    #[allow(clippy::too_many_arguments)]
    async fn issue(
        &self,
        scope: &Scope,
        purpose: CodePurpose,
        to: &Email,
        member: Option<&Member>,
        link_base: Option<&str>,
        for_nobody: bool,
        now: Timestamp,
    ) -> Result<CodeIssued> {
        let expires_at =
            Timestamp::from_micros(now.as_micros() + purpose.lifetime_secs() * 1_000_000);
        let mut tx = self.begin_write().await?;
        // Codes that can no longer be used go, this address's too: what is left are the live
        // codes of others, which a new code must not equal.
        sqlx::query(
            "DELETE FROM member_codes WHERE app_id = $1 AND env = $2 AND purpose = $3 \
             AND (email = $4 OR used_at IS NOT NULL OR expires_at <= $5 OR wrong_tries >= $6)",
        )
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(purpose.as_str())
        .bind(to.as_str())
        .bind(now.as_micros())
        .bind(i64::from(MAX_WRONG_TRIES))
        .execute(&mut *tx)
        .await?;
        let mut code = purpose.new_code();
        loop {
            let hash = code_hash(scope, purpose, &code);
            let taken = sqlx::query(
                "SELECT 1 AS n FROM member_codes WHERE app_id = $1 AND env = $2 AND purpose = $3 AND code_hash = $4",
            )
            .bind(scope.app_id.as_str())
            .bind(scope.env.as_str())
            .bind(purpose.as_str())
            .bind(&hash)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
            if !taken {
                sqlx::query(
                    "INSERT INTO member_codes (app_id, env, purpose, email, member_id, code_hash, \
                     wrong_tries, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8)",
                )
                .bind(scope.app_id.as_str())
                .bind(scope.env.as_str())
                .bind(purpose.as_str())
                .bind(to.as_str())
                .bind(member.map(|m| m.id.as_str()))
                .bind(&hash)
                .bind(expires_at.as_micros())
                .bind(now.as_micros())
                .execute(&mut *tx)
                .await?;
                break;
            }
            code = purpose.new_code();
        }
        let lifetime_minutes = purpose.lifetime_secs() / 60;
        let vars = TemplateVars {
            link: link_base.map(|base| format!("{base}{code}")),
            code: (!purpose.is_link()).then(|| code.clone()),
            expires_in_minutes: Some(lifetime_minutes),
            expires_in_hours: Some((lifetime_minutes / 60).max(1)),
            member: memberd_core::mail::MemberVars::for_address(to.as_str()),
            ..TemplateVars::default()
        };
        let out = Outgoing {
            kind: purpose.email_kind(),
            to,
            member,
            vars,
            for_nobody,
        };
        let email_id = emails::queue_in(&mut tx, scope, out, now).await?;
        self.commit_write(tx, None).await?;
        Ok(CodeIssued {
            email_id,
            expires_at,
        })
    }

    /// Sets a new password with a reset code and ends every session of the member. `None`:
    /// the code is wrong, used, expired or dead of wrong tries, and nothing changed.
    pub async fn reset_password_with_code(
        &self,
        scope: &Scope,
        code: &str,
        password_hash: String,
        now: Timestamp,
    ) -> Result<Option<MemberView>> {
        let mut tx = self.begin_write().await?;
        let checked =
            check_code_in(&mut tx, scope, CodePurpose::PasswordReset, None, code, now).await?;
        let Checked::Good {
            member_id: Some(id),
            ..
        } = checked
        else {
            tx.commit().await?;
            return Ok(None);
        };
        let change = |m: &Member| {
            m.patch(
                MemberPatch {
                    password_hash: Some(password_hash),
                    ..Default::default()
                },
                now,
            )
        };
        let found = match update_member_in(&mut tx, self, scope, &id, None, change).await {
            Ok((view, _)) => Some(view),
            // The member was deleted since: the code is used up, and the answer is a refusal.
            Err(crate::StoreError::NotFound { .. }) => None,
            Err(other) => return Err(other),
        };
        self.commit_write(tx, Some(scope)).await?;
        Ok(found)
    }

    /// Marks a member verified with a verification link's code, if the member's address is
    /// still the one it was sent to. `None`: nothing changed.
    pub async fn verify_email_with_code(
        &self,
        scope: &Scope,
        code: &str,
        now: Timestamp,
    ) -> Result<Option<MemberView>> {
        let mut tx = self.begin_write().await?;
        let checked = check_code_in(
            &mut tx,
            scope,
            CodePurpose::EmailVerification,
            None,
            code,
            now,
        )
        .await?;
        let Checked::Good {
            member_id: Some(id),
            email,
        } = checked
        else {
            tx.commit().await?;
            return Ok(None);
        };
        let mut moved = false;
        let change = |m: &Member| {
            if m.email.as_str() != email {
                moved = true;
                return Ok(None);
            }
            m.patch(
                MemberPatch {
                    verified: Some(true),
                    ..Default::default()
                },
                now,
            )
        };
        let found = match update_member_in(&mut tx, self, scope, &id, None, change).await {
            Ok((view, _)) => Some(view),
            Err(crate::StoreError::NotFound { .. }) => None,
            Err(other) => return Err(other),
        };
        self.commit_write(tx, Some(scope)).await?;
        Ok(found.filter(|_| !moved))
    }

    /// Opens `session` for the member a passwordless login code was sent to. `false`: the
    /// code is not good for this address (and a wrong one counted), nothing opened.
    pub async fn login_with_code(
        &self,
        scope: &Scope,
        email: &Email,
        code: &str,
        session: &Session,
        now: Timestamp,
    ) -> Result<bool> {
        let mut tx = self.begin_write().await?;
        let checked = check_code_in(
            &mut tx,
            scope,
            CodePurpose::PasswordlessLogin,
            Some(email),
            code,
            now,
        )
        .await?;
        match checked {
            Checked::Good {
                member_id: Some(id),
                ..
            } if id == session.member_id => {
                accounts::insert_session(&mut tx, scope, session).await?;
                self.commit_write(tx, Some(scope)).await?;
                Ok(true)
            }
            _ => {
                tx.commit().await?;
                Ok(false)
            }
        }
    }

    /// Creates a member (verified: the code shows the address is theirs) with a passwordless
    /// sign-up code sent to their address, with any free plans and `session`. `None`: the
    /// code is not good for this address, nothing created.
    #[allow(clippy::too_many_arguments)]
    pub async fn signup_with_code(
        &self,
        scope: &Scope,
        code: &str,
        member: &Member,
        event: &NewEvent,
        plans: &[PlanId],
        session: &Session,
        now: Timestamp,
    ) -> Result<Option<MemberView>> {
        let mut tx = self.begin_write().await?;
        let checked = check_code_in(
            &mut tx,
            scope,
            CodePurpose::PasswordlessSignup,
            Some(&member.email),
            code,
            now,
        )
        .await?;
        if !matches!(checked, Checked::Good { .. }) {
            tx.commit().await?;
            return Ok(None);
        }
        let view =
            insert_member_in(&mut tx, self, scope, member, event, plans, Some(session)).await?;
        self.commit_write(tx, Some(scope)).await?;
        Ok(Some(view))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use memberd_core::{AppId, Environment};

    #[test]
    fn a_code_hashes_differently_in_another_environment_or_purpose() {
        let app = AppId::from_trusted("app_x".into());
        let sandbox = Scope::new(app.clone(), Environment::Sandbox);
        let live = Scope::new(app, Environment::Live);
        let a = code_hash(&sandbox, CodePurpose::PasswordReset, "123456");
        assert_eq!(a.len(), 64);
        assert_eq!(a, code_hash(&sandbox, CodePurpose::PasswordReset, "123456"));
        assert_ne!(a, code_hash(&live, CodePurpose::PasswordReset, "123456"));
        assert_ne!(
            a,
            code_hash(&sandbox, CodePurpose::PasswordlessLogin, "123456")
        );
        assert_ne!(a, code_hash(&sandbox, CodePurpose::PasswordReset, "123457"));
    }
}
