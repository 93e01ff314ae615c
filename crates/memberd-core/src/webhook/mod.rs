//! What a webhook endpoint is sent: each event in the shape of the endpoint's payload flavour,
//! the catalog of types, and the retry schedule. Sending and signing are the server's; the
//! rules are here.

mod endpoint;

pub use endpoint::{parse_url, Endpoint, EndpointDraft, EndpointPatch, PREVIOUS_SECRET_GRACE_SECS};

use serde_json::{json, Value};

use crate::appstle::{self, ContractFacts};
use crate::event::{connection_payload, member_payload, Event, PlanChange};
use crate::plan::wire_enum;
use crate::{
    ConnectionStatus, ConnectionType, EventKind, Member, NewEvent, NewMember, PlanConnection,
    Timestamp,
};

wire_enum!(
    /// The shape of the bodies an endpoint receives.
    Flavour {
        Native => "native",
        Memberstack => "memberstack",
        Appstle => "appstle",
    }
);

/// A message for one endpoint: its type in the endpoint's vocabulary, and its body.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub event_type: &'static str,
    pub body: Value,
}

/// Appstle's `membership.*` vocabulary (seed 002) and what each means.
pub const APPSTLE_TYPES: &[(&str, &str)] = &[
    ("membership.created", "A membership contract was created."),
    (
        "membership.updated",
        "A membership contract changed: a scheduled cancellation, a new plan, …",
    ),
    (
        "membership.activated",
        "A membership became active again, such as on resume.",
    ),
    ("membership.paused", "A membership was paused."),
    ("membership.cancelled", "A membership was cancelled."),
    ("membership.expired", "A membership reached its end date."),
    ("membership.billing-success", "A renewal charge succeeded."),
    ("membership.billing-failure", "A renewal charge failed."),
    (
        "membership.next-order-date-changed",
        "The next billing date moved.",
    ),
    (
        "membership.billing-interval-changed",
        "The billing interval changed.",
    ),
];

fn describe(kind: EventKind) -> &'static str {
    match kind {
        EventKind::MemberCreated => "A member was created.",
        EventKind::MemberUpdated => "A member's email, custom fields, metadata or other fields changed (not on a password change).",
        EventKind::MemberDeleted => "A member was deleted.",
        EventKind::MemberPlanCreated => "A member was connected to a plan.",
        EventKind::MemberPlanUpdated => "A plan connection changed: paused, resumed, set to cancel at period end, renewed.",
        EventKind::MemberPlanReplaced => "A plan connection moved to another plan.",
        EventKind::MemberPlanCanceled => "A plan connection was canceled.",
        EventKind::PaymentFailed => "A charge for a plan connection failed.",
        EventKind::PaymentSucceeded => "A charge for a plan connection succeeded.",
        EventKind::WebhookEndpointDisabled => "A webhook endpoint was disabled: it answered 410 Gone or kept failing for 5 days.",
    }
}

/// The Appstle type a native event becomes, if Appstle has one for it.
fn appstle_type(kind: EventKind, data: &Value) -> Option<&'static str> {
    Some(match kind {
        EventKind::MemberPlanCreated => "membership.created",
        EventKind::MemberPlanUpdated => match data["change"].as_str() {
            Some(c) if c == PlanChange::Paused.as_str() => "membership.paused",
            Some(c) if c == PlanChange::Resumed.as_str() => "membership.activated",
            Some(c) if c == PlanChange::Expired.as_str() => "membership.expired",
            _ => "membership.updated",
        },
        EventKind::MemberPlanReplaced => "membership.updated",
        EventKind::MemberPlanCanceled => "membership.cancelled",
        EventKind::PaymentSucceeded => "membership.billing-success",
        EventKind::PaymentFailed => "membership.billing-failure",
        _ => return None,
    })
}

/// The type an endpoint of this flavour receives for an event, if it receives it at all.
pub fn outgoing_type(flavour: Flavour, kind: &str, data: &Value) -> Option<&'static str> {
    let kind = EventKind::parse(kind)?;
    match flavour {
        Flavour::Native => Some(kind.as_str()),
        Flavour::Memberstack => match kind {
            EventKind::WebhookEndpointDisabled => None,
            other => Some(other.as_str()),
        },
        Flavour::Appstle => appstle_type(kind, data),
    }
}

/// Every type an endpoint of this flavour may subscribe to.
pub fn types_of(flavour: Flavour) -> Vec<&'static str> {
    match flavour {
        Flavour::Native => EventKind::ALL.iter().map(|k| k.as_str()).collect(),
        Flavour::Memberstack => EventKind::ALL
            .iter()
            .filter(|k| **k != EventKind::WebhookEndpointDisabled)
            .map(|k| k.as_str())
            .collect(),
        Flavour::Appstle => APPSTLE_TYPES.iter().map(|(t, _)| *t).collect(),
    }
}

/// What the store knows of a contract beyond the event: its number, its plan's name and the
/// member's customer id, for the `appstle` flavour.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContractContext {
    pub number: Option<i64>,
    pub plan_name: Option<String>,
    pub customer_id: Option<String>,
}

/// The message an endpoint of this flavour is sent for an event, if any.
pub fn message(flavour: Flavour, event: &Event) -> Option<Message> {
    message_with(flavour, event, &ContractContext::default())
}

/// Like [`message`], with what the store knows of the contract an `appstle` message is about.
pub fn message_with(flavour: Flavour, event: &Event, context: &ContractContext) -> Option<Message> {
    let event_type = outgoing_type(flavour, &event.kind, &event.data)?;
    let body = match flavour {
        Flavour::Native => json!({
            "id": event.id,
            "type": event_type,
            "timestamp": event.created_at,
            "data": event.data,
        }),
        // Seed 003: `{event, timestamp, data}`, the timestamp in milliseconds.
        Flavour::Memberstack => json!({
            "event": event_type,
            "timestamp": event.created_at.as_unix_millis(),
            "data": event.data,
        }),
        Flavour::Appstle => json!({ "type": event_type, "data": appstle_data(event, context) }),
    };
    Some(Message { event_type, body })
}

/// The plan connection a plan-connection event is about, in Appstle's contract shape.
fn appstle_data(event: &Event, context: &ContractContext) -> Value {
    let c = &event.data["planConnection"];
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let time = |v: &Value| v.as_str().and_then(Timestamp::parse);
    let facts = ContractFacts {
        number: context.number,
        connection_id: text(&c["id"]).unwrap_or_default(),
        member_id: text(&event.data["id"]).unwrap_or_default(),
        customer_id: context.customer_id.clone(),
        plan_id: text(&c["planId"]).unwrap_or_default(),
        plan_name: context.plan_name.clone(),
        status: c["status"]
            .as_str()
            .and_then(ConnectionStatus::parse)
            .unwrap_or(ConnectionStatus::Active),
        connection_type: c["type"]
            .as_str()
            .and_then(ConnectionType::parse)
            .unwrap_or(ConnectionType::Free),
        interval: c["interval"].as_str().and_then(crate::Interval::parse),
        interval_count: c["intervalCount"].as_u64().unwrap_or(1) as u32,
        amount: c["amount"].as_i64().unwrap_or(0),
        currency: text(&c["currency"]),
        start_date: time(&c["startDate"]).unwrap_or(event.created_at),
        next_billing_date: time(&c["nextBillingDate"]),
        end_date: time(&c["endDate"]),
        cancel_reason: text(&event.data["reason"]).or_else(|| text(&c["cancelReason"])),
    };
    serde_json::to_value(appstle::contract(facts)).unwrap_or_default()
}

/// One entry of `GET /v1/event-types`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventTypeInfo {
    pub name: &'static str,
    pub description: &'static str,
    pub flavours: Vec<Flavour>,
    /// The body an endpoint of the first flavour receives.
    pub example: Value,
}

/// An event made by the real payload builders, for the catalog's examples.
fn example_event(kind: EventKind) -> Event {
    let now = Timestamp::parse("2026-01-15T09:30:00Z").unwrap_or(Timestamp::from_micros(0));
    let draft = NewMember {
        email: "jane@example.com".into(),
        ..NewMember::default()
    };
    let member = Member::create(draft, now).map(|(m, _)| m);
    let connection = member
        .as_ref()
        .ok()
        .and_then(|m| example_connection(m, now));
    let new = match (kind, &member, &connection) {
        (EventKind::MemberCreated, Ok(m), _) => NewEvent::member_created(m),
        (EventKind::MemberUpdated, Ok(m), _) => NewEvent::member_updated(m),
        (EventKind::MemberDeleted, Ok(m), _) => NewEvent::member_deleted(&m.id),
        (EventKind::MemberPlanCreated, _, Some(c)) => NewEvent::plan_created(c),
        (EventKind::MemberPlanUpdated, _, Some(c)) => {
            NewEvent::plan_updated(c, PlanChange::Updated)
        }
        (EventKind::MemberPlanReplaced, _, Some(c)) => NewEvent::plan_replaced(c, &c.plan_id),
        (EventKind::MemberPlanCanceled, _, Some(c)) => NewEvent::plan_canceled(c),
        (EventKind::PaymentFailed | EventKind::PaymentSucceeded, _, Some(c)) => NewEvent {
            kind,
            data: json!({ "id": c.member_id, "planConnection": connection_payload(c) }),
        },
        (EventKind::WebhookEndpointDisabled, _, _) => {
            NewEvent::endpoint_disabled("ep_example", "https://example.com/hooks", "gone")
        }
        _ => NewEvent {
            kind,
            data: member.as_ref().map(member_payload).unwrap_or_default(),
        },
    };
    Event {
        id: crate::EventId::generate(),
        kind: new.kind.as_str().to_owned(),
        data: new.data,
        created_at: now,
    }
}

fn example_connection(member: &Member, now: Timestamp) -> Option<PlanConnection> {
    let plan = crate::plan::Plan::create(
        crate::plan::PlanDraft {
            name: "Gold".into(),
            description: None,
            plan_type: crate::PlanType::Paid,
            permissions: vec!["view:gold".into()],
            prices: vec![crate::plan::PriceDraft {
                amount: 1500,
                currency: "USD".into(),
                interval: crate::Interval::Month,
                interval_count: None,
                trial_days: None,
                term_days: None,
            }],
        },
        now,
    );
    plan.and_then(|p| PlanConnection::connect(&member.id, &p, None, &[], now))
        .ok()
        .map(|(c, _)| c)
}

/// Every type memberd sends, with the flavours that receive it and an example body.
pub fn catalog() -> Vec<EventTypeInfo> {
    let mut entries: Vec<EventTypeInfo> = EventKind::ALL
        .iter()
        .map(|&kind| {
            let flavours: Vec<Flavour> = [Flavour::Native, Flavour::Memberstack]
                .into_iter()
                .filter(|f| types_of(*f).contains(&kind.as_str()))
                .collect();
            let event = example_event(kind);
            let example = message(Flavour::Native, &event)
                .map(|m| m.body)
                .unwrap_or_default();
            EventTypeInfo {
                name: kind.as_str(),
                description: describe(kind),
                flavours,
                example,
            }
        })
        .collect();
    for (name, description) in APPSTLE_TYPES {
        let source = match *name {
            "membership.created" => EventKind::MemberPlanCreated,
            "membership.cancelled" => EventKind::MemberPlanCanceled,
            "membership.billing-success" => EventKind::PaymentSucceeded,
            "membership.billing-failure" => EventKind::PaymentFailed,
            _ => EventKind::MemberPlanUpdated,
        };
        let event = example_event(source);
        let context = ContractContext {
            number: Some(1001),
            plan_name: Some("Gold".into()),
            customer_id: Some("12345".into()),
        };
        let example = json!({ "type": name, "data": appstle_data(&event, &context) });
        entries.push(EventTypeInfo {
            name,
            description,
            flavours: vec![Flavour::Appstle],
            example,
        });
    }
    entries
}

/// How long to wait before each retry, in seconds: at once, 5 s, 5 min, 30 min, 2 h, 5 h,
/// 10 h, 10 h; after the last, the delivery has failed.
pub const RETRY_SCHEDULE_SECS: [i64; 8] = [0, 5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];

/// An endpoint that has failed without a single success for this long is disabled.
pub const DISABLE_AFTER_FAILING_SECS: i64 = 5 * 24 * 60 * 60;

/// When to try again after `attempts_made` failed attempts, or `None` when it is time to give
/// up. `jitter` in [0, 1) spreads retries of many deliveries by up to a tenth of the wait, so
/// that an endpoint coming back is not hit by all of them at once.
pub fn next_attempt(attempts_made: u32, now: Timestamp, jitter: f64) -> Option<Timestamp> {
    let wait = *RETRY_SCHEDULE_SECS.get(attempts_made as usize)?;
    let spread = (wait as f64 * 0.1 * jitter.clamp(0.0, 1.0)) as i64;
    Some(Timestamp::from_micros(
        now.as_micros()
            .saturating_add((wait + spread).saturating_mul(1_000_000)),
    ))
}

/// Whether an endpoint failing since `failing_since` has failed for long enough to disable.
pub fn failed_too_long(failing_since: Option<Timestamp>, now: Timestamp) -> bool {
    failing_since.is_some_and(|since| {
        now.as_micros() - since.as_micros() >= DISABLE_AFTER_FAILING_SECS * 1_000_000
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    #[test]
    fn retries_grow_and_then_stop() {
        let now = t("2026-01-01T00:00:00Z");
        assert_eq!(next_attempt(0, now, 0.0), Some(now));
        assert_eq!(next_attempt(1, now, 0.0), Some(t("2026-01-01T00:00:05Z")));
        assert_eq!(next_attempt(2, now, 0.0), Some(t("2026-01-01T00:05:00Z")));
        assert_eq!(next_attempt(7, now, 0.0), Some(t("2026-01-01T10:00:00Z")));
        assert_eq!(next_attempt(8, now, 0.0), None);
        let jittered = next_attempt(2, now, 0.99).unwrap();
        assert!(jittered > t("2026-01-01T00:05:00Z") && jittered <= t("2026-01-01T00:05:30Z"));
    }

    #[test]
    fn endpoints_are_disabled_after_five_days_of_failure() {
        let since = t("2026-01-01T00:00:00Z");
        assert!(!failed_too_long(None, t("2027-01-01")));
        assert!(!failed_too_long(Some(since), t("2026-01-05T23:59:59Z")));
        assert!(failed_too_long(Some(since), t("2026-01-06T00:00:00Z")));
    }

    #[test]
    fn flavours_name_events_in_their_own_vocabulary() {
        let paused = json!({"change": "paused"});
        let resumed = json!({"change": "resumed"});
        assert_eq!(
            outgoing_type(Flavour::Appstle, "member.plan.updated", &paused),
            Some("membership.paused")
        );
        assert_eq!(
            outgoing_type(Flavour::Appstle, "member.plan.updated", &resumed),
            Some("membership.activated")
        );
        assert_eq!(
            outgoing_type(Flavour::Appstle, "member.plan.canceled", &json!({})),
            Some("membership.cancelled")
        );
        assert_eq!(
            outgoing_type(Flavour::Appstle, "member.created", &json!({})),
            None
        );
        assert_eq!(
            outgoing_type(
                Flavour::Memberstack,
                "webhook.endpoint.disabled",
                &json!({})
            ),
            None
        );
        assert_eq!(
            outgoing_type(Flavour::Native, "member.created", &json!({})),
            Some("member.created")
        );
        assert_eq!(
            outgoing_type(Flavour::Native, "no.such.type", &json!({})),
            None
        );
    }

    #[test]
    fn the_catalog_covers_every_type_with_an_example() {
        let catalog = catalog();
        for name in [
            "member.created",
            "member.updated",
            "member.deleted",
            "member.plan.created",
            "member.plan.updated",
            "member.plan.replaced",
            "member.plan.canceled",
            "payment.failed",
            "payment.succeeded",
        ] {
            let entry = catalog.iter().find(|e| e.name == name).unwrap();
            assert!(entry.flavours.contains(&Flavour::Memberstack), "{name}");
            assert_eq!(entry.example["type"], name);
        }
        for (name, _) in APPSTLE_TYPES {
            let entry = catalog.iter().find(|e| e.name == *name).unwrap();
            assert_eq!(entry.example["type"], *name);
            assert_eq!(entry.example["data"]["id"], 1001, "{name}");
            assert!(entry.example["data"]["planConnectionId"]
                .as_str()
                .unwrap()
                .starts_with("con_"));
        }
    }

    #[test]
    fn memberstack_bodies_carry_millisecond_timestamps() {
        let event = example_event(EventKind::MemberCreated);
        let m = message(Flavour::Memberstack, &event).unwrap();
        assert_eq!(m.body["event"], "member.created");
        assert_eq!(m.body["timestamp"], event.created_at.as_unix_millis());
        assert_eq!(m.body["data"]["auth"]["email"], "jane@example.com");
    }
}
