//! One backend's run: load the data, start memberd, and measure each scenario against a
//! baseline measured just before.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memberd_core::Environment;
use memberd_server::ops;
use memberd_store::Store;
use serde_json::{json, Value};

use crate::procs::{self, Memory};
use crate::report::thousands;
use crate::scale_out::{self, ScaleOutReport};
use crate::wrk::{self, Figures, Load, Target};
use crate::{Section, Settings};

const SHOP: &str = "bench-store.myshopify.com";

/// What one named scenario measured.
pub struct Measured {
    pub name: String,
    pub figures: Figures,
}

pub struct BackendReport {
    pub backend: &'static str,
    pub baseline: Figures,
    pub measured: Vec<Measured>,
    /// The access check and membership-status at about half of their peak rate.
    pub at_half_peak: Vec<Measured>,
    pub import_took: Duration,
    pub idle: Memory,
    pub peak: Memory,
    pub webhooks: Webhooks,
    /// The access check at half its peak beside a storm of failed logins, and their rate.
    pub beside_failed_logins: (Figures, Figures),
}

pub struct Webhooks {
    pub events: usize,
    pub created_per_second: f64,
    pub delivered_per_second: f64,
    /// Deliveries received beyond the first of each webhook-id.
    pub duplicates: usize,
}

impl Webhooks {
    /// Rounds of one figure together: their events and duplicates added up, their rates the
    /// mean of the rounds'.
    pub fn mean_of(rounds: &[Webhooks]) -> Webhooks {
        let n = rounds.len().max(1) as f64;
        Webhooks {
            events: rounds.iter().map(|r| r.events).sum(),
            created_per_second: rounds.iter().map(|r| r.created_per_second).sum::<f64>() / n,
            delivered_per_second: rounds.iter().map(|r| r.delivered_per_second).sum::<f64>() / n,
            duplicates: rounds.iter().map(|r| r.duplicates).sum(),
        }
    }
}

/// Everything a run measured: a report per backend, then PostgreSQL's scale-out.
pub struct Reports {
    pub backends: Vec<BackendReport>,
    pub scale_out: Option<ScaleOutReport>,
}

/// The name of the access check's row measured on a server with its rate limit on.
const ACCESS_RATE_LIMITED: &str = "access check, rate limit on";
/// The name of the access check's row measured on a server recording metrics and logging
/// each request.
const ACCESS_OBSERVED: &str = "access check, metrics and request logs on";

pub async fn run_all(settings: &Settings) -> Reports {
    let big_file = settings.dir.join("big.jsonl");
    let small_file = settings.dir.join("small.jsonl");
    if settings.runs(Section::Sqlite) || settings.runs(Section::Postgres) {
        write_members(&big_file, settings.big, |i| {
            format!(r#"{{"email":"m{i}@bench.example","externalId":"cust-{i}"}}"#)
        });
        write_members(&small_file, settings.small, |i| {
            format!(r#"{{"email":"s{i}@bench.example"}}"#)
        });
    }
    let files = (big_file.as_path(), small_file.as_path());

    let mut backends = Vec::new();
    let mut scale_out = None;
    let sqlite = format!("sqlite:{}", settings.dir.join("bench.db").display());
    if settings.runs(Section::Sqlite) {
        backends.push(run_backend(settings, "SQLite", &sqlite, files).await);
    }
    let on_postgres = settings.runs(Section::Postgres) || settings.runs(Section::ScaleOut);
    if let Some(url) = settings.postgres_url.as_ref().filter(|_| on_postgres) {
        match Store::connect(url).await {
            Ok(admin) => {
                if settings.runs(Section::Postgres) {
                    let name = format!("memberd_bench_{}", std::process::id());
                    let db = create_database(&admin, url, &name).await;
                    backends.push(run_backend(settings, "PostgreSQL", &db, files).await);
                    drop_database(&admin, &name).await;
                }
                if settings.runs(Section::ScaleOut) {
                    let name = format!("memberd_bench_scale_out_{}", std::process::id());
                    let db = create_database(&admin, url, &name).await;
                    scale_out = Some(scale_out::run(settings, &db).await);
                    drop_database(&admin, &name).await;
                }
            }
            Err(err) => eprintln!("PostgreSQL skipped: {url} does not answer ({err})"),
        }
    }
    Reports {
        backends,
        scale_out,
    }
}

/// Makes an empty database `name` on the server of `url` and returns its URL.
async fn create_database(admin: &Store, url: &str, name: &str) -> String {
    admin
        .execute_admin(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create the benchmark's database");
    let (base, _) = url.rsplit_once('/').expect("a database URL");
    format!("{base}/{name}")
}

async fn drop_database(admin: &Store, name: &str) {
    let _ = admin
        .execute_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await;
}

fn write_members(path: &Path, n: usize, line: impl Fn(usize) -> String) {
    let mut out = BufWriter::new(std::fs::File::create(path).expect("a data file"));
    for i in 0..n {
        writeln!(out, "{}", line(i)).expect("write data");
    }
    out.flush().expect("write data");
}

pub struct Keys {
    pub app: String,
    pub sandbox: String,
    pub live: String,
}

pub async fn create_app(store: &Store, name: &str, shop: Option<&str>) -> Keys {
    let (app, keys) = ops::create_app(store, name, shop.map(str::to_owned))
        .await
        .expect("create an app");
    let secret = |env| {
        keys.iter()
            .find(|k| k.key.env == env)
            .expect("a key per environment")
            .secret
            .clone()
    };
    Keys {
        app: app.id.to_string(),
        sandbox: secret(Environment::Sandbox),
        live: secret(Environment::Live),
    }
}

pub fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

pub fn progress(backend: &str, what: &str) {
    eprintln!("[{backend}] {what}");
}

async fn run_backend(
    settings: &Settings,
    backend: &'static str,
    url: &str,
    (big_file, small_file): (&Path, &Path),
) -> BackendReport {
    let store = Store::connect(url).await.expect("open the database");
    store.migrate().await.expect("migrate");
    // The store with the big list (sandbox) and the small one (live); creates and webhooks
    // go to apps of their own so that they do not change the lists measured.
    let main = create_app(&store, "Bench", Some(SHOP)).await;
    let creates = create_app(&store, "Bench creates", None).await;
    let hooks = create_app(&store, "Bench webhooks", None).await;
    store.close().await;

    progress(
        backend,
        &format!("memberd import of {} members", settings.big),
    );
    let import_took = blocking(|| procs::import(url, &main.app, "sandbox", big_file)).took;
    blocking(|| procs::import(url, &main.app, "live", small_file));

    // Login limits no load reaches, so that every failed login of the accounts' figures is a
    // password check rather than a cheap refusal.
    let server = procs::start_memberd_with(url, crate::accounts::SERVER_FLAGS);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = server.memory();
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };

    let vip_id = premium_member(&api, &main.sandbox).await;
    let deep_big = api.deep_cursor(&main.sandbox, settings.big).await;
    let deep_small = api.deep_cursor(&main.live, settings.small).await;

    let baseline_server = procs::start_baseline();
    let load = Load {
        seconds: settings.seconds,
        connections: settings.connections,
        threads: 1,
        think_ms: None,
    };
    progress(backend, "baseline");
    let baseline = blocking(|| {
        wrk::run(
            &baseline_server.base,
            &Target::get("/", "none"),
            &load,
            &settings.dir,
        )
    })
    .expect("baseline");
    drop(baseline_server);

    let status_path = format!("/api/external/v2/membership-status?shop={SHOP}&customerId=vip-1");
    let access_path = format!("/v1/members/{vip_id}/access?permission=view:premium");
    let big = thousands(settings.big as u64);
    let small = thousands(settings.small as u64);
    let scenarios: Vec<(String, Target)> = vec![
        (
            "access check".into(),
            Target::get(access_path.clone(), &main.sandbox),
        ),
        (
            "membership-status (Appstle)".into(),
            Target::get(status_path.clone(), &main.sandbox),
        ),
        (
            // Not the target's figure: spread over a million customers, nearly every read
            // misses the read cache (it keeps at most 10,000 answers) and goes to the database.
            format!("status of a random one of {big} customers"),
            Target::get_random(
                format!("/api/external/v2/membership-status?shop={SHOP}&customerId=cust-"),
                settings.big,
                &main.sandbox,
            ),
        ),
        (
            "member retrieve".into(),
            Target::get(format!("/v1/members/{vip_id}"), &main.sandbox),
        ),
        (
            format!("list, first page of {small}"),
            Target::get("/v1/members", &main.live),
        ),
        (
            format!("list, deep page of {small}"),
            Target::get(format!("/v1/members?after={deep_small}"), &main.live),
        ),
        (
            format!("list, first page of {big}"),
            Target::get("/v1/members", &main.sandbox),
        ),
        (
            format!("list, deep page of {big}"),
            Target::get(format!("/v1/members?after={deep_big}"), &main.sandbox),
        ),
        (
            "member create (no password)".into(),
            Target::create_member(&creates.sandbox, "c"),
        ),
    ];
    let mut measured = Vec::new();
    for (name, target) in scenarios {
        progress(backend, &name);
        let figures = blocking(|| wrk::run(&server.base, &target, &load, &settings.dir))
            .unwrap_or_else(|e| panic!("{backend}, {name}: {e}"));
        measured.push(Measured { name, figures });
    }

    // Its own server, started only for this row: the limiter's cost (one cluster-wide
    // limit, kept in the database on PostgreSQL), against the same baseline. The limit is
    // far above the rate reached, so no request is refused and only its bookkeeping counts.
    progress(backend, ACCESS_RATE_LIMITED);
    let rate_limited = procs::start_memberd_with(
        url,
        &[
            "--rate-limit-per-second",
            "1000000",
            "--rate-limit-burst",
            "1000000",
        ],
    );
    let access = Target::get(access_path.clone(), &main.sandbox);
    let figures = blocking(|| wrk::run(&rate_limited.base, &access, &load, &settings.dir))
        .unwrap_or_else(|e| panic!("{backend}, {ACCESS_RATE_LIMITED}: {e}"));
    drop(rate_limited);

    // Its own server too: what /metrics and a log line per request cost.
    progress(backend, ACCESS_OBSERVED);
    let observed = procs::start_memberd_observed(url, &settings.dir.join("observed.log"));
    let access = Target::get(access_path.clone(), &main.sandbox);
    let observed_figures = blocking(|| wrk::run(&observed.base, &access, &load, &settings.dir))
        .unwrap_or_else(|e| panic!("{backend}, {ACCESS_OBSERVED}: {e}"));
    drop(observed);
    let peak_of = |name: &str| {
        measured
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.figures.per_second)
            .expect("a measured scenario")
    };
    let (access_peak, status_peak) = (
        peak_of("access check"),
        peak_of("membership-status (Appstle)"),
    );
    // Beside the access check without a limit, so that the two read together.
    measured.insert(
        1,
        Measured {
            name: ACCESS_RATE_LIMITED.into(),
            figures,
        },
    );
    measured.insert(
        2,
        Measured {
            name: ACCESS_OBSERVED.into(),
            figures: observed_figures,
        },
    );

    let mut at_half_peak = Vec::new();
    for (name, path, peak) in [
        ("access check", &access_path, access_peak),
        ("membership-status", &status_path, status_peak),
    ] {
        progress(backend, &format!("{name} at half of its peak"));
        // Each connection pauses THINK ms on average between requests, so the rate is about
        // connections × 1000 / (THINK + latency): pick the connections for half of the peak.
        let think_ms = 4;
        let connections = ((peak / 2.0) * (f64::from(think_ms) + 0.3) / 1000.0)
            .round()
            .max(1.0) as u32;
        let paced = Load {
            connections,
            think_ms: Some(think_ms),
            threads: 1,
            ..load
        };
        let figures = blocking(|| {
            wrk::run(
                &server.base,
                &Target::get(path.clone(), &main.sandbox),
                &paced,
                &settings.dir,
            )
        })
        .unwrap_or_else(|e| panic!("{backend}, {name} at half peak: {e}"));
        at_half_peak.push(Measured {
            name: name.into(),
            figures,
        });
    }

    // The members sign up in the creates' app, which no later figure reads.
    let accounts = crate::accounts::measure(
        backend,
        &server.base,
        &creates.sandbox,
        (&access_path, &main.sandbox, access_peak),
        &load,
        &settings.dir,
    )
    .await;
    measured.extend(accounts.measured);

    progress(backend, "webhooks, end to end");
    let webhooks = webhooks(&api, &hooks, "w", |target| {
        wrk::run(&server.base, target, &load, &settings.dir)
    })
    .await;
    let peak = server.memory();
    drop(server);
    BackendReport {
        backend,
        baseline,
        measured,
        at_half_peak,
        import_took,
        idle,
        peak,
        webhooks,
        beside_failed_logins: (accounts.access_under_login_storm, accounts.failed_logins),
    }
}

/// Makes, through the API, a plan granting `view:premium` and a member (externalId `vip-1`)
/// who holds it; returns the member's id.
pub async fn premium_member(api: &Api, key: &str) -> String {
    let plan = api
        .post(
            key,
            "/v1/plans",
            json!({"name": "Premium", "permissions": ["view:premium"]}),
        )
        .await;
    let vip = api
        .post(
            key,
            "/v1/members",
            json!({"email": "vip@bench.example", "externalId": "vip-1"}),
        )
        .await;
    let vip_id = vip["id"].as_str().expect("member id").to_owned();
    api.post(
        key,
        &format!("/v1/members/{vip_id}/plan-connections"),
        json!({"planId": plan["id"]}),
    )
    .await;
    vip_id
}

/// Members created through the API of `hooks`' app by `drive` (wrk, for the run's duration),
/// each making a `member.created` event that memberd's dispatchers deliver, signed, to a
/// receiver here. The rate is from the first create to the last delivery.
pub async fn webhooks(
    api: &Api,
    hooks: &Keys,
    email_prefix: &str,
    drive: impl FnOnce(&Target) -> Result<Figures, String>,
) -> Webhooks {
    let received = Arc::new(Mutex::new(HashMap::new()));
    let receiver = receiver(received.clone()).await;
    let endpoint = api
        .post(
            &hooks.sandbox,
            "/v1/webhook-endpoints",
            json!({"url": format!("{receiver}/hook"), "eventTypes": ["member.created"]}),
        )
        .await;
    let endpoint = endpoint["id"].as_str().expect("endpoint id").to_owned();
    let started = Instant::now();
    let target = Target::create_member(&hooks.sandbox, email_prefix);
    blocking(|| drive(&target)).expect("webhook load");
    let created_in = started.elapsed();
    let events = api.total(&hooks.sandbox).await;
    let distinct = || received.lock().expect("the receiver's counts").len();
    let deadline = Duration::from_secs(600);
    while distinct() < events {
        assert!(started.elapsed() < deadline, "deliveries stalled");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let delivered_in = started.elapsed();
    // A second delivery of an event usually follows the first closely (two dispatchers
    // that both sent it): a moment's wait lets such duplicates arrive before they are counted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let duplicates = received
        .lock()
        .expect("the receiver's counts")
        .values()
        .map(|n| n - 1)
        .sum();
    // Gone once measured: every pass of a dispatcher looks at each enabled endpoint, so one
    // left behind would weigh on the figures that follow.
    api.delete(&hooks.sandbox, &format!("/v1/webhook-endpoints/{endpoint}"))
        .await;
    Webhooks {
        events,
        created_per_second: events as f64 / created_in.as_secs_f64(),
        delivered_per_second: events as f64 / delivered_in.as_secs_f64(),
        duplicates,
    }
}

/// A webhook receiver that counts the deliveries of each webhook-id (at least once means a
/// count may exceed 1).
async fn receiver(received: Arc<Mutex<HashMap<String, usize>>>) -> String {
    let app = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let received = received.clone();
        async move {
            let id = headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            *received
                .lock()
                .expect("the receiver's counts")
                .entry(id)
                .or_insert(0) += 1;
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
}

impl Api {
    /// Sends a request with `key`, checks that it succeeded, and returns the body.
    async fn send(
        &self,
        method: reqwest::Method,
        key: &str,
        path: &str,
        body: Option<Value>,
    ) -> String {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("memberd answers");
        let status = response.status();
        let text = response.text().await.expect("a body");
        assert!(status.is_success(), "{method} {path}: {status} {text}");
        text
    }

    pub async fn post(&self, key: &str, path: &str, body: Value) -> Value {
        let text = self
            .send(reqwest::Method::POST, key, path, Some(body))
            .await;
        serde_json::from_str(&text).expect("a JSON body")
    }

    pub async fn get(&self, key: &str, path: &str) -> Value {
        let text = self.send(reqwest::Method::GET, key, path, None).await;
        serde_json::from_str(&text).expect("a JSON body")
    }

    pub async fn delete(&self, key: &str, path: &str) {
        self.send(reqwest::Method::DELETE, key, path, None).await;
    }

    pub async fn total(&self, key: &str) -> usize {
        let page = self.get(key, "/v1/members?limit=1").await;
        page["totalCount"].as_u64().expect("totalCount") as usize
    }

    /// A cursor 100 members before the end of a list of `n`, checked to give a full page.
    async fn deep_cursor(&self, key: &str, n: usize) -> i64 {
        let first = self.get(key, "/v1/members?limit=1").await;
        let start: i64 = first["nextCursor"]
            .as_str()
            .and_then(|c| c.parse().ok())
            .expect("a numeric cursor");
        let deep = start + n as i64 - 100;
        let page = self.get(key, &format!("/v1/members?after={deep}")).await;
        assert_eq!(
            page["data"].as_array().map(Vec::len),
            Some(50),
            "a deep page is full"
        );
        deep
    }
}
