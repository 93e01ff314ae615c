//! Apps (tenants) and their secret keys. Keys are stored only as hashes.

use memberd_core::{AppId, Environment, KeyId, Scope, Timestamp};

use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub id: AppId,
    pub name: String,
    /// The Shopify store an Appstle-style app serves, e.g. `your-store.myshopify.com`.
    pub shop_domain: Option<String>,
    /// Whether merchant keys work on their own (Appstle's paid API plan).
    pub api_access: bool,
    pub created_at: Timestamp,
}

/// A secret key, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: KeyId,
    pub app_id: AppId,
    pub env: Environment,
    pub name: String,
    /// The first characters of the secret, to tell keys apart (`sk_sb_4f2a…`).
    pub hint: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// Who a presented key speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyOwner {
    pub key_id: KeyId,
    pub scope: Scope,
}

impl Store {
    pub async fn create_app(&self, app: &App) -> Result<()> {
        todo!()
    }

    pub async fn list_apps(&self) -> Result<Vec<App>> {
        todo!()
    }

    pub async fn get_app(&self, id: &AppId) -> Result<Option<App>> {
        todo!()
    }

    pub async fn count_apps(&self) -> Result<i64> {
        todo!()
    }

    /// Stores a new key. `key_hash` is the SHA-256 of the secret, hex-encoded.
    pub async fn insert_key(&self, key: &ApiKey, key_hash: &str) -> Result<()> {
        todo!()
    }

    /// Keys of one app, or of every app; newest last.
    pub async fn list_keys(&self, app_id: Option<&AppId>) -> Result<Vec<ApiKey>> {
        todo!()
    }

    /// Revokes a key; `false` when no such key was live.
    pub async fn revoke_key(&self, id: &KeyId, now: Timestamp) -> Result<bool> {
        todo!()
    }

    /// The owner of the live (not revoked) key with this hash.
    pub async fn key_owner(&self, key_hash: &str) -> Result<Option<KeyOwner>> {
        todo!()
    }
}
