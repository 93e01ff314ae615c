//! The Memberstack 1.0 REST API at /memberstack/v1/, endpoint by endpoint (seed 001).

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::support::{assert_ms_error, id, send_ms, TestApp};

async fn post(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    send_ms(app.ms(Method::POST, path).json(&body)).await
}

async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    send_ms(app.ms(Method::GET, path)).await
}

fn keys(object: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = object
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

async fn v1_members_are_created_read_updated_listed_and_deleted(app: Arc<TestApp>) {
    let free = app.create_plan(json!({"name": "Free"})).await;
    let (status, ann) = post(
        &app,
        "/memberstack/v1/members",
        json!({
            "email": "Ann@Example.com", "password": "a fine password", "plan": id(&free),
            "customFields": {"userName": "ann", "avatar": "a.png"},
            "metaData": {"tier": "gold"}
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{ann}");
    assert_eq!(
        keys(&ann),
        [
            "createdAt",
            "customFields",
            "email",
            "id",
            "membership",
            "metaData"
        ]
    );
    assert_eq!(ann["email"], "ann@example.com");
    assert_eq!(ann["metaData"], json!({"tier": "gold"}));
    assert_eq!(
        ann["membership"],
        json!({
            "oneTime": false, "testMode": true, "status": "active", "plan": id(&free),
            "type": "free", "cancel_at_period_end": false, "current_period_end": null,
            "amount": 0, "customer": null, "card": null
        })
    );

    let (status, got) = get(&app, &format!("/memberstack/v1/members/{}", id(&ann))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, ann);

    // A member without plan or metaData: membership null, optional fields left out.
    let (_, bob) = post(
        &app,
        "/memberstack/v1/members",
        json!({"email": "bob@example.com"}),
    )
    .await;
    assert_eq!(keys(&bob), ["createdAt", "email", "id", "membership"]);
    assert_eq!(bob["membership"], json!(null));

    let (status, updated) = post(
        &app,
        &format!("/memberstack/v1/members/{}", id(&ann)),
        json!({"email": "ANN2@example.com", "metaData": {"score": "9"}, "password": "another long one"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["email"], "ann2@example.com");
    assert_eq!(updated["metaData"], json!({"tier": "gold", "score": "9"}));

    for i in 0..5 {
        post(
            &app,
            "/memberstack/v1/members",
            json!({"email": format!("m{i}@example.com")}),
        )
        .await;
    }
    let (status, all) = get(&app, "/memberstack/v1/members").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all.as_array().unwrap().len(), 7);
    assert_eq!(all[0]["id"], ann["id"], "oldest first");
    let (_, page2) = get(&app, "/memberstack/v1/members?limit=3&page=2").await;
    let emails: Vec<&str> = page2
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["m1@example.com", "m2@example.com", "m3@example.com"]
    );
    let (_, past_the_end) = get(&app, "/memberstack/v1/members?limit=3&page=9").await;
    assert_eq!(past_the_end, json!([]));

    let path = format!("/memberstack/v1/members/{}", id(&bob));
    let (status, deleted) = send_ms(app.ms(Method::DELETE, &path)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted, json!({"id": id(&bob), "deleted": true}));
    assert_ms_error(
        &get(&app, &path).await,
        StatusCode::NOT_FOUND,
        "member_not_found",
    );
    assert_ms_error(
        &send_ms(app.ms(Method::DELETE, &path)).await,
        StatusCode::NOT_FOUND,
        "member_not_found",
    );

    // The live key sees the live environment, where testMode is false.
    let (status, live) = send_ms(
        app.ms_as(&app.live_key, Method::POST, "/memberstack/v1/members")
            .json(&json!({"email": "live@example.com"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let live_plan = app
        .request_as(&app.live_key, Method::POST, "/v1/plans")
        .json(&json!({"name": "Live free"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    app.request_as(
        &app.live_key,
        Method::POST,
        &format!("/v1/members/{}/plan-connections", id(&live)),
    )
    .json(&json!({"planId": id(&live_plan)}))
    .send()
    .await
    .unwrap();
    let (_, live) = send_ms(app.ms_as(
        &app.live_key,
        Method::GET,
        &format!("/memberstack/v1/members/{}", id(&live)),
    ))
    .await;
    assert_eq!(live["membership"]["testMode"], false);
    assert_ms_error(
        &get(&app, &format!("/memberstack/v1/members/{}", id(&live))).await,
        StatusCode::NOT_FOUND,
        "member_not_found",
    );
}

async fn v1_membership_follows_the_plan_connection(app: Arc<TestApp>) {
    let pro = app
        .create_plan(json!({
            "name": "Pro",
            "prices": [{"amount": 2500, "currency": "USD", "interval": "MONTH", "trialDays": 7}]
        }))
        .await;
    let once = app
        .create_plan(json!({
            "name": "Lifetime",
            "prices": [{"amount": 9900, "currency": "USD", "interval": "ONETIME"}]
        }))
        .await;
    let member = app.create_member("ann@example.com").await;
    let connection = app.connect(&member, json!({"planId": id(&pro)})).await;
    app.patch(
        &format!("/v1/members/{}", id(&member)),
        json!({"stripeCustomerId": "cus_123"}),
    )
    .await;
    let path = format!("/memberstack/v1/members/{}", id(&member));
    let (_, got) = get(&app, &path).await;
    let membership = &got["membership"];
    assert_eq!(membership["status"], "trialing");
    assert_eq!(membership["type"], "paid");
    assert_eq!(membership["amount"], 2500);
    assert_eq!(membership["customer"], "cus_123");
    assert_eq!(got["stripeInfo"], json!({"customer": "cus_123"}));
    let period_end: i64 = membership["current_period_end"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let (_, native) = app
        .get(&format!("/v1/plan-connections/{}", id(&connection)))
        .await;
    let native_end =
        memberd_core::Timestamp::parse(native["currentPeriodEnd"].as_str().unwrap()).unwrap();
    assert_eq!(native_end.as_unix_millis() / 1000, period_end);

    app.post(
        &format!("/v1/plan-connections/{}/cancel", id(&connection)),
        json!({"atPeriodEnd": true}),
    )
    .await;
    let (_, got) = get(&app, &path).await;
    assert_eq!(got["membership"]["cancel_at_period_end"], true);
    app.post(
        &format!("/v1/plan-connections/{}/pause", id(&connection)),
        json!({}),
    )
    .await;
    let (_, got) = get(&app, &path).await;
    assert_eq!(got["membership"]["status"], "paused");
    app.post(
        &format!("/v1/plan-connections/{}/cancel", id(&connection)),
        json!({}),
    )
    .await;
    let (_, got) = get(&app, &path).await;
    assert_eq!(got["membership"]["status"], "canceled");

    app.attach_card(&member).await;
    app.connect(&member, json!({"planId": id(&once)})).await;
    let (_, got) = get(&app, &path).await;
    assert_eq!(
        got["membership"]["oneTime"], true,
        "the active connection is shown"
    );
    assert_eq!(got["membership"]["status"], "active");
}

fn many(n: usize, key_len: usize, value_len: usize) -> Map<String, Value> {
    (0..n)
        .map(|i| (format!("{i:0>key_len$}"), json!("v".repeat(value_len))))
        .collect()
}

async fn v1_refuses_bad_input_and_writes_nothing(app: Arc<TestApp>) {
    let paid = app
        .create_plan(json!({"name": "Pro", "prices": [{"amount": 100, "currency": "USD", "interval": "MONTH"}]}))
        .await;
    let ok = post(
        &app,
        "/memberstack/v1/members",
        json!({"email": "max@example.com", "metaData": many(50, 50, 500)}),
    )
    .await;
    assert_eq!(
        ok.0,
        StatusCode::CREATED,
        "the limits themselves are allowed"
    );
    post(
        &app,
        "/memberstack/v1/members",
        json!({"email": "taken@example.com"}),
    )
    .await;

    let cases = [
        (
            json!({"email": "a@example.com", "metaData": many(51, 2, 1)}),
            StatusCode::BAD_REQUEST,
            "meta_data_limit",
        ),
        (
            json!({"email": "a@example.com", "metaData": many(1, 51, 1)}),
            StatusCode::BAD_REQUEST,
            "meta_data_limit",
        ),
        (
            json!({"email": "a@example.com", "metaData": many(1, 5, 501)}),
            StatusCode::BAD_REQUEST,
            "meta_data_limit",
        ),
        (
            json!({"email": "a@example.com", "plan": id(&paid)}),
            StatusCode::BAD_REQUEST,
            "paid_plan",
        ),
        (
            json!({"email": "a@example.com", "plan": "pln_unknown"}),
            StatusCode::BAD_REQUEST,
            "unknown_plan",
        ),
        (
            json!({"email": "a@example.com", "plan": "gold"}),
            StatusCode::BAD_REQUEST,
            "invalid_id",
        ),
        (
            json!({"email": "TAKEN@example.com"}),
            StatusCode::CONFLICT,
            "already_exists",
        ),
        (
            json!({"email": "not-an-email"}),
            StatusCode::BAD_REQUEST,
            "invalid_email",
        ),
        (
            json!({"password": "long enough"}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
        (
            json!({"email": "a@example.com", "password": "short"}),
            StatusCode::BAD_REQUEST,
            "invalid_password",
        ),
        (
            json!({"email": "a@example.com", "metaData": "x"}),
            StatusCode::BAD_REQUEST,
            "invalid_field",
        ),
    ];
    for (body, status, code) in cases {
        let response = post(&app, "/memberstack/v1/members", body.clone()).await;
        assert_ms_error(&response, status, code);
    }
    let malformed = send_ms(
        app.ms(Method::POST, "/memberstack/v1/members")
            .header("content-type", "application/json")
            .body("{email: \"...\"}"),
    )
    .await;
    assert_ms_error(&malformed, StatusCode::BAD_REQUEST, "invalid_json");
    let (_, all) = get(&app, "/memberstack/v1/members").await;
    assert_eq!(all.as_array().unwrap().len(), 2, "nothing half-written");
    assert_eq!(app.event_count().await, 2);

    let max = &all[0];
    let over = post(
        &app,
        &format!("/memberstack/v1/members/{}", id(max)),
        json!({"metaData": {"one-more": "x"}, "email": "changed@example.com"}),
    )
    .await;
    assert_ms_error(&over, StatusCode::BAD_REQUEST, "meta_data_limit");
    let (_, unchanged) = get(&app, &format!("/memberstack/v1/members/{}", id(max))).await;
    assert_eq!(unchanged["email"], "max@example.com");
    let unknown = post(
        &app,
        "/memberstack/v1/members/mem_nobody",
        json!({"email": "x@example.com"}),
    )
    .await;
    assert_ms_error(&unknown, StatusCode::NOT_FOUND, "member_not_found");

    for query in [
        "limit=0",
        "limit=101",
        "limit=ten",
        "page=0",
        "page=-1",
        "page=two",
    ] {
        let response = get(&app, &format!("/memberstack/v1/members?{query}")).await;
        assert_ms_error(&response, StatusCode::BAD_REQUEST, "invalid_parameter");
    }
    assert_ms_error(
        &get(&app, "/memberstack/v1/members/123").await,
        StatusCode::NOT_FOUND,
        "member_not_found",
    );
    let no_key = send_ms(app.client.get(app.url("/memberstack/v1/members"))).await;
    assert_ms_error(&no_key, StatusCode::UNAUTHORIZED, "missing_api_key");
    let bad_key = send_ms(app.ms_as("sk_sb_wrong", Method::GET, "/memberstack/v1/members")).await;
    assert_ms_error(&bad_key, StatusCode::UNAUTHORIZED, "invalid_api_key");
    let wrong_method = send_ms(app.ms(Method::PUT, "/memberstack/v1/members")).await;
    assert_ms_error(
        &wrong_method,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    );
}

crate::both_backends!(
    v1_members_are_created_read_updated_listed_and_deleted,
    v1_membership_follows_the_plan_connection,
    v1_refuses_bad_input_and_writes_nothing,
);
