//! Password reset, passwordless login and sign-up, and email verification on the member-facing
//! API, with no SMTP server: the codes are read where a developer reads them, `GET /v1/emails`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::member_accounts::{as_member, client, login_as, send_raw, signup, token, PASSWORD};
use crate::support::{id, send, send_ms, TestApp};

/// Wrong codes are counted per client address like failed logins: enough here that the tries
/// of one test never reach the limit.
pub fn email_config() -> memberd_server::Config {
    let mut config = crate::support::test_config();
    config.logins.failures = 50;
    config
}

/// The environment's emails to `to`, newest first.
pub async fn emails_to(app: &TestApp, key: &str, to: &str) -> Vec<Value> {
    let (status, body) = send(
        app.request_as(key, Method::GET, "/v1/emails")
            .query(&[("to", to)]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].as_array().cloned().unwrap_or_default()
}

/// The first run of exactly six digits.
pub fn six_digits(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if i - start == 6 {
                return Some(text[start..i].to_owned());
            }
        } else {
            i += 1;
        }
    }
    None
}

/// The code of the newest email to `to`.
pub async fn latest_code(app: &TestApp, to: &str) -> String {
    let emails = emails_to(app, &app.key, to).await;
    let newest = emails.first().unwrap_or_else(|| panic!("no email to {to}"));
    six_digits(newest["text"].as_str().unwrap()).unwrap_or_else(|| panic!("no code in {newest}"))
}

/// The link of the newest email to `to`.
pub fn link_in(text: &str) -> String {
    let start = text.find("http").expect("a link");
    text[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .next()
        .unwrap()
        .to_owned()
}

async fn post_client(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    send_ms(client(app, &app.publishable_key, Method::POST, path).json(&body)).await
}

#[track_caller]
fn assert_client_error(status: StatusCode, body: &Value, want: StatusCode, code: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
}

async fn a_forgotten_password_is_reset_with_the_emailed_code(app: Arc<TestApp>) {
    let member = signup(&app, "forgot@example.com").await;
    let old_token = token(&member);

    let (status, known) = post_client(
        &app,
        "/auth/send-reset-password-email",
        json!({"email": "Forgot@Example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{known}");
    let (status, unknown) = post_client(
        &app,
        "/auth/send-reset-password-email",
        json!({"email": "nobody@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{unknown}");
    assert_eq!(known, unknown, "the answer says nothing of who is a member");
    assert!(emails_to(&app, &app.key, "nobody@example.com")
        .await
        .is_empty());

    let emails = emails_to(&app, &app.key, "forgot@example.com").await;
    assert_eq!(emails.len(), 1, "{emails:?}");
    assert_eq!(emails[0]["kind"], "password_reset");
    assert_eq!(emails[0]["memberId"], member["member"]["id"]);
    let code = latest_code(&app, "forgot@example.com").await;
    assert!(emails[0]["html"].as_str().unwrap().contains(&code));

    // The database keeps a hash of the code, never the code.
    sqlx::any::install_default_drivers();
    let mut db = <sqlx::AnyConnection as sqlx::Connection>::connect(&app.database_url)
        .await
        .unwrap();
    let kept: Vec<(String,)> =
        sqlx::query_as("SELECT code_hash FROM member_codes WHERE email = 'forgot@example.com'")
            .fetch_all(&mut db)
            .await
            .unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].0.len(), 64, "a SHA-256: {kept:?}");
    assert!(!kept[0].0.contains(&code));
    let _ = sqlx::Connection::close(db).await;

    // A wrong code changes nothing and uses nothing up.
    let wrong = if code == "000000" { "000001" } else { "000000" };
    let (status, body) = post_client(
        &app,
        "/auth/reset-password",
        json!({"token": wrong, "newPassword": "a brand new password"}),
    )
    .await;
    assert_client_error(status, &body, StatusCode::BAD_REQUEST, "invalid-reset-code");
    // Too short a password is refused before the code is looked at.
    let (status, body) = post_client(
        &app,
        "/auth/reset-password",
        json!({"token": code, "newPassword": "short"}),
    )
    .await;
    assert_client_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid-password-too-short",
    );

    let (status, body) = post_client(
        &app,
        "/auth/reset-password",
        json!({"token": format!(" {code} "), "newPassword": "a brand new password"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["success"], true);

    // Every session ended, the old password is gone, the new one works.
    let (status, body) = send_ms(as_member(&app, &old_token, Method::GET, "/member")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"], Value::Null, "the old session is over: {body}");
    let (status, _) = login_as(&app, &app.publishable_key, "forgot@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = login_as(
        &app,
        &app.publishable_key,
        "forgot@example.com",
        "a brand new password",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A code is good once.
    let (status, body) = post_client(
        &app,
        "/auth/reset-password",
        json!({"token": code, "newPassword": "yet another password"}),
    )
    .await;
    assert_client_error(status, &body, StatusCode::BAD_REQUEST, "invalid-reset-code");
}

async fn expired_codes_are_refused(app: Arc<TestApp>) {
    signup(&app, "late@example.com").await;
    post_client(
        &app,
        "/auth/send-reset-password-email",
        json!({"email": "late@example.com"}),
    )
    .await;
    post_client(
        &app,
        "/auth/passwordless/login/send",
        json!({"email": "late@example.com"}),
    )
    .await;
    let reset = six_digits(
        emails_to(&app, &app.key, "late@example.com").await[1]["text"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let login = latest_code(&app, "late@example.com").await;
    // An hour and ten minutes go by.
    app.store
        .execute_admin("UPDATE member_codes SET expires_at = expires_at - 3600000000")
        .await
        .unwrap();
    let (status, body) = post_client(
        &app,
        "/auth/reset-password",
        json!({"token": reset, "newPassword": "a brand new password"}),
    )
    .await;
    assert_client_error(status, &body, StatusCode::BAD_REQUEST, "invalid-reset-code");
    let (status, body) = post_client(
        &app,
        "/auth/passwordless/login",
        json!({"email": "late@example.com", "passwordlessToken": login}),
    )
    .await;
    assert_client_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid-passwordless-login-code",
    );
}

async fn passwordless_sign_up_and_login_take_the_emailed_codes(app: Arc<TestApp>) {
    let address = "nopass@example.com";
    let (status, body) = post_client(
        &app,
        "/auth/passwordless/signup/send",
        json!({"email": address}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["success"], true);
    let emails = emails_to(&app, &app.key, address).await;
    assert_eq!(emails[0]["kind"], "passwordless_signup");
    let code = latest_code(&app, address).await;

    // The code is the address's: another address cannot use it.
    let (status, body) = send_ms(
        client(
            &app,
            &app.publishable_key,
            Method::POST,
            "/auth/signup?isPasswordless=true",
        )
        .json(&json!({"email": "thief@example.com", "passwordlessToken": code})),
    )
    .await;
    assert_client_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid-passwordless-login-code",
    );
    assert_eq!(app.member_count().await, 0);

    let (status, body) = send_ms(
        client(
            &app,
            &app.publishable_key,
            Method::POST,
            "/auth/signup?isPasswordless=true",
        )
        .json(
            &json!({"email": address, "passwordlessToken": code, "customFields": {"name": "Nell"}}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let member = &body["data"]["member"];
    assert_eq!(member["auth"]["email"], address);
    assert_eq!(
        member["verified"], true,
        "the code shows the address is theirs"
    );
    let first = token(&body["data"]);
    let (status, me) = send_ms(as_member(&app, &first, Method::GET, "/member")).await;
    assert_eq!((status, &me["data"]["id"]), (StatusCode::OK, &member["id"]));

    // Signing up with an address that has an account sends a login code instead, with the
    // same answer.
    signup(&app, "known@example.com").await;
    let (status, again) = post_client(
        &app,
        "/auth/passwordless/signup/send",
        json!({"email": "known@example.com"}),
    )
    .await;
    assert_eq!((status, &again), (StatusCode::OK, &body_success()));
    assert_eq!(
        emails_to(&app, &app.key, "known@example.com").await[0]["kind"],
        "passwordless_login"
    );

    let (status, body) = post_client(
        &app,
        "/auth/passwordless/login/send",
        json!({"email": address}),
    )
    .await;
    assert_eq!((status, &body), (StatusCode::OK, &body_success()));
    let code = latest_code(&app, address).await;
    let (status, body) = post_client(
        &app,
        "/auth/passwordless/login",
        json!({"email": address, "passwordlessToken": code}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["member"]["id"], member["id"]);
    let second = token(&body["data"]);
    assert_ne!(first, second);
    let (status, me) = send_ms(as_member(&app, &second, Method::GET, "/member")).await;
    assert_eq!((status, &me["data"]["id"]), (StatusCode::OK, &member["id"]));
    // Used once.
    let (status, body) = post_client(
        &app,
        "/auth/passwordless/login",
        json!({"email": address, "passwordlessToken": code}),
    )
    .await;
    assert_client_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid-passwordless-login-code",
    );
}

fn body_success() -> Value {
    json!({"data": {"success": true}})
}

async fn five_wrong_codes_kill_a_code(app: Arc<TestApp>) {
    signup(&app, "guessed@example.com").await;
    let (status, _) = post_client(
        &app,
        "/auth/passwordless/login/send",
        json!({"email": "guessed@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let code = latest_code(&app, "guessed@example.com").await;
    let wrong: u32 = (code.parse::<u32>().unwrap() + 1) % 1_000_000;
    for _ in 0..5 {
        let (status, body) = post_client(
            &app,
            "/auth/passwordless/login",
            json!({"email": "guessed@example.com", "passwordlessToken": format!("{wrong:06}")}),
        )
        .await;
        assert_client_error(
            status,
            &body,
            StatusCode::BAD_REQUEST,
            "invalid-passwordless-login-code",
        );
    }
    let (status, body) = post_client(
        &app,
        "/auth/passwordless/login",
        json!({"email": "guessed@example.com", "passwordlessToken": code}),
    )
    .await;
    assert_client_error(
        status,
        &body,
        StatusCode::BAD_REQUEST,
        "invalid-passwordless-login-code",
    );
}

async fn sends_are_limited_per_address_whoever_it_is(app: Arc<TestApp>) {
    signup(&app, "busy@example.com").await;
    for address in ["busy@example.com", "ghost@example.com"] {
        let (status, _) = post_client(
            &app,
            "/auth/send-reset-password-email",
            json!({"email": address}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (status, headers, body) = send_raw(
            client(
                &app,
                &app.publishable_key,
                Method::POST,
                "/auth/send-reset-password-email",
            )
            .json(&json!({"email": address})),
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{address}: {body}");
        let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        // Another kind of email to the same address is not held back by this one.
        let (status, _) = post_client(
            &app,
            "/auth/passwordless/login/send",
            json!({"email": address}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{address}");
    }
    assert_eq!(
        emails_to(&app, &app.key, "busy@example.com").await.len(),
        2,
        "one reset and one login code"
    );
}

async fn a_verification_link_verifies_once(app: Arc<TestApp>) {
    let member = signup(&app, "verify@example.com").await;
    let member_id = member["member"]["id"].as_str().unwrap().to_owned();
    assert_eq!(member["member"]["verified"], false);
    let session = token(&member);
    let (status, body) = send_ms(
        as_member(
            &app,
            &session,
            Method::POST,
            "/auth/send-email-verification",
        )
        .json(&json!({"origin_domain": "http://localhost:3000"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = send_ms(client(
        &app,
        &app.publishable_key,
        Method::POST,
        "/auth/send-email-verification",
    ))
    .await;
    assert_client_error(status, &body, StatusCode::UNAUTHORIZED, "login-required");

    let email = emails_to(&app, &app.key, "verify@example.com").await[0].clone();
    assert_eq!(email["kind"], "email_verification");
    let link = link_in(email["text"].as_str().unwrap());
    assert!(
        link.starts_with(&format!(
            "{}/memberstack/client/auth/verify-email?",
            app.base
        )),
        "{link}"
    );
    let events_before = app.event_count().await;
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("verified"));
    let (_, found) = app.get(&format!("/v1/members/{member_id}")).await;
    assert_eq!(found["verified"], true, "{found}");
    assert!(app.event_count().await > events_before, "member.updated");

    let again = app.client.get(&link).send().await.unwrap();
    assert_eq!(
        again.status(),
        StatusCode::BAD_REQUEST,
        "a link is good once"
    );
    let forged = app
        .client
        .get(format!("{}x", &link[..link.len() - 1]))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::BAD_REQUEST);

    // With a verifyRedirectUrl, the browser is sent there.
    let (status, body) = app
        .patch(
            "/v1/app",
            json!({"verifyRedirectUrl": "https://example.com/welcome"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["settings"]["verifyRedirectUrl"],
        "https://example.com/welcome"
    );
    let (status, _) = app
        .post(
            &format!("/v1/members/{member_id}/send-verification-email"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let email = emails_to(&app, &app.key, "verify@example.com").await[0].clone();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let moved = no_redirects
        .get(link_in(email["text"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status(), StatusCode::SEE_OTHER);
    assert_eq!(moved.headers()["location"], "https://example.com/welcome");
}

async fn a_new_address_is_unverified_and_the_old_one_is_told(app: Arc<TestApp>) {
    let member = app.create_member("old@example.com").await;
    let member_id = id(&member).to_owned();
    let (status, _) = app
        .patch(
            &format!("/v1/members/{member_id}"),
            json!({"verified": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    app.create_member("taken@example.com").await;

    // A change that fails writes no email.
    let (status, _) = app
        .patch(
            &format!("/v1/members/{member_id}"),
            json!({"email": "taken@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(emails_to(&app, &app.key, "old@example.com")
        .await
        .is_empty());

    let (status, body) = app
        .patch(
            &format!("/v1/members/{member_id}"),
            json!({"email": "new@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["verified"], false, "{body}");
    let told = emails_to(&app, &app.key, "old@example.com").await;
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0]["kind"], "email_changed");
    let text = told[0]["text"].as_str().unwrap();
    assert!(
        text.contains("old@example.com") && text.contains("new@example.com"),
        "{text}"
    );
}

async fn servers_send_members_their_emails(app: Arc<TestApp>) {
    let member = app.create_member("served@example.com").await;
    let member_id = id(&member).to_owned();
    let (status, body) = app
        .post(
            &format!("/v1/members/{member_id}/send-password-reset-email"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let email_id = body["emailId"].as_str().unwrap().to_owned();
    let (status, email) = app.get(&format!("/v1/emails/{email_id}")).await;
    assert_eq!(status, StatusCode::OK, "{email}");
    assert_eq!(email["to"], "served@example.com");
    assert!(
        six_digits(email["text"].as_str().unwrap()).is_some(),
        "{email}"
    );

    // Another app's key and another environment's see none of it.
    let (status, _) = send(app.request_as(
        &app.other_app_key,
        Method::GET,
        &format!("/v1/emails/{email_id}"),
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(app.request_as(
        &app.live_key,
        Method::POST,
        &format!("/v1/members/{member_id}/send-password-reset-email"),
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(emails_to(&app, &app.live_key, "served@example.com")
        .await
        .is_empty());

    // The sender marks it kept, not sent, and says why.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, email) = app.get(&format!("/v1/emails/{email_id}")).await;
        if email["state"] == "not_sent" {
            assert_eq!(email["stateReason"], "no SMTP server configured");
            assert_eq!(email["attempts"], 0);
            break;
        }
        assert_eq!(email["state"], "queued", "{email}");
        assert!(Instant::now() < deadline, "never marked: {email}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn templates_are_the_environments_own_and_checked(app: Arc<TestApp>) {
    let (status, listed) = app.get("/v1/email-templates").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"].as_array().unwrap().len(), 5);
    let (status, default) = app.get("/v1/email-templates/password_reset").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(default["custom"], false);
    assert!(
        default["text"].as_str().unwrap().contains("{{ code }}"),
        "{default}"
    );

    let (status, body) = send(
        app.request(Method::PUT, "/v1/email-templates/password_reset")
            .json(&json!({"subject": "Your code", "text": "{{ code }}", "html": "<p>\n{% if code %}\n{{ code }"})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "html", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 3"),
        "{body}"
    );
    let (status, body) = send(
        app.request(Method::PUT, "/v1/email-templates/no_such_kind")
            .json(&json!({"subject": "x", "text": "x", "html": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    let (status, body) = send(
        app.request(Method::PUT, "/v1/email-templates/password_reset")
            .json(&json!({
                "subject": "Reset for {{ member.customFields.name }}",
                "text": "Hello {{ member.customFields.name }}, your code: {{ code }}",
                "html": "<p>Hello {{ member.customFields.name }}, your code: <b>{{ code }}</b></p>",
            })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["custom"], true);

    let name = "<script>alert(\"x\")</script> & Bob";
    let (status, _) = send_ms(
        client(&app, &app.publishable_key, Method::POST, "/auth/signup").json(&json!({
            "email": "escaped@example.com", "password": PASSWORD, "customFields": {"name": name}
        })),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    post_client(
        &app,
        "/auth/send-reset-password-email",
        json!({"email": "escaped@example.com"}),
    )
    .await;
    let email = emails_to(&app, &app.key, "escaped@example.com").await[0].clone();
    let html = email["html"].as_str().unwrap();
    assert!(!html.contains("<script>"), "{html}");
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(email["text"].as_str().unwrap().contains(name), "{email}");
    assert!(email["subject"]
        .as_str()
        .unwrap()
        .starts_with("Reset for <script>"));

    // The live environment still has the built-in template; going back to it works.
    let (_, live) = send(app.request_as(
        &app.live_key,
        Method::GET,
        "/v1/email-templates/password_reset",
    ))
    .await;
    assert_eq!(live["custom"], false, "{live}");
    let (status, reset) = app.delete("/v1/email-templates/password_reset").await;
    assert_eq!((status, &reset["custom"]), (StatusCode::OK, &json!(false)));
}

async fn an_unknown_address_is_answered_in_about_the_same_time(app: Arc<TestApp>) {
    const TRIES: usize = 7;
    for i in 0..TRIES {
        signup(&app, &format!("timed{i}@example.com")).await;
    }
    let mut known = Duration::MAX;
    let mut unknown = Duration::MAX;
    for i in 0..TRIES {
        for (address, fastest) in [
            (format!("timed{i}@example.com"), &mut known),
            (format!("untimed{i}@example.com"), &mut unknown),
        ] {
            let started = Instant::now();
            let (status, _) = post_client(
                &app,
                "/auth/send-reset-password-email",
                json!({"email": address}),
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            *fastest = (*fastest).min(started.elapsed());
        }
    }
    eprintln!("reset email sends, fastest of {TRIES}: a member's address {known:?}, an unknown one {unknown:?}");
    // A write of an email and a code is all that differs: far below what a person or a
    // script across a network could tell apart from a slow machine.
    assert!(
        known < unknown + Duration::from_millis(50) && unknown < known + Duration::from_millis(50),
        "{known:?} against {unknown:?}"
    );
}

crate::both_backends!(crate::member_emails::email_config() =>
    a_forgotten_password_is_reset_with_the_emailed_code,
    expired_codes_are_refused,
    passwordless_sign_up_and_login_take_the_emailed_codes,
    five_wrong_codes_kill_a_code,
    sends_are_limited_per_address_whoever_it_is,
    a_verification_link_verifies_once,
    a_new_address_is_unverified_and_the_old_one_is_told,
    servers_send_members_their_emails,
    templates_are_the_environments_own_and_checked,
    an_unknown_address_is_answered_in_about_the_same_time,
);
