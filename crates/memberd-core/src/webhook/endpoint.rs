//! A webhook endpoint: where to send, what, in which shape, and with which secrets.

use serde_json::Value;

use super::{outgoing_type, types_of, Flavour};
use crate::fields::check_text;
use crate::{DomainError, EndpointId, Timestamp};

pub const URL_MAX_CHARS: usize = 2_048;
pub const DESCRIPTION_MAX_CHARS: usize = 500;
/// After a rotation the previous secret keeps signing for this long, so receivers can switch.
pub const PREVIOUS_SECRET_GRACE_SECS: i64 = 24 * 60 * 60;

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub url: String,
    pub description: Option<String>,
    /// The types it receives, in its flavour's vocabulary; empty means every type.
    pub event_types: Vec<String>,
    pub flavour: Flavour,
    pub enabled: bool,
    /// Why the dispatcher turned it off, when it did.
    pub disabled_reason: Option<String>,
    pub secret: String,
    pub previous_secret: Option<String>,
    pub previous_secret_until: Option<Timestamp>,
    /// Since when every attempt has failed; cleared by a success.
    pub failing_since: Option<Timestamp>,
    pub last_success_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Default)]
pub struct EndpointDraft {
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub flavour: Option<Flavour>,
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub description: Option<Option<String>>,
    pub event_types: Option<Vec<String>>,
    pub flavour: Option<Flavour>,
    pub enabled: Option<bool>,
}

/// An `http://` or `https://` URL with a host. Where it may point (no private addresses by
/// default) is decided when sending, because DNS answers change.
pub fn parse_url(raw: &str) -> Result<String, DomainError> {
    let url = raw.trim();
    let invalid = |message: &str| DomainError::invalid("url", "invalid_url", message);
    if url.chars().count() > URL_MAX_CHARS {
        return Err(invalid("url must be at most 2048 characters"));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| invalid("url must start with https:// or http://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with(':') {
        return Err(invalid(
            "url must name a host, as in https://example.com/hooks",
        ));
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("url must not contain spaces"));
    }
    Ok(url.to_owned())
}

fn parse_event_types(flavour: Flavour, types: Vec<String>) -> Result<Vec<String>, DomainError> {
    let known = types_of(flavour);
    let mut out: Vec<String> = Vec::with_capacity(types.len());
    for (i, t) in types.into_iter().enumerate() {
        let t = t.trim().to_ascii_lowercase();
        if !known.contains(&t.as_str()) {
            return Err(DomainError::invalid(
                format!("eventTypes[{i}]"),
                "unknown_event_type",
                format!(
                    "{t:?} is not a type the {flavour} flavour sends; it sends: {}",
                    known.join(", ")
                ),
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

fn parse_description(d: Option<String>) -> Result<Option<String>, DomainError> {
    match d.filter(|d| !d.trim().is_empty()) {
        None => Ok(None),
        Some(d) => {
            check_text("description", &d, DESCRIPTION_MAX_CHARS)?;
            Ok(Some(d))
        }
    }
}

impl Endpoint {
    /// A new endpoint signing with `secret`, which the caller generated.
    pub fn create(
        draft: EndpointDraft,
        secret: String,
        now: Timestamp,
    ) -> Result<Endpoint, DomainError> {
        let flavour = draft.flavour.unwrap_or(Flavour::Native);
        Ok(Endpoint {
            id: EndpointId::generate(),
            url: parse_url(&draft.url)?,
            description: parse_description(draft.description)?,
            event_types: parse_event_types(flavour, draft.event_types)?,
            flavour,
            enabled: draft.enabled.unwrap_or(true),
            disabled_reason: None,
            secret,
            previous_secret: None,
            previous_secret_until: None,
            failing_since: None,
            last_success_at: None,
            created_at: now,
            updated_at: now,
        })
    }

    /// Applies a patch; `None` when nothing changed. Turning an endpoint back on forgets why
    /// it was turned off and how long it had been failing.
    pub fn patch(
        &self,
        patch: EndpointPatch,
        now: Timestamp,
    ) -> Result<Option<Endpoint>, DomainError> {
        let mut next = self.clone();
        if let Some(url) = patch.url {
            next.url = parse_url(&url)?;
        }
        if let Some(d) = patch.description {
            next.description = parse_description(d)?;
        }
        if let Some(f) = patch.flavour {
            next.flavour = f;
        }
        let types = patch
            .event_types
            .unwrap_or_else(|| next.event_types.clone());
        next.event_types = parse_event_types(next.flavour, types)?;
        if let Some(enabled) = patch.enabled {
            if enabled && !self.enabled {
                next.disabled_reason = None;
                next.failing_since = None;
            }
            next.enabled = enabled;
        }
        if next == *self {
            return Ok(None);
        }
        next.updated_at = now;
        Ok(Some(next))
    }

    /// Starts signing with `new_secret`; the current one keeps signing for 24 hours.
    pub fn rotate(&self, new_secret: String, now: Timestamp) -> Endpoint {
        Endpoint {
            previous_secret: Some(self.secret.clone()),
            previous_secret_until: Some(Timestamp::from_micros(
                now.as_micros() + PREVIOUS_SECRET_GRACE_SECS * 1_000_000,
            )),
            secret: new_secret,
            updated_at: now,
            ..self.clone()
        }
    }

    /// The secrets that sign a message sent now: the current one first.
    pub fn signing_secrets(&self, now: Timestamp) -> Vec<&str> {
        let mut secrets = vec![self.secret.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous_secret, self.previous_secret_until) {
            if now < until {
                secrets.push(previous);
            }
        }
        secrets
    }

    /// The type this endpoint receives an event as, or `None` when it does not want it.
    pub fn wants(&self, kind: &str, data: &Value) -> Option<&'static str> {
        let outgoing = outgoing_type(self.flavour, kind, data)?;
        (self.event_types.is_empty() || self.event_types.iter().any(|t| t == outgoing))
            .then_some(outgoing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::parse("2026-03-01T00:00:00Z").unwrap()
    }

    fn draft(flavour: Flavour, types: &[&str]) -> EndpointDraft {
        EndpointDraft {
            url: "https://example.com/hooks".into(),
            flavour: Some(flavour),
            event_types: types.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn urls_and_types_are_checked() {
        for bad in [
            "",
            "example.com",
            "ftp://x.com",
            "https://",
            "https:///x",
            "https://a b.com",
        ] {
            assert!(parse_url(bad).is_err(), "{bad:?}");
        }
        assert!(parse_url("http://127.0.0.1:8080/x?y=1").is_ok());
        let err = Endpoint::create(
            draft(Flavour::Appstle, &["member.created"]),
            "s".into(),
            now(),
        )
        .unwrap_err();
        assert!(matches!(err, DomainError::Invalid { ref field, .. } if field == "eventTypes[0]"));
        let e = Endpoint::create(
            draft(Flavour::Native, &["MEMBER.CREATED", "member.created"]),
            "s".into(),
            now(),
        )
        .unwrap();
        assert_eq!(e.event_types, ["member.created"]);
        let switch = EndpointPatch {
            flavour: Some(Flavour::Appstle),
            ..Default::default()
        };
        assert!(
            e.patch(switch, now()).is_err(),
            "a flavour that cannot send the subscribed types"
        );
    }

    #[test]
    fn an_endpoint_wants_what_it_subscribed_to() {
        let all = Endpoint::create(draft(Flavour::Native, &[]), "s".into(), now()).unwrap();
        assert_eq!(
            all.wants("member.deleted", &json!({})),
            Some("member.deleted")
        );
        let some = Endpoint::create(
            draft(Flavour::Appstle, &["membership.paused"]),
            "s".into(),
            now(),
        )
        .unwrap();
        assert_eq!(
            some.wants("member.plan.updated", &json!({"change": "paused"})),
            Some("membership.paused")
        );
        assert_eq!(
            some.wants("member.plan.updated", &json!({"change": "resumed"})),
            None
        );
        assert_eq!(some.wants("member.created", &json!({})), None);
    }

    #[test]
    fn a_rotated_secret_signs_beside_the_new_one_for_a_day() {
        let e = Endpoint::create(draft(Flavour::Native, &[]), "old".into(), now()).unwrap();
        let rotated = e.rotate("new".into(), now());
        assert_eq!(rotated.signing_secrets(now()), ["new", "old"]);
        let later =
            Timestamp::from_micros(now().as_micros() + PREVIOUS_SECRET_GRACE_SECS * 1_000_000);
        assert_eq!(rotated.signing_secrets(later), ["new"]);
    }

    #[test]
    fn enabling_forgets_the_failure() {
        let mut e = Endpoint::create(draft(Flavour::Native, &[]), "s".into(), now()).unwrap();
        e.enabled = false;
        e.disabled_reason = Some("gone".into());
        e.failing_since = Some(now());
        let on = e
            .patch(
                EndpointPatch {
                    enabled: Some(true),
                    ..Default::default()
                },
                now(),
            )
            .unwrap()
            .unwrap();
        assert!(on.enabled && on.disabled_reason.is_none() && on.failing_since.is_none());
    }
}
