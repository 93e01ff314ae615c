//! `memberd apps`, `memberd keys` and `memberd partners`: the tenants and the keys that reach
//! them.

use anyhow::{bail, Context};
use memberd_core::KeyId;
use memberd_server::ops;
use memberd_store::{App, Store};

use crate::cli::{AppsCommand, KeysCommand, PartnersCommand, Switch};
use crate::commands::{parse_app_id, print_keys};

pub async fn apps(store: &Store, command: AppsCommand) -> anyhow::Result<()> {
    match command {
        AppsCommand::Create { name, shop } => {
            let name = name.trim();
            if name.is_empty() {
                bail!("--name must not be empty");
            }
            let shop = match shop {
                Some(shop) => Some(parse_shop(&shop)?),
                None => None,
            };
            let (app, keys) =
                ops::create_app(store, name, shop)
                    .await
                    .map_err(|err| match err {
                        memberd_store::StoreError::Duplicate { .. } => {
                            anyhow::anyhow!("another app already serves that shop")
                        }
                        other => other.into(),
                    })?;
            println!("Created the app \"{}\" ({}).", app.name, app.id);
            if let Some(shop) = &app.shop_domain {
                println!("  shop: {shop}");
            }
            println!("Its secret keys are shown this once; keep them safe:");
            print_keys(&keys);
            Ok(())
        }
        AppsCommand::Show { id } => crate::accounts::show(store, &parse_app_id(&id)?).await,
        AppsCommand::Update {
            id,
            api_access,
            env,
            allowed_origins,
            signup,
            session_lifetime_days,
            password_min_length,
            email_from_name,
            email_from_address,
            verify_redirect_url,
        } => {
            let app_id = parse_app_id(&id)?;
            let settings = crate::accounts::SettingsArgs {
                env,
                allowed_origins,
                signup,
                session_lifetime_days,
                password_min_length,
                email_from_name,
                email_from_address,
                verify_redirect_url,
            };
            if api_access.is_none() && settings.is_empty() {
                bail!("say what to change: --api-access, --allowed-origins, --signup, --session-lifetime-days, --password-min-length, --email-from-name, --email-from-address or --verify-redirect-url (see --help)");
            }
            if store.get_app(&app_id).await?.is_none() {
                bail!("no such app: {app_id} (see `memberd apps list`)");
            }
            if !settings.is_empty() {
                crate::accounts::update_settings(store, &app_id, settings).await?;
            }
            let Some(api_access) = api_access else {
                return Ok(());
            };
            let on = matches!(api_access, Switch::On);
            if !store.set_api_access(&app_id, on).await? {
                bail!("no such app: {app_id} (see `memberd apps list`)");
            }
            println!(
                "API access of {app_id} is {}.",
                if on {
                    "on: its merchant keys work on their own"
                } else {
                    "off: its merchant keys need a partner key (X-App-Key)"
                }
            );
            Ok(())
        }
        AppsCommand::List => {
            let apps = store.list_apps().await?;
            if apps.is_empty() {
                println!("No apps yet: `memberd serve` creates one on first start, or use `memberd apps create --name NAME`.");
                return Ok(());
            }
            println!(
                "{:<30} {:<24} {:<32} {:<4} CREATED",
                "ID", "NAME", "SHOP", "API"
            );
            for App {
                id,
                name,
                shop_domain,
                api_access,
                created_at,
            } in apps
            {
                println!(
                    "{:<30} {:<24} {:<32} {:<4} {}",
                    id,
                    name,
                    shop_domain.as_deref().unwrap_or("-"),
                    if api_access { "on" } else { "off" },
                    created_at
                );
            }
            Ok(())
        }
    }
}

pub async fn partners(store: &Store, command: PartnersCommand) -> anyhow::Result<()> {
    match command {
        PartnersCommand::Create { name } => {
            let name = name.trim();
            if name.is_empty() {
                bail!("--name must not be empty");
            }
            let key = ops::create_partner_key(store, name).await?;
            println!(
                "Created the partner key {} for {name}. Its secret is shown this once; keep it safe:",
                key.key.id
            );
            println!("  {}", key.secret);
            println!("Send it as X-App-Key together with a store's merchant key (X-API-Key).");
            Ok(())
        }
        PartnersCommand::List => {
            let keys = store.list_partner_keys().await?;
            if keys.is_empty() {
                println!("No partner keys.");
                return Ok(());
            }
            println!("{:<22} {:<24} {:<10} STATE", "ID", "NAME", "SECRET");
            for key in keys {
                let state = match key.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None => "active".to_owned(),
                };
                println!("{:<22} {:<24} {:<10} {state}", key.id, key.name, key.hint);
            }
            Ok(())
        }
        PartnersCommand::Revoke { id } => {
            if store.revoke_partner_key(&id, ops::now()).await? {
                println!("Revoked {id}: it no longer works.");
                Ok(())
            } else {
                bail!("no active partner key {id} (see `memberd partners list`)")
            }
        }
    }
}

/// A Shopify shop domain such as `your-store.myshopify.com`, lowercased.
fn parse_shop(raw: &str) -> anyhow::Result<String> {
    let shop = raw.trim().to_ascii_lowercase();
    let valid = shop.contains('.')
        && shop.len() <= 255
        && shop
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !valid {
        bail!("--shop must be a domain such as your-store.myshopify.com, got {raw:?}");
    }
    Ok(shop)
}

pub async fn keys(store: &Store, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create { app, env, name } => {
            let app_id = parse_app_id(&app)?;
            let key = ops::create_key(store, &app_id, env.into(), name.trim())
                .await
                .map_err(|err| match err {
                    memberd_store::StoreError::NotFound { .. } => {
                        anyhow::anyhow!("no such app: {app_id} (see `memberd apps list`)")
                    }
                    other => other.into(),
                })?;
            println!(
                "Created the key {} for {app_id}. Its secret is shown this once; keep it safe:",
                key.key.id
            );
            print_keys(std::slice::from_ref(&key));
            Ok(())
        }
        KeysCommand::List { app } => {
            let app_id = app.as_deref().map(parse_app_id).transpose()?;
            let keys = store.list_keys(app_id.as_ref()).await?;
            if keys.is_empty() {
                println!("No keys.");
                return Ok(());
            }
            println!(
                "{:<30} {:<30} {:<8} {:<16} {:<16} STATE",
                "ID", "APP", "ENV", "NAME", "SECRET"
            );
            for key in keys {
                let state = match key.revoked_at {
                    Some(at) => format!("revoked {at}"),
                    None => "active".to_owned(),
                };
                println!(
                    "{:<30} {:<30} {:<8} {:<16} {:<16} {state}",
                    key.id,
                    key.app_id,
                    key.env.as_str(),
                    key.name,
                    key.hint
                );
            }
            crate::accounts::print_publishable_keys(store, app_id.as_ref()).await
        }
        KeysCommand::Revoke { id } => {
            let key_id =
                KeyId::parse(&id).with_context(|| format!("{id:?} is not a key id (key_…)"))?;
            if store.revoke_key(&key_id, ops::now()).await? {
                println!("Revoked {key_id}: running servers refuse it within a second.");
                Ok(())
            } else {
                bail!("no active key {key_id} (see `memberd keys list`)")
            }
        }
    }
}
