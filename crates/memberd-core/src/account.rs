//! Members' own accounts: the settings of the member-facing API, sessions, and the content
//! memberd gates for them.

use std::fmt;

use crate::member::PASSWORD_MAX_CHARS;
use crate::plan::parse_permissions;
use crate::{DomainError, Environment, MemberId, PlanId, Timestamp};

pub const SESSION_LIFETIME_DAYS_DEFAULT: u32 = 14;
pub const SESSION_LIFETIME_DAYS_MAX: u32 = 365;
pub const PASSWORD_MIN_LENGTH_DEFAULT: u32 = 8;
/// The shortest minimum an operator may set: a floor below which no password is worth a hash.
pub const PASSWORD_MIN_LENGTH_FLOOR: u32 = 6;
pub const PASSWORD_MIN_LENGTH_MAX: u32 = 128;
pub const ALLOWED_ORIGINS_MAX: usize = 100;
const ORIGIN_MAX_CHARS: usize = 253 + 20;

/// An origin a browser API answers: `https://example.com`, `http://localhost:3000`, or with
/// any port, `http://localhost:*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginPattern {
    /// `scheme://host`, lowercase.
    base: String,
    port: Port,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Port {
    /// No port: the scheme's default.
    Default,
    Is(u16),
    Any,
}

impl OriginPattern {
    pub fn parse(field: &str, raw: &str) -> Result<OriginPattern, DomainError> {
        let bad = |why: &str| {
            DomainError::invalid(
                field.to_owned(),
                "invalid_origin",
                format!("{raw:?} is not an origin ({why}); write it as https://example.com, http://localhost:3000 or http://localhost:*"),
            )
        };
        if raw.len() > ORIGIN_MAX_CHARS {
            return Err(bad("too long"));
        }
        let lower = raw.trim().to_ascii_lowercase();
        let (scheme, rest) = lower.split_once("://").ok_or_else(|| bad("no scheme"))?;
        if scheme != "http" && scheme != "https" {
            return Err(bad("the scheme must be http or https"));
        }
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad("an origin has no path, query or user"));
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, "*")) => (host, Port::Any),
            Some((host, port)) if !host.ends_with(']') || rest.starts_with('[') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| bad("the port is not a number"))?;
                (host, Port::Is(port))
            }
            _ => (rest, Port::Default),
        };
        let host_ok = !host.is_empty()
            && host.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':')
            });
        if !host_ok {
            return Err(bad("the host is not a host name or address"));
        }
        Ok(OriginPattern {
            base: format!("{scheme}://{host}"),
            port,
        })
    }

    /// Whether a browser's `Origin` header value is this origin.
    pub fn matches(&self, origin: &str) -> bool {
        let Some(rest) = origin.get(..self.base.len()) else {
            return false;
        };
        if !rest.eq_ignore_ascii_case(&self.base) {
            return false;
        }
        let tail = &origin[self.base.len()..];
        match (&self.port, tail.strip_prefix(':')) {
            (Port::Default, None) => tail.is_empty(),
            (Port::Is(port), Some(p)) => p.parse::<u16>().ok() == Some(*port),
            (Port::Any, None) => tail.is_empty(),
            (Port::Any, Some(p)) => !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()),
            _ => false,
        }
    }
}

impl fmt::Display for OriginPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Port::Default => write!(f, "{}", self.base),
            Port::Is(port) => write!(f, "{}:{port}", self.base),
            Port::Any => write!(f, "{}:*", self.base),
        }
    }
}

/// How one environment's member-facing API behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSettings {
    /// `None`: the environment's default (`default_origins`).
    pub allowed_origins: Option<Vec<OriginPattern>>,
    pub signup_enabled: bool,
    pub session_lifetime_days: u32,
    pub password_min_length: u32,
    /// The sender of this environment's emails; `None`: the server's `--email-from`.
    pub email_from_name: Option<String>,
    pub email_from_address: Option<crate::Email>,
    /// Where a member who clicked a verification link is sent; `None`: a plain page.
    pub verify_redirect_url: Option<String>,
}

/// A change to the settings; each field left `None` stays as it is.
#[derive(Debug, Clone, Default)]
pub struct SettingsPatch {
    /// `Some(None)` goes back to the environment's default.
    pub allowed_origins: Option<Option<Vec<String>>>,
    pub signup_enabled: Option<bool>,
    pub session_lifetime_days: Option<i64>,
    pub password_min_length: Option<i64>,
    /// For these three, `Some(None)` (or an empty string) goes back to the default.
    pub email_from_name: Option<Option<String>>,
    pub email_from_address: Option<Option<String>>,
    pub verify_redirect_url: Option<Option<String>>,
}

/// Sandbox answers the loopback origins, so that a page on a developer's machine works at
/// once; live answers none until they are set.
pub fn default_origins(env: Environment) -> Vec<OriginPattern> {
    match env {
        Environment::Sandbox => ["http://localhost:*", "http://127.0.0.1:*"]
            .iter()
            .map(|o| OriginPattern::parse("allowedOrigins", o).expect("valid defaults"))
            .collect(),
        Environment::Live => Vec::new(),
    }
}

impl EnvSettings {
    pub fn defaults() -> EnvSettings {
        EnvSettings {
            allowed_origins: None,
            signup_enabled: true,
            session_lifetime_days: SESSION_LIFETIME_DAYS_DEFAULT,
            password_min_length: PASSWORD_MIN_LENGTH_DEFAULT,
            email_from_name: None,
            email_from_address: None,
            verify_redirect_url: None,
        }
    }

    /// The origins in effect.
    pub fn origins(&self, env: Environment) -> Vec<OriginPattern> {
        self.allowed_origins
            .clone()
            .unwrap_or_else(|| default_origins(env))
    }

    pub fn allows_origin(&self, env: Environment, origin: &str) -> bool {
        match &self.allowed_origins {
            Some(list) => list.iter().any(|o| o.matches(origin)),
            None => default_origins(env).iter().any(|o| o.matches(origin)),
        }
    }

    pub fn apply(&self, patch: SettingsPatch) -> Result<EnvSettings, DomainError> {
        let mut next = self.clone();
        if let Some(origins) = patch.allowed_origins {
            next.allowed_origins = match origins {
                None => None,
                Some(list) => {
                    if list.len() > ALLOWED_ORIGINS_MAX {
                        return Err(DomainError::invalid(
                            "allowedOrigins",
                            "too_many_origins",
                            format!("at most {ALLOWED_ORIGINS_MAX} origins"),
                        ));
                    }
                    let mut parsed: Vec<OriginPattern> = Vec::with_capacity(list.len());
                    for (i, raw) in list.iter().enumerate() {
                        let origin = OriginPattern::parse(&format!("allowedOrigins[{i}]"), raw)?;
                        if !parsed.contains(&origin) {
                            parsed.push(origin);
                        }
                    }
                    Some(parsed)
                }
            };
        }
        if let Some(on) = patch.signup_enabled {
            next.signup_enabled = on;
        }
        if let Some(days) = patch.session_lifetime_days {
            next.session_lifetime_days =
                in_range("sessionLifetimeDays", days, 1, SESSION_LIFETIME_DAYS_MAX)?;
        }
        if let Some(len) = patch.password_min_length {
            next.password_min_length = in_range(
                "passwordMinLength",
                len,
                PASSWORD_MIN_LENGTH_FLOOR,
                PASSWORD_MIN_LENGTH_MAX,
            )?;
        }
        if let Some(name) = patch.email_from_name {
            next.email_from_name = match cleared(name) {
                None => None,
                Some(name) => Some(sender_name(&name)?),
            };
        }
        if let Some(address) = patch.email_from_address {
            next.email_from_address = match cleared(address) {
                None => None,
                Some(raw) => Some(crate::Email::parse(&raw).map_err(|_| {
                    DomainError::invalid(
                        "emailFromAddress",
                        "invalid_email",
                        format!("emailFromAddress: {raw:?} is not an email address"),
                    )
                })?),
            };
        }
        if let Some(url) = patch.verify_redirect_url {
            next.verify_redirect_url = match cleared(url) {
                None => None,
                Some(url) => Some(redirect_url("verifyRedirectUrl", &url)?),
            };
        }
        Ok(next)
    }

    /// Checks a new password against the environment's minimum, in the words the
    /// Memberstack SDK's codes use.
    pub fn check_password(&self, field: &str, password: &str) -> Result<(), DomainError> {
        let n = password.chars().count();
        if n < self.password_min_length as usize {
            return Err(DomainError::invalid(
                field.to_owned(),
                "invalid-password-too-short",
                format!(
                    "the password must be at least {} characters long",
                    self.password_min_length
                ),
            ));
        }
        if n > PASSWORD_MAX_CHARS {
            return Err(DomainError::invalid(
                field.to_owned(),
                "invalid-password",
                format!("the password must be at most {PASSWORD_MAX_CHARS} characters long"),
            ));
        }
        Ok(())
    }
}

/// An empty value is no value.
fn cleared(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

pub const SENDER_NAME_MAX_CHARS: usize = 100;

/// A name to put before the address in `From:`: one line, no quotes or angle brackets that
/// would change what the header says.
fn sender_name(name: &str) -> Result<String, DomainError> {
    if name.chars().count() > SENDER_NAME_MAX_CHARS {
        return Err(DomainError::invalid(
            "emailFromName",
            "too_long",
            format!("emailFromName must be at most {SENDER_NAME_MAX_CHARS} characters"),
        ));
    }
    if name
        .chars()
        .any(|c| c.is_control() || matches!(c, '"' | '<' | '>' | '\\'))
    {
        return Err(DomainError::invalid(
            "emailFromName",
            "invalid_sender_name",
            "emailFromName must be one line without quotes, backslashes or angle brackets",
        ));
    }
    Ok(name.to_owned())
}

const REDIRECT_URL_MAX_CHARS: usize = 2_048;

/// An absolute `http` or `https` URL to send a browser to.
fn redirect_url(field: &'static str, raw: &str) -> Result<String, DomainError> {
    let bad = || {
        DomainError::invalid(
            field,
            "invalid_url",
            format!("{field} must be an absolute http:// or https:// URL"),
        )
    };
    if raw.len() > REDIRECT_URL_MAX_CHARS
        || raw.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad());
    }
    let lower = raw.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .ok_or_else(bad)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains('@') {
        return Err(bad());
    }
    Ok(raw.to_owned())
}

fn in_range(field: &'static str, value: i64, min: u32, max: u32) -> Result<u32, DomainError> {
    u32::try_from(value)
        .ok()
        .filter(|v| (min..=max).contains(v))
        .ok_or_else(|| {
            DomainError::invalid(
                field,
                "out_of_range",
                format!("{field} must be between {min} and {max}"),
            )
        })
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Logout,
    PasswordChanged,
    Revoked,
    MemberDeleted,
}

impl SessionEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionEnd::Logout => "logout",
            SessionEnd::PasswordChanged => "password_changed",
            SessionEnd::Revoked => "revoked",
            SessionEnd::MemberDeleted => "member_deleted",
        }
    }
}

/// A member's login, from sign-up or login until logout, revoke or expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: crate::SessionId,
    pub member_id: MemberId,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub end_reason: Option<String>,
}

impl Session {
    pub fn open(member_id: MemberId, settings: &EnvSettings, now: Timestamp) -> Session {
        Session {
            id: crate::SessionId::generate(),
            member_id,
            created_at: now,
            expires_at: now.plus_days(settings.session_lifetime_days),
            ended_at: None,
            end_reason: None,
        }
    }

    /// Live: not ended and not expired.
    pub fn live(&self, now: Timestamp) -> bool {
        self.ended_at.is_none() && now < self.expires_at
    }
}

pub const CONTENT_ID_MAX_CHARS: usize = 128;
pub const CONTENT_MAX_CHARS: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    Html,
    Text,
}

impl ContentType {
    pub fn as_str(self) -> &'static str {
        match self {
            ContentType::Html => "HTML",
            ContentType::Text => "TEXT",
        }
    }

    pub fn parse(raw: &str) -> Option<ContentType> {
        match raw {
            "HTML" => Some(ContentType::Html),
            "TEXT" => Some(ContentType::Text),
            _ => None,
        }
    }
}

/// Content memberd keeps and hands to a member who may see it: one holding any of its plans
/// actively or any of its permissions; with neither, any logged-in member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecureContent {
    pub id: String,
    pub content_type: ContentType,
    pub content: String,
    pub plan_ids: Vec<PlanId>,
    pub permissions: Vec<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// Secure content as an operator writes it; `None` fields of a change stay as they are.
#[derive(Debug, Clone, Default)]
pub struct ContentDraft {
    pub content_type: Option<String>,
    pub content: Option<String>,
    pub plan_ids: Option<Vec<String>>,
    pub permissions: Option<Vec<String>>,
}

pub fn parse_content_id(raw: &str) -> Result<String, DomainError> {
    let ok = !raw.is_empty()
        && raw.len() <= CONTENT_ID_MAX_CHARS
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !ok {
        return Err(DomainError::invalid(
            "id",
            "invalid_content_id",
            format!("id must be 1 to {CONTENT_ID_MAX_CHARS} letters, digits, '-', '_' or '.'"),
        ));
    }
    Ok(raw.to_owned())
}

impl SecureContent {
    pub fn create(
        id: &str,
        draft: ContentDraft,
        now: Timestamp,
    ) -> Result<SecureContent, DomainError> {
        let id = parse_content_id(id)?;
        let blank = SecureContent {
            id,
            content_type: ContentType::Html,
            content: String::new(),
            plan_ids: Vec::new(),
            permissions: Vec::new(),
            created_at: now,
            updated_at: now,
        };
        if draft.content.is_none() {
            return Err(DomainError::invalid(
                "content",
                "required_field",
                "content is required",
            ));
        }
        blank.change(draft, now)
    }

    pub fn change(
        &self,
        draft: ContentDraft,
        now: Timestamp,
    ) -> Result<SecureContent, DomainError> {
        let mut next = self.clone();
        if let Some(raw) = draft.content_type {
            next.content_type = ContentType::parse(&raw).ok_or_else(|| {
                DomainError::invalid("type", "invalid_content_type", "type must be HTML or TEXT")
            })?;
        }
        if let Some(content) = draft.content {
            if content.chars().count() > CONTENT_MAX_CHARS {
                return Err(DomainError::invalid(
                    "content",
                    "too_long",
                    format!("content must be at most {CONTENT_MAX_CHARS} characters"),
                ));
            }
            crate::fields::check_no_nul("content", &content)?;
            next.content = content;
        }
        if let Some(ids) = draft.plan_ids {
            let mut plans = Vec::with_capacity(ids.len());
            for (i, raw) in ids.iter().enumerate() {
                let id = PlanId::parse(raw).ok_or_else(|| {
                    DomainError::invalid(
                        format!("planIds[{i}]"),
                        "invalid_id",
                        format!("{raw:?} is not a plan id (pln_…)"),
                    )
                })?;
                if !plans.contains(&id) {
                    plans.push(id);
                }
            }
            next.plan_ids = plans;
        }
        if let Some(perms) = draft.permissions {
            next.permissions = parse_permissions(perms)?;
        }
        next.updated_at = now;
        Ok(next)
    }

    /// Whether a member with these active plans and permissions may see it.
    pub fn allows(&self, active_plans: &[PlanId], permissions: &[String]) -> bool {
        if self.plan_ids.is_empty() && self.permissions.is_empty() {
            return true;
        }
        self.plan_ids.iter().any(|p| active_plans.contains(p))
            || self.permissions.iter().any(|p| permissions.contains(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(raw: &str) -> OriginPattern {
        OriginPattern::parse("o", raw).unwrap()
    }

    #[test]
    fn origins_match_exactly_or_on_any_port() {
        assert!(origin("https://example.com").matches("https://example.com"));
        assert!(origin("https://Example.com/").matches("https://example.com"));
        assert!(!origin("https://example.com").matches("https://example.com:8443"));
        assert!(!origin("https://example.com").matches("https://example.com.evil.net"));
        assert!(!origin("https://example.com").matches("http://example.com"));
        assert!(origin("http://localhost:3000").matches("http://localhost:3000"));
        assert!(!origin("http://localhost:3000").matches("http://localhost:3001"));
        let any = origin("http://localhost:*");
        assert!(any.matches("http://localhost:5173"));
        assert!(any.matches("http://localhost"));
        assert!(!any.matches("http://localhost.evil.net:80"));
        assert!(!any.matches("http://localhost:"));
        assert_eq!(any.to_string(), "http://localhost:*");
    }

    #[test]
    fn bad_origins_are_named() {
        for bad in [
            "example.com",
            "ftp://x",
            "https://x/path",
            "https://",
            "https://a b",
            "https://x:99999",
        ] {
            let err = OriginPattern::parse("allowedOrigins[0]", bad).unwrap_err();
            assert!(
                matches!(&err, DomainError::Invalid { field, .. } if field == "allowedOrigins[0]"),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn sandbox_allows_loopback_by_default_and_live_nothing() {
        let s = EnvSettings::defaults();
        assert!(s.allows_origin(Environment::Sandbox, "http://127.0.0.1:4000"));
        assert!(s.allows_origin(Environment::Sandbox, "http://localhost:8080"));
        assert!(!s.allows_origin(Environment::Sandbox, "https://example.com"));
        assert!(!s.allows_origin(Environment::Live, "http://127.0.0.1:4000"));
    }

    #[test]
    fn settings_are_checked_when_changed() {
        let s = EnvSettings::defaults();
        let patch = SettingsPatch {
            session_lifetime_days: Some(0),
            ..Default::default()
        };
        assert!(s.apply(patch).is_err());
        let patch = SettingsPatch {
            allowed_origins: Some(Some(vec![
                "https://a.example".into(),
                "https://a.example/".into(),
            ])),
            password_min_length: Some(12),
            ..Default::default()
        };
        let next = s.apply(patch).unwrap();
        assert_eq!(next.allowed_origins.as_ref().map(Vec::len), Some(1));
        assert!(next.check_password("password", "elevenchars").is_err());
        assert!(next.check_password("password", "twelve chars").is_ok());
    }

    #[test]
    fn content_without_rules_is_for_any_member() {
        let now = Timestamp::parse("2026-01-01T00:00:00Z").unwrap();
        let draft = ContentDraft {
            content: Some("x".into()),
            ..Default::default()
        };
        let open = SecureContent::create("a", draft, now).unwrap();
        assert!(open.allows(&[], &[]));
        let gated = open
            .change(
                ContentDraft {
                    permissions: Some(vec!["view:x".into()]),
                    ..Default::default()
                },
                now,
            )
            .unwrap();
        assert!(!gated.allows(&[], &[]));
        assert!(gated.allows(&[], &["view:x".to_owned()]));
    }
}
