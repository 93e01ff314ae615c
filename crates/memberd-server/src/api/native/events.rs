//! The event log as a change feed: every change, in the order it was committed.

use axum::extract::{Path, State};
use axum::Json;
use memberd_core::event::Event;
use memberd_core::{EventId, EventKind};
use memberd_store::EventCursor;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::page::{list_schema, parse_limit, ListOut};
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{query_param, Authed, ValidQuery};
use crate::state::AppState;

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventOut {
    pub id: String,
    pub object: &'static str,
    /// Such as `member.created` or `member.plan.canceled`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The payload, in the shapes of Memberstack's webhook events.
    #[schema(value_type = Object)]
    pub data: Value,
    pub created_at: String,
}

list_schema!(EventList, EventOut);

impl From<Event> for EventOut {
    fn from(e: Event) -> Self {
        EventOut {
            id: e.id.to_string(),
            object: "event",
            kind: e.kind,
            data: e.data,
            created_at: e.created_at.to_rfc3339(),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventListQuery {
    /// Events after this one: a `nextCursor`, or the id (`evt_…`) of an event that exists.
    #[param(pattern = "^([0-9]{1,18}(-[0-9]{1,18})?|evt_[A-Za-z0-9_]{1,64})?$")]
    after: Option<String>,
    /// Comma-separated event types; every type by default.
    types: Option<String>,
    /// 1 to 100; 50 by default.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
}

/// Oldest first. Keep the last `nextCursor` and pass it as `after` to read only what is new.
#[utoipa::path(get, path = "/v1/events", tag = "events", params(EventListQuery),
    responses((status = 200, body = EventList), (status = 400, body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authed,
    ValidQuery(q, _): ValidQuery<EventListQuery>,
) -> ApiResult<Json<ListOut<EventOut>>> {
    let store = state.store();
    let after = match q.after.as_deref() {
        Some(raw) if raw.starts_with(EventId::PREFIX) => {
            let id = EventId::parse(raw).ok_or_else(|| unknown_after(raw))?;
            Some(
                store
                    .event_cursor(&auth.scope, &id)
                    .await?
                    .ok_or_else(|| unknown_after(raw))?,
            )
        }
        other => query_param(
            "after",
            other,
            "the nextCursor of a previous page, or an event id",
            EventCursor::decode,
        )?,
    };
    let mut types = Vec::new();
    for t in q
        .types
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        if EventKind::parse(t).is_none() {
            let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(ApiError::invalid(
                "types",
                "unknown_event_type",
                format!(
                    "unknown event type {t:?}; known types: {}",
                    known.join(", ")
                ),
            ));
        }
        types.push(t.to_ascii_lowercase());
    }
    let limit = parse_limit(q.limit.as_deref())?;
    let page = store.list_events(&auth.scope, after, &types, limit).await?;
    Ok(Json(ListOut::from_page(page, EventOut::from)))
}

fn unknown_after(raw: &str) -> ApiError {
    ApiError::invalid(
        "after",
        "unknown_event",
        format!("after names no event of this environment: {raw:?}"),
    )
}

#[utoipa::path(get, path = "/v1/events/{id}", tag = "events", params(("id" = String, Path)),
    responses((status = 200, body = EventOut), (status = 404, body = ErrorEnvelope)))]
pub async fn retrieve(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<EventOut>> {
    let id = EventId::parse(&id).ok_or_else(|| ApiError::not_found("event", &id))?;
    let event = state
        .store()
        .get_event(&auth.scope, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("event", &id))?;
    Ok(Json(event.into()))
}
