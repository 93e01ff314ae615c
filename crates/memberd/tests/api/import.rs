//! `memberd import` as an operator runs it, against the database of a running server: what it
//! loads reads back through the API like members created there, and every bad row is named by
//! its line and left out whole.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::cli::memberd;
use crate::support::TestApp;

crate::both_backends!(
    jsonl_rows_read_back_through_the_api,
    csv_rows_read_back_through_the_api,
    bad_jsonl_rows_are_named_by_line_and_the_good_ones_land,
    bad_csv_rows_are_named_by_their_physical_line,
    an_unknown_app_or_column_writes_nothing,
    standard_input_needs_a_format,
    an_export_imports_back_into_the_emptied_environment,
);

/// Until the planner has statistics, PostgreSQL takes a freshly loaded table for empty and
/// scans it for single-member reads; the import refreshes them itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_into_postgres_leaves_the_planner_statistics_fresh() {
    crate::support::run(
        crate::support::Backend::Postgres,
        crate::support::test_config(),
        |app| async move {
            let dir = scratch();
            let rows: String = (0..40)
                .map(|i| format!("{{\"email\":\"m{i}@example.com\"}}\n"))
                .collect();
            let file = write(&dir, "members.jsonl", &rows);
            let out = import(&app, &[&file], b"").await;
            assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
            let pool = sqlx::PgPool::connect(&app.database_url).await.unwrap();
            let estimate: f32 =
                sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE relname = 'members'")
                    .fetch_one(&pool)
                    .await
                    .unwrap();
            assert_eq!(
                estimate, 40.0,
                "the planner's row estimate after the import"
            );
            pool.close().await;
            let _ = std::fs::remove_dir_all(dir);
        },
    )
    .await;
}

struct Imported {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// A scratch folder for one test's files.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("memberd-import-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn first_app_id(app: &TestApp) -> String {
    let apps = app.store.list_apps().await.unwrap();
    apps.iter()
        .find(|a| a.name == "First")
        .expect("the test app")
        .id
        .to_string()
}

/// Runs `memberd import --app APP --env sandbox ARGS…` on the app's database, feeding
/// `stdin` to it.
async fn import(app: &TestApp, args: &[&str], stdin: &[u8]) -> Imported {
    let app_id = first_app_id(app).await;
    let mut command = memberd();
    command
        .args(["import", "--app", &app_id, "--env", "sandbox"])
        .args(args)
        .args(["--database-url", &app.database_url]);
    run(command, stdin.to_vec()).await
}

async fn run(mut command: std::process::Command, stdin: Vec<u8>) -> Imported {
    let output: Output = tokio::task::spawn_blocking(move || {
        let mut child = command
            .env_remove("MEMBERD_LOG")
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("memberd starts");
        let mut input = child.stdin.take().unwrap();
        input.write_all(&stdin).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    Imported {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn write(dir: &std::path::Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

async fn all_members(app: &TestApp) -> Value {
    let (_, page) = app.get("/v1/members?limit=100").await;
    page
}

async fn jsonl_rows_read_back_through_the_api(app: Arc<TestApp>) {
    let events_before = app.event_count().await;
    let dir = scratch();
    let file = write(
        &dir,
        "members.jsonl",
        concat!(
            r#"{"email":"Ann@Example.com","externalId":"c1","verified":true,"customFields":{"plan":"gold"},"metaData":{"tier":"1"},"json":{"a":[1,2]},"loginRedirect":"/welcome","profileImage":"https://img.example/a.png","stripeCustomerId":"cus_1","permissions":["view:posts"],"password":"correct horse"}"#,
            "\n",
            r#"{"email":"bob@example.com"}"#,
            "\r\n\n",
            r#"{"email":"cy@example.com","customFields":{"n":3}}"#,
        ),
    );
    let out = import(&app, &[&file], b"").await;
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("Imported 3 members") && out.stdout.contains("0 rows rejected"),
        "{}",
        out.stdout
    );

    let page = all_members(&app).await;
    assert_eq!(page["totalCount"], 3, "{page}");
    let emails: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["ann@example.com", "bob@example.com", "cy@example.com"]
    );
    let (status, ann) = app.get("/v1/members/ann@example.com").await;
    assert_eq!(status, 200, "{ann}");
    assert!(ann["id"].as_str().unwrap().starts_with("mem_"));
    assert_eq!(ann["externalId"], "c1");
    assert_eq!(ann["verified"], true);
    assert_eq!(ann["customFields"], json!({"plan": "gold"}));
    assert_eq!(ann["metaData"], json!({"tier": "1"}));
    assert_eq!(ann["json"], json!({"a": [1, 2]}));
    assert_eq!(ann["loginRedirect"], "/welcome");
    assert_eq!(ann["profileImage"], "https://img.example/a.png");
    assert_eq!(ann["stripeCustomerId"], "cus_1");
    assert_eq!(ann["permissions"], json!(["view:posts"]));
    assert!(ann.get("password").is_none() && ann.get("passwordHash").is_none());
    assert_eq!(ann["createdAt"], ann["updatedAt"]);
    let (_, bob) = app.get("/v1/members/bob@example.com").await;
    assert_eq!(bob["verified"], false);
    assert_eq!(bob["customFields"], json!({}));

    let since = ann["createdAt"].as_str().unwrap();
    let (_, recent) = app.get(&format!("/v1/members?updatedSince={since}")).await;
    assert_eq!(recent["totalCount"], 3, "{recent}");
    assert_eq!(
        app.event_count().await,
        events_before,
        "an import records no member.created events"
    );
    let _ = std::fs::remove_dir_all(dir);
}

async fn csv_rows_read_back_through_the_api(app: Arc<TestApp>) {
    let dir = scratch();
    let file = write(
        &dir,
        "members.csv",
        "email,externalId,verified,customFields.plan,metaData.tier,permissions,loginRedirect\n\
         ann@example.com,c1,true,gold,1,\"view:posts, edit:posts\",/welcome\n\
         bob@example.com,,false,,,,\n",
    );
    let out = import(&app, &[&file], b"").await;
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    let page = all_members(&app).await;
    assert_eq!(page["totalCount"], 2, "{page}");
    let ann = &page["data"][0];
    assert_eq!(ann["email"], "ann@example.com");
    assert_eq!(ann["externalId"], "c1");
    assert_eq!(ann["verified"], true);
    assert_eq!(ann["customFields"], json!({"plan": "gold"}));
    assert_eq!(ann["metaData"], json!({"tier": "1"}));
    assert_eq!(ann["permissions"], json!(["view:posts", "edit:posts"]));
    assert_eq!(ann["loginRedirect"], "/welcome");
    let bob = &page["data"][1];
    assert_eq!(bob["email"], "bob@example.com");
    assert_eq!(bob["externalId"], Value::Null, "an empty cell is absent");
    assert_eq!(bob["customFields"], json!({}));
    assert_eq!(bob["metaData"], json!({}));
    let _ = std::fs::remove_dir_all(dir);
}

async fn bad_jsonl_rows_are_named_by_line_and_the_good_ones_land(app: Arc<TestApp>) {
    app.create_member("taken@example.com").await;
    let dir = scratch();
    let long_key = "k".repeat(51);
    let lines = [
        r#"{"email":"one@example.com","externalId":"x1"}"#.to_owned(),
        r#"{"email":"not an address"}"#.to_owned(),
        format!(r#"{{"email":"meta@example.com","metaData":{{"{long_key}":"v"}}}}"#),
        String::new(),
        r#"{"email": "broken@example.com""#.to_owned(),
        r#"{"email":"ONE@example.com"}"#.to_owned(),
        r#"{"email":"taken@example.com"}"#.to_owned(),
        r#"{"email":"two@example.com","verified":true}"#.to_owned(),
        r#"{"email":"three@example.com","externalId":"x1"}"#.to_owned(),
        r#"{"email":"short@example.com","password":"short"}"#.to_owned(),
        r#"{"email":"odd@example.com","colour":"blue"}"#.to_owned(),
        r#"{"email":"zw\u200bj@example.com"}"#.to_owned(),
        r#"{"email":"nul@example.com","metaData":{"k":"a\u0000b"}}"#.to_owned(),
    ];
    let file = write(&dir, "members.jsonl", &(lines.join("\n") + "\n"));
    let rejects = dir.join("rejects.jsonl").display().to_string();
    let out = import(&app, &["--rejects", &rejects, &file], b"").await;
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("Imported 2 members") && out.stdout.contains("10 rows rejected"),
        "{}",
        out.stdout
    );
    let report: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("line "))
        .collect();
    let want = [
        "line 2: email: ",
        &format!("line 3: metaData.{long_key}: "),
        "line 5: the line is not valid JSON",
        "line 6: email: already taken in this environment",
        "line 7: email: already taken in this environment",
        "line 9: externalId: already taken in this environment",
        "line 10: password: ",
        "line 11: colour: unknown field",
        "line 12: email: email must not contain invisible",
        "line 13: metaData.k: metaData.k must not contain a NUL character",
    ];
    assert_eq!(report.len(), want.len(), "{}", out.stderr);
    for (got, want) in report.iter().zip(want) {
        assert!(got.starts_with(want), "{got:?} should start with {want:?}");
    }

    let page = all_members(&app).await;
    assert_eq!(page["totalCount"], 3, "{page}");
    let emails: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["taken@example.com", "one@example.com", "two@example.com"]
    );
    for absent in ["three@example.com", "short@example.com", "meta@example.com"] {
        let (status, _) = app.get(&format!("/v1/members/{absent}")).await;
        assert_eq!(status, 404, "a rejected row leaves no trace: {absent}");
    }
    let written = std::fs::read_to_string(&rejects).unwrap();
    let rejected: Vec<&str> = [1, 2, 4, 5, 6, 8, 9, 10, 11, 12]
        .iter()
        .map(|&i| lines[i].as_str())
        .collect();
    assert_eq!(written, rejected.join("\n") + "\n");

    // The fixed rows import on a second run; the rows already in are refused, not doubled.
    let again = import(&app, &[&file], b"").await;
    assert_eq!(again.code, Some(1));
    assert!(
        again.stdout.contains("Imported 0 members"),
        "{}",
        again.stdout
    );
    assert_eq!(app.member_count().await, 3);
    let _ = std::fs::remove_dir_all(dir);
}

async fn bad_csv_rows_are_named_by_their_physical_line(app: Arc<TestApp>) {
    let dir = scratch();
    let file = write(
        &dir,
        "members.csv",
        "email,verified,customFields.bio\n\
         ann@example.com,true,\"two\nlines\"\n\
         bob@example.com,maybe,\n\
         cy@example.com,true\n\
         not-an-email,,\n\
         dee@example.com,,\n\
         eve@example.com,,a\0b\n",
    );
    let rejects = dir.join("rejects.csv").display().to_string();
    let out = import(&app, &["--rejects", &rejects, &file], b"").await;
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    let report: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("line "))
        .collect();
    assert_eq!(report.len(), 4, "{}", out.stderr);
    assert_eq!(report[0], "line 4: verified: must be true or false");
    assert_eq!(report[1], "line 5: has 2 columns where the header has 3");
    assert!(report[2].starts_with("line 6: email: "), "{}", report[2]);
    assert_eq!(
        report[3],
        "line 8: customFields.bio: customFields.bio must not contain a NUL character"
    );
    let page = all_members(&app).await;
    assert_eq!(page["totalCount"], 2, "{page}");
    assert_eq!(
        page["data"][0]["customFields"],
        json!({"bio": "two\nlines"})
    );
    assert_eq!(page["data"][1]["email"], "dee@example.com");
    assert_eq!(
        std::fs::read_to_string(&rejects).unwrap(),
        "email,verified,customFields.bio\nbob@example.com,maybe,\ncy@example.com,true\nnot-an-email,,\neve@example.com,,a\0b\n"
    );
    let _ = std::fs::remove_dir_all(dir);
}

async fn an_unknown_app_or_column_writes_nothing(app: Arc<TestApp>) {
    let dir = scratch();
    let file = write(&dir, "members.jsonl", "{\"email\":\"ann@example.com\"}\n");
    let mut command = memberd();
    command
        .args(["import", "--app", "app_nothere", "--env", "live", &file])
        .args(["--database-url", &app.database_url]);
    let out = run(command, Vec::new()).await;
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("no such app"), "{}", out.stderr);

    let csv = write(&dir, "members.csv", "email,shoeSize\nann@example.com,9\n");
    let out = import(&app, &[&csv], b"").await;
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("unknown column \"shoeSize\""),
        "{}",
        out.stderr
    );
    assert_eq!(app.member_count().await, 0);
    let _ = std::fs::remove_dir_all(dir);
}

async fn standard_input_needs_a_format(app: Arc<TestApp>) {
    let rows = b"{\"email\":\"ann@example.com\"}\n{\"email\":\"bob@example.com\"}";
    let out = import(&app, &["-"], rows).await;
    assert_eq!(out.code, Some(2), "a usage error: {}", out.stderr);
    assert!(out.stderr.contains("--format"), "{}", out.stderr);
    let out = import(&app, &["--format", "jsonl", "-"], rows).await;
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(app.member_count().await, 2);
    let out = import(&app, &["--format", "csv", "-"], b"email\ncy@example.com\n").await;
    assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
    assert_eq!(app.member_count().await, 3);
}

/// `memberd export` (both formats) and `GET /v1/members/export`, imported back into the
/// environment once its members are deleted: the API then shows the very same members, ids,
/// times and plan connections included; a second import is refused row by row, by id.
async fn an_export_imports_back_into_the_emptied_environment(app: Arc<TestApp>) {
    let gold = app
        .create_plan(json!({"name": "Gold", "type": "PAID",
            "prices": [{"amount": 900, "currency": "usd", "interval": "MONTH"}]}))
        .await;
    let free = app
        .create_plan(json!({"name": "Free", "type": "FREE"}))
        .await;
    let (status, ann) = app
        .post(
            "/v1/members",
            json!({"email": "ann@example.com", "password": "correct horse",
            "externalId": "c-1", "customFields": {"size": 9}, "metaData": {"tier": "a,b \"c\""},
            "permissions": ["read"]}),
        )
        .await;
    assert_eq!(status, 201, "{ann}");
    let bob = app.create_member("bob@example.com").await;
    let cards = format!(
        "/v1/members/{}/payment-methods",
        ann["id"].as_str().unwrap()
    );
    let card = json!({"card": {"number": "4242424242424242", "expMonth": 12, "expYear": 2040, "cvc": "123"}});
    let (status, pm) = app.post(&cards, card).await;
    assert_eq!(status, 201, "{pm}");
    for (member, plan) in [(&ann, &gold), (&bob, &free)] {
        let body = json!({"planId": plan["id"]});
        let path = format!(
            "/v1/members/{}/plan-connections",
            member["id"].as_str().unwrap()
        );
        let (status, connection) = app.post(&path, body).await;
        assert_eq!(status, 201, "{connection}");
    }
    let before = all_members(&app).await["data"].clone();
    assert_eq!(before.as_array().unwrap().len(), 2);

    let dir = scratch();
    let app_id = first_app_id(&app).await;
    let mut files = Vec::new();
    for name in ["members.jsonl", "members.csv"] {
        let path = dir.join(name).display().to_string();
        let mut command = memberd();
        command
            .args(["export", "--app", &app_id, "--env", "sandbox", &path])
            .args(["--database-url", &app.database_url]);
        let out = run(command, Vec::new()).await;
        assert_eq!(out.code, Some(0), "{}{}", out.stdout, out.stderr);
        assert!(out.stdout.contains("Exported 2 members"), "{}", out.stdout);
        files.push(path);
    }
    let response = app
        .request(reqwest::Method::GET, "/v1/members/export")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let over_http = response.text().await.unwrap();
    assert_eq!(over_http, std::fs::read_to_string(&files[0]).unwrap());
    assert!(!over_http.contains("argon2"), "no password hash over HTTP");
    let (status, refused) = app.get("/v1/members/export?format=xml").await;
    assert_eq!(
        (status.as_u16(), refused["error"]["param"].as_str()),
        (400, Some("format"))
    );

    for file in &files {
        for member in before.as_array().unwrap() {
            let (status, _) = app
                .delete(&format!("/v1/members/{}", member["id"].as_str().unwrap()))
                .await;
            assert_eq!(status, 200);
        }
        assert_eq!(all_members(&app).await["data"], json!([]));
        let out = import(&app, &[file], b"").await;
        assert_eq!(out.code, Some(0), "{file}: {}{}", out.stdout, out.stderr);
        assert_eq!(all_members(&app).await["data"], before, "{file}");
    }

    let again = import(&app, &[&files[0]], b"").await;
    assert_eq!(again.code, Some(1));
    assert!(
        again.stderr.contains("line 1: id: already taken"),
        "{}",
        again.stderr
    );
    let _ = std::fs::remove_dir_all(dir);
}
