//! `/v1/members/{id}/payment-methods`: cards, taken by the environment's gateway. Only the
//! brand, the last four digits and the expiry are kept or shown.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use memberd_core::card::Card;
use memberd_core::PaymentMethodId;
use memberd_store::PaymentMethod;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::members::member_id;
use crate::billing::gateway_for;
use crate::error::{ApiError, ApiResult, ErrorEnvelope};
use crate::extract::{Authed, ValidJson};
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CardIn {
    /// In sandbox, 4242424242424242 always succeeds; 4000000000000002 is declined;
    /// 4000000000000341 attaches but its charges fail; 4000002500003155 needs the customer's action.
    pub number: String,
    pub exp_month: u32,
    /// Two or four digits.
    pub exp_year: u32,
    pub cvc: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethodIn {
    pub card: CardIn,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentMethodOut {
    pub id: String,
    pub object: &'static str,
    pub member_id: String,
    pub card: CardOut,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CardOut {
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: i32,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentMethodList {
    pub data: Vec<PaymentMethodOut>,
}

impl From<PaymentMethod> for PaymentMethodOut {
    fn from(pm: PaymentMethod) -> Self {
        PaymentMethodOut {
            id: pm.id.to_string(),
            object: "payment_method",
            member_id: pm.member_id.to_string(),
            card: CardOut {
                brand: pm.brand,
                last4: pm.last4,
                exp_month: pm.exp_month,
                exp_year: pm.exp_year,
            },
            created_at: pm.created_at.to_rfc3339(),
        }
    }
}

/// Attaches a card. A declined card is a 402 that says so; the live environment refuses
/// cards until a real payment gateway is configured.
#[utoipa::path(post, path = "/v1/members/{id}/payment-methods", tag = "billing",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes a retry safe: it replays the first response")),
    request_body = PaymentMethodIn,
    responses((status = 201, body = PaymentMethodOut), (status = 400, body = ErrorEnvelope), (status = 402, body = ErrorEnvelope),
        (status = 404, body = ErrorEnvelope), (status = 409, body = ErrorEnvelope)))]
pub async fn attach(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
    ValidJson(input, _): ValidJson<PaymentMethodIn>,
) -> ApiResult<(StatusCode, Json<PaymentMethodOut>)> {
    let member = member_id(&id)?;
    let now = state.now();
    let c = input.card;
    let card = Card::parse(&c.number, c.exp_month, c.exp_year, &c.cvc, now)?;
    let gateway = gateway_for(auth.scope.env).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            "no_payment_gateway",
            "the live environment has no payment gateway configured yet, so it takes no cards; use a sandbox key (sk_sb_…) to try billing",
        )
    })?;
    if state
        .store()
        .get_member(&auth.scope, &member)
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("member", &member));
    }
    let reference = gateway.attach(&card).map_err(|refusal| {
        ApiError::new(
            StatusCode::PAYMENT_REQUIRED,
            "card_error",
            refusal.code,
            refusal.message,
        )
        .with_param("card.number")
    })?;
    let pm = PaymentMethod {
        id: PaymentMethodId::generate(),
        member_id: member,
        brand: card.brand.as_str().to_owned(),
        last4: card.number.last4().to_owned(),
        exp_month: card.exp_month,
        exp_year: card.exp_year,
        gateway: gateway.name().to_owned(),
        gateway_ref: reference,
        created_at: now,
    };
    state
        .store()
        .insert_payment_method(&auth.scope, &pm)
        .await?;
    Ok((StatusCode::CREATED, Json(pm.into())))
}

/// A member's payment methods, newest first.
#[utoipa::path(get, path = "/v1/members/{id}/payment-methods", tag = "billing", params(("id" = String, Path)),
    responses((status = 200, body = PaymentMethodList), (status = 404, body = ErrorEnvelope)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<PaymentMethodList>> {
    let member = member_id(&id)?;
    let methods = state
        .store()
        .list_payment_methods(&auth.scope, &member)
        .await?;
    Ok(Json(PaymentMethodList {
        data: methods.into_iter().map(PaymentMethodOut::from).collect(),
    }))
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentOut {
    pub id: String,
    pub object: &'static str,
    pub member_id: String,
    pub plan_connection_id: String,
    pub payment_method_id: Option<String>,
    /// In the currency's minor unit.
    pub amount: i64,
    pub currency: String,
    /// `SUCCEEDED` or `FAILED`.
    pub status: &'static str,
    pub failure_reason: Option<String>,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentList {
    pub data: Vec<PaymentOut>,
}

/// A member's payments, newest first.
#[utoipa::path(get, path = "/v1/members/{id}/payments", tag = "billing", params(("id" = String, Path)),
    responses((status = 200, body = PaymentList), (status = 404, body = ErrorEnvelope)))]
pub async fn payments(
    State(state): State<AppState>,
    auth: Authed,
    Path(id): Path<String>,
) -> ApiResult<Json<PaymentList>> {
    let member = member_id(&id)?;
    let payments = state.store().list_payments(&auth.scope, &member).await?;
    Ok(Json(PaymentList {
        data: payments
            .into_iter()
            .map(|p| PaymentOut {
                id: p.id.to_string(),
                object: "payment",
                member_id: p.member_id.to_string(),
                plan_connection_id: p.connection_id.to_string(),
                payment_method_id: p.payment_method_id.map(|m| m.to_string()),
                amount: p.amount,
                currency: p.currency,
                status: if p.succeeded { "SUCCEEDED" } else { "FAILED" },
                failure_reason: p.failure_reason,
                created_at: p.created_at.to_rfc3339(),
            })
            .collect(),
    }))
}
