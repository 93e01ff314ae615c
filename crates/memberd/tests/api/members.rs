use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Map, Value};

use crate::support::{assert_error, id, TestApp};

async fn members_are_created_read_updated_and_deleted(app: Arc<TestApp>) {
    let (status, ann) = app
        .post(
            "/v1/members",
            json!({
                "email": "  Ann@Example.COM ", "password": "correct horse battery",
                "customFields": {"first-name": "Ann", "city": "Oslo"},
                "metaData": {"tier": "gold", "score": 3},
                "json": {"prefs": {"theme": "dark"}},
                "externalId": "12345", "loginRedirect": "/welcome",
                "permissions": ["beta"]
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ann}");
    assert_eq!(ann["email"], "ann@example.com");
    assert!(id(&ann).starts_with("mem_"));
    assert_eq!(ann["externalId"], "12345");
    assert_eq!(ann["permissions"], json!(["beta"]));
    assert_eq!(ann["planConnections"], json!([]));
    let text = ann.to_string();
    assert!(
        !text.contains("password") && !text.contains("argon2") && !text.contains("horse"),
        "no trace of the password: {text}"
    );

    for key in [
        id(&ann).to_owned(),
        "ann@example.com".into(),
        "ANN@example.com".into(),
    ] {
        let (status, got) = app.get(&format!("/v1/members/{key}")).await;
        assert_eq!(status, StatusCode::OK, "{key}");
        assert_eq!(got, ann);
    }

    let duplicate = app
        .post("/v1/members", json!({"email": "ann@EXAMPLE.com"}))
        .await;
    assert_error(&duplicate, StatusCode::CONFLICT, Some("email"));
    let duplicate = app
        .post(
            "/v1/members",
            json!({"email": "bob@example.com", "externalId": "12345"}),
        )
        .await;
    assert_error(&duplicate, StatusCode::CONFLICT, Some("externalId"));

    let (status, patched) = app
        .patch(
            &format!("/v1/members/{}", id(&ann)),
            json!({
                "customFields": {"city": "Bergen", "first-name": null},
                "metaData": {"score": 4},
                "json": {"replaced": true},
                "loginRedirect": null,
                "verified": true
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["customFields"], json!({"city": "Bergen"}));
    assert_eq!(patched["metaData"], json!({"tier": "gold", "score": 4}));
    assert_eq!(patched["json"], json!({"replaced": true}));
    assert_eq!(patched["loginRedirect"], json!(null));
    assert_eq!(patched["verified"], true);
    assert_eq!(patched["createdAt"], ann["createdAt"]);
    assert!(patched["updatedAt"].as_str() >= ann["updatedAt"].as_str());

    let (status, _) = app
        .patch(
            &format!("/v1/members/{}", id(&ann)),
            json!({"password": "another good one"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let short = app
        .patch(
            &format!("/v1/members/{}", id(&ann)),
            json!({"password": "short"}),
        )
        .await;
    assert_error(&short, StatusCode::BAD_REQUEST, Some("password"));

    // totalCount is a kept count: it follows creates and deletes.
    let total = |page: Value| page["totalCount"].as_i64().unwrap();
    let before = total(app.get("/v1/members").await.1);
    let (status, deleted) = app.delete(&format!("/v1/members/{}", id(&ann))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(deleted, json!({"id": id(&ann), "deleted": true}));
    assert_eq!(total(app.get("/v1/members").await.1), before - 1);
    let (status, _) = app.get(&format!("/v1/members/{}", id(&ann))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.delete(&format!("/v1/members/{}", id(&ann))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The email is free again.
    app.create_member("ann@example.com").await;
    assert_eq!(total(app.get("/v1/members").await.1), before);
}

fn many(n: usize, len: usize) -> Map<String, Value> {
    (0..n)
        .map(|i| (format!("{i:0>len$}"), json!("v")))
        .collect()
}

async fn meta_data_over_the_limits_is_refused_and_nothing_is_written(app: Arc<TestApp>) {
    let at_limit = json!({"email": "max@example.com", "metaData": many(50, 50)});
    let (status, _) = app.post("/v1/members", at_limit).await;
    assert_eq!(status, StatusCode::CREATED, "50 keys of 50 characters fit");

    let long_value = "é".repeat(501);
    let cases = [
        (json!({"metaData": many(51, 2)}), "metaData".to_owned()),
        (
            json!({"metaData": many(1, 51)}),
            format!("metaData.{}", "0".repeat(51)),
        ),
        (
            json!({"metaData": {"bio": long_value}}),
            "metaData.bio".to_owned(),
        ),
        (
            json!({"metaData": {"": "empty key"}}),
            "metaData.".to_owned(),
        ),
    ];
    let members = app.member_count().await;
    let events = app.event_count().await;
    for (extra, param) in &cases {
        let mut body = json!({"email": "over@example.com"});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let response = app.post("/v1/members", body).await;
        assert_error(&response, StatusCode::BAD_REQUEST, Some(param.as_str()));
    }
    assert_eq!(app.member_count().await, members);

    // A PATCH whose merge would go over the limit is refused as a whole.
    let member = app.create_member("merge@example.com").await;
    let path = format!("/v1/members/{}", id(&member));
    let (status, _) = app.patch(&path, json!({"metaData": many(30, 3)})).await;
    assert_eq!(status, StatusCode::OK);
    let more: Map<String, Value> = (0..21).map(|i| (format!("x{i}"), json!(1))).collect();
    let response = app
        .patch(&path, json!({"metaData": more, "verified": true}))
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, Some("metaData"));
    let (_, after) = app.get(&path).await;
    assert_eq!(after["metaData"].as_object().unwrap().len(), 30);
    assert_eq!(after["verified"], false, "no partial write");
    assert_eq!(app.event_count().await, events + 2);
}

async fn member_lists_filter_and_page_without_skipping(app: Arc<TestApp>) {
    let plan = app.create_plan(json!({"name": "Club"})).await;
    let mut ids = Vec::new();
    for i in 0..23 {
        let member = app.create_member(&format!("m{i:02}@example.com")).await;
        ids.push(id(&member).to_owned());
        if i % 5 == 0 {
            app.connect(&member, json!({"planId": id(&plan)})).await;
        }
    }
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = app
            .get(&format!("/v1/members?limit=10&after={after}"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["totalCount"], 23);
        for m in page["data"].as_array().unwrap() {
            seen.push(id(m).to_owned());
        }
        if page["hasMore"] == false {
            break;
        }
        after = page["nextCursor"].as_str().unwrap().to_owned();
    }
    assert_eq!(seen, ids, "every member once, oldest first");

    let (_, desc) = app.get("/v1/members?order=desc&limit=3").await;
    assert_eq!(id(&desc["data"][0]), ids[22]);

    let (_, by_email) = app.get("/v1/members?email=M07@Example.com").await;
    assert_eq!(by_email["totalCount"], 1);
    assert_eq!(id(&by_email["data"][0]), ids[7]);

    let (_, by_plan) = app.get(&format!("/v1/members?planId={}", id(&plan))).await;
    assert_eq!(by_plan["totalCount"], 5);
    let (_, active) = app.get("/v1/members?status=ACTIVE").await;
    assert_eq!(active["totalCount"], 5);
    assert_eq!(active["data"][0]["planConnections"][0]["planName"], "Club");
    let (_, paused) = app.get("/v1/members?status=paused").await;
    assert_eq!(paused["totalCount"], 0);

    let (_, latest) = app.get(&format!("/v1/members/{}", ids[22])).await;
    let since = latest["updatedAt"].as_str().unwrap();
    let (status, recent) = app.get(&format!("/v1/members?updatedSince={since}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(recent["totalCount"].as_i64().unwrap() >= 1);
    assert!(recent["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["updatedAt"].as_str().unwrap() >= since));
    let (_, future) = app.get("/v1/members?updatedSince=2999-01-01").await;
    assert_eq!(future["totalCount"], 0);
}

crate::both_backends!(
    members_are_created_read_updated_and_deleted,
    meta_data_over_the_limits_is_refused_and_nothing_is_written,
    member_lists_filter_and_page_without_skipping,
);
