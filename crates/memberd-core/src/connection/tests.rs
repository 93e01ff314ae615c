use proptest::prelude::*;

use super::*;
use crate::plan::{PlanDraft, PriceDraft};

fn t0() -> Timestamp {
    Timestamp::parse("2026-01-31T00:00:00Z").unwrap()
}

fn plan(plan_type: PlanType, prices: Vec<(i64, Interval, u32)>) -> Plan {
    let draft = PlanDraft {
        name: "P".into(),
        description: None,
        plan_type,
        permissions: vec![],
        prices: prices
            .into_iter()
            .map(|(amount, interval, trial)| PriceDraft {
                amount,
                currency: "usd".into(),
                interval,
                interval_count: None,
                trial_days: Some(trial),
                term_days: None,
            })
            .collect(),
    };
    Plan::create(draft, t0()).unwrap()
}

fn member() -> MemberId {
    MemberId::generate()
}

#[test]
fn free_plans_start_active_without_a_period() {
    let p = plan(PlanType::Free, vec![]);
    let (c, event) = PlanConnection::connect(&member(), &p, None, &[], t0()).unwrap();
    assert_eq!(
        (c.status, c.connection_type, c.amount),
        (ConnectionStatus::Active, ConnectionType::Free, 0)
    );
    assert_eq!(c.current_period_end, None);
    assert_eq!(event.kind, crate::EventKind::MemberPlanCreated);
}

#[test]
fn paid_plans_trial_when_the_price_has_trial_days() {
    let p = plan(PlanType::Paid, vec![(900, Interval::Month, 14)]);
    let (c, _) = PlanConnection::connect(&member(), &p, None, &[], t0()).unwrap();
    assert_eq!(c.status, ConnectionStatus::Trialing);
    assert_eq!(c.trial_end, Some(t0().plus_days(14)));
    assert_eq!(c.next_billing_date(), Some(t0().plus_days(14)));

    let p = plan(PlanType::Paid, vec![(900, Interval::Month, 0)]);
    let (c, _) = PlanConnection::connect(&member(), &p, None, &[], t0()).unwrap();
    assert_eq!(c.status, ConnectionStatus::Active);
    assert_eq!(c.current_period_end.unwrap().to_date(), "2026-02-28");
}

#[test]
fn a_plan_with_several_prices_needs_a_price_id() {
    let p = plan(
        PlanType::Paid,
        vec![(900, Interval::Month, 0), (9000, Interval::Year, 0)],
    );
    let err = PlanConnection::connect(&member(), &p, None, &[], t0()).unwrap_err();
    assert!(matches!(err, DomainError::Invalid { ref field, .. } if field == "priceId"));
    let (c, _) = PlanConnection::connect(&member(), &p, Some(&p.prices[1].id), &[], t0()).unwrap();
    assert_eq!(c.amount, 9000);
}

#[test]
fn impossible_transitions_say_why() {
    let p = plan(PlanType::Free, vec![]);
    let (c, _) = PlanConnection::connect(&member(), &p, None, &[], t0()).unwrap();
    let err = c.apply(ConnectionCommand::Resume, &[], t0()).unwrap_err();
    assert_eq!(err.code(), "not_paused");
    let (canceled, _) = c
        .apply(
            ConnectionCommand::Cancel {
                reason: Some("moving".into()),
                at_period_end: false,
            },
            &[],
            t0(),
        )
        .unwrap();
    assert_eq!(canceled.cancel_reason.as_deref(), Some("moving"));
    let err = canceled
        .apply(
            ConnectionCommand::Cancel {
                reason: None,
                at_period_end: false,
            },
            &[],
            t0(),
        )
        .unwrap_err();
    assert_eq!(err.code(), "connection_ended");
    let err = c
        .apply(
            ConnectionCommand::Cancel {
                reason: None,
                at_period_end: true,
            },
            &[],
            t0(),
        )
        .unwrap_err();
    assert_eq!(err.code(), "no_billing_period");
}

#[test]
fn a_member_holds_a_plan_once_and_archived_plans_take_nobody() {
    let p = plan(PlanType::Free, vec![]);
    let m = member();
    let (c, _) = PlanConnection::connect(&m, &p, None, &[], t0()).unwrap();
    let err = PlanConnection::connect(&m, &p, None, std::slice::from_ref(&c), t0()).unwrap_err();
    assert_eq!(err.code(), "plan_already_connected");
    let archived = p.archive(t0()).unwrap();
    let err = PlanConnection::connect(&member(), &archived, None, &[], t0()).unwrap_err();
    assert_eq!(err.code(), "plan_archived");
}

#[test]
fn replace_keeps_the_connection_and_names_the_previous_plan() {
    let free = plan(PlanType::Free, vec![]);
    let gold = plan(PlanType::Paid, vec![(900, Interval::Month, 30)]);
    let (c, _) = PlanConnection::connect(&member(), &free, None, &[], t0()).unwrap();
    let (r, events) = c
        .apply(
            ConnectionCommand::Replace {
                plan: gold.clone(),
                price_id: None,
                at_period_end: false,
            },
            &[],
            t0(),
        )
        .unwrap();
    assert_eq!(
        (r.id.clone(), r.plan_id.clone()),
        (c.id.clone(), gold.id.clone())
    );
    assert_eq!(
        r.status,
        ConnectionStatus::Active,
        "no second trial on a change of plan"
    );
    assert_eq!(events[0].data["prevPlan"], free.id.as_str());
}

#[test]
fn a_retired_price_keeps_its_members_and_takes_no_new_ones() {
    let gold = plan(
        PlanType::Paid,
        vec![(900, Interval::Month, 0), (1200, Interval::Month, 0)],
    );
    let old = gold.prices[0].id.clone();
    let (held, _) = PlanConnection::connect(&member(), &gold, Some(&old), &[], t0()).unwrap();
    let retired = gold
        .patch(
            crate::PlanPatch {
                retire_prices: vec![old.clone()],
                ..Default::default()
            },
            t0(),
        )
        .unwrap()
        .unwrap();

    let err = PlanConnection::connect(&member(), &retired, Some(&old), &[], t0()).unwrap_err();
    assert!(matches!(err, DomainError::Invalid { code, .. } if code == "price_retired"));
    let (c, _) = PlanConnection::connect(&member(), &retired, None, &[], t0()).unwrap();
    assert_eq!(c.amount, 1200, "the one active price needs no priceId");

    assert_eq!(
        held.amount, 900,
        "who holds the retired price keeps its terms"
    );
    let free = plan(PlanType::Free, vec![]);
    let (on_free, _) = PlanConnection::connect(&member(), &free, None, &[], t0()).unwrap();
    let err = on_free
        .apply(
            ConnectionCommand::Replace {
                plan: retired,
                price_id: Some(old),
                at_period_end: false,
            },
            &[],
            t0(),
        )
        .unwrap_err();
    assert!(matches!(err, DomainError::Invalid { code, .. } if code == "price_retired"));
}

/// The invariants every reachable connection keeps.
fn check_invariants(c: &PlanConnection) -> Result<(), TestCaseError> {
    prop_assert_eq!(c.active(), c.status.grants_access());
    prop_assert_eq!(c.status == ConnectionStatus::Paused, c.paused_at.is_some());
    if c.status == ConnectionStatus::Canceled {
        prop_assert!(c.canceled_at.is_some() && c.end_date.is_some());
    }
    if c.status == ConnectionStatus::Trialing {
        prop_assert!(c.trial_end.is_some());
    }
    match c.connection_type {
        ConnectionType::Free => {
            prop_assert_eq!(c.amount, 0);
            prop_assert!(c.current_period_end.is_none() && c.price_id.is_none());
        }
        ConnectionType::Subscription => {
            prop_assert!(c.amount > 0 && c.price_id.is_some());
            let (start, end) = (
                c.current_period_start.unwrap(),
                c.current_period_end.unwrap(),
            );
            prop_assert!(start <= end);
        }
        ConnectionType::Onetime => prop_assert!(c.current_period_end.is_none() && c.amount > 0),
    }
    if c.next_billing_date().is_some() {
        prop_assert!(
            c.connection_type == ConnectionType::Subscription
                && c.active()
                && !c.cancel_at_period_end
        );
    }
    prop_assert!(c.created_at <= c.updated_at);
    Ok(())
}

#[derive(Debug, Clone)]
enum Step {
    Connect(usize),
    Cancel(usize, bool),
    Pause(usize, bool),
    Resume(usize),
    Replace(usize, usize),
    Wait(u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0..4usize).prop_map(Step::Connect),
        (0..4usize, any::<bool>()).prop_map(|(i, e)| Step::Cancel(i, e)),
        (0..4usize, any::<bool>()).prop_map(|(i, r)| Step::Pause(i, r)),
        (0..4usize).prop_map(Step::Resume),
        (0..4usize, 0..4usize).prop_map(|(i, p)| Step::Replace(i, p)),
        (0..400u32).prop_map(Step::Wait),
    ]
}

proptest! {
    #[test]
    fn random_sequences_of_transitions_keep_every_invariant(steps in proptest::collection::vec(step(), 1..60)) {
        let plans = [
            plan(PlanType::Free, vec![]),
            plan(PlanType::Paid, vec![(500, Interval::Month, 7)]),
            plan(PlanType::Paid, vec![(5000, Interval::Year, 0), (500, Interval::Week, 3)]),
            plan(PlanType::Paid, vec![(10_000, Interval::Onetime, 0)]),
        ];
        let m = member();
        let mut now = t0();
        let mut held: Vec<PlanConnection> = Vec::new();
        for step in steps {
            let (index, command) = match step {
                Step::Wait(days) => { now = now.plus_days(days); continue; }
                Step::Connect(p) => {
                    let price = plans[p].prices.first().map(|x| x.id.clone());
                    let before = held.iter().filter(|c| !c.status.is_final() && c.plan_id == plans[p].id).count();
                    match PlanConnection::connect(&m, &plans[p], price.as_ref(), &held, now) {
                        Ok((c, event)) => {
                            prop_assert_eq!(before, 0);
                            prop_assert_eq!(event.kind, crate::EventKind::MemberPlanCreated);
                            check_invariants(&c)?;
                            held.push(c);
                        }
                        Err(e) => prop_assert!(before > 0, "unexpected refusal: {e}"),
                    }
                    continue;
                }
                Step::Cancel(i, at_end) => (i, ConnectionCommand::Cancel { reason: None, at_period_end: at_end }),
                Step::Pause(i, with_date) => (i, ConnectionCommand::Pause { resume_at: with_date.then(|| now.plus_days(10)) }),
                Step::Resume(i) => (i, ConnectionCommand::Resume),
                Step::Replace(i, p) => (i, ConnectionCommand::Replace { plan: plans[p].clone(), price_id: None, at_period_end: false }),
            };
            if held.is_empty() { continue; }
            let i = index % held.len();
            let before = held[i].clone();
            let others: Vec<PlanConnection> = held.iter().filter(|c| c.id != before.id).cloned().collect();
            match before.apply(command, &others, now) {
                Ok((after, events)) => {
                    prop_assert!(!before.status.is_final(), "a final connection changed");
                    prop_assert!(!events.is_empty(), "a change without an event");
                    prop_assert_eq!(&after.id, &before.id);
                    prop_assert_eq!(after.updated_at, now);
                    check_invariants(&after)?;
                    held[i] = after;
                }
                Err(_) => prop_assert_eq!(&held[i], &before),
            }
            // A member never holds one plan twice at a time.
            for p in &plans {
                prop_assert!(held.iter().filter(|c| !c.status.is_final() && c.plan_id == p.id).count() <= 1);
            }
        }
    }
}
