//! Nothing is lost when memberd stops. Killed mid-delivery: the outbox and the delivery leases
//! live in the database, so a restarted memberd picks up where the dead one stopped. Told to
//! stop: it finishes the writes still running first.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;

use sqlx::Connection;

use super::cli::{temp_db, FreshPostgres, Served};
use super::idempotency::hold_member_inserts;
use crate::receiver::Receiver;

const EVENTS: usize = 150;

async fn survives_sigkill(database_url: &str) {
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_millis(60));
    let flags = [
        "--allow-private-webhook-targets",
        "--webhook-timeout-secs",
        "2",
        "--webhook-concurrency",
        "4",
        "--rate-limit-per-second",
        "0",
    ];
    let served = Served::start_with(database_url, &flags);
    let key = served.secret("sk_sb_").expect("a sandbox key");
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{}/v1/webhook-endpoints", served.base))
        .bearer_auth(&key)
        .json(&json!({"url": format!("{}/hook", receiver.base), "eventTypes": ["member.created"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    for i in 0..EVENTS {
        let response = client
            .post(format!("{}/v1/members", served.base))
            .bearer_auth(&key)
            .json(&json!({"email": format!("m{i}@example.com")}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    receiver
        .wait_for(120, "the first deliveries", |r| r.len() >= 10)
        .await;
    served.kill_hard();
    let before = receiver.received().len();
    assert!(
        before < EVENTS,
        "killed while deliveries were still in flight ({before} done)"
    );

    // The rest is delivered by `memberd worker`, beside a server that runs no workers.
    let again = Served::start_with(database_url, &[&flags[..], &["--no-workers"]].concat());
    let mut worker = super::cli::memberd()
        .args(["worker", "--database-url", database_url])
        .args(&flags[..5])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("memberd worker starts");
    let got = receiver
        .wait_for(180, "every event after the restart", |r| {
            r.iter()
                .map(|x| x.header("webhook-id").to_owned())
                .collect::<HashSet<_>>()
                .len()
                >= EVENTS
        })
        .await;
    let ids: HashSet<String> = got
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert_eq!(ids.len(), EVENTS, "every event id, at least once");
    assert!(got.iter().all(|r| r.json()["type"] == "member.created"));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status();
    assert!(
        worker.wait().unwrap().success(),
        "the worker stops cleanly on SIGTERM"
    );
    again.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_is_lost_when_memberd_is_killed_on_sqlite() {
    let (dir, url) = temp_db();
    survives_sigkill(&url).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_is_lost_when_memberd_is_killed_on_postgres() {
    let Some(db) = FreshPostgres::create("SIGKILL").await else {
        return;
    };
    survives_sigkill(&db.url).await;
    db.drop_database().await;
}

/// A write whose client hung up, still waiting on a lock when memberd is told to stop, is
/// finished before memberd exits instead of being cut off with the process.
async fn stopping_finishes_a_write_whose_client_went_away(database_url: &str) {
    let served = Served::start(database_url);
    let key = served.secret("sk_sb_").expect("a sandbox key");
    let mut held = hold_member_inserts(database_url).await;
    let request = reqwest::Client::new()
        .post(format!("{}/v1/members", served.base))
        .bearer_auth(&key)
        .json(&json!({"email": "away@example.com"}))
        .send();
    crate::idempotency::give_up_once_held(database_url, request).await;
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        sqlx::query("ROLLBACK").execute(&mut held).await.unwrap();
        held
    });
    tokio::task::spawn_blocking(move || served.stop())
        .await
        .unwrap();
    release.await.unwrap().close().await.unwrap();

    let mut conn = sqlx::AnyConnection::connect(database_url).await.unwrap();
    let row = sqlx::query("SELECT COUNT(*) AS n FROM members WHERE email = 'away@example.com'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let written: i64 = sqlx::Row::get(&row, "n");
    assert_eq!(written, 1, "the member was written before memberd exited");
    conn.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_finishes_abandoned_writes_on_sqlite() {
    let (dir, url) = temp_db();
    stopping_finishes_a_write_whose_client_went_away(&url).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_finishes_abandoned_writes_on_postgres() {
    let Some(db) = FreshPostgres::create("shutdown").await else {
        return;
    };
    stopping_finishes_a_write_whose_client_went_away(&db.url).await;
    db.drop_database().await;
}
