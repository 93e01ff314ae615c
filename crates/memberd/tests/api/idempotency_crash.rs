//! An Idempotency-Key survives memberd being killed (SIGKILL) in the middle of keyed writes:
//! every retry is answered with the first response, or performs the write, once. Neither a key
//! stuck "in progress" nor a member created twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Connection;
use tokio::sync::Mutex;

use super::cli::{temp_db, FreshPostgres, Served};
use super::idempotency::hold_member_inserts;

const KEYS: usize = 160;
/// The lease of a claim is the request timeout; a short one lets the retries come soon.
const FLAGS: [&str; 4] = [
    "--request-timeout-secs",
    "1",
    "--rate-limit-per-second",
    "0",
];

fn body(i: usize) -> Value {
    json!({"email": format!("crash{i}@example.com"), "metaData": {"n": i.to_string()}})
}

async fn create(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    i: usize,
) -> reqwest::Result<(StatusCode, String)> {
    let response = client
        .post(format!("{base}/v1/members"))
        .bearer_auth(key)
        .header("Idempotency-Key", format!("crash-{i}"))
        .json(&body(i))
        .send()
        .await?;
    let status = response.status();
    Ok((status, response.text().await?))
}

async fn read(client: &reqwest::Client, key: &str, url: &str) -> Value {
    let response = client.get(url).bearer_auth(key).send().await.unwrap();
    response.json().await.unwrap()
}

async fn keyed_creates_survive_sigkill(database_url: &str) -> String {
    let served = Served::start_with(database_url, &FLAGS);
    let key = served.secret("sk_sb_").expect("a sandbox key");
    let client = reqwest::Client::new();

    // Keyed creates, eight at a time; memberd is killed once a third of them are answered.
    let answered: Arc<Mutex<HashMap<usize, (StatusCode, String)>>> = Arc::default();
    let mut senders = tokio::task::JoinSet::new();
    for lane in 0..8 {
        let (client, base, key, answered) = (
            client.clone(),
            served.base.clone(),
            key.clone(),
            answered.clone(),
        );
        senders.spawn(async move {
            for i in (lane..KEYS).step_by(8) {
                match create(&client, &base, &key, i).await {
                    Ok(answer) => {
                        answered.lock().await.insert(i, answer);
                    }
                    Err(_) => return,
                }
            }
        });
    }
    while answered.lock().await.len() < KEYS / 3 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    tokio::task::spawn_blocking(move || served.kill_hard())
        .await
        .unwrap();
    while senders.join_next().await.is_some() {}
    let answered = Arc::try_unwrap(answered).unwrap().into_inner();
    assert!(
        answered.len() < KEYS,
        "killed while creates were still in flight"
    );
    for (status, _) in answered.values() {
        assert_eq!(*status, StatusCode::CREATED);
    }

    let served = Served::start_with(database_url, &FLAGS);
    // Past the lease of every claim the dead process left.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    for i in 0..KEYS {
        let (status, text) = create(&client, &served.base, &key, i).await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "retry of crash-{i}: {text}");
        if let Some((_, first)) = answered.get(&i) {
            assert_eq!(
                &text, first,
                "crash-{i} is answered with its first response"
            );
        }
    }

    // Every key made exactly one member, announced once.
    let mut events = Vec::new();
    let mut after = String::new();
    loop {
        let page = read(
            &client,
            &key,
            &format!(
                "{}/v1/events?types=member.created&limit=100&after={after}",
                served.base
            ),
        )
        .await;
        events.extend(page["data"].as_array().unwrap().iter().cloned());
        if page["hasMore"] != json!(true) {
            break;
        }
        after = page["nextCursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(events.len(), KEYS, "one member.created a key");
    let members = read(
        &client,
        &key,
        &format!("{}/v1/members?limit=1", served.base),
    )
    .await;
    assert_eq!(members["totalCount"], KEYS, "one member a key");
    served.stop();
    key
}

/// A claim whose process died before its write could run (the write was waiting on a lock) is
/// taken over by the retry once its lease has run out, and the write then runs once.
async fn a_claim_left_by_a_dead_process_is_taken_over(database_url: &str, key: &str) {
    let served = Served::start_with(database_url, &FLAGS);
    let key = key.to_owned();
    let client = reqwest::Client::new();
    let held = hold_member_inserts(database_url).await;
    let waiting = {
        let (client, base, key) = (client.clone(), served.base.clone(), key.clone());
        tokio::spawn(async move { create(&client, &base, &key, KEYS).await })
    };
    if database_url.starts_with("postgres") {
        // The claim commits before the insert waits on the table lock.
        super::idempotency::wait_for_a_member_insert_to_wait(database_url).await;
    }
    tokio::task::spawn_blocking(move || served.kill_hard())
        .await
        .unwrap();
    assert!(waiting.await.unwrap().is_err(), "killed before it answered");
    held.close().await.ok();

    let served = Served::start_with(database_url, &FLAGS);
    let (status, text) = create(&client, &served.base, &key, KEYS).await.unwrap();
    if status == StatusCode::CONFLICT {
        // Within the dead claim's lease: still "in progress", but not for long.
        assert!(text.contains("idempotency_key_in_use"), "{text}");
        tokio::time::sleep(Duration::from_millis(1_500)).await;
    }
    let (status, first) = create(&client, &served.base, &key, KEYS).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = create(&client, &served.base, &key, KEYS).await.unwrap();
    assert_eq!((status, again), (StatusCode::CREATED, first), "replayed");
    served.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_writes_survive_sigkill_on_sqlite() {
    let (dir, url) = temp_db();
    let key = keyed_creates_survive_sigkill(&url).await;
    a_claim_left_by_a_dead_process_is_taken_over(&url, &key).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_writes_survive_sigkill_on_postgres() {
    let Some(db) = FreshPostgres::create("idempotency crash").await else {
        return;
    };
    let key = keyed_creates_survive_sigkill(&db.url).await;
    a_claim_left_by_a_dead_process_is_taken_over(&db.url, &key).await;
    db.drop_database().await;
}
