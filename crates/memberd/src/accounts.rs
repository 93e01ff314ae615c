//! The commands for members' own accounts: each environment's publishable key and
//! member-facing settings, and the keys that sign session tokens.

use anyhow::bail;
use memberd_core::{AppId, Environment, Scope, SettingsPatch};
use memberd_store::{Store, StoreError};

use crate::cli::{EnvArg, SigningKeysCommand, Switch};

/// The member-facing settings `memberd apps update` may change.
pub struct SettingsArgs {
    pub env: EnvArg,
    pub allowed_origins: Option<Vec<String>>,
    pub signup: Option<Switch>,
    pub session_lifetime_days: Option<i64>,
    pub password_min_length: Option<i64>,
    pub email_from_name: Option<String>,
    pub email_from_address: Option<String>,
    pub verify_redirect_url: Option<String>,
}

/// `default` (or an empty value) goes back to the default.
fn resettable(value: Option<String>) -> Option<Option<String>> {
    value.map(|v| Some(v).filter(|v| !v.trim().is_empty() && v.trim() != "default"))
}

impl SettingsArgs {
    pub fn is_empty(&self) -> bool {
        self.allowed_origins.is_none()
            && self.signup.is_none()
            && self.session_lifetime_days.is_none()
            && self.password_min_length.is_none()
            && self.email_from_name.is_none()
            && self.email_from_address.is_none()
            && self.verify_redirect_url.is_none()
    }
}

/// The CLI's name of a setting the core named as the API does.
fn flag_of(field: &str) -> &str {
    match field.split('[').next().unwrap_or(field) {
        "allowedOrigins" => "--allowed-origins",
        "sessionLifetimeDays" => "--session-lifetime-days",
        "passwordMinLength" => "--password-min-length",
        "emailFromName" => "--email-from-name",
        "emailFromAddress" => "--email-from-address",
        "verifyRedirectUrl" => "--verify-redirect-url",
        other => other,
    }
}

pub async fn update_settings(
    store: &Store,
    app_id: &AppId,
    args: SettingsArgs,
) -> anyhow::Result<()> {
    let scope = Scope::new(app_id.clone(), args.env.into());
    let origins = args.allowed_origins.map(|list| {
        let list: Vec<String> = list.into_iter().map(|o| o.trim().to_owned()).collect();
        if list.len() == 1 && list[0] == "default" {
            None
        } else {
            Some(list.into_iter().filter(|o| !o.is_empty()).collect())
        }
    });
    let patch = SettingsPatch {
        allowed_origins: origins,
        signup_enabled: args.signup.map(|s| matches!(s, Switch::On)),
        session_lifetime_days: args.session_lifetime_days,
        password_min_length: args.password_min_length,
        email_from_name: resettable(args.email_from_name),
        email_from_address: resettable(args.email_from_address),
        verify_redirect_url: resettable(args.verify_redirect_url),
    };
    match store
        .update_env_settings(&scope, patch, memberd_server::ops::now())
        .await
    {
        Ok(_) => {}
        Err(StoreError::Domain(memberd_core::DomainError::Invalid { field, message, .. })) => {
            bail!("{}: {message}", flag_of(&field))
        }
        Err(other) => return Err(other.into()),
    }
    println!("Updated the {} settings of {app_id}:", scope.env.as_str());
    print_env(store, &scope).await
}

async fn print_env(store: &Store, scope: &Scope) -> anyhow::Result<()> {
    let settings = store.env_settings(scope).await?;
    let key = store
        .publishable_key(scope)
        .await?
        .unwrap_or_else(|| "-".into());
    let origins: Vec<String> = settings
        .origins(scope.env)
        .iter()
        .map(ToString::to_string)
        .collect();
    println!("  {}", scope.env.as_str());
    println!("    publishable key:   {key}");
    println!(
        "    allowed origins:   {}{}",
        if origins.is_empty() {
            "none".to_owned()
        } else {
            origins.join(", ")
        },
        if settings.allowed_origins.is_none() {
            " (the default)"
        } else {
            ""
        }
    );
    println!(
        "    sign-up:           {}",
        if settings.signup_enabled { "on" } else { "off" }
    );
    println!(
        "    session lifetime:  {} days",
        settings.session_lifetime_days
    );
    println!(
        "    password minimum:  {} characters",
        settings.password_min_length
    );
    let sender = match (&settings.email_from_name, &settings.email_from_address) {
        (Some(name), Some(address)) => format!("{name} <{address}>"),
        (None, Some(address)) => address.to_string(),
        (Some(name), None) => format!("{name} <the server's --email-from address>"),
        (None, None) => "the server's --email-from".to_owned(),
    };
    println!("    email sender:      {sender}");
    println!(
        "    after verifying:   {}",
        settings
            .verify_redirect_url
            .as_deref()
            .unwrap_or("a page saying it worked")
    );
    Ok(())
}

pub async fn show(store: &Store, app_id: &AppId) -> anyhow::Result<()> {
    let Some(app) = store.get_app(app_id).await? else {
        bail!("no such app: {app_id} (see `memberd apps list`)");
    };
    println!("{} ({})", app.name, app.id);
    for env in [Environment::Sandbox, Environment::Live] {
        print_env(store, &Scope::new(app_id.clone(), env)).await?;
    }
    Ok(())
}

/// The publishable keys, below `memberd keys list`'s secret keys.
pub async fn print_publishable_keys(store: &Store, app_id: Option<&AppId>) -> anyhow::Result<()> {
    let keys = store.list_publishable_keys(app_id).await?;
    if keys.is_empty() {
        return Ok(());
    }
    println!();
    println!("Publishable keys (for browsers; they grant nothing a secret key grants):");
    println!("{:<30} {:<8} KEY", "APP", "ENV");
    for key in keys {
        println!("{:<30} {:<8} {}", key.app_id, key.env.as_str(), key.key);
    }
    Ok(())
}

pub async fn signing_keys(store: &Store, command: SigningKeysCommand) -> anyhow::Result<()> {
    match command {
        SigningKeysCommand::Rotate => {
            let key = memberd_server::tokens::rotate(store, memberd_server::ops::now()).await?;
            println!(
                "New tokens are signed with {} from now on (running servers take it within 30 seconds).",
                key.kid
            );
            println!("The older keys stay in /.well-known/jwks.json until the tokens they signed have expired.");
        }
        SigningKeysCommand::List => {
            let keys = store.signing_keys().await?;
            if keys.is_empty() {
                println!("No signing keys yet: `memberd serve` makes one at its first start.");
                return Ok(());
            }
            println!("{:<22} {:<28} STATE", "KID", "CREATED");
            for key in keys {
                let state = match key.retired_at {
                    Some(at) => format!("retired {at}; verifies the tokens it signed"),
                    None => "signs new tokens".to_owned(),
                };
                println!("{:<22} {:<28} {state}", key.kid, key.created_at.to_string());
            }
        }
    }
    Ok(())
}
