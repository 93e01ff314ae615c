//! The overview: who is active, trialing or past due, the recurring revenue, sign-ups and
//! churn over a period as a chart, and the latest events.

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use maud::{html, Markup};
use memberd_core::analytics::{ended_at, summarize, Periods};
use memberd_core::Timestamp;
use serde::Deserialize;

use super::chart::{Chart, Series};
use super::layout::{self, Section};
use super::{PageResult, Place};
use crate::state::AppState;

/// The periods people pick from: days back, and days per bar.
const RANGES: [(u32, u32); 3] = [(30, 1), (90, 7), (365, 30)];

#[derive(Deserialize, Default)]
pub struct OverviewQuery {
    days: Option<u32>,
}

fn amounts(per_currency: &BTreeMap<String, i64>) -> Markup {
    html! {
        @if per_currency.is_empty() {
            "0"
        } @else {
            @for (i, (currency, amount)) in per_currency.iter().enumerate() {
                @if i > 0 { br; }
                (layout::money(*amount, currency))
            }
        }
    }
}

fn bucket_label(t: Timestamp, days_per_period: u32) -> String {
    let date = t.to_offset_date_time();
    if days_per_period >= 28 {
        format!("{} {}", short_month(date.month()), date.year())
    } else {
        format!("{} {}", date.day(), short_month(date.month()))
    }
}

fn short_month(m: time::Month) -> &'static str {
    use time::Month::*;
    match m {
        January => "Jan",
        February => "Feb",
        March => "Mar",
        April => "Apr",
        May => "May",
        June => "Jun",
        July => "Jul",
        August => "Aug",
        September => "Sep",
        October => "Oct",
        November => "Nov",
        December => "Dec",
    }
}

pub async fn show(
    State(state): State<AppState>,
    place: Place,
    Query(query): Query<OverviewQuery>,
) -> PageResult {
    let (days, per_period) = RANGES
        .into_iter()
        .find(|(d, _)| Some(*d) == query.days)
        .unwrap_or(RANGES[0]);
    let scope = place.scope();
    let now = state.now();
    let periods = Periods::ending(now, days, per_period);
    let connections = state.store().all_connections(&scope).await?;
    let (figures, _) = summarize(
        connections
            .iter()
            .map(|v| (&v.connection, v.plan_name.as_str())),
        periods.start,
        now,
    );
    let signups = state.store().member_signups(&scope, &periods).await?;
    let churn = periods.count_in(connections.iter().filter_map(|v| ended_at(&v.connection)));
    let labels = (0..periods.count)
        .map(|i| bucket_label(periods.start_of(i), per_period))
        .collect();
    let chart = Chart {
        title: "Sign-ups and churn",
        labels,
        series: vec![
            Series {
                name: "Sign-ups",
                values: signups.clone(),
                class: "signups",
            },
            Series {
                name: "Churned",
                values: churn.clone(),
                class: "churn",
            },
        ],
    };
    let events = state.store().latest_events(&scope, None, 10).await?;
    let base = place.base();
    let body = html! {
        dl.figures {
            div { dt { "Active" } dd data-figure="active" { (figures.active) } }
            div { dt { "Trialing" } dd data-figure="trialing" { (figures.trialing) } }
            div { dt { "Past due" } dd data-figure="past-due" { (figures.past_due) } }
            div { dt { "MRR" } dd data-figure="mrr" { (amounts(&figures.mrr)) } }
            div { dt { "ARR" } dd data-figure="arr" { (amounts(&figures.arr())) } }
        }
        h2 { "The last " (days) " days" }
        nav.ranges aria-label="Period" {
            @for (d, _) in RANGES {
                a href={ (base) "?days=" (d) } aria-current=[(d == days).then_some("page")] { (d) " days" }
            }
        }
        p {
            (signups.iter().sum::<u64>()) " sign-ups, "
            (figures.new) " new plan connections, "
            (churn.iter().sum::<u64>()) " ended."
        }
        (chart.render())
        h2 { "Latest events" }
        @if events.is_empty() {
            (layout::empty("No events yet."))
        } @else {
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Type" } th scope="col" { "Event" } } }
                    tbody {
                        @for e in &events {
                            tr { td { (layout::when(e.created_at)) } td { code { (e.kind) } } td { code { (e.id) } } }
                        }
                    }
                }
            }
        }
    };
    let title = format!("{} — overview", place.app.name);
    Ok(Html(layout::page(&place, Section::Overview, &title, body).into_string()).into_response())
}
