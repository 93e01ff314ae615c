use serde_json::{Map, Value};

use crate::fields::{check_json, check_text};
use crate::plan::parse_permissions;
use crate::{
    CustomFields, DomainError, Email, MemberId, MetaData, NewEvent, TestClockId, Timestamp,
};

pub const PASSWORD_MIN_CHARS: usize = 8;
pub const PASSWORD_MAX_CHARS: usize = 1_024;
pub const URL_MAX_CHARS: usize = 2_048;
pub const EXTERNAL_ID_MAX_CHARS: usize = 255;

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub id: MemberId,
    pub email: Email,
    /// An argon2id PHC string; never rendered.
    pub password_hash: Option<String>,
    pub verified: bool,
    pub custom_fields: CustomFields,
    pub meta_data: MetaData,
    pub json: Option<Value>,
    pub login_redirect: Option<String>,
    pub profile_image: Option<String>,
    pub stripe_customer_id: Option<String>,
    /// The member's id in another system, such as a Shopify customer id. Unique per environment.
    pub external_id: Option<String>,
    /// Permissions granted to the member directly, on top of those of their plans.
    pub permissions: Vec<String>,
    pub last_login: Option<Timestamp>,
    /// The sandbox test clock the member lives by, if any: every change of the member and of
    /// their plan connections happens at the clock's time.
    pub test_clock_id: Option<TestClockId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A member as a client asks for it. The password arrives already hashed: hashing is slow,
/// so the server does it off the request thread after `check_password` accepted it.
#[derive(Debug, Clone, Default)]
pub struct NewMember {
    pub email: String,
    pub password_hash: Option<String>,
    pub verified: Option<bool>,
    pub custom_fields: Option<Map<String, Value>>,
    pub meta_data: Option<Map<String, Value>>,
    pub json: Option<Value>,
    pub login_redirect: Option<String>,
    pub profile_image: Option<String>,
    pub stripe_customer_id: Option<String>,
    pub external_id: Option<String>,
    pub permissions: Option<Vec<String>>,
}

/// A change to a member. `Option<Option<_>>` fields distinguish "leave alone" from "clear".
#[derive(Debug, Clone, Default)]
pub struct MemberPatch {
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub verified: Option<bool>,
    /// Shallow-merged; a key set to `null` is removed.
    pub custom_fields: Option<Map<String, Value>>,
    /// Shallow-merged; a key set to `null` is removed.
    pub meta_data: Option<Map<String, Value>>,
    /// Replaces the whole document; `Some(None)` clears it.
    pub json: Option<Option<Value>>,
    pub login_redirect: Option<Option<String>>,
    pub profile_image: Option<Option<String>>,
    pub stripe_customer_id: Option<Option<String>>,
    pub external_id: Option<Option<String>>,
    pub permissions: Option<Vec<String>>,
}

/// Checks a plain-text password before it is hashed.
pub fn check_password(password: &str) -> Result<(), DomainError> {
    let n = password.chars().count();
    if !(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&n) {
        return Err(DomainError::invalid(
            "password",
            "invalid_password",
            format!(
                "password must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters long"
            ),
        ));
    }
    Ok(())
}

fn optional_text(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, DomainError> {
    match value {
        Some(v) if !v.is_empty() => {
            check_text(field, &v, max)?;
            Ok(Some(v))
        }
        _ => Ok(None),
    }
}

fn json_document(value: Option<Value>) -> Result<Option<Value>, DomainError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            check_json(&v)?;
            Ok(Some(v))
        }
    }
}

impl Member {
    /// Creates a member and the `member.created` event that announces them.
    pub fn create(draft: NewMember, now: Timestamp) -> Result<(Member, NewEvent), DomainError> {
        let member = Member::from_draft(MemberId::generate(), draft, now)?;
        let event = NewEvent::member_created(&member);
        Ok((member, event))
    }

    /// Validates a draft into a new member, without announcing them: the one set of rules
    /// for members created through the API and for bulk imports (which record no events).
    /// The id is the caller's: a random one for the API, one in load order for an import.
    pub fn from_draft(
        id: MemberId,
        draft: NewMember,
        now: Timestamp,
    ) -> Result<Member, DomainError> {
        Ok(Member {
            id,
            email: Email::parse(&draft.email)?,
            password_hash: draft.password_hash,
            verified: draft.verified.unwrap_or(false),
            custom_fields: CustomFields::parse(draft.custom_fields.unwrap_or_default())?,
            meta_data: MetaData::parse(draft.meta_data.unwrap_or_default())?,
            json: json_document(draft.json)?,
            login_redirect: optional_text("loginRedirect", draft.login_redirect, URL_MAX_CHARS)?,
            profile_image: optional_text("profileImage", draft.profile_image, URL_MAX_CHARS)?,
            stripe_customer_id: optional_text(
                "stripeCustomerId",
                draft.stripe_customer_id,
                EXTERNAL_ID_MAX_CHARS,
            )?,
            external_id: optional_text("externalId", draft.external_id, EXTERNAL_ID_MAX_CHARS)?,
            permissions: parse_permissions(draft.permissions.unwrap_or_default())?,
            last_login: None,
            test_clock_id: None,
            created_at: now,
            updated_at: now,
        })
    }

    /// Applies a patch. Returns `None` when nothing changed, and otherwise the new member with
    /// the events to record: `member.updated`, except for a change of password alone, which
    /// Memberstack does not announce either.
    pub fn patch(
        &self,
        patch: MemberPatch,
        now: Timestamp,
    ) -> Result<Option<(Member, Vec<NewEvent>)>, DomainError> {
        let mut next = self.clone();
        if let Some(email) = patch.email {
            next.email = Email::parse(&email)?;
        }
        // A new address has not been shown to reach the member, unless the patch says so.
        if next.email != self.email {
            next.verified = false;
        }
        if let Some(verified) = patch.verified {
            next.verified = verified;
        }
        if let Some(fields) = patch.custom_fields {
            next.custom_fields = self.custom_fields.merge(&fields)?;
        }
        if let Some(meta) = patch.meta_data {
            next.meta_data = self.meta_data.merge(&meta)?;
        }
        if let Some(json) = patch.json {
            next.json = json_document(json)?;
        }
        if let Some(v) = patch.login_redirect {
            next.login_redirect = optional_text("loginRedirect", v, URL_MAX_CHARS)?;
        }
        if let Some(v) = patch.profile_image {
            next.profile_image = optional_text("profileImage", v, URL_MAX_CHARS)?;
        }
        if let Some(v) = patch.stripe_customer_id {
            next.stripe_customer_id = optional_text("stripeCustomerId", v, EXTERNAL_ID_MAX_CHARS)?;
        }
        if let Some(v) = patch.external_id {
            next.external_id = optional_text("externalId", v, EXTERNAL_ID_MAX_CHARS)?;
        }
        if let Some(p) = patch.permissions {
            next.permissions = parse_permissions(p)?;
        }
        let password_changed = patch.password_hash.is_some();
        let visible_change = next != *self;
        if let Some(hash) = patch.password_hash {
            next.password_hash = Some(hash);
        }
        if !visible_change && !password_changed {
            return Ok(None);
        }
        next.updated_at = now;
        let events = if visible_change {
            vec![NewEvent::member_updated(&next)]
        } else {
            Vec::new()
        };
        Ok(Some((next, events)))
    }

    /// Deleting a member emits `member.deleted`; the store removes its plan connections with it.
    pub fn delete(&self) -> NewEvent {
        NewEvent::member_deleted(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventKind;
    use serde_json::json;

    fn now() -> Timestamp {
        Timestamp::parse("2026-01-01T00:00:00Z").unwrap()
    }

    fn member() -> Member {
        let draft = NewMember {
            email: "Ann@Example.com".into(),
            meta_data: Some(json!({"a": "1"}).as_object().unwrap().clone()),
            ..Default::default()
        };
        Member::create(draft, now()).unwrap().0
    }

    #[test]
    fn create_lowercases_the_email_and_emits_member_created() {
        let draft = NewMember {
            email: "Ann@Example.com".into(),
            ..Default::default()
        };
        let (m, event) = Member::create(draft, now()).unwrap();
        assert_eq!(m.email.as_str(), "ann@example.com");
        assert_eq!(event.kind, EventKind::MemberCreated);
        assert_eq!(event.data["auth"]["email"], "ann@example.com");
    }

    #[test]
    fn a_password_change_alone_is_not_announced() {
        let later = now().plus_days(1);
        let patch = MemberPatch {
            password_hash: Some("$argon2id$…".into()),
            ..Default::default()
        };
        let (m, events) = member().patch(patch, later).unwrap().unwrap();
        assert!(events.is_empty());
        assert_eq!(m.updated_at, later);
    }

    #[test]
    fn an_empty_patch_changes_nothing() {
        let patch = MemberPatch {
            email: Some("ANN@example.com".into()),
            ..Default::default()
        };
        assert!(member().patch(patch, now()).unwrap().is_none());
    }

    #[test]
    fn json_is_replaced_and_meta_data_merged() {
        let patch = MemberPatch {
            json: Some(Some(json!({"b": 2}))),
            meta_data: Some(json!({"c": "3"}).as_object().unwrap().clone()),
            ..Default::default()
        };
        let (m, events) = member().patch(patch, now()).unwrap().unwrap();
        assert_eq!(m.json, Some(json!({"b": 2})));
        assert_eq!(
            serde_json::to_value(&m.meta_data).unwrap(),
            json!({"a": "1", "c": "3"})
        );
        assert_eq!(events[0].kind, EventKind::MemberUpdated);
    }

    #[test]
    fn a_new_address_is_unverified_unless_the_patch_says_it_is() {
        let verified = Member {
            verified: true,
            ..member()
        };
        let moved = MemberPatch {
            email: Some("new@example.com".into()),
            ..Default::default()
        };
        let (m, _) = verified.patch(moved, now()).unwrap().unwrap();
        assert!(!m.verified);
        let same = MemberPatch {
            email: Some("ANN@example.com".into()),
            custom_fields: Some(json!({"x": "1"}).as_object().unwrap().clone()),
            ..Default::default()
        };
        let (m, _) = verified.patch(same, now()).unwrap().unwrap();
        assert!(
            m.verified,
            "the same address, written differently, stays verified"
        );
        let vouched = MemberPatch {
            email: Some("new@example.com".into()),
            verified: Some(true),
            ..Default::default()
        };
        let (m, _) = verified.patch(vouched, now()).unwrap().unwrap();
        assert!(m.verified);
    }
}
