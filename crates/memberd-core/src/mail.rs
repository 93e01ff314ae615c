//! The emails memberd sends members: their kinds, the templates they are written from, and
//! rendering those with what a template may name. A template is checked when it is set (it
//! must parse and render), so that an email never fails to be written later.

use std::fmt;

use minijinja::{AutoEscape, Environment};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::{DomainError, Member};

/// The longest subject a mail header line holds.
pub const SUBJECT_MAX_BYTES: usize = 998;
pub const BODY_MAX_BYTES: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EmailKind {
    PasswordReset,
    EmailVerification,
    PasswordlessLogin,
    PasswordlessSignup,
    EmailChanged,
}

impl EmailKind {
    pub const ALL: [EmailKind; 5] = [
        EmailKind::PasswordReset,
        EmailKind::EmailVerification,
        EmailKind::PasswordlessLogin,
        EmailKind::PasswordlessSignup,
        EmailKind::EmailChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EmailKind::PasswordReset => "password_reset",
            EmailKind::EmailVerification => "email_verification",
            EmailKind::PasswordlessLogin => "passwordless_login",
            EmailKind::PasswordlessSignup => "passwordless_signup",
            EmailKind::EmailChanged => "email_changed",
        }
    }

    pub fn parse(raw: &str) -> Option<EmailKind> {
        EmailKind::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

impl fmt::Display for EmailKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a template names as `member`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberVars {
    pub id: String,
    pub email: String,
    pub custom_fields: Map<String, Value>,
    pub meta_data: Map<String, Value>,
}

impl MemberVars {
    pub fn of(member: &Member) -> MemberVars {
        let object = |value: Value| match value {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        MemberVars {
            id: member.id.to_string(),
            email: member.email.to_string(),
            custom_fields: object(serde_json::to_value(&member.custom_fields).unwrap_or_default()),
            meta_data: object(serde_json::to_value(&member.meta_data).unwrap_or_default()),
        }
    }

    /// An address that has no member yet (a passwordless sign-up).
    pub fn for_address(email: &str) -> MemberVars {
        MemberVars {
            email: email.to_owned(),
            ..MemberVars::default()
        }
    }
}

/// What a template names as `app`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AppVars {
    pub id: String,
    pub name: String,
}

/// Everything a template may name. What a kind does not carry is left out, and renders as
/// nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TemplateVars {
    pub member: MemberVars,
    pub app: AppVars,
    pub code: Option<String>,
    pub link: Option<String>,
    pub expires_in_minutes: Option<i64>,
    pub expires_in_hours: Option<i64>,
    pub old_email: Option<String>,
    pub new_email: Option<String>,
}

impl TemplateVars {
    /// Variables like those of a real email of `kind`, to try a template with.
    pub fn sample(kind: EmailKind) -> TemplateVars {
        let mut custom_fields = Map::new();
        custom_fields.insert("first-name".into(), Value::String("Ada".into()));
        let mut vars = TemplateVars {
            member: MemberVars {
                id: "mem_sample".into(),
                email: "ada@example.com".into(),
                custom_fields,
                meta_data: Map::new(),
            },
            app: AppVars {
                id: "app_sample".into(),
                name: "Example".into(),
            },
            ..TemplateVars::default()
        };
        match kind {
            EmailKind::PasswordReset => {
                vars.code = Some("123456".into());
                vars.expires_in_minutes = Some(60);
                vars.expires_in_hours = Some(1);
            }
            EmailKind::PasswordlessLogin | EmailKind::PasswordlessSignup => {
                vars.code = Some("123456".into());
                vars.expires_in_minutes = Some(10);
                vars.expires_in_hours = Some(1);
            }
            EmailKind::EmailVerification => {
                vars.link = Some("https://members.example.com/verify?token=sample".into());
                vars.expires_in_minutes = Some(24 * 60);
                vars.expires_in_hours = Some(24);
            }
            EmailKind::EmailChanged => {
                vars.old_email = Some("ada@example.com".into());
                vars.new_email = Some("ada@example.org".into());
            }
        }
        vars
    }
}

/// An email ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A template: a subject, a text body and an HTML body. In the HTML body every variable is
/// HTML-escaped; in the subject and the text, none is (they are not HTML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailTemplate {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The three parts, each under the name that picks its escaping.
const PARTS: [(&str, &str); 3] = [
    ("subject", "subject.txt"),
    ("text", "text.txt"),
    ("html", "html.html"),
];

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env
}

/// A template error as the API names it: the part, the line and what is wrong.
fn template_error(field: &'static str, err: &minijinja::Error) -> DomainError {
    let mut message = format!("{field}: ");
    if let Some(line) = err.line() {
        message.push_str(&format!("line {line}: "));
    }
    message.push_str(&err.kind().to_string());
    if let Some(detail) = err.detail() {
        message.push_str(": ");
        message.push_str(detail);
    }
    DomainError::invalid(field, "invalid_template", message)
}

/// One line, with nothing a variable could use to start another header.
fn one_line(subject: &str) -> String {
    let flat: String = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    flat.trim().to_owned()
}

impl EmailTemplate {
    /// Checks a template: sizes, and that each part parses and renders with the variables of
    /// every kind (so an unknown filter is found now, not when an email is written).
    pub fn parse(
        subject: String,
        text: String,
        html: String,
    ) -> Result<EmailTemplate, DomainError> {
        if subject.trim().is_empty() {
            return Err(DomainError::invalid(
                "subject",
                "required",
                "subject is required",
            ));
        }
        if subject.len() > SUBJECT_MAX_BYTES {
            return Err(DomainError::invalid(
                "subject",
                "too_long",
                format!("subject must be at most {SUBJECT_MAX_BYTES} bytes"),
            ));
        }
        for (field, body) in [("text", &text), ("html", &html)] {
            if body.len() > BODY_MAX_BYTES {
                return Err(DomainError::invalid(
                    field,
                    "too_long",
                    format!("{field} must be at most {BODY_MAX_BYTES} bytes"),
                ));
            }
        }
        let template = EmailTemplate {
            subject,
            text,
            html,
        };
        for kind in EmailKind::ALL {
            template.render(&TemplateVars::sample(kind))?;
        }
        Ok(template)
    }

    pub fn render(&self, vars: &TemplateVars) -> Result<RenderedEmail, DomainError> {
        let env = environment();
        let mut out = [String::new(), String::new(), String::new()];
        for (i, ((field, name), source)) in PARTS
            .iter()
            .zip([&self.subject, &self.text, &self.html])
            .enumerate()
        {
            let template = env
                .template_from_named_str(name, source)
                .map_err(|e| template_error(field, &e))?;
            out[i] = template
                .render(vars)
                .map_err(|e| template_error(field, &e))?;
        }
        let [subject, text, html] = out;
        Ok(RenderedEmail {
            subject: one_line(&subject),
            text,
            html,
        })
    }

    /// The built-in template of a kind, in plain English.
    pub fn default_for(kind: EmailKind) -> EmailTemplate {
        let (subject, text, html) = match kind {
            EmailKind::PasswordReset => (
                "Your {{ app.name }} password reset code",
                "Hello,\n\nSomeone asked to reset the password of your {{ app.name }} account ({{ member.email }}). Your code is:\n\n    {{ code }}\n\nIt works once, for {{ expires_in_minutes }} minutes. If you did not ask for it, ignore this email: your password stays as it is.\n",
                "<p>Hello,</p>\n<p>Someone asked to reset the password of your {{ app.name }} account ({{ member.email }}). Your code is:</p>\n<p style=\"font-size: 24px; font-weight: bold; letter-spacing: 4px\">{{ code }}</p>\n<p>It works once, for {{ expires_in_minutes }} minutes. If you did not ask for it, ignore this email: your password stays as it is.</p>\n",
            ),
            EmailKind::PasswordlessLogin => (
                "Your {{ app.name }} login code",
                "Hello,\n\nYour code to log in to {{ app.name }} is:\n\n    {{ code }}\n\nIt works once, for {{ expires_in_minutes }} minutes. If you did not try to log in, ignore this email.\n",
                "<p>Hello,</p>\n<p>Your code to log in to {{ app.name }} is:</p>\n<p style=\"font-size: 24px; font-weight: bold; letter-spacing: 4px\">{{ code }}</p>\n<p>It works once, for {{ expires_in_minutes }} minutes. If you did not try to log in, ignore this email.</p>\n",
            ),
            EmailKind::PasswordlessSignup => (
                "Your {{ app.name }} sign-up code",
                "Hello,\n\nYour code to finish signing up to {{ app.name }} is:\n\n    {{ code }}\n\nIt works once, for {{ expires_in_minutes }} minutes. If you did not sign up, ignore this email: no account is made without the code.\n",
                "<p>Hello,</p>\n<p>Your code to finish signing up to {{ app.name }} is:</p>\n<p style=\"font-size: 24px; font-weight: bold; letter-spacing: 4px\">{{ code }}</p>\n<p>It works once, for {{ expires_in_minutes }} minutes. If you did not sign up, ignore this email: no account is made without the code.</p>\n",
            ),
            EmailKind::EmailVerification => (
                "Confirm your email address for {{ app.name }}",
                "Hello,\n\nPlease confirm that {{ member.email }} is your address for {{ app.name }} by opening this link:\n\n{{ link }}\n\nThe link works once, for {{ expires_in_hours }} hours. If you did not sign up, ignore this email.\n",
                "<p>Hello,</p>\n<p>Please confirm that {{ member.email }} is your address for {{ app.name }}:</p>\n<p><a href=\"{{ link }}\">Confirm my email address</a></p>\n<p>The link works once, for {{ expires_in_hours }} hours. If you did not sign up, ignore this email.</p>\n",
            ),
            EmailKind::EmailChanged => (
                "The email address of your {{ app.name }} account was changed",
                "Hello,\n\nThe email address of your {{ app.name }} account was changed from {{ old_email }} to {{ new_email }}. Emails about the account now go to the new address.\n\nIf you did not make this change, contact {{ app.name }} at once.\n",
                "<p>Hello,</p>\n<p>The email address of your {{ app.name }} account was changed from {{ old_email }} to {{ new_email }}. Emails about the account now go to the new address.</p>\n<p>If you did not make this change, contact {{ app.name }} at once.</p>\n",
            ),
        };
        EmailTemplate {
            subject: subject.to_owned(),
            text: text.to_owned(),
            html: html.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_parses_and_names_what_its_email_carries() {
        for kind in EmailKind::ALL {
            let t = EmailTemplate::default_for(kind);
            let t = EmailTemplate::parse(t.subject, t.text, t.html).unwrap();
            let vars = TemplateVars::sample(kind);
            let out = t.render(&vars).unwrap();
            assert!(out.subject.contains("Example"), "{kind}: {}", out.subject);
            for wanted in [&vars.code, &vars.link, &vars.old_email, &vars.new_email]
                .into_iter()
                .flatten()
            {
                assert!(
                    out.text.contains(wanted.as_str()),
                    "{kind}: {wanted} in {}",
                    out.text
                );
                // Escaped in HTML, as an attribute or text may hold it.
                let escaped = wanted.replace('/', "&#x2f;");
                assert!(
                    out.html.contains(&escaped),
                    "{kind}: {escaped} in {}",
                    out.html
                );
            }
        }
    }

    #[test]
    fn variables_are_escaped_in_html_and_left_alone_in_text() {
        let t = EmailTemplate::parse(
            "Hi {{ member.customFields.name }}".into(),
            "Hi {{ member.customFields.name }}".into(),
            "<p>Hi {{ member.customFields.name }}</p>".into(),
        )
        .unwrap();
        let mut vars = TemplateVars::sample(EmailKind::PasswordReset);
        let name = "<script>alert(\"x\")</script> & \"Bob\"";
        vars.member
            .custom_fields
            .insert("name".into(), Value::String(name.into()));
        let out = t.render(&vars).unwrap();
        assert!(out.html.contains("&lt;script&gt;"), "{}", out.html);
        assert!(!out.html.contains("<script>"), "{}", out.html);
        assert!(out.html.contains("&amp;"), "{}", out.html);
        assert_eq!(out.text, format!("Hi {name}"));
        assert_eq!(out.subject, format!("Hi {name}"));
    }

    #[test]
    fn a_broken_template_is_refused_with_its_part_and_line() {
        let err = EmailTemplate::parse(
            "Hi".into(),
            "ok".into(),
            "<p>\nline two\n{{ code }\n".into(),
        )
        .unwrap_err();
        let DomainError::Invalid { field, message, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(field, "html");
        assert!(message.starts_with("html: line 3: "), "{message}");

        let err =
            EmailTemplate::parse("{{ code | shout }}".into(), "".into(), "".into()).unwrap_err();
        assert!(
            matches!(&err, DomainError::Invalid { field, .. } if field == "subject"),
            "{err:?}"
        );
        let err = EmailTemplate::parse("  ".into(), "".into(), "".into()).unwrap_err();
        assert!(matches!(&err, DomainError::Invalid { field, .. } if field == "subject"));
    }

    #[test]
    fn no_variable_can_add_a_header_line() {
        let t = EmailTemplate::parse("Code for {{ member.email }}".into(), "".into(), "".into())
            .unwrap();
        let mut vars = TemplateVars::sample(EmailKind::PasswordReset);
        vars.member.email = "a\r\nBcc: x@y".into();
        let out = t.render(&vars).unwrap();
        assert!(!out.subject.contains(['\r', '\n']), "{:?}", out.subject);
    }

    #[test]
    fn missing_fields_render_as_nothing() {
        let t = EmailTemplate::parse(
            "x".into(),
            "[{{ member.customFields.nickname }}]".into(),
            "".into(),
        )
        .unwrap();
        let out = t
            .render(&TemplateVars::sample(EmailKind::PasswordReset))
            .unwrap();
        assert_eq!(out.text, "[]");
    }

    #[test]
    fn kinds_round_trip() {
        for kind in EmailKind::ALL {
            assert_eq!(EmailKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
        }
        assert_eq!(EmailKind::parse("welcome"), None);
    }
}
