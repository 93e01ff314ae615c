//! memberd's domain core: the types, the rules and the events of a membership server.
//!
//! Nothing here performs I/O. Inputs are parsed into types that are valid once they exist
//! (`Email::parse`, `MetaData::parse`, …), every change is a function from the old state and the
//! current time to the new state and the events it emits, and the store persists both in one
//! transaction. Time is always passed in, so that tests and test clocks control it.
#![forbid(unsafe_code)]

pub mod access;
pub mod account;
pub mod analytics;
pub mod appstle;
pub mod card;
pub mod codes;
pub mod connection;
pub mod email;
pub mod error;
pub mod event;
pub mod fields;
pub mod ids;
pub mod lifecycle;
pub mod mail;
pub mod member;
pub mod operator;
pub mod plan;
pub mod sending;
pub mod tenancy;
pub mod test_clock;
pub mod timestamp;
pub mod webhook;

pub use access::{AccessDecision, AccessQuery, AccessReason, Grant};
pub use account::{ContentType, EnvSettings, SecureContent, Session, SessionEnd, SettingsPatch};
pub use connection::{
    ConnectionCommand, ConnectionStatus, ConnectionType, PlanConnection, SavedConnection,
};
pub use email::Email;
pub use error::DomainError;
pub use event::{Event, EventKind, NewEvent};
pub use fields::{CustomFields, MetaData};
pub use ids::{
    AppId, AttemptId, AuditId, ConnectionId, DeliveryId, EmailId, EndpointId, EventId, KeyId,
    MemberId, OperatorId, PaymentId, PaymentMethodId, PlanId, PriceId, SessionId, TestClockId,
};
pub use member::{Member, MemberPatch, NewMember};
pub use plan::{Interval, Plan, PlanPatch, PlanStatus, PlanType, Price};
pub use tenancy::{Environment, Scope};
pub use test_clock::TestClock;
pub use timestamp::Timestamp;
