use std::collections::HashMap;

use proptest::prelude::*;

use super::*;
use crate::plan::{Plan, PlanDraft, PriceDraft};
use crate::{EventKind, Interval, MemberId, PlanType};

fn t0() -> Timestamp {
    Timestamp::parse("2026-01-31T09:00:00Z").unwrap()
}

fn paid_plan(amount: i64, interval: Interval, trial_days: u32, term_days: Option<u32>) -> Plan {
    Plan::create(
        PlanDraft {
            name: "Pro".into(),
            description: None,
            plan_type: PlanType::Paid,
            permissions: vec![],
            prices: vec![PriceDraft {
                amount,
                currency: "USD".into(),
                interval,
                interval_count: None,
                trial_days: Some(trial_days),
                term_days,
            }],
        },
        t0(),
    )
    .unwrap()
}

fn subscription(interval: Interval, trial_days: u32) -> PlanConnection {
    let plan = paid_plan(1200, interval, trial_days, None);
    PlanConnection::connect(&MemberId::generate(), &plan, None, &[], t0())
        .unwrap()
        .0
}

#[test]
fn a_one_time_price_with_a_term_expires_at_its_end() {
    let plan = paid_plan(5000, Interval::Onetime, 0, Some(30));
    let (c, _) = PlanConnection::connect(&MemberId::generate(), &plan, None, &[], t0()).unwrap();
    assert_eq!(c.end_date, Some(t0().plus_days(30)));
    assert_eq!(c.next_due(), Some((t0().plus_days(30), Due::Expiry)));
    assert_eq!(c.charge_due(Due::Expiry), None);
    let (c, _) = c.on_due(
        Due::Expiry,
        t0().plus_days(30),
        None,
        &DunningPolicy::default(),
    );
    assert_eq!(c.status, ConnectionStatus::Expired);
    assert_eq!(c.next_due(), None);
}

#[test]
fn a_replace_at_period_end_moves_plan_and_price_when_the_period_ends() {
    let c = subscription(Interval::Month, 0);
    let yearly = paid_plan(10_000, Interval::Year, 7, None);
    let (c, events) = c
        .apply(
            ConnectionCommand::Replace {
                plan: yearly.clone(),
                price_id: None,
                at_period_end: true,
            },
            &[],
            t0(),
        )
        .unwrap();
    assert_eq!(events[0].data["change"], "replace_scheduled");
    assert_eq!(c.amount, 1200, "the current period runs on its own terms");
    let (at, due) = c.next_due().unwrap();
    assert_eq!(
        (at, due),
        (
            t0().plus_interval(Interval::Month, 1),
            Due::ScheduledReplace
        )
    );
    let prepared = c.prepare_due(due, Some(&yearly));
    assert_eq!(prepared.charge, Some((10_000, "USD".to_owned())));
    let (c, events) = prepared.finish(at, Some(&Charge::Succeeded), &DunningPolicy::default());
    assert_eq!(c.plan_id, yearly.id);
    assert_eq!(
        c.status,
        ConnectionStatus::Active,
        "no second trial on a change of plan"
    );
    assert_eq!(c.current_period_start, Some(at));
    assert_eq!(
        c.current_period_end,
        Some(at.plus_interval(Interval::Year, 1))
    );
    assert_eq!(c.scheduled_plan_id, None);
    assert_eq!(
        kinds(&events),
        [
            "member.plan.replaced",
            "payment.succeeded",
            "member.plan.updated"
        ]
    );

    // A plan archived in the meantime cannot be moved to: the connection renews as it was.
    let c = subscription(Interval::Month, 0);
    let (c, _) = c
        .apply(
            ConnectionCommand::Replace {
                plan: yearly.clone(),
                price_id: None,
                at_period_end: true,
            },
            &[],
            t0(),
        )
        .unwrap();
    let mut archived = yearly.clone();
    archived.status = crate::PlanStatus::Archived;
    let prepared = c.prepare_due(Due::ScheduledReplace, Some(&archived));
    assert_eq!(prepared.charge, Some((1200, "USD".to_owned())));
    let (c, _) = prepared.finish(
        c.current_period_end.unwrap(),
        Some(&Charge::Succeeded),
        &DunningPolicy::default(),
    );
    assert_ne!(c.plan_id, yearly.id);
    assert_eq!(c.scheduled_plan_id, None);
}

fn kinds(events: &[NewEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.as_str()).collect()
}

#[test]
fn a_trial_ends_in_a_charge_and_periods_follow_each_other() {
    let c = subscription(Interval::Month, 14);
    let (at, due) = c.next_due().unwrap();
    assert_eq!((at, due), (t0().plus_days(14), Due::TrialEnd));
    assert_eq!(c.charge_due(due), Some(1200));
    let (c, events) = c.on_due(due, at, Some(&Charge::Succeeded), &DunningPolicy::default());
    assert_eq!(c.status, ConnectionStatus::Active);
    assert_eq!(kinds(&events), ["payment.succeeded", "member.plan.updated"]);
    assert_eq!(c.current_period_start, Some(at));
    let (next_at, due) = c.next_due().unwrap();
    assert_eq!(
        (next_at, due),
        (at.plus_interval(Interval::Month, 1), Due::Renewal)
    );
    // Applied late, the next period still starts where the last one ended.
    let late = next_at.plus_days(2);
    let (c, _) = c.on_due(
        due,
        late,
        Some(&Charge::Succeeded),
        &DunningPolicy::default(),
    );
    assert_eq!(c.current_period_start, Some(next_at));
}

#[test]
fn failed_charges_are_retried_then_given_up_on() {
    let policy = DunningPolicy::default();
    let c = subscription(Interval::Month, 0);
    let fail = Charge::Failed {
        reason: "card_declined".into(),
    };
    let (at, due) = c.next_due().unwrap();
    let (c, events) = c.on_due(due, at, Some(&fail), &policy);
    assert_eq!(c.status, ConnectionStatus::PastDue);
    assert!(c.active(), "PAST_DUE keeps access while payment is retried");
    assert_eq!(kinds(&events), ["payment.failed", "member.plan.updated"]);
    assert_eq!(c.next_due(), Some((at.plus_days(1), Due::Retry)));
    let (c, _) = c.on_due(Due::Retry, at.plus_days(1), Some(&fail), &policy);
    assert_eq!(c.next_due(), Some((at.plus_days(4), Due::Retry)));
    let (c, _) = c.on_due(Due::Retry, at.plus_days(4), Some(&fail), &policy);
    assert_eq!(c.next_due(), Some((at.plus_days(9), Due::Retry)));
    let (gone, events) = c.on_due(Due::Retry, at.plus_days(9), Some(&fail), &policy);
    assert_eq!(gone.status, ConnectionStatus::Canceled);
    assert_eq!(kinds(&events), ["payment.failed", "member.plan.canceled"]);
    assert_eq!(gone.next_due(), None);

    let unpaid = DunningPolicy {
        give_up_as: ConnectionStatus::Unpaid,
        ..policy.clone()
    };
    let (left, _) = c.on_due(Due::Retry, at.plus_days(9), Some(&fail), &unpaid);
    assert_eq!(left.status, ConnectionStatus::Unpaid);
    assert!(!left.active());

    let (recovered, events) = c.on_due(
        Due::Retry,
        at.plus_days(9),
        Some(&Charge::Succeeded),
        &policy,
    );
    assert_eq!(recovered.status, ConnectionStatus::Active);
    assert_eq!(recovered.retry_count, 0);
    assert_eq!(kinds(&events), ["payment.succeeded", "member.plan.updated"]);
}

#[test]
fn scheduled_cancels_resumes_and_terms_happen_on_time() {
    let c = subscription(Interval::Year, 0);
    let (c, _) = c
        .apply(
            ConnectionCommand::Cancel {
                reason: None,
                at_period_end: true,
            },
            &[],
            t0(),
        )
        .unwrap();
    let (at, due) = c.next_due().unwrap();
    assert_eq!(due, Due::ScheduledCancel);
    assert_eq!(c.charge_due(due), None);
    let (c, events) = c.on_due(due, at, None, &DunningPolicy::default());
    assert_eq!(c.status, ConnectionStatus::Canceled);
    assert_eq!(kinds(&events), ["member.plan.canceled"]);

    let c = subscription(Interval::Month, 0);
    let (c, _) = c
        .apply(
            ConnectionCommand::Pause {
                resume_at: Some(t0().plus_days(3)),
            },
            &[],
            t0(),
        )
        .unwrap();
    assert_eq!(c.next_due(), Some((t0().plus_days(3), Due::Resume)));
    let (c, _) = c.on_due(
        Due::Resume,
        t0().plus_days(3),
        None,
        &DunningPolicy::default(),
    );
    assert_eq!(c.status, ConnectionStatus::Active);

    let mut term = subscription(Interval::Month, 0);
    term.connection_type = ConnectionType::Onetime;
    term.end_date = Some(t0().plus_days(30));
    assert_eq!(term.next_due(), Some((t0().plus_days(30), Due::Expiry)));
    let (expired, events) = term.on_due(
        Due::Expiry,
        t0().plus_days(30),
        None,
        &DunningPolicy::default(),
    );
    assert_eq!(expired.status, ConnectionStatus::Expired);
    assert_eq!(events[0].kind, EventKind::MemberPlanUpdated);
    assert_eq!(events[0].data["change"], "expired");
}

#[test]
fn monthly_amounts_normalise_every_interval() {
    assert_eq!(monthly_amount(1200, Interval::Month, 1), 1200);
    assert_eq!(monthly_amount(12000, Interval::Year, 1), 1000);
    assert_eq!(monthly_amount(3000, Interval::Month, 3), 1000);
    assert_eq!(monthly_amount(700, Interval::Week, 1), 3044);
    assert_eq!(monthly_amount(100, Interval::Day, 1), 3044);
    assert_eq!(monthly_amount(9900, Interval::Onetime, 1), 0);
}

#[derive(Debug, Clone)]
enum Step {
    /// Let this many hours pass, applying whatever falls due; charges fail where the bits say.
    Wait(u32, u8),
    CancelAtPeriodEnd,
    CancelNow,
    Pause(u32),
    Resume,
    ReplaceAtPeriodEnd,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1..2_000u32, any::<u8>()).prop_map(|(h, bits)| Step::Wait(h, bits)),
        1 => Just(Step::CancelAtPeriodEnd),
        1 => Just(Step::CancelNow),
        1 => (1..60u32).prop_map(Step::Pause),
        1 => Just(Step::Resume),
        1 => Just(Step::ReplaceAtPeriodEnd),
    ]
}

fn interval() -> impl Strategy<Value = Interval> {
    prop_oneof![
        Just(Interval::Day),
        Just(Interval::Week),
        Just(Interval::Month),
        Just(Interval::Year)
    ]
}

proptest! {
    #[test]
    fn time_keeps_every_invariant(
        interval in interval(),
        trial in prop_oneof![Just(0u32), 1..30u32],
        unpaid in any::<bool>(),
        steps in proptest::collection::vec(step(), 1..40),
    ) {
        let policy = DunningPolicy {
            give_up_as: if unpaid { ConnectionStatus::Unpaid } else { ConnectionStatus::Canceled },
            ..DunningPolicy::default()
        };
        let mut c = subscription(interval, trial);
        let other = paid_plan(2500, Interval::Week, 3, None);
        let mut now = t0();
        // Successful charges per billing period, keyed by the period's start.
        let mut paid: HashMap<Option<Timestamp>, u32> = HashMap::new();
        let mut ended = false;
        for step in steps {
            match step {
                Step::Wait(hours, bits) => {
                    now = Timestamp::from_micros(now.as_micros() + i64::from(hours) * 3_600_000_000);
                    let mut n = 0u32;
                    while let Some((at, due)) = c.next_due().filter(|(at, _)| *at <= now) {
                        prop_assert!(!ended, "nothing ended falls due again");
                        let prepared = c.prepare_due(due, Some(&other));
                        let charge = prepared.charge.as_ref().map(|_| {
                            if bits & (1 << (n % 8)) != 0 {
                                Charge::Failed { reason: "card_declined".into() }
                            } else {
                                Charge::Succeeded
                            }
                        });
                        n += 1;
                        let before = c.clone();
                        let (next, events) = prepared.finish(at, charge.as_ref(), &policy);
                        if before.status != next.status || charge.is_some() {
                            prop_assert!(!events.is_empty(), "every change has its event");
                        }
                        if charge == Some(Charge::Succeeded) {
                            let count = paid.entry(next.current_period_start).or_default();
                            *count += 1;
                            prop_assert_eq!(*count, 1, "a period is billed exactly once");
                        }
                        if due == Due::Retry {
                            prop_assert_eq!(next.current_period_start, before.current_period_start, "a retry bills the same period");
                        }
                        c = next;
                        prop_assert!(n < 10_000, "time always moves forward");
                    }
                }
                Step::CancelAtPeriodEnd => {
                    let _ = c.apply(ConnectionCommand::Cancel { reason: None, at_period_end: true }, &[], now).map(|(n, _)| c = n);
                }
                Step::CancelNow => {
                    let _ = c.apply(ConnectionCommand::Cancel { reason: None, at_period_end: false }, &[], now).map(|(n, _)| c = n);
                }
                Step::Pause(days) => {
                    let _ = c.apply(ConnectionCommand::Pause { resume_at: Some(now.plus_days(days)) }, &[], now).map(|(n, _)| c = n);
                }
                Step::Resume => {
                    let _ = c.apply(ConnectionCommand::Resume, &[], now).map(|(n, _)| c = n);
                }
                Step::ReplaceAtPeriodEnd => {
                    let command = ConnectionCommand::Replace { plan: other.clone(), price_id: None, at_period_end: true };
                    let _ = c.apply(command, &[], now).map(|(n, _)| c = n);
                }
            }
            if c.status.is_final() {
                ended = true;
                prop_assert!(!c.active());
                prop_assert_eq!(c.next_due(), None);
            }
            if let (Some(start), Some(end)) = (c.current_period_start, c.current_period_end) {
                prop_assert!(end >= start, "a period that ends as it starts is due at once");
            }
        }
    }
}

#[test]
fn a_one_time_price_is_bought_by_connecting_not_by_replacing() {
    let c = subscription(Interval::Month, 0);
    let pass = paid_plan(5000, Interval::Onetime, 0, Some(30));
    for at_period_end in [false, true] {
        let refused = c
            .apply(
                ConnectionCommand::Replace {
                    plan: pass.clone(),
                    price_id: None,
                    at_period_end,
                },
                &[],
                t0(),
            )
            .unwrap_err();
        assert!(matches!(
            refused,
            crate::DomainError::Invalid {
                code: "onetime_replace",
                ..
            }
        ));
    }
}
