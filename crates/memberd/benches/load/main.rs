//! memberd's benchmark: the real server over loopback, driven by `wrk` in its own process,
//! against a bare axum handler measured in the same run (the baseline: what one request costs
//! on this machine at best). memberd runs with its rate limit off, but for one row: the access
//! check on a second server with a limit too high to refuse anything, for the limiter's cost.
//! On PostgreSQL a scale-out section follows, in a database of its
//! own: three `memberd serve` nodes on that one database, each figure (member creates, access
//! checks, webhooks end to end, lock waits during the creates) with the first node alone and
//! with all three, wrk's threads spread over the nodes.
//!
//!     cargo bench --bench load                          # SQLite, then PostgreSQL if it answers
//!     MEMBERD_BENCH_SMOKE=1 cargo test --bench load      # a seconds-long run that checks it works
//!
//! Settings (environment): MEMBERD_BENCH_SECONDS (per figure, default 10),
//! MEMBERD_BENCH_MEMBERS (the big list, default 1,000,000), MEMBERD_BENCH_POSTGRES_URL
//! (default postgres://postgres@127.0.0.1:5432/postgres; `off` to skip PostgreSQL),
//! MEMBERD_BENCH_CONNECTIONS (default 32), MEMBERD_BENCH_ONLY (`sqlite`, `postgres` or
//! `scale-out`: that section alone). Prints one table per backend, then the scale-out's, in
//! Markdown.

mod accounts;
mod procs;
mod report;
mod scale_out;
mod scenarios;
mod wrk;

use std::path::PathBuf;

pub const ROLE: &str = "MEMBERD_BENCH_ROLE";

pub struct Settings {
    pub seconds: u32,
    pub big: usize,
    pub small: usize,
    pub connections: u32,
    pub postgres_url: Option<String>,
    pub smoke: bool,
    pub dir: PathBuf,
    /// The one section to run, when not all.
    pub only: Option<Section>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Sqlite,
    Postgres,
    ScaleOut,
}

impl Settings {
    pub fn runs(&self, section: Section) -> bool {
        self.only.is_none_or(|only| only == section)
    }
}

fn env_number(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .replace(['_', ','], "")
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}")),
        Err(_) => default,
    }
}

impl Settings {
    fn from_env() -> Settings {
        let smoke = std::env::var("MEMBERD_BENCH_SMOKE").is_ok_and(|v| v != "0");
        let postgres_url = match std::env::var("MEMBERD_BENCH_POSTGRES_URL") {
            Ok(v) if v == "off" || v.is_empty() => None,
            Ok(v) => Some(v),
            Err(_) => Some("postgres://postgres@127.0.0.1:5432/postgres".into()),
        };
        let only = match std::env::var("MEMBERD_BENCH_ONLY").as_deref() {
            Err(_) | Ok("") => None,
            Ok("sqlite") => Some(Section::Sqlite),
            Ok("postgres") => Some(Section::Postgres),
            Ok("scale-out") => Some(Section::ScaleOut),
            Ok(other) => {
                panic!("MEMBERD_BENCH_ONLY must be sqlite, postgres or scale-out, got {other:?}")
            }
        };
        let dir = std::env::temp_dir().join(format!("memberd-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Settings {
            seconds: env_number("MEMBERD_BENCH_SECONDS", if smoke { 1 } else { 10 }) as u32,
            big: env_number(
                "MEMBERD_BENCH_MEMBERS",
                if smoke { 2_000 } else { 1_000_000 },
            ),
            small: if smoke { 500 } else { 10_000 },
            connections: env_number("MEMBERD_BENCH_CONNECTIONS", 32) as u32,
            postgres_url,
            smoke,
            dir,
            only,
        }
    }
}

fn main() {
    if std::env::var(ROLE).as_deref() == Ok("baseline") {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        runtime.block_on(procs::serve_baseline());
        return;
    }
    let settings = Settings::from_env();
    let wrk_version = match wrk::check_installed() {
        Ok(v) => v,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let reports = runtime.block_on(scenarios::run_all(&settings));
    report::print(&settings, &wrk_version, &reports);
    let _ = std::fs::remove_dir_all(&settings.dir);
}
