//! The API test suite: the real server over HTTP on a random port. Every case runs on a fresh
//! SQLite file and on a fresh PostgreSQL database (when MEMBERD_TEST_POSTGRES_URL is set).
//! `cli` and `readme` run the built binary as an operator and a new user would.

mod support;

mod access;
mod appstle;
mod auth;
mod backup;
mod bad_input;
mod billing;
mod cli;
mod cli_accounts;
mod config_file;
mod connections;
mod dashboard;
mod dashboard_browser;
mod email_delivery;
mod events;
mod idempotency;
mod idempotency_crash;
mod import;
mod isolation;
mod lifecycle;
mod member_access;
mod member_accounts;
mod member_emails;
mod member_logins;
mod member_sessions;
mod member_tokens;
mod members;
mod memberstack_dom;
mod memberstack_sdk;
mod memberstack_v1;
mod memberstack_v2;
mod metrics;
mod no_event_lost;
mod openapi;
mod plans;
mod probe;
mod readme;
mod receiver;
mod scale_out;
mod smtp;
mod webhooks;
