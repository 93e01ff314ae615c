//! Webhooks in the store: endpoints, the deliveries the dispatcher fans the event log out
//! into, and the log of every attempt.

mod attempts;
mod deliveries;
mod endpoints;

pub use deliveries::{AttemptFilter, AttemptRecord, AttemptResult, DeliveryNext, DueDelivery};
