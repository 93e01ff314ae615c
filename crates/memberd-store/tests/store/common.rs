//! Set-up shared by the store's tests: fresh databases and the objects most tests need.

use memberd_core::plan::{PlanDraft, PriceDraft};
use memberd_core::{
    AppId, Environment, Interval, Member, NewEvent, NewMember, Plan, PlanType, Scope, Timestamp,
};
use memberd_store::{App, Order, PageRequest, Store};

pub(crate) async fn sqlite() -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("memberd-store-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::connect(&format!("sqlite:{}", dir.join("t.db").display()))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

/// A fresh database on the server of MEMBERD_TEST_POSTGRES_URL, dropped by `drop_postgres`.
pub(crate) async fn postgres() -> Option<(Store, Store, String)> {
    let Ok(url) = std::env::var("MEMBERD_TEST_POSTGRES_URL") else {
        eprintln!("MEMBERD_TEST_POSTGRES_URL is unset: PostgreSQL store tests skipped");
        return None;
    };
    let admin = Store::connect(&url).await.unwrap();
    let name = format!("memberd_store_{}", rand::random::<u32>());
    admin
        .execute_admin(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let store = Store::connect(&database_url(&name)).await.unwrap();
    store.migrate().await.unwrap();
    Some((store, admin, name))
}

/// The URL of the test database `name`, beside the one MEMBERD_TEST_POSTGRES_URL names.
pub(crate) fn database_url(name: &str) -> String {
    let url = std::env::var("MEMBERD_TEST_POSTGRES_URL").unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    format!("{base}/{name}")
}

pub(crate) async fn drop_postgres(store: Store, admin: Store, name: String) {
    store.close().await;
    admin
        .execute_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
    admin.close().await;
}

pub(crate) fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

pub(crate) async fn scope(store: &Store) -> Scope {
    let app = App {
        id: AppId::generate(),
        name: "Test".into(),
        shop_domain: None,
        api_access: true,
        created_at: t("2026-01-01T00:00:00Z"),
    };
    store.create_app(&app).await.unwrap();
    Scope::new(app.id, Environment::Sandbox)
}

pub(crate) fn paid_plan(trial_days: u32) -> Plan {
    let draft = PlanDraft {
        name: "Gold".into(),
        description: Some("All of it".into()),
        plan_type: PlanType::Paid,
        permissions: vec!["gold".into()],
        prices: vec![PriceDraft {
            amount: 900,
            currency: "eur".into(),
            interval: Interval::Month,
            interval_count: None,
            trial_days: Some(trial_days),
            term_days: None,
        }],
    };
    Plan::create(draft, t("2026-01-01T00:00:00Z")).unwrap()
}

pub(crate) fn new_member(email: &str, external_id: Option<&str>) -> (Member, NewEvent) {
    let draft = NewMember {
        email: email.into(),
        external_id: external_id.map(Into::into),
        ..Default::default()
    };
    Member::create(draft, t("2026-01-02T00:00:00Z")).unwrap()
}

pub(crate) fn first_page(limit: u32) -> PageRequest {
    PageRequest {
        after: None,
        limit,
        order: Order::Asc,
    }
}
