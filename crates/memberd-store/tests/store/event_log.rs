//! The event log when writes to one environment commit side by side: on PostgreSQL nothing
//! makes them wait for each other, so events may commit in another order than they were
//! numbered, and the log must neither skip nor repeat one.

use std::collections::HashSet;

use memberd_core::webhook::{Endpoint, EndpointDraft};
use memberd_core::Scope;
use memberd_store::{EventCursor, MemberFilter, PageRequest, Store};
use sqlx::Connection;

use crate::common::{database_url, drop_postgres, new_member, postgres, scope, t};

/// An endpoint that wants every event, created before the events of a test.
pub(crate) async fn endpoint(store: &Store, scope: &Scope) -> Endpoint {
    let draft = EndpointDraft {
        url: "https://example.com/hooks".into(),
        ..EndpointDraft::default()
    };
    let endpoint = Endpoint::create(draft, "whsec_test".into(), t("2026-01-01T00:00:00Z")).unwrap();
    store.insert_endpoint(scope, &endpoint).await.unwrap();
    endpoint
}

/// [`endpoint`], then two members created, whose two events it wants.
pub(crate) async fn endpoint_and_two_events(store: &Store, scope: &Scope) -> Endpoint {
    let endpoint = endpoint(store, scope).await;
    for email in ["a@example.com", "b@example.com"] {
        let (member, ev) = new_member(email, None);
        store.insert_member(scope, &member, &ev).await.unwrap();
    }
    endpoint
}

/// Each event of a page, named by the email of the member it is about, or by its id when it
/// has none.
async fn feed(
    store: &Store,
    scope: &Scope,
    after: Option<EventCursor>,
) -> (Vec<String>, Option<EventCursor>) {
    let page = store.list_events(scope, after, &[], 100).await.unwrap();
    let names = page
        .items
        .iter()
        .map(|e| match e.data["auth"]["email"].as_str() {
            Some(email) => email.to_owned(),
            None => e.id.to_string(),
        })
        .collect();
    (names, page.next_cursor.or(after))
}

/// A transaction numbers its event, then a later one numbers and commits its own. A reader
/// must not pass the later event while the earlier may still commit: it would never see the
/// earlier one. The log holds the later event back until the earlier transaction has ended,
/// and the webhook dispatcher, which reads the log the same way, delivers both.
#[tokio::test]
async fn postgres_an_event_that_commits_late_is_neither_skipped_nor_undelivered() {
    let Some((store, admin, name)) = postgres().await else {
        return;
    };
    let scope = scope(&store).await;
    endpoint(&store, &scope).await;
    let (ann, ev) = new_member("ann@example.com", None);
    store.insert_member(&scope, &ann, &ev).await.unwrap();

    let mut early = sqlx::AnyConnection::connect(&database_url(&name))
        .await
        .unwrap();
    sqlx::query("BEGIN").execute(&mut early).await.unwrap();
    sqlx::query(
        "INSERT INTO events (id, app_id, env, type, data, created_at) \
         VALUES ('evt_early', $1, $2, 'member.updated', '{}', 0)",
    )
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .execute(&mut early)
    .await
    .unwrap();
    let (bob, ev) = new_member("bob@example.com", None);
    store.insert_member(&scope, &bob, &ev).await.unwrap();

    // The read waits a second for bob's event to settle, then gives what has.
    let (names, cursor) = feed(&store, &scope, None).await;
    assert_eq!(names, ["ann@example.com"], "bob's event waits");
    let page = store.list_events(&scope, None, &[], 100).await.unwrap();
    assert_eq!(page.total_count, 1, "the count agrees with the page");
    assert_eq!(store.fan_out(100).await.unwrap(), 1, "ann's event only");

    // A read made while the earlier transaction is about to end waits for it.
    let commit = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        sqlx::query("COMMIT").execute(&mut early).await.unwrap();
        early
    });
    let (names, cursor) = feed(&store, &scope, cursor).await;
    assert_eq!(names, ["evt_early", "bob@example.com"]);
    let early = commit.await.unwrap();
    assert_eq!(store.fan_out(100).await.unwrap(), 2, "then the other two");
    assert_eq!(feed(&store, &scope, cursor).await.0, Vec::<String>::new());
    assert_eq!(store.pending_deliveries().await.unwrap(), 3);

    early.close().await.unwrap();
    drop_postgres(store, admin, name).await;
}

/// Many members created at once: each `member.created` event is in the log once, read page by
/// page, each is delivered once, and the member count (on PostgreSQL a sum over the slots of
/// the connections that wrote) agrees with the members there are.
pub(crate) async fn concurrent_creates_are_logged_and_counted_once(store: &Store) {
    const MEMBERS: usize = 40;
    let scope = scope(store).await;
    endpoint(store, &scope).await;
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..MEMBERS {
        let (store, scope) = (store.clone(), scope.clone());
        creates.spawn(async move {
            let (member, ev) = new_member(&format!("m{i}@example.com"), None);
            store.insert_member(&scope, &member, &ev).await.unwrap();
            member
        });
    }
    let members: Vec<_> = creates.join_all().await;

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.list_events(&scope, after, &[], 7).await.unwrap();
        assert_eq!(page.total_count, MEMBERS as i64);
        seen.extend(page.items.iter().map(|e| e.id.clone()));
        after = page.next_cursor;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(seen.len(), MEMBERS);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), MEMBERS);
    assert_eq!(store.fan_out(1_000).await.unwrap(), MEMBERS);
    assert_eq!(store.fan_out(1_000).await.unwrap(), 0);

    let later = t("2026-01-03T00:00:00Z");
    for member in &members[..3] {
        store
            .delete_member(&scope, &member.id, later)
            .await
            .unwrap();
    }
    let page = PageRequest {
        after: None,
        limit: 1,
        order: Default::default(),
    };
    let unfiltered = store
        .list_members(&scope, &MemberFilter::default(), page)
        .await
        .unwrap();
    assert_eq!(unfiltered.total_count, (MEMBERS - 3) as i64);
}

/// Only the transactions of memberd's own database can hold the log back: one left open in
/// another database of the same server (here the one the tests create databases from) does
/// not, although PostgreSQL counts it in every snapshot.
#[tokio::test]
async fn postgres_a_transaction_open_in_another_database_holds_nothing_back() {
    let Some((store, admin, name)) = postgres().await else {
        return;
    };
    let scope = scope(&store).await;
    let url = std::env::var("MEMBERD_TEST_POSTGRES_URL").unwrap();
    let mut elsewhere = sqlx::AnyConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut elsewhere).await.unwrap();
    // Takes a transaction id, as a write would.
    sqlx::query("SELECT pg_current_xact_id()::text")
        .execute(&mut elsewhere)
        .await
        .unwrap();
    let (ann, ev) = new_member("ann@example.com", None);
    store.insert_member(&scope, &ann, &ev).await.unwrap();
    assert_eq!(feed(&store, &scope, None).await.0, ["ann@example.com"]);

    sqlx::query("ROLLBACK")
        .execute(&mut elsewhere)
        .await
        .unwrap();
    elsewhere.close().await.unwrap();
    drop_postgres(store, admin, name).await;
}
