//! Whatever a client sends, parsing answers with a value or a `DomainError`, never a panic.

use memberd_core::plan::{PlanDraft, PriceDraft};
use memberd_core::{
    DomainError, Email, Interval, Member, MemberId, NewMember, Plan, PlanType, Timestamp,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,600}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(3, 40, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,60}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_map() -> impl Strategy<Value = Map<String, Value>> {
    proptest::collection::btree_map(".{0,60}", json_value(), 0..60)
        .prop_map(|m| m.into_iter().collect())
}

fn interval() -> impl Strategy<Value = Interval> {
    proptest::sample::select(Interval::ALL.to_vec())
}

proptest! {
    #[test]
    fn parsers_take_any_string(s in "\\PC{0,300}") {
        let _ = Email::parse(&s);
        let _ = Timestamp::parse(&s);
        let _ = MemberId::parse(&s);
        let _ = Interval::parse(&s);
    }

    #[test]
    fn member_drafts_are_accepted_or_refused_with_a_field(
        email in ".{0,80}",
        custom_fields in proptest::option::of(json_map()),
        meta_data in proptest::option::of(json_map()),
        json in proptest::option::of(json_value()),
        external_id in proptest::option::of(".{0,300}"),
        permissions in proptest::option::of(proptest::collection::vec(".{0,120}", 0..5)),
    ) {
        let draft = NewMember { email, custom_fields, meta_data, json, external_id, permissions, ..Default::default() };
        match Member::create(draft, Timestamp::from_micros(0)) {
            Ok((member, event)) => prop_assert_eq!(&event.data["id"], member.id.as_str()),
            Err(DomainError::Invalid { field, .. }) => prop_assert!(!field.is_empty()),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn plan_drafts_are_accepted_or_refused_with_a_field(
        name in ".{0,250}",
        paid in any::<bool>(),
        permissions in proptest::collection::vec(".{0,20}", 0..4),
        prices in proptest::collection::vec(
            (any::<i64>(), "[a-zA-Z]{0,4}", interval(), proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>())),
            0..4,
        ),
        now in any::<i64>(),
    ) {
        let draft = PlanDraft {
            name,
            description: None,
            plan_type: if paid { PlanType::Paid } else { PlanType::Free },
            permissions,
            prices: prices
                .into_iter()
                .map(|(amount, currency, interval, interval_count, trial_days)| PriceDraft { amount, currency, interval, interval_count, trial_days, term_days: None })
                .collect(),
        };
        match Plan::create(draft, Timestamp::from_micros(now)) {
            Ok(plan) => prop_assert!(plan.prices.iter().all(|p| p.amount > 0)),
            Err(DomainError::Invalid { field, .. }) => prop_assert!(!field.is_empty()),
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }
}
