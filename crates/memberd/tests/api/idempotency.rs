use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{assert_error, send, TestApp};

async fn post_with_key(
    app: &TestApp,
    path: &str,
    key: &str,
    body: Value,
) -> (StatusCode, Value, bool) {
    let response = app
        .request(Method::POST, path)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let replayed = response.headers().contains_key("idempotent-replayed");
    let status = response.status();
    (status, response.json().await.unwrap(), replayed)
}

async fn a_retried_post_is_applied_once(app: Arc<TestApp>) {
    let body = json!({"email": "ann@example.com", "metaData": {"source": "retry"}});
    let (status, first, replayed) =
        post_with_key(&app, "/v1/members", "signup-1", body.clone()).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false), "{first}");
    let (status, second, replayed) =
        post_with_key(&app, "/v1/members", "signup-1", body.clone()).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
    assert_eq!(second, first, "the retry replays the first response");
    assert_eq!(app.member_count().await, 1);
    assert_eq!(app.event_count().await, 1, "one member.created");

    let (status, reused, _) = post_with_key(
        &app,
        "/v1/members",
        "signup-1",
        json!({"email": "bob@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reused}");
    assert_eq!(reused["error"]["code"], "idempotency_key_reused");
    assert_eq!(app.member_count().await, 1);

    // A refusal is replayed too: the request was answered, and retrying it answers the same.
    let bad = json!({"email": "not an email"});
    let (status, refused, _) = post_with_key(&app, "/v1/members", "bad-1", bad.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, again, replayed) = post_with_key(&app, "/v1/members", "bad-1", bad).await;
    assert_eq!((status, replayed), (StatusCode::BAD_REQUEST, true));
    assert_eq!(again, refused);

    // Keys belong to one environment: the live environment may reuse it.
    let response = app
        .request_as(&app.live_key, Method::POST, "/v1/members")
        .header("Idempotency-Key", "signup-1")
        .json(&json!({"email": "live@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    let too_long = send(
        app.request(Method::POST, "/v1/members")
            .header("Idempotency-Key", "k".repeat(300))
            .json(&json!({"email": "carl@example.com"})),
    )
    .await;
    assert_error(&too_long, StatusCode::BAD_REQUEST, Some("Idempotency-Key"));
}

crate::both_backends!(a_retried_post_is_applied_once);
