//! Runs the dashboard suite (tests/compat/dashboard: an operator in headless Chromium, every
//! page checked with axe-core) against `memberd serve` on each backend, from the first
//! owner's link it prints. Each page's screenshot is written to
//! target/dashboard-screenshots/<backend>/.

use std::path::PathBuf;
use std::process::Command;

use crate::cli::{temp_db, FreshPostgres, Served};

fn suite_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/compat/dashboard"
    ))
}

fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Whether `npm ci` has installed the suite and Chromium is there. CI sets
/// MEMBERD_REQUIRE_SDK_TESTS so that a missing install fails instead of skipping.
fn installed() -> bool {
    let packages = ["playwright-core", "axe-core"].iter().all(|p| {
        suite_dir()
            .join("node_modules")
            .join(p)
            .join("package.json")
            .exists()
    });
    let browser = chromium().exists();
    if !(packages && browser) {
        assert!(
            std::env::var_os("MEMBERD_REQUIRE_SDK_TESTS").is_none(),
            "the dashboard suite is required but not installed: run `npm ci` in tests/compat/dashboard and install Chromium (apt-get install chromium)"
        );
        eprintln!(
            "the dashboard suite needs `npm ci` in tests/compat/dashboard and Chromium: skipped"
        );
    }
    packages && browser
}

fn run_suite(database_url: &str, backend: &str) {
    // The suite's webhook receiver listens on 127.0.0.1.
    let served = Served::start_with(database_url, &["--allow-private-webhook-targets"]);
    let link = served
        .printed
        .iter()
        .flat_map(|l| l.split_whitespace())
        .find(|w| w.contains("/dashboard/set-password?token="))
        .unwrap_or_else(|| panic!("serve prints the first owner's link: {:?}", served.printed))
        .to_owned();
    let app_id = served
        .printed
        .iter()
        .flat_map(|l| l.split(['(', ')', ' ']))
        .find(|w| w.starts_with("app_"))
        .expect("serve names the app it made")
        .to_owned();
    let key = served
        .secret("sk_sb_")
        .expect("serve prints the sandbox key");
    let screenshots = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/dashboard-screenshots"
    ))
    .join(backend);
    let output = Command::new("node")
        .args(["--test", "--test-reporter=tap", "--test-concurrency=1"])
        .current_dir(suite_dir())
        .env("MEMBERD_URL", &served.base)
        .env("MEMBERD_SECRET_KEY", key)
        .env("MEMBERD_APP_ID", app_id)
        .env("MEMBERD_OWNER_LINK", link)
        .env("MEMBERD_BIN", env!("CARGO_BIN_EXE_memberd"))
        .env("MEMBERD_DATABASE_URL", database_url)
        .env("MEMBERD_SCREENSHOTS", &screenshots)
        .env("CHROMIUM_PATH", chromium())
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the dashboard suite failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
    assert!(!stdout.contains("# pass 0\n"), "{stdout}");
    eprintln!("dashboard screenshots: {}", screenshots.display());
    served.stop();
}

#[test]
fn sqlite() {
    if !installed() {
        return;
    }
    let (dir, url) = temp_db();
    run_suite(&url, "sqlite");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    if !installed() {
        return;
    }
    let Some(db) = FreshPostgres::create("dashboard").await else {
        return;
    };
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || run_suite(&url, "postgres"))
        .await
        .unwrap();
    db.drop_database().await;
}
