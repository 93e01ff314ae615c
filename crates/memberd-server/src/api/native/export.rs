//! `GET /v1/members/export`: every member of the key's environment with their plan
//! connections, streamed, in the form `memberd import` reads back.

use axum::extract::State;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::export::{body, ExportFormat};
use crate::extract::{Authed, ValidQuery};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `jsonl` (the default, also when empty: one member per line, as `memberd import`
    /// reads it) or `csv`.
    #[param(pattern = "^(jsonl|csv)?$")]
    format: Option<String>,
}

#[utoipa::path(get, path = "/v1/members/export", tag = "members", params(ExportQuery),
    description = "Every member of the environment with their plan connections, oldest first, \
        written as it is read (any size, in flat memory). Each JSON line (or CSV row) is what \
        `memberd import` reads back: the fields `POST /v1/members` takes, with `id`, \
        `lastLogin`, `createdAt`, `updatedAt` and `planConnections`. Password hashes are \
        never in it. No events are sent.",
    responses(
        (status = 200, description = "JSON Lines or CSV, streamed", content(
            (String = "application/jsonl"), (String = "text/csv"))),
        (status = 400, body = ErrorEnvelope), (status = 401, body = ErrorEnvelope)))]
pub async fn export_members(
    State(state): State<AppState>,
    auth: Authed,
    ValidQuery(q, _): ValidQuery<ExportQuery>,
) -> ApiResult<Response> {
    let format = match q.format.as_deref() {
        None | Some("" | "jsonl") => ExportFormat::Jsonl,
        Some("csv") => ExportFormat::Csv,
        Some(other) => {
            return Err(ApiError::invalid(
                "format",
                "invalid_format",
                format!("format: {other:?} is neither jsonl nor csv"),
            ))
        }
    };
    let name = format!(
        "attachment; filename=\"members-{}-{}.{}\"",
        auth.scope.app_id,
        auth.scope.env,
        format.extension()
    );
    let body = body(state.store().clone(), auth.scope, format);
    Ok((
        [
            (CONTENT_TYPE, format.content_type().to_owned()),
            (CONTENT_DISPOSITION, name),
        ],
        body,
    )
        .into_response())
}
