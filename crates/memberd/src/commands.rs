//! What each command does. The work itself lives in the library crates; this file opens the
//! database, calls them, and prints for a person.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::error::ErrorKind;
use clap::CommandFactory;
use memberd_core::lifecycle::DunningPolicy;
use memberd_core::AppId;
use memberd_core::ConnectionStatus;
use memberd_server::ops::{self, NewKey};
use memberd_server::workers::email::{MailerConfig, SmtpUrl};
use memberd_server::workers::scheduler::SchedulerConfig;
use memberd_server::workers::webhooks::DispatcherConfig;
use memberd_server::Config;
use memberd_store::{Store, StoreOptions};
use tokio::net::TcpListener;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::cli::{
    BillingArgs, Cli, Command, ConfigCommand, EmailArgs, FinalStatus, ImportArgs, LogFormat,
    ServeArgs, WebhookArgs,
};
use crate::config::Settings;

/// Runs a command. Most exit with success or an error; `import` exits with 1 when it rejected
/// rows.
pub async fn run(cli: Cli, settings: Settings) -> anyhow::Result<ExitCode> {
    let _logs = init_logging(cli.global.log_format);
    let db = Database {
        url: database_url(&cli.global.database_url),
        options: StoreOptions {
            postgres_connections: cli.global.database_connections,
        },
    };
    if let Some(file) = &settings.file {
        tracing::debug!(file = %file.path.display(), "settings read");
    }
    match cli.command {
        Command::Config(ConfigCommand::Check(args)) => return check_config(&settings, &args),
        Command::Config(ConfigCommand::Show(_)) => {
            print!("{}", settings.show());
            return Ok(ExitCode::SUCCESS);
        }
        Command::Import(args) => return import(&db, args).await,
        Command::Export(args) => {
            let store = open(&db).await?;
            let result = crate::export::run(&store, args).await;
            store.close().await;
            return result;
        }
        Command::Serve(args) => serve(&db, args, &settings).await,
        Command::Worker(args) => {
            let store = open(&db).await?;
            let config = Config {
                email: mailer_config(&args.email)?,
                webhooks: dispatcher_config(&args.webhooks),
                scheduler: scheduler_config(&args.billing),
                ..Config::default()
            };
            let metrics = metrics_listener(args.metrics_listen).await?;
            println!(
                "memberd {} worker is running (database: {})",
                env!("CARGO_PKG_VERSION"),
                redact(&db.url)
            );
            if let Some(metrics) = &metrics {
                println!("  metrics: http://{}/metrics", metrics.local_addr()?);
            }
            memberd_server::run_workers(config, store.clone(), metrics, shutdown_signal()).await?;
            store.close().await;
            Ok(())
        }
        Command::Migrate(args) if args.dry_run => {
            let store = Store::connect_with(&db.url, db.options)
                .await
                .with_context(|| format!("could not open the database {}", redact(&db.url)))?;
            let pending = store.pending_migrations().await;
            store.close().await;
            let pending = pending?;
            if pending.is_empty() {
                println!(
                    "The database is up to date ({}): no migration would run.",
                    redact(&db.url)
                );
            } else {
                println!(
                    "{} migration(s) would run on {}:",
                    pending.len(),
                    redact(&db.url)
                );
                for (version, description) in pending {
                    println!("  {version:04} {description}");
                }
            }
            Ok(())
        }
        Command::Migrate(_) => {
            let store = open(&db).await?;
            store.close().await;
            println!("The database is up to date ({}).", redact(&db.url));
            Ok(())
        }
        Command::Backup { file } => crate::backup::backup(&db, &file).await,
        Command::Restore { file } => crate::backup::restore(&db, &file).await,
        Command::Apps(command) => {
            let store = open(&db).await?;
            let result = crate::apps::apps(&store, command).await;
            store.close().await;
            result
        }
        Command::Keys(command) => {
            let store = open(&db).await?;
            let result = crate::apps::keys(&store, command).await;
            store.close().await;
            result
        }
        Command::SigningKeys(command) => {
            let store = open(&db).await?;
            let result = crate::accounts::signing_keys(&store, command).await;
            store.close().await;
            result
        }
        Command::Partners(command) => {
            let store = open(&db).await?;
            let result = crate::apps::partners(&store, command).await;
            store.close().await;
            result
        }
        Command::Operators(command) => {
            let store = open(&db).await?;
            let result = crate::operators::run(&store, command).await;
            store.close().await;
            result
        }
    }
    .map(|()| ExitCode::SUCCESS)
}

async fn import(db: &Database, args: ImportArgs) -> anyhow::Result<ExitCode> {
    // Settled before the database is opened: a usage error, as clap reports its own.
    let format = crate::import::format_of(&args).unwrap_or_else(|message| {
        let command = Cli::command();
        let mut import = match command.find_subcommand("import") {
            Some(import) => import.clone().bin_name("memberd import"),
            None => command,
        };
        import.error(ErrorKind::ValueValidation, message).exit()
    });
    let store = open(db).await?;
    let result = crate::import::run(&store, args, format).await;
    store.close().await;
    result
}

/// Logs go to standard error from a thread of their own, which writes what has piled up in
/// one go: a line per request, written by the request's own thread, cost a fifth of the
/// access check's throughput. Nothing is dropped (a full queue makes loggers wait); the lines
/// still queued are written when the returned guard is dropped.
fn init_logging(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_env("MEMBERD_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("memberd-logs")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    guard
}

/// The listener of `--metrics-listen`, when given.
async fn metrics_listener(at: Option<std::net::SocketAddr>) -> anyhow::Result<Option<TcpListener>> {
    match at {
        Some(at) => {
            Ok(Some(TcpListener::bind(at).await.with_context(|| {
                format!("could not listen on {at} for /metrics")
            })?))
        }
        None => Ok(None),
    }
}

/// A bare path means a SQLite file.
fn database_url(raw: &str) -> String {
    let is_url = ["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|scheme| raw.starts_with(scheme));
    if is_url {
        raw.to_owned()
    } else {
        format!("sqlite:{raw}")
    }
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, rest)), Some(at)) => {
            let userinfo = &rest[..at - scheme.len() - 3];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{}", &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// The database a command works on.
pub(crate) struct Database {
    pub(crate) url: String,
    options: StoreOptions,
}

/// Opens the database and brings its schema up to date.
pub(crate) async fn open(db: &Database) -> anyhow::Result<Store> {
    let url = &db.url;
    let store = Store::connect_with(url, db.options)
        .await
        .with_context(|| format!("could not open the database {}", redact(url)))?;
    store
        .migrate()
        .await
        .with_context(|| format!("could not migrate the database {}", redact(url)))?;
    Ok(store)
}

/// `memberd config check`: what `serve` checks before it opens the database.
fn check_config(settings: &Settings, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let from = match &settings.file {
        Some(file) => file.path.display().to_string(),
        None => format!(
            "no settings file ({} is not here)",
            crate::config::DEFAULT_FILE
        ),
    };
    match serve_config(args, settings) {
        Ok(_) => {
            println!("The settings are valid: built-in defaults, then {from}, then MEMBERD_* variables, then flags.");
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            eprintln!("error: {err:#}");
            Ok(ExitCode::from(2))
        }
    }
}

/// The server's configuration, and the sender of its emails, from its settings; the errors
/// name the setting's origin (a line of the file, a variable or a flag).
fn serve_config(args: &ServeArgs, settings: &Settings) -> anyhow::Result<(Config, String)> {
    let config = Config {
        listen: args.listen,
        rate_limit_per_second: args.rate_limit_per_second,
        rate_limit_burst: args.rate_limit_burst,
        body_limit_bytes: args.body_limit_bytes,
        request_timeout: Duration::from_secs(args.request_timeout_secs.max(1)),
        run_workers: !args.no_workers,
        webhooks: dispatcher_config(&args.webhooks),
        scheduler: scheduler_config(&args.billing),
        serving_threads: args
            .serving_threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        read_cache_lifetime: Duration::from_millis(args.read_cache_ms),
        redis_url: args.redis_url.clone().map(memberd_server::config::RedisUrl),
        public_url: args
            .public_url
            .as_deref()
            .map(parse_public_url)
            .transpose()
            .with_context(|| settings.named("public_url"))?,
        logins: memberd_server::config::LoginLimits {
            failures: args.login_failure_limit,
            signups: args.signup_limit,
            window: Duration::from_secs(args.login_window_secs),
            email_sends: args.email_send_limit,
        },
        trusted_proxies: memberd_server::forwarded::TrustedProxies::parse(&args.trusted_proxy)
            .map_err(anyhow::Error::msg)
            .with_context(|| settings.named("trusted_proxy"))?,
        email: mailer_config(&args.email).with_context(|| settings.named("smtp_url"))?,
        metrics_on_main_listener: args.metrics_on_main_listener,
    };
    let sender = memberd_server::workers::email::default_sender(&config.email, &config.issuer())
        .map_err(anyhow::Error::msg)
        .with_context(|| settings.named("email_from"))?;
    Ok((config, sender.to_string()))
}

async fn serve(db: &Database, args: ServeArgs, settings: &Settings) -> anyhow::Result<()> {
    let (config, sender) = serve_config(&args, settings)?;
    let store = open(db).await?;
    let limits = memberd_server::state::rate_limiter(&config, &store)
        .map_err(|e| anyhow::anyhow!("--redis-url: {e}"))?
        .map_or_else(|| "off".to_owned(), |limiter| limiter.describe());
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("could not listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let base = format!("http://{address}");
    let metrics_listener = metrics_listener(args.metrics_listen).await?;
    println!(
        "memberd {} is listening on {base}",
        env!("CARGO_PKG_VERSION")
    );
    println!("  database: {}", redact(&db.url));
    if let Some(file) = &settings.file {
        println!("  settings: {}", file.path.display());
    }
    println!("  rate limits: {limits}");
    match &config.email.smtp {
        Some(smtp) => println!("  emails: sent through {smtp} as {sender}"),
        None => println!(
            "  emails: not sent (no --smtp-url); read them at {base}/v1/emails with a secret key"
        ),
    }
    let public = config.public_url.clone().unwrap_or_else(|| base.clone());
    println!("  dashboard: {public}/dashboard");
    match (&metrics_listener, config.metrics_on_main_listener) {
        (Some(metrics), _) => println!("  metrics: http://{}/metrics", metrics.local_addr()?),
        (None, true) => println!("  metrics: {base}/metrics"),
        (None, false) => println!("  metrics: off (--metrics-listen)"),
    }
    if let Some(link) = ops::first_owner_link(&store).await? {
        println!();
        println!("No one can sign in to the dashboard yet. Make yourself its owner (the link works once, for 24 hours):");
        println!("  {public}{link}");
    }
    match ops::bootstrap(&store).await? {
        Some((app, keys)) => {
            println!();
            println!(
                "Created the app \"{}\" ({}). Its secret keys are shown this once; keep them safe:",
                app.name, app.id
            );
            print_keys(&keys);
            println!("Its publishable keys, for browsers (@memberstack/dom's publicKey):");
            for key in store.list_publishable_keys(Some(&app.id)).await? {
                println!("  {:<8} {}", key.env.as_str(), key.key);
            }
            println!("Members' sites use {base}/memberstack/client as the SDK's domain.");
            if let Some(sandbox) = keys.first() {
                println!();
                println!(
                    "Try it:  curl {base}/v1/members -H \"Authorization: Bearer {}\"",
                    sandbox.secret
                );
            }
        }
        None => println!(
            "  keys: see `memberd keys list`; create one with `memberd keys create --app APP_ID`"
        ),
    }
    tracing::info!(%address, "listening");
    memberd_server::serve_with_metrics(
        config,
        store.clone(),
        listener,
        metrics_listener,
        shutdown_signal(),
    )
    .await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

fn mailer_config(args: &EmailArgs) -> anyhow::Result<MailerConfig> {
    let smtp = args
        .smtp_url
        .as_deref()
        .filter(|url| !url.trim().is_empty())
        .map(|url| SmtpUrl::parse(url.trim()).map_err(|e| anyhow::anyhow!("{e}")))
        .transpose()?;
    Ok(MailerConfig {
        smtp,
        from: args.email_from.clone().filter(|f| !f.trim().is_empty()),
        timeout: Duration::from_secs(args.smtp_timeout_secs),
        ..MailerConfig::default()
    })
}

fn dispatcher_config(args: &WebhookArgs) -> DispatcherConfig {
    DispatcherConfig {
        timeout: Duration::from_secs(args.webhook_timeout_secs.max(1)),
        concurrency: args.webhook_concurrency.max(1),
        allow_private_targets: args.allow_private_webhook_targets,
        ..DispatcherConfig::default()
    }
}

fn scheduler_config(args: &BillingArgs) -> SchedulerConfig {
    SchedulerConfig {
        dunning: DunningPolicy {
            retry_after_days: args.dunning_retry_days.clone(),
            give_up_as: match args.dunning_final_status {
                FinalStatus::Canceled => ConnectionStatus::Canceled,
                FinalStatus::Unpaid => ConnectionStatus::Unpaid,
            },
        },
        ..SchedulerConfig::default()
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed at once, not when the
/// future is first polled, so a signal that comes early is not lost (and does not kill us).
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {},
                        _ = terminate.recv() => {},
                    }
                }
                _ => {
                    tracing::error!(
                        "cannot listen for SIGINT and SIGTERM; stop memberd with SIGKILL"
                    );
                    std::future::pending::<()>().await;
                }
            }
            tracing::info!("shutting down: finishing the requests in flight");
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down: finishing the requests in flight");
    }
}

/// `--public-url`: an http(s) URL, kept without a trailing slash (it is the tokens' `iss`).
pub(crate) fn parse_public_url(raw: &str) -> anyhow::Result<String> {
    let url = raw.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => Ok(url.to_owned()),
        _ => bail!(
            "must be an http:// or https:// URL such as https://members.example.com, got {raw:?}"
        ),
    }
}

pub(crate) fn print_keys(keys: &[NewKey]) {
    for key in keys {
        println!(
            "  {:<8} {}   ({})",
            key.key.env.as_str(),
            key.secret,
            key.key.id
        );
    }
}

pub(crate) fn parse_app_id(raw: &str) -> anyhow::Result<AppId> {
    AppId::parse(raw).with_context(|| format!("{raw:?} is not an app id (app_…)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_path_is_a_sqlite_file() {
        assert_eq!(database_url("data/m.db"), "sqlite:data/m.db");
        assert_eq!(database_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        assert_eq!(
            redact("postgres://ann:s3cret@db.local:5432/memberd"),
            "postgres://ann@db.local:5432/memberd"
        );
        assert_eq!(redact("sqlite:memberd.db"), "sqlite:memberd.db");
    }
}
