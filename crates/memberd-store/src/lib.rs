//! memberd's persistence: one `Store` over SQLite (the embedded default) or PostgreSQL.
//!
//! Both backends run the same SQL through sqlx's `Any` driver: the schema keeps to types both
//! share (integers, text; timestamps as microseconds, JSON as text), so one implementation and
//! one test suite cover both, and they cannot drift apart. Each backend has its own migrations
//! folder, kept in step. Every change is written together with its events in one transaction:
//! the event log is the outbox.
#![forbid(unsafe_code)]

mod accounts;
mod apps;
mod backup;
mod codes;
mod connections;
mod contracts;
mod emails;
mod error;
mod events;
mod figures;
mod gauges;
mod idempotency;
mod import;
mod import_sqlite;
mod key_cache;
mod members;
mod operators;
mod page;
mod payment_methods;
mod payments;
mod plans;
mod pool;
mod rate_limits;
mod read_cache;
mod reads;
mod rows;
mod scheduler;
mod secure_content;
mod sql;
mod test_clocks;
mod wal_index;
mod webhooks;

pub use accounts::{ClientEnv, PublishableKey, SigningKeyRow};
pub use apps::{ApiKey, App, KeyOwner, PartnerKey};
pub use backup::{check_backup, sqlite_file};
pub use codes::CodeIssued;
pub use connections::{ConnectionRequest, ConnectionView};
pub use contracts::{ContractFilter, ContractView};
pub use emails::{DueEmail, EmailOutcome, EmailRecord, StoredTemplate};
pub use error::StoreError;
pub use events::EventBrowse;
pub use gauges::{PoolGauge, WebhookBacklog};
pub use idempotency::{answering, IdempotencyClaim, IdempotencyState};
pub use import::Taken;
pub use members::{MemberFilter, MemberView};
pub use operators::{AuditPage, LinkFor};
pub use page::{Cursor, EventCursor, Order, Page, PageCursor, PageRequest};
pub use payment_methods::PaymentMethod;
pub use payments::Payment;
pub use plans::PlanFilter;
pub use pool::{Backend, Store, StoreOptions};
pub use rate_limits::TokensTaken;
pub use read_cache::CacheCounts;
pub use scheduler::{Applied, ClaimedConnection, DueBy, DueContext};
pub use webhooks::{AttemptFilter, AttemptRecord, AttemptResult, DeliveryNext, DueDelivery};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
