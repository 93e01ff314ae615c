//! Members' accounts as only the store sees them: the windows of failed logins, the one
//! signing key that nodes starting together make, and an environment's publishable key with
//! its settings.

use memberd_core::account::SettingsPatch;
use memberd_core::{AppId, Environment, Timestamp};
use memberd_store::{App, SigningKeyRow, Store};

use crate::common::t;

fn plus_secs(at: Timestamp, secs: i64) -> Timestamp {
    Timestamp::from_micros(at.as_micros() + secs * 1_000_000)
}

pub(crate) async fn failed_logins_are_counted_in_windows(store: &Store) {
    let start = t("2026-03-01T00:00:00Z");
    let (a, b) = (
        "login email test a".to_owned(),
        "login ip 192.0.2.1".to_owned(),
    );
    for _ in 0..3 {
        store
            .record_login_failure(std::slice::from_ref(&a), start, 60)
            .await
            .unwrap();
    }
    store
        .record_login_failure(&[a.clone(), b.clone()], plus_secs(start, 1), 60)
        .await
        .unwrap();
    let both = [a.clone(), b.clone()];
    assert_eq!(
        store
            .login_failures(&both, plus_secs(start, 2), 60)
            .await
            .unwrap(),
        Some((4, plus_secs(start, 60))),
        "the worst bucket counts, until its window ends"
    );
    assert_eq!(
        store
            .login_failures(std::slice::from_ref(&b), plus_secs(start, 2), 60)
            .await
            .unwrap(),
        Some((1, plus_secs(start, 61)))
    );
    // The window of `a` is over: a failure starts a new one.
    assert_eq!(
        store
            .login_failures(std::slice::from_ref(&a), plus_secs(start, 60), 60)
            .await
            .unwrap(),
        None
    );
    store
        .record_login_failure(std::slice::from_ref(&a), plus_secs(start, 61), 60)
        .await
        .unwrap();
    assert_eq!(
        store
            .login_failures(std::slice::from_ref(&a), plus_secs(start, 62), 60)
            .await
            .unwrap(),
        Some((1, plus_secs(start, 121)))
    );
    store.clear_login_failures(&a).await.unwrap();
    assert_eq!(
        store
            .login_failures(std::slice::from_ref(&a), plus_secs(start, 62), 60)
            .await
            .unwrap(),
        None
    );
}

fn signing_key(kid: &str, at: Timestamp) -> SigningKeyRow {
    SigningKeyRow {
        kid: kid.into(),
        private_key: "cHJpdmF0ZQ==".into(),
        public_x: "x".into(),
        public_y: "y".into(),
        created_at: at,
        retired_at: None,
    }
}

pub(crate) async fn nodes_starting_together_make_one_signing_key(store: &Store) {
    let at = t("2026-03-01T00:00:00Z");
    let forget = t("2025-01-01T00:00:00Z");
    let (first, second) = (signing_key("sig_a", at), signing_key("sig_b", at));
    let (one, two) = tokio::join!(
        store.add_signing_key(&first, forget, true),
        store.add_signing_key(&second, forget, true),
    );
    let made = [one.unwrap(), two.unwrap()];
    assert_eq!(made.iter().filter(|m| **m).count(), 1, "{made:?}");
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1);

    // A rotation retires the current key as of the new one, and forgets keys retired long ago.
    let later = t("2026-04-01T00:00:00Z");
    assert!(store
        .add_signing_key(&signing_key("sig_c", later), forget, false)
        .await
        .unwrap());
    let keys = store.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].retired_at, Some(later));
    assert_eq!(keys[1].kid, "sig_c");
    assert_eq!(keys[1].retired_at, None);
    let much_later = t("2027-06-01T00:00:00Z");
    store
        .add_signing_key(
            &signing_key("sig_d", much_later),
            t("2027-01-01T00:00:00Z"),
            false,
        )
        .await
        .unwrap();
    let kids: Vec<String> = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(
        kids,
        ["sig_c", "sig_d"],
        "the key retired before the cut-off is gone"
    );
    assert!(
        !format!("{:?}", store.signing_keys().await.unwrap()).contains("cHJpdmF0ZQ=="),
        "a signing key's Debug keeps its private half out"
    );
}

pub(crate) async fn each_environment_has_a_publishable_key_with_its_settings(store: &Store) {
    let app = App {
        id: AppId::generate(),
        name: "Site".into(),
        shop_domain: None,
        api_access: true,
        created_at: t("2026-03-01T00:00:00Z"),
    };
    store.create_app(&app).await.unwrap();
    let keys = store.list_publishable_keys(Some(&app.id)).await.unwrap();
    assert_eq!(keys.len(), 2);
    let sandbox = keys.iter().find(|k| k.env == Environment::Sandbox).unwrap();
    let live = keys.iter().find(|k| k.env == Environment::Live).unwrap();
    assert!(sandbox.key.starts_with("pk_sb_") && live.key.starts_with("pk_live_"));
    let env = store.client_env(&sandbox.key).await.unwrap().unwrap();
    assert_eq!(env.scope.env, Environment::Sandbox);
    assert_eq!(env.app_name, "Site");
    assert!(env
        .settings
        .allows_origin(Environment::Sandbox, "http://localhost:3000"));
    assert!(store.client_env("pk_sb_nothing").await.unwrap().is_none());

    let patch = SettingsPatch {
        allowed_origins: Some(Some(vec!["https://site.example".into()])),
        signup_enabled: Some(false),
        ..Default::default()
    };
    store
        .update_env_settings(&env.scope, patch, t("2026-03-02T00:00:00Z"))
        .await
        .unwrap();
    let changed = store.client_env(&sandbox.key).await.unwrap().unwrap();
    assert!(!changed.settings.signup_enabled, "a change is seen at once");
    assert!(!changed
        .settings
        .allows_origin(Environment::Sandbox, "http://localhost:3000"));
    assert!(store
        .origin_allowed_anywhere("https://site.example")
        .await
        .unwrap());
    let live_env = store.client_env(&live.key).await.unwrap().unwrap();
    assert!(
        live_env.settings.signup_enabled,
        "the other environment keeps its own"
    );
}
