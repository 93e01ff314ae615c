//! Idempotency keys: a key is unclaimed, claimed (with a lease), or answered together with
//! the write it answers, never a write without its answer.

use std::time::Duration;

use memberd_core::Email;
use memberd_store::{answering, IdempotencyClaim, IdempotencyState, Store};

use crate::common::{new_member, scope, t};

const LEASE: Duration = Duration::from_secs(30);

fn claimed(state: IdempotencyState) -> IdempotencyClaim {
    match state {
        IdempotencyState::Started(claim) => claim,
        other => panic!("expected the key to be claimed, got {other:?}"),
    }
}

pub(crate) async fn idempotency_keys_replay_and_refuse(store: &Store) {
    let scope = scope(store).await;
    let now = t("2026-01-01T00:00:00Z");
    let begin = |fp: &'static str, at| store.idempotency_begin(&scope, "k1", fp, at, LEASE);
    let claim = claimed(begin("fp", now).await.unwrap());
    assert_eq!(
        begin("fp", now).await.unwrap(),
        IdempotencyState::InProgress
    );
    assert!(store
        .idempotency_finish(&claim, 201, Some("application/json"), "{}")
        .await
        .unwrap());
    let answered = IdempotencyState::Completed {
        status: 201,
        content_type: Some("application/json".into()),
        body: "{}".into(),
    };
    assert_eq!(begin("fp", now).await.unwrap(), answered);
    assert_eq!(
        begin("other", now).await.unwrap(),
        IdempotencyState::Mismatch
    );
    // A day on, the key is free for a new request.
    let next_day = now.plus_days(2);
    let claim = claimed(begin("other", next_day).await.unwrap());
    store.idempotency_release(&claim).await.unwrap();
    claimed(begin("fp", next_day).await.unwrap());
}

/// Inside `answering`, a write commits only with its answer: dropped before the answer (a
/// crash, a cancelled task), it is rolled back with nothing left of it.
pub(crate) async fn a_key_answered_with_its_write(store: &Store) {
    let scope = scope(store).await;
    let now = t("2026-01-01T00:00:00Z");
    let email = |s: &str| Email::parse(s).unwrap();

    let claim = claimed(
        store
            .idempotency_begin(&scope, "lost", "fp", now, LEASE)
            .await
            .unwrap(),
    );
    let (ann, created) = new_member("ann@example.com", None);
    answering(async {
        store.insert_member(&scope, &ann, &created).await.unwrap();
        // The request ends here without its answer, as when the process dies.
    })
    .await;
    assert!(
        store
            .get_member_by_email(&scope, &email("ann@example.com"))
            .await
            .unwrap()
            .is_none(),
        "a write whose answer was never written is not kept"
    );
    drop(claim);

    let claim = claimed(
        store
            .idempotency_begin(&scope, "kept", "fp", now, LEASE)
            .await
            .unwrap(),
    );
    let (bob, created) = new_member("bob@example.com", None);
    let finished = answering(async {
        store.insert_member(&scope, &bob, &created).await.unwrap();
        store
            .idempotency_finish(&claim, 201, None, "{\"id\":\"bob\"}")
            .await
            .unwrap()
    })
    .await;
    assert!(finished);
    assert!(store
        .get_member_by_email(&scope, &email("bob@example.com"))
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store
            .idempotency_begin(&scope, "kept", "fp", now, LEASE)
            .await
            .unwrap(),
        IdempotencyState::Completed {
            status: 201,
            content_type: None,
            body: "{\"id\":\"bob\"}".into()
        }
    );
}

/// A claim left unanswered past its lease (its process died) is taken over by the next try;
/// the first claim's write can then no longer commit.
pub(crate) async fn a_run_out_claim_is_taken_over(store: &Store) {
    let scope = scope(store).await;
    let now = t("2026-01-01T00:00:00Z");
    let first = claimed(
        store
            .idempotency_begin(&scope, "k", "fp", now, LEASE)
            .await
            .unwrap(),
    );
    let within = t("2026-01-01T00:00:29Z");
    assert_eq!(
        store
            .idempotency_begin(&scope, "k", "fp", within, LEASE)
            .await
            .unwrap(),
        IdempotencyState::InProgress
    );
    let after = t("2026-01-01T00:00:31Z");
    let second = claimed(
        store
            .idempotency_begin(&scope, "k", "fp", after, LEASE)
            .await
            .unwrap(),
    );
    let (late, created) = new_member("late@example.com", None);
    let kept = answering(async {
        store.insert_member(&scope, &late, &created).await.unwrap();
        store
            .idempotency_finish(&first, 201, None, "{}")
            .await
            .unwrap()
    })
    .await;
    assert!(!kept, "the first claim was taken over");
    assert!(
        store
            .get_member_by_email(&scope, &Email::parse("late@example.com").unwrap())
            .await
            .unwrap()
            .is_none(),
        "and its write rolled back"
    );
    assert!(store
        .idempotency_finish(&second, 200, None, "{}")
        .await
        .unwrap());
}
