//! Appstle's external API v2 at /api/external/v2/: the seed's curl examples as they stand,
//! every status code of its table, merchant and partner keys, and isolation between stores.

use std::process::Command;
use std::sync::Arc;

use memberd_core::Environment;
use memberd_server::ops;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::receiver::Receiver;
use crate::support::{id, test_config, TestApp};

const SHOP: &str = "your-store.myshopify.com";

/// A store: an app with a shop domain, and its sandbox merchant key (sandbox, because its
/// gateway can charge the paid plans the tests put customers on).
async fn store(app: &TestApp, shop: &str) -> String {
    let (_, keys) = ops::create_app(&app.store, "My Store", Some(shop.into()))
        .await
        .unwrap();
    keys.into_iter()
        .find(|k| k.key.env == Environment::Sandbox)
        .unwrap()
        .secret
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON, got {text:?}"));
    if !status.is_success() {
        assert_eq!(body["status"], status.as_u16(), "{body}");
        assert!(
            body["title"].is_string() && body["detail"].is_string(),
            "{body}"
        );
        assert!(
            body["message"].as_str().unwrap().starts_with("error."),
            "{body}"
        );
    }
    (status, body)
}

fn get(app: &TestApp, key: &str, path_and_query: &str) -> reqwest::RequestBuilder {
    app.client
        .get(app.url(&format!("/api/external/v2/{path_and_query}")))
        .header("X-API-Key", key)
}

fn post(app: &TestApp, key: &str, path_and_query: &str) -> reqwest::RequestBuilder {
    app.client
        .post(app.url(&format!("/api/external/v2/{path_and_query}")))
        .header("X-API-Key", key)
}

/// A customer (a member with an externalId) on a monthly plan, made through the native API.
async fn customer_on_plan(app: &TestApp, key: &str, customer: &str) -> (Value, Value) {
    let plan = app
        .request_as(key, Method::POST, "/v1/plans")
        .json(&json!({
            "name": "Gold Member", "permissions": ["gold"],
            "prices": [{"amount": 1500, "currency": "USD", "interval": "MONTH"}]
        }))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let member = app
        .request_as(key, Method::POST, "/v1/members")
        .json(&json!({"email": format!("c{customer}@example.com"), "externalId": customer}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    app.attach_card_as(key, &member).await;
    let connection = app
        .request_as(
            key,
            Method::POST,
            &format!("/v1/members/{}/plan-connections", id(&member)),
        )
        .json(&json!({"planId": id(&plan)}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    (plan, connection)
}

/// Runs one of the seed's curl commands as it stands, against this server and key.
/// Runs a seed's curl command against the test server. On a blocking thread: blocking one of
/// the test runtime's two workers could leave a server task queued behind it, and curl
/// waiting for that task forever.
async fn seed_curl(app: &TestApp, key: &str, command: &str) -> Value {
    let command = command
        .replace("https://membership-admin.appstle.com", &app.base)
        .replace("YOUR_API_KEY", key);
    let script = format!("{command} --silent --show-error --fail-with-body");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-c", &script])
            .output()
            .expect("curl runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{command}: {stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(&stdout).unwrap()
}

async fn the_seed_examples_work_as_written(app: Arc<TestApp>) {
    let key = store(&app, SHOP).await;
    let (plan, connection) = customer_on_plan(&app, &key, "12345").await;

    let list = seed_curl(
        &app,
        &key,
        r#"curl -X GET "https://membership-admin.appstle.com/api/external/v2/membership-contracts?shop=your-store.myshopify.com&customerId=12345" \
  -H "X-API-Key: YOUR_API_KEY""#,
    ).await;
    assert_eq!(list["totalElements"], 1);
    let contract = &list["content"][0];
    let contract_id = contract["id"].as_i64().expect("a numeric id");
    assert_eq!(contract["status"], "ACTIVE");
    assert_eq!(contract["membershipPlanName"], "Gold Member");
    assert_eq!(contract["billingCycleType"], "MONTHLY");
    assert_eq!(contract["endDate"], json!(null));
    assert_eq!(contract["customerId"], "12345");
    assert_eq!(contract["planId"], plan["id"]);
    assert_eq!(contract["planConnectionId"], connection["id"]);
    let date = |v: &Value| {
        v.as_str()
            .map(|s| s.len() == 10 && s.as_bytes()[4] == b'-')
            .unwrap_or(false)
    };
    assert!(
        date(&contract["startDate"]) && date(&contract["nextBillingDate"]),
        "{contract}"
    );

    let status = seed_curl(
        &app,
        &key,
        r#"curl -X GET "https://membership-admin.appstle.com/api/external/v2/membership-status?shop=your-store.myshopify.com&customerId=12345" \
  -H "X-API-Key: YOUR_API_KEY""#,
    ).await;
    assert_eq!(status["status"], "ACTIVE");
    assert_eq!(status["active"], true);
    assert_eq!(status["activePlans"][0]["planName"], "Gold Member");
    assert_eq!(status["activePlans"][0]["permissions"], json!(["gold"]));
    assert_eq!(status["activePlans"][0]["contractId"], contract_id);

    let one = seed_curl(&app, &key, &r#"curl -X GET "https://membership-admin.appstle.com/api/external/v2/membership-contracts/{contractId}?shop=your-store.myshopify.com" \
  -H "X-API-Key: YOUR_API_KEY""#.replace("{contractId}", &contract_id.to_string())).await;
    assert_eq!(&one, contract);

    let plans = seed_curl(
        &app,
        &key,
        r#"curl -X GET "https://membership-admin.appstle.com/api/external/v2/membership-plans?shop=your-store.myshopify.com" \
  -H "X-API-Key: YOUR_API_KEY""#,
    ).await;
    assert_eq!(plans[0]["id"], plan["id"]);
    assert_eq!(plans[0]["prices"][0]["billingCycleType"], "MONTHLY");

    let paused = seed_curl(&app, &key, &r#"curl -X POST "https://membership-admin.appstle.com/api/external/v2/membership-contracts/{contractId}/pause?shop=your-store.myshopify.com" \
  -H "X-API-Key: YOUR_API_KEY""#.replace("{contractId}", &contract_id.to_string())).await;
    assert_eq!(paused["status"], "PAUSED");
    let gated = seed_curl(
        &app,
        &key,
        r#"curl -X GET "https://membership-admin.appstle.com/api/external/v2/membership-status?shop=your-store.myshopify.com&customerId=12345" \
  -H "X-API-Key: YOUR_API_KEY""#,
    ).await;
    assert_eq!(
        (&gated["status"], &gated["active"]),
        (&json!("INACTIVE"), &json!(false))
    );
    let resumed = seed_curl(&app, &key, &r#"curl -X POST "https://membership-admin.appstle.com/api/external/v2/membership-contracts/{contractId}/resume?shop=your-store.myshopify.com" \
  -H "X-API-Key: YOUR_API_KEY""#.replace("{contractId}", &contract_id.to_string())).await;
    assert_eq!(resumed["status"], "ACTIVE");

    let cancelled = seed_curl(&app, &key, &r#"curl -X POST "https://membership-admin.appstle.com/api/external/v2/membership-contracts/{contractId}/cancel?shop=your-store.myshopify.com" \
  -H "X-API-Key: YOUR_API_KEY" \
  -H "Content-Type: application/json" \
  -d '{"reason": "Customer requested cancellation via support ticket"}'"#.replace("{contractId}", &contract_id.to_string())).await;
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(
        cancelled["cancellationReason"],
        "Customer requested cancellation via support ticket"
    );
    assert!(date(&cancelled["endDate"]));

    // The other faces see the cancellation, and the feed carries the reason.
    let (_, native) = crate::support::send(app.request_as(
        &key,
        Method::GET,
        &format!("/v1/plan-connections/{}", id(&connection)),
    ))
    .await;
    assert_eq!(native["status"], "CANCELED");
    assert_eq!(
        native["cancelReason"],
        "Customer requested cancellation via support ticket"
    );
    let (_, ms) = crate::support::send_ms(app.ms_as(
        &key,
        Method::GET,
        "/memberstack/members/c12345@example.com",
    ))
    .await;
    assert_eq!(ms["data"]["planConnections"][0]["status"], "CANCELED");
    let (_, feed) = crate::support::send(app.request_as(
        &key,
        Method::GET,
        "/v1/events?types=member.plan.canceled",
    ))
    .await;
    assert_eq!(
        feed["data"][0]["data"]["reason"],
        "Customer requested cancellation via support ticket"
    );
    let (_, filtered) = send(get(
        &app,
        &key,
        &format!("membership-contracts?shop={SHOP}&status=CANCELLED"),
    ))
    .await;
    assert_eq!(filtered["totalElements"], 1);
    let (_, active) = send(get(
        &app,
        &key,
        &format!("membership-contracts?shop={SHOP}&status=ACTIVE"),
    ))
    .await;
    assert_eq!(active["totalElements"], 0);
}

async fn every_status_code_of_the_table(app: Arc<TestApp>) {
    let key = store(&app, SHOP).await;
    let other_key = store(&app, "other-store.myshopify.com").await;
    let (plan, _) = customer_on_plan(&app, &key, "12345").await;
    let q = format!("shop={SHOP}");

    // 200 and 201.
    let (status, page) = send(get(
        &app,
        &key,
        &format!("membership-contracts?{q}&page=0&size=1"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            page["number"].as_i64(),
            page["size"].as_i64(),
            page["first"].as_bool()
        ),
        (Some(0), Some(1), Some(true))
    );
    let (_, b) = crate::support::send(
        app.request_as(&key, Method::POST, "/v1/members")
            .json(&json!({"email": "b@example.com", "externalId": "777"})),
    )
    .await;
    app.attach_card_as(&key, &b).await;
    let (status, created) = send(
        post(&app, &key, &format!("membership-contracts?{q}"))
            .json(&json!({"customerId": "777", "planId": id(&plan)})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["customerId"], "777");
    let (_, page) = send(get(
        &app,
        &key,
        &format!("membership-contracts?{q}&page=1&size=1"),
    ))
    .await;
    assert_eq!(
        (
            page["totalElements"].as_i64(),
            page["totalPages"].as_i64(),
            page["last"].as_bool()
        ),
        (Some(2), Some(2), Some(true))
    );
    assert_eq!(page["content"][0]["customerId"], "777");

    // 400.
    for path in [
        "membership-contracts".to_owned(),
        format!("membership-contracts?{q}&page=-1"),
        format!("membership-contracts?{q}&size=0"),
        format!("membership-contracts?{q}&size=1000"),
        format!("membership-contracts?{q}&status=HAPPY"),
        format!("membership-contracts/abc?{q}"),
        format!("membership-status?{q}"),
    ] {
        let (status, body) = send(get(&app, &key, &path)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
    }
    let (status, body) = send(
        post(&app, &key, &format!("membership-contracts?{q}")).json(&json!({"customerId": "777"})),
    )
    .await;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::BAD_REQUEST, &json!("planId"))
    );
    let (status, _) = send(
        post(&app, &key, &format!("membership-contracts?{q}"))
            .header("content-type", "application/json")
            .body("{nope"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // 401.
    let (status, body) = send(
        app.client
            .get(app.url(&format!("/api/external/v2/membership-contracts?{q}"))),
    )
    .await;
    assert_eq!(
        (status, &body["message"]),
        (StatusCode::UNAUTHORIZED, &json!("error.missing_api_key"))
    );
    let (status, _) = send(get(
        &app,
        "sk_live_unknown",
        &format!("membership-contracts?{q}"),
    ))
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // 403: another store's key, a shop that is not the key's, a key of an app that is no store.
    let (status, _) = send(get(&app, &other_key, &format!("membership-contracts?{q}"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(get(
        &app,
        &key,
        "membership-contracts?shop=other-store.myshopify.com",
    ))
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(get(&app, &app.key, &format!("membership-contracts?{q}"))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(get(
        &app,
        &key,
        &format!("membership-contracts?shop={}", SHOP.to_uppercase()),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "shop domains compare without case");

    // 404.
    for path in [
        format!("membership-contracts/99999999?{q}"),
        format!("nothing-here?{q}"),
    ] {
        let (status, _) = send(get(&app, &key, &path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, body) = send(
        post(&app, &key, &format!("membership-contracts?{q}"))
            .json(&json!({"customerId": "nobody", "planId": id(&plan)})),
    )
    .await;
    assert_eq!(
        (status, &body["field"]),
        (StatusCode::NOT_FOUND, &json!("customerId"))
    );
    let (status, unknown) = send(get(
        &app,
        &key,
        &format!("membership-status?{q}&customerId=nobody"),
    ))
    .await;
    assert_eq!(
        (status, &unknown["status"]),
        (StatusCode::OK, &json!("INACTIVE"))
    );

    // 409 is not in Appstle's table, but an impossible move is still refused and says why.
    let contract_id = page["content"][0]["id"].as_i64().unwrap();
    let (status, body) = send(post(
        &app,
        &key,
        &format!("membership-contracts/{contract_id}/resume?{q}"),
    ))
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("not PAUSED"));
}

async fn partner_keys_open_stores_without_api_access(app: Arc<TestApp>) {
    let key = store(&app, SHOP).await;
    let other_key = store(&app, "other-store.myshopify.com").await;
    customer_on_plan(&app, &key, "12345").await;
    let apps = app.store.list_apps().await.unwrap();
    let shop_app = apps
        .iter()
        .find(|a| a.shop_domain.as_deref() == Some(SHOP))
        .unwrap();
    assert!(app.store.set_api_access(&shop_app.id, false).await.unwrap());
    let partner = ops::create_partner_key(&app.store, "Helpdesk")
        .await
        .unwrap();
    let path = format!("membership-status?shop={SHOP}&customerId=12345");

    let (status, body) = send(get(&app, &key, &path)).await;
    assert_eq!(
        (status, &body["message"]),
        (StatusCode::FORBIDDEN, &json!("error.api_access_required"))
    );
    let (status, body) = send(get(&app, &key, &path).header("X-App-Key", &partner.secret)).await;
    assert_eq!(
        (status, &body["status"]),
        (StatusCode::OK, &json!("ACTIVE"))
    );
    let (status, _) = send(get(&app, &key, &path).header("X-App-Key", "pk_wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A partner key opens no store by itself: always with that store's own merchant key.
    let (status, _) = send(get(&app, &other_key, &path).header("X-App-Key", &partner.secret)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = send(
        app.client
            .get(app.url(&format!("/api/external/v2/{path}")))
            .header("X-App-Key", &partner.secret),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(app
        .store
        .revoke_partner_key(&partner.key.id, ops::now())
        .await
        .unwrap());
    let (status, _) = send(get(&app, &key, &path).header("X-App-Key", &partner.secret)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn a_store_never_sees_another(app: Arc<TestApp>) {
    let a = store(&app, SHOP).await;
    let b = store(&app, "other-store.myshopify.com").await;
    let (_, a_connection) = customer_on_plan(&app, &a, "12345").await;
    customer_on_plan(&app, &b, "777").await;
    let (_, b_connection) = customer_on_plan(&app, &b, "12345").await;
    let (_, b_list) = send(get(
        &app,
        &b,
        "membership-contracts?shop=other-store.myshopify.com&customerId=12345",
    ))
    .await;
    // Each store numbers its own contracts: b's second is 2 whatever a has made.
    let b_contract = b_list["content"][0]["id"].as_i64().unwrap();
    assert_eq!(b_contract, 2, "{b_list}");
    assert_eq!(b_list["content"][0]["planConnectionId"], b_connection["id"]);
    let (status, a_first) = send(get(
        &app,
        &a,
        &format!("membership-contracts/1?shop={SHOP}"),
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        a_first["planConnectionId"], a_connection["id"],
        "a's own number 1"
    );

    let (_, a_list) = send(get(
        &app,
        &a,
        &format!("membership-contracts?shop={SHOP}&customerId=12345"),
    ))
    .await;
    assert_eq!(
        a_list["totalElements"], 1,
        "the same customer id in another store is another customer"
    );
    assert_ne!(a_list["content"][0]["id"], b_contract);
    for path in [format!("membership-contracts/{b_contract}?shop={SHOP}")] {
        let (status, _) = send(get(&app, &a, &path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    for verb in ["cancel", "pause", "resume"] {
        let (status, _) = send(post(
            &app,
            &a,
            &format!("membership-contracts/{b_contract}/{verb}?shop={SHOP}"),
        ))
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{verb}");
    }
    let (status, _) = send(get(
        &app,
        &a,
        &format!("membership-contracts/{b_contract}?shop=other-store.myshopify.com"),
    ))
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, b_after) = send(get(
        &app,
        &b,
        &format!("membership-contracts/{b_contract}?shop=other-store.myshopify.com"),
    ))
    .await;
    assert_eq!(b_after["status"], "ACTIVE", "untouched");
    // The live key of a store is a separate environment: its customers are not the sandbox ones.
    let apps = app.store.list_apps().await.unwrap();
    let a_app = apps
        .iter()
        .find(|x| x.shop_domain.as_deref() == Some(SHOP))
        .unwrap();
    let sandbox = ops::create_key(&app.store, &a_app.id, Environment::Live, "live")
        .await
        .unwrap();
    let (_, sb) = send(get(
        &app,
        &sandbox.secret,
        &format!("membership-contracts?shop={SHOP}"),
    ))
    .await;
    assert_eq!(sb["totalElements"], 0);
}

async fn the_appstle_flavour_sends_contracts_in_this_shape(app: Arc<TestApp>) {
    let receiver = Receiver::start().await;
    let key = store(&app, SHOP).await;
    let endpoint = app
        .request_as(&key, Method::POST, "/v1/webhook-endpoints")
        .json(&json!({"url": format!("{}/appstle", receiver.base), "flavour": "appstle"}))
        .send()
        .await
        .unwrap();
    assert_eq!(endpoint.status(), 201);
    customer_on_plan(&app, &key, "12345").await;
    let (_, list) = send(get(
        &app,
        &key,
        &format!("membership-contracts?shop={SHOP}"),
    ))
    .await;
    let contract = list["content"][0].clone();
    let id = contract["id"].as_i64().unwrap();
    send(
        post(
            &app,
            &key,
            &format!("membership-contracts/{id}/cancel?shop={SHOP}"),
        )
        .json(&json!({"reason": "too pricey"})),
    )
    .await;
    let got = receiver
        .wait_for(
            60,
            "membership.created, .billing-success and .cancelled",
            |r| r.len() >= 3,
        )
        .await;
    let bodies: Vec<Value> = got.iter().map(|r| r.json()).collect();
    let of = |t: &str| {
        bodies
            .iter()
            .find(|b| b["type"] == t)
            .unwrap_or_else(|| panic!("{t} in {bodies:?}"))
    };
    assert_eq!(
        of("membership.created")["data"],
        contract,
        "the webhook carries the contract as the API shows it"
    );
    assert_eq!(
        of("membership.billing-success")["data"]["id"],
        id,
        "the first charge"
    );
    let cancelled = of("membership.cancelled");
    assert_eq!(cancelled["data"]["id"], id);
    assert_eq!(cancelled["data"]["status"], "CANCELLED");
    assert_eq!(cancelled["data"]["cancellationReason"], "too pricey");
    assert_eq!(cancelled["data"]["customerId"], "12345");
}

crate::both_backends!(
    the_seed_examples_work_as_written,
    every_status_code_of_the_table,
    partner_keys_open_stores_without_api_access,
    a_store_never_sees_another,
    the_appstle_flavour_sends_contracts_in_this_shape,
);

pub fn limited_config() -> memberd_server::Config {
    memberd_server::Config {
        rate_limit_per_second: 1,
        rate_limit_burst: 2,
        ..test_config()
    }
}

mod rate_limited {
    crate::both_backends!(crate::appstle::limited_config() => a_store_over_its_rate_limit_gets_429_with_retry_after);
    use super::a_store_over_its_rate_limit_gets_429_with_retry_after;
}

/// 429, per store: two merchant keys of one store share its budget.
async fn a_store_over_its_rate_limit_gets_429_with_retry_after(app: std::sync::Arc<TestApp>) {
    let key = store(&app, SHOP).await;
    let apps = app.store.list_apps().await.unwrap();
    let shop_app = apps
        .iter()
        .find(|a| a.shop_domain.as_deref() == Some(SHOP))
        .unwrap();
    let second = ops::create_key(&app.store, &shop_app.id, Environment::Live, "second")
        .await
        .unwrap();
    let path = format!("membership-plans?shop={SHOP}");
    let mut limited = None;
    for i in 0..50 {
        let k = if i % 2 == 0 { &key } else { &second.secret };
        let response = get(&app, k, &path).send().await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            let retry: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            limited = Some((i, retry, response.json::<Value>().await.unwrap()));
            break;
        }
    }
    let (i, retry, body) = limited.expect("a 429 within 50 quick requests at 1 per second");
    assert!(i >= 2, "the burst of 2 passes");
    assert!(retry >= 1);
    assert_eq!(body["status"], 429);
    // Another store has its own budget.
    let other = store(&app, "other-store.myshopify.com").await;
    let (status, _) = send(get(
        &app,
        &other,
        "membership-plans?shop=other-store.myshopify.com",
    ))
    .await;
    assert_eq!(status, StatusCode::OK);
}

/// 500: when the database is gone, the answer is a bare 500 in Appstle's envelope, with
/// nothing internal in it.
#[tokio::test]
async fn a_failing_database_is_a_bare_500() {
    let app = TestApp::spawn(crate::support::Backend::Sqlite, test_config())
        .await
        .unwrap();
    let key = store(&app, SHOP).await;
    // Keys are checked first, so drop the table the contracts live in rather than the pool.
    app.store
        .execute_admin("DROP TABLE webhook_attempts")
        .await
        .unwrap();
    app.store
        .execute_admin("DROP TABLE webhook_deliveries")
        .await
        .unwrap();
    app.store
        .execute_admin("DROP TABLE plan_connections")
        .await
        .unwrap();
    let (status, body) = send(get(
        &app,
        &key,
        &format!("membership-contracts?shop={SHOP}"),
    ))
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["message"], "error.internal_error");
    let detail = body["detail"].as_str().unwrap();
    assert!(
        !detail.contains("plan_connections") && !detail.to_lowercase().contains("sql"),
        "{detail}"
    );
    app.finish().await;
}
