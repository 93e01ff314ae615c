//! Plan connections read as Appstle's membership contracts: by number, by customer (the
//! member's `externalId`), and the membership status a storefront checks on every page.

use memberd_core::appstle::ContractFacts;
use memberd_core::webhook::ContractContext;
use memberd_core::{ConnectionId, ConnectionStatus, Scope};

use crate::connections::{view_columns, view_from_row};
use crate::read_cache::{Contracts, Lookup};
use crate::rows::Columns;
use crate::rows::{int, opt_text};
use crate::sql::Sql;
use crate::{ConnectionView, Result, Store};

/// A plan connection with its member's customer id.
#[derive(Debug, Clone)]
pub struct ContractView {
    pub view: ConnectionView,
    pub customer_id: Option<String>,
}

impl ContractView {
    pub fn facts(&self) -> ContractFacts {
        let c = &self.view.connection;
        ContractFacts {
            number: Some(self.view.number),
            connection_id: c.id.to_string(),
            member_id: c.member_id.to_string(),
            customer_id: self.customer_id.clone(),
            plan_id: c.plan_id.to_string(),
            plan_name: Some(self.view.plan_name.clone()),
            status: c.status,
            connection_type: c.connection_type,
            interval: c.interval,
            interval_count: c.interval_count,
            amount: c.amount,
            currency: c.currency.clone(),
            start_date: c.start_date,
            next_billing_date: c.next_billing_date(),
            end_date: c.end_date,
            cancel_reason: c.cancel_reason.clone(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ContractFilter {
    pub customer_id: Option<String>,
    pub status: Option<ConnectionStatus>,
}

const CONTRACT_SELECT: &str = concat!(
    "SELECT ",
    view_columns!(),
    ", m.external_id AS customer_id \
     FROM plan_connections c JOIN plans p ON p.id = c.plan_id JOIN members m ON m.id = c.member_id"
);

fn contract_from_row<R: Columns + ?Sized>(row: &R) -> Result<ContractView> {
    Ok(ContractView {
        view: view_from_row(row)?,
        customer_id: opt_text(row, "customer_id")?,
    })
}

impl Store {
    /// The contract with this number in the scope.
    pub async fn get_contract(&self, scope: &Scope, number: i64) -> Result<Option<ContractView>> {
        let row = sqlx::query(&format!(
            "{CONTRACT_SELECT} WHERE c.app_id = $1 AND c.env = $2 AND c.contract_number = $3"
        ))
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(number)
        .fetch_optional(self.reads().await?)
        .await?;
        row.as_ref().map(contract_from_row).transpose()
    }

    /// One numbered page of the scope's contracts, oldest first, with the total.
    pub async fn list_contracts(
        &self,
        scope: &Scope,
        filter: &ContractFilter,
        offset: u64,
        limit: u32,
    ) -> Result<(Vec<ContractView>, i64)> {
        let filtered = |sql: &mut Sql| {
            sql.push(" WHERE c.app_id = ").text(scope.app_id.as_str());
            sql.push(" AND c.env = ").text(scope.env.as_str());
            if let Some(customer) = &filter.customer_id {
                sql.push(" AND m.external_id = ").text(customer.as_str());
            }
            if let Some(status) = filter.status {
                sql.push(" AND c.status = ").text(status.as_str());
            }
        };
        let mut count = Sql::new(
            "SELECT COUNT(*) AS n FROM plan_connections c JOIN members m ON m.id = c.member_id",
        );
        filtered(&mut count);
        let mut list = Sql::new(CONTRACT_SELECT);
        filtered(&mut list);
        list.push(" ORDER BY c.seq LIMIT ").int(i64::from(limit));
        list.push(" OFFSET ")
            .int(i64::try_from(offset).unwrap_or(i64::MAX));
        let mut conn = self.reads().await?.acquire().await?;
        let total = int(&count.query().fetch_one(&mut *conn).await?, "n")?;
        let rows = list.query().fetch_all(&mut *conn).await?;
        let contracts = rows.iter().map(contract_from_row).collect::<Result<_>>()?;
        Ok((contracts, total))
    }

    /// Every contract of the customer with this id, in one query; `None` when the scope has
    /// no such customer.
    pub async fn customer_contracts(
        &self,
        scope: &Scope,
        customer_id: &str,
    ) -> Result<Option<Vec<ContractView>>> {
        self.flush_held().await?;
        let seen = match self.read_cache.contracts(scope, customer_id) {
            Lookup::Hit(contracts) => return Ok(contracts),
            Lookup::Miss(seen) => seen,
        };
        let contracts = self.read_customer_contracts(scope, customer_id).await?;
        self.read_cache
            .put_contracts(scope, customer_id, &contracts, seen);
        Ok(contracts)
    }

    async fn read_customer_contracts(&self, scope: &Scope, customer_id: &str) -> Result<Contracts> {
        let mut sql = Sql::new(concat!(
            "SELECT m.id AS member, ",
            view_columns!(),
            ", m.external_id AS customer_id \
             FROM members m LEFT JOIN plan_connections c ON c.member_id = m.id \
             LEFT JOIN plans p ON p.id = c.plan_id WHERE m.app_id = "
        ));
        sql.text(scope.app_id.as_str());
        sql.push(" AND m.env = ").text(scope.env.as_str());
        sql.push(" AND m.external_id = ").text(customer_id);
        sql.push(" ORDER BY c.seq");
        // One row per connection, or one without a connection for a member who has none.
        let rows = self
            .read_rows(&sql, |row| match opt_text(row, "id")? {
                Some(_) => contract_from_row(row).map(Some),
                None => Ok(None),
            })
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        Ok(Some(rows.into_iter().flatten().collect()))
    }

    /// What the `appstle` webhook flavour adds to an event about this connection.
    pub async fn contract_context(
        &self,
        scope: &Scope,
        id: &ConnectionId,
    ) -> Result<ContractContext> {
        let row = sqlx::query(
            "SELECT c.contract_number, p.name, m.external_id FROM plan_connections c JOIN plans p ON p.id = c.plan_id \
             JOIN members m ON m.id = c.member_id WHERE c.app_id = $1 AND c.env = $2 AND c.id = $3",
        )
        .bind(scope.app_id.as_str())
        .bind(scope.env.as_str())
        .bind(id.as_str())
        .fetch_optional(self.reads().await?)
        .await?;
        let Some(row) = row else {
            return Ok(ContractContext::default());
        };
        Ok(ContractContext {
            number: Some(int(&row, "contract_number")?),
            plan_name: opt_text(&row, "name")?,
            customer_id: opt_text(&row, "external_id")?,
        })
    }
}
