//! `/v1/analytics/summary`: members by state, arrivals and departures, MRR and ARR.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::Json;
use memberd_core::analytics::{summarize, Figures};
use memberd_core::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{parse_timestamp, Authed, ValidQuery};
use crate::state::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// The start of the period (RFC 3339 or YYYY-MM-DD); 30 days before `to` by default.
    #[param(value_type = Option<crate::api::schemas::TimeText>)]
    from: Option<String>,
    /// The end of the period, excluded; now by default.
    #[param(value_type = Option<crate::api::schemas::TimeText>)]
    to: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FiguresOut {
    /// Plan connections ACTIVE now.
    pub active: u64,
    pub trialing: u64,
    pub past_due: u64,
    /// Connections started in the period.
    pub new: u64,
    /// Connections canceled or expired in the period.
    pub churned: u64,
    /// Monthly recurring revenue per currency, in minor units.
    pub mrr: BTreeMap<String, i64>,
    /// Annual recurring revenue per currency: twelve times MRR.
    pub arr: BTreeMap<String, i64>,
}

impl From<&Figures> for FiguresOut {
    fn from(f: &Figures) -> Self {
        FiguresOut {
            active: f.active,
            trialing: f.trialing,
            past_due: f.past_due,
            new: f.new,
            churned: f.churned,
            arr: f.arr(),
            mrr: f.mrr.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanFiguresOut {
    pub plan_id: String,
    pub plan_name: String,
    #[serde(flatten)]
    pub figures: FiguresOut,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SummaryOut {
    pub from: String,
    pub to: String,
    pub total: FiguresOut,
    pub plans: Vec<PlanFiguresOut>,
}

#[utoipa::path(get, path = "/v1/analytics/summary", tag = "billing", params(SummaryQuery),
    responses((status = 200, body = SummaryOut), (status = 400, body = ErrorEnvelope)))]
pub async fn summary(
    State(state): State<AppState>,
    auth: Authed,
    ValidQuery(q, _): ValidQuery<SummaryQuery>,
) -> ApiResult<Json<SummaryOut>> {
    let to = parse_timestamp("to", q.to.as_deref())?.unwrap_or_else(|| state.now());
    let from = parse_timestamp("from", q.from.as_deref())?
        .unwrap_or_else(|| Timestamp::from_micros(to.as_micros() - 30 * 86_400_000_000));
    if from >= to {
        return Err(ApiError::invalid(
            "from",
            "invalid_period",
            "from must be before to",
        ));
    }
    let views = state.store().all_connections(&auth.scope).await?;
    let (total, plans) = summarize(
        views.iter().map(|v| (&v.connection, v.plan_name.as_str())),
        from,
        to,
    );
    Ok(Json(SummaryOut {
        from: from.to_rfc3339(),
        to: to.to_rfc3339(),
        total: (&total).into(),
        plans: plans
            .iter()
            .map(|p| PlanFiguresOut {
                plan_id: p.plan_id.clone(),
                plan_name: p.plan_name.clone(),
                figures: (&p.figures).into(),
            })
            .collect(),
    }))
}
