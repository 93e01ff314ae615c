//! PostgreSQL's scale-out: one `memberd serve` node and three more over one database, each
//! figure measured with the one node and with the three, in the same run. The three share the
//! database connections the one has to itself ([`ONE_NODE_CONNECTIONS`] between them), as an
//! operator sizing a cluster for its database would: PostgreSQL on two cores serves fewer
//! transactions with more backends. wrk spreads its threads over the nodes itself (see
//! `wrk::run_spread`), with three threads on both sides so that the load generator costs the
//! same against one node as against three.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use memberd_store::Store;
use sqlx::Connection;

use crate::procs::{self, Server};
use crate::scenarios::{self, blocking, create_app, progress, Api, Webhooks};
use crate::wrk::{self, Load, Target};
use crate::Settings;

const SECTION: &str = "PostgreSQL, scale-out";
const NODES: usize = 3;
/// The one node's connections to PostgreSQL: memberd's default.
const ONE_NODE_CONNECTIONS: u32 = 16;
const WRK_THREADS: u32 = 3;
/// Rounds each side gets, alternating one node, three nodes, one, three: a drift over the run
/// (the members table growing, the machine warming up) then falls on both sides alike.
const ROUNDS_PER_SIDE: u32 = 3;
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// Connections to the benchmark's database that wait on a lock; then those of them waiting on
/// `object` (a lock on the notification queue that PostgreSQL takes in the commit of every
/// transaction that NOTIFYs, so waits on it mean commits queue behind each other), apart from
/// the nodes' notifiers, whose notifications two nodes may send at once; then those notifiers.
const LOCK_WAITS: &str = "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'), \
     count(*) FILTER (WHERE wait_event_type = 'Lock' AND wait_event = 'object' \
         AND application_name <> 'memberd notifier'), \
     count(*) FILTER (WHERE wait_event_type = 'Lock' AND wait_event = 'object' \
         AND application_name = 'memberd notifier') \
     FROM pg_stat_activity WHERE datname = current_database()";

/// A figure with the first node alone and with all three.
pub struct Sides<T> {
    pub one: T,
    pub three: T,
}

/// What the samples of [`LOCK_WAITS`] taken during the creates saw.
pub struct LockWaits {
    pub samples: usize,
    pub lock_max: i64,
    pub lock_mean: f64,
    pub object_max: i64,
    pub object_mean: f64,
    /// Notifiers waiting on `object`: no write waits for them.
    pub notifiers_max: i64,
}

pub struct ScaleOutReport {
    /// Each node's most connections to PostgreSQL.
    pub database_connections: Sides<u32>,
    pub threads: u32,
    /// In total over the threads: the run's connections rounded to a multiple of the threads,
    /// as wrk gives each thread the same number.
    pub connections: u32,
    pub rounds_per_side: u32,
    pub round_seconds: u32,
    /// Requests per second, the mean of the rounds of each side.
    pub creates: Sides<f64>,
    pub access: Sides<f64>,
    pub webhooks: Sides<Webhooks>,
    pub lock_waits: Sides<LockWaits>,
}

/// Runs the section on `url`, an empty database of its own.
pub async fn run(settings: &Settings, url: &str) -> ScaleOutReport {
    let store = Store::connect(url).await.expect("open the database");
    store.migrate().await.expect("migrate");
    // Each figure gets an app of its own, so that one figure's members and webhook endpoint
    // do not weigh on another's.
    let access_app = create_app(&store, "Scale-out access", None).await;
    let creates_app = create_app(&store, "Scale-out creates", None).await;
    let mut hooks = Vec::new();
    for round in 1..=2 * ROUNDS_PER_SIDE {
        hooks.push(create_app(&store, &format!("Scale-out webhooks, round {round}"), None).await);
    }
    store.close().await;

    progress(SECTION, &format!("starting 1 + {NODES} memberd nodes"));
    let one = vec![start_node(url, ONE_NODE_CONNECTIONS)];
    let three = start_three(url);
    let api = Api {
        base: one[0].base.clone(),
        client: reqwest::Client::new(),
    };
    let vip_id = scenarios::premium_member(&api, &access_app.sandbox).await;
    let access_path = format!("/v1/members/{vip_id}/access?permission=view:premium");

    let per_thread = (f64::from(settings.connections) / f64::from(WRK_THREADS))
        .round()
        .max(1.0) as u32;
    let load = Load {
        seconds: settings.seconds,
        connections: per_thread * WRK_THREADS,
        threads: WRK_THREADS,
        think_ms: None,
    };
    // Rounds of a share of the figure's length, so that each side still gets the figure's
    // duration in all (wrk counts whole seconds, hence at least one).
    let round = Load {
        seconds: settings.seconds.div_ceil(ROUNDS_PER_SIDE).max(1),
        ..load
    };
    let sides = Sides {
        one: bases(&one),
        three: bases(&three),
    };

    let (access, _) = alternate(settings, "access check", &sides, &round, None, |_| {
        Target::get(access_path.clone(), &access_app.sandbox)
    })
    .await;
    let (creates, waits) = alternate(
        settings,
        "member creates",
        &sides,
        &round,
        Some(url),
        |round| Target::create_member(&creates_app.sandbox, &format!("r{round}-")),
    )
    .await;

    // Webhooks: each round runs with its side's nodes alone, the others stopped (their
    // dispatchers would otherwise claim a share of its deliveries), on a settled database. For
    // the creates and access checks above, the idle side stays up (its polling and cache
    // invalidation cost little) so that the rounds could alternate without restarting nodes.
    drop((one, three));
    let mut rounds = Sides {
        one: Vec::new(),
        three: Vec::new(),
    };
    for (i, app) in hooks.iter().enumerate() {
        let three = i % 2 == 1;
        let name = if three { "3 nodes" } else { "1 node" };
        progress(
            SECTION,
            &format!("webhooks, end to end, {name}, round {}", i / 2 + 1),
        );
        settle(url).await;
        let nodes = if three {
            start_three(url)
        } else {
            vec![start_node(url, ONE_NODE_CONNECTIONS)]
        };
        let node_bases = bases(&nodes);
        let api = Api {
            base: node_bases[0].clone(),
            client: api.client.clone(),
        };
        let figures = scenarios::webhooks(&api, app, &format!("w{i}-"), |target| {
            wrk::run_spread(&node_bases, target, &round, &settings.dir)
        })
        .await;
        if three {
            rounds.three.push(figures);
        } else {
            rounds.one.push(figures);
        }
    }

    ScaleOutReport {
        database_connections: Sides {
            one: ONE_NODE_CONNECTIONS,
            three: connections_of_each_of_three(),
        },
        threads: WRK_THREADS,
        connections: load.connections,
        rounds_per_side: ROUNDS_PER_SIDE,
        round_seconds: round.seconds,
        creates,
        access,
        webhooks: Sides {
            one: Webhooks::mean_of(&rounds.one),
            three: Webhooks::mean_of(&rounds.three),
        },
        lock_waits: waits,
    }
}

fn start_node(url: &str, connections: u32) -> Server {
    let connections = connections.to_string();
    procs::start_memberd_with(
        url,
        &[
            "--rate-limit-per-second",
            "0",
            "--database-connections",
            &connections,
        ],
    )
}

/// The three nodes, sharing the one node's connections.
fn start_three(url: &str) -> Vec<Server> {
    (0..NODES)
        .map(|_| start_node(url, connections_of_each_of_three()))
        .collect()
}

fn connections_of_each_of_three() -> u32 {
    ONE_NODE_CONNECTIONS.div_ceil(NODES as u32)
}

/// Leaves the database as settled as it can be before a figure that is measured once per side:
/// the writes of what ran before flushed and vacuumed now, not in the middle of that figure
/// (where they fell on whichever side ran second).
async fn settle(url: &str) {
    let mut conn = sqlx::PgConnection::connect(url)
        .await
        .expect("a connection to settle the database");
    for statement in ["VACUUM ANALYZE", "CHECKPOINT"] {
        sqlx::query(statement)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    let _ = conn.close().await;
}

fn bases(nodes: &[Server]) -> Vec<String> {
    nodes.iter().map(|n| n.base.clone()).collect()
}

/// Measures `target_of(round)` in rounds alternating one node and three, and returns each
/// side's mean rate; with `sample_url`, also what [`LOCK_WAITS`] saw on that database
/// during each side's rounds.
async fn alternate(
    settings: &Settings,
    name: &str,
    sides: &Sides<Vec<String>>,
    round: &Load,
    sample_url: Option<&str>,
    target_of: impl Fn(u32) -> Target,
) -> (Sides<f64>, Sides<LockWaits>) {
    let mut rates = Sides {
        one: 0.0,
        three: 0.0,
    };
    let mut samples = Sides {
        one: Vec::new(),
        three: Vec::new(),
    };
    for i in 0..2 * ROUNDS_PER_SIDE {
        let three = i % 2 == 1;
        let (nodes, rate, seen) = if three {
            (&sides.three, &mut rates.three, &mut samples.three)
        } else {
            (&sides.one, &mut rates.one, &mut samples.one)
        };
        progress(
            SECTION,
            &format!("{name}, {} node(s), round {}", nodes.len(), i / 2 + 1),
        );
        let sampler = match sample_url {
            Some(url) => Some(LockSampler::start(url).await),
            None => None,
        };
        let target = target_of(i);
        let figures = blocking(|| wrk::run_spread(nodes, &target, round, &settings.dir))
            .unwrap_or_else(|e| panic!("{SECTION}, {name} on {} node(s): {e}", nodes.len()));
        if let Some(sampler) = sampler {
            seen.extend(sampler.stop().await);
        }
        *rate += figures.per_second / f64::from(ROUNDS_PER_SIDE);
    }
    let waits = Sides {
        one: LockWaits::of(&samples.one),
        three: LockWaits::of(&samples.three),
    };
    (rates, waits)
}

impl LockWaits {
    fn of(samples: &[(i64, i64, i64)]) -> LockWaits {
        let n = samples.len().max(1) as f64;
        LockWaits {
            samples: samples.len(),
            lock_max: samples.iter().map(|s| s.0).max().unwrap_or(0),
            lock_mean: samples.iter().map(|s| s.0).sum::<i64>() as f64 / n,
            object_max: samples.iter().map(|s| s.1).max().unwrap_or(0),
            object_mean: samples.iter().map(|s| s.1).sum::<i64>() as f64 / n,
            notifiers_max: samples.iter().map(|s| s.2).max().unwrap_or(0),
        }
    }
}

/// Runs [`LOCK_WAITS`] every [`SAMPLE_EVERY`] on a connection of its own (not one of
/// memberd's pools) until stopped.
struct LockSampler {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<(i64, i64, i64)>>,
}

impl LockSampler {
    async fn start(url: &str) -> LockSampler {
        let mut conn = sqlx::PgConnection::connect(url)
            .await
            .expect("a connection to sample pg_stat_activity");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(SAMPLE_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut samples = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                every.tick().await;
                let sample: (i64, i64, i64) = sqlx::query_as(LOCK_WAITS)
                    .fetch_one(&mut conn)
                    .await
                    .expect("sample pg_stat_activity");
                samples.push(sample);
            }
            let _ = conn.close().await;
            samples
        });
        LockSampler { stop, task }
    }

    async fn stop(self) -> Vec<(i64, i64, i64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("the lock sampler")
    }
}
