use std::sync::Arc;

use memberd_core::{AppId, Environment};
use memberd_server::ops;
use reqwest::{Method, StatusCode};

use crate::support::{assert_error, send, TestApp};

async fn keys_are_checked_in_every_accepted_header(app: Arc<TestApp>) {
    let url = app.url("/v1/members");
    let client = &app.client;
    for request in [
        client.get(&url).bearer_auth(&app.key),
        client.get(&url).header("X-API-KEY", &app.key),
        client.get(&url).header("X-API-Key", &app.key),
        client
            .get(&url)
            .header("authorization", format!("bearer {}", app.key)),
    ] {
        let (status, _) = send(request).await;
        assert_eq!(status, StatusCode::OK);
    }
    let missing = send(client.get(&url)).await;
    assert_error(&missing, StatusCode::UNAUTHORIZED, None);
    assert_eq!(missing.1["error"]["code"], "missing_api_key");
    for bad in [
        client.get(&url).bearer_auth("sk_sb_not_a_real_key"),
        client.get(&url).header("X-API-KEY", ""),
        client
            .get(&url)
            .header("Authorization", format!("Basic {}", app.key)),
    ] {
        let (status, body) = send(bad).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }

    // A revoked key stops working at once.
    let app_id = app.store.list_apps().await.unwrap()[0].id.clone();
    let key = ops::create_key(&app.store, &app_id, Environment::Sandbox, "temp")
        .await
        .unwrap();
    let (status, _) = send(client.get(&url).bearer_auth(&key.secret)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(app.store.revoke_key(&key.key.id, ops::now()).await.unwrap());
    let revoked = send(client.get(&url).bearer_auth(&key.secret)).await;
    assert_error(&revoked, StatusCode::UNAUTHORIZED, None);
    assert_eq!(revoked.1["error"]["code"], "invalid_api_key");
    assert!(
        ops::create_key(&app.store, &AppId::generate(), Environment::Live, "x")
            .await
            .is_err()
    );
}

/// A key revoked elsewhere (the CLI, another node) reaches a running server through the
/// database: the server keeps a key it has seen for a second, then looks it up again.
async fn a_key_revoked_by_another_process_is_refused_within_a_second(app: Arc<TestApp>) {
    let url = app.url("/v1/members");
    let client = &app.client;
    let app_id = app.store.list_apps().await.unwrap()[0].id.clone();
    let key = ops::create_key(&app.store, &app_id, Environment::Sandbox, "elsewhere")
        .await
        .unwrap();
    let (status, _) = send(client.get(&url).bearer_auth(&key.secret)).await;
    assert_eq!(status, StatusCode::OK);
    // Another store over the same database, with a key cache of its own.
    let elsewhere = memberd_store::Store::connect(&app.database_url)
        .await
        .unwrap();
    assert!(elsewhere.revoke_key(&key.key.id, ops::now()).await.unwrap());
    elsewhere.close().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (status, body) = send(client.get(&url).bearer_auth(&key.secret)).await;
        if status == StatusCode::UNAUTHORIZED {
            assert_eq!(body["error"]["code"], "invalid_api_key");
            break;
        }
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(
            std::time::Instant::now() < deadline,
            "the revoked key still works after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

async fn every_response_carries_a_request_id(app: Arc<TestApp>) {
    let response = app
        .request(Method::GET, "/v1/members")
        .header("X-Request-Id", "trace-me-42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    let mut ids = std::collections::HashSet::new();
    for path in ["/v1/members", "/v1/nowhere", "/healthz", "/openapi.json"] {
        let response = app.request(Method::GET, path).send().await.unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(!id.is_empty());
        ids.insert(id);
    }
    assert_eq!(ids.len(), 4, "a fresh id per request");

    let (status, health) = send(app.client.get(app.url("/healthz"))).await;
    assert_eq!((status, &health["status"]), (StatusCode::OK, &"ok".into()));
    let (status, ready) = send(app.client.get(app.url("/readyz"))).await;
    assert_eq!(
        (status, &ready["status"]),
        (StatusCode::OK, &"ready".into())
    );
}

crate::both_backends!(
    keys_are_checked_in_every_accepted_header,
    a_key_revoked_by_another_process_is_refused_within_a_second,
    every_response_carries_a_request_id,
);

pub fn limited_config() -> memberd_server::Config {
    memberd_server::Config {
        rate_limit_per_second: 1,
        rate_limit_burst: 3,
        ..crate::support::test_config()
    }
}

/// On SQLite the buckets are this process's; on PostgreSQL the cluster's, in the database (and,
/// below, in Redis): the answers are the same.
pub async fn a_key_over_its_rate_limit_gets_429_with_retry_after(app: std::sync::Arc<TestApp>) {
    let mut limited = None;
    for i in 0..50 {
        let response = app.request(Method::GET, "/v1/plans").send().await.unwrap();
        let headers = response.headers().clone();
        for name in ["ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"] {
            assert!(headers.contains_key(name), "{name} on every response");
        }
        assert_eq!(headers["ratelimit-limit"], "3");
        if i < 3 {
            assert_eq!(response.status(), StatusCode::OK, "the burst passes");
        }
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some((headers, response.json::<serde_json::Value>().await.unwrap()));
            break;
        }
    }
    let (headers, body) = limited.expect("a 429 within 50 quick requests at 1 per second");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    assert_eq!(headers["ratelimit-remaining"], "0");
    assert_eq!(body["error"]["code"], "rate_limited");
    // Another key has its own budget.
    let (status, _) = send(app.request_as(&app.other_app_key, Method::GET, "/v1/plans")).await;
    assert_eq!(status, StatusCode::OK);
}

mod rate_limited {
    crate::both_backends!(crate::auth::limited_config() => a_key_over_its_rate_limit_gets_429_with_retry_after);
    use super::a_key_over_its_rate_limit_gets_429_with_retry_after;

    /// The cluster's buckets in Redis (`--redis-url`), when one answers at
    /// MEMBERD_TEST_REDIS_URL (CI starts one).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_redis() {
        let Some(url) = crate::support::redis_url() else {
            return;
        };
        let config = memberd_server::Config {
            redis_url: Some(memberd_server::config::RedisUrl(url)),
            ..super::limited_config()
        };
        crate::support::run(
            crate::support::Backend::Postgres,
            config,
            a_key_over_its_rate_limit_gets_429_with_retry_after,
        )
        .await;
    }
}
