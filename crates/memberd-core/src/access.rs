//! The access check: may this member pass? The hottest path of a membership server, so it
//! works on the few facts the store hands it and allocates little.

use crate::{ConnectionId, ConnectionStatus, PlanId};

/// What a member is asked to have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessQuery {
    /// A permission granted by a plan or directly.
    Permission(String),
    /// A given plan.
    Plan(PlanId),
    /// Any active plan at all.
    AnyPlan,
}

/// One of the member's plan connections, with what its plan grants.
#[derive(Debug, Clone)]
pub struct Grant {
    pub connection_id: ConnectionId,
    pub plan_id: PlanId,
    pub status: ConnectionStatus,
    pub permissions: Vec<String>,
}

/// Why access was given or refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessReason {
    /// A plan connection that grants access matched.
    PlanConnection,
    /// The permission was granted to the member directly.
    MemberPermission,
    /// A matching plan connection exists but its status grants no access.
    PlanConnectionInactive,
    /// Nothing the member holds matches.
    NoMatch,
}

impl AccessReason {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessReason::PlanConnection => "plan_connection",
            AccessReason::MemberPermission => "member_permission",
            AccessReason::PlanConnectionInactive => "plan_connection_inactive",
            AccessReason::NoMatch => "no_match",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessDecision {
    pub allowed: bool,
    pub reason: AccessReason,
    /// The connection that decided, if one did: the one that grants access, or else the
    /// matching one that would have, had it been active.
    pub connection: Option<(ConnectionId, PlanId, ConnectionStatus)>,
}

fn matches(grant: &Grant, query: &AccessQuery) -> bool {
    match query {
        AccessQuery::Permission(p) => grant.permissions.iter().any(|g| g == p),
        AccessQuery::Plan(id) => &grant.plan_id == id,
        AccessQuery::AnyPlan => true,
    }
}

/// Decides access from the member's direct permissions and plan connections.
pub fn check(
    member_permissions: &[String],
    grants: &[Grant],
    query: &AccessQuery,
) -> AccessDecision {
    let mut inactive: Option<&Grant> = None;
    for grant in grants.iter().filter(|g| matches(g, query)) {
        if grant.status.grants_access() {
            return AccessDecision {
                allowed: true,
                reason: AccessReason::PlanConnection,
                connection: Some((
                    grant.connection_id.clone(),
                    grant.plan_id.clone(),
                    grant.status,
                )),
            };
        }
        inactive = inactive.or(Some(grant));
    }
    if let AccessQuery::Permission(p) = query {
        if member_permissions.iter().any(|g| g == p) {
            return AccessDecision {
                allowed: true,
                reason: AccessReason::MemberPermission,
                connection: None,
            };
        }
    }
    match inactive {
        Some(g) => AccessDecision {
            allowed: false,
            reason: AccessReason::PlanConnectionInactive,
            connection: Some((g.connection_id.clone(), g.plan_id.clone(), g.status)),
        },
        None => AccessDecision {
            allowed: false,
            reason: AccessReason::NoMatch,
            connection: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(status: ConnectionStatus, perms: &[&str]) -> Grant {
        Grant {
            connection_id: ConnectionId::generate(),
            plan_id: PlanId::generate(),
            status,
            permissions: perms.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn an_active_connection_wins_over_an_inactive_one() {
        let grants = [
            grant(ConnectionStatus::Canceled, &["gold"]),
            grant(ConnectionStatus::PastDue, &["gold"]),
        ];
        let d = check(&[], &grants, &AccessQuery::Permission("gold".into()));
        assert!(d.allowed);
        assert_eq!(d.connection.unwrap().2, ConnectionStatus::PastDue);
    }

    #[test]
    fn refusals_say_why() {
        let grants = [grant(ConnectionStatus::Paused, &["gold"])];
        let d = check(&[], &grants, &AccessQuery::Plan(grants[0].plan_id.clone()));
        assert_eq!(
            (d.allowed, d.reason),
            (false, AccessReason::PlanConnectionInactive)
        );
        let d = check(&[], &grants, &AccessQuery::Permission("silver".into()));
        assert_eq!((d.allowed, d.reason), (false, AccessReason::NoMatch));
        let d = check(
            &["silver".into()],
            &grants,
            &AccessQuery::Permission("silver".into()),
        );
        assert_eq!(
            (d.allowed, d.reason),
            (true, AccessReason::MemberPermission)
        );
    }
}
