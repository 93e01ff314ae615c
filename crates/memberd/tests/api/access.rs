use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use crate::support::{assert_error, id, TestApp};

async fn access_follows_plans_and_says_why(app: Arc<TestApp>) {
    let gold = app
        .create_plan(json!({"name": "Gold", "permissions": ["view:gold", "view:silver"]}))
        .await;
    let other = app.create_plan(json!({"name": "Other"})).await;
    let (_, member) = app
        .post(
            "/v1/members",
            json!({"email": "ann@example.com", "permissions": ["beta"]}),
        )
        .await;
    let access = |query: String| {
        let app = app.clone();
        let member_id = id(&member).to_owned();
        async move {
            let (status, body) = app
                .get(&format!("/v1/members/{member_id}/access{query}"))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            body
        }
    };

    let before = access("?permission=view:gold".into()).await;
    assert_eq!(before["allowed"], false);
    assert_eq!(before["reason"], "no_match");
    assert_eq!(before["planConnection"], json!(null));
    assert_eq!(access(String::new()).await["allowed"], false);

    let direct = access("?permission=beta".into()).await;
    assert_eq!(
        (&direct["allowed"], &direct["reason"]),
        (&json!(true), &json!("member_permission"))
    );

    let connection = app.connect(&member, json!({"planId": id(&gold)})).await;
    let by_permission = access("?permission=view:silver".into()).await;
    assert_eq!(by_permission["allowed"], true);
    assert_eq!(by_permission["reason"], "plan_connection");
    assert_eq!(by_permission["memberId"], member["id"]);
    assert_eq!(by_permission["planConnection"]["id"], connection["id"]);
    assert_eq!(by_permission["planConnection"]["status"], "ACTIVE");
    let by_plan = access(format!("?planId={}", id(&gold))).await;
    assert_eq!(by_plan["allowed"], true);
    assert_eq!(
        access(format!("?planId={}", id(&other))).await["allowed"],
        false
    );
    assert_eq!(
        access(String::new()).await["allowed"],
        true,
        "any active plan"
    );

    let (status, _) = app
        .post(
            &format!("/v1/plan-connections/{}/pause", id(&connection)),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let paused = access("?permission=view:gold".into()).await;
    assert_eq!(paused["allowed"], false);
    assert_eq!(paused["reason"], "plan_connection_inactive");
    assert_eq!(paused["planConnection"]["status"], "PAUSED");

    let both = app
        .get(&format!(
            "/v1/members/{}/access?permission=x&planId={}",
            id(&member),
            id(&gold)
        ))
        .await;
    assert_error(&both, StatusCode::BAD_REQUEST, Some("planId"));
    let bad_plan = app
        .get(&format!("/v1/members/{}/access?planId=gold", id(&member)))
        .await;
    assert_error(&bad_plan, StatusCode::BAD_REQUEST, Some("planId"));
    let unknown = app.get("/v1/members/mem_nobody/access?permission=x").await;
    assert_error(&unknown, StatusCode::NOT_FOUND, None);
}

crate::both_backends!(access_follows_plans_and_says_why);
