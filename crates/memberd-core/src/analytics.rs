//! The business in figures: who is active, trialing or past due, who joined and who left in a
//! period, and the recurring revenue, per plan and in total. Computed from the connections as
//! stored; money is summed per currency, never across currencies.

use std::collections::BTreeMap;

use crate::lifecycle::monthly_amount;
use crate::{ConnectionStatus, ConnectionType, PlanConnection, Timestamp};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    pub active: u64,
    pub trialing: u64,
    pub past_due: u64,
    /// Connections started in the period.
    pub new: u64,
    /// Connections that ended (canceled or expired) in the period.
    pub churned: u64,
    /// Monthly recurring revenue per currency, in minor units: every active or past-due
    /// subscription's price, normalised to a month.
    pub mrr: BTreeMap<String, i64>,
}

impl Figures {
    fn add(&mut self, c: &PlanConnection, from: Timestamp, to: Timestamp) {
        match c.status {
            ConnectionStatus::Active => self.active += 1,
            ConnectionStatus::Trialing => self.trialing += 1,
            ConnectionStatus::PastDue => self.past_due += 1,
            _ => {}
        }
        let within = |t: Timestamp| from <= t && t < to;
        if within(c.start_date) {
            self.new += 1;
        }
        if ended_at(c).is_some_and(within) {
            self.churned += 1;
        }
        let recurring = c.connection_type == ConnectionType::Subscription
            && matches!(
                c.status,
                ConnectionStatus::Active | ConnectionStatus::PastDue
            );
        if let (true, Some(interval), Some(currency)) = (recurring, c.interval, &c.currency) {
            *self.mrr.entry(currency.clone()).or_default() +=
                monthly_amount(c.amount, interval, c.interval_count);
        }
    }

    /// Annual recurring revenue per currency: twelve months of MRR.
    pub fn arr(&self) -> BTreeMap<String, i64> {
        self.mrr.iter().map(|(c, m)| (c.clone(), m * 12)).collect()
    }
}

/// When a connection ended (was canceled or expired), if it has: the moment it churned.
pub fn ended_at(c: &PlanConnection) -> Option<Timestamp> {
    match c.status {
        ConnectionStatus::Canceled => c.canceled_at.or(c.end_date),
        ConnectionStatus::Expired => c.end_date,
        _ => None,
    }
}

/// Consecutive periods of equal length, for a chart: `count` of `width_micros` each,
/// the first starting at `start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    pub start: Timestamp,
    pub width_micros: i64,
    pub count: usize,
}

impl Periods {
    /// The last `days` days up to `now` in periods of `days_per_period` days, the last
    /// period ending at `now`.
    pub fn ending(now: Timestamp, days: u32, days_per_period: u32) -> Self {
        let width_micros = i64::from(days_per_period.max(1)) * 86_400_000_000;
        let count = days.div_ceil(days_per_period.max(1)) as usize;
        Periods {
            start: Timestamp::from_micros(now.as_micros() - width_micros * count as i64),
            width_micros,
            count,
        }
    }

    /// Which period `t` falls in, if any.
    pub fn index(&self, t: Timestamp) -> Option<usize> {
        let offset = t.as_micros().checked_sub(self.start.as_micros())?;
        if offset < 0 {
            return None;
        }
        let i = usize::try_from(offset / self.width_micros).ok()?;
        (i < self.count).then_some(i)
    }

    /// When period `i` starts.
    pub fn start_of(&self, i: usize) -> Timestamp {
        Timestamp::from_micros(self.start.as_micros() + self.width_micros * i as i64)
    }

    /// How many of `times` fall in each period.
    pub fn count_in(&self, times: impl IntoIterator<Item = Timestamp>) -> Vec<u64> {
        let mut counts = vec![0; self.count];
        for t in times {
            if let Some(i) = self.index(t) {
                counts[i] += 1;
            }
        }
        counts
    }
}

/// The figures of one plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFigures {
    pub plan_id: String,
    pub plan_name: String,
    pub figures: Figures,
}

/// Sums connections (with their plan's name) over the period `[from, to)`.
pub fn summarize<'a>(
    connections: impl IntoIterator<Item = (&'a PlanConnection, &'a str)>,
    from: Timestamp,
    to: Timestamp,
) -> (Figures, Vec<PlanFigures>) {
    let mut total = Figures::default();
    let mut plans: BTreeMap<String, PlanFigures> = BTreeMap::new();
    for (c, plan_name) in connections {
        total.add(c, from, to);
        plans
            .entry(c.plan_id.to_string())
            .or_insert_with(|| PlanFigures {
                plan_id: c.plan_id.to_string(),
                plan_name: plan_name.to_owned(),
                figures: Figures::default(),
            })
            .figures
            .add(c, from, to);
    }
    (total, plans.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Plan, PlanDraft, PriceDraft};
    use crate::{ConnectionCommand, Interval, MemberId, PlanType};
    use proptest::prelude::*;

    fn t(s: &str) -> Timestamp {
        Timestamp::parse(s).unwrap()
    }

    fn connect(amount: i64, interval: Interval, trial: u32, at: Timestamp) -> PlanConnection {
        let plan = Plan::create(
            PlanDraft {
                name: "P".into(),
                description: None,
                plan_type: PlanType::Paid,
                permissions: vec![],
                prices: vec![PriceDraft {
                    amount,
                    currency: "USD".into(),
                    interval,
                    interval_count: None,
                    trial_days: Some(trial),
                    term_days: None,
                }],
            },
            at,
        )
        .unwrap();
        PlanConnection::connect(&MemberId::generate(), &plan, None, &[], at)
            .unwrap()
            .0
    }

    #[test]
    fn figures_count_states_arrivals_departures_and_revenue() {
        let jan = t("2026-01-10");
        let monthly = connect(1000, Interval::Month, 0, jan);
        let yearly = connect(12000, Interval::Year, 0, t("2025-06-01"));
        let trial = connect(500, Interval::Month, 14, jan);
        let (gone, _) = connect(700, Interval::Month, 0, t("2025-01-01"))
            .apply(
                ConnectionCommand::Cancel {
                    reason: None,
                    at_period_end: false,
                },
                &[],
                t("2026-01-20"),
            )
            .unwrap();
        let all = [&monthly, &yearly, &trial, &gone];
        let (total, plans) = summarize(
            all.iter().map(|c| (*c, "P")),
            t("2026-01-01"),
            t("2026-02-01"),
        );
        assert_eq!((total.active, total.trialing, total.past_due), (2, 1, 0));
        assert_eq!((total.new, total.churned), (2, 1));
        assert_eq!(
            total.mrr.get("USD"),
            Some(&2000),
            "trials and canceled connections bring no MRR"
        );
        assert_eq!(total.arr().get("USD"), Some(&24000));
        assert_eq!(plans.len(), 4);
    }

    #[test]
    fn periods_end_now_and_count_what_falls_in_each() {
        let now = t("2026-03-31");
        let weeks = Periods::ending(now, 90, 7);
        assert_eq!(weeks.count, 13);
        assert_eq!(weeks.start_of(13), now);
        let times = [
            now.plus_days(0),
            t("2026-03-30"),
            t("2026-03-23"),
            t("2020-01-01"),
        ];
        let counts = weeks.count_in(times);
        assert_eq!(
            counts.iter().sum::<u64>(),
            2,
            "now itself and the far past are outside"
        );
        assert_eq!(counts[12], 1);
        assert_eq!(counts[11], 1);
        assert_eq!(weeks.index(t("2026-03-30")), Some(12));
    }

    proptest! {
        #[test]
        fn mrr_is_the_sum_of_active_subscriptions_monthly_amounts(
            prices in proptest::collection::vec((1..100_000i64, 0..4usize, 0..2u32, any::<bool>()), 0..30)
        ) {
            let now = t("2026-03-01");
            let intervals = [Interval::Day, Interval::Week, Interval::Month, Interval::Year];
            let connections: Vec<PlanConnection> = prices
                .iter()
                .map(|(amount, i, trial, cancel)| {
                    let c = connect(*amount, intervals[*i], *trial * 7, now);
                    if *cancel {
                        c.apply(ConnectionCommand::Cancel { reason: None, at_period_end: false }, &[], now).unwrap().0
                    } else {
                        c
                    }
                })
                .collect();
            let expected: i64 = connections
                .iter()
                .filter(|c| c.status == ConnectionStatus::Active)
                .map(|c| monthly_amount(c.amount, c.interval.unwrap(), c.interval_count))
                .sum();
            let (total, plans) = summarize(connections.iter().map(|c| (c, "P")), now, now.plus_days(1));
            prop_assert_eq!(total.mrr.get("USD").copied().unwrap_or(0), expected);
            let per_plan: i64 = plans.iter().map(|p| p.figures.mrr.get("USD").copied().unwrap_or(0)).sum();
            prop_assert_eq!(per_plan, expected);
        }
    }
}
