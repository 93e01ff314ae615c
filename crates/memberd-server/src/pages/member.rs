//! One member: their profile (editable), plan connections with the moves the state machine
//! allows them, payments, sessions and events.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse};
use maud::{html, Markup};
use memberd_core::operator::Capability;
use memberd_core::{MemberId, MemberPatch, PlanConnection, PlanStatus, SessionEnd, SessionId};
use memberd_store::MemberView;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::auth::CsrfForm;
use super::layout::{self, csrf, post_button, Field, Section};
use super::member_plans::Move;
use super::members::{display_name, fields_text, parse_fields};
use super::{see_other, FieldErrors, PageError, PageResult, Place};
use crate::state::AppState;

pub(super) fn member_id(raw: &str) -> PageResult<MemberId> {
    MemberId::parse(raw).ok_or(PageError::NotFound)
}

pub(super) async fn load(state: &AppState, place: &Place, id: &MemberId) -> PageResult<MemberView> {
    state
        .store()
        .get_member(&place.scope(), id)
        .await?
        .ok_or(PageError::NotFound)
}

#[derive(Deserialize, Default)]
pub struct ProfileForm {
    #[serde(default)]
    email: String,
    /// A checkbox: present when ticked.
    verified: Option<String>,
    #[serde(default)]
    external_id: String,
    #[serde(default)]
    custom_fields: String,
    #[serde(default)]
    meta_data: String,
    #[serde(default)]
    login_redirect: String,
}

impl ProfileForm {
    pub(super) fn of(view: &MemberView) -> Self {
        let m = &view.member;
        ProfileForm {
            email: m.email.to_string(),
            verified: m.verified.then(|| "on".into()),
            external_id: m.external_id.clone().unwrap_or_default(),
            custom_fields: fields_text(m.custom_fields.as_map()),
            meta_data: fields_text(m.meta_data.as_map()),
            login_redirect: m.login_redirect.clone().unwrap_or_default(),
        }
    }
}

pub(super) async fn member_page(
    state: &AppState,
    place: &Place,
    view: &MemberView,
    form: &ProfileForm,
    errors: &FieldErrors,
) -> PageResult<Markup> {
    let scope = place.scope();
    let m = &view.member;
    let now = state.now();
    let base = format!("{}/members/{}", place.base(), m.id);
    let can_change = place.may(Capability::Change);
    let csrf_token = &place.signed_in.csrf;
    let plans = super::plans::all_plans(state, place, Some(PlanStatus::Active)).await?;
    let payments = state.store().list_payments(&scope, &m.id).await?;
    let sessions = state.store().list_sessions(&scope, &m.id).await?;
    let events = state.store().latest_events(&scope, Some(&m.id), 50).await?;
    // The newest attempt at each event, in one query.
    let ids = events.iter().map(|e| e.id.clone()).collect();
    let page = memberd_store::PageRequest {
        after: None,
        limit: 500,
        order: memberd_store::Order::Desc,
    };
    let attempts = state
        .store()
        .list_attempts(&scope, &memberd_store::AttemptFilter::Events(ids), page)
        .await?
        .items;
    let last_attempt =
        |event: &memberd_core::EventId| attempts.iter().find(|a| &a.event_id == event);
    let connections: Vec<PlanConnection> = view
        .connections
        .iter()
        .map(|c| c.connection.clone())
        .collect();
    let body = html! {
        dl.props {
            dt { "Id" } dd { code { (m.id) } }
            dt { "Name" } dd { (display_name(m).unwrap_or_else(|| "—".into())) }
            dt { "Verified" } dd { (if m.verified { "yes" } else { "no" }) }
            dt { "Joined" } dd { (layout::when(m.created_at)) }
            dt { "Changed" } dd { (layout::when(m.updated_at)) }
            dt { "Last login" } dd { @if let Some(t) = m.last_login { (layout::when(t)) } @else { "never" } }
            @if let Some(stripe) = &m.stripe_customer_id { dt { "Stripe customer" } dd { code { (stripe) } } }
        }

        h2 { "Plans" }
        @if view.connections.is_empty() {
            (layout::empty("No plans."))
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th scope="col" { "Plan" } th scope="col" { "Status" } th scope="col" { "Price" }
                    th scope="col" { "Period ends" } th scope="col" { "Started" }
                    @if can_change { th scope="col" { "Actions" } }
                } }
                tbody { @for cv in &view.connections {
                    @let c = &cv.connection;
                    @let others: Vec<PlanConnection> = connections.iter().filter(|o| o.id != c.id).cloned().collect();
                    tr {
                        td { (cv.plan_name) br; code { (c.id) } }
                        td {
                            (layout::badge(c.status.as_str()))
                            @if c.cancel_at_period_end { br; span.hint { "ends at period end" } }
                        }
                        td { @match &c.currency {
                            Some(currency) if c.amount > 0 => (layout::money(c.amount, currency)),
                            _ => "free",
                        } }
                        td { @if let Some(end) = c.current_period_end { (layout::when(end)) } @else { "—" } }
                        td { (layout::when(c.start_date)) }
                        @if can_change { td { div.actions {
                            @for mv in Move::ALL {
                                @if mv.allowed(c, &others, now) {
                                    (post_button(&format!("{base}/connections/{}?move={}", c.id, mv.slug()), csrf_token,
                                        mv.label(), matches!(mv, Move::CancelNow)))
                                }
                            }
                        } } }
                    }
                } }
            } }
        }
        @if can_change && !plans.is_empty() {
            form.row method="post" action={ (base) "/plans" } {
                (csrf(csrf_token))
                div.field.invalid[errors.get("planId").is_some()] {
                    label for="plan" { "Add a plan" }
                    select #plan name="plan" aria-describedby=[errors.get("planId").map(|_| "plan-error")] {
                        @for p in &plans {
                            @if p.prices.is_empty() {
                                option value=(p.id) { (p.name) " (free)" }
                            }
                            @for price in p.active_prices() {
                                option value={ (p.id) ":" (price.id) } {
                                    (p.name) " — " (super::plan_prices::describe(price))
                                }
                            }
                        }
                    }
                    @if let Some(e) = errors.get("planId") { p.error #plan-error { (e) } }
                }
                button type="submit" { "Add plan" }
            }
        }

        h2 { "Profile" }
        @if can_change {
            form.stack method="post" action=(base) novalidate {
                (csrf(csrf_token))
                (layout::form_errors(errors, &["email", "externalId", "customFields", "metaData", "loginRedirect", "planId"]))
                (Field::text("Email", "email", &form.email).kind("email").required().render(errors))
                div.field {
                    label { input type="checkbox" name="verified" checked[form.verified.is_some()]; " Email verified" }
                }
                (Field::text("External id", "external_id", &form.external_id).api("externalId").render(errors))
                (Field::text("Custom fields", "custom_fields", &form.custom_fields).kind("textarea").api("customFields")
                    .hint("One per line, as name: value. Remove a line to remove the field.").render(errors))
                (Field::text("Metadata", "meta_data", &form.meta_data).kind("textarea").api("metaData")
                    .hint("Private to your team: one per line, as name: value.").render(errors))
                (Field::text("Login redirect", "login_redirect", &form.login_redirect).api("loginRedirect").render(errors))
                div.actions { button type="submit" { "Save profile" } }
            }
        } @else {
            dl.props {
                dt { "Email" } dd { (m.email) }
                dt { "External id" } dd { (m.external_id.as_deref().unwrap_or("—")) }
                @for (k, v) in m.custom_fields.as_map() { dt { (k) } dd { (plain(v)) } }
                @for (k, v) in m.meta_data.as_map() { dt { "metaData." (k) } dd { (plain(v)) } }
            }
        }

        h2 { "Payments" }
        @if payments.is_empty() { (layout::empty("No payments.")) } @else {
            div.table-wrap { table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Amount" } th scope="col" { "Outcome" } th scope="col" { "Id" } } }
                tbody { @for p in &payments { tr {
                    td { (layout::when(p.created_at)) }
                    td.num { (layout::money(p.amount, &p.currency)) }
                    td { @if p.succeeded { (layout::badge("succeeded")) } @else {
                        (layout::badge("failed")) " " (p.failure_reason.as_deref().unwrap_or("")) } }
                    td { code { (p.id) } }
                } } }
            } }
        }

        h2 { "Sessions" }
        @if sessions.is_empty() { (layout::empty("Never signed in.")) } @else {
            div.table-wrap { table {
                thead { tr { th scope="col" { "Opened" } th scope="col" { "Until" } th scope="col" { "State" } @if can_change { th scope="col" { "Action" } } } }
                tbody { @for s in &sessions {
                    @let live = s.ended_at.is_none() && s.expires_at > now;
                    tr {
                        td { (layout::when(s.created_at)) }
                        td { (layout::when(s.ended_at.unwrap_or(s.expires_at))) }
                        td { @if live { "open" } @else { (s.end_reason.as_deref().unwrap_or("expired")) } }
                        @if can_change { td { @if live {
                            (post_button(&format!("{base}/sessions/{}", s.id), csrf_token, "Revoke session", true))
                        } } }
                    }
                } }
            } }
        }

        h2 { "Events" }
        @if events.is_empty() { (layout::empty("No events.")) } @else {
            div.table-wrap { table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Type" } th scope="col" { "Event and its deliveries" } th scope="col" { "Last delivery" } } }
                tbody { @for e in &events { tr {
                    td { (layout::when(e.created_at)) } td { code { (e.kind) } }
                    td { a href={ (place.base()) "/events/" (e.id) } { (e.id) } }
                    td { @match last_attempt(&e.id) {
                        Some(a) if a.status_code.is_some_and(|s| (200..300).contains(&s)) => (layout::badge("succeeded")),
                        Some(a) => { (layout::badge("failed")) @if let Some(code) = a.status_code { " HTTP " (code) } },
                        None => "—",
                    } }
                } } }
            } }
        }

        @if can_change {
            h2 { "Danger zone" }
            (post_button(&format!("{base}/delete"), csrf_token, "Delete member", true))
        }
    };
    Ok(layout::page(
        place,
        Section::Members,
        m.email.as_str(),
        body,
    ))
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub async fn show(
    State(state): State<AppState>,
    place: Place,
    Path(params): Path<Vec<(String, String)>>,
) -> PageResult {
    let id = member_id(param(&params, "id"))?;
    let view = load(&state, &place, &id).await?;
    let page = member_page(
        &state,
        &place,
        &view,
        &ProfileForm::of(&view),
        &FieldErrors::default(),
    )
    .await?;
    Ok(Html(page.into_string()).into_response())
}

/// A path parameter by name; the routes give them all.
pub(super) fn param<'a>(params: &'a [(String, String)], name: &str) -> &'a str {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map_or("", |(_, v)| v.as_str())
}

/// The member's page again, with what the form sent and what was wrong with it.
async fn refuse(
    state: &AppState,
    place: &Place,
    view: &MemberView,
    form: &ProfileForm,
    errors: FieldErrors,
) -> PageResult {
    let page = member_page(state, place, view, form, &errors).await?;
    Ok(Html(page.into_string()).into_response())
}

/// What the form changed, as a patch: a field missing from the text is removed.
fn changed_fields(old: &Map<String, Value>, new: Map<String, Value>) -> Option<Map<String, Value>> {
    let mut patch = new;
    for key in old.keys() {
        if !patch.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    patch.retain(|k, v| old.get(k) != Some(v));
    (!patch.is_empty()).then_some(patch)
}

pub async fn update(
    State(state): State<AppState>,
    place: Place,
    Path(params): Path<Vec<(String, String)>>,
    CsrfForm(form): CsrfForm<ProfileForm>,
) -> PageResult {
    place.require(Capability::Change, "change members")?;
    let id = member_id(param(&params, "id"))?;
    let view = load(&state, &place, &id).await?;
    let custom_fields = match parse_fields("customFields", &form.custom_fields) {
        Ok(map) => changed_fields(view.member.custom_fields.as_map(), map),
        Err(errors) => return refuse(&state, &place, &view, &form, errors).await,
    };
    let meta_data = match parse_fields("metaData", &form.meta_data) {
        Ok(map) => changed_fields(view.member.meta_data.as_map(), map),
        Err(errors) => return refuse(&state, &place, &view, &form, errors).await,
    };
    let optional = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let patch = MemberPatch {
        email: Some(form.email.trim().to_owned()),
        password_hash: None,
        verified: Some(form.verified.is_some()),
        custom_fields,
        meta_data,
        json: None,
        login_redirect: Some(optional(&form.login_redirect)),
        profile_image: None,
        stripe_customer_id: None,
        external_id: Some(optional(&form.external_id)),
        permissions: None,
    };
    let now = state.now();
    match state
        .store()
        .update_member(&place.scope(), &id, |member| member.patch(patch, now))
        .await
    {
        Ok(_) => {}
        Err(err) => {
            return refuse(
                &state,
                &place,
                &view,
                &form,
                FieldErrors::from_api(err.into())?,
            )
            .await
        }
    }
    state.wake_workers();
    state.wake_mailer();
    place
        .audit(
            &state,
            "member.updated",
            Some(id.as_str()),
            format!("changed the profile of {}", form.email.trim()),
        )
        .await;
    Ok(see_other(&format!("{}/members/{id}", place.base())))
}

#[derive(Deserialize)]
pub struct NoFields {}

pub async fn revoke_session(
    State(state): State<AppState>,
    place: Place,
    Path(params): Path<Vec<(String, String)>>,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult {
    place.require(Capability::Change, "end members' sessions")?;
    let id = member_id(param(&params, "id"))?;
    let session = SessionId::parse(param(&params, "ses")).ok_or(PageError::NotFound)?;
    let view = load(&state, &place, &id).await?;
    let owned = state
        .store()
        .list_sessions(&place.scope(), &id)
        .await?
        .iter()
        .any(|s| s.id == session);
    if !owned {
        return Err(PageError::NotFound);
    }
    state
        .store()
        .end_session(&place.scope(), &session, SessionEnd::Revoked, state.now())
        .await?;
    place
        .audit(
            &state,
            "session.revoked",
            Some(session.as_str()),
            format!("ended a session of {}", view.member.email),
        )
        .await;
    Ok(see_other(&format!("{}/members/{id}", place.base())))
}

pub async fn delete(
    State(state): State<AppState>,
    place: Place,
    Path(params): Path<Vec<(String, String)>>,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult {
    place.require(Capability::Change, "delete members")?;
    let id = member_id(param(&params, "id"))?;
    let view = load(&state, &place, &id).await?;
    state
        .store()
        .delete_member(&place.scope(), &id, state.now())
        .await?;
    state.wake_workers();
    place
        .audit(
            &state,
            "member.deleted",
            Some(id.as_str()),
            format!("deleted member {}", view.member.email),
        )
        .await;
    Ok(see_other(&format!("{}/members", place.base())))
}
