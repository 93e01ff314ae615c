//! Counts for the dashboard's charts, summed by the database rather than read row by row.

use memberd_core::analytics::Periods;
use memberd_core::Scope;

use crate::rows::int;
use crate::{Result, Store};

impl Store {
    /// How many members of the scope were created in each period.
    pub async fn member_signups(&self, scope: &Scope, periods: &Periods) -> Result<Vec<u64>> {
        let start = periods.start.as_micros();
        let end = periods.start_of(periods.count).as_micros();
        // Integer division on both backends: the period each member's creation falls in.
        let rows = sqlx::query(
            "SELECT (created_at - $1) / $2 AS period, COUNT(*) AS n FROM members \
             WHERE app_id = $3 AND env = $4 AND created_at >= $1 AND created_at < $5 \
             GROUP BY (created_at - $1) / $2",
        )
        .bind(start)
        .bind(periods.width_micros)
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(end)
        .fetch_all(self.reads().await?)
        .await?;
        let mut counts = vec![0; periods.count];
        for row in &rows {
            let period = int(row, "period")?;
            if let Some(slot) = usize::try_from(period).ok().and_then(|i| counts.get_mut(i)) {
                *slot = u64::try_from(int(row, "n")?).unwrap_or(0);
            }
        }
        Ok(counts)
    }
}
