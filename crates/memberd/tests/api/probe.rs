//! What an outside probe found, each on every face it reaches: NUL in text, look-alike emails,
//! two keys at once, an app whose API access is off, internal webhook targets, times outside
//! years 1 to 9999, a `json` that is not an object; and what schemathesis found after it. Each
//! is a 4xx that names the field, with nothing written.

use std::sync::Arc;

use memberd_server::ops;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{assert_error, id, send, test_config, TestApp};

const SHOP: &str = "probe-store.myshopify.com";

async fn store_key(app: &TestApp) -> String {
    let (_, keys) = ops::create_app(&app.store, "Probe Store", Some(SHOP.into()))
        .await
        .unwrap();
    keys.into_iter()
        .find(|k| k.key.env == memberd_core::Environment::Sandbox)
        .unwrap()
        .secret
}

fn appstle(app: &TestApp, key: &str, method: Method, path: &str) -> reqwest::RequestBuilder {
    app.client
        .request(method, app.url(&format!("/api/external/v2/{path}")))
        .header("X-API-Key", key)
}

/// The status and the named field of a refusal, whatever the face's envelope.
async fn refusal(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body)
}

fn names(body: &Value, field: &str) -> bool {
    body.to_string().contains(&format!("\"{field}\""))
}

async fn nul_is_refused_on_every_face(app: Arc<TestApp>) {
    let plan = app.create_plan(json!({"name": "Gold"})).await;
    let key = store_key(&app).await;
    let events = app.event_count().await;

    let (status, body) = app
        .post("/v1/plans", json!({"name": "P", "description": "a\u{0}b"}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "description");
    let (status, body) = app
        .patch(
            &format!("/v1/plans/{}", id(&plan)),
            json!({"description": "a\u{0}b"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "description");
    let (status, body) = app
        .post(
            "/v1/members",
            json!({"email": "n@example.com", "metaData": {"k": "v\u{0}"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "metaData.k");
    let response = send(app.request(Method::GET, "/v1/members?email=a%00b@example.com")).await;
    assert_error(&response, StatusCode::BAD_REQUEST, Some("email"));
    let response = send(app.request(Method::GET, "/v1/members/a%00b@example.com")).await;
    assert_error(&response, StatusCode::BAD_REQUEST, Some("path"));

    for path in [
        format!("membership-status?shop={SHOP}&customerId=a%00b"),
        format!("membership-contracts?shop={SHOP}&customerId=a%00b"),
    ] {
        let (status, body) = refusal(appstle(&app, &key, Method::GET, &path)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(names(&body, "customerId"), "{body}");
    }
    let (status, body) = refusal(
        appstle(
            &app,
            &key,
            Method::POST,
            &format!("membership-contracts?shop={SHOP}"),
        )
        .json(&json!({"customerId": "a\u{0}b", "planId": id(&plan)})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(names(&body, "customerId"), "{body}");
    let (status, body) = refusal(
        app.ms(Method::POST, "/memberstack/members")
            .json(&json!({"email": "n@example.com", "customFields": {"x\u{0}": "v"}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(app.event_count().await, events, "nothing written");
}

async fn look_alike_emails_are_refused_on_every_face(app: Arc<TestApp>) {
    app.create_member("zwj@example.com").await;
    let members = app.member_count().await;
    for email in [
        "zw\u{200b}j@example.com",
        "admin\u{200d}@example.com",
        "\u{feff}admin@example.com",
        "ad\u{202e}nimda@example.com",
    ] {
        let response = send(
            app.request(Method::POST, "/v1/members")
                .json(&json!({"email": email})),
        )
        .await;
        assert_error(&response, StatusCode::BAD_REQUEST, Some("email"));
        for path in ["/memberstack/members", "/memberstack/v1/members"] {
            let (status, body) = refusal(
                app.ms(Method::POST, path)
                    .json(&json!({"email": email, "password": "a-long-password"})),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {email:?}: {body}");
        }
    }
    assert_eq!(app.member_count().await, members, "none created");
}

async fn two_keys_at_once(app: Arc<TestApp>) {
    let url = app.url("/v1/members");
    let get = || app.client.get(&url);
    // An empty X-API-KEY is no key: the Bearer key is used.
    let (status, _) = send(get().header("X-API-KEY", "").bearer_auth(&app.key)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(get().header("X-API-KEY", "  ").bearer_auth(&app.key)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = send(get().header("X-API-KEY", &app.key).bearer_auth(&app.key)).await;
    assert_eq!(status, StatusCode::OK, "the same key twice");
    let response = send(
        get()
            .header("X-API-KEY", "sk_sb_wrong")
            .bearer_auth(&app.key),
    )
    .await;
    assert_error(&response, StatusCode::BAD_REQUEST, Some("X-API-KEY"));
    assert_eq!(response.1["error"]["code"], "conflicting_api_keys");
    let response = send(get().header("X-API-KEY", "")).await;
    assert_error(&response, StatusCode::UNAUTHORIZED, None);
}

async fn api_access_off_holds_on_every_face(app: Arc<TestApp>) {
    let key = store_key(&app).await;
    let apps = app.store.list_apps().await.unwrap();
    let shop = apps
        .iter()
        .find(|a| a.shop_domain.as_deref() == Some(SHOP))
        .unwrap();
    assert!(app.store.set_api_access(&shop.id, false).await.unwrap());
    let partner = ops::create_partner_key(&app.store, "Probe partner")
        .await
        .unwrap()
        .secret;
    let members = app.member_count().await;
    let calls = [
        (Method::GET, "/v1/members".to_owned()),
        (Method::GET, "/v1/plans".to_owned()),
        (Method::GET, "/memberstack/members".to_owned()),
        (Method::GET, "/memberstack/v1/members".to_owned()),
        (
            Method::GET,
            format!("/api/external/v2/membership-plans?shop={SHOP}"),
        ),
        (Method::POST, "/v1/members".to_owned()),
    ];
    for (method, path) in &calls {
        let request = || {
            let r = app
                .client
                .request(method.clone(), app.url(path))
                .header("X-API-KEY", &key);
            if *method == Method::POST {
                r.json(&json!({"email": "direct@example.com"}))
            } else {
                r
            }
        };
        let (status, body) = refusal(request()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {body}");
        assert!(body.to_string().contains("api_access_required"), "{body}");
        let (status, body) = refusal(request().header("X-App-Key", "not-a-partner")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}: {body}");
        let (status, body) = refusal(request().header("X-App-Key", &partner)).await;
        assert!(
            status.is_success(),
            "{method} {path} with a partner key: {body}"
        );
    }
    assert_eq!(
        app.member_count().await,
        members,
        "the sandbox app is not the store"
    );
}

async fn internal_webhook_targets_are_refused_at_registration(app: Arc<TestApp>) {
    let endpoint = app
        .post(
            "/v1/webhook-endpoints",
            json!({"url": "https://hooks.example.com/in"}),
        )
        .await;
    assert_eq!(endpoint.0, StatusCode::CREATED, "{}", endpoint.1);
    for url in [
        "http://127.0.0.1:9/x",
        "http://198.18.0.1/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
        "http://[::ffff:0:7f00:1]/",
        "http://[::127.0.0.1]/",
        "http://[64:ff9b::a00:1]/",
        "http://[2002:7f00:1::]/",
        "http://[fec0::1]/",
        "http://[ff02::1]/",
        "http://localhost./",
    ] {
        let (status, body) = app.post("/v1/webhook-endpoints", json!({"url": url})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
        assert_eq!(body["error"]["param"], "url", "{body}");
        let (status, body) = app
            .patch(
                &format!("/v1/webhook-endpoints/{}", id(&endpoint.1)),
                json!({"url": url}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {body}");
    }
}

async fn times_outside_years_1_to_9999_and_json_that_is_no_object(app: Arc<TestApp>) {
    for time in ["0000-01-01T00:00:00Z", "-0001-01-01", "10000-01-01"] {
        let (status, body) = app
            .post("/v1/test-clocks", json!({"frozenTime": time}))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{time}: {body}");
        assert_eq!(body["error"]["param"], "frozenTime");
    }
    let (status, body) = app
        .post("/v1/test-clocks", json!({"frozenTime": "0001-01-01"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["frozenTime"], "0001-01-01T00:00:00.000Z");

    let (status, body) = app
        .post(
            "/v1/members",
            json!({"email": "j@example.com", "json": "notobj"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "json");
    let member = app.create_member("k@example.com").await;
    let path = format!("/v1/members/{}", id(&member));
    let (status, body) = app.patch(&path, json!({"json": [1]})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "json");
    let (status, body) = app.patch(&path, json!({"json": {"a": [1]}})).await;
    assert_eq!(
        (status, &body["json"]),
        (StatusCode::OK, &json!({"a": [1]}))
    );
    let (status, body) = app.patch(&path, json!({"json": null})).await;
    assert_eq!((status, &body["json"]), (StatusCode::OK, &Value::Null));
}

/// A query the server cannot read is refused in the envelope of its face, naming the
/// parameter (axum's own answer was plain text).
async fn unreadable_queries_are_refused_in_the_faces_envelope(app: Arc<TestApp>) {
    let key = store_key(&app).await;
    let response = send(app.request(Method::GET, "/v1/members?limit=1&limit=2")).await;
    assert_error(&response, StatusCode::BAD_REQUEST, Some("limit"));
    let (status, body) =
        crate::support::send_ms(app.ms(Method::GET, "/memberstack/members?order=ASC&order=DESC"))
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("order"));
    let (status, body) = refusal(appstle(
        &app,
        &key,
        Method::GET,
        &format!("membership-contracts?shop={SHOP}&status=ACTIVE&status=PAUSED"),
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["field"], "status", "{body}");
}

/// A replay is the answer as it was, Content-Type included: Memberstack's remove-plan answers
/// `OK` in plain text.
async fn a_replay_keeps_its_content_type(app: Arc<TestApp>) {
    let plan = app.create_plan(json!({"name": "Free"})).await;
    let member = app.create_member("plain@example.com").await;
    app.connect(&member, json!({"planId": id(&plan)})).await;
    let remove = || {
        app.ms(
            Method::POST,
            &format!("/memberstack/members/{}/remove-plan", id(&member)),
        )
        .header("Idempotency-Key", "remove-once")
        .json(&json!({"planId": id(&plan)}))
    };
    for round in ["first", "replay"] {
        let response = remove().send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{round}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/plain"),
            "{round}: {content_type}"
        );
        if round == "replay" {
            assert_eq!(response.headers()["idempotent-replayed"], "true");
        }
        assert_eq!(response.text().await.unwrap(), "OK", "{round}");
    }
}

fn guarded_config() -> memberd_server::Config {
    let mut config = test_config();
    config.webhooks.allow_private_targets = false;
    config
}

crate::both_backends!(
    nul_is_refused_on_every_face,
    look_alike_emails_are_refused_on_every_face,
    two_keys_at_once,
    api_access_off_holds_on_every_face,
    times_outside_years_1_to_9999_and_json_that_is_no_object,
    unreadable_queries_are_refused_in_the_faces_envelope,
    a_replay_keeps_its_content_type
);

mod guarded {
    crate::both_backends!(crate::probe::guarded_config() => internal_webhook_targets_are_refused_at_registration);
    use super::internal_webhook_targets_are_refused_at_registration;
}
