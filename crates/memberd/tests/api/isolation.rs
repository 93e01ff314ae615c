//! A key of one app or environment gets 404 for every object of another, on every endpoint.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{id, send, TestApp};

async fn no_key_reaches_another_tenants_data(app: Arc<TestApp>) {
    let plan = app
        .create_plan(json!({"name": "Gold", "permissions": ["gold"]}))
        .await;
    let member = app.create_member("ann@example.com").await;
    let connection = app.connect(&member, json!({"planId": id(&plan)})).await;
    let (_, events) = app.get("/v1/events").await;
    let event = events["data"][0].clone();

    let (m, p, c, e) = (id(&member), id(&plan), id(&connection), id(&event));
    let probes: Vec<(Method, String, Value)> = vec![
        (Method::GET, format!("/v1/members/{m}"), json!(null)),
        (
            Method::GET,
            "/v1/members/ann@example.com".into(),
            json!(null),
        ),
        (
            Method::PATCH,
            format!("/v1/members/{m}"),
            json!({"verified": true}),
        ),
        (Method::DELETE, format!("/v1/members/{m}"), json!(null)),
        (
            Method::GET,
            format!("/v1/members/{m}/plan-connections"),
            json!(null),
        ),
        (
            Method::POST,
            format!("/v1/members/{m}/plan-connections"),
            json!({"planId": p}),
        ),
        (
            Method::GET,
            format!("/v1/members/{m}/access?permission=gold"),
            json!(null),
        ),
        (Method::GET, format!("/v1/plans/{p}"), json!(null)),
        (
            Method::PATCH,
            format!("/v1/plans/{p}"),
            json!({"name": "Mine"}),
        ),
        (Method::POST, format!("/v1/plans/{p}/archive"), json!({})),
        (
            Method::GET,
            format!("/v1/plan-connections/{c}"),
            json!(null),
        ),
        (
            Method::POST,
            format!("/v1/plan-connections/{c}/cancel"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/v1/plan-connections/{c}/pause"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/v1/plan-connections/{c}/resume"),
            json!({}),
        ),
        (
            Method::POST,
            format!("/v1/plan-connections/{c}/replace"),
            json!({"planId": p}),
        ),
        (Method::GET, format!("/v1/events/{e}"), json!(null)),
    ];
    for key in [&app.live_key, &app.other_app_key] {
        for (method, path, body) in &probes {
            let mut request = app.request_as(key, method.clone(), path);
            if !body.is_null() {
                request = request.json(body);
            }
            let (status, response) = send(request).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {response}");
        }
        for list in ["/v1/members", "/v1/plans", "/v1/events"] {
            let (status, page) = send(app.request_as(key, Method::GET, list)).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(page["totalCount"], 0, "{list}");
        }
        // Their own member cannot take this tenant's plan.
        let (_, theirs) = send(
            app.request_as(key, Method::POST, "/v1/members")
                .json(&json!({"email": "ann@example.com"})),
        )
        .await;
        let (status, _) = send(
            app.request_as(
                key,
                Method::POST,
                &format!("/v1/members/{}/plan-connections", id(&theirs)),
            )
            .json(&json!({"planId": p})),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    // Nothing of the first tenant changed.
    let (_, still) = app.get(&format!("/v1/members/{m}")).await;
    assert_eq!(still["verified"], false);
    assert_eq!(still["planConnections"][0]["status"], "ACTIVE");
    let (_, plan_now) = app.get(&format!("/v1/plans/{p}")).await;
    assert_eq!(plan_now, plan);
    assert_eq!(app.event_count().await, 2);
}

crate::both_backends!(no_key_reaches_another_tenants_data);
