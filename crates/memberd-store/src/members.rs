use memberd_core::{
    ConnectionStatus, DomainError, Email, Member, MemberId, NewEvent, PlanId, Scope, Timestamp,
};

use crate::{ConnectionView, Page, PageRequest, Result, Store};

#[derive(Debug, Clone, Default)]
pub struct MemberFilter {
    pub email: Option<Email>,
    /// Members holding this plan (in any status, unless `status` says which).
    pub plan_id: Option<PlanId>,
    /// Members with a plan connection in this status.
    pub status: Option<ConnectionStatus>,
    /// Members changed at or after this time.
    pub updated_since: Option<Timestamp>,
}

/// A member with their plan connections, as the API faces render it.
#[derive(Debug, Clone)]
pub struct MemberView {
    pub member: Member,
    /// Oldest first.
    pub connections: Vec<ConnectionView>,
}

impl MemberView {
    /// The member's own permissions and those of every plan they hold actively, deduplicated.
    pub fn permissions(&self) -> Vec<String> {
        let mut all = self.member.permissions.clone();
        for c in self.connections.iter().filter(|c| c.connection.active()) {
            for p in &c.plan_permissions {
                if !all.contains(p) {
                    all.push(p.clone());
                }
            }
        }
        all
    }
}

impl Store {
    /// Inserts a member with its `member.created` event. `Duplicate { field: "email" }` or
    /// `"externalId"` when taken in this scope.
    pub async fn insert_member(
        &self,
        scope: &Scope,
        member: &Member,
        event: &NewEvent,
    ) -> Result<()> {
        todo!()
    }

    pub async fn get_member(&self, scope: &Scope, id: &MemberId) -> Result<Option<MemberView>> {
        todo!()
    }

    pub async fn get_member_by_email(
        &self,
        scope: &Scope,
        email: &Email,
    ) -> Result<Option<MemberView>> {
        todo!()
    }

    pub async fn get_member_by_external_id(
        &self,
        scope: &Scope,
        external_id: &str,
    ) -> Result<Option<MemberView>> {
        todo!()
    }

    pub async fn list_members(
        &self,
        scope: &Scope,
        filter: &MemberFilter,
        page: PageRequest,
    ) -> Result<Page<MemberView>> {
        todo!()
    }

    /// Loads a member, lets `change` decide the next state and its events (`None`: unchanged),
    /// and saves both in one transaction. Returns the member as it now stands.
    pub async fn update_member<F>(
        &self,
        scope: &Scope,
        id: &MemberId,
        change: F,
    ) -> Result<MemberView>
    where
        F: FnOnce(&Member) -> Result<Option<(Member, Vec<NewEvent>)>, DomainError> + Send,
    {
        todo!()
    }

    /// Deletes a member and their plan connections, recording `member.deleted`.
    pub async fn delete_member(&self, scope: &Scope, id: &MemberId, now: Timestamp) -> Result<()> {
        todo!()
    }
}
