//! A member's plans: adding one, and the moves the plan-connection state machine takes
//! (cancel now or at the end of the period, pause, resume), offered only when it takes them.

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse};
use memberd_core::operator::Capability;
use memberd_core::{ConnectionCommand, ConnectionId, PlanConnection, PlanId, PriceId, Timestamp};
use memberd_store::ConnectionRequest;
use serde::Deserialize;

use super::auth::CsrfForm;
use super::member::{load, member_id, member_page, param, NoFields, ProfileForm};
use super::{see_other, FieldErrors, PageError, PageResult, Place};
use crate::state::AppState;

/// The moves a person can make on a connection, with the button that makes each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Move {
    CancelNow,
    CancelAtPeriodEnd,
    Pause,
    Resume,
}

impl Move {
    pub(super) const ALL: [Move; 4] = [
        Move::CancelAtPeriodEnd,
        Move::CancelNow,
        Move::Pause,
        Move::Resume,
    ];

    pub(super) fn slug(self) -> &'static str {
        match self {
            Move::CancelNow => "cancel",
            Move::CancelAtPeriodEnd => "cancel-at-period-end",
            Move::Pause => "pause",
            Move::Resume => "resume",
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Move::CancelNow => "Cancel now",
            Move::CancelAtPeriodEnd => "Cancel at period end",
            Move::Pause => "Pause",
            Move::Resume => "Resume",
        }
    }

    fn parse(slug: &str) -> Option<Move> {
        Move::ALL.into_iter().find(|m| m.slug() == slug)
    }

    fn command(self) -> ConnectionCommand {
        match self {
            Move::CancelNow => ConnectionCommand::Cancel {
                reason: None,
                at_period_end: false,
            },
            Move::CancelAtPeriodEnd => ConnectionCommand::Cancel {
                reason: None,
                at_period_end: true,
            },
            Move::Pause => ConnectionCommand::Pause { resume_at: None },
            Move::Resume => ConnectionCommand::Resume,
        }
    }

    fn request(self) -> ConnectionRequest {
        match self {
            Move::CancelNow => ConnectionRequest::Cancel {
                reason: None,
                at_period_end: false,
            },
            Move::CancelAtPeriodEnd => ConnectionRequest::Cancel {
                reason: None,
                at_period_end: true,
            },
            Move::Pause => ConnectionRequest::Pause { resume_at: None },
            Move::Resume => ConnectionRequest::Resume,
        }
    }

    /// Whether the state machine takes this move now: asked of the core itself, so the page
    /// offers exactly what the API would accept.
    pub(super) fn allowed(
        self,
        c: &PlanConnection,
        others: &[PlanConnection],
        now: Timestamp,
    ) -> bool {
        c.apply(self.command(), others, now).is_ok()
    }
}

#[derive(Deserialize)]
pub struct AddPlanForm {
    #[serde(default)]
    plan: String,
}

/// Adds a plan as `POST /v1/members/{id}/plan-connections` does (a paid one charges the
/// member's card, or starts its trial).
pub async fn add_plan(
    State(state): State<AppState>,
    place: Place,
    Path(params): Path<Vec<(String, String)>>,
    CsrfForm(form): CsrfForm<AddPlanForm>,
) -> PageResult {
    place.require(Capability::Change, "change members' plans")?;
    let id = member_id(param(&params, "id"))?;
    let view = load(&state, &place, &id).await?;
    let (plan, price) = match form.plan.split_once(':') {
        Some((plan, price)) => (PlanId::parse(plan), PriceId::parse(price)),
        None => (PlanId::parse(&form.plan), None),
    };
    let Some(plan) = plan else {
        let page = member_page(
            &state,
            &place,
            &view,
            &ProfileForm::of(&view),
            &FieldErrors::one("planId", "Pick a plan."),
        )
        .await?;
        return Ok(Html(page.into_string()).into_response());
    };
    match crate::billing::connect::connect(&state, &place.scope(), &id, &plan, price.as_ref()).await
    {
        Ok(added) => {
            state.wake_workers();
            place
                .audit(
                    &state,
                    "connection.created",
                    Some(added.connection.id.as_str()),
                    format!("added {} to {}", added.plan_name, view.member.email),
                )
                .await;
            Ok(see_other(&format!("{}/members/{id}", place.base())))
        }
        Err(err) => {
            let mut errors = FieldErrors::from_api(err)?;
            if errors.is_empty() || errors.general.is_some() {
                errors = FieldErrors::one("planId", errors.general.take().unwrap_or_default());
            }
            let page = member_page(&state, &place, &view, &ProfileForm::of(&view), &errors).await?;
            Ok(Html(page.into_string()).into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct MoveQuery {
    #[serde(rename = "move", default)]
    step: String,
}

pub async fn change_connection(
    State(state): State<AppState>,
    place: Place,
    Path(params): Path<Vec<(String, String)>>,
    axum::extract::Query(query): axum::extract::Query<MoveQuery>,
    CsrfForm(NoFields {}): CsrfForm<NoFields>,
) -> PageResult {
    place.require(Capability::Change, "change members' plans")?;
    let id = member_id(param(&params, "id"))?;
    let con = ConnectionId::parse(param(&params, "con")).ok_or(PageError::NotFound)?;
    let step = Move::parse(&query.step).ok_or_else(|| PageError::bad_request("No such action."))?;
    let view = load(&state, &place, &id).await?;
    if !view.connections.iter().any(|c| c.connection.id == con) {
        return Err(PageError::NotFound);
    }
    match state
        .store()
        .change_connection(&place.scope(), &con, step.request(), state.now())
        .await
    {
        Ok(changed) => {
            state.wake_workers();
            place
                .audit(
                    &state,
                    &format!("connection.{}", step.slug().replace('-', "_")),
                    Some(con.as_str()),
                    format!(
                        "{} {} of {}",
                        step.label().to_lowercase(),
                        changed.plan_name,
                        view.member.email
                    ),
                )
                .await;
            Ok(see_other(&format!("{}/members/{id}", place.base())))
        }
        Err(err) => {
            let errors = FieldErrors::from_api(err.into())?;
            let page = member_page(&state, &place, &view, &ProfileForm::of(&view), &errors).await?;
            Ok(Html(page.into_string()).into_response())
        }
    }
}
