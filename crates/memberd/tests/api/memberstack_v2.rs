//! The Memberstack 2.0 Admin API at /memberstack/ over plain HTTP: what the SDK suite in
//! tests/compat cannot reach (raw query parameters), and the same data seen through every face.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{assert_ms_error, id, send_ms, TestApp};

async fn ms_get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    send_ms(app.ms(Method::GET, path)).await
}

async fn list_parameters_are_checked_and_paging_is_stable(app: Arc<TestApp>) {
    let mut ids = Vec::new();
    for i in 0..7 {
        let member = app.create_member(&format!("m{i}@example.com")).await;
        ids.push(id(&member).to_owned());
    }
    app.patch(
        &format!("/v1/members/{}", ids[0]),
        json!({"json": {"k": 1}}),
    )
    .await;

    let (status, first) = ms_get(&app, "/memberstack/members?first=3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(first["totalCount"], 7);
    assert_eq!(first["hasNextPage"], true);
    assert!(first["endCursor"].is_i64());
    assert!(
        first["data"][0].get("json").is_none(),
        "json only on request"
    );
    let (_, with_json) = ms_get(&app, "/memberstack/members?limit=3&includeJSON=true").await;
    assert_eq!(with_json["data"][0]["json"], json!({"k": 1}));
    assert_eq!(with_json["data"][1]["json"], json!(null));

    let after = first["endCursor"].as_i64().unwrap();
    let (_, rest) = ms_get(
        &app,
        &format!("/memberstack/members?&after={after}&order=ASC"),
    )
    .await;
    let rest_ids: Vec<&str> = rest["data"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(rest_ids, ids[3..]);
    assert_eq!(rest["hasNextPage"], false);
    let end = rest["endCursor"].as_i64().unwrap();
    let (_, empty) = ms_get(&app, &format!("/memberstack/members?after={end}")).await;
    assert_eq!(empty["data"], json!([]));
    assert_eq!(empty["endCursor"], end, "an empty page keeps the cursor");
    let (_, desc) = ms_get(&app, "/memberstack/members?first=2&order=DESC").await;
    assert_eq!(id(&desc["data"][0]), ids[6]);
    let (_, huge) = ms_get(&app, "/memberstack/members?first=1000").await;
    assert_eq!(
        huge["data"].as_array().unwrap().len(),
        7,
        "first is capped, not refused"
    );

    for query in [
        "first=0",
        "first=-1",
        "first=many",
        "after=soon",
        "order=sideways",
    ] {
        let response = ms_get(&app, &format!("/memberstack/members?{query}")).await;
        assert_ms_error(&response, StatusCode::BAD_REQUEST, "invalid_parameter");
    }
    let no_key = send_ms(app.client.get(app.url("/memberstack/members"))).await;
    assert_ms_error(&no_key, StatusCode::UNAUTHORIZED, "missing_api_key");
    let (status, missing) = ms_get(&app, "/memberstack/members/mem_nobody").await;
    assert_eq!((status, missing), (StatusCode::OK, json!({"data": null})));
    let unknown_route = ms_get(&app, "/memberstack/plans").await;
    assert_ms_error(&unknown_route, StatusCode::NOT_FOUND, "route_not_found");
}

async fn every_face_sees_the_same_members(app: Arc<TestApp>) {
    let plan = app
        .create_plan(json!({"name": "Club", "permissions": ["club"]}))
        .await;

    // Made natively, read through both Memberstack faces.
    let (_, native) = app
        .post(
            "/v1/members",
            json!({"email": "native@example.com", "metaData": {"from": "native"}}),
        )
        .await;
    app.connect(&native, json!({"planId": id(&plan)})).await;
    let (_, v2) = ms_get(&app, &format!("/memberstack/members/{}", id(&native))).await;
    assert_eq!(v2["data"]["auth"]["email"], "native@example.com");
    assert_eq!(v2["data"]["metaData"], json!({"from": "native"}));
    assert_eq!(v2["data"]["planConnections"][0]["planId"], plan["id"]);
    assert_eq!(v2["data"]["permissions"], json!(["club"]));
    let (_, v1) = ms_get(&app, &format!("/memberstack/v1/members/{}", id(&native))).await;
    assert_eq!(v1["email"], "native@example.com");
    assert_eq!(v1["membership"]["plan"], plan["id"]);

    // Made through 2.0, read natively and through 1.0.
    let (status, made) = send_ms(app.ms(Method::POST, "/memberstack/members").json(&json!({
        "email": "v2@example.com", "password": "long enough pw",
        "plans": [{"planId": id(&plan)}], "customFields": {"name": "Vee"}
    })))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let v2_id = made["data"]["id"].as_str().unwrap();
    let (_, seen) = app.get(&format!("/v1/members/{v2_id}")).await;
    assert_eq!(seen["customFields"], json!({"name": "Vee"}));
    assert_eq!(seen["planConnections"][0]["status"], "ACTIVE");
    let (_, seen) = ms_get(&app, &format!("/memberstack/v1/members/{v2_id}")).await;
    assert_eq!(seen["membership"]["status"], "active");

    // Made through 1.0, read natively and through 2.0; changed through 2.0, seen natively.
    let (_, legacy) = send_ms(
        app.ms(Method::POST, "/memberstack/v1/members")
            .json(&json!({
                "email": "v1@example.com", "plan": id(&plan), "metaData": {"from": "v1"}
            })),
    )
    .await;
    let (_, seen) = app.get(&format!("/v1/members/{}", id(&legacy))).await;
    assert_eq!(seen["metaData"], json!({"from": "v1"}));
    let (status, _) = send_ms(
        app.ms(
            Method::PATCH,
            &format!("/memberstack/members/{}", id(&legacy)),
        )
        .json(&json!({"metaData": {"seen": "v2"}, "verified": true})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, seen) = app.get(&format!("/v1/members/{}", id(&legacy))).await;
    assert_eq!(seen["metaData"], json!({"from": "v1", "seen": "v2"}));
    assert_eq!(seen["verified"], true);

    // Every change landed in the one change feed, whichever face made it.
    let (_, feed) = app.get("/v1/events?types=member.created").await;
    assert_eq!(feed["totalCount"], 3);
    let (_, all) = app.get("/v1/members").await;
    assert_eq!(all["totalCount"], 3);
}

crate::both_backends!(
    list_parameters_are_checked_and_paging_is_stable,
    every_face_sees_the_same_members,
);
