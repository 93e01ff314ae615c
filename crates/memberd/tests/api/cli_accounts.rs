//! The command line of members' own accounts, run as an operator would: the publishable keys
//! `memberd serve` and `memberd keys list` print, `memberd apps update` and `apps show` for an
//! environment's settings, and `memberd signing-keys rotate`, which logs no member out.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::cli::{memberd, temp_db, Served};

fn run(args: &[&str], database_url: &str) -> std::process::Output {
    memberd()
        .args(args)
        .args(["--database-url", database_url])
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Signs a member up through the member-facing API and returns their access token.
async fn sign_up(base: &str, publishable: &str, email: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{base}/memberstack/client/auth/signup"))
        .header("X-API-Key", publishable)
        .json(&json!({"email": email, "password": "cli password 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["data"]["tokens"]["accessToken"]
        .as_str()
        .expect("an access token")
        .to_owned()
}

async fn verify(base: &str, secret: &str, token: &str) -> StatusCode {
    reqwest::Client::new()
        .post(format!("{base}/v1/tokens/verify"))
        .bearer_auth(secret)
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap()
        .status()
}

/// The `kid` in a token's header.
fn kid_of(token: &str) -> String {
    use base64::Engine;
    let header = token.split('.').next().expect("a JWT");
    let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .expect("base64url");
    let header: Value = serde_json::from_slice(&header).expect("a JSON header");
    header["kid"].as_str().expect("a kid").to_owned()
}

async fn published_kids(base: &str) -> Vec<String> {
    let jwks: Value = reqwest::get(format!("{base}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| {
            assert!(k.get("d").is_none(), "a private key is published: {k}");
            k["kid"].as_str().expect("a kid").to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishable_keys_settings_and_signing_keys_from_the_command_line() {
    let (dir, url) = temp_db();
    // The issuer stays the same across the restart below, whatever port each start gets.
    let public = ["--public-url", "https://members.example.com/"];
    let served = Served::start_with(&url, &public);
    let printed = served.printed.join("\n");
    let publishable = served
        .secret("pk_sb_")
        .expect("serve prints the sandbox publishable key");
    let live_publishable = served.secret("pk_live_").expect("and the live one");
    let secret = served.secret("sk_sb_").expect("and the sandbox secret key");
    assert!(
        printed.contains(&format!("{}/memberstack/client", served.base)),
        "serve says what the SDK's domain is: {printed}"
    );
    let app = printed
        .split(|c: char| c == '(' || c == ')' || c.is_whitespace())
        .find(|w| w.starts_with("app_"))
        .expect("serve names the app")
        .to_owned();

    // The first start made the key tokens are signed with, before any member logged in.
    let signing = text(&run(&["signing-keys", "list"], &url).stdout);
    assert_eq!(signing.matches("signs new tokens").count(), 1, "{signing}");

    let listed = run(&["keys", "list"], &url);
    assert!(listed.status.success());
    let listed = text(&listed.stdout);
    assert!(
        listed.contains(&publishable) && listed.contains(&live_publishable),
        "{listed}"
    );
    assert!(
        !listed.contains(&secret),
        "a secret is never listed: {listed}"
    );

    // Live answers no origin until one is set; a bad one is refused by its flag's name.
    let bad = run(
        &[
            "apps",
            "update",
            &app,
            "--env",
            "live",
            "--allowed-origins",
            "shop.example",
        ],
        &url,
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("--allowed-origins"),
        "{}",
        text(&bad.stderr)
    );
    let updated = run(
        &[
            "apps",
            "update",
            &app,
            "--env",
            "live",
            "--allowed-origins",
            "https://shop.example,http://localhost:*",
            "--session-lifetime-days",
            "30",
        ],
        &url,
    );
    assert!(updated.status.success(), "{}", text(&updated.stderr));
    let shown = run(&["apps", "show", &app], &url);
    let shown = text(&shown.stdout);
    assert!(
        shown.contains("https://shop.example, http://localhost:*"),
        "{shown}"
    );
    assert!(shown.contains("30 days"), "{shown}");
    assert!(
        shown.contains("(the default)"),
        "sandbox keeps its default: {shown}"
    );
    let nothing = run(&["apps", "update", &app], &url);
    assert!(
        !nothing.status.success(),
        "an update that changes nothing says so"
    );

    // A rotation logs nobody out: the old key verifies what it signed, and both are published.
    let before = sign_up(&served.base, &publishable, "before@example.com").await;
    let rotated = run(&["signing-keys", "rotate"], &url);
    assert!(rotated.status.success(), "{}", text(&rotated.stderr));
    served.stop();
    let served = Served::start_with(&url, &public);
    assert_eq!(verify(&served.base, &secret, &before).await, StatusCode::OK);
    let after = sign_up(&served.base, &publishable, "after@example.com").await;
    assert_ne!(
        kid_of(&before),
        kid_of(&after),
        "new tokens are signed with the new key"
    );
    let kids = published_kids(&served.base).await;
    assert!(
        kids.contains(&kid_of(&before)) && kids.contains(&kid_of(&after)),
        "{kids:?}"
    );
    let keys = text(&run(&["signing-keys", "list"], &url).stdout);
    assert!(
        keys.contains("signs new tokens") && keys.contains("retired"),
        "{keys}"
    );
    served.stop();
    let _ = std::fs::remove_dir_all(dir);
}

/// The email settings from the command line: `serve` says where emails go (and never the SMTP
/// password), refuses an SMTP URL it cannot use by its flag's name, and `apps update` sets an
/// app's sender and where a verified member is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_settings_from_the_command_line() {
    let (dir, url) = temp_db();
    let served = Served::start(&url);
    let printed = served.printed.join("\n");
    assert!(
        printed.contains("emails: not sent (no --smtp-url)") && printed.contains("/v1/emails"),
        "serve says emails are kept and where to read them: {printed}"
    );
    let app = printed
        .split(|c: char| c == '(' || c == ')' || c.is_whitespace())
        .find(|w| w.starts_with("app_"))
        .expect("serve names the app")
        .to_owned();
    served.stop();

    let served = Served::start_with(
        &url,
        &[
            "--smtp-url",
            "smtp://mailer:hunter2@127.0.0.1:2525?tls=starttls",
            "--email-from",
            "Example <no-reply@example.com>",
        ],
    );
    let printed = served.printed.join("\n");
    assert!(
        printed.contains("emails: sent through smtp://mailer:…@127.0.0.1:2525?tls=starttls as Example <no-reply@example.com>"),
        "{printed}"
    );
    assert!(!printed.contains("hunter2"), "{printed}");
    // Serving (and so listening for SIGTERM) once it answers.
    let health = reqwest::get(format!("{}/healthz", served.base))
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    served.stop();

    for (flag, value) in [
        ("--smtp-url", "http://mail.example.com"),
        ("--email-from", "not an address"),
    ] {
        let refused = memberd()
            .args(["serve", "--listen", "127.0.0.1:0", flag, value])
            .args(["--database-url", &url])
            .output()
            .unwrap();
        assert!(!refused.status.success(), "{flag} {value}");
        assert!(
            text(&refused.stderr).contains(flag),
            "{flag}: {}",
            text(&refused.stderr)
        );
    }

    let bad = run(
        &["apps", "update", &app, "--email-from-address", "nobody"],
        &url,
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("--email-from-address"),
        "{}",
        text(&bad.stderr)
    );
    let updated = run(
        &[
            "apps",
            "update",
            &app,
            "--email-from-name",
            "Example Club",
            "--email-from-address",
            "club@example.com",
            "--verify-redirect-url",
            "https://example.com/welcome",
        ],
        &url,
    );
    assert!(updated.status.success(), "{}", text(&updated.stderr));
    let shown = text(&run(&["apps", "show", &app], &url).stdout);
    assert!(shown.contains("Example Club <club@example.com>"), "{shown}");
    assert!(shown.contains("https://example.com/welcome"), "{shown}");
    let reset = run(
        &[
            "apps",
            "update",
            &app,
            "--email-from-name",
            "default",
            "--email-from-address",
            "default",
        ],
        &url,
    );
    assert!(reset.status.success(), "{}", text(&reset.stderr));
    let shown = text(&run(&["apps", "show", &app], &url).stdout);
    assert!(shown.contains("the server's --email-from"), "{shown}");
    let _ = std::fs::remove_dir_all(dir);
}

/// `memberd serve` prints where the dashboard is and, while no operator exists, the first
/// owner's link; `memberd operators …` makes, lists, re-links and removes operators, and says
/// what is wrong with a bad flag.
#[test]
fn operators_from_the_command_line() {
    let (dir, url) = temp_db();
    let served = Served::start(&url);
    let printed = served.printed.join("\n");
    assert!(
        printed.contains(&format!("  dashboard: {}/dashboard", served.base)),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("{}/dashboard/set-password?token=", served.base)),
        "{printed}"
    );
    served.stop();

    let app = text(&run(&["apps", "list"], &url).stdout)
        .split_whitespace()
        .find(|w| w.starts_with("app_"))
        .expect("an app")
        .to_owned();
    let made = run(
        &[
            "operators",
            "create",
            "--email",
            "Ann@Example.com",
            "--role",
            "viewer",
            "--app",
            &app,
            "--public-url",
            "https://members.example.com/",
        ],
        &url,
    );
    let out = text(&made.stdout);
    assert!(made.status.success(), "{out}{}", text(&made.stderr));
    assert!(out.contains("Created the viewer ann@example.com"), "{out}");
    assert!(
        out.contains("https://members.example.com/dashboard/set-password?token="),
        "{out}"
    );

    let again = run(
        &[
            "operators",
            "create",
            "--email",
            "ann@example.com",
            "--role",
            "owner",
        ],
        &url,
    );
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("--email: ann@example.com is already an operator"),
        "{}",
        text(&again.stderr)
    );
    let unknown = run(
        &[
            "operators",
            "create",
            "--email",
            "bob@example.com",
            "--role",
            "owner",
            "--app",
            "app_nope",
        ],
        &url,
    );
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains("--app: no such app"),
        "{}",
        text(&unknown.stderr)
    );
    let bad = run(
        &[
            "operators",
            "create",
            "--email",
            "not an email",
            "--role",
            "owner",
        ],
        &url,
    );
    assert!(
        text(&bad.stderr).contains("--email"),
        "{}",
        text(&bad.stderr)
    );

    let list = text(&run(&["operators", "list"], &url).stdout);
    assert!(
        list.contains("viewer  ann@example.com")
            && list.contains(&app)
            && list.contains("has not set a password"),
        "{list}"
    );
    let link = text(&run(&["operators", "link", "--email", "ann@example.com"], &url).stdout);
    assert!(
        link.contains("http://127.0.0.1:8080/dashboard/set-password?token="),
        "{link}"
    );

    // Now that an operator exists, serve prints no first owner's link.
    let served = Served::start(&url);
    assert!(
        !served.printed.join("\n").contains("set-password"),
        "{:?}",
        served.printed
    );
    served.stop();

    let gone = run(&["operators", "delete", "--email", "ann@example.com"], &url);
    assert!(
        text(&gone.stdout).contains("Removed ann@example.com"),
        "{}",
        text(&gone.stdout)
    );
    assert!(text(&run(&["operators", "list"], &url).stdout).contains("No operators yet"));
    let missing = run(&["operators", "delete", "--email", "ann@example.com"], &url);
    assert!(!missing.status.success());
    assert!(text(&missing.stderr).contains("no operator has the address ann@example.com"));
    let _ = std::fs::remove_dir_all(dir);
}
