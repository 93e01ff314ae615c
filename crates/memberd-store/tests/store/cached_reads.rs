//! The read cache on both backends: what another node, plain SQL or the store itself changes
//! shows in the next read.

use memberd_core::plan::PlanPatch;
use memberd_core::{ConnectionStatus, Member, MemberPatch, Plan, Scope};
use memberd_store::{ConnectionRequest, Store};
use sqlx::Connection;

use crate::common::{
    database_url, drop_postgres, new_member, paid_plan, postgres, scope, sqlite, t,
};

/// A scope with a paid plan and a member whose customer id is `cust-1`, not yet connected.
async fn customer_and_plan(store: &Store) -> (Scope, Plan, Member) {
    let scope = scope(store).await;
    let plan = paid_plan(0);
    store.insert_plan(&scope, &plan).await.unwrap();
    let (ann, ev) = new_member("ann@example.com", Some("cust-1"));
    store.insert_member(&scope, &ann, &ev).await.unwrap();
    (scope, plan, ann)
}

/// Polls `read` until it returns `want`, failing after a generous deadline.
async fn eventually<T, F, Fut>(what: &str, want: T, read: F)
where
    T: PartialEq + std::fmt::Debug,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let got = read().await;
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: still {got:?}, want {want:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// On PostgreSQL the access check's and membership status's reads are answered from memory,
/// and a change made by another node (here a second store, which tells the others itself) or
/// by plain SQL (announced by the triggers) reaches them, also after the connection that
/// listens for them was killed.
/// Entries live for an hour here, so only a notification can make a change show.
#[tokio::test]
async fn postgres_cached_reads_follow_changes_made_elsewhere() {
    let Some((node, admin, name)) = postgres().await else {
        return;
    };
    let elsewhere = Store::connect(&database_url(&name)).await.unwrap();
    let (scope, plan, ann) = customer_and_plan(&node).await;
    // Started after the set-up, so that no notification of it is still on its way.
    node.start_read_cache(std::time::Duration::from_secs(3600))
        .await;
    let permissions = || async {
        let (permissions, _) = node.access_grants(&scope, &ann.id).await.unwrap().unwrap();
        permissions
    };
    // Plain SQL, on a connection of its own: not one of a store's, whose writes the triggers
    // leave to the store to announce.
    let plain = std::sync::Arc::new(tokio::sync::Mutex::new(
        sqlx::PgConnection::connect(&database_url(&name))
            .await
            .unwrap(),
    ));
    let set_permissions = |value: &'static str| {
        let sql = format!(
            "UPDATE members SET permissions = '[\"{value}\"]' WHERE id = '{}'",
            ann.id
        );
        let plain = plain.clone();
        async move {
            sqlx::query(&sql)
                .execute(&mut *plain.lock().await)
                .await
                .unwrap();
        }
    };
    let member_permissions = || async {
        let member = node.get_member(&scope, &ann.id).await.unwrap().unwrap();
        member.member.permissions
    };
    assert!(permissions().await.is_empty());
    assert!(member_permissions().await.is_empty());

    // Unannounced, a change stays unseen: the reads are answered from memory.
    elsewhere
        .execute_admin("ALTER TABLE members DISABLE TRIGGER members_updated")
        .await
        .unwrap();
    set_permissions("quiet").await;
    assert!(permissions().await.is_empty(), "served from memory");
    assert!(member_permissions().await.is_empty(), "served from memory");
    elsewhere
        .execute_admin("ALTER TABLE members ENABLE TRIGGER members_updated")
        .await
        .unwrap();

    set_permissions("loud").await;
    eventually("access grants", vec!["loud".to_string()], permissions).await;
    eventually("member", vec!["loud".to_string()], member_permissions).await;

    let contracts = || async {
        node.customer_contracts(&scope, "cust-1")
            .await
            .unwrap()
            .map(|c| c.len())
    };
    assert_eq!(contracts().await, Some(0));
    let now = t("2026-01-05T00:00:00Z");
    elsewhere
        .connect_plan(&scope, &ann.id, &plan.id, None, now)
        .await
        .unwrap();
    eventually("membership contracts", Some(1), contracts).await;

    admin
        .execute_admin(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND query LIKE 'LISTEN%'"
        ))
        .await
        .unwrap();
    set_permissions("after the listener came back").await;
    eventually(
        "access grants after the listener was killed",
        vec!["after the listener came back".to_string()],
        permissions,
    )
    .await;

    elsewhere.close().await;
    drop_postgres(node, admin, name).await;
}

/// What `listener` hears until it has heard nothing for half a second.
async fn heard(listener: &mut sqlx::postgres::PgListener) -> Vec<String> {
    let mut payloads = Vec::new();
    while let Ok(Ok(Some(n))) =
        tokio::time::timeout(std::time::Duration::from_millis(500), listener.try_recv()).await
    {
        payloads.push(n.payload().to_owned());
    }
    payloads
}

/// A store's writes announce themselves after their commit, named by the node, and the
/// triggers stay quiet for its connections (a transaction that notifies takes a server-wide
/// lock at commit); plain SQL is still announced by the triggers, at its commit.
#[tokio::test]
async fn postgres_store_writes_are_announced_after_commit_and_plain_sql_by_the_triggers() {
    let Some((node, admin, name)) = postgres().await else {
        return;
    };
    let url = database_url(&name);
    let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
    listener.listen("memberd_reads").await.unwrap();
    let (scope, _, ann) = customer_and_plan(&node).await;
    let from_store = heard(&mut listener).await;
    let of_scope = format!("{} sandbox", scope.app_id);
    assert!(!from_store.is_empty(), "the store's writes were announced");
    for payload in &from_store {
        let words: Vec<&str> = payload.split(' ').collect();
        assert_eq!(
            words.len(),
            3,
            "{payload:?}: announced by the store, with its node's name, not by a trigger"
        );
        assert_eq!(format!("{} {}", words[0], words[1]), of_scope);
    }

    let mut plain = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(&format!(
        "UPDATE members SET permissions = '[\"x\"]' WHERE id = '{}'",
        ann.id
    ))
    .execute(&mut plain)
    .await
    .unwrap();
    assert_eq!(
        heard(&mut listener).await,
        [of_scope],
        "plain SQL, by the trigger"
    );
    drop(listener);
    drop(plain);
    drop_postgres(node, admin, name).await;
}

/// A node sends its changes at most every few milliseconds; one that closes right after a
/// write still tells the others of it, instead of leaving their caches to expire.
#[tokio::test]
async fn postgres_a_store_that_closes_tells_of_its_last_change() {
    let Some((node, admin, name)) = postgres().await else {
        return;
    };
    let mut listener = sqlx::postgres::PgListener::connect(&database_url(&name))
        .await
        .unwrap();
    listener.listen("memberd_reads").await.unwrap();
    let (scope, _, _) = customer_and_plan(&node).await;
    node.start_read_cache(std::time::Duration::from_secs(3600))
        .await;
    heard(&mut listener).await;

    let (bob, ev) = new_member("bob@example.com", None);
    node.insert_member(&scope, &bob, &ev).await.unwrap();
    // No await in between that lets the sending task run: the change is still to be sent.
    node.close().await;
    let changes: Vec<String> = heard(&mut listener)
        .await
        .into_iter()
        .filter(|p| !p.starts_with("heartbeat"))
        .collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(
        changes[0].starts_with(&format!("{} sandbox ", scope.app_id)),
        "{changes:?}"
    );
    drop(listener);
    drop_postgres(node, admin, name).await;
}

/// `--read-cache-ms 0`: with a zero lifetime nothing is kept, so even a change no notification
/// announces shows in the next read.
#[tokio::test]
async fn postgres_reads_are_not_cached_with_a_zero_lifetime() {
    let Some((node, admin, name)) = postgres().await else {
        return;
    };
    let (scope, _, ann) = customer_and_plan(&node).await;
    node.start_read_cache(std::time::Duration::ZERO).await;
    node.execute_admin("ALTER TABLE members DISABLE TRIGGER members_updated")
        .await
        .unwrap();
    let permissions = || async {
        let (permissions, _) = node.access_grants(&scope, &ann.id).await.unwrap().unwrap();
        permissions
    };
    assert!(permissions().await.is_empty());
    node.execute_admin(&format!(
        "UPDATE members SET permissions = '[\"quiet\"]' WHERE id = '{}'",
        ann.id
    ))
    .await
    .unwrap();
    assert_eq!(permissions().await, ["quiet"]);
    drop_postgres(node, admin, name).await;
}

/// A change made through the cached store itself shows in its next read at once, without
/// waiting for a notification: here the triggers are off, so none comes.
#[tokio::test]
async fn postgres_cached_reads_see_their_own_stores_changes_at_once() {
    let Some((node, admin, name)) = postgres().await else {
        return;
    };
    for table in ["members", "plans", "plan_connections"] {
        node.execute_admin(&format!("ALTER TABLE {table} DISABLE TRIGGER USER"))
            .await
            .unwrap();
    }
    node.start_read_cache(std::time::Duration::from_secs(3600))
        .await;
    let scope = scope(&node).await;
    let plan = paid_plan(0);
    node.insert_plan(&scope, &plan).await.unwrap();
    let (ann, ev) = new_member("ann@example.com", Some("cust-1"));
    assert!(node.access_grants(&scope, &ann.id).await.unwrap().is_none());
    assert!(node
        .customer_contracts(&scope, "cust-1")
        .await
        .unwrap()
        .is_none());

    node.insert_member(&scope, &ann, &ev).await.unwrap();
    let grants = || async { node.access_grants(&scope, &ann.id).await.unwrap() };
    let contracts = || async {
        node.customer_contracts(&scope, "cust-1")
            .await
            .unwrap()
            .map(|c| c.len())
    };
    assert_eq!(grants().await.unwrap().1.len(), 0);
    assert_eq!(contracts().await, Some(0));

    let now = t("2026-01-05T00:00:00Z");
    let connected = node
        .connect_plan(&scope, &ann.id, &plan.id, None, now)
        .await
        .unwrap();
    assert_eq!(grants().await.unwrap().1[0].permissions, ["gold"]);
    assert_eq!(contracts().await, Some(1));

    node.change_connection(
        &scope,
        &connected.connection.id,
        ConnectionRequest::Pause { resume_at: None },
        now,
    )
    .await
    .unwrap();
    assert_eq!(
        grants().await.unwrap().1[0].status,
        ConnectionStatus::Paused
    );

    let patch = PlanPatch {
        permissions: Some(vec!["platinum".into()]),
        ..Default::default()
    };
    node.update_plan(&scope, &plan.id, |p| p.patch(patch, now))
        .await
        .unwrap();
    assert_eq!(grants().await.unwrap().1[0].permissions, ["platinum"]);

    let patch = MemberPatch {
        permissions: Some(vec!["own".into()]),
        ..Default::default()
    };
    let member = || async { node.get_member(&scope, &ann.id).await.unwrap() };
    assert!(member().await.unwrap().member.permissions.is_empty());
    node.update_member(&scope, &ann.id, |m| m.patch(patch, now))
        .await
        .unwrap();
    assert_eq!(grants().await.unwrap().0, ["own"]);
    assert_eq!(member().await.unwrap().member.permissions, ["own"]);

    node.delete_member(&scope, &ann.id, now).await.unwrap();
    assert!(grants().await.is_none());
    assert_eq!(contracts().await, None);
    assert!(member().await.is_none());

    drop_postgres(node, admin, name).await;
}

/// On SQLite the cached reads see every commit at once, also one made by another process's
/// connections (here a second store on the same file) and by plain SQL: the cache is emptied
/// whenever the WAL-index header has changed. Entries live for an hour here.
#[tokio::test]
async fn sqlite_cached_reads_see_each_commit_of_another_connection_at_once() {
    let (node, dir) = sqlite().await;
    let elsewhere = Store::connect(&format!("sqlite:{}", dir.join("t.db").display()))
        .await
        .unwrap();
    node.start_read_cache(std::time::Duration::from_secs(3600))
        .await;
    let (scope, plan, ann) = customer_and_plan(&node).await;
    let permissions = || async {
        let (permissions, _) = node.access_grants(&scope, &ann.id).await.unwrap().unwrap();
        permissions
    };
    let contracts = || async {
        node.customer_contracts(&scope, "cust-1")
            .await
            .unwrap()
            .map(|c| c.len())
    };
    assert!(permissions().await.is_empty());
    assert!(permissions().await.is_empty());
    assert_eq!(contracts().await, Some(0));

    let now = t("2026-01-05T00:00:00Z");
    let patch = MemberPatch {
        permissions: Some(vec!["elsewhere".into()]),
        ..Default::default()
    };
    elsewhere
        .update_member(&scope, &ann.id, |m| m.patch(patch, now))
        .await
        .unwrap();
    assert_eq!(permissions().await, ["elsewhere"]);
    elsewhere
        .connect_plan(&scope, &ann.id, &plan.id, None, now)
        .await
        .unwrap();
    assert_eq!(contracts().await, Some(1));
    elsewhere
        .execute_admin(&format!(
            "UPDATE members SET permissions = '[\"plain sql\"]' WHERE id = '{}'",
            ann.id
        ))
        .await
        .unwrap();
    assert_eq!(permissions().await, ["plain sql"]);
    let member = node.get_member(&scope, &ann.id).await.unwrap().unwrap();
    assert_eq!(member.member.permissions, ["plain sql"]);
    assert_eq!(member.connections.len(), 1);

    elsewhere.close().await;
    node.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A member's session is read from memory like the member; ended with plain SQL (an operator
/// cleaning up by hand), it is seen ended on every node, announced by 0014's triggers.
#[tokio::test]
async fn postgres_a_session_ended_by_plain_sql_is_seen_ended() {
    let Some((node, admin, name)) = postgres().await else {
        return;
    };
    let scope = scope(&node).await;
    let (member, created) = new_member("ses@example.com", None);
    node.insert_member(&scope, &member, &created).await.unwrap();
    let now = t("2026-05-01T00:00:00Z");
    let session = memberd_core::Session::open(
        member.id.clone(),
        &memberd_core::EnvSettings::defaults(),
        now,
    );
    node.open_session(&scope, &session).await.unwrap();
    node.start_read_cache(std::time::Duration::from_secs(3600))
        .await;
    let ended = || async {
        node.get_session(&scope, &session.id)
            .await
            .unwrap()
            .expect("the session exists")
            .ended_at
            .is_some()
    };
    assert!(!ended().await);
    let mut plain = sqlx::PgConnection::connect(&database_url(&name))
        .await
        .unwrap();
    // Unannounced, the end stays unseen: the session is answered from memory.
    node.execute_admin("ALTER TABLE member_sessions DISABLE TRIGGER member_sessions_updated")
        .await
        .unwrap();
    sqlx::query("UPDATE member_sessions SET ended_at = 1 WHERE id = $1")
        .bind(session.id.as_str())
        .execute(&mut plain)
        .await
        .unwrap();
    assert!(!ended().await, "served from memory");
    node.execute_admin("ALTER TABLE member_sessions ENABLE TRIGGER member_sessions_updated")
        .await
        .unwrap();
    sqlx::query("UPDATE member_sessions SET end_reason = 'revoked' WHERE id = $1")
        .bind(session.id.as_str())
        .execute(&mut plain)
        .await
        .unwrap();
    eventually("the session", true, ended).await;
    plain.close().await.unwrap();
    drop_postgres(node, admin, name).await;
}
