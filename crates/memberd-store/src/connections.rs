use memberd_core::access::Grant;
use memberd_core::{ConnectionId, MemberId, PlanConnection, PlanId, PriceId, Scope, Timestamp};

use crate::{Result, Store};

/// A plan connection with the facts of its plan that faces render beside it.
#[derive(Debug, Clone)]
pub struct ConnectionView {
    pub connection: PlanConnection,
    pub plan_name: String,
    pub plan_permissions: Vec<String>,
}

/// A change asked of a connection, by id; the store loads what the domain needs.
#[derive(Debug, Clone)]
pub enum ConnectionRequest {
    Cancel {
        reason: Option<String>,
        at_period_end: bool,
    },
    Pause {
        resume_at: Option<Timestamp>,
    },
    Resume,
    Replace {
        plan_id: PlanId,
        price_id: Option<PriceId>,
    },
}

impl Store {
    /// Connects a member to a plan, with its `member.plan.created` event. `NotFound` for an
    /// unknown member or plan; the domain's refusals as `Domain`.
    pub async fn connect_plan(
        &self,
        scope: &Scope,
        member_id: &MemberId,
        plan_id: &PlanId,
        price_id: Option<&PriceId>,
        now: Timestamp,
    ) -> Result<ConnectionView> {
        todo!()
    }

    /// A member's connections, oldest first; `NotFound` for an unknown member.
    pub async fn list_connections(
        &self,
        scope: &Scope,
        member_id: &MemberId,
    ) -> Result<Vec<ConnectionView>> {
        todo!()
    }

    pub async fn get_connection(
        &self,
        scope: &Scope,
        id: &ConnectionId,
    ) -> Result<Option<ConnectionView>> {
        todo!()
    }

    /// Applies a change through the domain's state machine and records its events.
    pub async fn change_connection(
        &self,
        scope: &Scope,
        id: &ConnectionId,
        request: ConnectionRequest,
        now: Timestamp,
    ) -> Result<ConnectionView> {
        todo!()
    }

    /// What the access check needs: the member's own permissions and, for each plan
    /// connection, its status and its plan's permissions. `None` for an unknown member.
    pub async fn access_grants(
        &self,
        scope: &Scope,
        member_id: &MemberId,
    ) -> Result<Option<(Vec<String>, Vec<Grant>)>> {
        todo!()
    }
}
