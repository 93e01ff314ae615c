//! Runs the official Memberstack DOM SDK's suite (tests/compat/memberstack-dom: the unmodified
//! `@memberstack/dom` in headless Chromium, from a page on another origin) against a real
//! memberd on each backend.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use memberd_server::workers::email::SmtpUrl;

use crate::smtp::SmtpServer;
use crate::support::{Backend, TestApp};

fn suite_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/compat/memberstack-dom"
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
    let packages = suite_dir()
        .join("node_modules/@memberstack/dom/package.json")
        .exists();
    let browser = chromium().exists();
    if !(packages && browser) {
        assert!(
            std::env::var_os("MEMBERD_REQUIRE_SDK_TESTS").is_none(),
            "the DOM SDK suite is required but not installed: run `npm ci` in tests/compat/memberstack-dom and install Chromium (apt-get install chromium)"
        );
        eprintln!("the Memberstack DOM SDK suite needs `npm ci` in tests/compat/memberstack-dom and Chromium: skipped");
    }
    packages && browser
}

async fn the_official_dom_sdk_works_unmodified_in_a_browser(
    app: Arc<TestApp>,
    smtp: Arc<SmtpServer>,
) {
    let smtp = smtp.clone();
    let (base, key, publishable, app_id) = (
        app.base.clone(),
        app.key.clone(),
        app.publishable_key.clone(),
        app.app_id.clone(),
    );
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "--test-reporter=tap", "--test-concurrency=1"])
            .current_dir(suite_dir())
            .env("MEMBERD_URL", base)
            .env("MEMBERD_SECRET_KEY", key)
            .env("MEMBERD_PUBLISHABLE_KEY", publishable)
            .env("MEMBERD_APP_ID", app_id)
            .env("MEMBERD_SMTP_CONTROL_URL", smtp.control_url())
            .env("CHROMIUM_PATH", chromium())
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the DOM SDK suite failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
    assert!(!stdout.contains("# pass 0\n"), "{stdout}");
}

/// The suite's server sends its emails to a real SMTP server, which the suite reads the
/// codes from; the failed-login limit is above the suite's deliberate mistakes.
async fn on(backend: Backend) {
    if !installed() {
        return;
    }
    let Some(smtp) = SmtpServer::start().await else {
        return;
    };
    let smtp = Arc::new(smtp);
    let mut config = crate::support::test_config();
    config.logins.failures = 50;
    config.email.smtp = Some(SmtpUrl::parse(&smtp.url()).unwrap());
    config.email.poll_interval = std::time::Duration::from_millis(100);
    crate::support::run(backend, config, move |app| {
        the_official_dom_sdk_works_unmodified_in_a_browser(app, smtp)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    on(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    on(Backend::Postgres).await;
}
