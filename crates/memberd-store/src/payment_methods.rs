//! Members' payment methods. The store never sees a full card number.

use memberd_core::{MemberId, PaymentMethodId, Scope, Timestamp};
use sqlx::any::AnyRow;

use crate::rows::{int, text, ts};
use crate::{Result, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentMethod {
    pub id: PaymentMethodId,
    pub member_id: MemberId,
    pub brand: String,
    pub last4: String,
    pub exp_month: u32,
    pub exp_year: i32,
    /// The gateway that holds the card, and its reference to it.
    pub gateway: String,
    pub gateway_ref: String,
    pub created_at: Timestamp,
}

fn from_row(row: &AnyRow) -> Result<PaymentMethod> {
    Ok(PaymentMethod {
        id: PaymentMethodId::from_trusted(text(row, "id")?),
        member_id: MemberId::from_trusted(text(row, "member_id")?),
        brand: text(row, "brand")?,
        last4: text(row, "last4")?,
        exp_month: u32::try_from(int(row, "exp_month")?).unwrap_or(0),
        exp_year: i32::try_from(int(row, "exp_year")?).unwrap_or(0),
        gateway: text(row, "gateway")?,
        gateway_ref: text(row, "gateway_ref")?,
        created_at: ts(row, "created_at")?,
    })
}

impl Store {
    /// Keeps a payment method of a member of the scope; `NotFound` for an unknown member.
    pub async fn insert_payment_method(&self, scope: &Scope, pm: &PaymentMethod) -> Result<()> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query(
            "INSERT INTO payment_methods (id, app_id, env, member_id, brand, last4, exp_month, exp_year, gateway, \
             gateway_ref, created_at) SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
             WHERE EXISTS (SELECT 1 FROM members WHERE app_id = $2 AND env = $3 AND id = $4)",
        )
        .bind(pm.id.as_str())
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(pm.member_id.as_str())
        .bind(&pm.brand)
        .bind(&pm.last4)
        .bind(i64::from(pm.exp_month))
        .bind(i64::from(pm.exp_year))
        .bind(&pm.gateway)
        .bind(&pm.gateway_ref)
        .bind(pm.created_at.as_micros())
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::not_found("member", &pm.member_id));
        }
        self.commit_write(tx, None).await
    }

    /// A member's payment methods, newest first; `NotFound` for an unknown member.
    pub async fn list_payment_methods(
        &self,
        scope: &Scope,
        member_id: &MemberId,
    ) -> Result<Vec<PaymentMethod>> {
        if self.get_member(scope, member_id).await?.is_none() {
            return Err(StoreError::not_found("member", member_id));
        }
        let mut conn = self.reads().await?.acquire().await?;
        load(&mut conn, scope, member_id, None).await
    }
}

/// A member's payment methods, newest first, at most `limit` of them.
pub(crate) async fn load(
    conn: &mut sqlx::AnyConnection,
    scope: &Scope,
    member_id: &MemberId,
    limit: Option<u32>,
) -> Result<Vec<PaymentMethod>> {
    let rows = sqlx::query(
        "SELECT id, member_id, brand, last4, exp_month, exp_year, gateway, gateway_ref, created_at \
         FROM payment_methods WHERE app_id = $1 AND env = $2 AND member_id = $3 ORDER BY seq DESC LIMIT $4",
    )
    .bind(scope.app_id.as_str())
    .bind(scope.env.as_str())
    .bind(member_id.as_str())
    .bind(limit.map_or(i64::MAX, i64::from))
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(from_row).collect()
}
