//! The member-facing API refuses guessing: failed logins are limited per address and per
//! client IP, sign-ups per client IP, and an unknown address is answered as a wrong password
//! is, after the same work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::member_accounts::{client, client_from, send_raw, signup, PASSWORD};
use crate::support::TestApp;

/// Failed logins: 3 per address and per client IP in an hour.
pub fn guarded_config() -> memberd_server::Config {
    let mut config = crate::support::test_config();
    config.logins.failures = 3;
    config.logins.signups = 2;
    config.logins.window = Duration::from_secs(3600);
    config
}

async fn login_from(
    app: &TestApp,
    from: &reqwest::Client,
    pk: &str,
    email: &str,
    password: &str,
) -> (StatusCode, HeaderMap, String) {
    send_raw(
        from.post(app.url("/memberstack/client/auth/login"))
            .header("X-API-Key", pk)
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

fn code_of(body: &str) -> String {
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON: {body}"));
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[track_caller]
fn assert_too_many((status, headers, body): &(StatusCode, HeaderMap, String)) {
    assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(code_of(body), "too-many-requests");
    let retry: u64 = headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=3600).contains(&retry), "{retry}");
}

async fn guessing_passwords_is_limited_per_address_and_per_ip(app: Arc<TestApp>) {
    let pk = app.publishable_key.clone();
    for email in ["ann@example.com", "bob@example.com"] {
        let from = client_from(10);
        let (status, _, body) = send_raw(
            from.post(app.url("/memberstack/client/auth/signup"))
                .header("X-API-Key", &pk)
                .json(&json!({"email": email, "password": PASSWORD})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let guesser = client_from(2);
    let mut refusals = Vec::new();
    for _ in 0..3 {
        let (status, _, body) = login_from(&app, &guesser, &pk, "ann@example.com", "guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        refusals.push(body);
    }
    assert_eq!(code_of(&refusals[0]), "invalid-credentials");
    assert!(refusals.iter().all(|b| b == &refusals[0]));
    assert_too_many(&login_from(&app, &guesser, &pk, "ann@example.com", "guess").await);
    // Now even the right password is refused, from this address and from any other.
    assert_too_many(&login_from(&app, &guesser, &pk, "ann@example.com", PASSWORD).await);
    let elsewhere = client_from(3);
    assert_too_many(&login_from(&app, &elsewhere, &pk, "ann@example.com", PASSWORD).await);
    // The guesser's IP is limited for every address; another IP is not.
    assert_too_many(&login_from(&app, &guesser, &pk, "bob@example.com", PASSWORD).await);
    let (status, _, body) = login_from(&app, &elsewhere, &pk, "bob@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The count is per environment: the same address in live is not limited.
    let (status, _, body) = login_from(
        &app,
        &client_from(4),
        &app.live_publishable_key,
        "ann@example.com",
        PASSWORD,
    )
    .await;
    assert_eq!(
        (status, code_of(&body).as_str()),
        (StatusCode::UNAUTHORIZED, "invalid-credentials"),
        "{body}"
    );
}

async fn a_login_clears_the_address_count(app: Arc<TestApp>) {
    let pk = app.publishable_key.clone();
    signup(&app, "carol@example.com").await;
    let first = client_from(5);
    for _ in 0..2 {
        let (status, _, _) = login_from(&app, &first, &pk, "carol@example.com", "guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, body) = login_from(&app, &first, &pk, "carol@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Two more failures from elsewhere: without the clearing, the second would be the fourth.
    let second = client_from(6);
    for _ in 0..2 {
        let (status, _, body) = login_from(&app, &second, &pk, "carol@example.com", "guess").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
}

async fn signups_are_limited_per_ip(app: Arc<TestApp>) {
    let signup_from = |from: reqwest::Client, email: &'static str| {
        let request = from
            .post(app.url("/memberstack/client/auth/signup"))
            .header("X-API-Key", &app.publishable_key)
            .json(&json!({"email": email, "password": PASSWORD}));
        send_raw(request)
    };
    for email in ["a@example.com", "b@example.com"] {
        let (status, _, body) = signup_from(client_from(7), email).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    assert_too_many(&signup_from(client_from(7), "c@example.com").await);
    assert_eq!(
        app.member_count().await,
        2,
        "the refused sign-up wrote nothing"
    );
    let (status, _, body) = signup_from(client_from(8), "c@example.com").await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

mod guarded {
    use super::{
        a_login_clears_the_address_count, guessing_passwords_is_limited_per_address_and_per_ip,
        signups_are_limited_per_ip,
    };
    crate::both_backends!(crate::member_logins::guarded_config() =>
        guessing_passwords_is_limited_per_address_and_per_ip,
        a_login_clears_the_address_count,
        signups_are_limited_per_ip,
    );
}

/// A failure limit the timing test does not reach.
pub fn unlimited_config() -> memberd_server::Config {
    let mut config = crate::support::test_config();
    config.logins.failures = 10_000;
    config
}

/// The shortest and the median of some timings.
fn spread(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[0], times[times.len() / 2])
}

async fn an_unknown_address_and_a_wrong_password_look_alike(app: Arc<TestApp>) {
    let pk = app.publishable_key.clone();
    signup(&app, "ann@example.com").await;
    let attempt = |email: &'static str| {
        let request = client(&app, &pk, Method::POST, "/auth/login")
            .json(&json!({"email": email, "password": "not the password"}));
        async move {
            let started = Instant::now();
            let (status, _, body) = send_raw(request).await;
            (status, body, started.elapsed())
        }
    };
    // The first unknown address also makes the dummy hash: not measured.
    let (status, unknown_body, _) = attempt("nobody@example.com").await;
    let (wrong_status, wrong_body, _) = attempt("ann@example.com").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_status, status);
    assert_eq!(unknown_body, wrong_body, "byte for byte the same answer");
    assert_eq!(code_of(&unknown_body), "invalid-credentials");
    let (malformed, malformed_body, _) = attempt("not-an-address").await;
    assert_eq!((malformed, &malformed_body), (status, &wrong_body));

    let (mut unknown, mut wrong) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let (s, b, took) = attempt("nobody@example.com").await;
        assert_eq!((s, &b), (status, &wrong_body));
        unknown.push(took);
        let (s, b, took) = attempt("ann@example.com").await;
        assert_eq!((s, &b), (status, &wrong_body));
        wrong.push(took);
    }
    // Both wait for the same hasher pool as every other test's logins, and waiting only adds
    // time: the shortest of each is its own cost. Without the dummy check an unknown address
    // would cost a hundredth of a wrong password.
    let (unknown, wrong) = (spread(unknown), spread(wrong));
    eprintln!("login refusals took (shortest, median): unknown address {unknown:?}, wrong password {wrong:?}");
    assert!(
        unknown.0 * 3 >= wrong.0,
        "an unknown address is answered after a hash check too: {unknown:?} against {wrong:?}"
    );
}

mod unlimited {
    use super::an_unknown_address_and_a_wrong_password_look_alike;
    crate::both_backends!(crate::member_logins::unlimited_config() =>
        an_unknown_address_and_a_wrong_password_look_alike);
}

/// [`guarded_config`] behind a reverse proxy on 127.0.0.1.
pub fn proxied_config() -> memberd_server::Config {
    let mut config = guarded_config();
    config.trusted_proxies =
        memberd_server::forwarded::TrustedProxies::parse(&["127.0.0.1"]).unwrap();
    config
}

async fn login_forwarded_for(
    app: &TestApp,
    from: &reqwest::Client,
    forwarded_for: &str,
    email: &str,
) -> (StatusCode, HeaderMap, String) {
    send_raw(
        from.post(app.url("/memberstack/client/auth/login"))
            .header("X-API-Key", &app.publishable_key)
            .header("X-Forwarded-For", forwarded_for)
            .json(&json!({"email": email, "password": "guess"})),
    )
    .await
}

/// Behind a trusted proxy the limits count the client it forwards for; what a client writes
/// in the header itself, and the header from anyone else, count for nothing.
async fn behind_a_trusted_proxy_the_forwarded_client_is_counted(app: Arc<TestApp>) {
    let proxy = client_from(1);
    for n in 0..3 {
        let email = format!("guess{n}@example.com");
        let (status, _, body) = login_forwarded_for(&app, &proxy, "203.0.113.1", &email).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    assert_too_many(&login_forwarded_for(&app, &proxy, "203.0.113.1", "other@example.com").await);
    // Another client behind the same proxy is not limited.
    let (status, _, body) =
        login_forwarded_for(&app, &proxy, "203.0.113.2", "other@example.com").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // The limited client cannot pass for another by writing the header first: its proxy
    // appends the address it came from.
    assert_too_many(
        &login_forwarded_for(
            &app,
            &proxy,
            "198.51.100.9, 203.0.113.1",
            "other@example.com",
        )
        .await,
    );
    // Not a trusted proxy: its header is ignored, and its own address is counted.
    let direct = client_from(5);
    for n in 0..3 {
        let forged = format!("192.0.2.{n}");
        let email = format!("direct{n}@example.com");
        let (status, _, body) = login_forwarded_for(&app, &direct, &forged, &email).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    assert_too_many(&login_forwarded_for(&app, &direct, "192.0.2.77", "last@example.com").await);
}

mod proxied {
    use super::*;
    crate::both_backends!(crate::member_logins::proxied_config() =>
        behind_a_trusted_proxy_the_forwarded_client_is_counted);
}
