//! Charges of plan connections.

use memberd_core::{ConnectionId, MemberId, PaymentId, PaymentMethodId, Scope, Timestamp};
use sqlx::any::AnyRow;
use sqlx::AnyConnection;

use crate::rows::{int, opt_text, text, ts};
use crate::{Result, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub id: PaymentId,
    pub member_id: MemberId,
    pub connection_id: ConnectionId,
    pub payment_method_id: Option<PaymentMethodId>,
    pub amount: i64,
    pub currency: String,
    pub succeeded: bool,
    pub failure_reason: Option<String>,
    pub created_at: Timestamp,
}

fn from_row(row: &AnyRow) -> Result<Payment> {
    Ok(Payment {
        id: PaymentId::from_trusted(text(row, "id")?),
        member_id: MemberId::from_trusted(text(row, "member_id")?),
        connection_id: ConnectionId::from_trusted(text(row, "connection_id")?),
        payment_method_id: opt_text(row, "payment_method_id")?.map(PaymentMethodId::from_trusted),
        amount: int(row, "amount")?,
        currency: text(row, "currency")?,
        succeeded: text(row, "status")? == "succeeded",
        failure_reason: opt_text(row, "failure_reason")?,
        created_at: ts(row, "created_at")?,
    })
}

pub(crate) async fn insert(conn: &mut AnyConnection, scope: &Scope, p: &Payment) -> Result<()> {
    sqlx::query(
        "INSERT INTO payments (id, app_id, env, member_id, connection_id, payment_method_id, amount, currency, \
         status, failure_reason, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(p.id.as_str())
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .bind(p.member_id.as_str())
    .bind(p.connection_id.as_str())
    .bind(p.payment_method_id.as_ref().map(|m| m.as_str()))
    .bind(p.amount)
    .bind(&p.currency)
    .bind(if p.succeeded { "succeeded" } else { "failed" })
    .bind(p.failure_reason.as_deref())
    .bind(p.created_at.as_micros())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

impl Store {
    /// A member's payments, newest first; `NotFound` for an unknown member.
    pub async fn list_payments(&self, scope: &Scope, member_id: &MemberId) -> Result<Vec<Payment>> {
        if self.get_member(scope, member_id).await?.is_none() {
            return Err(StoreError::not_found("member", member_id));
        }
        let rows = sqlx::query(
            "SELECT id, member_id, connection_id, payment_method_id, amount, currency, status, failure_reason, \
             created_at FROM payments WHERE app_id = $1 AND env = $2 AND member_id = $3 ORDER BY seq DESC",
        )
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(member_id.as_str())
        .fetch_all(self.reads().await?)
        .await?;
        rows.iter().map(from_row).collect()
    }
}
