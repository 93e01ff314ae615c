//! Operators, for owners: who may sign in, with which role and into which apps; a new
//! operator's link (shown once), a new link for a forgotten password, and removal.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse};
use maud::{html, Markup};
use memberd_core::operator::{AppAccess, Capability, Operator, Role};
use memberd_core::{AppId, OperatorId};
use memberd_store::StoreError;
use serde::Deserialize;

use super::auth::CsrfForm;
use super::layout::{self, csrf, post_button, Field, Section};
use super::{see_other, FieldErrors, PageError, PageResult, Place};
use crate::ops;
use crate::state::AppState;

const WHAT: &str = "manage operators";

#[derive(Default)]
pub struct NewOperatorForm {
    email: String,
    role: String,
    every_app: bool,
    apps: Vec<String>,
}

async fn page(
    state: &AppState,
    place: &Place,
    form: &NewOperatorForm,
    errors: &FieldErrors,
    link: Option<(&str, String)>,
) -> PageResult<Markup> {
    let operators = state.store().list_operators().await?;
    let apps = state.store().list_apps().await?;
    let app_name = |id: &AppId| {
        apps.iter()
            .find(|a| &a.id == id)
            .map_or(id.to_string(), |a| a.name.clone())
    };
    let me = &place.signed_in.operator.id;
    let base = place.base();
    let token = &place.signed_in.csrf;
    let body = html! {
        @if let Some((email, url)) = &link {
            div.notice role="status" {
                p { "The link that sets " strong { (email) } "'s password, shown this once (it works once, for 24 hours):" }
                p.secret { (url) }
            }
        }
        div.table-wrap { table {
            thead { tr { th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "Apps" } th scope="col" { "Password" } th scope="col" { "Actions" } } }
            tbody { @for op in &operators { tr {
                td { (op.email) }
                td { (op.role) }
                td { @match &op.apps {
                    AppAccess::All => "every app",
                    AppAccess::Only(ids) => (ids.iter().map(&app_name).collect::<Vec<_>>().join(", ")),
                } }
                td { (if op.password_hash.is_some() { "set" } else { "not yet" }) }
                td { div.actions {
                    (post_button(&format!("{base}/operators/{}/link", op.id), token, &format!("New link for {}", op.email), false))
                    @if &op.id != me {
                        (post_button(&format!("{base}/operators/{}/delete", op.id), token, &format!("Remove {}", op.email), true))
                    }
                } }
            } } }
        } }
        h2 { "Add an operator" }
        form.stack method="post" action={ (base) "/operators" } novalidate {
            (csrf(token))
            (layout::form_errors(errors, &["email", "role", "apps"]))
            (Field::text("Email", "email", &form.email).kind("email").required().render(errors))
            div.field {
                label for="role" { "Role" }
                select #role name="role" {
                    @for role in Role::ALL {
                        option value=(role.as_str()) selected[form.role == role.as_str()] { (role) " — " (role_help(role)) }
                    }
                }
            }
            fieldset.field.invalid[errors.get("apps").is_some()] {
                legend { "Apps they may enter" }
                label { input type="checkbox" name="every_app" checked[form.every_app]; " Every app, including those made later" }
                @for app in &apps {
                    label { input type="checkbox" name="app" value=(app.id) checked[form.apps.contains(&app.id.to_string())]; " " (app.name) }
                }
                @if let Some(e) = errors.get("apps") { p.error { (e) } }
            }
            div.actions { button type="submit" { "Add operator" } }
        }
    };
    Ok(layout::page(place, Section::Operators, "Operators", body))
}

fn role_help(role: Role) -> &'static str {
    match role {
        Role::Owner => "everything",
        Role::Admin => "everything but operators and keys",
        Role::Viewer => "reads only",
    }
}

pub async fn show(State(state): State<AppState>, place: Place) -> PageResult {
    place.require(Capability::ManageAccess, WHAT)?;
    let form = NewOperatorForm {
        role: "viewer".into(),
        ..NewOperatorForm::default()
    };
    Ok(Html(
        page(&state, &place, &form, &FieldErrors::default(), None)
            .await?
            .into_string(),
    )
    .into_response())
}

pub async fn create(
    State(state): State<AppState>,
    place: Place,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> PageResult {
    place.require(Capability::ManageAccess, WHAT)?;
    // As pairs: the form repeats `app`, once per box ticked.
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let form = NewOperatorForm {
        email: value("email").trim().to_owned(),
        role: value("role"),
        every_app: pairs.iter().any(|(n, _)| n == "every_app"),
        apps: pairs
            .iter()
            .filter(|(n, _)| n == "app")
            .map(|(_, v)| v.clone())
            .collect(),
    };
    let role: Role = match form.role.parse() {
        Ok(role) => role,
        Err(err) => {
            return refuse(
                &state,
                &place,
                &form,
                FieldErrors::from_api(crate::error::ApiError::from(err))?,
            )
            .await
        }
    };
    let known = state.store().list_apps().await?;
    let apps = if form.every_app {
        AppAccess::All
    } else {
        AppAccess::Only(
            form.apps
                .iter()
                .filter_map(|a| AppId::parse(a))
                .filter(|a| known.iter().any(|k| &k.id == a))
                .collect(),
        )
    };
    let operator = match Operator::create(&form.email, role, apps, state.now()) {
        Ok(op) => op,
        Err(err) => return refuse(&state, &place, &form, FieldErrors::from_api(err.into())?).await,
    };
    let link = match ops::create_operator(state.store(), &operator).await {
        Ok(link) => link,
        Err(StoreError::Duplicate { .. }) => {
            return refuse(
                &state,
                &place,
                &form,
                FieldErrors::one("email", "That address is already an operator's."),
            )
            .await
        }
        Err(err) => return Err(err.into()),
    };
    place
        .audit(
            &state,
            "operator.created",
            Some(operator.id.as_str()),
            format!("added the {} {}", operator.role, operator.email),
        )
        .await;
    with_link(&state, &place, &operator, &link).await
}

/// The page with an operator's new password link, shown this once, above a blank form.
async fn with_link(state: &AppState, place: &Place, operator: &Operator, link: &str) -> PageResult {
    let url = format!("{}{link}", state.config().issuer());
    let blank = NewOperatorForm {
        role: "viewer".into(),
        ..NewOperatorForm::default()
    };
    let link = Some((operator.email.as_str(), url));
    let shown = page(state, place, &blank, &FieldErrors::default(), link).await?;
    Ok(Html(shown.into_string()).into_response())
}

async fn refuse(
    state: &AppState,
    place: &Place,
    form: &NewOperatorForm,
    errors: FieldErrors,
) -> PageResult {
    Ok(Html(page(state, place, form, &errors, None).await?.into_string()).into_response())
}

#[derive(Deserialize)]
pub struct NoFields {}

async fn load(state: &AppState, raw: &str) -> PageResult<Operator> {
    let id = OperatorId::parse(raw).ok_or(PageError::NotFound)?;
    state
        .store()
        .get_operator(&id)
        .await?
        .ok_or(PageError::NotFound)
}

pub async fn new_link(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): Path<(String, String, String)>,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult {
    place.require(Capability::ManageAccess, WHAT)?;
    let operator = load(&state, &id).await?;
    let link = ops::new_operator_link(state.store(), &operator.id).await?;
    place
        .audit(
            &state,
            "operator.link_made",
            Some(operator.id.as_str()),
            format!("made a password link for {}", operator.email),
        )
        .await;
    with_link(&state, &place, &operator, &link).await
}

pub async fn delete(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): Path<(String, String, String)>,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult {
    place.require(Capability::ManageAccess, WHAT)?;
    let operator = load(&state, &id).await?;
    if operator.id == place.signed_in.operator.id {
        return Err(PageError::bad_request(
            "You cannot remove yourself; another owner can.",
        ));
    }
    state.store().delete_operator(&operator.id).await?;
    place
        .audit(
            &state,
            "operator.deleted",
            Some(operator.id.as_str()),
            format!("removed {}", operator.email),
        )
        .await;
    Ok(see_other(&format!("{}/operators", place.base())))
}
