//! The lifecycle scheduler: applies the transitions time brings to plan connections (trial
//! ends, renewals, payment retries, scheduled cancellations, moves and resumptions, expiries).
//!
//! A pass leases the connections that are due, charges those whose transition charges
//! (outside any transaction: a gateway may be slow), and applies each transition with its
//! payment and events in one transaction, which re-checks that the connection still has the
//! transition it was claimed for. Members on a test clock are left to `advance`, which runs
//! passes for one clock until nothing is due at its time.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use memberd_core::lifecycle::{Charge, DunningPolicy};
use memberd_core::{PaymentId, TestClock, Timestamp};
use memberd_store::{Applied, ClaimedConnection, DueBy, DueContext, Payment, Store};

use crate::billing::gateway_for;
use crate::clock::Clock;

/// How long a claimed connection stays with one worker: long enough to charge and record,
/// short enough that the work of a worker that died is picked up soon by another.
const LEASE: Duration = Duration::from_secs(120);
/// How often an advance looks again for transitions another worker holds.
const WAIT_FOR_OTHERS: Duration = Duration::from_millis(20);

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How often to look for due transitions.
    pub poll_interval: Duration,
    /// How many connections one pass claims.
    pub batch: u32,
    /// How failed charges are retried and given up on.
    pub dunning: DunningPolicy,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            poll_interval: Duration::from_secs(1),
            batch: 100,
            dunning: DunningPolicy::default(),
        }
    }
}

pub struct Scheduler {
    store: Store,
    clock: Arc<dyn Clock>,
    config: SchedulerConfig,
}

impl Scheduler {
    pub fn new(store: Store, config: SchedulerConfig, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(Scheduler {
            store,
            clock,
            config,
        })
    }

    /// One pass over the connections due by the system clock; returns how many it claimed.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        self.pass(&DueBy::System(self.clock.now())).await
    }

    /// Applies every transition due on a test clock up to its frozen time, including those
    /// another worker holds at the moment: when it returns, nothing is due on the clock.
    pub async fn advance(&self, clock: &TestClock) -> anyhow::Result<()> {
        let due_by = DueBy::TestClock(clock.id.clone(), clock.frozen_time);
        loop {
            if self.pass(&due_by).await? > 0 {
                continue;
            }
            if !self
                .store
                .test_clock_has_due(&clock.id, clock.frozen_time)
                .await?
            {
                return Ok(());
            }
            tokio::time::sleep(WAIT_FOR_OTHERS).await;
        }
    }

    /// Runs until `shutdown` resolves; a pass in flight finishes first.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        super::run_passes(
            "lifecycle scheduler",
            shutdown,
            self.config.poll_interval,
            None,
            || async { Ok(self.tick().await? > 0) },
        )
        .await;
    }

    async fn pass(&self, due_by: &DueBy) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let lease_until = Timestamp::from_micros(now.as_micros() + LEASE.as_micros() as i64);
        let claimed = self
            .store
            .claim_due_connections(due_by, now, lease_until, self.config.batch)
            .await?;
        for connection in &claimed {
            if let Err(err) = self.process(connection, due_by).await {
                // Released, so that it is tried again on a later pass.
                let _ = self.store.release_connection(&connection.id).await;
                return Err(err);
            }
        }
        Ok(claimed.len())
    }

    #[tracing::instrument(skip_all, fields(connection = %claimed.id))]
    async fn process(&self, claimed: &ClaimedConnection, due_by: &DueBy) -> anyhow::Result<()> {
        let Some(context) = self.store.due_context(claimed).await? else {
            return Ok(());
        };
        let limit = match due_by {
            DueBy::System(now) => *now,
            DueBy::TestClock(_, frozen) => *frozen,
        };
        let Some((due_at, due)) = context.connection.next_due().filter(|(at, _)| *at <= limit)
        else {
            self.store
                .reschedule_connection(&context.connection)
                .await?;
            return Ok(());
        };
        // A test clock's members live through each moment the clock passes; others now.
        let at = if claimed.on_test_clock {
            due_at
        } else {
            self.clock.now()
        };
        let prepared = context
            .connection
            .prepare_due(due, context.scheduled_plan.as_ref());
        let payment = prepared
            .charge
            .as_ref()
            .map(|(amount, currency)| charge(claimed, &context, *amount, currency, at));
        let applied = self
            .store
            .apply_due(
                claimed,
                (due_at, due),
                payment.as_ref(),
                at,
                &self.config.dunning,
            )
            .await;
        if matches!(applied, Ok(Applied::Done)) {
            crate::telemetry::transition(due);
        } else {
            if let (Some(payment), Some(method)) = (&payment, &context.payment_method) {
                refund(claimed, payment, &method.gateway_ref);
            }
            self.store.release_connection(&claimed.id).await?;
        }
        applied?;
        Ok(())
    }
}

/// Charges the member's newest card through the environment's gateway. The outcome is a
/// payment record either way: a member without a card, or an environment without a gateway,
/// fails the charge like a declined card would.
fn charge(
    claimed: &ClaimedConnection,
    context: &DueContext,
    amount: i64,
    currency: &str,
    at: Timestamp,
) -> Payment {
    let method = context.payment_method.as_ref();
    let outcome = match (gateway_for(claimed.scope.env), method) {
        (None, _) => Charge::Failed {
            reason: "no_payment_gateway".into(),
        },
        (Some(_), None) => Charge::Failed {
            reason: "no_payment_method".into(),
        },
        (Some(gateway), Some(method)) => gateway.charge(&method.gateway_ref, amount, currency),
    };
    let (succeeded, failure_reason) = match outcome {
        Charge::Succeeded => (true, None),
        Charge::Failed { reason } => (false, Some(reason)),
    };
    crate::telemetry::charge("renewal", succeeded);
    Payment {
        id: PaymentId::generate(),
        member_id: claimed.member_id.clone(),
        connection_id: claimed.id.clone(),
        payment_method_id: method.map(|m| m.id.clone()),
        amount,
        currency: currency.to_owned(),
        succeeded,
        failure_reason,
        created_at: at,
    }
}

/// Gives back a charge whose transition could not be recorded.
fn refund(claimed: &ClaimedConnection, payment: &Payment, gateway_ref: &str) {
    if !payment.succeeded {
        return;
    }
    if let Some(gateway) = gateway_for(claimed.scope.env) {
        if let Err(refusal) = gateway.refund(gateway_ref, payment.amount, &payment.currency) {
            tracing::error!(
                code = refusal.code,
                "could not refund a charge whose transition was not recorded"
            );
        }
    }
}
