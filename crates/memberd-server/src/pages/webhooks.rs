//! Webhook endpoints: their health, their attempts, a new endpoint (its secret shown once),
//! rotating the secret, turning one off and on, sending an event again, and recovering
//! everything that failed since a time.

use axum::extract::{Path, Query, State};
use axum::response::{Html, IntoResponse};
use maud::{html, Markup};
use memberd_core::operator::Capability;
use memberd_core::webhook::{Endpoint, EndpointDraft, EndpointPatch, Flavour};
use memberd_core::{EndpointId, EventId};
use memberd_store::{AttemptFilter, Order, PageRequest};
use serde::Deserialize;

use super::auth::CsrfForm;
use super::events::attempt_table;
use super::layout::{self, csrf, post_button, Field, Section};
use super::{see_other, FieldErrors, PageError, PageResult, Place};
use crate::state::AppState;
use crate::workers::webhooks::signing::new_secret;

/// The environment's endpoints (as many as a page shows), oldest first.
pub(super) async fn all_endpoints(
    state: &AppState,
    scope: &memberd_core::Scope,
) -> PageResult<Vec<Endpoint>> {
    let page = PageRequest {
        after: None,
        limit: 100,
        order: Order::Asc,
    };
    Ok(state.store().list_endpoints(scope, page).await?.items)
}

fn health(e: &Endpoint) -> Markup {
    html! {
        @if !e.enabled {
            (layout::badge("disabled")) @if let Some(why) = &e.disabled_reason { " " (why) }
        } @else if let Some(since) = e.failing_since {
            (layout::badge("failing")) " since " (layout::when(since))
        } @else {
            (layout::badge("healthy"))
        }
    }
}

pub async fn list(State(state): State<AppState>, place: Place) -> PageResult {
    let endpoints = all_endpoints(&state, &place.scope()).await?;
    Ok(Html(
        list_page(
            &place,
            &endpoints,
            &NewEndpointForm::default(),
            &FieldErrors::default(),
        )
        .into_string(),
    )
    .into_response())
}

fn list_page(
    place: &Place,
    endpoints: &[Endpoint],
    form: &NewEndpointForm,
    errors: &FieldErrors,
) -> Markup {
    let base = place.base();
    let body = html! {
        @if endpoints.is_empty() {
            (layout::empty("No endpoints yet: nothing is sent."))
        } @else {
            div.table-wrap { table {
                thead { tr { th scope="col" { "URL" } th scope="col" { "Flavour" } th scope="col" { "Types" } th scope="col" { "Health" } th scope="col" { "Last success" } } }
                tbody { @for e in endpoints { tr {
                    td { a href={ (base) "/webhooks/" (e.id) } { (e.url) } }
                    td { (e.flavour.as_str()) }
                    td { @if e.event_types.is_empty() { "every type" } @else { (e.event_types.join(", ")) } }
                    td { (health(e)) }
                    td { @if let Some(t) = e.last_success_at { (layout::when(t)) } @else { "never" } }
                } } }
            } }
        }
        @if place.may(Capability::Change) {
            h2 { "Add an endpoint" }
            form.stack method="post" action={ (base) "/webhooks" } novalidate {
                (csrf(&place.signed_in.csrf))
                (layout::form_errors(errors, &["url", "description", "eventTypes", "flavour"]))
                (Field::text("URL", "url", &form.url).kind("url").required().hint("Where memberd POSTs each event, signed.").render(errors))
                (Field::text("Description", "description", &form.description).render(errors))
                (Field::text("Event types", "event_types", &form.event_types).api("eventTypes")
                    .hint("Separated by commas, in the flavour's names; empty sends every type.").render(errors))
                div.field {
                    label for="flavour" { "Flavour" }
                    select #flavour name="flavour" {
                        @for f in Flavour::ALL { option value=(f.as_str()) selected[form.flavour == f.as_str()] { (f.as_str()) } }
                    }
                }
                div.actions { button type="submit" { "Add endpoint" } }
            }
        }
    };
    layout::page(place, Section::Webhooks, "Webhooks", body)
}

#[derive(Deserialize, Default)]
pub struct NewEndpointForm {
    #[serde(default)]
    url: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    event_types: String,
    #[serde(default)]
    flavour: String,
}

fn list_of(text: &str) -> Vec<String> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Adds an endpoint as `POST /v1/webhook-endpoints` does, and shows its secret this once.
pub async fn create(
    State(state): State<AppState>,
    place: Place,
    CsrfForm(form): CsrfForm<NewEndpointForm>,
) -> PageResult {
    place.require(Capability::Change, "add webhook endpoints")?;
    let scope = place.scope();
    let made: Result<Endpoint, PageResult<FieldErrors>> = async {
        crate::api::native::webhooks::check_target(&state, &form.url)
            .map_err(FieldErrors::from_api)?;
        let draft = EndpointDraft {
            url: form.url.clone(),
            description: Some(form.description.trim().to_owned()).filter(|d| !d.is_empty()),
            event_types: list_of(&form.event_types),
            flavour: Flavour::parse(&form.flavour),
            enabled: Some(true),
        };
        let endpoint = Endpoint::create(draft, new_secret(), state.now())
            .map_err(|e| FieldErrors::from_api(e.into()))?;
        state
            .store()
            .insert_endpoint(&scope, &endpoint)
            .await
            .map_err(|e| FieldErrors::from_api(e.into()))?;
        Ok(endpoint)
    }
    .await;
    let endpoint = match made {
        Ok(endpoint) => endpoint,
        Err(errors) => {
            let errors = errors?;
            let endpoints = all_endpoints(&state, &place.scope()).await?;
            return Ok(
                Html(list_page(&place, &endpoints, &form, &errors).into_string()).into_response(),
            );
        }
    };
    place
        .audit(
            &state,
            "webhook_endpoint.created",
            Some(endpoint.id.as_str()),
            format!("added the endpoint {}", endpoint.url),
        )
        .await;
    let page = endpoint_page(
        &state,
        &place,
        &endpoint,
        Some("Its signing secret, shown this once:"),
    )
    .await?;
    Ok(Html(page.into_string()).into_response())
}

async fn endpoint_page(
    state: &AppState,
    place: &Place,
    e: &Endpoint,
    secret_note: Option<&str>,
) -> PageResult<Markup> {
    endpoint_page_with(state, place, e, secret_note, None).await
}

/// The endpoint's page, with what a test event just got, if one was sent.
async fn endpoint_page_with(
    state: &AppState,
    place: &Place,
    e: &Endpoint,
    secret_note: Option<&str>,
    tested: Option<&Result<(u16, String), String>>,
) -> PageResult<Markup> {
    let attempts = state
        .store()
        .list_attempts(
            &place.scope(),
            &AttemptFilter::Endpoint(e.id.clone()),
            PageRequest {
                after: None,
                limit: 50,
                order: Order::Desc,
            },
        )
        .await?
        .items;
    let base = place.base();
    let here = format!("{base}/webhooks/{}", e.id);
    let token = &place.signed_in.csrf;
    let can_change = place.may(Capability::Change);
    let failed: Vec<&memberd_store::AttemptRecord> = attempts
        .iter()
        .filter(|a| !a.status_code.is_some_and(|s| (200..300).contains(&s)))
        .collect();
    let body = html! {
        @if let Some(note) = secret_note {
            div.notice role="status" {
                p { (note) }
                p.secret { (e.secret) }
                p { "Keep it with the receiver: memberd shows it only now. Verify each delivery's " code { "webhook-signature" } " with it." }
            }
        }
        @match tested {
            Some(Ok((status, body))) => div.notice.alert[!(200..300).contains(status)] role="status" {
                p { "The test event got HTTP " (status) "." @if !body.is_empty() { " The receiver said: " code { (body) } } }
                p.hint { "Test events are not in the change feed or the attempt log." }
            },
            Some(Err(why)) => div.alert role="alert" { p { "The test event got no answer: " (why) "." } },
            None => {},
        }
        dl.props {
            dt { "Id" } dd { code { (e.id) } }
            dt { "Flavour" } dd { (e.flavour.as_str()) }
            dt { "Types" } dd { @if e.event_types.is_empty() { "every type" } @else { (e.event_types.join(", ")) } }
            dt { "Health" } dd { (health(e)) }
            dt { "Last success" } dd { @if let Some(t) = e.last_success_at { (layout::when(t)) } @else { "never" } }
            @if let Some(d) = &e.description { dt { "Description" } dd { (d) } }
        }
        @if can_change {
            div.actions {
                (post_button(&format!("{here}/test"), token, "Send a test event", false))
                (post_button(&format!("{here}/rotate"), token, "Rotate secret", true))
                @if e.enabled {
                    (post_button(&format!("{here}/enabled?on=false"), token, "Turn off", false))
                } @else {
                    (post_button(&format!("{here}/enabled?on=true"), token, "Turn on", false))
                }
                (post_button(&format!("{here}/delete"), token, "Delete endpoint", true))
            }
            h2 { "Recover" }
            form.row method="post" action={ (here) "/recover" } {
                (csrf(token))
                (layout::date_field("Failed since", "since"))
                button type="submit" { "Send again what failed" }
            }
        }
        h2 { "Attempts" }
        (attempt_table(&base, &attempts, true))
        @if can_change && !failed.is_empty() {
            h2 { "Failed deliveries" }
            div.actions {
                @for a in failed.iter().take(10) {
                    (post_button(&format!("{here}/redeliver?event={}", a.event_id), token, &format!("Redeliver {}", a.event_id), false))
                }
            }
        }
    };
    Ok(layout::page(place, Section::Webhooks, &e.url, body))
}

fn endpoint_id(raw: &str) -> PageResult<EndpointId> {
    EndpointId::parse(raw).ok_or(PageError::NotFound)
}

async fn load(state: &AppState, place: &Place, raw: &str) -> PageResult<Endpoint> {
    state
        .store()
        .get_endpoint(&place.scope(), &endpoint_id(raw)?)
        .await?
        .ok_or(PageError::NotFound)
}

type EndpointPath = Path<(String, String, String)>;

pub async fn show(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): EndpointPath,
) -> PageResult {
    let e = load(&state, &place, &id).await?;
    Ok(Html(endpoint_page(&state, &place, &e, None).await?.into_string()).into_response())
}

#[derive(Deserialize)]
pub struct NoFields {}

pub async fn rotate(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): EndpointPath,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult {
    place.require(Capability::Change, "rotate webhook secrets")?;
    let id = endpoint_id(&id)?;
    let now = state.now();
    let fresh = new_secret();
    let e = state
        .store()
        .update_endpoint(&place.scope(), &id, |e| Ok(Some(e.rotate(fresh, now))))
        .await?;
    place
        .audit(
            &state,
            "webhook_endpoint.secret_rotated",
            Some(id.as_str()),
            format!("rotated the secret of {}", e.url),
        )
        .await;
    let note = "The new signing secret, shown this once (the old one is accepted for a day more):";
    Ok(Html(
        endpoint_page(&state, &place, &e, Some(note))
            .await?
            .into_string(),
    )
    .into_response())
}

#[derive(Deserialize)]
pub struct OnQuery {
    #[serde(default)]
    on: bool,
}

pub async fn set_enabled(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): EndpointPath,
    Query(q): Query<OnQuery>,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult {
    place.require(Capability::Change, "change webhook endpoints")?;
    let id = endpoint_id(&id)?;
    let now = state.now();
    let patch = EndpointPatch {
        enabled: Some(q.on),
        ..EndpointPatch::default()
    };
    let e = state
        .store()
        .update_endpoint(&place.scope(), &id, |e| e.patch(patch, now))
        .await?;
    state.wake_workers();
    let what = if q.on { "turned on" } else { "turned off" };
    place
        .audit(
            &state,
            if q.on {
                "webhook_endpoint.enabled"
            } else {
                "webhook_endpoint.disabled"
            },
            Some(id.as_str()),
            format!("{what} {}", e.url),
        )
        .await;
    Ok(see_other(&format!("{}/webhooks/{id}", place.base())))
}

pub async fn delete(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): EndpointPath,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult {
    place.require(Capability::Change, "delete webhook endpoints")?;
    let e = load(&state, &place, &id).await?;
    state.store().delete_endpoint(&place.scope(), &e.id).await?;
    place
        .audit(
            &state,
            "webhook_endpoint.deleted",
            Some(e.id.as_str()),
            format!("deleted the endpoint {}", e.url),
        )
        .await;
    Ok(see_other(&format!("{}/webhooks", place.base())))
}

#[derive(Deserialize)]
pub struct EventQuery {
    #[serde(default)]
    event: String,
}

/// Sends one event to the endpoint again, as `POST …/redeliver` does.
pub async fn redeliver(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): EndpointPath,
    Query(q): Query<EventQuery>,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult {
    place.require(Capability::Change, "redeliver webhooks")?;
    let id = endpoint_id(&id)?;
    let event = EventId::parse(&q.event).ok_or(PageError::NotFound)?;
    state
        .store()
        .redeliver(&place.scope(), &id, &event, state.now())
        .await?;
    state.wake_workers();
    place
        .audit(
            &state,
            "webhook.redelivered",
            Some(event.as_str()),
            format!("sent {event} again to {id}"),
        )
        .await;
    Ok(see_other(&format!("{}/webhooks/{id}", place.base())))
}

#[derive(Deserialize)]
pub struct RecoverForm {
    #[serde(default)]
    since: String,
}

pub async fn recover(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): EndpointPath,
    CsrfForm(form): CsrfForm<RecoverForm>,
) -> PageResult {
    place.require(Capability::Change, "recover webhooks")?;
    let id = endpoint_id(&id)?;
    let since = memberd_core::Timestamp::parse(form.since.trim())
        .ok_or_else(|| PageError::bad_request("Failed since: write a date as 2026-12-01."))?;
    let n = state
        .store()
        .recover_endpoint(&place.scope(), &id, since, state.now())
        .await?;
    state.wake_workers();
    place
        .audit(
            &state,
            "webhook.recovered",
            Some(id.as_str()),
            format!(
                "sent again {n} deliveries that failed since {}",
                since.to_date()
            ),
        )
        .await;
    Ok(see_other(&format!("{}/webhooks/{id}", place.base())))
}

/// Sends a made-up `member.created` to the endpoint now, signed as deliveries are, and shows
/// what the receiver answered. Nothing is recorded but the audit log's line.
pub async fn send_test(
    State(state): State<AppState>,
    place: Place,
    Path((_, _, id)): EndpointPath,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult {
    place.require(Capability::Change, "send test events")?;
    let e = load(&state, &place, &id).await?;
    let now = state.now();
    let draft = memberd_core::NewMember {
        email: "test.member@example.com".into(),
        ..memberd_core::NewMember::default()
    };
    let (member, _) = memberd_core::Member::create(draft, now).map_err(|_| PageError::Internal)?;
    let event = memberd_core::event::Event {
        id: EventId::generate(),
        kind: memberd_core::event::EventKind::MemberCreated
            .as_str()
            .to_owned(),
        data: memberd_core::event::member_payload(&member),
        created_at: now,
    };
    let config = &state.config().webhooks;
    let client =
        crate::workers::webhooks::target::client(config.timeout, config.allow_private_targets)
            .map_err(|_| PageError::Internal)?;
    let outcome = crate::workers::webhooks::send_event(
        &client,
        &e,
        &event,
        &memberd_core::webhook::ContractContext::default(),
        config.allow_private_targets,
        now,
    )
    .await;
    let told = match &outcome {
        Ok((status, _)) => format!("HTTP {status}"),
        Err(_) => "no answer".to_owned(),
    };
    place
        .audit(
            &state,
            "webhook.tested",
            Some(e.id.as_str()),
            format!("sent a test event to {}: {told}", e.url),
        )
        .await;
    Ok(Html(
        endpoint_page_with(&state, &place, &e, None, Some(&outcome))
            .await?
            .into_string(),
    )
    .into_response())
}
