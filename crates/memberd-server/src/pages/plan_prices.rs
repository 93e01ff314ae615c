//! A plan's prices on its page: the list, adding a price and retiring one. A price never
//! changes once created (members hold it), so changing what a plan costs is adding the new
//! price and retiring the old, in one patch through the core's `Plan::patch`.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse};
use maud::{html, Markup};
use memberd_core::operator::Capability;
use memberd_core::plan::PriceDraft;
use memberd_core::{Interval, Plan, PlanPatch, PlanStatus, PlanType, PriceId};
use serde::Deserialize;

use super::auth::CsrfForm;
use super::layout::{self, csrf, post_button, Field};
use super::plans::{load, plan_id, plan_page, save_patch, NoFields};
use super::{FieldErrors, PageError, PageResult, Place};
use crate::state::AppState;

const INTERVALS: [Interval; 5] = [
    Interval::Month,
    Interval::Year,
    Interval::Week,
    Interval::Day,
    Interval::Onetime,
];

/// A price as typed into a form: the new plan's first price, or one added to a plan.
#[derive(Deserialize, Default)]
pub struct PriceForm {
    #[serde(default)]
    pub amount: String,
    #[serde(default)]
    pub currency: String,
    #[serde(default)]
    pub interval: String,
    #[serde(default)]
    pub trial_days: String,
}

impl PriceForm {
    /// The price the form describes, `None` when its amount is empty. `list` is the API's
    /// name for the prices it joins (`prices`, `addPrices`), so that errors land where the
    /// core's would.
    pub fn draft(&self, list: &str) -> Result<Option<PriceDraft>, FieldErrors> {
        if self.amount.trim().is_empty() {
            return Ok(None);
        }
        let field = |name: &str| format!("{list}[0].{name}");
        let amount = minor_units(&self.amount).ok_or_else(|| {
            FieldErrors::one(
                &field("amount"),
                "Write the amount as a number, such as 9.99.",
            )
        })?;
        let interval = Interval::parse(&self.interval).ok_or_else(|| {
            FieldErrors::one(&field("interval"), "Pick how often the price is billed.")
        })?;
        let trial_days = match self.trial_days.trim() {
            "" => None,
            t => Some(t.parse::<u32>().map_err(|_| {
                FieldErrors::one(
                    &field("trialDays"),
                    "Write the trial as a whole number of days.",
                )
            })?),
        };
        Ok(Some(PriceDraft {
            amount,
            currency: self.currency.trim().to_owned(),
            interval,
            interval_count: None,
            trial_days,
            term_days: None,
        }))
    }

    /// The form's fields, their errors named as the API names them in `list`.
    pub fn fields(&self, list: &str, errors: &FieldErrors) -> Markup {
        let currency = if self.currency.is_empty() {
            "USD"
        } else {
            &self.currency
        };
        let api = |name: &str| format!("{list}[0].{name}");
        let (amount, currency_field, interval, trial) = (
            api("amount"),
            api("currency"),
            api("interval"),
            api("trialDays"),
        );
        let interval_error = errors.get(&interval);
        html! {
            (Field::text("Amount", "amount", &self.amount).api(&amount).hint("In the currency's units: 9.99").render(errors))
            (Field::text("Currency", "currency", currency).api(&currency_field).render(errors))
            div.field.invalid[interval_error.is_some()] {
                label for="interval" { "Billed every" }
                select #interval name="interval" {
                    @for i in INTERVALS {
                        option value=(i.as_str()) selected[self.interval == i.as_str()] { (interval_label(i)) }
                    }
                }
                @if let Some(e) = interval_error { p.error { (e) } }
            }
            (Field::text("Trial days", "trial_days", &self.trial_days).kind("number").api(&trial).render(errors))
        }
    }

    /// Every field name `fields` shows errors for, for the errors shown at the top.
    pub fn error_fields(list: &str) -> Vec<String> {
        ["amount", "currency", "interval", "trialDays"]
            .iter()
            .map(|name| format!("{list}[0].{name}"))
            .collect()
    }
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

/// One price as people read it: `9.99 USD / month (14-day trial)`.
pub fn describe(price: &memberd_core::Price) -> String {
    let mut text = format!(
        "{} / {}",
        layout::money(price.amount, &price.currency),
        price.interval.as_str().to_lowercase()
    );
    if price.trial_days > 0 {
        text.push_str(&format!(" ({}-day trial)", price.trial_days));
    }
    text
}

/// The plan page's prices: each with its id and state, a button to retire the active ones,
/// and the form that adds one. `form` and `errors` are the add form's, when it was refused.
pub fn section(place: &Place, plan: &Plan, form: &PriceForm, errors: &FieldErrors) -> Markup {
    let base = format!("{}/plans/{}", place.base(), plan.id);
    let changes = place.may(Capability::Change) && plan.plan_type == PlanType::Paid;
    let shown = PriceForm::error_fields("addPrices");
    let shown: Vec<&str> = shown.iter().map(String::as_str).collect();
    html! {
        h2 { "Prices" }
        (layout::form_errors(errors, &shown))
        @if plan.prices.is_empty() {
            p { "A free plan has no prices." }
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { "Price" } th scope="col" { "Id" } th scope="col" { "State" }
                    @if changes { th scope="col" { span.visually-hidden { "Actions" } } }
                } }
                tbody { @for price in &plan.prices { tr {
                    td { (describe(price)) }
                    td { code { (price.id) } }
                    td { (layout::badge(if price.active { "ACTIVE" } else { "RETIRED" })) }
                    @if changes {
                        td { @if price.active {
                            (post_button(&format!("{base}/prices/{}/retire", price.id), &place.signed_in.csrf,
                                &format!("Retire {}", describe(price)), true))
                        } }
                    }
                } } }
            } }
            p.hint { "A retired price takes no new members; those who hold it keep it, renewals included." }
        }
        @if changes && plan.status == PlanStatus::Active {
            h3 { "Add a price" }
            form.stack method="post" action={ (base) "/prices" } novalidate {
                (csrf(&place.signed_in.csrf))
                (form.fields("addPrices", errors))
                div.field {
                    label.check {
                        input type="checkbox" name="retire_others" value="on";
                        " Retire the plan's other prices"
                    }
                }
                div.actions { button type="submit" { "Add price" } }
            }
        }
    }
}

#[derive(Deserialize, Default)]
pub struct AddPriceForm {
    #[serde(flatten)]
    price: PriceForm,
    #[serde(default)]
    retire_others: Option<String>,
}

pub async fn add(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): Path<(String, String, String)>,
    CsrfForm(form): CsrfForm<AddPriceForm>,
) -> PageResult {
    place.require(Capability::Change, "change prices")?;
    let id = plan_id(&id)?;
    let plan = load(&state, &place, &id).await?;
    let refuse = |errors: FieldErrors| -> PageResult {
        Ok(
            Html(plan_page(&place, &plan, None, (&form.price, &errors)).into_string())
                .into_response(),
        )
    };
    let draft = match form.price.draft("addPrices") {
        Ok(Some(draft)) => draft,
        Ok(None) => {
            return refuse(FieldErrors::one(
                "addPrices[0].amount",
                "Write the new price's amount, such as 9.99.",
            ))
        }
        Err(errors) => return refuse(errors),
    };
    let retire_prices: Vec<PriceId> = if form.retire_others.is_some() {
        plan.active_prices().map(|p| p.id.clone()).collect()
    } else {
        Vec::new()
    };
    let retired = retire_prices.len();
    let patch = PlanPatch {
        add_prices: vec![draft],
        retire_prices,
        ..Default::default()
    };
    let saved = save_patch(&state, &place, &id, patch, "plan.price_added", |saved| {
        let added = saved.prices.last().map(describe).unwrap_or_default();
        match retired {
            0 => format!("added {added} to plan {}", saved.name),
            n => format!(
                "added {added} to plan {} and retired {n} other price(s)",
                saved.name
            ),
        }
    })
    .await?;
    saved.or_else(refuse)
}

pub async fn retire(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id, price)): Path<(String, String, String, String)>,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult {
    place.require(Capability::Change, "change prices")?;
    let id = plan_id(&id)?;
    let price = PriceId::parse(&price).ok_or(PageError::NotFound)?;
    let plan = load(&state, &place, &id).await?;
    let described = plan
        .price(&price)
        .map(describe)
        .ok_or(PageError::NotFound)?;
    let patch = PlanPatch {
        retire_prices: vec![price],
        ..Default::default()
    };
    let saved = save_patch(&state, &place, &id, patch, "plan.price_retired", |saved| {
        format!("retired {described} of plan {}", saved.name)
    })
    .await?;
    saved.or_else(|errors| {
        let page = plan_page(&place, &plan, None, (&PriceForm::default(), &errors));
        Ok(Html(page.into_string()).into_response())
    })
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
