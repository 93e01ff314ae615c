//! The audit log: every change an operator made in this app, newest first.

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use maud::html;
use serde::Deserialize;

use super::layout::{self, Section};
use super::{PageResult, Place};
use crate::state::AppState;

const PAGE_SIZE: u32 = 100;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    before: Option<i64>,
}

pub async fn show(
    State(state): State<AppState>,
    place: Place,
    Query(query): Query<AuditQuery>,
) -> PageResult {
    let page = state
        .store()
        .list_audit(Some(&place.app.id), query.before, PAGE_SIZE)
        .await?;
    let base = place.base();
    let body = html! {
        p.hint { "Changes made in the dashboard to this app, in both environments. Changes made with API keys are in the events." }
        @if page.entries.is_empty() {
            (layout::empty("No changes yet."))
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "Environment" }
                    th scope="col" { "What" } th scope="col" { "Change" }
                } }
                tbody { @for e in &page.entries { tr {
                    td { (layout::when(e.at)) }
                    td { (e.operator_email) }
                    td { (e.env.map_or("—", layout::env_label)) }
                    td { code { (e.action) } @if let Some(t) = &e.target { br; code { (t) } } }
                    td { (e.summary) }
                } } }
            } }
        }
        nav.pager aria-label="Pages" {
            @if query.before.is_some() { a href={ (base) "/audit" } { "Newest" } }
            @if let Some(before) = page.next_before { a href={ (base) "/audit?before=" (before) } rel="next" { "Older" } }
        }
    };
    Ok(Html(layout::page(&place, Section::Audit, "Audit log", body).into_string()).into_response())
}
