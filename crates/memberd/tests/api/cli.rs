//! The `memberd` binary as an operator uses it: serve (with its first-start keys and its
//! graceful stop), migrate, apps and keys.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;

pub fn memberd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_memberd"))
}

pub fn temp_db() -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("memberd-cli-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite:{}", dir.join("memberd.db").display());
    (dir, url)
}

/// A fresh database on the server of MEMBERD_TEST_POSTGRES_URL, for the binary to run on.
pub struct FreshPostgres {
    admin: memberd_store::Store,
    name: String,
    pub url: String,
}

impl FreshPostgres {
    /// `None`, saying so, when MEMBERD_TEST_POSTGRES_URL is unset.
    pub async fn create(test: &str) -> Option<FreshPostgres> {
        let Ok(admin_url) = std::env::var("MEMBERD_TEST_POSTGRES_URL") else {
            eprintln!("MEMBERD_TEST_POSTGRES_URL is unset: PostgreSQL {test} test skipped");
            return None;
        };
        let admin = memberd_store::Store::connect(&admin_url).await.unwrap();
        let name = format!("memberd_bin_{}", rand::random::<u32>());
        admin
            .execute_admin(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let (base, _) = admin_url.rsplit_once('/').unwrap();
        let url = format!("{base}/{name}");
        Some(FreshPostgres { admin, name, url })
    }

    pub async fn drop_database(self) {
        self.admin
            .execute_admin(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .unwrap();
        self.admin.close().await;
    }
}

/// A running `memberd serve`, with what it printed on start.
pub struct Served {
    pub child: Child,
    pub base: String,
    pub printed: Vec<String>,
    /// Every line it has logged, when started with [`Served::start_logging`].
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Served {
    pub fn start(database_url: &str) -> Served {
        Served::start_with(database_url, &[])
    }

    pub fn start_with(database_url: &str, extra: &[&str]) -> Served {
        Served::launch(database_url, extra, false)
    }

    /// [`Served::start_with`], keeping every line memberd logs, at the level an operator sees
    /// by default.
    pub fn start_logging(database_url: &str, extra: &[&str]) -> Served {
        Served::launch(database_url, extra, true)
    }

    fn launch(database_url: &str, extra: &[&str], logging: bool) -> Served {
        let mut command = memberd();
        command
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                database_url,
            ])
            .args(extra);
        Served::launch_command(command, logging)
    }

    /// Runs `command` (a `memberd serve …`) until it has printed its keys.
    pub fn launch_command(mut command: Command, logging: bool) -> Served {
        let mut child = command
            .env_remove("MEMBERD_LOG")
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(if logging {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("memberd starts");
        let logs = Arc::new(Mutex::new(Vec::new()));
        if let Some(stderr) = child.stderr.take() {
            let kept = Arc::clone(&logs);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    kept.lock().unwrap().push(line);
                }
            });
        }
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            // Read to the end, so that the pipe never fills.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut printed = Vec::new();
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| {
                    panic!(
                        "memberd printed {printed:?}, logged {:?}",
                        logs.lock().unwrap()
                    )
                });
            let done = line.starts_with("Try it") || line.contains("keys: see");
            printed.push(line);
            if done {
                break;
            }
        }
        let base = printed[0]
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("the first line says where memberd listens")
            .to_owned();
        Served {
            child,
            base,
            printed,
            logs,
        }
    }

    pub fn secret(&self, prefix: &str) -> Option<String> {
        self.printed
            .iter()
            .flat_map(|l| l.split_whitespace())
            .find(|w| w.starts_with(prefix))
            .map(|s| s.trim_matches('"').to_owned())
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = self.child.wait().unwrap();
        assert!(exit.success(), "memberd exits cleanly on SIGTERM: {exit}");
    }
}

impl Served {
    /// SIGKILL: no chance to finish anything.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str], database_url: &str) -> Output {
    memberd()
        .args(args)
        .args(["--database-url", database_url])
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn status_with(base: &str, path: &str, key: &str) -> StatusCode {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .status()
}

async fn first_start_prints_the_keys_once(database_url: &str) {
    let served = Served::start(database_url);
    assert!(
        served.printed[0].starts_with("memberd "),
        "{:?}",
        served.printed
    );
    let sandbox = served.secret("sk_sb_").expect("the sandbox key is printed");
    let live = served.secret("sk_live_").expect("the live key is printed");
    assert_eq!(
        status_with(&served.base, "/v1/members", &sandbox).await,
        StatusCode::OK
    );
    assert_eq!(
        status_with(&served.base, "/v1/members", &live).await,
        StatusCode::OK
    );
    assert_eq!(
        status_with(&served.base, "/readyz", "").await,
        StatusCode::OK
    );
    served.stop();

    let again = Served::start(database_url);
    assert_eq!(again.secret("sk_"), None, "keys are printed only once");
    assert_eq!(
        status_with(&again.base, "/v1/members", &sandbox).await,
        StatusCode::OK,
        "the keys survive a restart"
    );
    again.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_sqlite_prints_keys_once_and_stops_on_sigterm() {
    let (dir, url) = temp_db();
    first_start_prints_the_keys_once(&url).await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Writes run on the shared runtime and reads on the serving threads; with none, both run on
/// the shared runtime. Either way a member written is read back, and SIGTERM stops it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_sqlite_answers_with_any_number_of_serving_threads() {
    for threads in ["0", "3"] {
        let (dir, url) = temp_db();
        let served = Served::start_with(&url, &["--serving-threads", threads]);
        let key = served.secret("sk_sb_").expect("the sandbox key is printed");
        let client = reqwest::Client::new();
        let created = client
            .post(format!("{}/v1/members", served.base))
            .bearer_auth(&key)
            .json(&serde_json::json!({"email": "threads@example.com"}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED, "{threads} threads");
        let id = created.json::<serde_json::Value>().await.unwrap()["id"]
            .as_str()
            .expect("a member id")
            .to_owned();
        let read = client
            .get(format!("{}/v1/members/{id}", served.base))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), StatusCode::OK, "{threads} threads");
        let member: serde_json::Value = read.json().await.unwrap();
        assert_eq!(member["email"], "threads@example.com", "{threads} threads");
        served.stop();
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_prints_keys_once_and_stops_on_sigterm() {
    let Some(db) = FreshPostgres::create("CLI").await else {
        return;
    };
    first_start_prints_the_keys_once(&db.url).await;
    db.drop_database().await;
}

/// `--database-connections` bounds what a node opens to PostgreSQL however many requests it
/// serves at once: its pool, besides the two connections of its read cache (one listens, one
/// tells the other nodes). Out of range, it is refused by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_postgres_keeps_to_its_database_connections() {
    let Some(db) = FreshPostgres::create("connection cap").await else {
        return;
    };
    let served = Served::start_with(
        &db.url,
        &[
            "--database-connections",
            "2",
            "--rate-limit-per-second",
            "0",
        ],
    );
    let key = served.secret("sk_sb_").expect("the sandbox key is printed");
    let client = reqwest::Client::new();
    let creates: Vec<_> = (0..40)
        .map(|i| {
            let request = client
                .post(format!("{}/v1/members", served.base))
                .bearer_auth(&key)
                .json(&serde_json::json!({"email": format!("pool{i}@example.com")}))
                .send();
            tokio::spawn(request)
        })
        .collect();
    for create in creates {
        let status = create.await.unwrap().unwrap().status();
        assert_eq!(status, StatusCode::CREATED);
    }
    // A pool keeps what it opened (idle) for minutes: the count now is the most it had.
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert!((1..=4).contains(&open), "{open} connections open");
    // Named, so that an operator can tell them apart.
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT application_name FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    for name in ["memberd", "memberd notifier"] {
        assert!(names.iter().any(|n| n == name), "{names:?}");
    }
    sqlx::Connection::close(conn).await.unwrap();
    served.stop();

    let refused = run(&["--database-connections", "0", "migrate"], &db.url);
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("--database-connections"), "{said}");
    db.drop_database().await;
}

#[test]
fn apps_and_keys_are_managed_from_the_command_line() {
    let (dir, url) = temp_db();
    let migrated = run(&["migrate"], &url);
    assert!(migrated.status.success());
    assert!(stdout(&migrated).contains("up to date"));
    let empty = run(&["apps", "list"], &url);
    assert!(stdout(&empty).contains("No apps yet"));

    let created = run(
        &[
            "apps",
            "create",
            "--name",
            "My Store",
            "--shop",
            "My-Store.myshopify.com",
        ],
        &url,
    );
    assert!(created.status.success(), "{created:?}");
    let text = stdout(&created);
    assert!(text.contains("my-store.myshopify.com"), "{text}");
    assert!(
        text.contains("sk_sb_") && text.contains("sk_live_"),
        "{text}"
    );
    let app_id = text
        .split_whitespace()
        .find_map(|w| {
            w.trim_matches(|c| c == '(' || c == ')' || c == '.')
                .strip_prefix("app_")
        })
        .map(|rest| format!("app_{rest}"))
        .expect("the app id is printed");

    let twin = run(
        &[
            "apps",
            "create",
            "--name",
            "Twin",
            "--shop",
            "my-store.myshopify.com",
        ],
        &url,
    );
    assert!(!twin.status.success());
    assert!(String::from_utf8_lossy(&twin.stderr).contains("already serves that shop"));
    let bad_shop = run(
        &["apps", "create", "--name", "X", "--shop", "not a domain"],
        &url,
    );
    assert!(!bad_shop.status.success());

    let listed = stdout(&run(&["apps", "list"], &url));
    assert!(
        listed.contains(&app_id) && listed.contains("My Store"),
        "{listed}"
    );

    let key = run(
        &[
            "keys", "create", "--app", &app_id, "--env", "live", "--name", "ci",
        ],
        &url,
    );
    assert!(key.status.success(), "{key:?}");
    let key_text = stdout(&key);
    let secret = key_text
        .split_whitespace()
        .find(|w| w.starts_with("sk_live_"))
        .expect("the secret is printed once")
        .to_owned();
    let key_id = key_text
        .split_whitespace()
        .find(|w| w.starts_with("key_"))
        .unwrap()
        .to_owned();

    let keys = stdout(&run(&["keys", "list", "--app", &app_id], &url));
    let (secret_keys, publishable) = keys
        .split_once("\n\n")
        .expect("the publishable keys follow the secret keys");
    assert_eq!(
        secret_keys.lines().count(),
        4,
        "a header and three keys: {keys}"
    );
    assert_eq!(
        publishable.lines().filter(|l| l.contains("pk_")).count(),
        2,
        "and a publishable key per environment: {keys}"
    );
    assert!(keys.contains(&key_id) && keys.contains("ci"));
    assert!(!keys.contains(&secret), "secrets are never listed again");

    let revoked = run(&["keys", "revoke", &key_id], &url);
    assert!(revoked.status.success());
    assert!(stdout(&run(&["keys", "list"], &url)).contains("revoked"));
    let twice = run(&["keys", "revoke", &key_id], &url);
    assert!(!twice.status.success());
    assert!(String::from_utf8_lossy(&twice.stderr).contains("no active key"));

    // A store's direct API access, and partner keys for stores without it.
    let off = run(&["apps", "update", &app_id, "--api-access", "off"], &url);
    assert!(off.status.success(), "{off:?}");
    let listed = stdout(&run(&["apps", "list"], &url));
    let row = listed.lines().find(|l| l.contains(&app_id)).unwrap();
    assert!(row.contains(" off "), "{row}");
    assert!(!run(
        &["apps", "update", "app_nothere", "--api-access", "on"],
        &url
    )
    .status
    .success());
    let partner = stdout(&run(&["partners", "create", "--name", "Helpdesk"], &url));
    let secret = partner
        .split_whitespace()
        .find(|w| w.starts_with("pk_"))
        .expect("the partner key is printed once")
        .to_owned();
    let partner_id = partner
        .split_whitespace()
        .find(|w| w.starts_with("ptn_"))
        .unwrap()
        .to_owned();
    let partners = stdout(&run(&["partners", "list"], &url));
    assert!(partners.contains(&partner_id) && partners.contains("Helpdesk"));
    assert!(!partners.contains(&secret));
    assert!(run(&["partners", "revoke", &partner_id], &url)
        .status
        .success());
    assert!(!run(&["partners", "revoke", &partner_id], &url)
        .status
        .success());

    let unknown_app = run(&["keys", "create", "--app", "app_nothere"], &url);
    assert!(!unknown_app.status.success());
    assert!(String::from_utf8_lossy(&unknown_app.stderr).contains("no such app"));
    let malformed = run(&["keys", "create", "--app", "store"], &url);
    assert!(!malformed.status.success());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn every_command_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["worker", "--help"],
        vec!["apps", "--help"],
        vec!["apps", "create", "--help"],
        vec!["apps", "list", "--help"],
        vec!["apps", "update", "--help"],
        vec!["partners", "--help"],
        vec!["partners", "create", "--help"],
        vec!["partners", "list", "--help"],
        vec!["partners", "revoke", "--help"],
        vec!["keys", "--help"],
        vec!["keys", "create", "--help"],
        vec!["keys", "list", "--help"],
        vec!["keys", "revoke", "--help"],
    ] {
        let output = memberd().args(&args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        let text = stdout(&output);
        assert!(text.contains("Usage:"), "{args:?}: {text}");
    }
    let serve_help = stdout(&memberd().args(["serve", "--help"]).output().unwrap());
    assert!(serve_help.contains("MEMBERD_LISTEN") && serve_help.contains("127.0.0.1:8080"));
}
