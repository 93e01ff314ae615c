//! Webhook throughput, end to end: events created through the API of a real memberd (one
//! process, its dispatcher inside) and delivered, signed, to a local receiver over loopback.
//!
//!     cargo bench --bench webhooks                       # SQLite
//!     MEMBERD_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1/postgres cargo bench --bench webhooks
//!
//! Prints events created per second and deliveries per second. The machine is shared and
//! noisy: compare figures of one run, or of runs made back to back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::Router;
use memberd_core::Environment;
use memberd_server::{ops, Config};
use memberd_store::Store;
use serde_json::json;
use tokio::net::TcpListener;

const EVENTS: usize = 5_000;
const CLIENTS: usize = 32;

async fn receiver(count: Arc<AtomicUsize>) -> String {
    let app = Router::new().fallback(move || {
        let count = count.clone();
        async move {
            count.fetch_add(1, Ordering::Relaxed);
            StatusCode::NO_CONTENT
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// The store, its backend's name, and the admin connection and database to drop after the run.
async fn open_store() -> (Store, String, Option<(Store, String)>) {
    if let Ok(url) = std::env::var("MEMBERD_BENCH_POSTGRES_URL") {
        let admin = Store::connect(&url).await.unwrap();
        let name = format!("memberd_bench_{}", rand::random::<u32>());
        admin
            .execute_admin(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let (base, _) = url.rsplit_once('/').unwrap();
        let store = Store::connect(&format!("{base}/{name}")).await.unwrap();
        (store, "PostgreSQL".into(), Some((admin, name)))
    } else {
        let dir = std::env::temp_dir().join(format!("memberd-bench-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite:{}", dir.join("bench.db").display());
        (Store::connect(&url).await.unwrap(), "SQLite".into(), None)
    }
}

#[tokio::main]
async fn main() {
    let (store, backend, cleanup) = open_store().await;
    store.migrate().await.unwrap();
    let (_, keys) = ops::create_app(&store, "Bench", None).await.unwrap();
    let key = keys
        .iter()
        .find(|k| k.key.env == Environment::Sandbox)
        .unwrap()
        .secret
        .clone();

    let delivered = Arc::new(AtomicUsize::new(0));
    let hook = receiver(delivered.clone()).await;
    let mut config = Config {
        rate_limit_per_second: 0,
        ..Config::default()
    };
    config.webhooks.allow_private_targets = true;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(memberd_server::serve(
        config,
        store.clone(),
        listener,
        std::future::pending(),
    ));

    let client = reqwest::Client::new();
    let endpoint = client
        .post(format!("{base}/v1/webhook-endpoints"))
        .bearer_auth(&key)
        .json(&json!({"url": format!("{hook}/hook"), "eventTypes": ["member.created"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(endpoint.status(), 201);

    println!("webhook delivery, end to end, {backend}: {EVENTS} events from {CLIENTS} API clients");
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let (client, base, key) = (client.clone(), base.clone(), key.clone());
        clients.spawn(async move {
            for i in (c..EVENTS).step_by(CLIENTS) {
                let response = client
                    .post(format!("{base}/v1/members"))
                    .bearer_auth(&key)
                    .json(&json!({"email": format!("bench{i}@example.com")}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 201);
            }
        });
    }
    while clients.join_next().await.is_some() {}
    let created_in = started.elapsed();
    while delivered.load(Ordering::Relaxed) < EVENTS {
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "deliveries stalled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered_in = started.elapsed();
    println!(
        "  events created:   {:>8.0}/s  ({:.2} s)",
        EVENTS as f64 / created_in.as_secs_f64(),
        created_in.as_secs_f64()
    );
    println!(
        "  events delivered: {:>8.0}/s  ({:.2} s from the first create to the last delivery)",
        EVENTS as f64 / delivered_in.as_secs_f64(),
        delivered_in.as_secs_f64()
    );
    store.close().await;
    if let Some((admin, name)) = cleanup {
        let _ = admin
            .execute_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await;
    }
}
