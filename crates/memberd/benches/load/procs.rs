//! The processes a run starts: memberd itself (the binary this build made), the baseline
//! server (this benchmark binary again, in its baseline role), and `memberd import`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const MEMBERD: &str = env!("CARGO_BIN_EXE_memberd");

/// A child process that is killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Resident memory now and at its peak, in bytes, from /proc.
    pub fn memory(&self) -> Memory {
        memory_of(self.child.id())
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    pub resident: u64,
    pub peak: u64,
}

pub fn memory_of(pid: u32) -> Memory {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    Memory {
        resident: field("VmRSS:"),
        peak: field("VmHWM:"),
    }
}

/// Waits for the line in which a server says where it listens, then returns its base URL.
fn read_base(child: &mut Child, marker: &str) -> String {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("the server exited before it said where it listens")
            .expect("server output");
        if let Some(rest) = line.split(marker).nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    };
    // Keep draining what it prints so that it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    base
}

/// memberd with `flags` besides those every run needs (port 0, webhooks to this machine).
/// The rate-limit flags are among `flags` rather than fixed here: clap refuses a flag given
/// twice, so a caller could not override them.
/// It logs warnings and errors only: a line per request would flood the terminal.
pub fn start_memberd_with(database_url: &str, flags: &[&str]) -> Server {
    let mut child = Command::new(MEMBERD)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(flags)
        .arg("--allow-private-webhook-targets")
        .env("MEMBERD_DATABASE_URL", database_url)
        .env("MEMBERD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start memberd serve");
    let base = read_base(&mut child, "is listening on ");
    Server { child, base }
}

/// memberd as it runs in production: metrics recorded (on a listener of their own) and a log
/// line per request at the default level, written to a file nobody reads.
pub fn start_memberd_observed(database_url: &str, log: &std::path::Path) -> Server {
    let mut child = Command::new(MEMBERD)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args([
            "--metrics-listen",
            "127.0.0.1:0",
            "--rate-limit-per-second",
            "0",
        ])
        .arg("--allow-private-webhook-targets")
        .env("MEMBERD_DATABASE_URL", database_url)
        .env_remove("MEMBERD_LOG")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("a log file"))
        .spawn()
        .expect("start memberd serve");
    let base = read_base(&mut child, "is listening on ");
    Server { child, base }
}

/// The baseline: a bare axum handler in its own process, built in the same profile.
pub fn start_baseline() -> Server {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(super::ROLE, "baseline")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the baseline server");
    let base = read_base(&mut child, "baseline listening on ");
    Server { child, base }
}

/// The baseline's server: a fixed small JSON body, nothing else.
pub async fn serve_baseline() {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/",
        get(|| async { axum::Json(serde_json::json!({"ok": true, "service": "baseline"})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!(
        "baseline listening on http://{}",
        listener.local_addr().unwrap()
    );
    axum::serve(listener, app).await.unwrap();
}

/// What `memberd import` took.
pub struct Imported {
    pub took: Duration,
}

pub fn import(database_url: &str, app: &str, env: &str, file: &Path) -> Imported {
    let started = Instant::now();
    let out = Command::new(MEMBERD)
        .args(["import", "--app", app, "--env", env])
        .arg(file)
        .env("MEMBERD_DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("run memberd import");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "memberd import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Imported { took }
}
