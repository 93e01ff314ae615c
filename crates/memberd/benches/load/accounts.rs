//! Members' own accounts under load: `GET /member` with a live token (answered from memory,
//! like the access check), logins, and the access check while a storm of failed logins keeps
//! the password hasher busy.

use std::path::Path;

use serde_json::json;

use crate::scenarios::{blocking, progress, Api, Measured};
use crate::wrk::{self, Figures, Load, Target};

/// What the accounts' scenarios measured.
pub struct AccountsReport {
    /// `GET /member`, and logins with the right password.
    pub measured: Vec<Measured>,
    /// The access check at about half its peak while failed logins run beside it.
    pub access_under_login_storm: Figures,
    /// The failed logins' own rate meanwhile.
    pub failed_logins: Figures,
}

pub const MEMBER_READ: &str = "GET /member with a valid token";
pub const LOGIN: &str = "login (right password)";
const PASSWORD: &str = "bench password 1";

/// Signs up a member through the member-facing API of the app whose secret key is `key`.
async fn sign_up(api: &Api, key: &str, email: &str) -> (String, String) {
    let app = api.get(key, "/v1/app").await;
    let publishable = app["publishableKey"]
        .as_str()
        .expect("a publishable key")
        .to_owned();
    let response = api
        .client
        .post(format!("{}/memberstack/client/auth/signup", api.base))
        .header("X-API-Key", &publishable)
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("memberd answers");
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("a JSON body");
    assert!(status.is_success(), "signup: {status} {body}");
    let token = body["data"]["tokens"]["accessToken"]
        .as_str()
        .expect("an access token")
        .to_owned();
    (publishable, token)
}

/// The flags of a server these scenarios can run on: no rate limit, and login limits no load
/// reaches (so that every failed login is a password check, not a cheap refusal).
pub const SERVER_FLAGS: &[&str] = &[
    "--rate-limit-per-second",
    "0",
    "--login-failure-limit",
    "1000000000",
    "--signup-limit",
    "1000000000",
];

/// Runs the scenarios against the server at `base`, started with `SERVER_FLAGS`.
/// `access_path` and `access_key` are the access check's, and `access_peak` its peak rate.
pub async fn measure(
    backend: &str,
    base: &str,
    key: &str,
    access: (&str, &str, f64),
    load: &Load,
    dir: &Path,
) -> AccountsReport {
    let api = Api {
        base: base.to_owned(),
        client: reqwest::Client::new(),
    };
    let email = "login@bench.example";
    let (publishable, token) = sign_up(&api, key, email).await;
    let client = "/memberstack/client";
    let pk = || ("X-API-Key", publishable.clone());
    let scenarios = [
        (
            MEMBER_READ,
            Target::with_headers(
                "GET",
                format!("{client}/member"),
                vec![pk(), ("Authorization", format!("Bearer {token}"))],
                None,
            ),
        ),
        (
            LOGIN,
            Target::with_headers(
                "POST",
                format!("{client}/auth/login"),
                vec![pk()],
                Some(json!({"email": email, "password": PASSWORD}).to_string()),
            ),
        ),
    ];
    let mut measured = Vec::new();
    for (name, target) in scenarios {
        progress(backend, name);
        let figures = blocking(|| wrk::run(base, &target, load, dir))
            .unwrap_or_else(|e| panic!("{backend}, {name}: {e}"));
        measured.push(Measured {
            name: name.into(),
            figures,
        });
    }

    progress(
        backend,
        "access check at half its peak, beside failed logins",
    );
    let (access_path, access_key, access_peak) = access;
    let mut failing = Target::with_headers(
        "POST",
        format!("{client}/auth/login"),
        vec![pk()],
        Some(json!({"email": email, "password": "not the password"}).to_string()),
    );
    failing.refusals_expected = true;
    let storm = Load {
        // Outlasts the access check's run on both sides.
        seconds: load.seconds + 2,
        connections: 32,
        threads: 1,
        think_ms: None,
    };
    let think_ms = 4;
    let paced = Load {
        connections: ((access_peak / 2.0) * (f64::from(think_ms) + 0.3) / 1000.0)
            .round()
            .max(1.0) as u32,
        think_ms: Some(think_ms),
        threads: 1,
        seconds: load.seconds,
    };
    let storm_dir = dir.join("storm");
    std::fs::create_dir_all(&storm_dir).expect("a directory for the storm's script");
    let storm_base = base.to_owned();
    let (access_under_login_storm, failed_logins) = blocking(|| {
        std::thread::scope(|scope| {
            let storm = scope.spawn(|| wrk::run(&storm_base, &failing, &storm, &storm_dir));
            // Let the storm fill the hasher's queue first.
            std::thread::sleep(std::time::Duration::from_secs(1));
            let access = wrk::run(base, &Target::get(access_path, access_key), &paced, dir);
            let storm = storm.join().expect("the storm's thread");
            (
                access.unwrap_or_else(|e| panic!("{backend}, access beside failed logins: {e}")),
                storm.unwrap_or_else(|e| panic!("{backend}, failed logins: {e}")),
            )
        })
    });
    AccountsReport {
        measured,
        access_under_login_storm,
        failed_logins,
    }
}
