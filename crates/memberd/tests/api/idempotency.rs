use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{assert_error, send, TestApp};

async fn post_with_key(
    app: &TestApp,
    path: &str,
    key: &str,
    body: Value,
) -> (StatusCode, Value, bool) {
    let response = app
        .request(Method::POST, path)
        .header("Idempotency-Key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let replayed = response.headers().contains_key("idempotent-replayed");
    let status = response.status();
    (status, response.json().await.unwrap(), replayed)
}

async fn a_retried_post_is_applied_once(app: Arc<TestApp>) {
    let body = json!({"email": "ann@example.com", "metaData": {"source": "retry"}});
    let (status, first, replayed) =
        post_with_key(&app, "/v1/members", "signup-1", body.clone()).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, false), "{first}");
    let (status, second, replayed) =
        post_with_key(&app, "/v1/members", "signup-1", body.clone()).await;
    assert_eq!((status, replayed), (StatusCode::CREATED, true));
    assert_eq!(second, first, "the retry replays the first response");
    assert_eq!(app.member_count().await, 1);
    assert_eq!(app.event_count().await, 1, "one member.created");

    let (status, reused, _) = post_with_key(
        &app,
        "/v1/members",
        "signup-1",
        json!({"email": "bob@example.com"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reused}");
    assert_eq!(reused["error"]["code"], "idempotency_key_reused");
    assert_eq!(app.member_count().await, 1);

    // A refusal is replayed too: the request was answered, and retrying it answers the same.
    let bad = json!({"email": "not an email"});
    let (status, refused, _) = post_with_key(&app, "/v1/members", "bad-1", bad.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, again, replayed) = post_with_key(&app, "/v1/members", "bad-1", bad).await;
    assert_eq!((status, replayed), (StatusCode::BAD_REQUEST, true));
    assert_eq!(again, refused);

    // Keys belong to one environment: the live environment may reuse it.
    let response = app
        .request_as(&app.live_key, Method::POST, "/v1/members")
        .header("Idempotency-Key", "signup-1")
        .json(&json!({"email": "live@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    let too_long = send(
        app.request(Method::POST, "/v1/members")
            .header("Idempotency-Key", "k".repeat(300))
            .json(&json!({"email": "carl@example.com"})),
    )
    .await;
    assert_error(&too_long, StatusCode::BAD_REQUEST, Some("Idempotency-Key"));
}

/// Holds every insert into `members` back until rolled back (or dropped): a table lock on
/// PostgreSQL, the write lock on SQLite.
pub async fn hold_member_inserts(database_url: &str) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database_url).await.unwrap();
    let lock = if database_url.starts_with("postgres") {
        vec!["BEGIN", "LOCK TABLE members IN SHARE MODE"]
    } else {
        vec!["BEGIN IMMEDIATE"]
    };
    for statement in lock {
        sqlx::query(statement).execute(&mut conn).await.unwrap();
    }
    conn
}

/// Sends `request` and gives up on it once it is held up by `hold_member_inserts`, as a
/// client that times out or hangs up would. On PostgreSQL it gives up once a member insert
/// waits on the lock, however long the request took to get there (the key check and the rate
/// limit come first, and the rate limit may ask the database); SQLite has no view of its
/// waiters, so there the client gives up after half a second.
pub async fn give_up_once_held<F>(database_url: &str, request: F)
where
    F: std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
{
    if database_url.starts_with("postgres") {
        let request = tokio::spawn(request);
        wait_for_a_member_insert_to_wait(database_url).await;
        request.abort();
        assert!(
            request.await.is_err_and(|e| e.is_cancelled()),
            "the write was held"
        );
    } else {
        let gave_up = tokio::time::timeout(std::time::Duration::from_millis(500), request).await;
        assert!(gave_up.is_err(), "the write was held");
    }
}

/// Returns once a member insert of the database at `database_url` (PostgreSQL) waits on a
/// lock, such as the one `hold_member_inserts` holds.
pub async fn wait_for_a_member_insert_to_wait(database_url: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(database_url).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
             AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO members%'",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        if sqlx::Row::get::<i64, _>(&row, "n") > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no member insert waits on the lock"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    conn.close().await.unwrap();
}

/// A client that gives up on a write (a timeout, a dropped connection) does not cut it off
/// halfway: the write, its events and its Idempotency-Key's record run to their end, and the
/// retry gets the first response back instead of a "still being processed" that would last
/// as long as the key does.
async fn a_write_whose_client_went_away_finishes_and_is_replayed(app: Arc<TestApp>) {
    let body = json!({"email": "ann@example.com"});
    let mut held = hold_member_inserts(&app.database_url).await;
    let request = app
        .request(Method::POST, "/v1/members")
        .header("Idempotency-Key", "signup-away")
        .json(&body)
        .send();
    give_up_once_held(&app.database_url, request).await;
    sqlx::query("ROLLBACK").execute(&mut held).await.unwrap();

    let mut retried = None;
    for _ in 0..100 {
        let (status, body, replayed) =
            post_with_key(&app, "/v1/members", "signup-away", body.clone()).await;
        if status != StatusCode::CONFLICT {
            retried = Some((status, body, replayed));
            break;
        }
        // The first request may still be finishing.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, member, replayed) = retried.expect("the first request finished");
    assert_eq!((status, replayed), (StatusCode::CREATED, true), "{member}");
    assert_eq!(member["email"], "ann@example.com");
    assert_eq!(app.member_count().await, 1);
    assert_eq!(app.event_count().await, 1, "one member.created");
}

crate::both_backends!(
    a_retried_post_is_applied_once,
    a_write_whose_client_went_away_finishes_and_is_replayed
);
