//! memberd.toml as an operator writes it: its settings are used, the environment beats them
//! and flags beat both; a wrong setting stops memberd with the file, the line and the
//! setting; `memberd config check` and `memberd config show` (secrets masked).

use std::borrow::BorrowMut;
use std::path::PathBuf;
use std::process::{Command, Output};

use reqwest::StatusCode;

use crate::cli::{memberd, temp_db, Served};

/// A directory of its own, with `memberd.toml` holding `settings`.
fn settings_dir(settings: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("memberd-config-{}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("memberd.toml"), settings).unwrap();
    dir
}

/// `memberd ARGS`, with no MEMBERD_* setting of this process's environment in the way.
fn bare(args: &[&str]) -> Command {
    let mut command = memberd();
    command.args(args);
    for (name, _) in std::env::vars() {
        if name.starts_with("MEMBERD_") {
            command.env_remove(name);
        }
    }
    command
}

fn output(mut command: impl BorrowMut<Command>) -> (Option<i32>, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = command.borrow_mut().output().unwrap();
    (
        status.code(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

/// How many of ten quick requests with `key` were refused with 429.
async fn refused_of_ten(served: &Served, key: &str) -> usize {
    let client = reqwest::Client::new();
    let mut refused = 0;
    for _ in 0..10 {
        let status = client
            .get(format!("{}/v1/plans", served.base))
            .bearer_auth(key)
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            status == StatusCode::OK || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
        refused += usize::from(status == StatusCode::TOO_MANY_REQUESTS);
    }
    refused
}

/// The file names the database, the address and a rate limit of 1/s with bursts of 1; the
/// environment then raises the burst, and a flag lowers it again.
async fn serve_layers_the_file_the_environment_and_the_flags(database_url: &str) {
    let dir = settings_dir(&format!(
        "# memberd's settings\ndatabase_url = \"{database_url}\"\nlisten = \"127.0.0.1:0\"\n\
         rate_limit_per_second = 1\nrate_limit_burst = 1\n"
    ));
    let config = dir.join("memberd.toml");
    let config = config.to_str().unwrap();

    let served = Served::launch_command(bare(&["serve", "--config", config]), false);
    assert!(
        served
            .printed
            .iter()
            .any(|l| l.trim() == format!("settings: {config}")),
        "{:?}",
        served.printed
    );
    assert!(
        served.printed.iter().any(|l| l.contains("1/s per key")),
        "{:?}",
        served.printed
    );
    let key = served.secret("sk_sb_").expect("a sandbox key");
    assert!(
        refused_of_ten(&served, &key).await > 0,
        "the file's burst of 1"
    );
    served.stop();

    // The key was made in the database the file names: the same one serves it again.
    let mut from_environment = bare(&["serve", "--config", config]);
    from_environment.env("MEMBERD_RATE_LIMIT_BURST", "1000");
    let served = Served::launch_command(from_environment, false);
    assert_eq!(
        refused_of_ten(&served, &key).await,
        0,
        "MEMBERD_RATE_LIMIT_BURST wins"
    );
    served.stop();

    let mut from_flags = bare(&["serve", "--config", config, "--rate-limit-burst", "1"]);
    from_flags.env("MEMBERD_RATE_LIMIT_BURST", "1000");
    let served = Served::launch_command(from_flags, false);
    assert!(
        refused_of_ten(&served, &key).await > 0,
        "--rate-limit-burst wins"
    );
    served.stop();

    // memberd.toml in the working directory is read without --config, by every command.
    let (code, listed, said) = output(bare(&["keys", "list"]).current_dir(&dir));
    assert_eq!(code, Some(0), "{said}");
    assert!(listed.contains("sandbox"), "{listed}");
    std::fs::remove_dir_all(dir).unwrap();
}

mod sqlite {
    #[tokio::test]
    async fn serve_layers_the_file_the_environment_and_the_flags() {
        let (dir, url) = crate::cli::temp_db();
        super::serve_layers_the_file_the_environment_and_the_flags(&url).await;
        std::fs::remove_dir_all(dir).unwrap();
    }
}

mod postgres {
    #[tokio::test]
    async fn serve_layers_the_file_the_environment_and_the_flags() {
        let Some(db) = crate::cli::FreshPostgres::create("config file").await else {
            return;
        };
        super::serve_layers_the_file_the_environment_and_the_flags(&db.url).await;
        db.drop_database().await;
    }
}

#[test]
fn a_wrong_setting_is_named_with_its_file_and_line_and_nothing_starts() {
    let (db_dir, url) = temp_db();
    let dir = settings_dir(&format!(
        "database_url = \"{url}\"\nlisten = \"127.0.0.1:0\"\n\n\
         login_failure_limit = 0\nsmtp_timout_secs = 5\n[email]\nsmtp_url = \"smtp://relay\"\n"
    ));
    let config = dir.join("memberd.toml");
    let at = config.display().to_string();

    let (code, _, said) = output(bare(&["config", "check", "--config", &at]));
    assert_eq!(code, Some(2), "{said}");
    for expected in [
        format!("{at}:4: login_failure_limit: must be at least 1, not 0"),
        format!(
            "{at}:5: smtp_timout_secs: not a setting of memberd; did you mean smtp_timeout_secs?"
        ),
        format!("{at}:6: [email]: settings are not grouped in sections"),
    ] {
        assert!(said.contains(&expected), "{expected:?} in {said}");
    }

    // serve refuses the same file before it opens the database.
    let (code, printed, said) = output(bare(&["serve"]).current_dir(&dir));
    assert_eq!(code, Some(2), "{printed}{said}");
    assert!(!printed.contains("listening"), "{printed}");
    assert!(
        said.contains("memberd.toml:4: login_failure_limit"),
        "{said}"
    );
    assert!(!db_dir.join("memberd.db").exists(), "no database was made");

    // Not TOML: the line of the mistake.
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nrate_limit_burst = \n").unwrap();
    let (code, _, said) = output(bare(&["config", "check", "--config", &at]));
    assert_eq!(code, Some(2), "{said}");
    assert!(said.contains(&format!("{at}:2: not TOML")), "{said}");

    // A value that only serve's own checks catch names the line too; a variable, its name.
    std::fs::write(&config, "public_url = \"ftp://members.example.com\"\n").unwrap();
    let (code, _, said) = output(bare(&["config", "check", "--config", &at]));
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains(&format!("{at}:1: public_url: must be an http")),
        "{said}"
    );
    let (code, _, said) = output(
        bare(&["config", "check", "--config", &at]).env("MEMBERD_SMTP_TIMEOUT_SECS", "9000"),
    );
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains("MEMBERD_SMTP_TIMEOUT_SECS: must be from 1 to 600, not 9000"),
        "{said}"
    );

    // A file that --config or MEMBERD_CONFIG names must be there.
    let missing = dir.join("nowhere.toml");
    let missing = missing.to_str().unwrap();
    let (code, _, said) = output(bare(&["keys", "list"]).env("MEMBERD_CONFIG", missing));
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains(&format!(
            "{missing} (named by MEMBERD_CONFIG): could not read it"
        )),
        "{said}"
    );

    std::fs::write(&config, "listen = \"127.0.0.1:0\"\n").unwrap();
    let (code, said, _) = output(bare(&["config", "check", "--config", &at]));
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("The settings are valid"), "{said}");
    std::fs::remove_dir_all(dir).unwrap();
    std::fs::remove_dir_all(db_dir).unwrap();
}

#[test]
fn config_show_prints_what_is_in_effect_and_where_from_with_passwords_masked() {
    let dir = settings_dir(
        "database_url = \"postgres://memberd:db-s3cret@db.internal/memberd\"\n\
         smtp_url = \"smtps://mailer:smtp-s3cret@smtp.example.com\"\n\
         redis_url = \"redis://:redis-s3cret@cache:6379\"\n\
         rate_limit_per_second = 50\nlisten = \"0.0.0.0:9000\"\ndunning_retry_days = [2, 4]\n",
    );
    let (code, shown, said) = output(
        bare(&["config", "show", "--listen", "127.0.0.1:7000"])
            .current_dir(&dir)
            .env("MEMBERD_RATE_LIMIT_BURST", "70"),
    );
    assert_eq!(code, Some(0), "{said}");
    assert!(!shown.contains("s3cret"), "{shown}");
    let line = |key: &str| {
        shown
            .lines()
            .find(|l| l.starts_with(&format!("{key} =")) || l.starts_with(&format!("# {key} =")))
            .unwrap_or_else(|| panic!("{key} in {shown}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("database_url"),
        "database_url = \"postgres://memberd:****@db.internal/memberd\" # memberd.toml:1"
    );
    assert_eq!(
        line("smtp_url"),
        "smtp_url = \"smtps://mailer:****@smtp.example.com\" # memberd.toml:2"
    );
    assert_eq!(
        line("redis_url"),
        "redis_url = \"redis://:****@cache:6379\" # memberd.toml:3"
    );
    assert_eq!(
        line("rate_limit_per_second"),
        "rate_limit_per_second = 50 # memberd.toml:4"
    );
    assert_eq!(
        line("rate_limit_burst"),
        "rate_limit_burst = 70 # MEMBERD_RATE_LIMIT_BURST"
    );
    assert_eq!(line("listen"), "listen = \"127.0.0.1:7000\" # --listen");
    assert_eq!(
        line("dunning_retry_days"),
        "dunning_retry_days = [2, 4] # memberd.toml:6"
    );
    assert_eq!(
        line("webhook_concurrency"),
        "webhook_concurrency = 64 # default"
    );
    assert_eq!(line("public_url"), "# public_url = # not set");

    // What it prints is a settings file that gives the same settings (passwords aside).
    let printed = dir.join("printed.toml");
    let plain = shown.replace("****", "password");
    std::fs::write(&printed, &plain).unwrap();
    let (code, again, said) = output(bare(&[
        "config",
        "show",
        "--config",
        printed.to_str().unwrap(),
    ]));
    assert_eq!(code, Some(0), "{said}");
    let values = |text: &str| {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(" #").next().unwrap().trim().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(values(&again), values(&shown));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_readme_settings_file_is_valid() {
    let dir = settings_dir(&crate::readme::block_after("memberd.toml"));
    let (code, said, complained) = output(bare(&["config", "check"]).current_dir(&dir));
    assert_eq!(code, Some(0), "{complained}");
    assert!(said.contains("The settings are valid"), "{said}");
    let (_, shown, _) = output(bare(&["config", "show"]).current_dir(&dir));
    assert!(
        shown.contains("smtp_url = \"smtps://memberd:****@smtp.example.com\""),
        "{shown}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
