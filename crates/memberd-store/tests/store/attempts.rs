//! Recording a dispatcher's attempts, which a pass does for many at once.

use memberd_core::{AttemptId, DeliveryId, Timestamp};
use memberd_store::{
    AttemptFilter, AttemptRecord, AttemptResult, DeliveryNext, DueDelivery, PageRequest, Store,
};

use crate::common::{scope, t};
use crate::event_log::endpoint_and_two_events;

const OWNER: &str = "dispatcher-test";

fn result(delivery: &DueDelivery, next: DeliveryNext, at: Timestamp) -> AttemptResult {
    let delivered = next == DeliveryNext::Delivered;
    AttemptResult {
        scope: delivery.scope.clone(),
        attempt: AttemptRecord {
            id: AttemptId::generate(),
            delivery_id: delivery.id.clone(),
            endpoint_id: delivery.endpoint.id.clone(),
            event_id: delivery.event.id.clone(),
            attempt: delivery.attempts + 1,
            trigger: "automatic".into(),
            started_at: at,
            duration_ms: 3,
            status_code: Some(if delivered { 204 } else { 500 }),
            response_body: (!delivered).then(|| "down".to_owned()),
            error: None,
        },
        next,
        disable_endpoint: None,
        lease_owner: OWNER.into(),
        now: at,
    }
}

/// Attempts recorded together: each is logged, each delivery moves on, an attempt whose
/// delivery is gone is dropped, and the endpoint's health follows the attempts in their order
/// (a success after a failure clears it; a failure after a success starts it anew).
pub(crate) async fn attempts_recorded_together_apply_in_order(store: &Store) {
    let scope = scope(store).await;
    let endpoint = endpoint_and_two_events(store, &scope).await;
    assert_eq!(store.fan_out(100).await.unwrap(), 2);
    let (t1, t2, t3) = (
        t("2026-01-03T00:00:00Z"),
        t("2026-01-03T00:00:01Z"),
        t("2026-01-03T00:00:02Z"),
    );
    let lease = t("2026-01-03T01:00:00Z");
    let due = store.claim_deliveries(t1, lease, OWNER, 10).await.unwrap();
    assert_eq!(due.len(), 2);
    let mut gone = result(&due[0], DeliveryNext::Delivered, t1);
    gone.attempt.delivery_id = DeliveryId::generate();
    store
        .record_attempts(&[
            result(&due[0], DeliveryNext::RetryAt(t3), t1),
            gone,
            result(&due[1], DeliveryNext::Delivered, t2),
        ])
        .await
        .unwrap();
    let health = || async {
        let endpoint = store.get_endpoint(&scope, &endpoint.id).await.unwrap();
        let endpoint = endpoint.expect("the endpoint is there");
        (endpoint.failing_since, endpoint.last_success_at)
    };
    assert_eq!(health().await, (None, Some(t2)));
    assert_eq!(store.pending_deliveries().await.unwrap(), 1, "one retries");
    let page = PageRequest {
        after: None,
        limit: 10,
        order: Default::default(),
    };
    let log = store
        .list_attempts(&scope, &AttemptFilter::Endpoint(endpoint.id.clone()), page)
        .await
        .unwrap();
    let codes: Vec<_> = log.items.iter().map(|a| a.status_code).collect();
    assert_eq!(
        codes,
        [Some(500), Some(204)],
        "the attempt of a gone delivery is dropped"
    );
    assert_eq!(log.items[0].response_body.as_deref(), Some("down"));

    let due = store.claim_deliveries(t3, lease, OWNER, 10).await.unwrap();
    assert_eq!(due.len(), 1, "the retry is due");
    store
        .record_attempts(&[result(&due[0], DeliveryNext::GiveUp, t3)])
        .await
        .unwrap();
    assert_eq!(health().await, (Some(t3), Some(t2)));
    assert_eq!(store.pending_deliveries().await.unwrap(), 0);
}

/// An endpoint deleted while a dispatcher records its attempts: the delete locks the endpoint,
/// then its deliveries; the recording waits for the endpoint before it touches a delivery, so
/// neither waits for the other in a circle (PostgreSQL used to end one of them as a deadlock,
/// and the delete answered a 500).
#[tokio::test]
async fn postgres_attempts_at_an_endpoint_being_deleted_wait_for_the_delete() {
    use std::time::Duration;

    use sqlx::Connection;

    use crate::common::{database_url, drop_postgres, postgres};

    let Some((store, admin, name)) = postgres().await else {
        return;
    };
    let scope = scope(&store).await;
    let endpoint = endpoint_and_two_events(&store, &scope).await;
    assert_eq!(store.fan_out(100).await.unwrap(), 2);
    let at = t("2026-01-03T00:00:00Z");
    let due = store
        .claim_deliveries(at, t("2026-01-03T01:00:00Z"), OWNER, 10)
        .await
        .unwrap();
    let results: Vec<_> = due
        .iter()
        .map(|d| result(d, DeliveryNext::Delivered, at))
        .collect();

    // The delete's first step: the endpoint's row, locked.
    let mut deleting = sqlx::PgConnection::connect(&database_url(&name))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut deleting).await.unwrap();
    sqlx::query("SELECT id FROM webhook_endpoints WHERE id = $1 FOR UPDATE")
        .bind(endpoint.id.as_str())
        .execute(&mut deleting)
        .await
        .unwrap();
    let recording = {
        let store = store.clone();
        tokio::spawn(async move { store.record_attempts(&results).await })
    };
    let mut watching = sqlx::PgConnection::connect(&database_url(&name))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watching)
        .await
        .unwrap();
        if waiting > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the recording never waited for the endpoint"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The cascade, then the commit: neither waits for the recording.
    sqlx::query("SET LOCAL lock_timeout = '20s'")
        .execute(&mut deleting)
        .await
        .unwrap();
    sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
        .bind(endpoint.id.as_str())
        .execute(&mut deleting)
        .await
        .expect("the delete goes through");
    sqlx::query("COMMIT").execute(&mut deleting).await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), recording)
        .await
        .expect("the recording ends once the delete has")
        .unwrap()
        .expect("the attempts of the deleted deliveries are dropped, not an error");
    assert_eq!(store.pending_deliveries().await.unwrap(), 0);
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_attempts")
        .fetch_one(&mut watching)
        .await
        .unwrap();
    assert_eq!(left, 0, "no attempt of a deleted endpoint is logged");
    deleting.close().await.unwrap();
    watching.close().await.unwrap();
    drop_postgres(store, admin, name).await;
}

/// A claim leases at most its limit, however many deliveries are due.
pub(crate) async fn a_claim_takes_at_most_its_limit(store: &Store) {
    let scope = scope(store).await;
    endpoint_and_two_events(store, &scope).await;
    assert_eq!(store.fan_out(100).await.unwrap(), 2);
    let now = t("2026-01-03T00:00:00Z");
    let lease = t("2026-01-03T01:00:00Z");
    let first = store.claim_deliveries(now, lease, "a", 1).await.unwrap();
    assert_eq!(first.len(), 1, "a claim of one leased {}", first.len());
    let second = store.claim_deliveries(now, lease, "b", 10).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_ne!(first[0].id, second[0].id);
}
