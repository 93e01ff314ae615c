//! Apps (tenants) and their secret keys. Keys are stored only as hashes.

use memberd_core::{AppId, Environment, KeyId, Scope, Timestamp};

use sqlx::any::AnyRow;

use crate::rows::{env, flag, int, opt_text, opt_ts, text, ts, unique_violation};
use crate::sql::Sql;
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
    /// The app's shop, for the Appstle face's `shop` check.
    pub shop_domain: Option<String>,
    /// Whether the app's merchant keys work without a partner key.
    pub api_access: bool,
}

/// A partner key (Appstle's `X-App-Key`), without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerKey {
    pub id: String,
    pub name: String,
    pub hint: String,
    pub created_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

fn app_from_row(row: &AnyRow) -> Result<App> {
    Ok(App {
        id: AppId::from_trusted(text(row, "id")?),
        name: text(row, "name")?,
        shop_domain: opt_text(row, "shop_domain")?,
        api_access: flag(row, "api_access")?,
        created_at: ts(row, "created_at")?,
    })
}

fn key_from_row(row: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: KeyId::from_trusted(text(row, "id")?),
        app_id: AppId::from_trusted(text(row, "app_id")?),
        env: env(row, "env")?,
        name: text(row, "name")?,
        hint: text(row, "hint")?,
        created_at: ts(row, "created_at")?,
        revoked_at: opt_ts(row, "revoked_at")?,
    })
}

const APP_COLUMNS: &str = "id, name, shop_domain, api_access, created_at";
const KEY_COLUMNS: &str = "id, app_id, env, name, hint, created_at, revoked_at";

impl Store {
    /// `Duplicate { field: "shop" }` when another app serves the same shop.
    /// The app gets its two publishable keys with it.
    pub async fn create_app(&self, app: &App) -> Result<()> {
        let mut tx = self.writer().await?.begin().await?;
        sqlx::query(
            "INSERT INTO apps (id, name, shop_domain, api_access, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(app.id.as_str())
        .bind(&app.name)
        .bind(app.shop_domain.as_deref())
        .bind(i64::from(app.api_access))
        .bind(app.created_at.as_micros())
        .execute(&mut *tx)
        .await
        .map_err(|e| unique_violation(e, &[("shop_domain", "shop")]))?;
        crate::accounts::insert_publishable_keys(&mut tx, &app.id, app.created_at).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_apps(&self) -> Result<Vec<App>> {
        let rows = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps ORDER BY seq"))
            .fetch_all(self.reads().await?)
            .await?;
        rows.iter().map(app_from_row).collect()
    }

    pub async fn get_app(&self, id: &AppId) -> Result<Option<App>> {
        let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.reads().await?)
            .await?;
        row.as_ref().map(app_from_row).transpose()
    }

    pub async fn count_apps(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM apps")
            .fetch_one(self.reads().await?)
            .await?;
        int(&row, "n")
    }

    /// Stores a new key. `key_hash` is the SHA-256 of the secret, hex-encoded.
    pub async fn insert_key(&self, key: &ApiKey, key_hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, app_id, env, name, key_hash, hint, created_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(key.id.as_str())
        .bind(key.app_id.as_str())
        .bind(key.env.as_str())
        .bind(&key.name)
        .bind(key_hash)
        .bind(&key.hint)
        .bind(key.created_at.as_micros())
        .bind(key.revoked_at.map(|t| t.as_micros()))
        .execute(self.writer().await?)
        .await?;
        Ok(())
    }

    /// Keys of one app, or of every app; oldest first.
    pub async fn list_keys(&self, app_id: Option<&AppId>) -> Result<Vec<ApiKey>> {
        let rows = match app_id {
            Some(app_id) => {
                sqlx::query(&format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE app_id = $1 ORDER BY seq"
                ))
                .bind(app_id.as_str())
                .fetch_all(self.reads().await?)
                .await?
            }
            None => {
                sqlx::query(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY seq"))
                    .fetch_all(self.reads().await?)
                    .await?
            }
        };
        rows.iter().map(key_from_row).collect()
    }

    /// Revokes a key; `false` when no such key was live.
    pub async fn revoke_key(&self, id: &KeyId, now: Timestamp) -> Result<bool> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now.as_micros())
                .bind(id.as_str())
                .execute(self.writer().await?)
                .await?;
        self.keys.clear();
        Ok(done.rows_affected() > 0)
    }

    /// The owner of the live (not revoked) key with this hash, with what the faces check of
    /// its app: one query on the path of every request.
    pub async fn key_owner(&self, key_hash: &str) -> Result<Option<KeyOwner>> {
        if let Some(owner) = self.keys.get(key_hash) {
            return Ok(Some(owner));
        }
        let mut sql = Sql::new(
            "SELECT k.id, k.app_id, k.env, a.shop_domain, a.api_access FROM api_keys k \
             JOIN apps a ON a.id = k.app_id WHERE k.key_hash = ",
        );
        sql.text(key_hash).push(" AND k.revoked_at IS NULL");
        let mut owners = self
            .read_rows(&sql, |row| {
                Ok(KeyOwner {
                    key_id: KeyId::from_trusted(text(row, "id")?),
                    scope: Scope::new(AppId::from_trusted(text(row, "app_id")?), env(row, "env")?),
                    shop_domain: opt_text(row, "shop_domain")?,
                    api_access: flag(row, "api_access")?,
                })
            })
            .await?;
        let owner = owners.pop();
        if let Some(owner) = &owner {
            self.keys.put(key_hash, owner);
        }
        Ok(owner)
    }

    /// Turns an app's direct API access on or off; `false` when there is no such app.
    pub async fn set_api_access(&self, id: &AppId, on: bool) -> Result<bool> {
        let done = sqlx::query("UPDATE apps SET api_access = $1 WHERE id = $2")
            .bind(i64::from(on))
            .bind(id.as_str())
            .execute(self.writer().await?)
            .await?;
        self.keys.clear();
        Ok(done.rows_affected() > 0)
    }

    pub async fn insert_partner_key(&self, key: &PartnerKey, key_hash: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO partner_keys (id, name, key_hash, hint, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&key.id)
        .bind(&key.name)
        .bind(key_hash)
        .bind(&key.hint)
        .bind(key.created_at.as_micros())
        .execute(self.writer().await?)
        .await?;
        Ok(())
    }

    pub async fn list_partner_keys(&self) -> Result<Vec<PartnerKey>> {
        let rows = sqlx::query(
            "SELECT id, name, hint, created_at, revoked_at FROM partner_keys ORDER BY seq",
        )
        .fetch_all(self.reads().await?)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(PartnerKey {
                    id: text(row, "id")?,
                    name: text(row, "name")?,
                    hint: text(row, "hint")?,
                    created_at: ts(row, "created_at")?,
                    revoked_at: opt_ts(row, "revoked_at")?,
                })
            })
            .collect()
    }

    pub async fn revoke_partner_key(&self, id: &str, now: Timestamp) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE partner_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now.as_micros())
        .bind(id)
        .execute(self.writer().await?)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Whether a live partner key has this hash.
    pub async fn partner_key_is_valid(&self, key_hash: &str) -> Result<bool> {
        let row =
            sqlx::query("SELECT id FROM partner_keys WHERE key_hash = $1 AND revoked_at IS NULL")
                .bind(key_hash)
                .fetch_optional(self.reads().await?)
                .await?;
        Ok(row.is_some())
    }
}
