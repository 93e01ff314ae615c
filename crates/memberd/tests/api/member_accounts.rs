//! Members' own accounts through the member-facing API (`/memberstack/client/`): sign-up and
//! login, and the environment's settings (`/v1/app`). The helpers here serve the other
//! `member_*` modules too.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};

use crate::support::{assert_error, assert_ms_error, id, send, send_ms, TestApp};

pub const PASSWORD: &str = "correct horse battery";

/// A request to the member-facing API with a publishable key, as the SDK sends it.
pub fn client(app: &TestApp, pk: &str, method: Method, path: &str) -> RequestBuilder {
    app.client
        .request(method, app.url(&format!("/memberstack/client{path}")))
        .header("X-API-Key", pk)
}

/// A request of the sandbox member whose token this is.
pub fn as_member(app: &TestApp, token: &str, method: Method, path: &str) -> RequestBuilder {
    client(app, &app.publishable_key, method, path).bearer_auth(token)
}

/// An HTTP client whose requests come from `127.0.0.<last>`: another client IP on the
/// loopback network, for the per-address limits.
pub fn client_from(last: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .build()
        .unwrap()
}

/// Sends a request and keeps the headers too.
pub async fn send_raw(request: RequestBuilder) -> (StatusCode, HeaderMap, String) {
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

pub async fn signup_as(app: &TestApp, pk: &str, body: Value) -> (StatusCode, Value) {
    send_ms(client(app, pk, Method::POST, "/auth/signup").json(&body)).await
}

/// Signs a sandbox member up with [`PASSWORD`]; the `data` of the answer.
pub async fn signup(app: &TestApp, email: &str) -> Value {
    let answer = signup_as(
        app,
        &app.publishable_key,
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    answer.1["data"].clone()
}

pub async fn login_as(app: &TestApp, pk: &str, email: &str, password: &str) -> (StatusCode, Value) {
    send_ms(
        client(app, pk, Method::POST, "/auth/login")
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

/// Logs a sandbox member in; the new token.
pub async fn login(app: &TestApp, email: &str, password: &str) -> String {
    let (status, body) = login_as(app, &app.publishable_key, email, password).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    token(&body["data"])
}

/// The access token of a sign-up's or login's `data`.
pub fn token(data: &Value) -> String {
    data["tokens"]["accessToken"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

/// A native API call with another key than the default one.
pub async fn get_as(app: &TestApp, key: &str, path: &str) -> (StatusCode, Value) {
    send(app.request_as(key, Method::GET, path)).await
}

pub fn now_millis() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

async fn signup_and_login_work_over_http(app: Arc<TestApp>) {
    let before = now_millis();
    let (status, body) = signup_as(
        &app,
        &app.publishable_key,
        json!({"email": "Ann@Example.com", "password": PASSWORD, "customFields": {"firstName": "Ann"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let data = &body["data"];
    let member = &data["member"];
    let member_id = id(member).to_owned();
    assert!(member_id.starts_with("mem_"), "{member}");
    assert_eq!(member["auth"]["email"], "ann@example.com");
    assert_eq!(member["auth"]["hasPassword"], true);
    assert_eq!(member["customFields"]["firstName"], "Ann");
    assert!(member["lastLogin"].is_string(), "{member}");
    assert!(
        !body.to_string().contains("argon2") && !body.to_string().contains(PASSWORD),
        "no password or hash in {body}"
    );
    let signed_up = token(data);
    assert_eq!(signed_up.split('.').count(), 3, "a JWT: {signed_up}");
    assert_eq!(data["tokens"]["type"], "bearer");
    let expires = data["tokens"]["expires"].as_i64().expect("expires in ms");
    let fourteen_days = 14 * 86_400 * 1000;
    assert!(
        (before + fourteen_days - 60_000..=now_millis() + fourteen_days).contains(&expires),
        "the default session lasts 14 days, in milliseconds: {expires} (now {before})"
    );

    // Recorded like any new member, and seen by the operator's key.
    let (_, events) = app.get("/v1/events?types=member.created").await;
    let created: Vec<&Value> = events["data"].as_array().unwrap().iter().collect();
    assert_eq!(created.len(), 1, "{events}");
    assert_eq!(created[0]["type"], "member.created");
    assert!(
        created[0]["data"].to_string().contains(&member_id),
        "{events}"
    );
    let (status, stored) = app.get(&format!("/v1/members/{member_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(stored["lastLogin"].is_string(), "{stored}");
    let first_login = stored["lastLogin"].as_str().unwrap().to_owned();

    // The address is matched whatever its case; every login is a session of its own.
    let logged_in = login(&app, "ANN@example.com", PASSWORD).await;
    assert_ne!(logged_in, signed_up);
    for t in [&signed_up, &logged_in] {
        let (status, current) = send_ms(as_member(&app, t, Method::GET, "/member")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(current["data"]["id"], member_id.as_str(), "{current}");
        assert_eq!(current["data"]["auth"]["email"], "ann@example.com");
    }
    let (_, stored) = app.get(&format!("/v1/members/{member_id}")).await;
    assert!(
        stored["lastLogin"].as_str().unwrap() > first_login.as_str(),
        "a login moves lastLogin: {stored}"
    );
    let (_, sessions) = app.get(&format!("/v1/members/{member_id}/sessions")).await;
    assert_eq!(sessions["data"].as_array().unwrap().len(), 2, "{sessions}");

    // Without a token: no member, and calls that need one say so.
    let (status, nobody) =
        send_ms(client(&app, &app.publishable_key, Method::GET, "/member")).await;
    assert_eq!((status, &nobody), (StatusCode::OK, &json!({"data": null})));
    let refused =
        send_ms(client(&app, &app.publishable_key, Method::POST, "/member").json(&json!({}))).await;
    assert_ms_error(&refused, StatusCode::UNAUTHORIZED, "login-required");
}

async fn signups_are_checked(app: Arc<TestApp>) {
    let pk = app.publishable_key.clone();
    signup(&app, "ann@example.com").await;
    let free = app
        .create_plan(json!({"name": "Free", "permissions": ["read"]}))
        .await;
    let paid = app
        .create_plan(json!({"name": "Pro", "prices": [{"amount": 900, "currency": "EUR", "interval": "MONTH"}]}))
        .await;
    let members = app.member_count().await;

    let cases = [
        (
            json!({"email": "ANN@example.com", "password": PASSWORD}),
            StatusCode::CONFLICT,
            "email-already-in-use",
        ),
        (
            json!({"email": "not an address", "password": PASSWORD}),
            StatusCode::BAD_REQUEST,
            "invalid-email",
        ),
        (
            json!({"email": "bob@example.com", "password": "seven77"}),
            StatusCode::BAD_REQUEST,
            "invalid-password-too-short",
        ),
        (
            json!({"email": "bob@example.com"}),
            StatusCode::BAD_REQUEST,
            "required-field-missing",
        ),
        (
            json!({"email": "bob@example.com", "password": PASSWORD, "plans": [{"planId": id(&paid)}]}),
            StatusCode::BAD_REQUEST,
            "plan-not-free",
        ),
    ];
    for (body, want_status, want_code) in cases {
        let answer = signup_as(&app, &pk, body.clone()).await;
        assert_ms_error(&answer, want_status, want_code);
    }
    assert_eq!(
        app.member_count().await,
        members,
        "no refused sign-up wrote"
    );

    // With a free plan, the member starts on it.
    let (status, body) = signup_as(
        &app,
        &pk,
        json!({"email": "bob@example.com", "password": PASSWORD, "plans": [{"planId": id(&free)}]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let connections = &body["data"]["member"]["planConnections"];
    assert_eq!(connections[0]["planId"], id(&free), "{body}");
    assert_eq!(connections[0]["active"], true);
    assert_eq!(body["data"]["member"]["permissions"], json!(["read"]));

    // The key is checked before anything else.
    let body = json!({"email": "carl@example.com", "password": PASSWORD});
    let no_key = send_ms(
        app.client
            .post(app.url("/memberstack/client/auth/signup"))
            .json(&body),
    )
    .await;
    assert_ms_error(&no_key, StatusCode::UNAUTHORIZED, "missing-public-key");
    let unknown = signup_as(&app, "pk_sb_0000000000000000000000000000000a", body.clone()).await;
    assert_ms_error(&unknown, StatusCode::UNAUTHORIZED, "invalid-public-key");
    let secret = signup_as(&app, &app.key.clone(), body.clone()).await;
    assert_ms_error(&secret, StatusCode::UNAUTHORIZED, "invalid-public-key");
    let (_, other_app) = get_as(&app, &app.other_app_key, "/v1/app").await;
    let wrong_app = send_ms(
        client(&app, &pk, Method::POST, "/auth/signup")
            .header("X-APP-ID", other_app["id"].as_str().unwrap())
            .json(&body),
    )
    .await;
    assert_ms_error(&wrong_app, StatusCode::UNAUTHORIZED, "app-not-found");
    let right_app = send_ms(
        client(&app, &pk, Method::POST, "/auth/login")
            .header("X-APP-ID", &app.app_id)
            .json(&json!({"email": "bob@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(right_app.0, StatusCode::OK, "{}", right_app.1);

    // What comes later says so.
    let later = send_ms(
        client(
            &app,
            &pk,
            Method::POST,
            "/member/plans/create-checkout-session",
        )
        .json(&json!({"priceId": "prc_x"})),
    )
    .await;
    assert_ms_error(&later, StatusCode::BAD_REQUEST, "feature-not-available");
    assert_eq!(app.member_count().await, members + 1);
}

async fn each_key_sees_its_own_app_and_environment(app: Arc<TestApp>) {
    let (status, sandbox) = app.get("/v1/app").await;
    assert_eq!(status, StatusCode::OK, "{sandbox}");
    assert_eq!(sandbox["id"], app.app_id.as_str());
    assert_eq!(sandbox["env"], "sandbox");
    assert_eq!(sandbox["publishableKey"], app.publishable_key.as_str());
    assert_eq!(
        sandbox["settings"],
        json!({
            "allowedOrigins": ["http://localhost:*", "http://127.0.0.1:*"],
            "allowedOriginsDefault": true,
            "signupEnabled": true,
            "sessionLifetimeDays": 14,
            "passwordMinLength": 8,
            "emailFromName": null,
            "emailFromAddress": null,
            "verifyRedirectUrl": null,
        })
    );
    let (_, live) = get_as(&app, &app.live_key, "/v1/app").await;
    assert_eq!(live["id"], app.app_id.as_str());
    assert_eq!(live["env"], "live");
    assert_eq!(live["publishableKey"], app.live_publishable_key.as_str());
    assert_eq!(live["settings"]["allowedOrigins"], json!([]));
    let (_, other) = get_as(&app, &app.other_app_key, "/v1/app").await;
    assert_ne!(other["id"], app.app_id.as_str());
    assert_eq!(other["env"], "sandbox");
    assert_eq!(other["publishableKey"], app.other_publishable_key.as_str());
    assert_eq!(other["name"], "Second");
}

async fn settings_are_checked_and_take_effect(app: Arc<TestApp>) {
    let bad = [
        (json!({"sessionLifetimeDays": 0}), "sessionLifetimeDays"),
        (json!({"sessionLifetimeDays": 366}), "sessionLifetimeDays"),
        (json!({"passwordMinLength": 5}), "passwordMinLength"),
        (json!({"passwordMinLength": 129}), "passwordMinLength"),
        (
            json!({"allowedOrigins": ["shop.example"]}),
            "allowedOrigins[0]",
        ),
        (
            json!({"allowedOrigins": ["https://shop.example", "https://shop.example/path"]}),
            "allowedOrigins[1]",
        ),
        (json!({"signupEnabled": "no"}), "signupEnabled"),
        // One bad field and the good one is not written either.
        (
            json!({"signupEnabled": false, "sessionLifetimeDays": -1}),
            "sessionLifetimeDays",
        ),
    ];
    for (body, field) in bad {
        let answer = app.patch("/v1/app", body.clone()).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, Some(field));
    }
    let (_, now) = app.get("/v1/app").await;
    assert_eq!(now["settings"]["signupEnabled"], true, "{now}");
    assert_eq!(now["settings"]["allowedOriginsDefault"], true, "{now}");

    let pk = app.publishable_key.clone();
    signup(&app, "ann@example.com").await;
    let (status, changed) = app
        .patch(
            "/v1/app",
            json!({"signupEnabled": false, "passwordMinLength": 12}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["settings"]["signupEnabled"], false);
    assert_eq!(changed["settings"]["passwordMinLength"], 12);
    let closed = signup_as(
        &app,
        &pk,
        json!({"email": "bob@example.com", "password": "a long enough one"}),
    )
    .await;
    assert_ms_error(&closed, StatusCode::FORBIDDEN, "signup-disabled");
    // Members who have an account still log in; live is untouched.
    let token = login(&app, "ann@example.com", PASSWORD).await;
    let (status, body) = signup_as(
        &app,
        &app.live_publishable_key,
        json!({"email": "bob@example.com", "password": "ten chars!"}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "live keeps its own settings: {body}"
    );

    app.patch("/v1/app", json!({"signupEnabled": true})).await;
    let short = signup_as(
        &app,
        &pk,
        json!({"email": "bob@example.com", "password": "ten chars!"}),
    )
    .await;
    assert_ms_error(
        &short,
        StatusCode::BAD_REQUEST,
        "invalid-password-too-short",
    );
    let change = send_ms(
        as_member(&app, &token, Method::POST, "/member-auth")
            .json(&json!({"oldPassword": PASSWORD, "newPassword": "ten chars!"})),
    )
    .await;
    assert_ms_error(
        &change,
        StatusCode::BAD_REQUEST,
        "invalid-password-too-short",
    );
    let (status, body) = signup_as(
        &app,
        &pk,
        json!({"email": "bob@example.com", "password": "twelve chars"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A shorter session lifetime applies to the sessions opened after it.
    app.patch("/v1/app", json!({"sessionLifetimeDays": 1}))
        .await;
    let (status, body) = login_as(&app, &pk, "bob@example.com", "twelve chars").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expires = body["data"]["tokens"]["expires"].as_i64().unwrap();
    let day = 86_400_000;
    assert!(
        (now_millis() + day - 60_000..=now_millis() + day).contains(&expires),
        "{expires}"
    );

    // null goes back to the environment's default origins.
    let (_, set) = app
        .patch(
            "/v1/app",
            json!({"allowedOrigins": ["https://shop.example"]}),
        )
        .await;
    assert_eq!(
        set["settings"]["allowedOrigins"],
        json!(["https://shop.example"])
    );
    assert_eq!(set["settings"]["allowedOriginsDefault"], false);
    let (_, reset) = app.patch("/v1/app", json!({"allowedOrigins": null})).await;
    assert_eq!(reset["settings"]["allowedOriginsDefault"], true);
    assert_eq!(
        reset["settings"]["allowedOrigins"],
        json!(["http://localhost:*", "http://127.0.0.1:*"])
    );
}

crate::both_backends!(
    signup_and_login_work_over_http,
    signups_are_checked,
    each_key_sees_its_own_app_and_environment,
    settings_are_checked_and_take_effect,
);
