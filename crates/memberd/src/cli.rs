//! The command line. Every setting has a flag, a `MEMBERD_*` environment variable, a key in
//! memberd.toml (see `config.rs`) and a default that works on a fresh machine.
//!
//! The settings' types are also (de)serialized, so that figment can layer them: a key of the
//! file is the setting's field name here.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::config::{between, retry_days};

#[derive(Debug, Parser)]
#[command(
    name = "memberd",
    version,
    about = "A self-hosted membership server: members, plans, subscriptions, access checks and a change feed.",
    long_about = None
)]
pub struct Cli {
    /// The settings file; by default memberd.toml in the working directory, when there is one.
    /// Its settings come before the environment's and the flags'.
    #[arg(long, global = true, env = "MEMBERD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// The settings every command reads.
#[derive(Debug, Args, Serialize, Deserialize)]
pub struct GlobalArgs {
    /// The database: a SQLite file (`sqlite:memberd.db`, or just a path) or PostgreSQL
    /// (`postgres://user@host/db`).
    #[arg(
        long,
        global = true,
        env = "MEMBERD_DATABASE_URL",
        default_value = "sqlite:memberd.db"
    )]
    pub database_url: String,

    /// The most connections this process keeps open to PostgreSQL. Nodes that share one
    /// database share what it serves well: divide it among them (see README, "Several
    /// nodes"). SQLite ignores it.
    #[arg(
        long,
        global = true,
        env = "MEMBERD_DATABASE_CONNECTIONS",
        default_value_t = 16
    )]
    #[serde(deserialize_with = "between::<_, u32, 1, 1000>")]
    pub database_connections: u32,

    /// How logs are written to standard error.
    #[arg(long, global = true, env = "MEMBERD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrating the database first). On an empty database, creates a
    /// default app and prints its keys, once.
    Serve(ServeArgs),
    /// Run only the workers (the webhook dispatcher), for running them apart from the API or
    /// on several machines over one PostgreSQL database.
    Worker(WorkerArgs),
    /// Bring the database schema up to date, then exit.
    Migrate(MigrateArgs),
    /// Write a consistent copy of a SQLite database, while it serves, to a new file. (On
    /// PostgreSQL, use pg_dump.)
    Backup {
        /// The file to write; it must not exist yet.
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
    },
    /// Put a backup made by `memberd backup` into the SQLite database path of --database-url,
    /// which must hold no database yet; then bring its schema up to date. (On PostgreSQL, use
    /// pg_restore.)
    Restore {
        /// The backup to restore.
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
    },
    /// Manage apps: the tenants, each with a live and a sandbox environment.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Manage secret API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage the keys that sign members' session tokens (published at /.well-known/jwks.json).
    #[command(subcommand)]
    SigningKeys(SigningKeysCommand),
    /// Manage partner keys: the `X-App-Key` of an integration that works with every store.
    #[command(subcommand)]
    Partners(PartnersCommand),
    /// Manage operators: the people who sign in to the dashboard at /dashboard.
    #[command(subcommand)]
    Operators(OperatorsCommand),
    /// Load members from a JSON Lines or CSV file into one environment of an app.
    ///
    /// Each row is a member as `POST /v1/members` takes it, checked by the same rules. Rows
    /// that are not valid, or whose email or externalId is already taken, are reported with
    /// their line number and skipped; the others are imported. No events are recorded and no
    /// webhooks are sent for imported members (a bulk load must not send a welcome email to
    /// every one of them). Exits with 0 when every row was imported, 1 otherwise.
    #[command(after_help = IMPORT_FORMATS)]
    Import(ImportArgs),
    /// Write every member of one environment, with their plan connections, to a file.
    ///
    /// The file is what `memberd import` reads back: importing it into an environment that
    /// has the same plans (the same database, or a copy) gives the same members, with their
    /// ids, times and plan connections. Members are read a page at a time while the server
    /// runs, so memory stays flat for any size. Payment methods, sessions and test clocks are
    /// not exported.
    Export(ExportArgs),
    /// Check or show the settings `memberd serve` runs with: built-in defaults, then
    /// memberd.toml (or --config), then MEMBERD_* variables, then flags.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the settings (the file's, the environment's and these flags') as `memberd serve`
    /// would at start, and start nothing. Exits with 2, naming each wrong setting, when one is.
    Check(ServeArgs),
    /// Print the settings in effect, as a memberd.toml, with where each comes from; passwords
    /// in URLs are masked.
    Show(ServeArgs),
}

const IMPORT_FORMATS: &str = "\
Formats:
  jsonl  one JSON object per line: {\"email\":\"ann@example.com\",\"externalId\":\"c1\",\"customFields\":{\"plan\":\"gold\"}}
  csv    a header row naming the columns: email, password, verified, externalId,
         stripeCustomerId, loginRedirect, profileImage, json, permissions (comma-separated),
         customFields.KEY and metaData.KEY; an empty cell means the field is absent.
  Both also take what `memberd export` writes: id, passwordHash, lastLogin, createdAt,
  updatedAt and planConnections (in CSV, customFields, metaData and planConnections as JSON).
  Plan connections must name plans of the environment.";

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The app (`app_…`) whose members to export.
    #[arg(long)]
    pub app: String,
    /// The environment to export.
    #[arg(long, value_enum)]
    pub env: EnvArg,
    /// The format; by default, from the file's extension (.jsonl, .ndjson, .json, .csv), and
    /// JSON Lines on standard output.
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// Also write each member's password hash (argon2), so that they can still log in after
    /// an import into another database. The file then holds secrets: keep it as such.
    #[arg(long)]
    pub with_password_hashes: bool,
    /// Write over FILE if it exists.
    #[arg(long)]
    pub force: bool,
    /// The file to write; `-` or nothing writes to standard output.
    #[arg(value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// List the migrations that would run, and run none.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The app (`app_…`) whose members these are.
    #[arg(long)]
    pub app: String,
    /// The environment to load the members into.
    #[arg(long, value_enum)]
    pub env: EnvArg,
    /// The file's format; by default, from its extension (.jsonl, .ndjson, .json, .csv).
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// Also write the rejected rows, as they were, to this file (for CSV, after the header),
    /// so that they can be fixed and imported again.
    #[arg(long, value_name = "PATH")]
    pub rejects: Option<std::path::PathBuf>,
    /// Make new ids for the members and their plan connections, rather than keep those the
    /// file gives (to import an export into another environment of the same database).
    #[arg(long)]
    pub new_ids: bool,
    /// The file to read; `-` reads standard input (then give --format).
    #[arg(value_name = "FILE")]
    pub file: std::path::PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImportFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "MEMBERD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Requests per second each API key may make; 0 turns rate limiting off.
    #[arg(long, env = "MEMBERD_RATE_LIMIT_PER_SECOND", default_value_t = 100)]
    pub rate_limit_per_second: u32,

    /// Requests a key may make in a burst above the steady rate.
    #[arg(long, env = "MEMBERD_RATE_LIMIT_BURST", default_value_t = 200)]
    pub rate_limit_burst: u32,

    /// The largest request body accepted, in bytes.
    #[arg(long, env = "MEMBERD_BODY_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub body_limit_bytes: usize,

    /// How long a request may run, in seconds, before it is answered with 503.
    #[arg(long, env = "MEMBERD_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Do not run the workers in this process (run `memberd worker` elsewhere).
    #[arg(long, env = "MEMBERD_NO_WORKERS")]
    pub no_workers: bool,

    /// Threads that read requests, each on its own single-threaded runtime, on SQLite
    /// (default: one per core; 0 serves everything on the shared runtime). Writes and the
    /// workers always run on the shared runtime; PostgreSQL serves on it alone.
    #[arg(long, env = "MEMBERD_SERVING_THREADS")]
    pub serving_threads: Option<usize>,

    /// The longest an access check, membership status or member is answered from memory, in
    /// milliseconds. Any change to its data ends it sooner (on PostgreSQL, on every node); on
    /// PostgreSQL this bounds how stale it could get if that news stopped arriving. 0 turns
    /// the cache off.
    #[arg(long, env = "MEMBERD_READ_CACHE_MS", default_value_t = 1000)]
    pub read_cache_ms: u64,

    /// Keep the cluster's rate limits in this Redis (redis://[:PASSWORD@]HOST:PORT[/DB])
    /// instead of the PostgreSQL database. On SQLite, where one process serves, they are
    /// kept in that process.
    #[arg(long, env = "MEMBERD_REDIS_URL")]
    pub redis_url: Option<String>,

    /// The URL members' browsers and your sites reach this server at, such as
    /// `https://members.example.com`: the issuer (`iss`) of member tokens. By default
    /// `http://` and the address it listens on; set it in production.
    #[arg(long, env = "MEMBERD_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Failed logins allowed per email address and per client address in each window, before
    /// logins from there are answered with 429.
    #[arg(long, env = "MEMBERD_LOGIN_FAILURE_LIMIT", default_value_t = 5)]
    #[serde(deserialize_with = "between::<_, u32, 1, 4294967295>")]
    pub login_failure_limit: u32,

    /// Member sign-ups allowed per client address in each window.
    #[arg(long, env = "MEMBERD_SIGNUP_LIMIT", default_value_t = 20)]
    #[serde(deserialize_with = "between::<_, u32, 1, 4294967295>")]
    pub signup_limit: u32,

    /// The window of the login and sign-up limits, in seconds.
    #[arg(long, env = "MEMBERD_LOGIN_WINDOW_SECS", default_value_t = 900)]
    #[serde(deserialize_with = "between::<_, u64, 1, 18446744073709551615>")]
    pub login_window_secs: u64,

    /// Emails (reset and login codes, verification links) the member-facing API sends per
    /// client address in an hour. Each address also gets at most one of a kind a minute and
    /// ten a day.
    #[arg(long, env = "MEMBERD_EMAIL_SEND_LIMIT", default_value_t = 30)]
    #[serde(deserialize_with = "between::<_, u32, 1, 4294967295>")]
    pub email_send_limit: u32,

    /// A reverse proxy (an address such as 127.0.0.1, or a network such as 10.0.0.0/8) whose
    /// X-Forwarded-For header names the client, for the limits per client address; repeat it
    /// or separate with commas. Without one the header is ignored.
    #[arg(
        long,
        env = "MEMBERD_TRUSTED_PROXY",
        value_delimiter = ',',
        value_name = "ADDRESS"
    )]
    #[serde(default)]
    pub trusted_proxy: Vec<String>,

    /// Serve Prometheus metrics at /metrics on this address of their own, such as
    /// 127.0.0.1:9090. No key is asked for there: keep it off the public network.
    #[arg(long, env = "MEMBERD_METRICS_LISTEN", value_name = "ADDRESS")]
    pub metrics_listen: Option<SocketAddr>,

    /// Serve /metrics on the main listener too, without a key (anyone who reaches the
    /// server reads it; the figures carry no ids, emails or keys).
    #[arg(long, env = "MEMBERD_METRICS_ON_MAIN_LISTENER")]
    pub metrics_on_main_listener: bool,

    #[command(flatten)]
    #[serde(skip)]
    pub email: EmailArgs,

    #[command(flatten)]
    #[serde(skip)]
    pub webhooks: WebhookArgs,

    #[command(flatten)]
    #[serde(skip)]
    pub billing: BillingArgs,
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct WorkerArgs {
    /// Serve the workers' Prometheus metrics at /metrics on this address, such as
    /// 127.0.0.1:9101. No key is asked for there: keep it off the public network.
    #[arg(long, env = "MEMBERD_METRICS_LISTEN", value_name = "ADDRESS")]
    pub metrics_listen: Option<SocketAddr>,

    #[command(flatten)]
    #[serde(skip)]
    pub email: EmailArgs,

    #[command(flatten)]
    #[serde(skip)]
    pub webhooks: WebhookArgs,

    #[command(flatten)]
    #[serde(skip)]
    pub billing: BillingArgs,
}

#[derive(Debug, Default, Args, Serialize, Deserialize)]
pub struct BillingArgs {
    /// Days between a failed charge and each retry, comma-separated; the charge after the
    /// last retry is the last one tried.
    #[arg(
        long,
        env = "MEMBERD_DUNNING_RETRY_DAYS",
        value_delimiter = ',',
        default_value = "1,3,5"
    )]
    #[serde(deserialize_with = "retry_days")]
    pub dunning_retry_days: Vec<u32>,

    /// What a subscription becomes when its last retry fails: CANCELED ends it, UNPAID keeps
    /// it (without access) until it is canceled or paid.
    #[arg(long, env = "MEMBERD_DUNNING_FINAL_STATUS", value_enum, default_value_t = FinalStatus::Canceled)]
    pub dunning_final_status: FinalStatus,
}

#[derive(Debug, Default, Clone, Copy, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinalStatus {
    #[default]
    Canceled,
    Unpaid,
}

#[derive(Debug, Default, Args, Serialize, Deserialize)]
pub struct EmailArgs {
    /// The SMTP server emails to members go through: `smtp://HOST[:25]`,
    /// `smtp://USER:PASS@HOST:587?tls=starttls` or `smtps://USER:PASS@HOST[:465]`. Without
    /// one, emails are kept unsent and listed by `GET /v1/emails`.
    #[arg(long, env = "MEMBERD_SMTP_URL")]
    pub smtp_url: Option<String>,

    /// Who emails come from when an app names no sender of its own, such as
    /// `Example <no-reply@example.com>`. By default `memberd <no-reply@HOST>` of --public-url.
    #[arg(long, env = "MEMBERD_EMAIL_FROM")]
    pub email_from: Option<String>,

    /// How long the SMTP server may take to take an email, in seconds.
    #[arg(long, env = "MEMBERD_SMTP_TIMEOUT_SECS", default_value_t = 30)]
    #[serde(deserialize_with = "between::<_, u64, 1, 600>")]
    pub smtp_timeout_secs: u64,
}

#[derive(Debug, Default, Args, Serialize, Deserialize)]
pub struct WebhookArgs {
    /// Let webhooks reach loopback, private and link-local addresses (for a receiver on this
    /// machine or your own network). Off by default: a guard against request forgery.
    #[arg(long, env = "MEMBERD_ALLOW_PRIVATE_WEBHOOK_TARGETS")]
    pub allow_private_webhook_targets: bool,

    /// How long a webhook receiver may take to answer, in seconds.
    #[arg(long, env = "MEMBERD_WEBHOOK_TIMEOUT_SECS", default_value_t = 15)]
    pub webhook_timeout_secs: u64,

    /// How many webhook deliveries are sent at once.
    #[arg(long, env = "MEMBERD_WEBHOOK_CONCURRENCY", default_value_t = 64)]
    pub webhook_concurrency: usize,
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Create an app with a sandbox and a live key, and print the keys once.
    Create {
        /// A name to know the app by.
        #[arg(long)]
        name: String,
        /// The Shopify store the app serves, such as `your-store.myshopify.com`.
        #[arg(long)]
        shop: Option<String>,
    },
    /// List the apps.
    List,
    /// Change an app: its direct API access, and the member-facing API's settings of one
    /// environment (--env).
    #[command(
        after_help = "Example: memberd apps update app_… --env live --allowed-origins https://example.com,https://www.example.com"
    )]
    Update {
        /// The app (`app_…`).
        id: String,
        /// Whether the store's merchant keys work on their own; without it they need a partner key.
        #[arg(long, value_enum)]
        api_access: Option<Switch>,
        /// The environment whose member-facing settings change.
        #[arg(long, value_enum, default_value_t = EnvArg::Sandbox)]
        env: EnvArg,
        /// The site origins browsers may call the member-facing API from, comma-separated
        /// (`https://example.com`, `http://localhost:*` for any port); `default` for the
        /// environment's default (sandbox: the loopback origins; live: none).
        #[arg(long, value_delimiter = ',')]
        allowed_origins: Option<Vec<String>>,
        /// Whether members may sign up themselves.
        #[arg(long, value_enum)]
        signup: Option<Switch>,
        /// How long a member's session lasts, in days (1 to 365).
        #[arg(long)]
        session_lifetime_days: Option<i64>,
        /// The shortest password a member may choose (6 to 128).
        #[arg(long)]
        password_min_length: Option<i64>,
        /// The name emails to members come from; `default` for the server's --email-from.
        #[arg(long)]
        email_from_name: Option<String>,
        /// The address emails to members come from; `default` for the server's --email-from.
        #[arg(long)]
        email_from_address: Option<String>,
        /// Where a member who clicked an email verification link is sent (an http(s) URL);
        /// `default` for a page saying it worked.
        #[arg(long)]
        verify_redirect_url: Option<String>,
    },
    /// Show an app's environments: their publishable keys and member-facing settings.
    Show {
        /// The app (`app_…`).
        id: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

#[derive(Debug, Subcommand)]
pub enum PartnersCommand {
    /// Create a partner key and print it once.
    Create {
        /// The integration's name.
        #[arg(long)]
        name: String,
    },
    /// List partner keys (never their secrets).
    List,
    /// Revoke a partner key: it stops working at once.
    Revoke {
        /// The key's id (`ptn_…`), as `memberd partners list` shows it.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SigningKeysCommand {
    /// Start signing new tokens with a new key. The old keys stay published until the tokens
    /// they signed have expired, so no member is logged out; running servers take the new
    /// key within 30 seconds.
    Rotate,
    /// List the signing keys (never their private halves).
    List,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a secret key for one environment of an app, and print it once.
    Create {
        /// The app (`app_…`).
        #[arg(long)]
        app: String,
        /// The environment whose data the key reaches.
        #[arg(long, value_enum, default_value_t = EnvArg::Sandbox)]
        env: EnvArg,
        /// A name to know the key by.
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// List keys (never their secrets), and each environment's publishable key.
    List {
        /// Only the keys of this app (`app_…`).
        #[arg(long)]
        app: Option<String>,
    },
    /// Revoke a key: running servers refuse it within a second.
    Revoke {
        /// The key's id (`key_…`), as `memberd keys list` shows it.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum OperatorsCommand {
    /// Add an operator and print the one-time link (good for 24 hours) where they set their
    /// password.
    Create {
        /// Their email address: what they sign in with.
        #[arg(long)]
        email: String,
        /// owner (everything), admin (everything but operators and keys) or viewer (reads only).
        #[arg(long, value_enum)]
        role: RoleArg,
        /// An app (`app_…`) they may enter; repeat for several. Without it, every app.
        #[arg(long = "app")]
        apps: Vec<String>,
        #[command(flatten)]
        public: PublicUrlArgs,
    },
    /// Print a new one-time link that sets an operator's password (a forgotten one).
    Link {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        public: PublicUrlArgs,
    },
    /// List the operators, their roles and apps.
    List,
    /// Remove an operator: their sign-ins end at once.
    Delete {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Args, Serialize, Deserialize)]
pub struct PublicUrlArgs {
    /// The URL operators reach memberd at, to print the link under (the server's
    /// --public-url); `http://127.0.0.1:8080` when not given.
    #[arg(long, env = "MEMBERD_PUBLIC_URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Owner,
    Admin,
    Viewer,
}

impl From<RoleArg> for memberd_core::operator::Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Owner => memberd_core::operator::Role::Owner,
            RoleArg::Admin => memberd_core::operator::Role::Admin,
            RoleArg::Viewer => memberd_core::operator::Role::Viewer,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum EnvArg {
    Sandbox,
    Live,
}

impl From<EnvArg> for memberd_core::Environment {
    fn from(env: EnvArg) -> Self {
        match env {
            EnvArg::Sandbox => memberd_core::Environment::Sandbox,
            EnvArg::Live => memberd_core::Environment::Live,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
