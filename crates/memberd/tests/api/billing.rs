//! Payment methods and the sandbox gateway.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{assert_error, id, send, TestApp};

fn card(number: &str) -> serde_json::Value {
    json!({"card": {"number": number, "expMonth": 12, "expYear": 2040, "cvc": "123"}})
}

async fn cards_are_taken_by_test_number_and_never_kept_whole(app: Arc<TestApp>) {
    let member = app.create_member("ann@example.com").await;
    let path = format!("/v1/members/{}/payment-methods", id(&member));

    let (status, pm) = app.post(&path, card("4242 4242 4242 4242")).await;
    assert_eq!(status, StatusCode::CREATED, "{pm}");
    assert!(id(&pm).starts_with("pm_"));
    assert_eq!(
        pm["card"],
        json!({"brand": "visa", "last4": "4242", "expMonth": 12, "expYear": 2040})
    );
    assert!(
        !pm.to_string().contains("4242424242424242"),
        "the number is never shown whole"
    );
    let (status, _) = app.post(&path, card("4000000000000341")).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "a card whose charges fail still attaches"
    );

    let declined = app.post(&path, card("4000000000000002")).await;
    assert_error(&declined, StatusCode::PAYMENT_REQUIRED, Some("card.number"));
    assert_eq!(declined.1["error"]["code"], "card_declined");

    for (body, param) in [
        (card("4242424242424241"), "card.number"),
        (
            json!({"card": {"number": "4242424242424242", "expMonth": 13, "expYear": 2040, "cvc": "123"}}),
            "card.expMonth",
        ),
        (
            json!({"card": {"number": "4242424242424242", "expMonth": 1, "expYear": 2020, "cvc": "123"}}),
            "card.expYear",
        ),
        (
            json!({"card": {"number": "4242424242424242", "expMonth": 1, "expYear": 2040, "cvc": "x"}}),
            "card.cvc",
        ),
        (
            json!({"card": {"number": "4242424242424242"}}),
            "card.expMonth",
        ),
        (json!({}), "card"),
    ] {
        assert_error(
            &app.post(&path, body).await,
            StatusCode::BAD_REQUEST,
            Some(param),
        );
    }

    let (status, list) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    let last4: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["card"]["last4"].as_str().unwrap())
        .collect();
    assert_eq!(
        last4,
        ["0341", "4242"],
        "newest first, nothing declined or invalid kept"
    );

    // The database holds no full number either.
    let dump = app
        .store
        .list_payment_methods(
            &memberd_core::Scope::new(
                app.store.list_apps().await.unwrap()[0].id.clone(),
                memberd_core::Environment::Sandbox,
            ),
            &memberd_core::MemberId::parse(id(&member)).unwrap(),
        )
        .await
        .unwrap();
    assert!(dump
        .iter()
        .all(|p| !format!("{p:?}").contains("4242424242424242")));

    let unknown = app
        .post(
            "/v1/members/mem_nobody/payment-methods",
            card("4242424242424242"),
        )
        .await;
    assert_error(&unknown, StatusCode::NOT_FOUND, None);
    for key in [&app.live_key, &app.other_app_key] {
        let (status, _) = send(app.request_as(key, Method::GET, &path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
}

async fn the_live_environment_takes_no_cards_without_a_gateway(app: Arc<TestApp>) {
    let (_, member) = send(
        app.request_as(&app.live_key, Method::POST, "/v1/members")
            .json(&json!({"email": "live@example.com"})),
    )
    .await;
    let response = send(
        app.request_as(
            &app.live_key,
            Method::POST,
            &format!("/v1/members/{}/payment-methods", id(&member)),
        )
        .json(&card("4242424242424242")),
    )
    .await;
    assert_error(&response, StatusCode::CONFLICT, None);
    assert_eq!(response.1["error"]["code"], "no_payment_gateway");
    assert!(response.1["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no payment gateway"));
}

async fn analytics_sum_states_arrivals_departures_and_revenue(app: Arc<TestApp>) {
    let price = |amount: i64, currency: &str, interval: &str, trial: u32| json!({"name": format!("{interval} {currency}"), "prices": [{"amount": amount, "currency": currency, "interval": interval, "trialDays": trial}]});
    let monthly = app.create_plan(price(1000, "USD", "MONTH", 0)).await;
    let yearly = app.create_plan(price(12000, "USD", "YEAR", 0)).await;
    let euro = app.create_plan(price(500, "EUR", "MONTH", 0)).await;
    let trial = app.create_plan(price(900, "USD", "MONTH", 14)).await;
    let free = app.create_plan(json!({"name": "Free"})).await;
    let mut connections = Vec::new();
    for (i, plan) in [&monthly, &monthly, &yearly, &euro, &trial, &free]
        .iter()
        .enumerate()
    {
        let member = app.create_member(&format!("m{i}@example.com")).await;
        app.attach_card(&member).await;
        connections.push(app.connect(&member, json!({"planId": id(plan)})).await);
    }
    app.post(
        &format!("/v1/plan-connections/{}/cancel", id(&connections[1])),
        json!({}),
    )
    .await;
    app.post(
        &format!("/v1/plan-connections/{}/pause", id(&connections[3])),
        json!({}),
    )
    .await;

    let (status, summary) = app.get("/v1/analytics/summary").await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    let total = &summary["total"];
    assert_eq!(
        (
            total["active"].as_u64(),
            total["trialing"].as_u64(),
            total["pastDue"].as_u64()
        ),
        (Some(3), Some(1), Some(0))
    );
    assert_eq!(
        (total["new"].as_u64(), total["churned"].as_u64()),
        (Some(6), Some(1))
    );
    assert_eq!(
        total["mrr"],
        json!({"USD": 2000}),
        "a paused, canceled, trialing or free connection brings no MRR"
    );
    assert_eq!(total["arr"], json!({"USD": 24000}));
    let plan = summary["plans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["planId"] == monthly["id"])
        .unwrap();
    assert_eq!(
        (plan["active"].as_u64(), plan["churned"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(plan["mrr"], json!({"USD": 1000}));

    let (_, past) = app
        .get("/v1/analytics/summary?from=2020-01-01&to=2020-02-01")
        .await;
    assert_eq!(
        (
            past["total"]["new"].as_u64(),
            past["total"]["churned"].as_u64()
        ),
        (Some(0), Some(0))
    );
    assert_error(
        &app.get("/v1/analytics/summary?from=2026-02-01&to=2026-01-01")
            .await,
        StatusCode::BAD_REQUEST,
        Some("from"),
    );
    assert_error(
        &app.get("/v1/analytics/summary?to=soon").await,
        StatusCode::BAD_REQUEST,
        Some("to"),
    );
    let (_, other) =
        send(app.request_as(&app.other_app_key, Method::GET, "/v1/analytics/summary")).await;
    assert_eq!(
        other["total"]["new"], 0,
        "another app's figures are its own"
    );
}

crate::both_backends!(
    analytics_sum_states_arrivals_departures_and_revenue,
    cards_are_taken_by_test_number_and_never_kept_whole,
    the_live_environment_takes_no_cards_without_a_gateway,
);
