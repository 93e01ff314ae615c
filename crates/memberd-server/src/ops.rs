//! What an operator does outside the API: create apps and keys. Used by the CLI and by
//! `memberd serve` on an empty database.

use memberd_core::{AppId, Environment, KeyId, Timestamp};
use memberd_store::{ApiKey, App, Store, StoreError};
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};

/// A key just created: the only moment its secret exists outside the holder's hands.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub key: ApiKey,
    pub secret: String,
}

const SECRET_RANDOM_CHARS: usize = 40;
const HINT_RANDOM_CHARS: usize = 4;

/// The hash under which a secret key is stored and looked up. Keys are 40 random
/// alphanumerics (over 230 bits), so a fast hash is enough: there is nothing to brute-force.
pub fn hash_secret(secret: &str) -> String {
    to_hex(&Sha256::digest(secret.as_bytes()))
}

/// Lowercase hex. On the path of every request (the key's hash, the request id): a `format!`
/// per byte showed in the access check's profile.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    hex
}

/// The environment a secret claims by its prefix. Memberstack's own live keys are `sk_…`
/// without `live`; memberd issues `sk_live_…` and reads the environment from the stored key,
/// so this is only for messages.
pub fn secret_environment(secret: &str) -> Option<Environment> {
    if secret.starts_with(Environment::Sandbox.key_prefix()) {
        Some(Environment::Sandbox)
    } else if secret.starts_with(Environment::Live.key_prefix()) {
        Some(Environment::Live)
    } else {
        None
    }
}

/// The system clock's time, for operator commands and requests.
pub fn now() -> Timestamp {
    crate::clock::Clock::now(&crate::clock::SystemClock)
}

/// Creates a key for one environment of an app and returns its secret, once.
pub async fn create_key(
    store: &Store,
    app_id: &AppId,
    env: Environment,
    name: &str,
) -> Result<NewKey, StoreError> {
    if store.get_app(app_id).await?.is_none() {
        return Err(StoreError::not_found("app", app_id));
    }
    let random: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(SECRET_RANDOM_CHARS)
        .map(char::from)
        .collect();
    let secret = format!("{}{random}", env.key_prefix());
    let hint = format!("{}{}…", env.key_prefix(), &random[..HINT_RANDOM_CHARS]);
    let key = ApiKey {
        id: KeyId::generate(),
        app_id: app_id.clone(),
        env,
        name: name.to_owned(),
        hint,
        created_at: now(),
        revoked_at: None,
    };
    store.insert_key(&key, &hash_secret(&secret)).await?;
    Ok(NewKey { key, secret })
}

/// Creates an app with one sandbox and one live key.
pub async fn create_app(
    store: &Store,
    name: &str,
    shop_domain: Option<String>,
) -> Result<(App, Vec<NewKey>), StoreError> {
    let app = App {
        id: AppId::generate(),
        name: name.to_owned(),
        shop_domain,
        api_access: true,
        created_at: now(),
    };
    store.create_app(&app).await?;
    let mut keys = Vec::with_capacity(2);
    for env in Environment::ALL {
        keys.push(create_key(store, &app.id, env, "default").await?);
    }
    Ok((app, keys))
}

/// On an empty database, creates the default app and returns it with its keys; `None` when
/// apps already exist.
pub async fn bootstrap(store: &Store) -> Result<Option<(App, Vec<NewKey>)>, StoreError> {
    if store.count_apps().await? > 0 {
        return Ok(None);
    }
    create_app(store, "Default app", None).await.map(Some)
}

/// A partner key just created, with its secret shown this once.
#[derive(Debug, Clone)]
pub struct NewPartnerKey {
    pub key: memberd_store::PartnerKey,
    pub secret: String,
}

/// Creates a partner key (Appstle's `X-App-Key`) for an integration.
pub async fn create_partner_key(store: &Store, name: &str) -> Result<NewPartnerKey, StoreError> {
    let random: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(SECRET_RANDOM_CHARS)
        .map(char::from)
        .collect();
    let secret = format!("pk_{random}");
    let key = memberd_store::PartnerKey {
        id: format!("ptn_{:016x}", rand::random::<u64>()),
        name: name.to_owned(),
        hint: format!("pk_{}…", &random[..HINT_RANDOM_CHARS]),
        created_at: now(),
        revoked_at: None,
    };
    store
        .insert_partner_key(&key, &hash_secret(&secret))
        .await?;
    Ok(NewPartnerKey { key, secret })
}

/// The path, under memberd's public URL, of the page a password link opens.
pub fn password_link_path(token: &str) -> String {
    format!("/dashboard/set-password?token={token}")
}

/// On a database with no operator, a new link that makes the first owner (replacing any
/// earlier one), as a path to print; `None` once an operator exists.
pub async fn first_owner_link(store: &Store) -> Result<Option<String>, StoreError> {
    if store.count_operators().await? > 0 {
        return Ok(None);
    }
    let token = crate::pages::new_token();
    let now = now();
    let expires = now.plus_secs(memberd_core::operator::PASSWORD_LINK_HOURS * 3600);
    let made = store
        .replace_first_owner_link(&crate::pages::token_hash(&token), now, expires)
        .await?;
    Ok(made.then(|| password_link_path(&token)))
}

/// Stores a new operator, who sets their password through the link returned (a path).
pub async fn create_operator(
    store: &Store,
    operator: &memberd_core::operator::Operator,
) -> Result<String, StoreError> {
    let token = crate::pages::new_token();
    let expires = operator
        .created_at
        .plus_secs(memberd_core::operator::PASSWORD_LINK_HOURS * 3600);
    store
        .create_operator(operator, &crate::pages::token_hash(&token), expires)
        .await?;
    Ok(password_link_path(&token))
}

/// A new password link for an operator who exists (one who forgot theirs), as a path.
pub async fn new_operator_link(
    store: &Store,
    operator: &memberd_core::OperatorId,
) -> Result<String, StoreError> {
    let token = crate::pages::new_token();
    let now = now();
    let expires = now.plus_secs(memberd_core::operator::PASSWORD_LINK_HOURS * 3600);
    store
        .add_operator_link(operator, &crate::pages::token_hash(&token), now, expires)
        .await?;
    Ok(password_link_path(&token))
}
