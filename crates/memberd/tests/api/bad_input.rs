//! Bad input, tried as a new user would: a 4xx that names the problem, never a 500, and
//! nothing half-written.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{assert_error, id, send, TestApp};

async fn bad_input_gets_a_4xx_naming_the_problem(app: Arc<TestApp>) {
    let member = app.create_member("ann@example.com").await;
    let members = app.member_count().await;
    let events = app.event_count().await;

    let raw = |body: &'static str| {
        app.request(Method::POST, "/v1/members")
            .header("content-type", "application/json")
            .body(body)
    };
    for (body, param) in [
        ("{\"email\": ", "body"),
        ("not json at all", "body"),
        ("[1, 2]", "body"),
        ("{\"email\": \"a@example.com\"} trailing", "body"),
        ("{\"email\": 42}", "email"),
        (
            "{\"email\": \"a@example.com\", \"verified\": \"yes\"}",
            "verified",
        ),
        (
            "{\"email\": \"a@example.com\", \"customFields\": []}",
            "customFields",
        ),
        ("{\"email\": \"nobody\"}", "email"),
        (
            "{\"email\": \"a@example.com\", \"password\": \"1234\"}",
            "password",
        ),
        (
            "{\"email\": \"a@example.com\", \"permissions\": \"all\"}",
            "permissions",
        ),
        (
            "{\"email\": \"a@example.com\", \"profileImage\": \"x\\u0000y\"}",
            "profileImage",
        ),
    ] {
        let response = send(raw(body)).await;
        assert_error(&response, StatusCode::BAD_REQUEST, Some(param));
    }

    let huge = format!(
        "{{\"email\": \"big@example.com\", \"json\": \"{}\"}}",
        "x".repeat(2 << 20)
    );
    let response = send(
        app.request(Method::POST, "/v1/members")
            .header("content-type", "application/json")
            .body(huge),
    )
    .await;
    assert_error(&response, StatusCode::PAYLOAD_TOO_LARGE, None);
    let large_json = json!({"email": "doc@example.com", "json": {"blob": "y".repeat(70_000)}});
    let response = app.post("/v1/members", large_json).await;
    assert_error(&response, StatusCode::BAD_REQUEST, Some("json"));

    let patch = app
        .patch(
            &format!("/v1/members/{}", id(&member)),
            json!({"email": "not-an-email"}),
        )
        .await;
    assert_error(&patch, StatusCode::BAD_REQUEST, Some("email"));
    let patch = app
        .patch(
            &format!("/v1/members/{}", id(&member)),
            json!({"json": {"a": 1}, "loginRedirect": 5}),
        )
        .await;
    assert_error(&patch, StatusCode::BAD_REQUEST, Some("loginRedirect"));

    for (path, param) in [
        ("/v1/members?limit=0", "limit"),
        ("/v1/members?limit=101", "limit"),
        ("/v1/members?limit=ten", "limit"),
        ("/v1/members?after=-4", "after"),
        ("/v1/members?order=sideways", "order"),
        ("/v1/members?updatedSince=last%20week", "updatedSince"),
        ("/v1/members?status=HAPPY", "status"),
        ("/v1/members?planId=gold", "planId"),
        ("/v1/members?email=nobody", "email"),
        ("/v1/plans?status=GONE", "status"),
    ] {
        let response = app.get(path).await;
        assert_error(&response, StatusCode::BAD_REQUEST, Some(param));
    }
    for path in [
        "/v1/members/mem_unknown",
        "/v1/members/nobody@example.com",
        "/v1/members/%20",
        "/v1/plan-connections/con_x",
        "/v1/plan-connections/whatever",
        "/v1/events/evt_x",
    ] {
        let response = app.get(path).await;
        assert_error(&response, StatusCode::NOT_FOUND, None);
    }
    let wrong_method = send(app.request(Method::PUT, "/v1/members")).await;
    assert_error(&wrong_method, StatusCode::METHOD_NOT_ALLOWED, None);
    let no_route = app.get("/v2/members").await;
    assert_error(&no_route, StatusCode::NOT_FOUND, None);

    assert_eq!(app.member_count().await, members, "nothing half-written");
    assert_eq!(app.event_count().await, events);
    let (_, unchanged) = app.get(&format!("/v1/members/{}", id(&member))).await;
    assert_eq!(unchanged["json"], json!(null));
    assert_eq!(unchanged["email"], "ann@example.com");
}

/// A client still sending a body the server refuses must read the refusal, not a connection
/// reset: the server reads the rest of the body before it answers.
async fn an_oversized_body_is_answered_not_reset(app: Arc<TestApp>) {
    let members = app.member_count().await;
    let huge = format!(
        "{{\"email\": \"big@example.com\", \"json\": \"{}\"}}",
        "x".repeat(3 << 20)
    );
    let sends = (0..12).map(|_| {
        send(
            app.request(Method::POST, "/v1/members")
                .header("content-type", "application/json")
                .body(huge.clone()),
        )
    });
    for response in all_at_once(sends).await {
        assert_error(&response, StatusCode::PAYLOAD_TOO_LARGE, None);
    }
    assert_eq!(app.member_count().await, members, "nothing written");
}

/// Runs the requests at once and gathers their answers in order.
async fn all_at_once<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.expect("the request task"));
    }
    out
}

crate::both_backends!(
    bad_input_gets_a_4xx_naming_the_problem,
    an_oversized_body_is_answered_not_reset
);
