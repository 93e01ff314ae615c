//! A plan connection brought back from an export (`memberd export`, then `memberd import`):
//! its state is taken as it was, its billing terms from the plan and price it names, so that
//! a connection cannot come back charging what its price never asked.

use super::{Terms, CANCEL_REASON_MAX_CHARS};
use crate::fields::check_text;
use crate::{
    ConnectionId, ConnectionStatus, ConnectionType, DomainError, MemberId, Plan, PlanConnection,
    PlanType, PriceId, Timestamp,
};

/// What an export keeps of a connection, beyond its plan and price: where it stands in its
/// life. Field names in errors are the wire names, relative to the connection.
#[derive(Debug, Clone)]
pub struct SavedConnection {
    pub id: ConnectionId,
    pub price_id: Option<PriceId>,
    pub status: ConnectionStatus,
    pub start_date: Timestamp,
    pub current_period_start: Option<Timestamp>,
    pub current_period_end: Option<Timestamp>,
    pub trial_end: Option<Timestamp>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<Timestamp>,
    pub cancel_reason: Option<String>,
    pub paused_at: Option<Timestamp>,
    pub resume_at: Option<Timestamp>,
    pub end_date: Option<Timestamp>,
    pub retry_count: u32,
    pub next_retry_at: Option<Timestamp>,
    /// The plan it moves to at the end of its period, looked up by the caller.
    pub scheduled: Option<(Plan, Option<PriceId>)>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl PlanConnection {
    /// The connection `saved` describes, of `member_id` to `plan`. An archived plan or a
    /// retired price is no obstacle (the member held it before), but the price must be one of
    /// the plan's, and a subscription that runs must have a period that ends.
    pub fn restore(
        member_id: MemberId,
        plan: &Plan,
        saved: SavedConnection,
    ) -> Result<PlanConnection, DomainError> {
        let terms = restored_terms(plan, saved.price_id.as_ref(), "priceId")?;
        let runs = matches!(
            saved.status,
            ConnectionStatus::Active | ConnectionStatus::Trialing | ConnectionStatus::PastDue
        );
        if terms.connection_type == ConnectionType::Subscription
            && runs
            && saved.current_period_end.is_none()
        {
            return Err(DomainError::invalid(
                "currentPeriodEnd",
                "period_required",
                format!(
                    "a {} subscription needs the end of its period",
                    saved.status
                ),
            ));
        }
        if let Some(reason) = &saved.cancel_reason {
            check_text("cancelReason", reason, CANCEL_REASON_MAX_CHARS)?;
        }
        let (scheduled_plan_id, scheduled_price_id) = match saved.scheduled {
            Some((next, price_id)) => {
                let terms = restored_terms(&next, price_id.as_ref(), "scheduledPriceId")?;
                (Some(next.id), terms.price_id)
            }
            None => (None, None),
        };
        Ok(PlanConnection {
            id: saved.id,
            member_id,
            plan_id: plan.id.clone(),
            price_id: terms.price_id,
            connection_type: terms.connection_type,
            status: saved.status,
            amount: terms.amount,
            currency: terms.currency,
            interval: terms.interval,
            interval_count: terms.interval_count,
            start_date: saved.start_date,
            current_period_start: saved.current_period_start,
            current_period_end: saved.current_period_end,
            trial_end: saved.trial_end,
            cancel_at_period_end: saved.cancel_at_period_end,
            canceled_at: saved.canceled_at,
            cancel_reason: saved.cancel_reason,
            paused_at: saved.paused_at,
            resume_at: saved.resume_at,
            end_date: saved.end_date,
            retry_count: saved.retry_count,
            next_retry_at: saved.next_retry_at,
            scheduled_plan_id,
            scheduled_price_id,
            created_at: saved.created_at,
            updated_at: saved.updated_at,
        })
    }
}

/// The terms of `price_id` in `plan`, whatever the plan's or price's state now.
fn restored_terms(
    plan: &Plan,
    price_id: Option<&PriceId>,
    field: &'static str,
) -> Result<Terms, DomainError> {
    match (plan.plan_type, price_id) {
        (PlanType::Free, None) => Ok(Terms::FREE),
        (PlanType::Free, Some(_)) => Err(DomainError::invalid(
            field,
            "free_plan_price",
            format!("plan {} is FREE and has no prices", plan.id),
        )),
        (PlanType::Paid, None) => Err(DomainError::invalid(
            field,
            "price_required",
            format!("plan {} is PAID: say which of its prices", plan.id),
        )),
        (PlanType::Paid, Some(id)) => plan.price(id).map(Terms::of_price).ok_or_else(|| {
            DomainError::invalid(
                field,
                "unknown_price",
                format!("plan {} has no price {id}", plan.id),
            )
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanDraft, PriceDraft};
    use crate::Interval;

    fn at(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn paid_plan() -> Plan {
        let draft = PlanDraft {
            name: "Gold".into(),
            description: None,
            plan_type: PlanType::Paid,
            permissions: vec![],
            prices: vec![PriceDraft {
                amount: 900,
                currency: "usd".into(),
                interval: Interval::Month,
                interval_count: None,
                trial_days: None,
                term_days: None,
            }],
        };
        Plan::create(draft, at("2026-01-01T00:00:00Z")).unwrap()
    }

    fn saved(price_id: Option<PriceId>) -> SavedConnection {
        SavedConnection {
            id: ConnectionId::generate(),
            price_id,
            status: ConnectionStatus::Active,
            start_date: at("2026-02-01T00:00:00Z"),
            current_period_start: Some(at("2026-02-01T00:00:00Z")),
            current_period_end: Some(at("2026-03-01T00:00:00Z")),
            trial_end: None,
            cancel_at_period_end: false,
            canceled_at: None,
            cancel_reason: None,
            paused_at: None,
            resume_at: None,
            end_date: None,
            retry_count: 0,
            next_retry_at: None,
            scheduled: None,
            created_at: at("2026-02-01T00:00:00Z"),
            updated_at: at("2026-02-01T00:00:00Z"),
        }
    }

    #[test]
    fn terms_come_from_the_price_and_state_from_the_export() {
        let plan = paid_plan();
        let price = plan.prices[0].id.clone();
        let restored =
            PlanConnection::restore(MemberId::generate(), &plan, saved(Some(price.clone())))
                .unwrap();
        assert_eq!(restored.price_id, Some(price));
        assert_eq!(restored.amount, 900);
        assert_eq!(restored.connection_type, ConnectionType::Subscription);
        assert_eq!(
            restored.current_period_end,
            Some(at("2026-03-01T00:00:00Z"))
        );
    }

    #[test]
    fn a_price_of_another_plan_or_none_is_refused() {
        let plan = paid_plan();
        let other = paid_plan().prices[0].id.clone();
        let err = PlanConnection::restore(MemberId::generate(), &plan, saved(Some(other)));
        assert!(
            matches!(err, Err(DomainError::Invalid { field, code: "unknown_price", .. }) if field == "priceId")
        );
        let err = PlanConnection::restore(MemberId::generate(), &plan, saved(None));
        assert!(matches!(
            err,
            Err(DomainError::Invalid {
                code: "price_required",
                ..
            })
        ));
    }

    #[test]
    fn a_running_subscription_needs_its_period_end() {
        let plan = paid_plan();
        let mut saved = saved(Some(plan.prices[0].id.clone()));
        saved.current_period_end = None;
        let err = PlanConnection::restore(MemberId::generate(), &plan, saved);
        assert!(
            matches!(err, Err(DomainError::Invalid { field, .. }) if field == "currentPeriodEnd")
        );
    }
}
