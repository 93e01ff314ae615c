//! The events each change emits. Their payloads follow Memberstack's webhook events (seed 003);
//! the store writes them in the same transaction as the change.

use serde_json::{json, Value};

use crate::{ConnectionId, EventId, Member, MemberId, PlanConnection, PlanId, Timestamp};

crate::plan::wire_enum!(
    /// Every event type memberd emits.
    EventKind {
        MemberCreated => "member.created",
        MemberUpdated => "member.updated",
        MemberDeleted => "member.deleted",
        MemberPlanCreated => "member.plan.created",
        MemberPlanUpdated => "member.plan.updated",
        MemberPlanReplaced => "member.plan.replaced",
        MemberPlanCanceled => "member.plan.canceled",
        PaymentFailed => "payment.failed",
        PaymentSucceeded => "payment.succeeded",
        WebhookEndpointDisabled => "webhook.endpoint.disabled",
    }
);

/// What a `member.plan.updated` event changed, so that a receiver (and the Appstle flavour,
/// which names pauses and resumptions apart) need not diff two snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanChange {
    CancelScheduled,
    /// A move to another plan at the end of the period was scheduled.
    ReplaceScheduled,
    Paused,
    Resumed,
    /// A new period began after a successful charge (also at the end of a trial).
    Renewed,
    /// A charge failed; payment is being retried.
    PastDue,
    /// A retried charge succeeded.
    Recovered,
    /// The last retry failed and the connection was left unpaid.
    Unpaid,
    /// A connection with a term reached its end.
    Expired,
    Updated,
}

impl PlanChange {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanChange::CancelScheduled => "cancel_scheduled",
            PlanChange::ReplaceScheduled => "replace_scheduled",
            PlanChange::Paused => "paused",
            PlanChange::Resumed => "resumed",
            PlanChange::Renewed => "renewed",
            PlanChange::PastDue => "past_due",
            PlanChange::Recovered => "recovered",
            PlanChange::Unpaid => "unpaid",
            PlanChange::Expired => "expired",
            PlanChange::Updated => "updated",
        }
    }
}

/// An event the domain asks to record; the store gives it an id and a place in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub kind: EventKind,
    pub data: Value,
}

/// An event as recorded in the event log.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: EventId,
    /// The type as recorded; kept as text so that the log outlives renamed variants.
    pub kind: String,
    pub data: Value,
    pub created_at: Timestamp,
}

pub fn member_payload(member: &Member) -> Value {
    json!({
        "id": member.id,
        "auth": { "email": member.email.as_str() },
        "verified": member.verified,
        "customFields": member.custom_fields,
        "metaData": member.meta_data,
        "json": member.json,
        "loginRedirect": member.login_redirect,
        "profileImage": member.profile_image,
        "stripeCustomerId": member.stripe_customer_id,
        "externalId": member.external_id,
        "permissions": member.permissions,
        "createdAt": member.created_at,
        "updatedAt": member.updated_at,
    })
}

pub fn connection_payload(c: &PlanConnection) -> Value {
    json!({
        "id": c.id,
        "active": c.active(),
        "status": c.status.as_str(),
        "type": c.connection_type.as_str(),
        "planId": c.plan_id,
        "priceId": c.price_id,
        "memberId": c.member_id,
        "amount": c.amount,
        "currency": c.currency,
        "interval": c.interval.map(|i| i.as_str()),
        "intervalCount": c.interval_count,
        "startDate": c.start_date,
        "cancelAtPeriodEnd": c.cancel_at_period_end,
        "currentPeriodEnd": c.current_period_end,
        "nextBillingDate": c.next_billing_date(),
        "endDate": c.end_date,
        "cancelReason": c.cancel_reason,
        "createdAt": c.created_at,
        "updatedAt": c.updated_at,
    })
}

impl NewEvent {
    pub fn member_created(member: &Member) -> Self {
        NewEvent {
            kind: EventKind::MemberCreated,
            data: member_payload(member),
        }
    }

    pub fn member_updated(member: &Member) -> Self {
        NewEvent {
            kind: EventKind::MemberUpdated,
            data: member_payload(member),
        }
    }

    pub fn member_deleted(id: &MemberId) -> Self {
        NewEvent {
            kind: EventKind::MemberDeleted,
            data: json!({ "id": id }),
        }
    }

    pub fn plan_created(c: &PlanConnection) -> Self {
        NewEvent {
            kind: EventKind::MemberPlanCreated,
            data: json!({ "id": c.member_id, "planConnection": connection_payload(c) }),
        }
    }

    pub fn plan_updated(c: &PlanConnection, change: PlanChange) -> Self {
        NewEvent {
            kind: EventKind::MemberPlanUpdated,
            data: json!({
                "id": c.member_id,
                "change": change.as_str(),
                "planConnection": connection_payload(c),
            }),
        }
    }

    /// A charge for a connection: `payment.succeeded` or `payment.failed` (seed 003).
    pub fn payment(c: &PlanConnection, succeeded: bool, failure: Option<&str>) -> Self {
        NewEvent {
            kind: if succeeded {
                EventKind::PaymentSucceeded
            } else {
                EventKind::PaymentFailed
            },
            data: json!({
                "id": c.member_id,
                "planConnection": connection_payload(c),
                "payment": {
                    "amount": c.amount,
                    "currency": c.currency,
                    "status": if succeeded { "SUCCEEDED" } else { "FAILED" },
                    "failureReason": failure,
                },
            }),
        }
    }

    /// The dispatcher turned an endpoint off: it answered 410 Gone, or failed for too long.
    pub fn endpoint_disabled(endpoint_id: &str, url: &str, reason: &str) -> Self {
        NewEvent {
            kind: EventKind::WebhookEndpointDisabled,
            data: json!({ "endpointId": endpoint_id, "url": url, "reason": reason }),
        }
    }

    pub fn plan_replaced(c: &PlanConnection, prev_plan: &PlanId) -> Self {
        NewEvent {
            kind: EventKind::MemberPlanReplaced,
            data: json!({ "id": c.member_id, "prevPlan": prev_plan, "planConnection": connection_payload(c) }),
        }
    }

    pub fn plan_canceled(c: &PlanConnection) -> Self {
        let id: &ConnectionId = &c.id;
        NewEvent {
            kind: EventKind::MemberPlanCanceled,
            data: json!({
                "id": c.member_id,
                "planConnectionId": id,
                "reason": c.cancel_reason,
                "planConnection": connection_payload(c),
            }),
        }
    }
}
