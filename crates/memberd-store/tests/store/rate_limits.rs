//! The cluster's rate-limit buckets on PostgreSQL: what a take gives, and that takes from
//! several connections at once never give more than the bucket holds.

use memberd_store::TokensTaken;

use crate::common::{drop_postgres, postgres};

/// Ten a second, in bursts of ten.
const INTERVAL: f64 = 0.1;
const TOLERANCE: f64 = 1.0;

#[tokio::test]
async fn postgres_a_bucket_gives_its_burst_then_one_token_per_interval() {
    let Some((store, admin, name)) = postgres().await else {
        return;
    };
    assert!(store.shares_rate_limits());
    let take = |want| {
        let store = store.clone();
        async move {
            store
                .take_rate_tokens("key_a", want, INTERVAL, TOLERANCE)
                .await
                .unwrap()
        }
    };
    assert_eq!(take(4).await.granted, 4, "a new bucket is full");
    let rest = take(10).await;
    assert_eq!(rest.granted, 6, "what is left of the burst, not more");
    let empty: TokensTaken = take(1).await;
    assert_eq!(empty.granted, 0);
    // Empty: the next token is about one interval away (less what passed since).
    let next_in = empty.debt_secs - TOLERANCE + INTERVAL;
    assert!(next_in > 0.0 && next_in <= INTERVAL + 1e-6, "{next_in}");
    let other = store
        .take_rate_tokens("key_b", 1, INTERVAL, TOLERANCE)
        .await
        .unwrap();
    assert_eq!(other.granted, 1, "each key has its own bucket");

    tokio::time::sleep(std::time::Duration::from_secs_f64(INTERVAL * 3.5)).await;
    let refilled = take(10).await.granted;
    assert!(
        (3..=4).contains(&refilled),
        "refilled {refilled} in 3.5 intervals"
    );

    // A bucket full for a while is forgotten; a forgotten one is full again.
    assert_eq!(
        store.prune_rate_limits().await.unwrap(),
        0,
        "none has been full for a minute"
    );
    drop_postgres(store, admin, name).await;
}

#[tokio::test]
async fn postgres_takes_at_once_never_give_more_than_the_burst() {
    let Some((store, admin, name)) = postgres().await else {
        return;
    };
    let takes = (0..40).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .take_rate_tokens("key_busy", 1, 10.0, 100.0)
                .await
                .unwrap()
                .granted
        })
    });
    let mut granted = 0;
    for take in takes {
        granted += take.await.unwrap();
    }
    // One token per 10 s, bursts of 10: the 40 takes, well within a second, get 10.
    assert_eq!(granted, 10);
    drop_postgres(store, admin, name).await;
}

#[tokio::test]
async fn sqlite_keeps_no_buckets() {
    let (store, dir) = crate::common::sqlite().await;
    assert!(!store.shares_rate_limits());
    assert!(store
        .take_rate_tokens("key_a", 1, INTERVAL, TOLERANCE)
        .await
        .is_err());
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}
