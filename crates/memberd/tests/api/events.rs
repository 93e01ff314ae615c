use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_error, id, TestApp};

fn types(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect()
}

async fn every_change_lands_in_the_feed_in_order(app: Arc<TestApp>) {
    let basic = app.create_plan(json!({"name": "Basic"})).await;
    let pro = app.create_plan(json!({"name": "Pro"})).await;
    let member = app.create_member("ann@example.com").await;
    let path = format!("/v1/members/{}", id(&member));
    app.patch(&path, json!({"metaData": {"a": "1"}})).await;
    // A PATCH that changes nothing records nothing.
    app.patch(&path, json!({"metaData": {"a": "1"}})).await;
    let connection = app.connect(&member, json!({"planId": id(&basic)})).await;
    let c_path = format!("/v1/plan-connections/{}", id(&connection));
    app.post(&format!("{c_path}/pause"), json!({})).await;
    app.post(&format!("{c_path}/resume"), json!({})).await;
    app.post(&format!("{c_path}/replace"), json!({"planId": id(&pro)}))
        .await;
    app.post(&format!("{c_path}/cancel"), json!({"reason": "done"}))
        .await;
    let (status, _) = app.delete(&path).await;
    assert_eq!(status, StatusCode::OK);

    let (status, feed) = app.get("/v1/events").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        types(&feed),
        [
            "member.created",
            "member.updated",
            "member.plan.created",
            "member.plan.updated",
            "member.plan.updated",
            "member.plan.replaced",
            "member.plan.canceled",
            "member.deleted",
        ]
    );
    let events = feed["data"].as_array().unwrap();
    assert_eq!(events[0]["data"]["auth"]["email"], "ann@example.com");
    assert_eq!(events[1]["data"]["metaData"], json!({"a": "1"}));
    assert_eq!(events[2]["data"]["planConnection"]["planId"], basic["id"]);
    assert_eq!(events[5]["data"]["prevPlan"], basic["id"]);
    assert_eq!(events[6]["data"]["reason"], "done");
    assert_eq!(events[6]["data"]["planConnectionId"], connection["id"]);
    assert_eq!(events[7]["data"]["id"], member["id"]);
    assert!(events.iter().all(|e| e["createdAt"].is_string()));

    // Incremental sync: read in pages, resume after a cursor or an event id.
    let (_, first) = app.get("/v1/events?limit=3").await;
    assert_eq!(first["hasMore"], true);
    assert_eq!(first["totalCount"], 8);
    let cursor = first["nextCursor"].as_str().unwrap();
    let (_, rest) = app.get(&format!("/v1/events?after={cursor}")).await;
    assert_eq!(types(&rest), types(&feed)[3..]);
    let (_, rest_by_id) = app
        .get(&format!("/v1/events?after={}", id(&events[2])))
        .await;
    assert_eq!(rest_by_id["data"], rest["data"]);
    let last = rest["nextCursor"].as_str().unwrap();
    let (_, nothing_new) = app.get(&format!("/v1/events?after={last}")).await;
    assert_eq!(nothing_new["data"], json!([]));
    assert_eq!(nothing_new["hasMore"], false);

    let (_, plan_events) = app
        .get("/v1/events?types=member.plan.created,member.plan.canceled")
        .await;
    assert_eq!(
        types(&plan_events),
        ["member.plan.created", "member.plan.canceled"]
    );
    let (status, one) = app.get(&format!("/v1/events/{}", id(&events[6]))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one, events[6]);

    let unknown_type = app.get("/v1/events?types=member.exploded").await;
    assert_error(&unknown_type, StatusCode::BAD_REQUEST, Some("types"));
    let bad_after = app.get("/v1/events?after=yesterday").await;
    assert_error(&bad_after, StatusCode::BAD_REQUEST, Some("after"));
    let unknown_after = app.get("/v1/events?after=evt_unknown").await;
    assert_error(&unknown_after, StatusCode::BAD_REQUEST, Some("after"));
    let missing = app.get("/v1/events/evt_unknown").await;
    assert_error(&missing, StatusCode::NOT_FOUND, None);
}

crate::both_backends!(every_change_lands_in_the_feed_in_order);
