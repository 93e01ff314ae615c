//! Plans: the list, a new plan with its first price, editing the name, description and
//! permissions, and archiving. A plan's prices are `plan_prices`'s.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse};
use maud::{html, Markup};
use memberd_core::operator::Capability;
use memberd_core::plan::PlanDraft;
use memberd_core::{Plan, PlanId, PlanPatch, PlanType};
use memberd_store::{Order, PageRequest, PlanFilter};
use serde::Deserialize;

use super::auth::CsrfForm;
use super::layout::{self, csrf, post_button, Field, Section};
use super::plan_prices::{self, PriceForm};
use super::{see_other, FieldErrors, PageError, PageResult, Place};
use crate::state::AppState;

/// The environment's plans (as many as a page shows), oldest first; `status` keeps to one.
pub(super) async fn all_plans(
    state: &AppState,
    place: &Place,
    status: Option<memberd_core::PlanStatus>,
) -> PageResult<Vec<Plan>> {
    let page = PageRequest {
        after: None,
        limit: 500,
        order: Order::Asc,
    };
    let filter = PlanFilter { status };
    Ok(state
        .store()
        .list_plans(&place.scope(), &filter, page)
        .await?
        .items)
}

pub async fn list(State(state): State<AppState>, place: Place) -> PageResult {
    let plans = all_plans(&state, &place, None).await?;
    let base = place.base();
    let body = html! {
        @if place.may(Capability::Change) {
            p { a.button href={ (base) "/plans/new" } { "Create a plan" } }
        }
        @if plans.is_empty() {
            (layout::empty("No plans yet."))
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "Prices" }
                    th scope="col" { "Permissions" } th scope="col" { "Status" }
                } }
                tbody { @for p in &plans { tr {
                    td { a href={ (base) "/plans/" (p.id) } { (p.name) } }
                    td { (p.plan_type.as_str()) }
                    td { (prices(p)) }
                    td { (p.permissions.join(", ")) }
                    td { (layout::badge(p.status.as_str())) }
                } } }
            } }
        }
    };
    Ok(Html(layout::page(&place, Section::Plans, "Plans", body).into_string()).into_response())
}

/// The prices a new member may choose; retired ones are on the plan's page.
fn prices(plan: &Plan) -> Markup {
    html! {
        @if plan.prices.is_empty() { "free" }
        @for (i, price) in plan.active_prices().enumerate() {
            @if i > 0 { br; }
            (plan_prices::describe(price))
        }
    }
}

#[derive(Deserialize, Default)]
pub struct NewPlanForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    permissions: String,
    #[serde(flatten)]
    price: PriceForm,
}

fn new_plan_page(place: &Place, form: &NewPlanForm, errors: &FieldErrors) -> Markup {
    let price_fields = PriceForm::error_fields("prices");
    let mut shown = vec!["name", "description", "permissions"];
    shown.extend(price_fields.iter().map(String::as_str));
    let body = html! {
        form.stack method="post" action={ (place.base()) "/plans" } novalidate {
            (csrf(&place.signed_in.csrf))
            (layout::form_errors(errors, &shown))
            (Field::text("Name", "name", &form.name).required().render(errors))
            (Field::text("Description", "description", &form.description).kind("textarea").render(errors))
            (Field::text("Permissions", "permissions", &form.permissions)
                .hint("Separated by commas: what members of the plan may see (premium, courses).").render(errors))
            fieldset {
                legend { "Price" }
                p.hint { "Leave the amount empty for a free plan." }
                (form.price.fields("prices", errors))
            }
            div.actions { button type="submit" { "Create plan" } }
        }
    };
    layout::page(place, Section::Plans, "Create a plan", body)
}

pub async fn new_form(place: Place) -> PageResult {
    place.require(Capability::Change, "create plans")?;
    Ok(
        Html(new_plan_page(&place, &NewPlanForm::default(), &FieldErrors::default()).into_string())
            .into_response(),
    )
}

fn permission_list(text: &str) -> Vec<String> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

pub async fn create(
    State(state): State<AppState>,
    place: Place,
    CsrfForm(form): CsrfForm<NewPlanForm>,
) -> PageResult {
    place.require(Capability::Change, "create plans")?;
    let refuse = |errors: FieldErrors| {
        Ok(Html(new_plan_page(&place, &form, &errors).into_string()).into_response())
    };
    let prices = match form.price.draft("prices") {
        Ok(price) => price.into_iter().collect::<Vec<_>>(),
        Err(errors) => return refuse(errors),
    };
    let draft = PlanDraft {
        name: form.name.clone(),
        description: Some(form.description.trim().to_owned()).filter(|d| !d.is_empty()),
        plan_type: if prices.is_empty() {
            PlanType::Free
        } else {
            PlanType::Paid
        },
        permissions: permission_list(&form.permissions),
        prices,
    };
    let plan = match Plan::create(draft, state.now()) {
        Ok(plan) => plan,
        Err(err) => return refuse(FieldErrors::from_api(err.into())?),
    };
    if let Err(err) = state.store().insert_plan(&place.scope(), &plan).await {
        return refuse(FieldErrors::from_api(err.into())?);
    }
    place
        .audit(
            &state,
            "plan.created",
            Some(plan.id.as_str()),
            format!("created plan {}", plan.name),
        )
        .await;
    Ok(see_other(&format!("{}/plans/{}", place.base(), plan.id)))
}

#[derive(Deserialize, Default)]
pub struct EditPlanForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    permissions: String,
}

/// A plan's page. `edit` is the edit form as refused, `price` the add-a-price form; each with
/// the errors to show in it.
pub(super) fn plan_page(
    place: &Place,
    plan: &Plan,
    edit: Option<(&EditPlanForm, &FieldErrors)>,
    price: (&PriceForm, &FieldErrors),
) -> Markup {
    let base = format!("{}/plans/{}", place.base(), plan.id);
    let unchanged = form_of(plan);
    let no_errors = FieldErrors::default();
    let (form, errors) = edit.unwrap_or((&unchanged, &no_errors));
    let body = html! {
        dl.props {
            dt { "Id" } dd { code { (plan.id) } }
            dt { "Type" } dd { (plan.plan_type.as_str()) }
            dt { "Status" } dd { (layout::badge(plan.status.as_str())) }
            dt { "Created" } dd { (layout::when(plan.created_at)) }
        }
        (plan_prices::section(place, plan, price.0, price.1))
        @if place.may(Capability::Change) {
            h2 { "Edit" }
            form.stack method="post" action=(base) novalidate {
                (csrf(&place.signed_in.csrf))
                (layout::form_errors(errors, &["name", "description", "permissions"]))
                (Field::text("Name", "name", &form.name).required().render(errors))
                (Field::text("Description", "description", &form.description).kind("textarea").render(errors))
                (Field::text("Permissions", "permissions", &form.permissions).hint("Separated by commas.").render(errors))
                div.actions { button type="submit" { "Save plan" } }
            }
            @if plan.status.as_str() == "ACTIVE" {
                h2 { "Archive" }
                p { "An archived plan keeps its members but takes no new ones." }
                (post_button(&format!("{base}/archive"), &place.signed_in.csrf, "Archive plan", true))
            }
        }
    };
    layout::page(place, Section::Plans, &plan.name, body)
}

pub(super) fn plan_id(raw: &str) -> PageResult<PlanId> {
    PlanId::parse(raw).ok_or(PageError::NotFound)
}

pub(super) async fn load(state: &AppState, place: &Place, id: &PlanId) -> PageResult<Plan> {
    state
        .store()
        .get_plan(&place.scope(), id)
        .await?
        .ok_or(PageError::NotFound)
}

fn form_of(plan: &Plan) -> EditPlanForm {
    EditPlanForm {
        name: plan.name.clone(),
        description: plan.description.clone().unwrap_or_default(),
        permissions: plan.permissions.join(", "),
    }
}

pub async fn show(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): Path<(String, String, String)>,
) -> PageResult {
    let plan = load(&state, &place, &plan_id(&id)?).await?;
    let no_price = (&PriceForm::default(), &FieldErrors::default());
    Ok(Html(plan_page(&place, &plan, None, no_price).into_string()).into_response())
}

pub async fn update(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): Path<(String, String, String)>,
    CsrfForm(form): CsrfForm<EditPlanForm>,
) -> PageResult {
    place.require(Capability::Change, "change plans")?;
    let id = plan_id(&id)?;
    let plan = load(&state, &place, &id).await?;
    let patch = PlanPatch {
        name: Some(form.name.clone()),
        description: Some(Some(form.description.trim().to_owned()).filter(|d| !d.is_empty())),
        permissions: Some(permission_list(&form.permissions)),
        ..Default::default()
    };
    let saved = save_patch(&state, &place, &id, patch, "plan.updated", |saved| {
        format!("changed plan {}", saved.name)
    })
    .await?;
    saved.or_else(|errors| {
        let no_price = (&PriceForm::default(), &FieldErrors::default());
        let page = plan_page(&place, &plan, Some((&form, &errors)), no_price);
        Ok(Html(page.into_string()).into_response())
    })
}

/// Applies `patch` through the core's `Plan::patch` and the store; once saved, keeps an
/// audit entry (`action`, and `summary` of the saved plan) and sends the operator back to the
/// plan's page. `Err` holds the refusal, for the caller's page to show.
pub(super) async fn save_patch(
    state: &AppState,
    place: &Place,
    id: &PlanId,
    patch: PlanPatch,
    action: &str,
    summary: impl FnOnce(&Plan) -> String,
) -> PageResult<Result<axum::response::Response, FieldErrors>> {
    let now = state.now();
    match state
        .store()
        .update_plan(&place.scope(), id, |p| p.patch(patch, now))
        .await
    {
        Ok(saved) => {
            place
                .audit(state, action, Some(id.as_str()), summary(&saved))
                .await;
            Ok(Ok(see_other(&format!("{}/plans/{id}", place.base()))))
        }
        Err(err) => Ok(Err(FieldErrors::from_api(err.into())?)),
    }
}

#[derive(Deserialize)]
pub struct NoFields {}

pub async fn archive(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): Path<(String, String, String)>,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult {
    place.require(Capability::Change, "archive plans")?;
    let id = plan_id(&id)?;
    let now = state.now();
    let plan = state
        .store()
        .update_plan(&place.scope(), &id, |p| Ok(p.archive(now)))
        .await?;
    place
        .audit(
            &state,
            "plan.archived",
            Some(id.as_str()),
            format!("archived plan {}", plan.name),
        )
        .await;
    Ok(see_other(&format!("{}/plans/{id}", place.base())))
}
