//! The change feed, newest first, with type and date filters; and one event: its body and
//! every attempt to deliver it, with a button that sends it to an endpoint again.

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse};
use maud::html;
use memberd_core::event::EventKind;
use memberd_core::operator::Capability;
use memberd_core::{EventId, Timestamp};
use memberd_store::{AttemptFilter, EventBrowse, EventCursor, Order, PageRequest};
use serde::Deserialize;

use super::layout::{self, post_button, Section};
use super::{PageError, PageResult, Place};
use crate::state::AppState;

const PAGE_SIZE: u32 = 50;

#[derive(Deserialize, Default)]
pub struct EventsQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    before: Option<String>,
}

/// A date typed in a form (`2026-12-01`), or nothing; anything else is named.
fn date(field: &'static str, raw: &str) -> Result<Option<Timestamp>, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    Timestamp::parse(raw)
        .map(Some)
        .ok_or_else(|| format!("{field}: write a date as 2026-12-01, got {raw:?}"))
}

pub async fn list(
    State(state): State<AppState>,
    place: Place,
    Query(query): Query<EventsQuery>,
) -> PageResult {
    let kind = EventKind::parse(query.kind.trim());
    let (from, to) = match (date("From", &query.from), date("To", &query.to)) {
        (Ok(from), Ok(to)) => (from, to.map(|t| t.plus_days(1))),
        (Err(e), _) | (_, Err(e)) => return Err(PageError::bad_request(e)),
    };
    let browse = EventBrowse {
        types: kind
            .map(|k| vec![k.as_str().to_owned()])
            .unwrap_or_default(),
        from,
        to,
        before: query.before.as_deref().and_then(EventCursor::decode),
        limit: PAGE_SIZE,
        ..EventBrowse::default()
    };
    let (events, more) = state.store().browse_events(&place.scope(), &browse).await?;
    let base = place.base();
    let mut kept = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("kind", &query.kind),
        ("from", &query.from),
        ("to", &query.to),
    ] {
        if !value.trim().is_empty() {
            kept.append_pair(name, value.trim());
        }
    }
    let kept = kept.finish();
    let older = events.last().filter(|_| more).map(|(c, _)| c.encode());
    let body = html! {
        form.row method="get" action={ (base) "/events" } {
            div.field {
                label for="kind" { "Type" }
                select #kind name="kind" {
                    option value="" { "Every type" }
                    @for k in EventKind::ALL {
                        option value=(k.as_str()) selected[kind == Some(*k)] { (k.as_str()) }
                    }
                }
            }
            div.field { label for="from" { "From" } input #from type="date" name="from" value=(query.from); }
            div.field { label for="to" { "To" } input #to type="date" name="to" value=(query.to); }
            button type="submit" { "Filter" }
        }
        @if events.is_empty() {
            (layout::empty("No events match."))
        } @else {
            div.table-wrap { table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Type" } th scope="col" { "Event" } } }
                tbody { @for (_, e) in &events { tr {
                    td { (layout::when(e.created_at)) }
                    td { code { (e.kind) } }
                    td { a href={ (base) "/events/" (e.id) } { (e.id) } }
                } } }
            } }
        }
        nav.pager aria-label="Pages" {
            @if query.before.is_some() { a href={ (base) "/events?" (kept) } { "Newest" } }
            @if let Some(before) = older {
                a href={ (base) "/events?" (kept) @if !kept.is_empty() { "&" } "before=" (before) } rel="next" { "Older" }
            }
        }
    };
    Ok(Html(layout::page(&place, Section::Events, "Events", body).into_string()).into_response())
}

pub async fn show(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): Path<(String, String, String)>,
) -> PageResult {
    let scope = place.scope();
    let id = EventId::parse(&id).ok_or(PageError::NotFound)?;
    let event = state
        .store()
        .get_event(&scope, &id)
        .await?
        .ok_or(PageError::NotFound)?;
    let attempts = state
        .store()
        .list_attempts(
            &scope,
            &AttemptFilter::Event(id.clone()),
            PageRequest {
                after: None,
                limit: 100,
                order: Order::Desc,
            },
        )
        .await?
        .items;
    let endpoints = super::webhooks::all_endpoints(&state, &scope).await?;
    let body_text = serde_json::to_string_pretty(&event.data).unwrap_or_default();
    let base = place.base();
    let body = html! {
        dl.props {
            dt { "Type" } dd { code { (event.kind) } }
            dt { "When" } dd { (layout::when(event.created_at)) }
        }
        h2 { "Body" }
        pre { code { (body_text) } }
        h2 { "Deliveries" }
        (attempt_table(&base, &attempts, false))
        @if place.may(Capability::Change) && !endpoints.is_empty() {
            h2 { "Send again" }
            div.actions {
                @for e in &endpoints {
                    (post_button(&format!("{base}/webhooks/{}/redeliver?event={}", e.id, event.id),
                        &place.signed_in.csrf, &format!("Send to {}", e.url), false))
                }
            }
        }
    };
    Ok(Html(
        layout::page(
            &place,
            Section::Events,
            &format!("Event {}", event.kind),
            body,
        )
        .into_string(),
    )
    .into_response())
}

/// Delivery attempts as a table; `by_event` names the event of each (on an endpoint's page),
/// otherwise the endpoint (on an event's).
pub fn attempt_table(
    base: &str,
    attempts: &[memberd_store::AttemptRecord],
    by_event: bool,
) -> maud::Markup {
    html! {
        @if attempts.is_empty() {
            (layout::empty("No delivery attempts yet."))
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { "When" }
                    th scope="col" { @if by_event { "Event" } @else { "Endpoint" } }
                    th scope="col" { "Attempt" } th scope="col" { "Outcome" } th scope="col" { "Took" }
                } }
                tbody { @for a in attempts {
                    @let ok = a.status_code.is_some_and(|s| (200..300).contains(&s));
                    tr {
                        td { (layout::when(a.started_at)) }
                        td { @if by_event {
                            a href={ (base) "/events/" (a.event_id) } { (a.event_id) }
                        } @else {
                            a href={ (base) "/webhooks/" (a.endpoint_id) } { (a.endpoint_id) }
                        } }
                        td { (a.attempt) " (" (a.trigger) ")" }
                        td {
                            @if ok { (layout::badge("succeeded")) } @else { (layout::badge("failed")) }
                            " "
                            @if let Some(code) = a.status_code { "HTTP " (code) }
                            @if let Some(error) = &a.error { " " (error) }
                        }
                        td.num { (a.duration_ms) " ms" }
                    }
                } }
            } }
        }
    }
}
