//! The plan-connection lifecycle: one state machine, in one place.
//!
//! Every transition is a function of the current connection, the command and the time, and
//! returns the next connection with the events it emits, or a `Conflict` that says why the
//! transition is impossible. Charging and the passage of time (trial end, renewal, dunning,
//! expiry) build on these states in the lifecycle engine.

use crate::event::PlanChange;
use crate::fields::check_text;
use crate::plan::wire_enum;
use crate::{
    ConnectionId, DomainError, Interval, MemberId, NewEvent, Plan, PlanId, PlanStatus, PlanType,
    Price, PriceId, Timestamp,
};

wire_enum!(
    /// Where a plan connection stands.
    ConnectionStatus {
        Active => "ACTIVE",
        Trialing => "TRIALING",
        PastDue => "PAST_DUE",
        RequiresPayment => "REQUIRES_PAYMENT",
        Unpaid => "UNPAID",
        Paused => "PAUSED",
        Canceled => "CANCELED",
        Expired => "EXPIRED",
        Incomplete => "INCOMPLETE",
    }
);

wire_enum!(
    /// How a connection is paid: not at all, by recurring charges, or once.
    ConnectionType { Free => "FREE", Subscription => "SUBSCRIPTION", Onetime => "ONETIME" }
);

impl ConnectionStatus {
    /// Whether a member in this state gets what the plan grants. PAST_DUE keeps access while
    /// payment is retried, as with Stripe's and Memberstack's grace periods.
    pub fn grants_access(self) -> bool {
        matches!(
            self,
            ConnectionStatus::Active | ConnectionStatus::Trialing | ConnectionStatus::PastDue
        )
    }

    /// Canceled and expired connections are history: no transition leaves them.
    pub fn is_final(self) -> bool {
        matches!(self, ConnectionStatus::Canceled | ConnectionStatus::Expired)
    }
}

pub const CANCEL_REASON_MAX_CHARS: usize = 500;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanConnection {
    pub id: ConnectionId,
    pub member_id: MemberId,
    pub plan_id: PlanId,
    pub price_id: Option<PriceId>,
    pub connection_type: ConnectionType,
    pub status: ConnectionStatus,
    /// Per period, in minor units; 0 for free plans.
    pub amount: i64,
    pub currency: Option<String>,
    pub interval: Option<Interval>,
    pub interval_count: u32,
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
    /// Failed charges of the current period so far (dunning).
    pub retry_count: u32,
    /// When the next charge of a PAST_DUE connection is tried.
    pub next_retry_at: Option<Timestamp>,
    /// The plan (and price) the connection moves to at the end of its period.
    pub scheduled_plan_id: Option<PlanId>,
    pub scheduled_price_id: Option<PriceId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What can be asked of a connection.
#[derive(Debug, Clone)]
pub enum ConnectionCommand {
    Cancel {
        reason: Option<String>,
        at_period_end: bool,
    },
    Pause {
        resume_at: Option<Timestamp>,
    },
    Resume,
    /// Moves to another plan now, or at the end of the current period.
    Replace {
        plan: Plan,
        price_id: Option<PriceId>,
        at_period_end: bool,
    },
}

impl ConnectionCommand {
    pub fn name(&self) -> &'static str {
        match self {
            ConnectionCommand::Cancel { .. } => "cancel",
            ConnectionCommand::Pause { .. } => "pause",
            ConnectionCommand::Resume => "resume",
            ConnectionCommand::Replace { .. } => "replace",
        }
    }
}

/// The billing terms a connection takes from a plan and one of its prices.
struct Terms {
    price_id: Option<PriceId>,
    connection_type: ConnectionType,
    amount: i64,
    currency: Option<String>,
    interval: Option<Interval>,
    interval_count: u32,
    trial_days: u32,
    term_days: Option<u32>,
}

fn terms(plan: &Plan, price_id: Option<&PriceId>) -> Result<Terms, DomainError> {
    if plan.status == PlanStatus::Archived {
        return Err(DomainError::conflict(
            "plan_archived",
            format!("plan {} is archived and takes no new members", plan.id),
        ));
    }
    if plan.plan_type == PlanType::Free {
        if price_id.is_some() {
            return Err(DomainError::invalid(
                "priceId",
                "free_plan_price",
                "a FREE plan has no prices",
            ));
        }
        return Ok(Terms::FREE);
    }
    let price = match price_id {
        Some(id) => {
            let price = plan.price(id).ok_or_else(|| {
                DomainError::invalid(
                    "priceId",
                    "unknown_price",
                    format!("plan {} has no price {id}", plan.id),
                )
            })?;
            if !price.active {
                return Err(DomainError::invalid(
                    "priceId",
                    "price_retired",
                    format!("price {id} is retired and takes no new members"),
                ));
            }
            price
        }
        None => {
            let mut active = plan.active_prices();
            match (active.next(), active.next()) {
                (Some(only), None) => only,
                _ => {
                    return Err(DomainError::invalid(
                        "priceId",
                        "price_required",
                        format!(
                            "plan {} has several prices: say which with priceId",
                            plan.id
                        ),
                    ))
                }
            }
        }
    };
    Ok(Terms::of_price(price))
}

impl Terms {
    const FREE: Terms = Terms {
        price_id: None,
        connection_type: ConnectionType::Free,
        amount: 0,
        currency: None,
        interval: None,
        interval_count: 1,
        trial_days: 0,
        term_days: None,
    };

    fn of_price(price: &Price) -> Terms {
        let onetime = price.interval == Interval::Onetime;
        Terms {
            price_id: Some(price.id.clone()),
            connection_type: if onetime {
                ConnectionType::Onetime
            } else {
                ConnectionType::Subscription
            },
            amount: price.amount,
            currency: Some(price.currency.clone()),
            interval: Some(price.interval),
            interval_count: price.interval_count,
            trial_days: price.trial_days,
            term_days: price.term_days,
        }
    }
}

fn holds_plan(others: &[PlanConnection], plan_id: &PlanId, except: Option<&ConnectionId>) -> bool {
    others
        .iter()
        .any(|c| &c.plan_id == plan_id && !c.status.is_final() && Some(&c.id) != except)
}

/// What connecting to a plan charges at once: the first period of a paid price without a
/// trial, or a one-time price. `None` for free plans and trials (a trial is charged when it
/// ends). Refuses the same prices `connect` refuses.
pub fn first_charge(
    plan: &Plan,
    price_id: Option<&PriceId>,
) -> Result<Option<(i64, String)>, DomainError> {
    let terms = terms(plan, price_id)?;
    let charges =
        terms.connection_type != ConnectionType::Free && terms.trial_days == 0 && terms.amount > 0;
    Ok(charges.then(|| (terms.amount, terms.currency.unwrap_or_default())))
}

/// Memberstack's admin APIs attach and remove free plans only: a paid plan starts with a
/// checkout, which the member goes through themselves.
pub fn ensure_free(
    plan: &Plan,
    field: impl Into<std::borrow::Cow<'static, str>>,
) -> Result<(), DomainError> {
    if plan.plan_type != PlanType::Free {
        return Err(DomainError::invalid(
            field,
            "paid_plan",
            format!(
                "plan {} is PAID: only free plans can be added or removed here; a paid plan starts with a checkout",
                plan.id
            ),
        ));
    }
    Ok(())
}

/// The connection through which a member holds a plan now (not canceled or expired), if any.
pub fn held<'a>(connections: &'a [PlanConnection], plan_id: &PlanId) -> Option<&'a PlanConnection> {
    connections
        .iter()
        .find(|c| &c.plan_id == plan_id && !c.status.is_final())
}

impl PlanConnection {
    /// Whether the member gets what the plan grants now.
    pub fn active(&self) -> bool {
        self.status.grants_access()
    }

    /// When the next charge falls due: the end of the current period of a subscription that
    /// runs on, and nothing otherwise.
    pub fn next_billing_date(&self) -> Option<Timestamp> {
        let runs_on = self.connection_type == ConnectionType::Subscription
            && self.active()
            && !self.cancel_at_period_end;
        if runs_on {
            self.current_period_end
        } else {
            None
        }
    }

    /// Connects a member to a plan. `existing` are the member's other connections: a member
    /// holds a plan at most once at a time.
    pub fn connect(
        member_id: &MemberId,
        plan: &Plan,
        price_id: Option<&PriceId>,
        existing: &[PlanConnection],
        now: Timestamp,
    ) -> Result<(PlanConnection, NewEvent), DomainError> {
        let terms = terms(plan, price_id)?;
        if holds_plan(existing, &plan.id, None) {
            return Err(DomainError::conflict(
                "plan_already_connected",
                format!("member {member_id} already holds plan {}", plan.id),
            ));
        }
        let mut connection = PlanConnection {
            id: ConnectionId::generate(),
            member_id: member_id.clone(),
            plan_id: plan.id.clone(),
            price_id: None,
            connection_type: ConnectionType::Free,
            status: ConnectionStatus::Active,
            amount: 0,
            currency: None,
            interval: None,
            interval_count: 1,
            start_date: now,
            current_period_start: None,
            current_period_end: None,
            trial_end: None,
            cancel_at_period_end: false,
            canceled_at: None,
            cancel_reason: None,
            paused_at: None,
            resume_at: None,
            end_date: None,
            retry_count: 0,
            next_retry_at: None,
            scheduled_plan_id: None,
            scheduled_price_id: None,
            created_at: now,
            updated_at: now,
        };
        connection.take_terms(terms, now, true);
        let event = NewEvent::plan_created(&connection);
        Ok((connection, event))
    }

    /// Sets the billing terms and starts a period (or a trial, when `allow_trial`) at `now`.
    fn take_terms(&mut self, terms: Terms, now: Timestamp, allow_trial: bool) {
        self.price_id = terms.price_id;
        self.connection_type = terms.connection_type;
        self.amount = terms.amount;
        self.currency = terms.currency;
        self.interval = terms.interval;
        self.interval_count = terms.interval_count;
        self.trial_end = None;
        self.status = ConnectionStatus::Active;
        self.scheduled_plan_id = None;
        self.scheduled_price_id = None;
        // A one-time purchase with a term is held until the term ends.
        self.end_date = match (self.connection_type, terms.term_days) {
            (ConnectionType::Onetime, Some(days)) => Some(now.plus_days(days)),
            _ => None,
        };
        match (self.connection_type, self.interval) {
            (ConnectionType::Subscription, Some(interval)) => {
                self.current_period_start = Some(now);
                if allow_trial && terms.trial_days > 0 {
                    let trial_end = now.plus_days(terms.trial_days);
                    self.status = ConnectionStatus::Trialing;
                    self.trial_end = Some(trial_end);
                    self.current_period_end = Some(trial_end);
                } else if !allow_trial {
                    // A change of plan bills the new price at once: the scheduler renews a
                    // period that ends now, charging it and starting the next one from now.
                    self.current_period_end = Some(now);
                } else {
                    self.current_period_end =
                        Some(now.plus_interval(interval, self.interval_count));
                }
            }
            _ => {
                self.current_period_start = None;
                self.current_period_end = None;
            }
        }
    }

    /// Applies a command. `others` are the member's other connections.
    pub fn apply(
        &self,
        command: ConnectionCommand,
        others: &[PlanConnection],
        now: Timestamp,
    ) -> Result<(PlanConnection, Vec<NewEvent>), DomainError> {
        if self.status.is_final() {
            return Err(DomainError::conflict(
                "connection_ended",
                format!(
                    "plan connection {} is {} and cannot be changed (tried to {})",
                    self.id,
                    self.status,
                    command.name()
                ),
            ));
        }
        let mut next = self.clone();
        next.updated_at = now;
        let events = match command {
            ConnectionCommand::Cancel {
                reason,
                at_period_end,
            } => {
                if let Some(r) = &reason {
                    check_text("reason", r, CANCEL_REASON_MAX_CHARS)?;
                }
                let reason = reason.filter(|r| !r.trim().is_empty());
                if at_period_end {
                    let Some(period_end) = self
                        .current_period_end
                        .filter(|_| self.connection_type == ConnectionType::Subscription)
                    else {
                        return Err(DomainError::conflict(
                            "no_billing_period",
                            format!("plan connection {} has no billing period to end; cancel it now instead", self.id),
                        ));
                    };
                    if self.cancel_at_period_end {
                        return Err(DomainError::conflict(
                            "cancel_already_scheduled",
                            format!(
                                "plan connection {} is already set to cancel at {}",
                                self.id, period_end
                            ),
                        ));
                    }
                    next.cancel_at_period_end = true;
                    next.cancel_reason = reason;
                    next.scheduled_plan_id = None;
                    next.scheduled_price_id = None;
                    next.end_date = Some(period_end);
                    vec![NewEvent::plan_updated(&next, PlanChange::CancelScheduled)]
                } else {
                    next.status = ConnectionStatus::Canceled;
                    next.canceled_at = Some(now);
                    next.cancel_reason = reason.or(next.cancel_reason);
                    next.end_date = Some(now);
                    next.paused_at = None;
                    next.resume_at = None;
                    next.scheduled_plan_id = None;
                    next.scheduled_price_id = None;
                    vec![NewEvent::plan_canceled(&next)]
                }
            }
            ConnectionCommand::Pause { resume_at } => {
                if self.status == ConnectionStatus::Paused {
                    return Err(DomainError::conflict(
                        "already_paused",
                        format!("plan connection {} is already paused", self.id),
                    ));
                }
                if !self.active() {
                    return Err(DomainError::conflict(
                        "not_pausable",
                        format!(
                            "plan connection {} is {} and only an active one can be paused",
                            self.id, self.status
                        ),
                    ));
                }
                if let Some(at) = resume_at {
                    if at <= now {
                        return Err(DomainError::invalid(
                            "resumeAt",
                            "resume_in_past",
                            "resumeAt must be in the future",
                        ));
                    }
                }
                next.status = ConnectionStatus::Paused;
                next.paused_at = Some(now);
                next.resume_at = resume_at;
                vec![NewEvent::plan_updated(&next, PlanChange::Paused)]
            }
            ConnectionCommand::Resume => {
                if self.status != ConnectionStatus::Paused {
                    return Err(DomainError::conflict(
                        "not_paused",
                        format!(
                            "plan connection {} is {}, not PAUSED, so there is nothing to resume",
                            self.id, self.status
                        ),
                    ));
                }
                next.status = ConnectionStatus::Active;
                next.paused_at = None;
                next.resume_at = None;
                next.trial_end = None;
                // A paused subscription was neither billed nor active: a fresh period starts
                // now, and is due at once, so that the scheduler charges it.
                if next.connection_type == ConnectionType::Subscription {
                    next.current_period_start = Some(now);
                    next.current_period_end = Some(now);
                    if next.cancel_at_period_end {
                        next.end_date = Some(now);
                    }
                }
                vec![NewEvent::plan_updated(&next, PlanChange::Resumed)]
            }
            ConnectionCommand::Replace {
                plan,
                price_id,
                at_period_end,
            } => {
                if plan.id == self.plan_id
                    && price_id
                        .as_ref()
                        .is_none_or(|p| Some(p) == self.price_id.as_ref())
                {
                    return Err(DomainError::conflict(
                        "same_plan",
                        format!("plan connection {} already is on plan {}", self.id, plan.id),
                    ));
                }
                if plan.id != self.plan_id && holds_plan(others, &plan.id, Some(&self.id)) {
                    return Err(DomainError::conflict(
                        "plan_already_connected",
                        format!("member {} already holds plan {}", self.member_id, plan.id),
                    ));
                }
                let terms = terms(&plan, price_id.as_ref())?;
                if terms.connection_type == ConnectionType::Onetime {
                    // A purchase is paid for when it is made: connecting charges it, a move
                    // of plan would not.
                    return Err(DomainError::invalid(
                        "priceId",
                        "onetime_replace",
                        "a ONETIME price is bought by connecting to it, not by replacing a plan with it",
                    ));
                }
                if at_period_end {
                    return self.schedule_replace(next, terms, &plan);
                }
                let prev_plan = self.plan_id.clone();
                next.plan_id = plan.id.clone();
                // No second trial on a change of plan, as with Stripe.
                next.take_terms(terms, now, false);
                next.cancel_at_period_end = false;
                next.cancel_reason = None;
                next.paused_at = None;
                next.resume_at = None;
                vec![NewEvent::plan_replaced(&next, &prev_plan)]
            }
        };
        Ok((next, events))
    }

    /// Replacing at period end: the current terms run to the end of the period, then the
    /// scheduler moves the connection to the plan (see `lifecycle`).
    fn schedule_replace(
        &self,
        mut next: PlanConnection,
        terms: Terms,
        plan: &Plan,
    ) -> Result<(PlanConnection, Vec<NewEvent>), DomainError> {
        let runs_on = self.connection_type == ConnectionType::Subscription
            && matches!(
                self.status,
                ConnectionStatus::Active | ConnectionStatus::Trialing
            )
            && self.current_period_end.is_some();
        if !runs_on {
            return Err(DomainError::conflict(
                "no_billing_period",
                format!(
                    "plan connection {} is {} with no running period to end; replace it now instead",
                    self.id, self.status
                ),
            ));
        }
        next.scheduled_plan_id = Some(plan.id.clone());
        next.scheduled_price_id = terms.price_id;
        // A scheduled move supersedes a scheduled cancellation, as in Stripe's schedules.
        next.cancel_at_period_end = false;
        next.cancel_reason = None;
        next.end_date = None;
        Ok((
            next.clone(),
            vec![NewEvent::plan_updated(&next, PlanChange::ReplaceScheduled)],
        ))
    }

    /// Takes the terms of the plan it was scheduled to move to, at the end of its period:
    /// the new plan's period (charged by the renewal that follows) starts where the old one
    /// ended. `None` when the plan can no longer be taken (archived, or its price is gone).
    pub(crate) fn switch_to_scheduled(&self, plan: &Plan) -> Option<(PlanConnection, NewEvent)> {
        if Some(&plan.id) != self.scheduled_plan_id.as_ref() {
            return None;
        }
        let terms = terms(plan, self.scheduled_price_id.as_ref()).ok()?;
        let at = self.current_period_end?;
        let prev_plan = self.plan_id.clone();
        let mut next = self.clone();
        next.plan_id = plan.id.clone();
        next.take_terms(terms, at, false);
        // Still to be renewed: the period that ends now is the old one.
        next.status = self.status;
        if next.connection_type == ConnectionType::Subscription {
            next.current_period_start = self.current_period_start;
            next.current_period_end = Some(at);
        }
        next.trial_end = None;
        next.updated_at = at;
        let event = NewEvent::plan_replaced(&next, &prev_plan);
        Some((next, event))
    }
}

mod restore;
pub use restore::SavedConnection;

#[cfg(test)]
mod tests;
