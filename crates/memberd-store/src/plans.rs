use memberd_core::{DomainError, Plan, PlanId, PlanStatus, Scope};

use crate::{Page, PageRequest, Result, Store};

#[derive(Debug, Clone, Default)]
pub struct PlanFilter {
    pub status: Option<PlanStatus>,
}

impl Store {
    pub async fn insert_plan(&self, scope: &Scope, plan: &Plan) -> Result<()> {
        todo!()
    }

    pub async fn get_plan(&self, scope: &Scope, id: &PlanId) -> Result<Option<Plan>> {
        todo!()
    }

    pub async fn list_plans(
        &self,
        scope: &Scope,
        filter: &PlanFilter,
        page: PageRequest,
    ) -> Result<Page<Plan>> {
        todo!()
    }

    /// Loads a plan, lets `change` decide its next state (`None`: unchanged), and saves it.
    /// Returns the plan as it now stands. `NotFound` when the scope has no such plan.
    pub async fn update_plan<F>(&self, scope: &Scope, id: &PlanId, change: F) -> Result<Plan>
    where
        F: FnOnce(&Plan) -> Result<Option<Plan>, DomainError> + Send,
    {
        todo!()
    }
}
