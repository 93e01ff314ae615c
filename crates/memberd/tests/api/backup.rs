//! `memberd backup` while `memberd serve` takes writes, and `memberd restore` of what it
//! wrote: every member whose create had been answered before the backup began is in the
//! restored database, and a restore never overwrites a database.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::cli::{memberd, temp_db, Served};

/// Creates members one after another until `stop`, keeping each answered id with when its
/// answer came.
async fn keep_creating(
    base: String,
    key: String,
    stop: Arc<AtomicBool>,
    answered: Arc<Mutex<Vec<(String, Instant)>>>,
) {
    let client = reqwest::Client::new();
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        i += 1;
        let response = client
            .post(format!("{base}/v1/members"))
            .bearer_auth(&key)
            .json(&json!({"email": format!("w{i}@example.com")}))
            .send()
            .await
            .expect("memberd answers");
        assert_eq!(response.status(), StatusCode::CREATED);
        let member: Value = response.json().await.unwrap();
        let id = member["id"].as_str().unwrap().to_owned();
        answered.lock().unwrap().push((id, Instant::now()));
    }
}

fn run(args: &[&str]) -> std::process::Output {
    memberd().args(args).output().expect("memberd runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_writes_run_restores_every_answered_create() {
    let (dir, url) = temp_db();
    let served = Served::start_with(&url, &["--rate-limit-per-second", "0"]);
    let key = served.secret("sk_sb_").expect("the sandbox key is printed");
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(Mutex::new(Vec::new()));
    let writer = tokio::spawn(keep_creating(
        served.base.clone(),
        key.clone(),
        stop.clone(),
        answered.clone(),
    ));
    while answered.lock().unwrap().len() < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let file = dir.join("backup.db");
    let file_text = file.to_str().unwrap().to_owned();
    let began = Instant::now();
    let (url_b, file_b) = (url.clone(), file_text.clone());
    let backup =
        tokio::task::spawn_blocking(move || run(&["--database-url", &url_b, "backup", &file_b]))
            .await
            .unwrap();
    let creates_during = answered
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| *at > began)
        .count();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert!(String::from_utf8_lossy(&backup.stdout).contains("Backed up"));
    let again = run(&["--database-url", &url, "backup", &file_text]);
    assert!(
        !again.status.success(),
        "an existing file is not overwritten"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    served.stop();

    let restored_url = format!(
        "sqlite:{}",
        dir.join("restored").join("memberd.db").display()
    );
    let restore = run(&["--database-url", &restored_url, "restore", &file_text]);
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    let over = run(&["--database-url", &restored_url, "restore", &file_text]);
    assert!(
        !over.status.success(),
        "a database with data is never overwritten"
    );
    assert!(String::from_utf8_lossy(&over.stderr).contains("already holds a database"));
    let not_a_backup = dir.join("not-a-backup.db");
    std::fs::write(&not_a_backup, "members, but not a database").unwrap();
    let refused = run(&[
        "--database-url",
        &format!("sqlite:{}", dir.join("other.db").display()),
        "restore",
        not_a_backup.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("cannot be restored"));
    assert!(
        !dir.join("other.db").exists(),
        "nothing is written for a bad file"
    );

    let restored = Served::start(&restored_url);
    let client = reqwest::Client::new();
    let before: Vec<String> = answered
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, at)| *at < began)
        .map(|(id, _)| id.clone())
        .collect();
    assert!(before.len() >= 100);
    for id in &before {
        let response = client
            .get(format!("{}/v1/members/{id}", restored.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "{id} was answered before the backup began"
        );
    }
    eprintln!(
        "backed up with {} creates answered before, {creates_during} during the backup",
        before.len()
    );
    restored.stop();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn postgres_is_pointed_to_its_own_tools() {
    for command in ["backup", "restore"] {
        let output = run(&[
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
            command,
            "somewhere.db",
        ]);
        assert!(!output.status.success());
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains("pg_dump"), "{command}: {said}");
    }
}
