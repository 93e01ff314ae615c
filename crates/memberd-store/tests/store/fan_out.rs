//! Fanning the event log out into deliveries from several dispatchers over one PostgreSQL
//! database: they take turns at an endpoint instead of all building the same deliveries.

use std::time::Duration;

use sqlx::Connection;

use crate::common::{database_url, drop_postgres, new_member, postgres, scope};
use crate::event_log::{endpoint, endpoint_and_two_events};

#[tokio::test]
async fn postgres_a_dispatcher_skips_an_endpoint_another_is_fanning_out() {
    let Some((store, admin, name)) = postgres().await else {
        return;
    };
    let scope = scope(&store).await;
    let endpoint = endpoint_and_two_events(&store, &scope).await;

    // Another dispatcher's turn at the endpoint, held open.
    let mut other = sqlx::PgConnection::connect(&database_url(&name))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut other).await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('memberd fan-out ' || $1, 0))")
        .bind(endpoint.id.as_str())
        .execute(&mut other)
        .await
        .unwrap();
    let skipped = tokio::time::timeout(Duration::from_secs(30), store.fan_out(100))
        .await
        .expect("a pass does not wait for another dispatcher's turn")
        .unwrap();
    assert_eq!(skipped, 0, "the endpoint is left to the dispatcher at it");

    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    other.close().await.unwrap();
    assert_eq!(store.fan_out(100).await.unwrap(), 2, "its turn now");
    assert_eq!(store.fan_out(100).await.unwrap(), 0);
    drop_postgres(store, admin, name).await;
}

#[tokio::test]
async fn postgres_passes_at_once_create_each_delivery_once() {
    let Some((store, admin, name)) = postgres().await else {
        return;
    };
    let scope = scope(&store).await;
    endpoint(&store, &scope).await;
    let others: Vec<_> = {
        let mut others = Vec::new();
        for _ in 0..3 {
            others.push(
                memberd_store::Store::connect(&database_url(&name))
                    .await
                    .unwrap(),
            );
        }
        others
    };
    let mut created = 0;
    for round in 0..5 {
        for i in 0..20 {
            let (member, ev) = new_member(&format!("m{round}-{i}@example.com"), None);
            store.insert_member(&scope, &member, &ev).await.unwrap();
        }
        let passes: Vec<_> = others
            .iter()
            .map(|other| {
                let other = other.clone();
                tokio::spawn(async move { other.fan_out(1_000).await })
            })
            .collect();
        for pass in passes {
            created += pass.await.unwrap().unwrap();
        }
    }
    // What the racing passes left is picked up by the next one.
    created += store.fan_out(1_000).await.unwrap();
    assert_eq!(created, 100, "each event once, for the one endpoint");
    for other in others {
        other.close().await;
    }
    drop_postgres(store, admin, name).await;
}
