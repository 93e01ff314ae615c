//! Webhooks end to end: a real receiver on a random port, signatures checked with the
//! independent `standardwebhooks` crate, retries driven by a manual clock.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use memberd_core::Timestamp;
use memberd_server::clock::ManualClock;
use memberd_server::workers::webhooks::{Dispatcher, DispatcherConfig};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use standardwebhooks::Webhook;

use crate::receiver::{Received, Receiver};
use crate::support::{assert_error, id, send, test_config, TestApp};

async fn endpoint(app: &TestApp, body: Value) -> Value {
    let (status, endpoint) = app.post("/v1/webhook-endpoints", body).await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");
    endpoint
}

fn verify(secret: &str, r: &Received) -> Result<(), String> {
    let wh = Webhook::new(secret).map_err(|e| e.to_string())?;
    wh.verify(r.body.as_bytes(), &r.headers)
        .map_err(|e| e.to_string())
}

/// A dispatcher of the test's own, on a manual clock, beside a server that runs none.
fn manual_dispatcher(app: &TestApp, allow_private: bool) -> (Arc<Dispatcher>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(memberd_server::ops::now()));
    let config = DispatcherConfig {
        timeout: Duration::from_secs(2),
        allow_private_targets: allow_private,
        ..DispatcherConfig::default()
    };
    let dispatcher = Dispatcher::new(app.store.clone(), config, clock.clone()).unwrap();
    (dispatcher, clock)
}

fn no_workers() -> memberd_server::Config {
    memberd_server::Config {
        run_workers: false,
        ..test_config()
    }
}

async fn endpoints_are_managed_and_their_secrets_rotate(app: Arc<TestApp>) {
    let created = endpoint(
        &app,
        json!({"url": "https://example.com/hooks", "description": "CRM"}),
    )
    .await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(
        secret.starts_with("whsec_") && secret.len() >= 6 + 32,
        "{secret}"
    );
    assert_eq!(created["flavour"], "native");
    assert_eq!(created["eventTypes"], json!([]));
    assert_eq!(created["enabled"], true);
    let path = format!("/v1/webhook-endpoints/{}", id(&created));
    let (status, got) = app.get(&path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        got.get("secret").is_none(),
        "the secret is not in reads: {got}"
    );
    let (_, shown) = app.get(&format!("{path}/secret")).await;
    assert_eq!(shown["secret"], secret.as_str());
    let (status, rotated) = app.post(&format!("{path}/secret/rotate"), json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_ne!(rotated["secret"], secret.as_str());
    let (_, shown) = app.get(&format!("{path}/secret")).await;
    assert_eq!(shown["secret"], rotated["secret"]);

    let (status, patched) = app
        .patch(&path, json!({"flavour": "appstle", "eventTypes": ["membership.paused"], "enabled": false, "description": null}))
        .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["eventTypes"], json!(["membership.paused"]));
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["description"], json!(null));

    for (body, param) in [
        (json!({"url": "ftp://example.com"}), "url"),
        (json!({"url": "example.com/hooks"}), "url"),
        (json!({}), "url"),
        (
            json!({"url": "https://example.com", "eventTypes": ["member.exploded"]}),
            "eventTypes[0]",
        ),
        (
            json!({"url": "https://example.com", "flavour": "appstle", "eventTypes": ["member.created"]}),
            "eventTypes[0]",
        ),
        (
            json!({"url": "https://example.com", "flavour": "zapier"}),
            "flavour",
        ),
    ] {
        assert_error(
            &app.post("/v1/webhook-endpoints", body).await,
            StatusCode::BAD_REQUEST,
            Some(param),
        );
    }
    let (_, list) = app.get("/v1/webhook-endpoints").await;
    assert_eq!(list["totalCount"], 1, "nothing half-written");

    for key in [&app.live_key, &app.other_app_key] {
        for (method, suffix) in [
            (Method::GET, ""),
            (Method::GET, "/secret"),
            (Method::POST, "/secret/rotate"),
            (Method::GET, "/attempts"),
            (Method::DELETE, ""),
        ] {
            let (status, _) =
                send(app.request_as(key, method.clone(), &format!("{path}{suffix}"))).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method} {suffix}");
        }
    }
    let (status, _) = app.delete(&path).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get(&path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, catalog) = app.get("/v1/event-types").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = catalog["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for name in [
        "member.created",
        "member.plan.canceled",
        "payment.failed",
        "payment.succeeded",
        "membership.created",
        "membership.billing-failure",
        "membership.next-order-date-changed",
        "membership.billing-interval-changed",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
}

async fn every_flavour_is_delivered_and_signed(app: Arc<TestApp>) {
    let receiver = Receiver::start().await;
    let native = endpoint(&app, json!({"url": format!("{}/native", receiver.base)})).await;
    let ms = endpoint(
        &app,
        json!({"url": format!("{}/ms", receiver.base), "flavour": "memberstack"}),
    )
    .await;
    let appstle = endpoint(
        &app,
        json!({"url": format!("{}/appstle", receiver.base), "flavour": "appstle"}),
    )
    .await;
    endpoint(
        &app,
        json!({"url": format!("{}/filtered", receiver.base), "eventTypes": ["member.deleted"]}),
    )
    .await;

    let plan = app.create_plan(json!({"name": "Club"})).await;
    let (_, member) = app
        .post(
            "/v1/members",
            json!({"email": "ann@example.com", "metaData": {"10": "x", "9": "y", "f": 1.5}}),
        )
        .await;
    let connection = app.connect(&member, json!({"planId": id(&plan)})).await;
    let c = format!("/v1/plan-connections/{}", id(&connection));
    app.post(&format!("{c}/pause"), json!({})).await;
    app.post(&format!("{c}/resume"), json!({})).await;
    app.post(&format!("{c}/cancel"), json!({"reason": "moving"}))
        .await;

    let got = receiver
        .wait_for(60, "every delivery", |r| {
            let n = |p: &str| r.iter().filter(|x| x.path == p).count();
            n("/native") >= 5 && n("/ms") >= 5 && n("/appstle") >= 4
        })
        .await;
    let at = |p: &str| {
        got.iter()
            .filter(|r| r.path == p)
            .cloned()
            .collect::<Vec<_>>()
    };
    let secret = |e: &Value| e["secret"].as_str().unwrap().to_owned();
    for (path, e) in [("/native", &native), ("/ms", &ms), ("/appstle", &appstle)] {
        for r in at(path) {
            verify(&secret(e), &r).unwrap_or_else(|err| panic!("{path}: {err}: {}", r.body));
            for h in ["id", "timestamp", "signature"] {
                assert_eq!(
                    r.header(&format!("webhook-{h}")),
                    r.header(&format!("svix-{h}"))
                );
            }
            assert!(r.header("webhook-id").starts_with("evt_"));
            assert_eq!(r.header("content-type"), "application/json");
            assert!(
                !r.body.contains(": ") && !r.body.contains(", "),
                "compact: {}",
                r.body
            );
        }
    }
    assert!(
        verify(&secret(&ms), &at("/native")[0]).is_err(),
        "another endpoint's secret does not verify"
    );

    // Deliveries run concurrently, so they may arrive in any order.
    let sorted_types = |path: &str, field: &str| {
        let mut types: Vec<String> = at(path)
            .iter()
            .map(|r| r.json()[field].as_str().unwrap().to_owned())
            .collect();
        types.sort();
        types
    };
    let find = |path: &str, field: &str, t: &str| {
        at(path).into_iter().find(|r| r.json()[field] == t).unwrap()
    };
    assert_eq!(
        sorted_types("/native", "type"),
        [
            "member.created",
            "member.plan.canceled",
            "member.plan.created",
            "member.plan.updated",
            "member.plan.updated"
        ]
    );
    let created = find("/native", "type", "member.created");
    let first = created.json();
    assert_eq!(first["id"], created.header("webhook-id"));
    assert_eq!(first["data"]["auth"]["email"], "ann@example.com");
    assert!(Timestamp::parse(first["timestamp"].as_str().unwrap()).is_some());
    // Keys as JavaScript orders them: array indices first, in numeric order.
    assert!(
        created
            .body
            .contains(r#""metaData":{"9":"y","10":"x","f":1.5}"#),
        "{}",
        created.body
    );

    let ms_first = find("/ms", "event", "member.created").json();
    assert!(ms_first["timestamp"].is_i64());
    assert_eq!(ms_first["data"]["id"], member["id"]);
    assert_eq!(
        sorted_types("/ms", "event"),
        sorted_types("/native", "type")
    );

    assert_eq!(
        sorted_types("/appstle", "type"),
        [
            "membership.activated",
            "membership.cancelled",
            "membership.created",
            "membership.paused"
        ]
    );
    let cancelled = find("/appstle", "type", "membership.cancelled").json();
    assert_eq!(cancelled["data"]["planConnectionId"], connection["id"]);
    assert!(
        cancelled["data"]["id"].is_i64(),
        "Appstle's contract ids are numbers"
    );
    assert_eq!(cancelled["data"]["membershipPlanName"], "Club");
    assert_eq!(cancelled["data"]["status"], "CANCELLED");
    assert_eq!(cancelled["data"]["cancellationReason"], "moving");
    assert!(
        at("/filtered").is_empty(),
        "a filtered endpoint gets only its types"
    );

    // After a rotation, the native flavour signs with both secrets, the memberstack one with the new only.
    let (_, new_native) = app
        .post(
            &format!("/v1/webhook-endpoints/{}/secret/rotate", id(&native)),
            json!({}),
        )
        .await;
    let (_, new_ms) = app
        .post(
            &format!("/v1/webhook-endpoints/{}/secret/rotate", id(&ms)),
            json!({}),
        )
        .await;
    app.delete(&format!("/v1/members/{}", id(&member))).await;
    let got = receiver
        .wait_for(60, "the deletion", |r| {
            r.iter()
                .filter(|x| x.body.contains("member.deleted"))
                .count()
                >= 3
        })
        .await;
    let last = |p: &str| got.iter().rev().find(|r| r.path == p).unwrap().clone();
    let n = last("/native");
    assert_eq!(n.header("webhook-signature").split(' ').count(), 2);
    verify(&secret(&new_native), &n).unwrap();
    verify(&secret(&native), &n).unwrap();
    let m = last("/ms");
    assert_eq!(m.header("svix-signature").split(' ').count(), 1);
    verify(&secret(&new_ms), &m).unwrap();
    assert!(verify(&secret(&ms), &m).is_err());
    assert_eq!(last("/filtered").json()["type"], "member.deleted");

    // Every attempt is in the log, per endpoint and per event.
    // The receiver has a request a moment before the dispatcher has logged its attempt.
    let mut attempts = Value::Null;
    for _ in 0..600 {
        attempts = app
            .get(&format!("/v1/webhook-endpoints/{}/attempts", id(&native)))
            .await
            .1;
        if attempts["totalCount"] == 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(attempts["totalCount"], 6);
    assert_eq!(attempts["data"][0]["statusCode"], 200);
    assert_eq!(attempts["data"][0]["trigger"], "automatic");
    let event_id = created.header("webhook-id").to_owned();
    let (_, per_event) = app.get(&format!("/v1/events/{event_id}/attempts")).await;
    assert_eq!(
        per_event["totalCount"], 2,
        "native and memberstack got member.created: {per_event}"
    );
}

async fn failures_are_retried_on_schedule_and_can_be_replayed(app: Arc<TestApp>) {
    let receiver = Receiver::start().await;
    let (dispatcher, clock) = manual_dispatcher(&app, true);
    let e = endpoint(&app, json!({"url": format!("{}/hook", receiver.base)})).await;
    receiver.answer(&[500, 503]);
    app.create_member("ann@example.com").await;

    assert_eq!(
        dispatcher.drain().await.unwrap(),
        1,
        "the first attempt goes at once"
    );
    clock.advance_secs(4);
    assert_eq!(dispatcher.drain().await.unwrap(), 0, "not before 5 s");
    clock.advance_secs(2);
    assert_eq!(dispatcher.drain().await.unwrap(), 1, "the second after 5 s");
    assert_eq!(dispatcher.drain().await.unwrap(), 0);
    clock.advance_secs(299);
    assert_eq!(
        dispatcher.drain().await.unwrap(),
        0,
        "the third not before 5 min"
    );
    clock.advance_secs(40);
    assert_eq!(
        dispatcher.drain().await.unwrap(),
        1,
        "the third after 5 min (and jitter)"
    );
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter()
            .all(|r| r.header("webhook-id") == got[0].header("webhook-id")),
        "one id across retries"
    );
    let (_, attempts) = app
        .get(&format!("/v1/webhook-endpoints/{}/attempts", id(&e)))
        .await;
    let codes: Vec<&Value> = attempts["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["statusCode"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(503), &json!(200)]);
    assert_eq!(attempts["data"][2]["attempt"], 3);

    // A receiver that keeps failing: eight attempts over about a day, then the delivery fails.
    receiver.answer(&[500; 8]);
    let (_, second) = app
        .post("/v1/members", json!({"email": "bob@example.com"}))
        .await;
    let mut attempts_made = 0;
    for _ in 0..40 {
        attempts_made += dispatcher.drain().await.unwrap();
        clock.advance_secs(3_600);
    }
    assert_eq!(attempts_made, 8);
    assert_eq!(receiver.received().len(), 11);

    // Recovery sends what failed since a time again, now, logged as manual.
    let since = Timestamp::from_micros(
        Timestamp::parse(second["createdAt"].as_str().unwrap())
            .unwrap()
            .as_micros()
            - 1_000_000,
    );
    let (status, recovered) = app
        .post(
            &format!("/v1/webhook-endpoints/{}/recover", id(&e)),
            json!({"since": since.to_rfc3339()}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(recovered["redelivering"], 1);
    assert_eq!(dispatcher.drain().await.unwrap(), 1);
    let last = receiver.received().pop().unwrap();
    assert_eq!(last.json()["data"]["id"], second["id"]);

    // Redelivery of one event, even one that was delivered.
    let event_id = receiver.received()[0].header("webhook-id").to_owned();
    let (status, _) = app
        .post(
            &format!("/v1/webhook-endpoints/{}/redeliver", id(&e)),
            json!({"eventId": event_id}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(dispatcher.drain().await.unwrap(), 1);
    let (_, per_event) = app.get(&format!("/v1/events/{event_id}/attempts")).await;
    let data = per_event["data"].as_array().unwrap();
    assert_eq!(data.len(), 4);
    assert_eq!(data[3]["trigger"], "manual");
    let missing = app
        .post(
            &format!("/v1/webhook-endpoints/{}/redeliver", id(&e)),
            json!({"eventId": "evt_nothere"}),
        )
        .await;
    assert_error(&missing, StatusCode::NOT_FOUND, Some("eventId"));

    // A receiver that does not answer in time is retried like one that fails.
    receiver.delay(Duration::from_secs(3));
    app.create_member("slow@example.com").await;
    assert_eq!(dispatcher.drain().await.unwrap(), 1);
    let (_, attempts) = app
        .get(&format!(
            "/v1/webhook-endpoints/{}/attempts?order=desc&limit=1",
            id(&e)
        ))
        .await;
    assert_eq!(attempts["data"][0]["statusCode"], json!(null));
    assert!(
        attempts["data"][0]["error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{attempts}"
    );
}

async fn an_endpoint_that_is_gone_or_failing_for_days_is_disabled(app: Arc<TestApp>) {
    let receiver = Receiver::start().await;
    let (dispatcher, clock) = manual_dispatcher(&app, true);
    let gone = endpoint(&app, json!({"url": format!("{}/gone", receiver.base)})).await;
    receiver.answer(&[410]);
    app.create_member("ann@example.com").await;
    assert_eq!(dispatcher.drain().await.unwrap(), 1);
    let (_, after) = app
        .get(&format!("/v1/webhook-endpoints/{}", id(&gone)))
        .await;
    assert_eq!(
        (&after["enabled"], &after["disabledReason"]),
        (&json!(false), &json!("gone"))
    );
    // The feed waits a second for transactions that began before the event; on a loaded
    // machine one (autovacuum's, say) may take longer, so look until it shows.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let feed = loop {
        let (_, feed) = app.get("/v1/events?types=webhook.endpoint.disabled").await;
        if feed["totalCount"] != 0 || std::time::Instant::now() > deadline {
            break feed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(feed["totalCount"], 1);
    assert_eq!(feed["data"][0]["data"]["endpointId"], gone["id"]);
    app.create_member("bob@example.com").await;
    assert_eq!(
        dispatcher.drain().await.unwrap(),
        0,
        "nothing goes to a disabled endpoint"
    );
    // Turned back on, it gets what it missed: the new member, and the news of its own disabling.
    app.patch(
        &format!("/v1/webhook-endpoints/{}", id(&gone)),
        json!({"enabled": true}),
    )
    .await;
    assert_eq!(dispatcher.drain().await.unwrap(), 2);
    let mut missed: Vec<String> = receiver.at("/gone")[1..]
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    missed.sort();
    assert_eq!(missed, ["member.created", "webhook.endpoint.disabled"]);
    app.delete(&format!("/v1/webhook-endpoints/{}", id(&gone)))
        .await;

    let failing = endpoint(&app, json!({"url": format!("{}/failing", receiver.base)})).await;
    receiver.answer(&[500; 100]);
    app.create_member("carl@example.com").await;
    for _ in 0..5 * 24 {
        dispatcher.drain().await.unwrap();
        clock.advance_secs(3_600);
    }
    let (_, still) = app
        .get(&format!("/v1/webhook-endpoints/{}", id(&failing)))
        .await;
    assert_eq!(still["enabled"], true, "under five days of failure");
    assert!(still["failingSince"].is_string());
    clock.advance_secs(3_600);
    app.create_member("dora@example.com").await;
    dispatcher.drain().await.unwrap();
    let (_, after) = app
        .get(&format!("/v1/webhook-endpoints/{}", id(&failing)))
        .await;
    assert_eq!(
        (&after["enabled"], &after["disabledReason"]),
        (&json!(false), &json!("failing"))
    );
}

async fn private_targets_are_refused_unless_allowed(app: Arc<TestApp>) {
    let receiver = Receiver::start().await;
    let (dispatcher, _clock) = manual_dispatcher(&app, false);
    let port = receiver.base.rsplit(':').next().unwrap().to_owned();
    let literal = endpoint(&app, json!({"url": format!("{}/literal", receiver.base)})).await;
    let named = endpoint(
        &app,
        json!({"url": format!("http://localhost:{port}/named")}),
    )
    .await;
    app.create_member("ann@example.com").await;
    assert_eq!(dispatcher.drain().await.unwrap(), 2);
    assert!(
        receiver.received().is_empty(),
        "nothing reached the private address"
    );
    for e in [&literal, &named] {
        let (_, attempts) = app
            .get(&format!("/v1/webhook-endpoints/{}/attempts", id(e)))
            .await;
        let error = attempts["data"][0]["error"].as_str().unwrap();
        assert!(error.contains("internal address"), "{error}");
        assert!(error.contains("--allow-private-webhook-targets"), "{error}");
    }
}

async fn two_dispatchers_never_send_the_same_attempt(app: Arc<TestApp>) {
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_millis(5));
    let (first, _) = manual_dispatcher(&app, true);
    let (second, _) = manual_dispatcher(&app, true);
    endpoint(&app, json!({"url": format!("{}/hook", receiver.base)})).await;
    for i in 0..150 {
        app.create_member(&format!("m{i}@example.com")).await;
    }
    let (a, b) = tokio::join!(first.drain(), second.drain());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a + b, 150, "{a} + {b}");
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in receiver.received() {
        *seen.entry(r.header("webhook-id").to_owned()).or_default() += 1;
    }
    assert_eq!(seen.len(), 150);
    assert!(seen.values().all(|n| *n == 1), "an event was sent twice");
}

crate::both_backends!(
    endpoints_are_managed_and_their_secrets_rotate,
    every_flavour_is_delivered_and_signed,
);

mod with_a_manual_clock {
    use super::*;
    crate::both_backends!(super::no_workers() =>
        failures_are_retried_on_schedule_and_can_be_replayed,
        an_endpoint_that_is_gone_or_failing_for_days_is_disabled,
        private_targets_are_refused_unless_allowed,
        two_dispatchers_never_send_the_same_attempt,
    );
}
