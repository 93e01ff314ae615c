//! Workers: claim → run → record loops that drain queues kept in the database.

pub mod scheduler;
pub mod webhooks;
