//! Time moving a plan connection along: trials end, periods renew, failed charges are retried
//! and given up on, scheduled cancellations and resumptions happen, terms expire.
//!
//! Pure functions of a connection, the time and (for the transitions that charge) the outcome
//! of the charge. The scheduler asks `next_due` when to come back, charges when `charge_due`
//! says so, and records what `on_due` returns, all in one transaction.

use crate::event::PlanChange;
use crate::{
    ConnectionCommand, ConnectionStatus, ConnectionType, NewEvent, Plan, PlanConnection, Timestamp,
};

/// What falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    TrialEnd,
    Renewal,
    Retry,
    ScheduledCancel,
    /// The end of a period after which the connection moves to its scheduled plan.
    ScheduledReplace,
    Resume,
    Expiry,
}

/// The outcome of a charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charge {
    Succeeded,
    Failed { reason: String },
}

/// How failed charges are retried, and what happens after the last retry fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DunningPolicy {
    /// Days to wait before each retry, counted from the failure before it.
    pub retry_after_days: Vec<u32>,
    /// CANCELED or UNPAID.
    pub give_up_as: ConnectionStatus,
}

impl Default for DunningPolicy {
    fn default() -> Self {
        DunningPolicy {
            retry_after_days: vec![1, 3, 5],
            give_up_as: ConnectionStatus::Canceled,
        }
    }
}

impl PlanConnection {
    /// The next transition time brings, and when.
    pub fn next_due(&self) -> Option<(Timestamp, Due)> {
        let subscription = self.connection_type == ConnectionType::Subscription;
        match self.status {
            ConnectionStatus::Paused => self.resume_at.map(|t| (t, Due::Resume)),
            ConnectionStatus::Trialing | ConnectionStatus::Active if subscription => {
                let end = self.current_period_end?;
                let due = if self.cancel_at_period_end {
                    Due::ScheduledCancel
                } else if self.scheduled_plan_id.is_some() {
                    Due::ScheduledReplace
                } else if self.status == ConnectionStatus::Trialing {
                    Due::TrialEnd
                } else {
                    Due::Renewal
                };
                Some((end, due))
            }
            ConnectionStatus::Active => self.end_date.map(|t| (t, Due::Expiry)),
            ConnectionStatus::PastDue => self.next_retry_at.map(|t| (t, Due::Retry)),
            _ => None,
        }
    }

    /// The amount a due transition charges, if it charges.
    pub fn charge_due(&self, due: Due) -> Option<i64> {
        let charges = matches!(
            due,
            Due::TrialEnd | Due::Renewal | Due::Retry | Due::ScheduledReplace
        );
        (charges && self.connection_type == ConnectionType::Subscription && self.amount > 0)
            .then_some(self.amount)
    }

    /// Applies a due transition at `now`. `charge` is the outcome of the charge `charge_due`
    /// asked for (`None` when it asked for none).
    pub fn on_due(
        &self,
        due: Due,
        now: Timestamp,
        charge: Option<&Charge>,
        policy: &DunningPolicy,
    ) -> (PlanConnection, Vec<NewEvent>) {
        let mut next = self.clone();
        next.updated_at = now;
        let events = match due {
            Due::TrialEnd | Due::Renewal | Due::ScheduledReplace => {
                // The new period follows the old one without a gap, whenever it is applied.
                let start = self.current_period_end.unwrap_or(now);
                next.start_period(start);
                next.trial_end = None;
                match charge {
                    Some(Charge::Failed { reason }) => next.fail(now, reason, policy),
                    _ => {
                        next.status = ConnectionStatus::Active;
                        let mut events = Vec::new();
                        if charge.is_some() {
                            events.push(NewEvent::payment(&next, true, None));
                        }
                        events.push(NewEvent::plan_updated(&next, PlanChange::Renewed));
                        events
                    }
                }
            }
            Due::Retry => match charge {
                Some(Charge::Failed { reason }) => next.fail(now, reason, policy),
                _ => {
                    next.status = ConnectionStatus::Active;
                    next.retry_count = 0;
                    next.next_retry_at = None;
                    vec![
                        NewEvent::payment(&next, true, None),
                        NewEvent::plan_updated(&next, PlanChange::Recovered),
                    ]
                }
            },
            Due::ScheduledCancel => {
                next.status = ConnectionStatus::Canceled;
                next.canceled_at = Some(now);
                next.end_date = Some(self.current_period_end.unwrap_or(now));
                next.next_retry_at = None;
                vec![NewEvent::plan_canceled(&next)]
            }
            Due::Resume => match self.apply(ConnectionCommand::Resume, &[], now) {
                Ok((resumed, events)) => return (resumed, events),
                Err(_) => return (self.clone(), Vec::new()),
            },
            Due::Expiry => {
                next.status = ConnectionStatus::Expired;
                next.end_date = Some(self.end_date.unwrap_or(now));
                vec![NewEvent::plan_updated(&next, PlanChange::Expired)]
            }
        };
        (next, events)
    }

    /// Prepares a due transition: a scheduled move to another plan happens first (`plan` is
    /// the plan it moves to, as it stands now), and the charge is that of the terms the new
    /// period runs on.
    pub fn prepare_due(&self, due: Due, scheduled_plan: Option<&Plan>) -> PreparedDue {
        if due != Due::ScheduledReplace {
            return PreparedDue::new(self.clone(), Some(due), Vec::new());
        }
        match scheduled_plan.and_then(|plan| self.switch_to_scheduled(plan)) {
            Some((switched, event)) => {
                let renews = switched.connection_type == ConnectionType::Subscription;
                PreparedDue::new(switched, renews.then_some(Due::Renewal), vec![event])
            }
            None => {
                // The plan can no longer be taken: the connection renews on its own terms.
                let mut basis = self.clone();
                basis.scheduled_plan_id = None;
                basis.scheduled_price_id = None;
                let due = if self.status == ConnectionStatus::Trialing {
                    Due::TrialEnd
                } else {
                    Due::Renewal
                };
                PreparedDue::new(basis, Some(due), Vec::new())
            }
        }
    }

    fn start_period(&mut self, start: Timestamp) {
        if let Some(interval) = self.interval {
            self.current_period_start = Some(start);
            self.current_period_end = Some(start.plus_interval(interval, self.interval_count));
        }
    }

    /// A charge failed: retry on the policy's schedule, or give up after the last retry.
    fn fail(&mut self, now: Timestamp, reason: &str, policy: &DunningPolicy) -> Vec<NewEvent> {
        self.retry_count = self.retry_count.saturating_add(1);
        let mut events = vec![NewEvent::payment(self, false, Some(reason))];
        match policy.retry_after_days.get(self.retry_count as usize - 1) {
            Some(days) => {
                self.status = ConnectionStatus::PastDue;
                self.next_retry_at = Some(now.plus_days(*days));
                events.push(NewEvent::plan_updated(self, PlanChange::PastDue));
            }
            None if policy.give_up_as == ConnectionStatus::Unpaid => {
                self.status = ConnectionStatus::Unpaid;
                self.next_retry_at = None;
                events.push(NewEvent::plan_updated(self, PlanChange::Unpaid));
            }
            None => {
                self.status = ConnectionStatus::Canceled;
                self.canceled_at = Some(now);
                self.end_date = Some(now);
                self.cancel_reason = Some("payment_failed".into());
                self.next_retry_at = None;
                events.push(NewEvent::plan_canceled(self));
            }
        }
        events
    }
}

/// A due transition about to be applied: where it starts from and what it charges.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedDue {
    basis: PlanConnection,
    due: Option<Due>,
    events: Vec<NewEvent>,
    /// The amount and currency to charge before `finish`, if any.
    pub charge: Option<(i64, String)>,
}

impl PreparedDue {
    fn new(basis: PlanConnection, due: Option<Due>, events: Vec<NewEvent>) -> Self {
        let charge = due
            .and_then(|d| basis.charge_due(d))
            .map(|amount| (amount, basis.currency.clone().unwrap_or_default()));
        PreparedDue {
            basis,
            due,
            events,
            charge,
        }
    }

    /// Applies the transition at `now` with the outcome of the charge it asked for.
    pub fn finish(
        self,
        now: Timestamp,
        charge: Option<&Charge>,
        policy: &DunningPolicy,
    ) -> (PlanConnection, Vec<NewEvent>) {
        let mut events = self.events;
        match self.due {
            None => (self.basis, events),
            Some(due) => {
                let (next, more) = self.basis.on_due(due, now, charge, policy);
                events.extend(more);
                (next, events)
            }
        }
    }
}

/// A price's amount per month, so that weekly, monthly and yearly prices add up (MRR).
pub fn monthly_amount(amount: i64, interval: crate::Interval, interval_count: u32) -> i64 {
    use crate::Interval;
    let count = f64::from(interval_count.max(1));
    let per_month = match interval {
        Interval::Day => amount as f64 * 365.25 / 12.0 / count,
        Interval::Week => amount as f64 * 365.25 / 7.0 / 12.0 / count,
        Interval::Month => amount as f64 / count,
        Interval::Year => amount as f64 / 12.0 / count,
        Interval::Onetime => 0.0,
    };
    per_month.round() as i64
}

#[cfg(test)]
mod tests;
