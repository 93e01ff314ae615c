use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{assert_error, id, TestApp};

async fn paid_plan(app: &TestApp, trial_days: u32) -> Value {
    app.create_plan(json!({
        "name": format!("Pro {trial_days}"), "permissions": ["view:pro"],
        "prices": [{"amount": 1500, "currency": "EUR", "interval": "MONTH", "trialDays": trial_days}]
    }))
    .await
}

async fn action(app: &TestApp, connection: &Value, verb: &str, body: Value) -> (StatusCode, Value) {
    app.post(
        &format!("/v1/plan-connections/{}/{verb}", id(connection)),
        body,
    )
    .await
}

async fn connections_follow_the_state_machine(app: Arc<TestApp>) {
    let free = app
        .create_plan(json!({"name": "Free", "permissions": ["read"]}))
        .await;
    let pro = paid_plan(&app, 0).await;
    let trial = paid_plan(&app, 7).await;
    let member = app.create_member("ann@example.com").await;
    app.attach_card(&member).await;

    let c_free = app.connect(&member, json!({"planId": id(&free)})).await;
    assert_eq!(c_free["status"], "ACTIVE");
    assert_eq!(c_free["type"], "FREE");
    assert_eq!(c_free["active"], true);
    assert_eq!(c_free["planName"], "Free");
    assert_eq!(c_free["currentPeriodEnd"], json!(null));

    let c_pro = app.connect(&member, json!({"planId": id(&pro)})).await;
    assert_eq!(c_pro["status"], "ACTIVE");
    assert_eq!(c_pro["type"], "SUBSCRIPTION");
    assert_eq!(c_pro["amount"], 1500);
    assert_eq!(c_pro["currency"], "EUR");
    assert_eq!(c_pro["priceId"], pro["prices"][0]["id"]);
    assert_eq!(c_pro["nextBillingDate"], c_pro["currentPeriodEnd"]);

    let c_trial = app
        .connect(
            &member,
            json!({"planId": id(&trial), "priceId": trial["prices"][0]["id"]}),
        )
        .await;
    assert_eq!(c_trial["status"], "TRIALING");
    assert_eq!(c_trial["trialEnd"], c_trial["currentPeriodEnd"]);

    let twice = app
        .post(
            &format!("/v1/members/{}/plan-connections", id(&member)),
            json!({"planId": id(&free)}),
        )
        .await;
    assert_error(&twice, StatusCode::CONFLICT, None);
    assert_eq!(twice.1["error"]["code"], "plan_already_connected");

    // Pause and resume.
    let (status, paused) = action(&app, &c_pro, "pause", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(paused["status"], "PAUSED");
    assert_eq!(paused["active"], false);
    let again = action(&app, &c_pro, "pause", json!({})).await;
    assert_error(&again, StatusCode::CONFLICT, None);
    let (status, resumed) = action(&app, &c_pro, "resume", json!({})).await;
    assert_eq!(
        (status, &resumed["status"]),
        (StatusCode::OK, &json!("ACTIVE"))
    );
    let not_paused = action(&app, &c_pro, "resume", json!({})).await;
    assert_error(&not_paused, StatusCode::CONFLICT, None);
    assert!(not_paused.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not PAUSED"));
    let (status, _) = action(
        &app,
        &c_trial,
        "pause",
        json!({"resumeAt": "2999-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let past = action(&app, &c_free, "pause", json!({"resumeAt": "2000-01-01"})).await;
    assert_error(&past, StatusCode::BAD_REQUEST, Some("resumeAt"));

    // Cancel at period end, then now.
    let (status, scheduled) = action(
        &app,
        &c_pro,
        "cancel",
        json!({"atPeriodEnd": true, "reason": "too expensive"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{scheduled}");
    assert_eq!(scheduled["status"], "ACTIVE");
    assert_eq!(scheduled["cancelAtPeriodEnd"], true);
    assert_eq!(scheduled["endDate"], scheduled["currentPeriodEnd"]);
    assert_eq!(scheduled["nextBillingDate"], json!(null));
    let no_period = action(&app, &c_free, "cancel", json!({"atPeriodEnd": true})).await;
    assert_error(&no_period, StatusCode::CONFLICT, None);
    let (status, canceled) = action(&app, &c_free, "cancel", json!({"reason": "moved"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(canceled["status"], "CANCELED");
    assert_eq!(canceled["cancelReason"], "moved");
    assert!(canceled["canceledAt"].is_string());
    let twice = action(&app, &c_free, "cancel", json!({})).await;
    assert_error(&twice, StatusCode::CONFLICT, None);
    assert_eq!(twice.1["error"]["code"], "connection_ended");

    // A canceled plan can be taken again.
    app.connect(&member, json!({"planId": id(&free)})).await;

    let (status, list) = app
        .get(&format!("/v1/members/{}/plan-connections", id(&member)))
        .await;
    assert_eq!(status, StatusCode::OK);
    let statuses: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["CANCELED", "ACTIVE", "PAUSED", "ACTIVE"]);
    let (status, got) = app
        .get(&format!("/v1/plan-connections/{}", id(&c_pro)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["cancelReason"], "too expensive");
}

async fn replacing_a_plan_keeps_the_connection(app: Arc<TestApp>) {
    let basic = app
        .create_plan(json!({"name": "Basic", "permissions": ["basic"]}))
        .await;
    let pro = app
        .create_plan(json!({
            "name": "Pro", "permissions": ["pro"],
            "prices": [
                {"amount": 1000, "currency": "USD", "interval": "MONTH"},
                {"amount": 10000, "currency": "USD", "interval": "YEAR"}
            ]
        }))
        .await;
    let member = app.create_member("ann@example.com").await;
    let connection = app.connect(&member, json!({"planId": id(&basic)})).await;

    let no_price = action(&app, &connection, "replace", json!({"planId": id(&pro)})).await;
    assert_error(&no_price, StatusCode::BAD_REQUEST, Some("priceId"));
    let unknown = action(
        &app,
        &connection,
        "replace",
        json!({"planId": "pln_nothere"}),
    )
    .await;
    assert_error(&unknown, StatusCode::NOT_FOUND, Some("planId"));
    let same = action(&app, &connection, "replace", json!({"planId": id(&basic)})).await;
    assert_error(&same, StatusCode::CONFLICT, None);

    let yearly = pro["prices"][1]["id"].clone();
    let (status, replaced) = action(
        &app,
        &connection,
        "replace",
        json!({"planId": id(&pro), "priceId": yearly}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["id"], connection["id"]);
    assert_eq!(replaced["planId"], pro["id"]);
    assert_eq!(replaced["planName"], "Pro");
    assert_eq!(replaced["interval"], "YEAR");
    assert_eq!(replaced["amount"], 10000);

    let (_, member) = app.get(&format!("/v1/members/{}", id(&member))).await;
    assert_eq!(member["effectivePermissions"], json!(["pro"]));
}

async fn bad_connection_requests_are_refused(app: Arc<TestApp>) {
    let plan = paid_plan(&app, 0).await;
    let member = app.create_member("ann@example.com").await;
    let path = format!("/v1/members/{}/plan-connections", id(&member));
    let cases = [
        (json!({}), StatusCode::BAD_REQUEST, Some("planId")),
        (
            json!({"planId": 7}),
            StatusCode::BAD_REQUEST,
            Some("planId"),
        ),
        (
            json!({"planId": "gold"}),
            StatusCode::BAD_REQUEST,
            Some("planId"),
        ),
        (
            json!({"planId": "pln_missing"}),
            StatusCode::NOT_FOUND,
            Some("planId"),
        ),
        (
            json!({"planId": id(&plan), "priceId": "prc_other"}),
            StatusCode::BAD_REQUEST,
            Some("priceId"),
        ),
    ];
    for (body, status, param) in cases {
        let response = app.post(&path, body).await;
        assert_error(&response, status, param);
    }
    let unknown_member = app
        .post(
            "/v1/members/mem_missing/plan-connections",
            json!({"planId": id(&plan)}),
        )
        .await;
    assert_error(&unknown_member, StatusCode::NOT_FOUND, None);
    assert_eq!(unknown_member.1["error"]["code"], "member_not_found");
    let response = app
        .post("/v1/plan-connections/con_missing/cancel", json!({}))
        .await;
    assert_error(&response, StatusCode::NOT_FOUND, None);
    app.attach_card(&member).await;
    let connection = app.connect(&member, json!({"planId": id(&plan)})).await;
    let response = action(&app, &connection, "cancel", json!({"atPeriodEnd": "yes"})).await;
    assert_error(&response, StatusCode::BAD_REQUEST, Some("atPeriodEnd"));
    let response = action(&app, &connection, "pause", json!({"resumeAt": "tomorrow"})).await;
    assert_error(&response, StatusCode::BAD_REQUEST, Some("resumeAt"));
    let (_, list) = app.get(&path).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "nothing half-written"
    );
    assert_eq!(list["data"][0]["status"], "ACTIVE");
}

/// A paid price without a trial is charged at once: to a card that works, or not at all.
async fn the_first_period_is_charged_before_the_plan_is_held(app: Arc<TestApp>) {
    let plan = paid_plan(&app, 0).await;
    let trial = paid_plan(&app, 7).await;
    let member = app.create_member("ann@example.com").await;
    let path = format!("/v1/members/{}/plan-connections", id(&member));

    let no_card = app.post(&path, json!({"planId": id(&plan)})).await;
    assert_error(&no_card, StatusCode::PAYMENT_REQUIRED, None);
    assert_eq!(no_card.1["error"]["code"], "payment_method_required");
    let (status, _) = app.post(&path, json!({"planId": id(&trial)})).await;
    assert_eq!(status, StatusCode::CREATED, "a trial needs no charge now");

    let (status, _) = app
        .post(&format!("/v1/members/{}/payment-methods", id(&member)), json!({"card": {"number": "4000000000000341", "expMonth": 1, "expYear": 2040, "cvc": "123"}}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let declined = app.post(&path, json!({"planId": id(&plan)})).await;
    assert_error(&declined, StatusCode::PAYMENT_REQUIRED, None);
    assert_eq!(declined.1["error"]["code"], "card_declined");
    let (_, list) = app.get(&path).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "a refused charge leaves no connection"
    );
    let (_, payments) = app
        .get(&format!("/v1/members/{}/payments", id(&member)))
        .await;
    assert_eq!(payments["data"], json!([]), "and no payment");

    app.attach_card(&member).await;
    let connection = app.connect(&member, json!({"planId": id(&plan)})).await;
    assert_eq!(connection["status"], "ACTIVE");
    let (_, payments) = app
        .get(&format!("/v1/members/{}/payments", id(&member)))
        .await;
    let payment = &payments["data"][0];
    assert_eq!(
        (&payment["amount"], &payment["currency"], &payment["status"]),
        (&json!(1500), &json!("EUR"), &json!("SUCCEEDED"))
    );
    assert_eq!(payment["planConnectionId"], connection["id"]);
    let (_, feed) = app.get("/v1/events?types=payment.succeeded").await;
    assert_eq!(feed["totalCount"], 1);
    assert_eq!(feed["data"][0]["data"]["payment"]["amount"], 1500);

    let live_member = crate::support::send(
        app.request_as(&app.live_key, reqwest::Method::POST, "/v1/members")
            .json(&json!({"email": "live@example.com"})),
    )
    .await
    .1;
    let live_plan = crate::support::send(app.request_as(&app.live_key, reqwest::Method::POST, "/v1/plans").json(&json!({"name": "Live", "prices": [{"amount": 100, "currency": "USD", "interval": "MONTH"}]}))).await.1;
    let refused = crate::support::send(
        app.request_as(
            &app.live_key,
            reqwest::Method::POST,
            &format!("/v1/members/{}/plan-connections", id(&live_member)),
        )
        .json(&json!({"planId": id(&live_plan)})),
    )
    .await;
    assert_error(&refused, StatusCode::CONFLICT, None);
    assert_eq!(refused.1["error"]["code"], "no_payment_gateway");
}

crate::both_backends!(
    the_first_period_is_charged_before_the_plan_is_held,
    connections_follow_the_state_machine,
    replacing_a_plan_keeps_the_connection,
    bad_connection_requests_are_refused,
);
