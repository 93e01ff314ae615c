//! One backend's run: load the data, start memberd, and measure each scenario against a
//! baseline measured just before.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memberd_core::Environment;
use memberd_server::ops;
use memberd_store::Store;
use serde_json::{json, Value};

use crate::procs::{self, Memory, Server};
use crate::report::thousands;
use crate::wrk::{self, Figures, Load, Target};
use crate::Settings;

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
}

pub struct Webhooks {
    pub events: usize,
    pub created_per_second: f64,
    pub delivered_per_second: f64,
}

pub async fn run_all(settings: &Settings) -> Vec<BackendReport> {
    let big_file = settings.dir.join("big.jsonl");
    let small_file = settings.dir.join("small.jsonl");
    write_members(&big_file, settings.big, |i| {
        format!(r#"{{"email":"m{i}@bench.example","externalId":"cust-{i}"}}"#)
    });
    write_members(&small_file, settings.small, |i| {
        format!(r#"{{"email":"s{i}@bench.example"}}"#)
    });
    let files = (big_file.as_path(), small_file.as_path());

    let mut reports = Vec::new();
    let sqlite = format!("sqlite:{}", settings.dir.join("bench.db").display());
    reports.push(run_backend(settings, "SQLite", &sqlite, files).await);
    if let Some(url) = &settings.postgres_url {
        match Store::connect(url).await {
            Ok(admin) => {
                let name = format!("memberd_bench_{}", std::process::id());
                admin
                    .execute_admin(&format!("CREATE DATABASE {name}"))
                    .await
                    .expect("create the benchmark's database");
                let (base, _) = url.rsplit_once('/').expect("a database URL");
                let db = format!("{base}/{name}");
                reports.push(run_backend(settings, "PostgreSQL", &db, files).await);
                let _ = admin
                    .execute_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            }
            Err(err) => eprintln!("PostgreSQL skipped: {url} does not answer ({err})"),
        }
    }
    reports
}

fn write_members(path: &Path, n: usize, line: impl Fn(usize) -> String) {
    let mut out = BufWriter::new(std::fs::File::create(path).expect("a data file"));
    for i in 0..n {
        writeln!(out, "{}", line(i)).expect("write data");
    }
    out.flush().expect("write data");
}

struct Keys {
    app: String,
    sandbox: String,
    live: String,
}

async fn create_app(store: &Store, name: &str, shop: Option<&str>) -> Keys {
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

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

fn progress(backend: &str, what: &str) {
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

    let server = procs::start_memberd(url);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = server.memory();
    let api = Api {
        base: server.base.clone(),
        client: reqwest::Client::new(),
    };

    let plan = api
        .post(
            &main.sandbox,
            "/v1/plans",
            json!({"name": "Premium", "permissions": ["view:premium"]}),
        )
        .await;
    let vip = api
        .post(
            &main.sandbox,
            "/v1/members",
            json!({"email": "vip@bench.example", "externalId": "vip-1"}),
        )
        .await;
    let vip_id = vip["id"].as_str().expect("member id").to_owned();
    api.post(
        &main.sandbox,
        &format!("/v1/members/{vip_id}/plan-connections"),
        json!({"planId": plan["id"]}),
    )
    .await;
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

    let mut at_half_peak = Vec::new();
    for (name, path, peak) in [
        ("access check", &access_path, measured[0].figures.per_second),
        (
            "membership-status",
            &status_path,
            measured[1].figures.per_second,
        ),
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

    progress(backend, "webhooks, end to end");
    let webhooks = webhooks(&api, &server, &hooks, &load, settings).await;
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
    }
}

/// Members created through the API by wrk for the run's duration, each making a
/// `member.created` event that memberd's dispatcher delivers, signed, to a receiver here.
/// The rate is from the first create to the last delivery.
async fn webhooks(
    api: &Api,
    server: &Server,
    hooks: &Keys,
    load: &Load,
    settings: &Settings,
) -> Webhooks {
    let delivered = Arc::new(AtomicUsize::new(0));
    let receiver = receiver(delivered.clone()).await;
    api.post(
        &hooks.sandbox,
        "/v1/webhook-endpoints",
        json!({"url": format!("{receiver}/hook"), "eventTypes": ["member.created"]}),
    )
    .await;
    let started = Instant::now();
    let target = Target::create_member(&hooks.sandbox, "w");
    blocking(|| wrk::run(&server.base, &target, load, &settings.dir)).expect("webhook load");
    let created_in = started.elapsed();
    let events = api.total(&hooks.sandbox).await;
    let deadline = Duration::from_secs(600);
    while delivered.load(Ordering::Relaxed) < events {
        assert!(started.elapsed() < deadline, "deliveries stalled");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Webhooks {
        events,
        created_per_second: events as f64 / created_in.as_secs_f64(),
        delivered_per_second: events as f64 / started.elapsed().as_secs_f64(),
    }
}

async fn receiver(count: Arc<AtomicUsize>) -> String {
    let app = axum::Router::new().fallback(move || {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::Relaxed);
            axum::http::StatusCode::NO_CONTENT
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn post(&self, key: &str, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await
            .expect("memberd answers");
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON body");
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    async fn get(&self, key: &str, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(key)
            .send()
            .await
            .expect("memberd answers");
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON body");
        assert!(status.is_success(), "GET {path}: {status} {body}");
        body
    }

    async fn total(&self, key: &str) -> usize {
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
