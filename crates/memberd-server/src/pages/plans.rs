//! Plans: the list, a new plan with its first price, editing the name, description and
//! permissions, and archiving. Prices are fixed once members can hold them (the core's rule):
//! a new price is a new plan.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse};
use maud::{html, Markup};
use memberd_core::operator::Capability;
use memberd_core::plan::{PlanDraft, PriceDraft};
use memberd_core::{Interval, Plan, PlanId, PlanPatch, PlanType};
use memberd_store::{Order, PageRequest, PlanFilter};
use serde::Deserialize;

use super::auth::CsrfForm;
use super::layout::{self, csrf, post_button, Field, Section};
use super::{see_other, FieldErrors, PageError, PageResult, Place};
use crate::state::AppState;

const INTERVALS: [Interval; 5] = [
    Interval::Month,
    Interval::Year,
    Interval::Week,
    Interval::Day,
    Interval::Onetime,
];

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

fn prices(plan: &Plan) -> Markup {
    html! {
        @if plan.prices.is_empty() { "free" }
        @for (i, price) in plan.prices.iter().enumerate() {
            @if i > 0 { br; }
            (layout::money(price.amount, &price.currency)) " / " (price.interval.as_str().to_lowercase())
            @if price.trial_days > 0 { " (" (price.trial_days) "-day trial)" }
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
    #[serde(default)]
    amount: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    interval: String,
    #[serde(default)]
    trial_days: String,
}

fn new_plan_page(place: &Place, form: &NewPlanForm, errors: &FieldErrors) -> Markup {
    let currency = if form.currency.is_empty() {
        "USD"
    } else {
        &form.currency
    };
    let interval_error = errors.get("prices[0].interval");
    let body = html! {
        form.stack method="post" action={ (place.base()) "/plans" } novalidate {
            (csrf(&place.signed_in.csrf))
            (layout::form_errors(errors, &["name", "description", "permissions", "prices[0].amount",
                "prices[0].currency", "prices[0].interval", "prices[0].trialDays"]))
            (Field::text("Name", "name", &form.name).required().render(errors))
            (Field::text("Description", "description", &form.description).kind("textarea").render(errors))
            (Field::text("Permissions", "permissions", &form.permissions)
                .hint("Separated by commas: what members of the plan may see (premium, courses).").render(errors))
            fieldset {
                legend { "Price" }
                p.hint { "Leave the amount empty for a free plan." }
                (Field::text("Amount", "amount", &form.amount).api("prices[0].amount").hint("In the currency's units: 9.99").render(errors))
                (Field::text("Currency", "currency", currency).api("prices[0].currency").render(errors))
                div.field.invalid[interval_error.is_some()] {
                    label for="interval" { "Billed every" }
                    select #interval name="interval" {
                        @for i in INTERVALS {
                            option value=(i.as_str()) selected[form.interval == i.as_str()] { (interval_label(i)) }
                        }
                    }
                    @if let Some(e) = interval_error { p.error { (e) } }
                }
                (Field::text("Trial days", "trial_days", &form.trial_days).kind("number").api("prices[0].trialDays").render(errors))
            }
            div.actions { button type="submit" { "Create plan" } }
        }
    };
    layout::page(place, Section::Plans, "Create a plan", body)
}

fn interval_label(i: Interval) -> &'static str {
    match i {
        Interval::Day => "day",
        Interval::Week => "week",
        Interval::Month => "month",
        Interval::Year => "year",
        Interval::Onetime => "once (one-time payment)",
    }
}

pub async fn new_form(place: Place) -> PageResult {
    place.require(Capability::Change, "create plans")?;
    Ok(
        Html(new_plan_page(&place, &NewPlanForm::default(), &FieldErrors::default()).into_string())
            .into_response(),
    )
}

/// An amount typed in a currency's units (`9.99`, `10`) in minor units.
fn minor_units(text: &str) -> Option<i64> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty()
        || fraction.len() > 2
        || !whole
            .bytes()
            .chain(fraction.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let cents = format!("{fraction:0<2}").parse::<i64>().ok()?;
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents)
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
    let mut prices = Vec::new();
    if !form.amount.trim().is_empty() {
        let Some(amount) = minor_units(&form.amount) else {
            return refuse(FieldErrors::one(
                "prices[0].amount",
                "Write the amount as a number, such as 9.99.",
            ));
        };
        let Some(interval) = Interval::parse(&form.interval) else {
            return refuse(FieldErrors::one(
                "prices[0].interval",
                "Pick how often the price is billed.",
            ));
        };
        let trial_days = match form.trial_days.trim() {
            "" => None,
            t => match t.parse::<u32>() {
                Ok(n) => Some(n),
                Err(_) => {
                    return refuse(FieldErrors::one(
                        "prices[0].trialDays",
                        "Write the trial as a whole number of days.",
                    ))
                }
            },
        };
        prices.push(PriceDraft {
            amount,
            currency: form.currency.trim().to_owned(),
            interval,
            interval_count: None,
            trial_days,
            term_days: None,
        });
    }
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

fn plan_page(place: &Place, plan: &Plan, form: &EditPlanForm, errors: &FieldErrors) -> Markup {
    let base = format!("{}/plans/{}", place.base(), plan.id);
    let body = html! {
        dl.props {
            dt { "Id" } dd { code { (plan.id) } }
            dt { "Type" } dd { (plan.plan_type.as_str()) }
            dt { "Status" } dd { (layout::badge(plan.status.as_str())) }
            dt { "Prices" } dd { (prices(plan)) }
            @for price in &plan.prices { dt { "Price id" } dd { code { (price.id) } } }
            dt { "Created" } dd { (layout::when(plan.created_at)) }
        }
        @if place.may(Capability::Change) {
            h2 { "Edit" }
            form.stack method="post" action=(base) novalidate {
                (csrf(&place.signed_in.csrf))
                (layout::form_errors(errors, &["name", "description", "permissions"]))
                (Field::text("Name", "name", &form.name).required().render(errors))
                (Field::text("Description", "description", &form.description).kind("textarea").render(errors))
                (Field::text("Permissions", "permissions", &form.permissions).hint("Separated by commas.").render(errors))
                p.hint { "Prices cannot change once members may hold them; to charge another price, create a plan with it." }
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

fn plan_id(raw: &str) -> PageResult<PlanId> {
    PlanId::parse(raw).ok_or(PageError::NotFound)
}

async fn load(state: &AppState, place: &Place, id: &PlanId) -> PageResult<Plan> {
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
    Ok(
        Html(plan_page(&place, &plan, &form_of(&plan), &FieldErrors::default()).into_string())
            .into_response(),
    )
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
    };
    let now = state.now();
    match state
        .store()
        .update_plan(&place.scope(), &id, |p| p.patch(patch, now))
        .await
    {
        Ok(saved) => {
            place
                .audit(
                    &state,
                    "plan.updated",
                    Some(id.as_str()),
                    format!("changed plan {}", saved.name),
                )
                .await;
            Ok(see_other(&format!("{}/plans/{id}", place.base())))
        }
        Err(err) => {
            let errors = FieldErrors::from_api(err.into())?;
            Ok(Html(plan_page(&place, &plan, &form, &errors).into_string()).into_response())
        }
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

#[cfg(test)]
mod tests {
    use super::minor_units;

    #[test]
    fn amounts_are_read_in_the_currency_s_units() {
        assert_eq!(minor_units("9.99"), Some(999));
        assert_eq!(minor_units("10"), Some(1000));
        assert_eq!(minor_units(" 0.5 "), Some(50));
        for bad in [
            "",
            "1.234",
            "-1",
            "1,00",
            "abc",
            ".5",
            "99999999999999999999",
        ] {
            assert_eq!(minor_units(bad), None, "{bad:?}");
        }
    }
}
