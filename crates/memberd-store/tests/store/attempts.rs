//! Recording a dispatcher's attempts, which a pass does for many at once.

use memberd_core::{AttemptId, DeliveryId, Timestamp};
use memberd_store::{
    AttemptFilter, AttemptRecord, AttemptResult, DeliveryNext, DueDelivery, PageRequest, Store,
};

use crate::common::{new_member, scope, t};
use crate::event_log::endpoint;

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
    let endpoint = endpoint(store, &scope).await;
    for email in ["a@example.com", "b@example.com"] {
        let (member, ev) = new_member(email, None);
        store.insert_member(&scope, &member, &ev).await.unwrap();
    }
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
