//! One rate limit for every node: each key's bucket is kept where all nodes see it (the
//! PostgreSQL database, or Redis when one is given), and a node takes tokens from it.
//!
//! A take is a round trip, so a node takes up to a hundredth of the rate's worth of tokens at a
//! time (one, at the default 100 a second) and spends them on its own for up to a second; a
//! bucket found empty is refused here, without asking again, until its next token is due. Over
//! any time, the cluster lets through at most what one limiter would, plus what each node holds
//! unspent: at most a hundredth of the rate each.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use memberd_store::{Store, TokensTaken};
use rustc_hash::FxHashMap;

use super::redis::RedisBuckets;

/// How long a node spends tokens it took before it lets them go.
const LEASE_FOR: Duration = Duration::from_secs(1);
/// Keys remembered before those with nothing leased or refused are forgotten.
const MAX_KEYS: usize = 10_000;
/// How often a node forgets the database's buckets that have been full for a minute.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// Where the cluster's buckets are kept.
pub(super) enum Buckets {
    Postgres(Store),
    Redis(Box<RedisBuckets>),
}

impl Buckets {
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Buckets::Postgres(_) => "PostgreSQL",
            Buckets::Redis(_) => "Redis",
        }
    }

    async fn take(
        &self,
        bucket: &str,
        want: u32,
        interval: f64,
        tolerance: f64,
    ) -> Result<TokensTaken, String> {
        match self {
            Buckets::Postgres(store) => store
                .take_rate_tokens(bucket, want, interval, tolerance)
                .await
                .map_err(|e| e.to_string()),
            Buckets::Redis(redis) => redis.take(bucket, want, interval, tolerance).await,
        }
    }
}

/// What a check decided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Decision {
    Allowed { remaining: u32 },
    Refused { retry_in: Duration },
}

#[derive(Default)]
struct Lease {
    tokens: u32,
    until: Option<Instant>,
    /// What the bucket held when the tokens were taken, for `RateLimit-Remaining`.
    bucket_left: u32,
    refused_until: Option<Instant>,
}

pub(super) struct SharedLimiter {
    buckets: Buckets,
    /// Seconds per token, and the burst's worth of them (GCRA's interval and tolerance).
    interval: f64,
    tolerance: f64,
    take_at_once: u32,
    leases: Mutex<FxHashMap<String, Lease>>,
    last_prune: Mutex<Instant>,
    failing: AtomicBool,
}

impl SharedLimiter {
    pub(super) fn new(buckets: Buckets, per_second: u32, burst: u32) -> SharedLimiter {
        let interval = 1.0 / f64::from(per_second);
        SharedLimiter {
            buckets,
            interval,
            tolerance: interval * f64::from(burst),
            take_at_once: (per_second / 100).max(1),
            leases: Mutex::default(),
            last_prune: Mutex::new(Instant::now()),
            failing: AtomicBool::new(false),
        }
    }

    pub(super) fn buckets(&self) -> &Buckets {
        &self.buckets
    }

    /// Takes one request from `key`'s budget; `None` when the buckets cannot be reached (the
    /// caller then decides with this process's own limiter).
    pub(super) async fn check(&self, key: &str) -> Option<Decision> {
        if let Some(decided) = self.spend_lease(key, Instant::now()) {
            return Some(decided);
        }
        let bucket = format!("key:{key}");
        let taken = self
            .buckets
            .take(&bucket, self.take_at_once, self.interval, self.tolerance)
            .await;
        let taken = match taken {
            Ok(taken) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(
                        buckets = self.buckets.describe(),
                        "the cluster's rate limits answer again"
                    );
                }
                taken
            }
            Err(error) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(buckets = self.buckets.describe(), %error, "the cluster's rate limits cannot be reached; each node limits on its own until they can");
                }
                return None;
            }
        };
        self.prune_now_and_then();
        Some(self.record(key, taken, Instant::now()))
    }

    fn spend_lease(&self, key: &str, now: Instant) -> Option<Decision> {
        let mut leases = self.leases.lock().ok()?;
        let lease = leases.get_mut(key)?;
        if let Some(until) = lease.refused_until {
            if now < until {
                return Some(Decision::Refused {
                    retry_in: until - now,
                });
            }
            lease.refused_until = None;
        }
        if lease.tokens > 0 && lease.until.is_some_and(|until| now < until) {
            lease.tokens -= 1;
            return Some(Decision::Allowed {
                remaining: lease.bucket_left.saturating_add(lease.tokens),
            });
        }
        None
    }

    fn record(&self, key: &str, taken: TokensTaken, now: Instant) -> Decision {
        let left = ((self.tolerance - taken.debt_secs) / self.interval + 1e-6)
            .floor()
            .max(0.0) as u32;
        let Ok(mut leases) = self.leases.lock() else {
            return Decision::Allowed { remaining: left };
        };
        if leases.len() >= MAX_KEYS {
            leases.retain(|_, l| {
                l.until.is_some_and(|t| now < t) || l.refused_until.is_some_and(|t| now < t)
            });
        }
        let lease = leases.entry(key.to_owned()).or_default();
        if taken.granted == 0 {
            let wait = (taken.debt_secs - self.tolerance + self.interval).max(0.001);
            let retry_in = Duration::from_secs_f64(wait);
            lease.refused_until = Some(now + retry_in);
            return Decision::Refused { retry_in };
        }
        if lease.until.is_none_or(|t| now >= t) {
            lease.tokens = 0;
        }
        lease.tokens += taken.granted - 1;
        lease.until = Some(now + LEASE_FOR);
        lease.bucket_left = left;
        Decision::Allowed {
            remaining: left.saturating_add(lease.tokens),
        }
    }

    fn prune_now_and_then(&self) {
        let Buckets::Postgres(store) = &self.buckets else {
            // Redis forgets a bucket by itself once it is full (its key expires).
            return;
        };
        let due = match self.last_prune.lock() {
            Ok(mut last) if last.elapsed() >= PRUNE_EVERY => {
                *last = Instant::now();
                true
            }
            _ => false,
        };
        if due {
            let store = store.clone();
            tokio::spawn(async move {
                if let Err(error) = store.prune_rate_limits().await {
                    tracing::warn!(%error, "could not forget full rate-limit buckets");
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten a second in bursts of ten, over buckets never reached (a lease decides alone).
    fn limiter(per_second: u32) -> SharedLimiter {
        let nowhere = RedisBuckets::new("redis://127.0.0.1:1").unwrap();
        SharedLimiter::new(Buckets::Redis(Box::new(nowhere)), per_second, 10)
    }

    fn taken(granted: u32, debt_secs: f64) -> TokensTaken {
        TokensTaken { granted, debt_secs }
    }

    #[test]
    fn a_node_takes_a_hundredth_of_the_rate_at_a_time_and_at_least_one() {
        assert_eq!(limiter(10).take_at_once, 1);
        assert_eq!(limiter(100).take_at_once, 1);
        assert_eq!(limiter(5_000).take_at_once, 50);
    }

    #[test]
    fn tokens_taken_are_spent_here_until_they_run_out_or_their_lease_ends() {
        let limiter = limiter(10);
        let now = Instant::now();
        assert_eq!(limiter.spend_lease("k", now), None, "nothing taken yet");
        // Three taken, the bucket then six tokens short of its burst (debt 0.6 s of 1.0 s).
        assert_eq!(
            limiter.record("k", taken(3, 0.6), now),
            Decision::Allowed { remaining: 4 + 2 }
        );
        assert_eq!(
            limiter.spend_lease("k", now),
            Some(Decision::Allowed { remaining: 5 })
        );
        assert_eq!(
            limiter.spend_lease("k", now),
            Some(Decision::Allowed { remaining: 4 })
        );
        assert_eq!(limiter.spend_lease("k", now), None, "spent: take again");
        assert_eq!(limiter.spend_lease("other", now), None);

        limiter.record("k", taken(2, 0.8), now);
        assert_eq!(
            limiter.spend_lease("k", now + LEASE_FOR),
            None,
            "a lease is let go after a second"
        );
    }

    #[test]
    fn an_empty_bucket_is_refused_here_until_its_next_token_is_due() {
        let limiter = limiter(10);
        let now = Instant::now();
        // The bucket is 1.05 s in debt with a tolerance of 1 s: its next token is 0.15 s away.
        let Decision::Refused { retry_in } = limiter.record("k", taken(0, 1.05), now) else {
            panic!("an empty bucket refuses");
        };
        assert!((retry_in.as_secs_f64() - 0.15).abs() < 1e-6, "{retry_in:?}");
        assert!(matches!(
            limiter.spend_lease("k", now + Duration::from_millis(100)),
            Some(Decision::Refused { .. })
        ));
        assert_eq!(
            limiter.spend_lease("k", now + Duration::from_millis(151)),
            None,
            "then the bucket is asked again"
        );
    }
}
