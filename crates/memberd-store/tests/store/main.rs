//! The store's own checks, on SQLite and on PostgreSQL (when MEMBERD_TEST_POSTGRES_URL is set).
//! The API suite in crates/memberd/tests covers behaviour end to end; these pin what only
//! the store can see, such as the SQL both backends must accept.

use memberd_core::{
    AppId, ConnectionStatus, Email, Environment, KeyId, MemberPatch, PlanStatus, Scope,
};
use memberd_store::{
    ApiKey, App, ConnectionRequest, MemberFilter, PageRequest, PlanFilter, Store, StoreError,
};
use serde_json::json;

mod accounts;
mod attempts;
mod cached_reads;
mod common;
mod emails;
mod event_log;
mod fan_out;
mod idempotency;
mod operators;
mod rate_limits;

use accounts::{
    each_environment_has_a_publishable_key_with_its_settings, failed_logins_are_counted_in_windows,
    nodes_starting_together_make_one_signing_key,
};
use attempts::{a_claim_takes_at_most_its_limit, attempts_recorded_together_apply_in_order};
use emails::{codes_are_kept_as_hashes_and_used_once, senders_never_hold_one_email_at_once};
use event_log::concurrent_creates_are_logged_and_counted_once;
use idempotency::{
    a_key_answered_with_its_write, a_run_out_claim_is_taken_over,
    idempotency_keys_replay_and_refuse,
};
use operators::{
    a_password_link_ends_earlier_sign_ins, a_search_finds_members_by_part_of_what_was_typed,
    the_audit_log_pages_newest_first, the_first_owner_link_works_once_and_only_first,
};

use common::{drop_postgres, first_page, new_member, paid_plan, postgres, scope, sqlite, t};

async fn apps_and_keys(store: &Store) {
    let app = App {
        id: AppId::generate(),
        name: "Shop".into(),
        shop_domain: Some("shop.myshopify.com".into()),
        api_access: true,
        created_at: t("2026-01-01T00:00:00Z"),
    };
    store.create_app(&app).await.unwrap();
    assert_eq!(store.get_app(&app.id).await.unwrap(), Some(app.clone()));
    let twin = App {
        id: AppId::generate(),
        ..app.clone()
    };
    assert!(matches!(
        store.create_app(&twin).await,
        Err(memberd_store::StoreError::Duplicate { field: "shop" })
    ));
    let key = ApiKey {
        id: KeyId::generate(),
        app_id: app.id.clone(),
        env: Environment::Sandbox,
        name: "ci".into(),
        hint: "sk_sb_abcd…".into(),
        created_at: t("2026-01-01T00:00:00Z"),
        revoked_at: None,
    };
    store.insert_key(&key, "hash-1").await.unwrap();
    let owner = store.key_owner("hash-1").await.unwrap().unwrap();
    assert_eq!(
        owner.scope,
        Scope::new(app.id.clone(), Environment::Sandbox)
    );
    assert!(store
        .revoke_key(&key.id, t("2026-01-02T00:00:00Z"))
        .await
        .unwrap());
    assert!(!store
        .revoke_key(&key.id, t("2026-01-03T00:00:00Z"))
        .await
        .unwrap());
    assert_eq!(store.key_owner("hash-1").await.unwrap(), None);
    assert_eq!(
        store.list_keys(Some(&app.id)).await.unwrap()[0].revoked_at,
        Some(t("2026-01-02T00:00:00Z"))
    );
    assert_eq!(store.count_apps().await.unwrap(), 1);
}

async fn plans_round_trip_and_page(store: &Store) {
    let scope = scope(store).await;
    let plan = paid_plan(0);
    store.insert_plan(&scope, &plan).await.unwrap();
    assert_eq!(
        store.get_plan(&scope, &plan.id).await.unwrap(),
        Some(plan.clone())
    );
    for _ in 0..4 {
        store.insert_plan(&scope, &paid_plan(3)).await.unwrap();
    }
    let page = store
        .list_plans(&scope, &PlanFilter::default(), first_page(3))
        .await
        .unwrap();
    assert_eq!(
        (page.items.len(), page.has_more, page.total_count),
        (3, true, 5)
    );
    assert_eq!(page.items[0], plan);
    let next = PageRequest {
        after: page.next_cursor,
        ..first_page(3)
    };
    let rest = store
        .list_plans(&scope, &PlanFilter::default(), next)
        .await
        .unwrap();
    assert_eq!((rest.items.len(), rest.has_more), (2, false));
    let archived = store
        .update_plan(&scope, &plan.id, |p| {
            Ok(p.archive(t("2026-02-01T00:00:00Z")))
        })
        .await
        .unwrap();
    assert_eq!(archived.status, PlanStatus::Archived);
    let filter = PlanFilter {
        status: Some(PlanStatus::Archived),
    };
    assert_eq!(
        store
            .list_plans(&scope, &filter, first_page(10))
            .await
            .unwrap()
            .total_count,
        1
    );
    let other = Scope::new(scope.app_id.clone(), Environment::Live);
    assert_eq!(store.get_plan(&other, &plan.id).await.unwrap(), None);
}

async fn members_keep_unique_fields_and_events(store: &Store) {
    let scope = scope(store).await;
    let (ann, created) = new_member("ann@example.com", Some("42"));
    store.insert_member(&scope, &ann, &created).await.unwrap();
    let (twin, ev) = new_member("ANN@example.com", None);
    assert!(matches!(
        store.insert_member(&scope, &twin, &ev).await,
        Err(StoreError::Duplicate { field: "email" })
    ));
    let (other, ev) = new_member("bob@example.com", Some("42"));
    assert!(matches!(
        store.insert_member(&scope, &other, &ev).await,
        Err(StoreError::Duplicate {
            field: "externalId"
        })
    ));
    // The same email in the other environment is another member.
    let live = Scope::new(scope.app_id.clone(), Environment::Live);
    store.insert_member(&live, &twin, &ev).await.unwrap();

    let by_email = store
        .get_member_by_email(&scope, &Email::parse("Ann@Example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_email.member, ann);
    assert_eq!(
        store
            .get_member_by_external_id(&scope, "42")
            .await
            .unwrap()
            .unwrap()
            .member
            .id,
        ann.id
    );

    let later = t("2026-03-01T00:00:00Z");
    let patch = MemberPatch {
        meta_data: Some(json!({"tier": "gold"}).as_object().unwrap().clone()),
        ..Default::default()
    };
    let updated = store
        .update_member(&scope, &ann.id, |m| m.patch(patch, later))
        .await
        .unwrap();
    assert_eq!(updated.member.meta_data.as_map()["tier"], "gold");
    let (bob, ev) = new_member("bob@example.com", None);
    store.insert_member(&scope, &bob, &ev).await.unwrap();
    let rename = MemberPatch {
        email: Some("bob@example.com".into()),
        ..Default::default()
    };
    assert!(matches!(
        store
            .update_member(&scope, &ann.id, |m| m.patch(rename, later))
            .await,
        Err(StoreError::Duplicate { field: "email" })
    ));

    let since = MemberFilter {
        updated_since: Some(later),
        ..Default::default()
    };
    let page = store
        .list_members(&scope, &since, first_page(10))
        .await
        .unwrap();
    assert_eq!(
        page.items
            .iter()
            .map(|v| v.member.id.clone())
            .collect::<Vec<_>>(),
        vec![ann.id.clone()]
    );

    store.delete_member(&scope, &ann.id, later).await.unwrap();
    assert!(store.get_member(&scope, &ann.id).await.unwrap().is_none());
    assert!(matches!(
        store.delete_member(&scope, &ann.id, later).await,
        Err(StoreError::NotFound { .. })
    ));
    let log = store.list_events(&scope, None, &[], 100).await.unwrap();
    let kinds: Vec<&str> = log.items.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "member.created",
            "member.updated",
            "member.created",
            "member.deleted"
        ]
    );
    let after_update = store.event_cursor(&scope, &log.items[1].id).await.unwrap();
    let only = store
        .list_events(&scope, after_update, &["member.created".into()], 10)
        .await
        .unwrap();
    assert_eq!(only.items.len(), 1);
    assert_eq!(only.items[0].data["auth"]["email"], "bob@example.com");
}

async fn connections_follow_the_state_machine(store: &Store) {
    let scope = scope(store).await;
    let plan = paid_plan(14);
    store.insert_plan(&scope, &plan).await.unwrap();
    let (ann, ev) = new_member("ann@example.com", None);
    store.insert_member(&scope, &ann, &ev).await.unwrap();
    let now = t("2026-01-05T00:00:00Z");
    let view = store
        .connect_plan(&scope, &ann.id, &plan.id, None, now)
        .await
        .unwrap();
    assert_eq!(view.connection.status, ConnectionStatus::Trialing);
    assert_eq!(view.plan_name, "Gold");
    let again = store
        .connect_plan(&scope, &ann.id, &plan.id, None, now)
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Domain(ref e) if e.code() == "plan_already_connected"));

    let (perms, grants) = store.access_grants(&scope, &ann.id).await.unwrap().unwrap();
    assert!(perms.is_empty());
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].permissions, ["gold"]);

    let id = view.connection.id.clone();
    let paused = store
        .change_connection(
            &scope,
            &id,
            ConnectionRequest::Pause { resume_at: None },
            now,
        )
        .await
        .unwrap();
    assert_eq!(paused.connection.status, ConnectionStatus::Paused);
    let err = store
        .change_connection(
            &scope,
            &id,
            ConnectionRequest::Pause { resume_at: None },
            now,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Domain(ref e) if e.code() == "already_paused"));
    store
        .change_connection(&scope, &id, ConnectionRequest::Resume, now)
        .await
        .unwrap();
    let canceled = store
        .change_connection(
            &scope,
            &id,
            ConnectionRequest::Cancel {
                reason: Some("too dear".into()),
                at_period_end: false,
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(canceled.connection.status, ConnectionStatus::Canceled);
    assert_eq!(
        store
            .get_connection(&scope, &id)
            .await
            .unwrap()
            .unwrap()
            .connection,
        canceled.connection
    );
    let member = store.get_member(&scope, &ann.id).await.unwrap().unwrap();
    assert_eq!(member.connections.len(), 1);
    assert!(
        member.permissions().is_empty(),
        "a canceled plan grants nothing"
    );
    assert_eq!(
        member.member.updated_at, now,
        "a plan change touches the member"
    );
    let filter = MemberFilter {
        status: Some(ConnectionStatus::Canceled),
        plan_id: Some(plan.id.clone()),
        ..Default::default()
    };
    assert_eq!(
        store
            .list_members(&scope, &filter, first_page(5))
            .await
            .unwrap()
            .total_count,
        1
    );

    let live = Scope::new(scope.app_id.clone(), Environment::Live);
    assert!(store.get_connection(&live, &id).await.unwrap().is_none());
    assert!(matches!(
        store
            .change_connection(&live, &id, ConnectionRequest::Resume, now)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.access_grants(&live, &ann.id).await.unwrap().is_none());
}

/// A SQLite read keeps its snapshot between requests while nothing has committed: a commit
/// by another connection to the file (here another store, as another process would) must be
/// seen by the very next read, on both read paths (one query, and a session of several).
#[tokio::test]
async fn sqlite_reads_see_each_commit_of_another_connection_at_once() {
    let (reader, dir) = sqlite().await;
    let url = format!("sqlite:{}", dir.join("t.db").display());
    let writer = Store::connect(&url).await.unwrap();
    let scope = scope(&writer).await;
    let (ann, created) = new_member("ann@example.com", None);
    writer.insert_member(&scope, &ann, &created).await.unwrap();
    let filter = MemberFilter::default();
    for round in 0..20 {
        // Read twice so that the second read runs on a kept snapshot.
        for _ in 0..2 {
            reader.get_member(&scope, &ann.id).await.unwrap().unwrap();
            reader
                .list_members(&scope, &filter, first_page(10))
                .await
                .unwrap();
        }
        let tier = format!("tier-{round}");
        let patch = MemberPatch {
            meta_data: Some(json!({ "tier": tier }).as_object().unwrap().clone()),
            ..Default::default()
        };
        writer
            .update_member(&scope, &ann.id, |m| {
                m.patch(patch, t("2026-03-01T00:00:00Z"))
            })
            .await
            .unwrap();
        let seen = reader.get_member(&scope, &ann.id).await.unwrap().unwrap();
        assert_eq!(seen.member.meta_data.as_map()["tier"], tier.as_str());
        let page = reader
            .list_members(&scope, &filter, first_page(10))
            .await
            .unwrap();
        assert_eq!(
            page.items[0].member.meta_data.as_map()["tier"],
            tier.as_str()
        );
    }
    writer.close().await;
    reader.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A kept snapshot holds back checkpoints of the WAL past it, so an idle connection must give
/// its snapshot up soon: after a read, a burst of writes by another connection can be fully
/// checkpointed once the reader has been idle for a moment.
#[tokio::test]
async fn idle_sqlite_reads_let_the_wal_be_checkpointed() {
    let (reader, dir) = sqlite().await;
    let path = dir.join("t.db");
    let writer = Store::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    let scope = scope(&writer).await;
    let (ann, created) = new_member("ann@example.com", None);
    writer.insert_member(&scope, &ann, &created).await.unwrap();
    reader.get_member(&scope, &ann.id).await.unwrap().unwrap();
    for i in 0..20 {
        let (member, created) = new_member(&format!("m{i}@example.com"), None);
        writer
            .insert_member(&scope, &member, &created)
            .await
            .unwrap();
    }
    let checkpointer = rusqlite::Connection::open(&path).unwrap();
    let started = std::time::Instant::now();
    let (log, done) = loop {
        let (log, done): (i64, i64) = checkpointer
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
                Ok((row.get(1)?, row.get(2)?))
            })
            .unwrap();
        if log == done || started.elapsed() > std::time::Duration::from_secs(10) {
            break (log, done);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(log > 0, "the writes went to the WAL");
    assert_eq!(done, log, "every frame of the WAL was checkpointed");
    drop(checkpointer);
    writer.close().await;
    reader.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Pooled connections are pinged only after sitting idle; one the server dropped meanwhile
/// (a restart, an idle timeout in a proxy) is replaced without the caller seeing an error.
#[tokio::test]
async fn postgres_connections_dropped_while_idle_are_replaced() {
    let Some((store, admin, name)) = postgres().await else {
        return;
    };
    store.ping().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    admin
        .execute_admin(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    store
        .ping()
        .await
        .expect("a dropped idle connection is replaced, not handed out");
    drop_postgres(store, admin, name).await;
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            // With the read cache on, as `memberd serve` runs.
            $(#[tokio::test] async fn $case() { let (store, dir) = super::sqlite().await; store.start_read_cache(std::time::Duration::from_secs(3600)).await; super::$case(&store).await; store.close().await; let _ = std::fs::remove_dir_all(dir); })*
        }
        mod on_postgres {
            // With the read cache on, as `memberd serve` runs.
            $(#[tokio::test] async fn $case() { if let Some((store, admin, name)) = super::postgres().await { store.start_read_cache(std::time::Duration::from_secs(3600)).await; super::$case(&store).await; super::drop_postgres(store, admin, name).await; } })*
        }
    };
}

both_backends!(
    apps_and_keys,
    plans_round_trip_and_page,
    members_keep_unique_fields_and_events,
    connections_follow_the_state_machine,
    idempotency_keys_replay_and_refuse,
    a_key_answered_with_its_write,
    a_run_out_claim_is_taken_over,
    concurrent_creates_are_logged_and_counted_once,
    attempts_recorded_together_apply_in_order,
    a_claim_takes_at_most_its_limit,
    failed_logins_are_counted_in_windows,
    nodes_starting_together_make_one_signing_key,
    each_environment_has_a_publishable_key_with_its_settings,
    senders_never_hold_one_email_at_once,
    codes_are_kept_as_hashes_and_used_once,
    the_first_owner_link_works_once_and_only_first,
    a_password_link_ends_earlier_sign_ins,
    the_audit_log_pages_newest_first,
    a_search_finds_members_by_part_of_what_was_typed,
);
