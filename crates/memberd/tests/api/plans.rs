use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_error, id, TestApp};

async fn plans_are_created_read_listed_updated_and_archived(app: Arc<TestApp>) {
    let free = app
        .create_plan(json!({"name": "Community", "permissions": ["forum", "forum"]}))
        .await;
    assert_eq!(free["type"], "FREE");
    assert_eq!(free["status"], "ACTIVE");
    assert_eq!(free["permissions"], json!(["forum"]));
    assert!(free["createdAt"].is_string() && free["updatedAt"].is_string());

    let paid = app
        .create_plan(json!({
            "name": "Gold", "description": "All of it", "permissions": ["view:gold"],
            "prices": [
                {"amount": 999, "currency": "usd", "interval": "MONTH"},
                {"amount": 9900, "currency": "USD", "interval": "YEAR", "intervalCount": 1, "trialDays": 14}
            ]
        }))
        .await;
    assert_eq!(paid["type"], "PAID", "a plan with prices is PAID");
    assert_eq!(paid["prices"][0]["currency"], "USD");
    assert_eq!(paid["prices"][0]["intervalCount"], 1);
    assert_eq!(paid["prices"][1]["trialDays"], 14);
    assert!(paid["prices"][0]["id"]
        .as_str()
        .unwrap()
        .starts_with("prc_"));

    let (status, got) = app.get(&format!("/v1/plans/{}", id(&paid))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got, paid);

    let (status, page) = app.get("/v1/plans?limit=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["totalCount"], 2);
    assert_eq!(page["hasMore"], true);
    assert_eq!(page["data"][0]["id"], free["id"]);
    let cursor = page["nextCursor"].as_str().unwrap();
    let (_, page2) = app.get(&format!("/v1/plans?limit=1&after={cursor}")).await;
    assert_eq!(page2["data"][0]["id"], paid["id"]);
    assert_eq!(page2["hasMore"], false);

    let (status, patched) = app
        .patch(
            &format!("/v1/plans/{}", id(&paid)),
            json!({"name": "Gold+", "description": null, "permissions": ["view:gold", "view:extra"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["name"], "Gold+");
    assert_eq!(patched["description"], json!(null));
    assert_eq!(patched["prices"], paid["prices"], "prices do not change");

    let (status, archived) = app
        .post(&format!("/v1/plans/{}/archive", id(&free)), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(archived["status"], "ARCHIVED");
    let (status, again) = app
        .post(&format!("/v1/plans/{}/archive", id(&free)), json!({}))
        .await;
    assert_eq!(
        (status, &again["status"]),
        (StatusCode::OK, &json!("ARCHIVED"))
    );
    let (_, active) = app.get("/v1/plans?status=ACTIVE").await;
    assert_eq!(active["totalCount"], 1);

    let member = app.create_member("ann@example.com").await;
    let refused = app
        .post(
            &format!("/v1/members/{}/plan-connections", id(&member)),
            json!({"planId": id(&free)}),
        )
        .await;
    assert_error(&refused, StatusCode::CONFLICT, None);
    assert_eq!(refused.1["error"]["code"], "plan_archived");
}

async fn bad_plans_are_refused_naming_the_field(app: Arc<TestApp>) {
    let cases = [
        (json!({"permissions": []}), "name"),
        (json!({"name": "  "}), "name"),
        (json!({"name": "X", "type": "free"}), "type"),
        (
            json!({"name": "X", "type": "FREE", "prices": [{"amount": 1, "currency": "USD", "interval": "MONTH"}]}),
            "prices",
        ),
        (json!({"name": "X", "type": "PAID"}), "prices"),
        (
            json!({"name": "X", "prices": [{"amount": 5, "currency": "USD", "interval": "MONTH"}, {"amount": 0, "currency": "USD", "interval": "MONTH"}]}),
            "prices[1].amount",
        ),
        (
            json!({"name": "X", "prices": [{"amount": 5, "currency": "dollars", "interval": "MONTH"}]}),
            "prices[0].currency",
        ),
        (
            json!({"name": "X", "prices": [{"amount": 5, "currency": "USD", "interval": "FORTNIGHT"}]}),
            "prices[0].interval",
        ),
        (
            json!({"name": "X", "prices": [{"amount": "5", "currency": "USD", "interval": "MONTH"}]}),
            "prices[0].amount",
        ),
        (
            json!({"name": "X", "permissions": ["has space"]}),
            "permissions[0]",
        ),
        (json!({"name": "X", "colour": "red"}), "colour"),
    ];
    for (body, param) in cases {
        let response = app.post("/v1/plans", body.clone()).await;
        assert_error(&response, StatusCode::BAD_REQUEST, Some(param));
    }
    let (_, page) = app.get("/v1/plans").await;
    assert_eq!(page["totalCount"], 0, "nothing was written");

    let plan = app.create_plan(json!({"name": "Gold"})).await;
    let response = app
        .patch(&format!("/v1/plans/{}", id(&plan)), json!({"prices": []}))
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, Some("prices"));
    let response = app
        .patch(&format!("/v1/plans/{}", id(&plan)), json!({"name": ""}))
        .await;
    assert_error(&response, StatusCode::BAD_REQUEST, Some("name"));
    for path in ["/v1/plans/pln_unknown", "/v1/plans/not-an-id"] {
        let response = app.get(path).await;
        assert_error(&response, StatusCode::NOT_FOUND, None);
        assert_eq!(response.1["error"]["code"], "plan_not_found");
    }
}

/// What a member pays, oldest first.
async fn amounts_paid(app: &TestApp, member: &Value) -> Vec<i64> {
    let (status, list) = app
        .get(&format!("/v1/members/{}/payments", id(member)))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let mut paid: Vec<i64> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "SUCCEEDED")
        .map(|p| p["amount"].as_i64().unwrap())
        .collect();
    paid.reverse();
    paid
}

async fn a_price_changes_by_adding_the_new_and_retiring_the_old(app: Arc<TestApp>) {
    let (status, clock) = app
        .post(
            "/v1/test-clocks",
            json!({"frozenTime": "2026-01-01T00:00:00.000Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{clock}");
    let plan = app
        .create_plan(json!({"name": "Gold", "prices": [{"amount": 900, "currency": "USD", "interval": "MONTH"}]}))
        .await;
    let old = plan["prices"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(plan["prices"][0]["active"], true);

    let (status, early) = app
        .post(
            "/v1/members",
            json!({"email": "early@example.com", "testClockId": id(&clock)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{early}");
    app.attach_card(&early).await;
    let held = app.connect(&early, json!({"planId": id(&plan)})).await;
    assert_eq!(held["amount"], 900);

    let (status, changed) = app
        .patch(
            &format!("/v1/plans/{}", id(&plan)),
            json!({"addPrices": [{"amount": 1200, "currency": "usd", "interval": "MONTH"}], "retirePrices": [old]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let prices = changed["prices"].as_array().unwrap();
    assert_eq!(prices.len(), 2, "a retired price stays on the plan");
    assert_eq!(
        (&prices[0]["id"], &prices[0]["active"], &prices[0]["amount"]),
        (&json!(old), &json!(false), &json!(900))
    );
    assert_eq!(
        (
            &prices[1]["active"],
            &prices[1]["amount"],
            &prices[1]["currency"]
        ),
        (&json!(true), &json!(1200), &json!("USD"))
    );
    let (_, read_back) = app.get(&format!("/v1/plans/{}", id(&plan))).await;
    assert_eq!(read_back, changed);

    let late = app.create_member("late@example.com").await;
    app.attach_card(&late).await;
    let refused = app
        .post(
            &format!("/v1/members/{}/plan-connections", id(&late)),
            json!({"planId": id(&plan), "priceId": old}),
        )
        .await;
    assert_error(&refused, StatusCode::BAD_REQUEST, Some("priceId"));
    assert_eq!(refused.1["error"]["code"], "price_retired");
    let joined = app.connect(&late, json!({"planId": id(&plan)})).await;
    assert_eq!(
        (&joined["amount"], &joined["priceId"]),
        (&json!(1200), &prices[1]["id"]),
        "the one active price needs no priceId"
    );

    let (status, moved) = app
        .post(
            &format!("/v1/test-clocks/{}/advance", id(&clock)),
            json!({"frozenTime": "2026-02-01T00:00:00.000Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(
        amounts_paid(&app, &early).await,
        vec![900, 900],
        "who held the retired price renews at it"
    );
}

async fn price_changes_that_would_break_a_plan_are_refused(app: Arc<TestApp>) {
    let plan = app
        .create_plan(json!({"name": "Gold", "prices": [{"amount": 900, "currency": "USD", "interval": "MONTH"}]}))
        .await;
    let only = plan["prices"][0]["id"].clone();
    let free = app.create_plan(json!({"name": "Community"})).await;
    let price = json!({"amount": 100, "currency": "USD", "interval": "MONTH"});
    let cases = [
        (&plan, json!({"retirePrices": [only]}), "retirePrices"),
        (&plan, json!({"retirePrices": ["nope"]}), "retirePrices[0]"),
        (
            &plan,
            json!({"retirePrices": [only, "prc_000000000000000000000000"]}),
            "retirePrices[1]",
        ),
        (
            &plan,
            json!({"addPrices": [price, {"amount": 0, "currency": "USD", "interval": "MONTH"}]}),
            "addPrices[1].amount",
        ),
        (
            &plan,
            json!({"addPrices": [{"amount": 100, "currency": "USD"}]}),
            "addPrices[0].interval",
        ),
        (
            &plan,
            json!({"addPrices": vec![price.clone(); 20]}),
            "addPrices",
        ),
        (&free, json!({"addPrices": [price]}), "addPrices"),
    ];
    for (target, body, param) in cases {
        let response = app
            .patch(&format!("/v1/plans/{}", id(target)), body.clone())
            .await;
        assert_error(&response, StatusCode::BAD_REQUEST, Some(param));
    }
    for unchanged in [&plan, &free] {
        let (_, read_back) = app.get(&format!("/v1/plans/{}", id(unchanged))).await;
        assert_eq!(&read_back, unchanged, "nothing was written");
    }
}

crate::both_backends!(
    plans_are_created_read_listed_updated_and_archived,
    bad_plans_are_refused_naming_the_field,
    a_price_changes_by_adding_the_new_and_retiring_the_old,
    price_changes_that_would_break_a_plan_are_refused,
);
