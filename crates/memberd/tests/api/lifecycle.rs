//! Time moving plan connections along: test clocks advanced across a year for members on
//! every kind of price and card, the scheduler on the system clock, and two servers advancing
//! one clock at once.

use std::collections::BTreeMap;
use std::sync::Arc;

use memberd_core::Timestamp;
use memberd_server::clock::ManualClock;
use memberd_server::workers::scheduler::{Scheduler, SchedulerConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::support::{assert_error, id, send, test_config, TestApp};

const START: &str = "2026-01-01T00:00:00.000Z";

async fn clock(app: &TestApp, at: &str) -> Value {
    let (status, clock) = app.post("/v1/test-clocks", json!({"frozenTime": at})).await;
    assert_eq!(status, StatusCode::CREATED, "{clock}");
    clock
}

async fn member_on(app: &TestApp, clock: &Value, email: &str, card: Option<&str>) -> Value {
    let (status, member) = app
        .post(
            "/v1/members",
            json!({"email": email, "testClockId": id(clock)}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    if let Some(number) = card {
        let (status, pm) = app
            .post(
                &format!("/v1/members/{}/payment-methods", id(&member)),
                json!({"card": {"number": number, "expMonth": 12, "expYear": 2040, "cvc": "123"}}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{pm}");
    }
    member
}

async fn paid_plan(app: &TestApp, name: &str, price: Value) -> Value {
    app.create_plan(json!({"name": name, "prices": [price]}))
        .await
}

async fn advance(app: &TestApp, clock: &Value, to: &str) {
    let (status, moved) = app
        .post(
            &format!("/v1/test-clocks/{}/advance", id(clock)),
            json!({"frozenTime": to}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["frozenTime"], to);
}

/// A member's payments, oldest first, as (date, amount, succeeded).
async fn payments(app: &TestApp, member: &Value) -> Vec<(String, i64, bool)> {
    let (status, list) = app
        .get(&format!("/v1/members/{}/payments", id(member)))
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let mut out: Vec<(String, i64, bool)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["createdAt"].as_str().unwrap()[..10].to_owned(),
                p["amount"].as_i64().unwrap(),
                p["status"] == "SUCCEEDED",
            )
        })
        .collect();
    out.reverse();
    out
}

async fn connection(app: &TestApp, member: &Value) -> Value {
    let (_, list) = app
        .get(&format!("/v1/members/{}/plan-connections", id(member)))
        .await;
    list["data"][0].clone()
}

/// How many events of each type the feed holds about a member's connection.
async fn event_counts(app: &TestApp, connection_id: &str) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(cursor) => format!("/v1/events?limit=100&after={cursor}"),
            None => "/v1/events?limit=100".to_owned(),
        };
        let (_, page) = app.get(&path).await;
        for event in page["data"].as_array().unwrap() {
            let data = &event["data"];
            if data["planConnection"]["id"] == connection_id {
                *counts
                    .entry(event["type"].as_str().unwrap().to_owned())
                    .or_default() += 1;
            }
        }
        if page["hasMore"] != true {
            return counts;
        }
        after = page["nextCursor"].as_str().map(str::to_owned);
    }
}

fn monthly_dates(from_month: u32, to_month: u32) -> Vec<String> {
    (from_month..=to_month)
        .map(|m| format!("2026-{m:02}-01"))
        .collect()
}

async fn a_year_on_a_test_clock_bills_as_a_person_expects(app: Arc<TestApp>) {
    let monthly = paid_plan(
        &app,
        "Monthly",
        json!({"amount": 1000, "currency": "USD", "interval": "MONTH"}),
    )
    .await;
    let yearly_trial = paid_plan(
        &app,
        "Yearly",
        json!({"amount": 12000, "currency": "USD", "interval": "YEAR", "trialDays": 14}),
    )
    .await;
    let weekly = paid_plan(
        &app,
        "Weekly",
        json!({"amount": 500, "currency": "USD", "interval": "WEEK"}),
    )
    .await;
    let pass = paid_plan(
        &app,
        "30-day pass",
        json!({"amount": 5000, "currency": "USD", "interval": "ONETIME", "termDays": 30}),
    )
    .await;
    let clock = clock(&app, START).await;

    // Ann pays monthly with a good card; Fay too, but pauses until March.
    let ann = member_on(&app, &clock, "ann@example.com", Some("4242424242424242")).await;
    app.connect(&ann, json!({"planId": id(&monthly)})).await;
    let fay = member_on(&app, &clock, "fay@example.com", Some("4242424242424242")).await;
    let fay_con = app.connect(&fay, json!({"planId": id(&monthly)})).await;
    let (status, paused) = app
        .post(
            &format!("/v1/plan-connections/{}/pause", id(&fay_con)),
            json!({"resumeAt": "2026-03-01T00:00:00.000Z"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    assert_eq!(
        paused["pausedAt"], "2026-01-01T00:00:00.000Z",
        "a clock's member lives at its time"
    );
    // Bob starts a yearly plan with a trial; Cat too, with a card whose charges all fail.
    let bob = member_on(&app, &clock, "bob@example.com", Some("4242424242424242")).await;
    app.connect(&bob, json!({"planId": id(&yearly_trial)}))
        .await;
    let cat = member_on(&app, &clock, "cat@example.com", Some("4000000000000341")).await;
    let cat_con = app
        .connect(&cat, json!({"planId": id(&yearly_trial)}))
        .await;
    assert_eq!(cat_con["status"], "TRIALING");
    // Dan buys a 30-day pass; Eve a weekly plan she cancels at the end of its first week.
    let dan = member_on(&app, &clock, "dan@example.com", Some("4242424242424242")).await;
    let dan_con = app.connect(&dan, json!({"planId": id(&pass)})).await;
    assert_eq!(dan_con["endDate"], "2026-01-31T00:00:00.000Z");
    let eve = member_on(&app, &clock, "eve@example.com", Some("4242424242424242")).await;
    let eve_con = app.connect(&eve, json!({"planId": id(&weekly)})).await;
    let (status, _) = app
        .post(
            &format!("/v1/plan-connections/{}/cancel", id(&eve_con)),
            json!({"atPeriodEnd": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // Gil has no card at all when his trial ends.
    let gil = member_on(&app, &clock, "gil@example.com", None).await;
    app.connect(&gil, json!({"planId": id(&yearly_trial)}))
        .await;

    // A month, then the rest of the year in two steps.
    advance(&app, &clock, "2026-02-01T12:00:00.000Z").await;
    let cat_now = connection(&app, &cat).await;
    assert_eq!(cat_now["status"], "CANCELED", "{cat_now}");
    assert_eq!(cat_now["cancelReason"], "payment_failed");
    assert_eq!(connection(&app, &dan).await["status"], "EXPIRED");
    assert_eq!(connection(&app, &eve).await["status"], "CANCELED");
    assert_eq!(connection(&app, &fay).await["status"], "PAUSED");
    advance(&app, &clock, "2026-07-01T12:00:00.000Z").await;
    advance(&app, &clock, "2026-12-31T12:00:00.000Z").await;

    // Ann: the first month when she joined, then every first of the month.
    let want: Vec<_> = monthly_dates(1, 12)
        .into_iter()
        .map(|d| (d, 1000, true))
        .collect();
    assert_eq!(payments(&app, &ann).await, want);
    let ann_con = connection(&app, &ann).await;
    assert_eq!(
        (
            &ann_con["status"],
            &ann_con["currentPeriodStart"],
            &ann_con["nextBillingDate"]
        ),
        (
            &json!("ACTIVE"),
            &json!("2026-12-01T00:00:00.000Z"),
            &json!("2027-01-01T00:00:00.000Z")
        )
    );
    // Fay: January, nothing while paused, then from her resumption on the first of March.
    let mut want = vec![("2026-01-01".to_owned(), 1000, true)];
    want.extend(monthly_dates(3, 12).into_iter().map(|d| (d, 1000, true)));
    assert_eq!(payments(&app, &fay).await, want);
    assert_eq!(connection(&app, &fay).await["status"], "ACTIVE");
    // Bob: charged when his trial ended, renewing next January.
    assert_eq!(
        payments(&app, &bob).await,
        [("2026-01-15".to_owned(), 12000, true)]
    );
    assert_eq!(
        connection(&app, &bob).await["nextBillingDate"],
        "2027-01-15T00:00:00.000Z"
    );
    // Cat: the charge at the end of her trial and its three retries failed; nothing since.
    let cat_paid = payments(&app, &cat).await;
    assert_eq!(
        cat_paid,
        [
            ("2026-01-15".to_owned(), 12000, false),
            ("2026-01-16".to_owned(), 12000, false),
            ("2026-01-19".to_owned(), 12000, false),
            ("2026-01-24".to_owned(), 12000, false),
        ]
    );
    let cat_events = event_counts(&app, id(&cat_con)).await;
    assert_eq!(cat_events.get("payment.failed"), Some(&4), "{cat_events:?}");
    assert_eq!(cat_events.get("member.plan.canceled"), Some(&1));
    assert_eq!(
        cat_events.get("member.plan.updated"),
        Some(&3),
        "PAST_DUE after each of the first three failures: {cat_events:?}"
    );
    // Dan: one purchase, expired after 30 days. Eve: one week. Gil: no card, no money.
    assert_eq!(
        payments(&app, &dan).await,
        [("2026-01-01".to_owned(), 5000, true)]
    );
    assert_eq!(
        payments(&app, &eve).await,
        [("2026-01-01".to_owned(), 500, true)]
    );
    let gil_paid = payments(&app, &gil).await;
    assert_eq!(gil_paid.len(), 4);
    assert!(gil_paid.iter().all(|(_, _, ok)| !ok));
    let (_, gil_list) = app.get(&format!("/v1/members/{}/payments", id(&gil))).await;
    assert_eq!(gil_list["data"][0]["failureReason"], "no_payment_method");

    // Access follows: Ann and Bob hold their plans, Cat, Dan and Eve no longer do.
    for (member, plan, allowed) in [
        (&ann, &monthly, true),
        (&bob, &yearly_trial, true),
        (&cat, &yearly_trial, false),
        (&dan, &pass, false),
        (&eve, &weekly, false),
    ] {
        let (_, access) = app
            .get(&format!(
                "/v1/members/{}/access?planId={}",
                id(member),
                id(plan)
            ))
            .await;
        assert_eq!(access["allowed"], allowed, "{member} {access}");
    }
}

async fn test_clocks_refuse_what_they_cannot_do(app: Arc<TestApp>) {
    let clock = clock(&app, START).await;
    let (status, got) = app.get(&format!("/v1/test-clocks/{}", id(&clock))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["frozenTime"], START);
    let advance_path = format!("/v1/test-clocks/{}/advance", id(&clock));
    for (body, param) in [
        (
            json!({"frozenTime": "2025-12-31T00:00:00.000Z"}),
            "frozenTime",
        ),
        (
            json!({"frozenTime": "2040-01-01T00:00:00.000Z"}),
            "frozenTime",
        ),
        (json!({"frozenTime": "soon"}), "frozenTime"),
        (json!({}), "frozenTime"),
    ] {
        assert_error(
            &app.post(&advance_path, body).await,
            StatusCode::BAD_REQUEST,
            Some(param),
        );
    }
    assert_error(
        &app.post(
            "/v1/members",
            json!({"email": "x@example.com", "testClockId": "clock_nope"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        Some("testClockId"),
    );
    assert_eq!(app.member_count().await, 0, "nothing half-written");
    // Clocks are the sandbox's, and each app's own.
    let live = send(
        app.request_as(&app.live_key, Method::POST, "/v1/test-clocks")
            .json(&json!({"frozenTime": START})),
    )
    .await;
    assert_error(&live, StatusCode::FORBIDDEN, None);
    assert_eq!(live.1["error"]["code"], "sandbox_only");
    let (status, _) = send(app.request_as(
        &app.other_app_key,
        Method::GET,
        &format!("/v1/test-clocks/{}", id(&clock)),
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(
        &app.get("/v1/test-clocks/clock_missing").await,
        StatusCode::NOT_FOUND,
        None,
    );
}

async fn replacing_at_period_end_switches_and_bills_the_new_price(app: Arc<TestApp>) {
    let monthly = paid_plan(
        &app,
        "Monthly",
        json!({"amount": 1000, "currency": "USD", "interval": "MONTH"}),
    )
    .await;
    let yearly = paid_plan(
        &app,
        "Yearly",
        json!({"amount": 9000, "currency": "USD", "interval": "YEAR"}),
    )
    .await;
    let clock = clock(&app, START).await;
    let ann = member_on(&app, &clock, "ann@example.com", Some("4242424242424242")).await;
    let con = app.connect(&ann, json!({"planId": id(&monthly)})).await;
    let (status, scheduled) = app
        .post(
            &format!("/v1/plan-connections/{}/replace", id(&con)),
            json!({"planId": id(&yearly), "atPeriodEnd": true}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{scheduled}");
    assert_eq!(scheduled["planId"], id(&monthly));
    assert_eq!(scheduled["scheduledPlanId"], id(&yearly));
    advance(&app, &clock, "2026-03-15T00:00:00.000Z").await;
    let now = connection(&app, &ann).await;
    assert_eq!(now["planId"], id(&yearly));
    assert_eq!(now["scheduledPlanId"], Value::Null);
    assert_eq!(now["currentPeriodStart"], "2026-02-01T00:00:00.000Z");
    assert_eq!(
        payments(&app, &ann).await,
        [
            ("2026-01-01".to_owned(), 1000, true),
            ("2026-02-01".to_owned(), 9000, true)
        ]
    );
    let events = event_counts(&app, id(&con)).await;
    assert_eq!(events.get("member.plan.replaced"), Some(&1), "{events:?}");

    // A one-time price is bought by connecting, never by a change of plan that would not charge it.
    let pass = paid_plan(
        &app,
        "Pass",
        json!({"amount": 5000, "currency": "USD", "interval": "ONETIME"}),
    )
    .await;
    assert_error(
        &app.post(
            &format!("/v1/plan-connections/{}/replace", id(&con)),
            json!({"planId": id(&pass)}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        Some("priceId"),
    );
    // Replacing now bills the new price at once, on the next advance of the member's clock.
    let weekly = paid_plan(
        &app,
        "Weekly",
        json!({"amount": 300, "currency": "USD", "interval": "WEEK"}),
    )
    .await;
    let (status, replaced) = app
        .post(
            &format!("/v1/plan-connections/{}/replace", id(&con)),
            json!({"planId": id(&weekly)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    advance(&app, &clock, "2026-03-15T00:00:00.000Z").await;
    let paid = payments(&app, &ann).await;
    assert_eq!(paid.last(), Some(&("2026-03-15".to_owned(), 300, true)));
    assert_eq!(
        connection(&app, &ann).await["nextBillingDate"],
        "2026-03-22T00:00:00.000Z"
    );
}

/// Members without a clock are renewed by the scheduler on the system clock.
async fn the_scheduler_renews_by_the_system_clock(app: Arc<TestApp>) {
    let monthly = paid_plan(
        &app,
        "Monthly",
        json!({"amount": 1000, "currency": "USD", "interval": "MONTH"}),
    )
    .await;
    let ann = app.create_member("ann@example.com").await;
    app.attach_card(&ann).await;
    let con = app.connect(&ann, json!({"planId": id(&monthly)})).await;
    let period_end = Timestamp::parse(con["currentPeriodEnd"].as_str().unwrap()).unwrap();
    let clock = Arc::new(ManualClock::new(period_end));
    let scheduler = Scheduler::new(app.store.clone(), SchedulerConfig::default(), clock.clone());
    clock.advance_secs(-60);
    assert_eq!(scheduler.tick().await.unwrap(), 0, "not due a minute early");
    clock.advance_secs(120);
    assert_eq!(scheduler.tick().await.unwrap(), 1);
    assert_eq!(scheduler.tick().await.unwrap(), 0, "applied once");
    let (_, list) = app.get(&format!("/v1/members/{}/payments", id(&ann))).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 2, "{list}");
    let renewed = connection(&app, &ann).await;
    assert_eq!(renewed["currentPeriodStart"], con["currentPeriodEnd"]);
}

/// Two servers over one database advance the same clock at once: every transition is
/// applied by one of them, once.
async fn two_servers_advancing_one_clock_never_double_charge(app: Arc<TestApp>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let second = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let store = app.store.clone();
    let server = tokio::spawn(async move {
        memberd_server::serve(test_config(), store, listener, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });

    let monthly = paid_plan(
        &app,
        "Monthly",
        json!({"amount": 1000, "currency": "USD", "interval": "MONTH"}),
    )
    .await;
    let clock = clock(&app, START).await;
    let mut members = Vec::new();
    for i in 0..12 {
        let m = member_on(
            &app,
            &clock,
            &format!("m{i}@example.com"),
            Some("4242424242424242"),
        )
        .await;
        app.connect(&m, json!({"planId": id(&monthly)})).await;
        members.push(m);
    }
    let body = json!({"frozenTime": "2026-06-15T00:00:00.000Z"});
    let path = format!("/v1/test-clocks/{}/advance", id(&clock));
    let first = send(app.request(Method::POST, &path).json(&body));
    let other = send(
        app.client
            .post(format!("{second}{path}"))
            .bearer_auth(&app.key)
            .json(&body),
    );
    let ((s1, b1), (s2, b2)) = tokio::join!(first, other);
    assert_eq!((s1, s2), (StatusCode::OK, StatusCode::OK), "{b1} {b2}");
    for m in &members {
        let paid = payments(&app, m).await;
        let want: Vec<_> = monthly_dates(1, 6)
            .into_iter()
            .map(|d| (d, 1000, true))
            .collect();
        assert_eq!(paid, want, "one charge per month, whoever applied it");
    }
    let _ = stop.send(());
    let _ = server.await;
}

crate::both_backends!(
    a_year_on_a_test_clock_bills_as_a_person_expects,
    test_clocks_refuse_what_they_cannot_do,
    replacing_at_period_end_switches_and_bills_the_new_price,
    the_scheduler_renews_by_the_system_clock,
    two_servers_advancing_one_clock_never_double_charge,
);
