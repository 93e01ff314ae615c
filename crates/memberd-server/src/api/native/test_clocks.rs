//! `/v1/test-clocks`: sandbox clocks to move time on for a set of members, and watch their
//! trials end, renewals charge, failed payments retry and terms expire without waiting.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use memberd_core::{Environment, Scope, TestClock, TestClockId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{parse_timestamp, Authed, ValidJson};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestClockIn {
    /// The time the clock starts at (RFC 3339 or YYYY-MM-DD); any time, past or future.
    #[schema(value_type = crate::api::schemas::TimeText)]
    pub frozen_time: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestClockOut {
    pub id: String,
    pub object: &'static str,
    pub frozen_time: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<TestClock> for TestClockOut {
    fn from(c: TestClock) -> Self {
        TestClockOut {
            id: c.id.to_string(),
            object: "test_clock",
            frozen_time: c.frozen_time.to_rfc3339(),
            created_at: c.created_at.to_rfc3339(),
            updated_at: c.updated_at.to_rfc3339(),
        }
    }
}

fn sandbox_only(scope: &Scope) -> ApiResult<()> {
    if scope.env != Environment::Sandbox {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_error",
            "sandbox_only",
            "test clocks exist in the sandbox environment only: use an sk_sb_ key",
        ));
    }
    Ok(())
}

fn frozen_time(raw: &str) -> ApiResult<memberd_core::Timestamp> {
    parse_timestamp("frozenTime", Some(raw))?.ok_or_else(|| {
        ApiError::invalid("frozenTime", "invalid_timestamp", "frozenTime is required")
    })
}

/// A clock of the key's scope, by id from a path.
pub async fn find_clock(state: &AppState, scope: &Scope, raw: &str) -> ApiResult<TestClock> {
    let id = TestClockId::parse(raw).ok_or_else(|| ApiError::not_found("test clock", raw))?;
    state
        .store()
        .get_test_clock(scope, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("test clock", raw))
}

/// Creates a clock. Members join it with `testClockId` when they are created.
#[utoipa::path(post, path = "/v1/test-clocks", tag = "test clocks", request_body = TestClockIn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: it replays the first response")),
    responses((status = 201, body = TestClockOut), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope)))]
pub async fn create(
    State(state): State<AppState>,
    auth: Authed,
    ValidJson(input, _): ValidJson<TestClockIn>,
) -> ApiResult<(StatusCode, Json<TestClockOut>)> {
    sandbox_only(&auth.scope)?;
    let clock = TestClock::create(frozen_time(&input.frozen_time)?, state.now());
    state.store().insert_test_clock(&auth.scope, &clock).await?;
    Ok((StatusCode::CREATED, Json(clock.into())))
}

#[utoipa::path(get, path = "/v1/test-clocks/{id}", tag = "test clocks",
    params(("id" = String, Path)),
    responses((status = 200, body = TestClockOut), (status = 403, body = ErrorEnvelope), (status = 404, body = ErrorEnvelope)))]
pub async fn retrieve(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<TestClockOut>> {
    sandbox_only(&auth.scope)?;
    Ok(Json(find_clock(&state, &auth.scope, &id).await?.into()))
}

/// Moves the clock forward and returns once every transition due on its members up to the
/// new time has been applied, in time order, each at the moment it fell due.
#[utoipa::path(post, path = "/v1/test-clocks/{id}/advance", tag = "test clocks", request_body = TestClockIn,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: it replays the first response")),
    responses((status = 200, body = TestClockOut), (status = 400, body = ErrorEnvelope), (status = 403, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope)))]
pub async fn advance(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): ValidJson<TestClockIn>,
) -> ApiResult<Json<TestClockOut>> {
    sandbox_only(&auth.scope)?;
    let clock = find_clock(&state, &auth.scope, &id).await?;
    let moved = clock.advance(frozen_time(&input.frozen_time)?, state.now())?;
    let clock = state
        .store()
        .advance_test_clock(&auth.scope, &moved)
        .await?;
    state.scheduler().advance(&clock).await.map_err(|err| {
        tracing::error!(error = %err, clock = %clock.id, request_id = %crate::current_request_id(), "advancing a test clock failed");
        ApiError::internal()
    })?;
    state.wake_workers();
    Ok(Json(clock.into()))
}
