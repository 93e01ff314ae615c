//! Runs the official Memberstack Admin SDK's suite (tests/compat/memberstack-sdk, Node's test
//! runner) against a real memberd on each backend.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use crate::support::TestApp;

fn suite_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/compat/memberstack-sdk"
    ))
}

/// Whether `npm ci` has installed the SDK. CI sets MEMBERD_REQUIRE_SDK_TESTS so that a missing
/// install fails instead of skipping.
fn installed() -> bool {
    let ready = suite_dir()
        .join("node_modules/@memberstack/admin/package.json")
        .exists();
    if !ready {
        assert!(
            std::env::var_os("MEMBERD_REQUIRE_SDK_TESTS").is_none(),
            "the SDK suite is required but not installed: run `npm ci` in tests/compat/memberstack-sdk"
        );
        eprintln!("the Memberstack SDK suite is not installed (npm ci in tests/compat/memberstack-sdk): skipped");
    }
    ready
}

async fn the_official_sdk_works_unmodified(app: Arc<TestApp>) {
    if !installed() {
        return;
    }
    let (base, key, live_key) = (app.base.clone(), app.key.clone(), app.live_key.clone());
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "--test-reporter=tap", "--test-concurrency=1"])
            .current_dir(suite_dir())
            .env("MEMBERD_BASE_URL", base)
            .env("MEMBERD_KEY", key)
            .env("MEMBERD_LIVE_KEY", live_key)
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the SDK suite failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("# fail 0"), "{stdout}");
}

crate::both_backends!(the_official_sdk_works_unmodified);
