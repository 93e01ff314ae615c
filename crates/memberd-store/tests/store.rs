//! The store's own checks, on SQLite and on PostgreSQL (when MEMBERD_TEST_POSTGRES_URL is set).
//! The API suite in crates/memberd/tests covers behaviour end to end; these pin what only
//! the store can see, such as the SQL both backends must accept.

use memberd_core::{AppId, Environment, KeyId, Scope, Timestamp};
use memberd_store::{ApiKey, App, Store};

async fn sqlite() -> (Store, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("memberd-store-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Store::connect(&format!("sqlite:{}", dir.join("t.db").display())).await.unwrap();
    store.migrate().await.unwrap();
    (store, dir)
}

async fn postgres() -> Option<Store> {
    let Ok(url) = std::env::var("MEMBERD_TEST_POSTGRES_URL") else {
        eprintln!("MEMBERD_TEST_POSTGRES_URL is unset: PostgreSQL store tests skipped");
        return None;
    };
    let admin = Store::connect(&url).await.unwrap();
    let name = format!("memberd_store_{}", rand::random::<u32>());
    admin.execute_admin(&format!("CREATE DATABASE {name}")).await.unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    let store = Store::connect(&format!("{base}/{name}")).await.unwrap();
    store.migrate().await.unwrap();
    Some(store)
}

fn t(s: &str) -> Timestamp {
    Timestamp::parse(s).unwrap()
}

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
    let twin = App { id: AppId::generate(), ..app.clone() };
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
    assert_eq!(owner.scope, Scope::new(app.id.clone(), Environment::Sandbox));
    assert!(store.revoke_key(&key.id, t("2026-01-02T00:00:00Z")).await.unwrap());
    assert!(!store.revoke_key(&key.id, t("2026-01-03T00:00:00Z")).await.unwrap());
    assert_eq!(store.key_owner("hash-1").await.unwrap(), None);
    assert_eq!(store.list_keys(Some(&app.id)).await.unwrap()[0].revoked_at, Some(t("2026-01-02T00:00:00Z")));
    assert_eq!(store.count_apps().await.unwrap(), 1);
}

macro_rules! both_backends {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(#[tokio::test] async fn $case() { let (store, dir) = super::sqlite().await; super::$case(&store).await; store.close().await; let _ = std::fs::remove_dir_all(dir); })*
        }
        mod on_postgres {
            $(#[tokio::test] async fn $case() { if let Some(store) = super::postgres().await { super::$case(&store).await; store.close().await; } })*
        }
    };
}

both_backends!(apps_and_keys);
