//! Operators as the store keeps them: the first owner's link works once and only while no
//! operator exists, a password link ends the sign-ins made before it, the audit log pages
//! newest first, and a person's search finds members by part of what they typed.

use memberd_core::operator::{AppAccess, AuditEntry, Operator, Role};
use memberd_core::{Email, Member, NewMember, Timestamp};
use memberd_store::{LinkFor, MemberFilter, Order, PageRequest, Store, StoreError};

use crate::common::{new_member, scope, t};

fn later(at: Timestamp, hours: u64) -> Timestamp {
    at.plus_secs(hours * 3600)
}

pub(crate) async fn the_first_owner_link_works_once_and_only_first(store: &Store) {
    let now = t("2026-05-01T00:00:00Z");
    assert!(store
        .replace_first_owner_link("old", now, later(now, 24))
        .await
        .unwrap());
    assert!(store
        .replace_first_owner_link("new", now, later(now, 24))
        .await
        .unwrap());
    assert_eq!(
        store.operator_link("old", now).await.unwrap(),
        None,
        "replaced"
    );
    assert_eq!(
        store.operator_link("new", now).await.unwrap(),
        Some(LinkFor::FirstOwner)
    );
    assert_eq!(
        store.operator_link("new", later(now, 25)).await.unwrap(),
        None,
        "expired"
    );

    let mut owner =
        Operator::create("Owner@Example.com", Role::Owner, AppAccess::All, now).unwrap();
    owner.password_hash = Some("hash".into());
    assert!(store.make_first_owner("new", &owner, now).await.unwrap());
    let mut second =
        Operator::create("second@example.com", Role::Owner, AppAccess::All, now).unwrap();
    second.password_hash = Some("hash".into());
    assert!(
        !store.make_first_owner("new", &second, now).await.unwrap(),
        "used"
    );
    assert_eq!(store.count_operators().await.unwrap(), 1);
    assert!(!store
        .replace_first_owner_link("newer", now, later(now, 24))
        .await
        .unwrap());
    let found = store
        .get_operator_by_email(&Email::parse("owner@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.role, found.apps), (Role::Owner, AppAccess::All));
}

pub(crate) async fn a_password_link_ends_earlier_sign_ins(store: &Store) {
    let now = t("2026-05-01T00:00:00Z");
    let app = scope(store).await.app_id;
    let op = Operator::create(
        "ann@example.com",
        Role::Viewer,
        AppAccess::Only(vec![app.clone()]),
        now,
    )
    .unwrap();
    store
        .create_operator(&op, "link-1", later(now, 24))
        .await
        .unwrap();
    let again = Operator::create("ANN@example.com", Role::Admin, AppAccess::All, now).unwrap();
    assert!(matches!(
        store
            .create_operator(&again, "link-2", later(now, 24))
            .await,
        Err(StoreError::Duplicate { field: "email" })
    ));
    match store.operator_link("link-1", now).await.unwrap() {
        Some(LinkFor::Operator(found)) => assert_eq!(found.apps, AppAccess::Only(vec![app])),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store
            .set_operator_password("link-1", "h1", now)
            .await
            .unwrap(),
        Some(op.id.clone())
    );
    assert_eq!(
        store
            .set_operator_password("link-1", "h2", now)
            .await
            .unwrap(),
        None,
        "used"
    );
    store
        .open_operator_session("session", &op.id, now, later(now, 12))
        .await
        .unwrap();
    assert_eq!(
        store
            .operator_session("session", now)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("h1")
    );
    assert_eq!(
        store
            .operator_session("session", later(now, 13))
            .await
            .unwrap(),
        None,
        "expired"
    );
    store
        .add_operator_link(&op.id, "link-3", now, later(now, 24))
        .await
        .unwrap();
    store
        .set_operator_password("link-3", "h3", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        store.operator_session("session", now).await.unwrap(),
        None,
        "a new password ends it"
    );
    store
        .open_operator_session("s2", &op.id, now, later(now, 12))
        .await
        .unwrap();
    assert!(store.delete_operator(&op.id).await.unwrap());
    assert_eq!(
        store.operator_session("s2", now).await.unwrap(),
        None,
        "gone with the operator"
    );
    assert_eq!(store.count_operators().await.unwrap(), 0);
}

pub(crate) async fn the_audit_log_pages_newest_first(store: &Store) {
    let now = t("2026-05-01T00:00:00Z");
    let scope = scope(store).await;
    let other = crate::common::scope(store).await;
    let op = Operator::create("ann@example.com", Role::Owner, AppAccess::All, now).unwrap();
    for i in 0..5 {
        let entry = AuditEntry::new(
            &op,
            Some((&scope.app_id, scope.env)),
            "plan.created",
            None,
            format!("plan {i}"),
            now,
        );
        store.record_audit(&entry).await.unwrap();
    }
    let elsewhere = AuditEntry::new(
        &op,
        Some((&other.app_id, other.env)),
        "plan.created",
        None,
        "other",
        now,
    );
    store.record_audit(&elsewhere).await.unwrap();
    let first = store
        .list_audit(Some(&scope.app_id), None, 3)
        .await
        .unwrap();
    let summaries: Vec<_> = first.entries.iter().map(|e| e.summary.as_str()).collect();
    assert_eq!(summaries, ["plan 4", "plan 3", "plan 2"]);
    let rest = store
        .list_audit(Some(&scope.app_id), first.next_before, 3)
        .await
        .unwrap();
    let summaries: Vec<_> = rest.entries.iter().map(|e| e.summary.as_str()).collect();
    assert_eq!(summaries, ["plan 1", "plan 0"]);
    assert_eq!(rest.next_before, None);
    assert_eq!(
        store
            .list_audit(None, None, 10)
            .await
            .unwrap()
            .entries
            .len(),
        6
    );
}

pub(crate) async fn a_search_finds_members_by_part_of_what_was_typed(store: &Store) {
    let scope = scope(store).await;
    let (ada, event) = new_member("ada@analytical.example", Some("shop-1815"));
    store.insert_member(&scope, &ada, &event).await.unwrap();
    let draft = NewMember {
        email: "grace@navy.example".into(),
        custom_fields: Some(
            serde_json::json!({"firstName": "Grace", "lastName": "Hopper"})
                .as_object()
                .unwrap()
                .clone(),
        ),
        ..NewMember::default()
    };
    let (grace, event) = Member::create(draft, t("2026-05-01")).unwrap();
    store.insert_member(&scope, &grace, &event).await.unwrap();
    let (odd, event) = new_member("under_score%@example.com", None);
    store.insert_member(&scope, &odd, &event).await.unwrap();
    let page = PageRequest {
        after: None,
        limit: 10,
        order: Order::Asc,
    };
    for (words, expected) in [
        ("ANALYTICAL", vec![ada.id.clone()]),
        ("hopper", vec![grace.id.clone()]),
        ("shop-1815", vec![ada.id.clone()]),
        (grace.id.as_str(), vec![grace.id.clone()]),
        ("shop", vec![]),
        ("_score%", vec![odd.id.clone()]),
        ("%", vec![odd.id.clone()]),
        ("nobody", vec![]),
    ] {
        let filter = MemberFilter {
            search: Some(words.to_owned()),
            ..MemberFilter::default()
        };
        let found = store.list_members(&scope, &filter, page).await.unwrap();
        let ids: Vec<_> = found.items.iter().map(|v| v.member.id.clone()).collect();
        assert_eq!(ids, expected, "{words:?}");
        assert_eq!(found.total_count, expected.len() as i64, "{words:?}");
    }
}
