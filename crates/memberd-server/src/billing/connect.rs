//! Connecting a member to a paid plan: the first period is charged before the connection
//! exists, so a member never holds a paid plan that was not paid for, and a refused charge
//! leaves nothing behind.

use axum::http::StatusCode;
use memberd_core::connection::first_charge;
use memberd_core::lifecycle::Charge;
use memberd_core::{ConnectionId, MemberId, PaymentId, PlanConnection, PlanId, PriceId, Scope};
use memberd_store::{ConnectionView, Payment};

use super::gateway_for;
use crate::error::ApiError;
use crate::state::AppState;

fn payment_required(
    code: impl Into<std::borrow::Cow<'static, str>>,
    message: impl Into<String>,
) -> ApiError {
    ApiError::new(StatusCode::PAYMENT_REQUIRED, "card_error", code, message)
}

/// Connects a member to a plan, charging the first period when the price has one.
pub async fn connect(
    state: &AppState,
    scope: &Scope,
    member_id: &MemberId,
    plan_id: &PlanId,
    price_id: Option<&PriceId>,
) -> Result<ConnectionView, ApiError> {
    let store = state.store();
    let now = state.now();
    let plan = store
        .get_plan(scope, plan_id)
        .await?
        .ok_or_else(|| ApiError::not_found("plan", plan_id).with_param("planId"))?;
    let Some((amount, currency)) = first_charge(&plan, price_id)? else {
        return Ok(store
            .connect_plan(scope, member_id, plan_id, price_id, now)
            .await?);
    };
    // Everything the connection itself would refuse is refused before any money moves.
    let existing: Vec<PlanConnection> = store
        .list_connections(scope, member_id)
        .await?
        .into_iter()
        .map(|v| v.connection)
        .collect();
    PlanConnection::connect(member_id, &plan, price_id, &existing, now)?;
    let gateway = gateway_for(scope.env).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "no_payment_gateway",
            "the live environment has no payment gateway configured yet, so it cannot charge for a paid plan",
        )
    })?;
    let method = store
        .list_payment_methods(scope, member_id)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            payment_required(
                "payment_method_required",
                format!("member {member_id} has no card to charge for this plan: attach one with POST /v1/members/{member_id}/payment-methods"),
            )
        })?;
    let charged = gateway.charge(&method.gateway_ref, amount, &currency);
    crate::telemetry::charge("first", charged == Charge::Succeeded);
    match charged {
        Charge::Failed { reason } => Err(payment_required(
            reason.clone(),
            format!("the charge of the first period failed: {reason}"),
        )),
        Charge::Succeeded => {
            let payment = Payment {
                id: PaymentId::generate(),
                member_id: member_id.clone(),
                connection_id: ConnectionId::generate(),
                payment_method_id: Some(method.id.clone()),
                amount,
                currency: currency.clone(),
                succeeded: true,
                failure_reason: None,
                created_at: now,
            };
            match store
                .connect_plan_paid(scope, member_id, plan_id, price_id, now, Some(payment))
                .await
            {
                Ok(view) => Ok(view),
                Err(err) => {
                    // Another request connected the plan first: give the money back.
                    if let Err(refusal) = gateway.refund(&method.gateway_ref, amount, &currency) {
                        tracing::error!(
                            code = refusal.code,
                            "could not refund a charge whose connection failed"
                        );
                    }
                    Err(err.into())
                }
            }
        }
    }
}
