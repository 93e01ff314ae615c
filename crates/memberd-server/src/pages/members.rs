//! The members of an environment: search, filters, pages, and the form that adds one.

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse};
use maud::{html, Markup};
use memberd_core::operator::Capability;
use memberd_core::{ConnectionStatus, Member, NewMember, PlanId};
use memberd_store::{Cursor, MemberFilter, MemberView, Order, PageRequest};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::auth::CsrfForm;
use super::layout::{self, csrf, Field, Section};
use super::{see_other, FieldErrors, PageError, PageResult, Place};
use crate::passwords::hash_password;
use crate::state::AppState;

const PAGE_SIZE: u32 = 50;

const STATUSES: [ConnectionStatus; 9] = [
    ConnectionStatus::Active,
    ConnectionStatus::Trialing,
    ConnectionStatus::PastDue,
    ConnectionStatus::RequiresPayment,
    ConnectionStatus::Unpaid,
    ConnectionStatus::Paused,
    ConnectionStatus::Canceled,
    ConnectionStatus::Expired,
    ConnectionStatus::Incomplete,
];

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    plan: String,
    #[serde(default)]
    status: String,
    after: Option<String>,
}

/// A member's name as their custom fields give it, if they do.
pub fn display_name(member: &Member) -> Option<String> {
    let fields = member.custom_fields.as_map();
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    if let Some(name) = text("name").or_else(|| text("fullName")) {
        return Some(name.to_owned());
    }
    let parts: Vec<&str> = [text("firstName"), text("lastName")]
        .into_iter()
        .flatten()
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

pub async fn list(
    State(state): State<AppState>,
    place: Place,
    Query(query): Query<ListQuery>,
) -> PageResult {
    let scope = place.scope();
    let plan_id = PlanId::parse(query.plan.trim());
    let status = ConnectionStatus::parse(query.status.trim());
    let filter = MemberFilter {
        plan_id: plan_id.clone(),
        status,
        search: Some(query.q.trim().to_owned()).filter(|q| !q.is_empty()),
        ..MemberFilter::default()
    };
    let page = PageRequest {
        after: query.after.as_deref().and_then(Cursor::decode),
        limit: PAGE_SIZE,
        order: Order::Desc,
    };
    let found = state.store().list_members(&scope, &filter, page).await?;
    let plans = super::plans::all_plans(&state, &place, None).await?;
    let base = place.base();
    let mut kept = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in [
        ("q", query.q.trim()),
        ("plan", query.plan.trim()),
        ("status", query.status.trim()),
    ] {
        if !value.is_empty() {
            kept.append_pair(name, value);
        }
    }
    let kept = kept.finish();
    let body = html! {
        @if place.may(Capability::Change) {
            p { a.button href={ (base) "/members/new" } { "Add a member" } }
        }
        form.row method="get" action={ (base) "/members" } role="search" {
            div.field {
                label for="q" { "Search" }
                input #q type="search" name="q" value=(query.q) placeholder="Email, name, externalId or mem_…";
            }
            div.field {
                label for="plan" { "Plan" }
                select #plan name="plan" {
                    option value="" { "Any plan" }
                    @for p in &plans {
                        option value=(p.id) selected[plan_id.as_ref() == Some(&p.id)] { (p.name) }
                    }
                }
            }
            div.field {
                label for="status" { "Connection status" }
                select #status name="status" {
                    option value="" { "Any status" }
                    @for s in STATUSES {
                        option value=(s.as_str()) selected[status == Some(s)] { (s.as_str()) }
                    }
                }
            }
            button type="submit" { "Search" }
        }
        p { (found.total_count) " members" @if filter.search.is_some() || filter.plan_id.is_some() || filter.status.is_some() { " match" } "." }
        @if found.items.is_empty() {
            (layout::empty("No members here yet."))
        } @else {
            (member_table(&base, &found.items))
        }
        (layout::pager(&kept, found.has_more.then(|| found.next_cursor.map(|c| c.encode())).flatten(),
            query.after.is_none(), &format!("{base}/members")))
    };
    Ok(Html(layout::page(&place, Section::Members, "Members", body).into_string()).into_response())
}

fn member_table(base: &str, members: &[MemberView]) -> Markup {
    html! {
        div.table-wrap {
            table {
                thead { tr {
                    th scope="col" { "Email" } th scope="col" { "Name" } th scope="col" { "Plans" }
                    th scope="col" { "External id" } th scope="col" { "Joined" }
                } }
                tbody {
                    @for view in members {
                        @let m = &view.member;
                        tr {
                            td { a href={ (base) "/members/" (m.id) } { (m.email) } }
                            td { (display_name(m).unwrap_or_default()) }
                            td {
                                @for c in &view.connections {
                                    (c.plan_name) " " (layout::badge(c.connection.status.as_str())) " "
                                }
                            }
                            td { (m.external_id.as_deref().unwrap_or("")) }
                            td { (layout::when(m.created_at)) }
                        }
                    }
                }
            }
        }
    }
}

/// `name: value` lines, one per field, as a form shows custom fields and metadata.
pub fn fields_text(map: &Map<String, Value>) -> String {
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}: {s}"),
            other => format!("{k}: {other}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads `name: value` lines back; `field` names the API's field in the error.
pub fn parse_fields(field: &str, text: &str) -> Result<Map<String, Value>, FieldErrors> {
    let mut map = Map::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once(':') else {
            return Err(FieldErrors::one(
                field,
                format!(
                    "Line {} has no colon: write each field as name: value.",
                    n + 1
                ),
            ));
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(FieldErrors::one(
                field,
                format!("Line {} has no name before its colon.", n + 1),
            ));
        }
        map.insert(key.to_owned(), Value::String(value.trim().to_owned()));
    }
    Ok(map)
}

#[derive(Deserialize, Default)]
pub struct NewMemberForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    custom_fields: String,
    #[serde(default)]
    external_id: String,
}

fn new_member_page(place: &Place, form: &NewMemberForm, errors: &FieldErrors) -> Markup {
    let body = html! {
        form.stack method="post" action={ (place.base()) "/members" } novalidate {
            (csrf(&place.signed_in.csrf))
            (layout::form_errors(errors, &["email", "password", "customFields", "externalId"]))
            (Field::text("Email", "email", &form.email).kind("email").required().render(errors))
            (Field::text("Password", "password", "").kind("password")
                .hint("Optional: 8 characters or more. Without one, the member signs in with an emailed code.").render(errors))
            (Field::text("Custom fields", "custom_fields", &form.custom_fields).kind("textarea").api("customFields")
                .hint("One per line, as name: value (firstName: Ada).").render(errors))
            (Field::text("External id", "external_id", &form.external_id).api("externalId")
                .hint("The member's id in another system, such as a Shopify customer id.").render(errors))
            div.actions { button type="submit" { "Create member" } }
        }
    };
    layout::page(place, Section::Members, "Add a member", body)
}

pub async fn new_form(place: Place) -> PageResult {
    place.require(Capability::Change, "add members")?;
    Ok(Html(
        new_member_page(&place, &NewMemberForm::default(), &FieldErrors::default()).into_string(),
    )
    .into_response())
}

/// Creates a member as `POST /v1/members` does: the core's rules, then the store.
pub async fn create(
    State(state): State<AppState>,
    place: Place,
    CsrfForm(form): CsrfForm<NewMemberForm>,
) -> PageResult {
    place.require(Capability::Change, "add members")?;
    let refuse = |errors: FieldErrors| {
        Ok(Html(new_member_page(&place, &form, &errors).into_string()).into_response())
    };
    let custom_fields = match parse_fields("customFields", &form.custom_fields) {
        Ok(map) => Some(map).filter(|m| !m.is_empty()),
        Err(errors) => return refuse(errors),
    };
    let draft = NewMember {
        email: form.email.trim().to_owned(),
        password_hash: None,
        verified: None,
        custom_fields,
        meta_data: None,
        json: None,
        login_redirect: None,
        profile_image: None,
        stripe_customer_id: None,
        external_id: Some(form.external_id.trim().to_owned()).filter(|s| !s.is_empty()),
        permissions: None,
    };
    let now = state.now();
    let (mut member, event) = match Member::create(draft, now) {
        Ok(created) => created,
        Err(err) => return refuse(FieldErrors::from_api(err.into())?),
    };
    if !form.password.is_empty() {
        if let Err(err) = memberd_core::member::check_password(&form.password) {
            return refuse(FieldErrors::from_api(err.into())?);
        }
        member.password_hash = Some(
            hash_password(form.password.clone())
                .await
                .map_err(PageError::from)?,
        );
    }
    if let Err(err) = state
        .store()
        .insert_member(&place.scope(), &member, &event)
        .await
    {
        return refuse(FieldErrors::from_api(err.into())?);
    }
    state.wake_workers();
    place
        .audit(
            &state,
            "member.created",
            Some(member.id.as_str()),
            format!("created member {}", member.email),
        )
        .await;
    Ok(see_other(&format!(
        "{}/members/{}",
        place.base(),
        member.id
    )))
}
