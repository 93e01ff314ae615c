//! A member as `memberd export` writes it and `memberd import` reads it back: the fields
//! `POST /v1/members` takes, and what an export keeps beyond them (the id, the times, the
//! plan connections and, when asked for, the password hash). One type serves both ways, so
//! that whatever an export writes, an import reads.

use memberd_core::member::check_password;
use memberd_core::{
    ConnectionId, ConnectionStatus, DomainError, Member, MemberId, NewMember, Plan, PlanConnection,
    PlanId, PriceId, SavedConnection, Timestamp,
};
use memberd_store::MemberView;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;

use crate::import::Reject;

#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemberRecord {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<MemberId>,
    pub email: String,
    /// In plain text, to hash; never written by an export.
    #[serde(skip_serializing)]
    pub password: Option<String>,
    /// An argon2 PHC string, written only by `memberd export --with-password-hashes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_fields: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta_data: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_redirect: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stripe_customer_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    /// Refused on import, as test clocks cannot be carried over; never written.
    #[serde(skip_serializing)]
    pub test_clock_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_login: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub plan_connections: Vec<ConnectionRecord>,
}

/// A plan connection in an export. Its terms (amount, currency, interval) are not written:
/// they are those of its price, which never changes.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionRecord {
    pub id: ConnectionId,
    pub plan_id: PlanId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_id: Option<PriceId>,
    pub status: ConnectionStatus,
    pub start_date: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_period_start: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_period_end: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trial_end: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub cancel_at_period_end: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canceled_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paused_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resume_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_retry_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_plan_id: Option<PlanId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheduled_price_id: Option<PriceId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What an export holds of a member. The password hash only when asked for: it is a secret
/// of the member's, for an operator moving their own database, never for the HTTP export.
pub fn record_of(view: &MemberView, with_password_hash: bool) -> MemberRecord {
    let m = &view.member;
    let map = |map: &Map<String, Value>| (!map.is_empty()).then(|| map.clone());
    MemberRecord {
        id: Some(m.id.clone()),
        email: m.email.as_str().to_owned(),
        password: None,
        password_hash: m.password_hash.clone().filter(|_| with_password_hash),
        verified: Some(m.verified),
        custom_fields: map(m.custom_fields.as_map()),
        meta_data: map(m.meta_data.as_map()),
        json: m.json.clone(),
        login_redirect: m.login_redirect.clone(),
        profile_image: m.profile_image.clone(),
        stripe_customer_id: m.stripe_customer_id.clone(),
        external_id: m.external_id.clone(),
        permissions: (!m.permissions.is_empty()).then(|| m.permissions.clone()),
        test_clock_id: None,
        last_login: m.last_login,
        created_at: Some(m.created_at),
        updated_at: Some(m.updated_at),
        plan_connections: view
            .connections
            .iter()
            .map(|c| connection_record(&c.connection))
            .collect(),
    }
}

fn connection_record(c: &PlanConnection) -> ConnectionRecord {
    ConnectionRecord {
        id: c.id.clone(),
        plan_id: c.plan_id.clone(),
        price_id: c.price_id.clone(),
        status: c.status,
        start_date: c.start_date,
        current_period_start: c.current_period_start,
        current_period_end: c.current_period_end,
        trial_end: c.trial_end,
        cancel_at_period_end: c.cancel_at_period_end,
        canceled_at: c.canceled_at,
        cancel_reason: c.cancel_reason.clone(),
        paused_at: c.paused_at,
        resume_at: c.resume_at,
        end_date: c.end_date,
        retry_count: c.retry_count,
        next_retry_at: c.next_retry_at,
        scheduled_plan_id: c.scheduled_plan_id.clone(),
        scheduled_price_id: c.scheduled_price_id.clone(),
        created_at: c.created_at,
        updated_at: c.updated_at,
    }
}

/// The plans of the environment an import writes into, by id, for its connections to name.
pub type Plans = HashMap<PlanId, Plan>;

/// A member checked for import, with their plan connections and their password still to hash.
pub struct Imported {
    pub member: Member,
    pub password: Option<String>,
    pub connections: Vec<PlanConnection>,
}

impl MemberRecord {
    /// Checks the record with the rules `POST /v1/members` applies (the id and times kept
    /// when the record has them and `keep_ids` allows), and each plan connection against
    /// the environment's plans.
    pub fn into_import(
        self,
        fresh_id: MemberId,
        keep_ids: bool,
        now: Timestamp,
        plans: &Plans,
    ) -> Result<Imported, Reject> {
        if self.test_clock_id.is_some() {
            return Err(Reject::field(
                "testClockId",
                "test clocks cannot be imported; create such members through the API",
            ));
        }
        if let Some(password) = &self.password {
            if self.password_hash.is_some() {
                return Err(Reject::field(
                    "passwordHash",
                    "give password or passwordHash, not both",
                ));
            }
            check_password(password)?;
        }
        if let Some(hash) = &self.password_hash {
            check_password_hash(hash)?;
        }
        let id = match (keep_ids, self.id) {
            (true, Some(id)) => id,
            _ => fresh_id,
        };
        let created_at = self.created_at.unwrap_or(now);
        let draft = NewMember {
            email: self.email,
            password_hash: self.password_hash,
            verified: self.verified,
            custom_fields: self.custom_fields,
            meta_data: self.meta_data,
            json: self.json,
            login_redirect: self.login_redirect,
            profile_image: self.profile_image,
            stripe_customer_id: self.stripe_customer_id,
            external_id: self.external_id,
            permissions: self.permissions,
        };
        let mut member = Member::from_draft(id, draft, created_at)?;
        member.updated_at = self.updated_at.unwrap_or(created_at);
        member.last_login = self.last_login;
        let connections = self
            .plan_connections
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                restore(&member.id, c, keep_ids, plans).map_err(|reject| Reject {
                    field: Some(match reject.field {
                        Some(field) => format!("planConnections[{i}].{field}"),
                        None => format!("planConnections[{i}]"),
                    }),
                    message: reject.message,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Imported {
            member,
            password: self.password,
            connections,
        })
    }
}

fn restore(
    member_id: &MemberId,
    c: ConnectionRecord,
    keep_ids: bool,
    plans: &Plans,
) -> Result<PlanConnection, Reject> {
    let plan_named = |field: &str, id: &PlanId| {
        plans
            .get(id)
            .ok_or_else(|| Reject::field(field, format!("no plan {id} in this environment")))
    };
    let plan = plan_named("planId", &c.plan_id)?;
    let scheduled = match c.scheduled_plan_id {
        Some(id) => Some((
            plan_named("scheduledPlanId", &id)?.clone(),
            c.scheduled_price_id,
        )),
        None => None,
    };
    let saved = SavedConnection {
        id: if keep_ids {
            c.id
        } else {
            ConnectionId::generate()
        },
        price_id: c.price_id,
        status: c.status,
        start_date: c.start_date,
        current_period_start: c.current_period_start,
        current_period_end: c.current_period_end,
        trial_end: c.trial_end,
        cancel_at_period_end: c.cancel_at_period_end,
        canceled_at: c.canceled_at,
        cancel_reason: c.cancel_reason,
        paused_at: c.paused_at,
        resume_at: c.resume_at,
        end_date: c.end_date,
        retry_count: c.retry_count,
        next_retry_at: c.next_retry_at,
        scheduled,
        created_at: c.created_at,
        updated_at: c.updated_at,
    };
    Ok(PlanConnection::restore(member_id.clone(), plan, saved)?)
}

/// A hash memberd can check a password against: an argon2 PHC string.
fn check_password_hash(hash: &str) -> Result<(), DomainError> {
    let parsed = argon2::PasswordHash::new(hash).map_err(|_| {
        DomainError::invalid(
            "passwordHash",
            "invalid_password_hash",
            "not a PHC string ($argon2id$v=19$…)",
        )
    })?;
    if !parsed.algorithm.as_str().starts_with("argon2") {
        return Err(DomainError::invalid(
            "passwordHash",
            "invalid_password_hash",
            format!("{} hashes are not supported; only argon2", parsed.algorithm),
        ));
    }
    Ok(())
}
