//! Workers: claim → run → record loops that drain queues kept in the database.

pub mod webhooks;
