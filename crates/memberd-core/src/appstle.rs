//! Appstle's vocabulary for a plan connection, which Appstle calls a membership contract: its
//! status words, billing cycles and shape. One shape for the API face and for the `appstle`
//! webhook flavour, so the two cannot disagree.

use serde::Serialize;

use crate::{ConnectionStatus, ConnectionType, Interval, Timestamp};

/// Appstle writes cancelled the British way; the other states keep memberd's names.
pub fn status(s: ConnectionStatus) -> &'static str {
    match s {
        ConnectionStatus::Canceled => "CANCELLED",
        other => other.as_str(),
    }
}

/// Parses an Appstle status word (either spelling of cancelled).
pub fn parse_status(s: &str) -> Option<ConnectionStatus> {
    if s.eq_ignore_ascii_case("CANCELLED") {
        return Some(ConnectionStatus::Canceled);
    }
    ConnectionStatus::parse(s)
}

pub fn billing_cycle(kind: ConnectionType, interval: Option<Interval>) -> Option<&'static str> {
    match (kind, interval) {
        (ConnectionType::Free, _) | (_, None) => None,
        (_, Some(Interval::Day)) => Some("DAILY"),
        (_, Some(Interval::Week)) => Some("WEEKLY"),
        (_, Some(Interval::Month)) => Some("MONTHLY"),
        (_, Some(Interval::Year)) => Some("YEARLY"),
        (_, Some(Interval::Onetime)) => Some("ONE_TIME"),
    }
}

/// What a contract is made of, gathered by whoever renders one.
#[derive(Debug, Clone)]
pub struct ContractFacts {
    /// The contract's number: Appstle's ids are numeric.
    pub number: Option<i64>,
    pub connection_id: String,
    pub member_id: String,
    /// The member's `externalId`, Appstle's customer id.
    pub customer_id: Option<String>,
    pub plan_id: String,
    pub plan_name: Option<String>,
    pub status: ConnectionStatus,
    pub connection_type: ConnectionType,
    pub interval: Option<Interval>,
    pub interval_count: u32,
    pub amount: i64,
    pub currency: Option<String>,
    pub start_date: Timestamp,
    pub next_billing_date: Option<Timestamp>,
    pub end_date: Option<Timestamp>,
    pub cancel_reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Contract {
    pub id: Option<i64>,
    pub status: &'static str,
    pub membership_plan_name: Option<String>,
    /// `YYYY-MM-DD`
    pub next_billing_date: Option<String>,
    pub billing_cycle_type: Option<&'static str>,
    pub billing_cycle_count: u32,
    pub start_date: String,
    pub end_date: Option<String>,
    pub customer_id: Option<String>,
    pub plan_id: String,
    pub amount: i64,
    pub currency: Option<String>,
    pub cancellation_reason: Option<String>,
    pub member_id: String,
    pub plan_connection_id: String,
}

pub fn contract(f: ContractFacts) -> Contract {
    Contract {
        id: f.number,
        status: status(f.status),
        membership_plan_name: f.plan_name,
        next_billing_date: f.next_billing_date.map(Timestamp::to_date),
        billing_cycle_type: billing_cycle(f.connection_type, f.interval),
        billing_cycle_count: f.interval_count,
        start_date: f.start_date.to_date(),
        end_date: f.end_date.map(Timestamp::to_date),
        customer_id: f.customer_id,
        plan_id: f.plan_id,
        amount: f.amount,
        currency: f.currency,
        cancellation_reason: f.cancel_reason,
        member_id: f.member_id,
        plan_connection_id: f.connection_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_cycles_speak_appstle() {
        assert_eq!(status(ConnectionStatus::Canceled), "CANCELLED");
        assert_eq!(status(ConnectionStatus::Paused), "PAUSED");
        assert_eq!(parse_status("cancelled"), Some(ConnectionStatus::Canceled));
        assert_eq!(parse_status("CANCELED"), Some(ConnectionStatus::Canceled));
        assert_eq!(parse_status("GONE"), None);
        assert_eq!(
            billing_cycle(ConnectionType::Subscription, Some(Interval::Month)),
            Some("MONTHLY")
        );
        assert_eq!(billing_cycle(ConnectionType::Free, None), None);
    }
}
