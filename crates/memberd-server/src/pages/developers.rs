//! Developers: the environment's secret keys (a new one shown once; revoking), its
//! publishable key, and the member-facing API's settings (allowed origins, sign-up, sessions,
//! passwords, the email sender). Keys are the owner's: admins and viewers see only their hints.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse};
use maud::{html, Markup};
use memberd_core::operator::Capability;
use memberd_core::{EnvSettings, KeyId, SettingsPatch};
use serde::Deserialize;

use super::auth::CsrfForm;
use super::layout::{self, csrf, post_button, Field, Section};
use super::{see_other, FieldErrors, PageError, PageResult, Place};
use crate::ops::{self, NewKey};
use crate::state::AppState;

#[derive(Deserialize, Default)]
pub struct SettingsForm {
    #[serde(default)]
    allowed_origins: String,
    signup_enabled: Option<String>,
    #[serde(default)]
    session_lifetime_days: String,
    #[serde(default)]
    password_min_length: String,
    #[serde(default)]
    email_from_name: String,
    #[serde(default)]
    email_from_address: String,
    #[serde(default)]
    verify_redirect_url: String,
}

impl SettingsForm {
    fn of(settings: &EnvSettings) -> Self {
        SettingsForm {
            allowed_origins: settings
                .allowed_origins
                .as_ref()
                .map(|list| {
                    list.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .unwrap_or_default(),
            signup_enabled: settings.signup_enabled.then(|| "on".into()),
            session_lifetime_days: settings.session_lifetime_days.to_string(),
            password_min_length: settings.password_min_length.to_string(),
            email_from_name: settings.email_from_name.clone().unwrap_or_default(),
            email_from_address: settings
                .email_from_address
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            verify_redirect_url: settings.verify_redirect_url.clone().unwrap_or_default(),
        }
    }
}

async fn page(
    state: &AppState,
    place: &Place,
    new_key: Option<&NewKey>,
    form: Option<&SettingsForm>,
    errors: &FieldErrors,
) -> PageResult<Markup> {
    let scope = place.scope();
    let keys: Vec<_> = state
        .store()
        .list_keys(Some(&place.app.id))
        .await?
        .into_iter()
        .filter(|k| k.env == place.env)
        .collect();
    let publishable = state
        .store()
        .publishable_key(&scope)
        .await?
        .unwrap_or_default();
    let settings = state.store().env_settings(&scope).await?;
    let shown = form.map_or_else(
        || SettingsForm::of(&settings),
        |f| SettingsForm {
            allowed_origins: f.allowed_origins.clone(),
            signup_enabled: f.signup_enabled.clone(),
            session_lifetime_days: f.session_lifetime_days.clone(),
            password_min_length: f.password_min_length.clone(),
            email_from_name: f.email_from_name.clone(),
            email_from_address: f.email_from_address.clone(),
            verify_redirect_url: f.verify_redirect_url.clone(),
        },
    );
    let defaults: Vec<String> = memberd_core::account::default_origins(place.env)
        .iter()
        .map(ToString::to_string)
        .collect();
    let base = place.base();
    let token = &place.signed_in.csrf;
    let owner = place.may(Capability::ManageAccess);
    let body = html! {
        @if let Some(new) = new_key {
            div.notice role="status" {
                p { "The new secret key " strong { (new.key.name) } ", shown this once:" }
                p.secret { (new.secret) }
                p { "Keep it on your servers only; memberd keeps only its hash." }
            }
        }
        h2 { "Publishable key" }
        p { "For browsers (" code { "@memberstack/dom" } "'s " code { "publicKey" } "): it names this environment and grants nothing else." }
        p.secret { (publishable) }

        h2 { "Secret keys" }
        div.table-wrap { table {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Key" } th scope="col" { "Created" } th scope="col" { "State" } @if owner { th scope="col" { "Action" } } } }
            tbody { @for k in &keys { tr {
                td { (k.name) }
                td { code { (k.hint) } }
                td { (layout::when(k.created_at)) }
                td { @if let Some(t) = k.revoked_at { "revoked " (layout::when(t)) } @else { "live" } }
                @if owner { td { @if k.revoked_at.is_none() {
                    (post_button(&format!("{base}/developers/keys/{}/revoke", k.id), token, &format!("Revoke {}", k.name), true))
                } } }
            } } }
        } }
        @if owner {
            form.row method="post" action={ (base) "/developers/keys" } {
                (csrf(token))
                (Field::text("Name of a new key", "name", "").hint("To know it by: the server or service that uses it.").render(errors))
                button type="submit" { "Create secret key" }
            }
        } @else {
            p.hint { "Only owners create and revoke keys." }
        }

        h2 { "Member-facing API" }
        @if place.may(Capability::Change) {
            form.stack method="post" action={ (base) "/developers/settings" } novalidate {
                (csrf(token))
                (layout::form_errors(errors, &["allowedOrigins", "sessionLifetimeDays", "passwordMinLength",
                    "emailFromName", "emailFromAddress", "verifyRedirectUrl", "name"]))
                (Field::text("Allowed origins", "allowed_origins", &shown.allowed_origins).kind("textarea").api("allowedOrigins")
                    .hint(&format!("The sites whose pages may call the member-facing API, one per line (https://example.com, http://localhost:*). Empty: the default ({}).",
                        if defaults.is_empty() { "none".to_owned() } else { defaults.join(", ") })).render(errors))
                div.field {
                    label { input type="checkbox" name="signup_enabled" checked[shown.signup_enabled.is_some()]; " Members may sign up" }
                }
                (Field::text("Session lifetime (days)", "session_lifetime_days", &shown.session_lifetime_days).kind("number").api("sessionLifetimeDays").render(errors))
                (Field::text("Shortest password", "password_min_length", &shown.password_min_length).kind("number").api("passwordMinLength").render(errors))
                (Field::text("Email sender's name", "email_from_name", &shown.email_from_name).api("emailFromName").hint("Empty: the server's sender.").render(errors))
                (Field::text("Email sender's address", "email_from_address", &shown.email_from_address).kind("email").api("emailFromAddress").render(errors))
                (Field::text("After verifying, send members to", "verify_redirect_url", &shown.verify_redirect_url).kind("url").api("verifyRedirectUrl")
                    .hint("Empty: a page saying it worked.").render(errors))
                div.actions { button type="submit" { "Save settings" } }
            }
        } @else {
            dl.props {
                dt { "Allowed origins" } dd { (settings.origins(place.env).iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")) }
                dt { "Sign-up" } dd { (if settings.signup_enabled { "on" } else { "off" }) }
                dt { "Session lifetime" } dd { (settings.session_lifetime_days) " days" }
            }
        }
    };
    Ok(layout::page(place, Section::Developers, "Developers", body))
}

pub async fn show(State(state): State<AppState>, place: Place) -> PageResult {
    Ok(Html(
        page(&state, &place, None, None, &FieldErrors::default())
            .await?
            .into_string(),
    )
    .into_response())
}

#[derive(Deserialize)]
pub struct NewKeyForm {
    #[serde(default)]
    name: String,
}

pub async fn create_key(
    State(state): State<AppState>,
    place: Place,
    CsrfForm(form): CsrfForm<NewKeyForm>,
) -> PageResult {
    place.require(Capability::ManageAccess, "create keys")?;
    let name = form.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        let errors = FieldErrors::one("name", "Name the key: 1 to 100 characters.");
        return Ok(Html(
            page(&state, &place, None, None, &errors)
                .await?
                .into_string(),
        )
        .into_response());
    }
    let new = ops::create_key(state.store(), &place.app.id, place.env, name).await?;
    place
        .audit(
            &state,
            "key.created",
            Some(new.key.id.as_str()),
            format!("created the secret key {} ({})", new.key.name, new.key.hint),
        )
        .await;
    Ok(Html(
        page(&state, &place, Some(&new), None, &FieldErrors::default())
            .await?
            .into_string(),
    )
    .into_response())
}

#[derive(Deserialize)]
pub struct NoFields {}

pub async fn revoke_key(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): Path<(String, String, String)>,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult {
    place.require(Capability::ManageAccess, "revoke keys")?;
    let id = KeyId::parse(&id).ok_or(PageError::NotFound)?;
    let key = state
        .store()
        .list_keys(Some(&place.app.id))
        .await?
        .into_iter()
        .find(|k| k.id == id && k.env == place.env)
        .ok_or(PageError::NotFound)?;
    state.store().revoke_key(&id, state.now()).await?;
    place
        .audit(
            &state,
            "key.revoked",
            Some(id.as_str()),
            format!("revoked the secret key {} ({})", key.name, key.hint),
        )
        .await;
    Ok(see_other(&format!("{}/developers", place.base())))
}

/// Saves the member-facing settings as `memberd apps update` does, through the core's rules.
pub async fn save_settings(
    State(state): State<AppState>,
    place: Place,
    CsrfForm(form): CsrfForm<SettingsForm>,
) -> PageResult {
    place.require(Capability::Change, "change settings")?;
    let number = |field: &'static str, raw: &str| -> Result<i64, FieldErrors> {
        raw.trim()
            .parse::<i64>()
            .map_err(|_| FieldErrors::one(field, "Write a whole number."))
    };
    let optional = |raw: &str| Some(Some(raw.trim().to_owned()).filter(|s| !s.is_empty()));
    let patch = (|| {
        let origins: Vec<String> = form
            .allowed_origins
            .lines()
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect();
        Ok::<_, FieldErrors>(SettingsPatch {
            allowed_origins: Some(Some(origins).filter(|o| !o.is_empty())),
            signup_enabled: Some(form.signup_enabled.is_some()),
            session_lifetime_days: Some(number(
                "sessionLifetimeDays",
                &form.session_lifetime_days,
            )?),
            password_min_length: Some(number("passwordMinLength", &form.password_min_length)?),
            email_from_name: optional(&form.email_from_name),
            email_from_address: optional(&form.email_from_address),
            verify_redirect_url: optional(&form.verify_redirect_url),
        })
    })();
    let result = match patch {
        Ok(patch) => state
            .store()
            .update_env_settings(&place.scope(), patch, state.now())
            .await
            .map_err(|e| FieldErrors::from_api(e.into())),
        Err(errors) => Err(Ok(errors)),
    };
    match result {
        Ok(_) => {
            place
                .audit(
                    &state,
                    "settings.updated",
                    None,
                    "changed the member-facing API's settings".into(),
                )
                .await;
            Ok(see_other(&format!("{}/developers", place.base())))
        }
        Err(errors) => {
            let errors = errors?;
            Ok(Html(
                page(&state, &place, None, Some(&form), &errors)
                    .await?
                    .into_string(),
            )
            .into_response())
        }
    }
}
