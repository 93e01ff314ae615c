//! Sandbox test clocks.

use memberd_core::{Scope, TestClock, TestClockId, Timestamp};
use sqlx::any::AnyRow;

use crate::rows::{text, ts};
use crate::{Result, Store};

fn from_row(row: &AnyRow) -> Result<TestClock> {
    Ok(TestClock {
        id: TestClockId::from_trusted(text(row, "id")?),
        frozen_time: ts(row, "frozen_time")?,
        created_at: ts(row, "created_at")?,
        updated_at: ts(row, "updated_at")?,
    })
}

impl Store {
    pub async fn insert_test_clock(&self, scope: &Scope, clock: &TestClock) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO test_clocks (id, app_id, env, frozen_time, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(clock.id.as_str())
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(clock.frozen_time.as_micros())
        .bind(clock.created_at.as_micros())
        .bind(clock.updated_at.as_micros())
        .execute(&mut *tx)
        .await?;
        self.commit_write(tx, None).await
    }

    pub async fn get_test_clock(
        &self,
        scope: &Scope,
        id: &TestClockId,
    ) -> Result<Option<TestClock>> {
        let row = sqlx::query(
            "SELECT id, frozen_time, created_at, updated_at FROM test_clocks \
             WHERE app_id = $1 AND env = $2 AND id = $3",
        )
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(id.as_str())
        .fetch_optional(self.reads().await?)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Moves a clock forward to the time `clock` shows. Never back: of two advances at once,
    /// the later time wins. Returns the clock as it now stands.
    pub async fn advance_test_clock(&self, scope: &Scope, clock: &TestClock) -> Result<TestClock> {
        sqlx::query(
            "UPDATE test_clocks SET frozen_time = $1, updated_at = $2 \
             WHERE app_id = $3 AND env = $4 AND id = $5 AND frozen_time <= $1",
        )
        .bind(clock.frozen_time.as_micros())
        .bind(clock.updated_at.as_micros())
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(clock.id.as_str())
        .execute(self.writer().await?)
        .await?;
        let row = sqlx::query(
            "SELECT id, frozen_time, created_at, updated_at FROM test_clocks WHERE id = $1",
        )
        .bind(clock.id.as_str())
        .fetch_one(self.writer().await?)
        .await?;
        from_row(&row)
    }

    /// Whether any connection on the clock has a transition due at `frozen_time` (claimed by
    /// a worker or not): an advance is finished when none has.
    pub async fn test_clock_has_due(
        &self,
        id: &TestClockId,
        frozen_time: Timestamp,
    ) -> Result<bool> {
        let row = sqlx::query(
            "SELECT 1 AS due FROM plan_connections WHERE test_clock_id = $1 AND next_action_at <= $2 LIMIT 1",
        )
        .bind(id.as_str())
        .bind(frozen_time.as_micros())
        .fetch_optional(self.writer().await?)
        .await?;
        Ok(row.is_some())
    }
}
