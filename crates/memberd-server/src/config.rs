use std::net::SocketAddr;
use std::time::Duration;

use crate::workers::email::MailerConfig;
use crate::workers::scheduler::SchedulerConfig;
use crate::workers::webhooks::DispatcherConfig;

/// The server's settings, validated once at start-up. The CLI fills it from flags and
/// `MEMBERD_*` environment variables.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where `memberd serve` listens.
    pub listen: SocketAddr,
    /// Requests per second each API key may make; 0 turns rate limiting off.
    pub rate_limit_per_second: u32,
    /// How many requests a key may make at once above the steady rate.
    pub rate_limit_burst: u32,
    /// The largest request body accepted, in bytes.
    pub body_limit_bytes: usize,
    /// How long a request may take before it is abandoned and answered with 503.
    pub request_timeout: Duration,
    /// Whether `serve` runs the workers (the webhook dispatcher and the lifecycle scheduler)
    /// in its own process.
    pub run_workers: bool,
    /// How the webhook dispatcher sends.
    pub webhooks: DispatcherConfig,
    /// How the lifecycle scheduler bills and retries.
    pub scheduler: SchedulerConfig,
    /// How many threads serve requests, each on a single-threaded runtime of its own, with
    /// writes handed to the runtime `serve` is called on (see `serving`); 0 serves on that
    /// runtime alone. SQLite only: on PostgreSQL requests are always served on that runtime.
    pub serving_threads: usize,
    /// The longest an access check's, membership status's or member's read is answered from
    /// memory. A change drops it at once (on PostgreSQL, on every node); this bounds how stale
    /// it can get should the connection that hears of changes die unnoticed. Zero turns
    /// caching off.
    pub read_cache_lifetime: Duration,
    /// Where the cluster's rate limits are kept, when not in the PostgreSQL database.
    pub redis_url: Option<RedisUrl>,
    /// The URL members' browsers and sites reach this server at: the issuer (`iss`) of member
    /// tokens. `None`: `http://` and the address `serve` listens on.
    pub public_url: Option<String>,
    /// How the member-facing API refuses guessing.
    pub logins: LoginLimits,
    /// The reverse proxies whose `X-Forwarded-For` names the client, for the limits per
    /// client address.
    pub trusted_proxies: crate::forwarded::TrustedProxies,
    /// How emails are sent, if at all.
    pub email: MailerConfig,
    /// Whether `/metrics` is served on the main listener too, without a key; otherwise only
    /// on a listener of its own (`serve_with_metrics`), if any.
    pub metrics_on_main_listener: bool,
}

/// Failed logins allowed per email address and per client address, and sign-ups per client
/// address, in each window; past them the member-facing API answers 429.
#[derive(Debug, Clone)]
pub struct LoginLimits {
    pub failures: u32,
    pub signups: u32,
    pub window: Duration,
    /// Emails the member-facing API sends per client address in an hour.
    pub email_sends: u32,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            failures: 5,
            signups: 20,
            window: Duration::from_secs(15 * 60),
            email_sends: 30,
        }
    }
}

impl Config {
    /// The issuer of member tokens.
    pub fn issuer(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
                let mut addr = self.listen;
                if addr.ip().is_unspecified() {
                    addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{addr}")
            }
        }
    }
}

/// A Redis URL, which may carry a password: never printed whole.
#[derive(Clone)]
pub struct RedisUrl(pub String);

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = match self.0.split_once('@') {
            Some((_, host)) => format!("redis://…@{host}"),
            None => self.0.clone(),
        };
        f.write_str(&shown)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            rate_limit_per_second: 100,
            rate_limit_burst: 200,
            body_limit_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            run_workers: true,
            webhooks: DispatcherConfig::default(),
            scheduler: SchedulerConfig::default(),
            serving_threads: 0,
            read_cache_lifetime: Duration::from_secs(1),
            redis_url: None,
            public_url: None,
            logins: LoginLimits::default(),
            trusted_proxies: Default::default(),
            email: MailerConfig::default(),
            metrics_on_main_listener: false,
        }
    }
}
