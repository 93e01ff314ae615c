//! Operators: the people who run a membership program from the dashboard. Each has a role
//! and is let into all apps or some; what a role may do is decided here, so that the pages
//! and the CLI ask one place.

use std::fmt;
use std::str::FromStr;

use crate::error::DomainError;
use crate::ids::{AppId, AuditId, OperatorId};
use crate::tenancy::Environment;
use crate::{Email, Timestamp};

/// Operators' passwords guard every app they may enter: longer than members' at the least.
pub const OPERATOR_PASSWORD_MIN_CHARS: usize = 12;
pub const OPERATOR_PASSWORD_MAX_CHARS: usize = 1024;

/// How long a dashboard sign-in lasts.
pub const SESSION_HOURS: u64 = 12;

/// How long the link that sets an operator's password stays good.
pub const PASSWORD_LINK_HOURS: u64 = 24;

/// What an operator may do, from most to least.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Everything, including operators and keys.
    Owner,
    /// Everything but operators and keys.
    Admin,
    /// Reads only.
    Viewer,
}

/// The kinds of thing a role is or is not allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// See an app's data.
    Read,
    /// Change members, plans, connections, webhooks, settings; import.
    Change,
    /// Create and revoke API keys, see and change who may sign in.
    ManageAccess,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Admin, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
        }
    }

    pub fn may(self, capability: Capability) -> bool {
        match capability {
            Capability::Read => true,
            Capability::Change => self != Role::Viewer,
            Capability::ManageAccess => self == Role::Owner,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = DomainError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                DomainError::invalid(
                    "role",
                    "invalid_role",
                    format!("unknown role {s:?}: expected owner, admin or viewer"),
                )
            })
    }
}

/// The apps an operator may enter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppAccess {
    /// Every app, including those made later.
    All,
    /// These apps only.
    Only(Vec<AppId>),
}

impl AppAccess {
    pub fn allows(&self, app: &AppId) -> bool {
        match self {
            AppAccess::All => true,
            AppAccess::Only(apps) => apps.contains(app),
        }
    }
}

/// A person who signs in to the dashboard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub id: OperatorId,
    pub email: Email,
    pub role: Role,
    pub apps: AppAccess,
    /// The argon2id hash; `None` until the operator follows their link.
    pub password_hash: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Operator {
    /// A new operator, without a password until they set one.
    pub fn create(
        email: &str,
        role: Role,
        apps: AppAccess,
        now: Timestamp,
    ) -> Result<Self, DomainError> {
        if let AppAccess::Only(list) = &apps {
            if list.is_empty() {
                return Err(DomainError::invalid(
                    "apps",
                    "no_apps",
                    "an operator must be let into at least one app, or all of them",
                ));
            }
        }
        Ok(Operator {
            id: OperatorId::generate(),
            email: Email::parse(email)?,
            role,
            apps,
            password_hash: None,
            created_at: now,
            updated_at: now,
        })
    }

    pub fn may(&self, capability: Capability) -> bool {
        self.role.may(capability)
    }

    /// Whether this operator may act on `app` with `capability`.
    pub fn may_in(&self, app: &AppId, capability: Capability) -> bool {
        self.apps.allows(app) && self.may(capability)
    }
}

/// Refuses a password an operator may not have.
pub fn check_operator_password(password: &str) -> Result<(), DomainError> {
    let n = password.chars().count();
    if !(OPERATOR_PASSWORD_MIN_CHARS..=OPERATOR_PASSWORD_MAX_CHARS).contains(&n) {
        return Err(DomainError::invalid(
            "password",
            "invalid_password",
            format!(
                "an operator's password must be {OPERATOR_PASSWORD_MIN_CHARS} to \
                 {OPERATOR_PASSWORD_MAX_CHARS} characters long"
            ),
        ));
    }
    Ok(())
}

/// One change an operator made: who, what, when and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: AuditId,
    pub at: Timestamp,
    pub operator_id: OperatorId,
    /// As it was when the change was made, so that the entry reads the same after the
    /// operator's address changes or they are removed.
    pub operator_email: String,
    /// The app and environment changed; `None` for changes outside any (operators).
    pub app_id: Option<AppId>,
    pub env: Option<Environment>,
    /// What was done, as a dotted name: `member.created`, `plan.archived`, `key.revoked`.
    pub action: String,
    /// The id of what was changed (`mem_…`, `pln_…`), when there is one.
    pub target: Option<String>,
    /// A short sentence for people, with no secret in it.
    pub summary: String,
}

impl AuditEntry {
    pub fn new(
        operator: &Operator,
        place: Option<(&AppId, Environment)>,
        action: &str,
        target: Option<&str>,
        summary: impl Into<String>,
        now: Timestamp,
    ) -> Self {
        AuditEntry {
            id: AuditId::generate(),
            at: now,
            operator_id: operator.id.clone(),
            operator_email: operator.email.to_string(),
            app_id: place.map(|(app, _)| app.clone()),
            env: place.map(|(_, env)| env),
            action: action.to_owned(),
            target: target.map(str::to_owned),
            summary: summary.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_they_say() {
        use Capability::*;
        let table = [
            (Role::Owner, [true, true, true]),
            (Role::Admin, [true, true, false]),
            (Role::Viewer, [true, false, false]),
        ];
        for (role, expected) in table {
            let got = [Read, Change, ManageAccess].map(|c| role.may(c));
            assert_eq!(got, expected, "{role}");
        }
    }

    #[test]
    fn roles_parse_in_any_case_and_name_the_field_otherwise() {
        assert_eq!("Owner".parse::<Role>().unwrap(), Role::Owner);
        assert_eq!(" viewer ".parse::<Role>().unwrap(), Role::Viewer);
        let err = "root".parse::<Role>().unwrap_err();
        assert!(matches!(err, DomainError::Invalid { ref field, .. } if field == "role"));
    }

    #[test]
    fn an_operator_of_some_apps_enters_only_those() {
        let now = Timestamp::parse("2026-01-01").unwrap();
        let (a, b) = (AppId::generate(), AppId::generate());
        let op = Operator::create(
            "Ann@Example.com",
            Role::Admin,
            AppAccess::Only(vec![a.clone()]),
            now,
        )
        .unwrap();
        assert_eq!(op.email.as_str(), "ann@example.com");
        assert!(op.may_in(&a, Capability::Change));
        assert!(!op.may_in(&b, Capability::Read));
        assert!(!op.may_in(&a, Capability::ManageAccess));
        assert!(
            Operator::create("x@example.com", Role::Owner, AppAccess::Only(vec![]), now).is_err()
        );
        assert!(Operator::create("not an email", Role::Owner, AppAccess::All, now).is_err());
    }

    #[test]
    fn operator_passwords_are_at_least_twelve_characters() {
        assert!(check_operator_password("short-pass1").is_err());
        assert!(check_operator_password("long-enough-pass").is_ok());
        assert!(check_operator_password(&"x".repeat(1025)).is_err());
    }
}
