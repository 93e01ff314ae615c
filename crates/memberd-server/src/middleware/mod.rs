//! What runs around every authenticated request: the key check, the rate limit, and the replay
//! of idempotent POSTs, in that order.

pub mod auth;
pub mod idempotency;
pub mod rate_limit;
