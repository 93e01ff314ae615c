//! Emails go out over a real SMTP server (aiosmtpd, started on a random port): once when
//! nothing goes wrong; again after a server that was down comes up, or one that said "try
//! later" takes it; never when it refused for good; and at least once when memberd is killed
//! between claiming an email and sending it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use memberd_server::workers::email::SmtpUrl;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::cli::{temp_db, FreshPostgres, Served};
use crate::member_emails::{emails_to, six_digits};
use crate::smtp::SmtpServer;
use crate::support::{id, Backend, TestApp};

fn config_for(smtp: &str) -> memberd_server::Config {
    let mut config = crate::member_emails::email_config();
    config.email.smtp = Some(SmtpUrl::parse(smtp).unwrap());
    config.email.poll_interval = Duration::from_millis(100);
    config.email.first_retry = Duration::from_millis(200);
    config.email.timeout = Duration::from_secs(5);
    config
}

/// Asks for a reset code for a new member of the sandbox; the member's id.
async fn reset_email_for(app: &TestApp, address: &str, name: &str) -> String {
    let (status, member) = app
        .post(
            "/v1/members",
            json!({"email": address, "customFields": {"name": name}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{member}");
    let member_id = id(&member).to_owned();
    let (status, body) = app
        .post(
            &format!("/v1/members/{member_id}/send-password-reset-email"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    member_id
}

/// Waits for the newest email to `to` to be in `state`; that email.
async fn email_in_state(app: &TestApp, to: &str, state: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let emails = emails_to(app, &app.key, to).await;
        if let Some(email) = emails.first().filter(|e| e["state"] == state) {
            return email.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the email to {to} never became {state}: {emails:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the newest email to `to` has been tried at least `tries` times.
async fn tried(app: &TestApp, to: &str, tries: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let emails = emails_to(app, &app.key, to).await;
        if let Some(email) = emails
            .first()
            .filter(|e| e["attempts"].as_u64().unwrap_or(0) >= tries)
        {
            return email.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the email to {to} was never tried {tries} times: {emails:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn emails_arrive_once_with_the_apps_sender(app: Arc<TestApp>, smtp: Arc<SmtpServer>) {
    let name = "<script>alert(\"x\")</script> & Bob";
    reset_email_for(&app, "arrives@example.com", name).await;
    let messages = smtp.wait_for(1).await;
    let message = &messages[0];
    assert_eq!(message.rcpt_tos, ["arrives@example.com"]);
    assert_eq!(message.to, "arrives@example.com");
    assert!(message.from.contains("no-reply@"), "{message:?}");
    assert!(message.mail_from.starts_with("no-reply@"), "{message:?}");
    let code = six_digits(message.text.as_deref().unwrap()).expect("a code in the text");
    assert!(message.html.as_deref().unwrap().contains(&code));
    let sent = email_in_state(&app, "arrives@example.com", "sent").await;
    assert_eq!(sent["attempts"], 1);
    assert!(sent["sentAt"].is_string(), "{sent}");
    assert!(sent["text"].as_str().unwrap().contains(&code));

    // The environment's own sender, and a template that names the member: escaped in HTML.
    let (status, body) = app
        .patch(
            "/v1/app",
            json!({"emailFromName": "Example Club", "emailFromAddress": "club@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = crate::support::send(
        app.request(Method::PUT, "/v1/email-templates/password_reset")
            .json(&json!({
                "subject": "A code for {{ member.customFields.name }}",
                "text": "{{ member.customFields.name }}: {{ code }}",
                "html": "<p>{{ member.customFields.name }}: {{ code }}</p>",
            })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    reset_email_for(&app, "named@example.com", name).await;
    let messages = smtp.wait_for(2).await;
    let named = messages
        .iter()
        .find(|m| m.rcpt_tos == ["named@example.com"])
        .unwrap();
    assert!(named.from.contains("Example Club"), "{named:?}");
    assert!(named.from.contains("club@example.com"), "{named:?}");
    let html = named.html.as_deref().unwrap();
    assert!(html.contains("&lt;script&gt;"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
    assert!(
        named.text.as_deref().unwrap().starts_with(name),
        "{named:?}"
    );
    assert!(!named.subject.contains('\n'));

    email_in_state(&app, "named@example.com", "sent").await;
    assert_eq!(smtp.messages().await.len(), 2, "each email arrived once");
}

async fn a_server_that_was_down_gets_the_email_once_it_is_up(app: Arc<TestApp>, port: u16) {
    reset_email_for(&app, "patient@example.com", "Pat").await;
    let waiting = tried(&app, "patient@example.com", 2).await;
    assert_eq!(waiting["state"], "queued", "{waiting}");
    assert!(waiting["lastError"].is_string(), "{waiting}");
    assert!(waiting["nextAttemptAt"].is_string(), "{waiting}");

    let smtp = SmtpServer::start_on(port, None)
        .await
        .expect("the SMTP server starts where memberd expects it");
    let messages = smtp.wait_for(1).await;
    assert_eq!(messages[0].rcpt_tos, ["patient@example.com"]);
    let sent = email_in_state(&app, "patient@example.com", "sent").await;
    assert!(sent["attempts"].as_u64().unwrap() >= 3, "{sent}");
    assert_eq!(smtp.messages().await.len(), 1, "once, not once per try");
}

async fn try_later_is_retried_and_a_refusal_is_final(app: Arc<TestApp>, smtp: Arc<SmtpServer>) {
    smtp.reject(Some(451)).await;
    reset_email_for(&app, "later@example.com", "Lee").await;
    let waiting = tried(&app, "later@example.com", 2).await;
    assert_eq!(waiting["state"], "queued", "{waiting}");
    assert!(
        waiting["lastError"].as_str().unwrap().contains("451"),
        "{waiting}"
    );
    smtp.reject(None).await;
    smtp.wait_for(1).await;
    email_in_state(&app, "later@example.com", "sent").await;

    smtp.reject(Some(550)).await;
    reset_email_for(&app, "refused@example.com", "Rae").await;
    let failed = email_in_state(&app, "refused@example.com", "failed").await;
    assert_eq!(failed["attempts"], 1, "no retry after a refusal: {failed}");
    assert!(
        failed["stateReason"].as_str().unwrap().contains("550"),
        "{failed}"
    );
    smtp.reject(None).await;
    assert_eq!(smtp.messages().await.len(), 1);
}

/// An SMTP server that wants a login gets the URL's user and password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smtp_urls_credentials_log_in() {
    let Some(smtp) = SmtpServer::start_on(0, Some(("mailer", "s3cr%t"))).await else {
        return;
    };
    let config = config_for(&format!("smtp://mailer:s3cr%25t@127.0.0.1:{}", smtp.port));
    crate::support::run(Backend::Sqlite, config, move |app| async move {
        reset_email_for(&app, "authed@example.com", "Al").await;
        let messages = smtp.wait_for(1).await;
        assert_eq!(messages[0].auth_user.as_deref(), Some("mailer"));
        email_in_state(&app, "authed@example.com", "sent").await;
    })
    .await;
}

/// Runs `case` on a fresh app whose emails go to a fresh SMTP server.
async fn with_smtp<F, Fut>(backend: Backend, case: F)
where
    F: FnOnce(Arc<TestApp>, Arc<SmtpServer>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(smtp) = SmtpServer::start().await else {
        return;
    };
    let smtp = Arc::new(smtp);
    let config = config_for(&smtp.url());
    crate::support::run(backend, config, move |app| case(app, smtp)).await;
}

/// Runs the down-then-up case against a port where nothing listens yet.
async fn with_smtp_down(backend: Backend) {
    if SmtpServer::start().await.is_none() {
        return;
    }
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let config = config_for(&format!("smtp://127.0.0.1:{port}"));
    crate::support::run(backend, config, move |app| {
        a_server_that_was_down_gets_the_email_once_it_is_up(app, port)
    })
    .await;
}

/// memberd is killed (SIGKILL) after it claimed an email and while the SMTP server holds
/// the conversation; the next memberd sends it once the dead one's lease runs out.
async fn an_email_claimed_by_a_killed_server_is_sent_by_the_next(database_url: &str) {
    let Some(smtp) = SmtpServer::start().await else {
        return;
    };
    smtp.stall(true).await;
    let url = smtp.url();
    // A lease is twice the SMTP timeout and 5 s: 7 s here.
    let flags = [
        "--smtp-url",
        url.as_str(),
        "--smtp-timeout-secs",
        "1",
        "--rate-limit-per-second",
        "0",
    ];
    let served = Served::start_with(database_url, &flags);
    let key = served.secret("sk_sb_").expect("a sandbox key");
    let client = reqwest::Client::new();
    let member: Value = client
        .post(format!("{}/v1/members", served.base))
        .bearer_auth(&key)
        .json(&json!({"email": "crash@example.com"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let member_id = id(&member).to_owned();
    let queued = client
        .post(format!(
            "{}/v1/members/{member_id}/send-password-reset-email",
            served.base
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), StatusCode::ACCEPTED);

    // Claimed: the lease is in the database while the SMTP server stalls the conversation.
    let store = memberd_store::Store::connect(database_url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.queued_emails_leased().await.unwrap() == 0 {
        assert!(Instant::now() < deadline, "the email was never claimed");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::task::spawn_blocking(move || served.kill_hard())
        .await
        .unwrap();
    smtp.stall(false).await;
    assert!(
        smtp.messages().await.is_empty(),
        "nothing arrived from the killed server"
    );

    let served = Served::start_with(database_url, &flags);
    let messages = smtp.wait_for(1).await;
    assert_eq!(messages[0].rcpt_tos, ["crash@example.com"]);
    // The email's own id, on every try: a receiver can tell a resend.
    assert!(
        messages[0].message_id.starts_with("<eml_"),
        "{:?}",
        messages[0]
    );
    let email: Value = {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let page: Value = client
                .get(format!("{}/v1/emails", served.base))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let email = page["data"][0].clone();
            if email["state"] == "sent" {
                break email;
            }
            assert!(Instant::now() < deadline, "never recorded as sent: {page}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(email["to"], "crash@example.com");

    // With nothing crashing, an email arrives once.
    let again = client
        .post(format!(
            "{}/v1/members/{member_id}/send-verification-email",
            served.base
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    let messages = smtp.wait_for(2).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    served.stop();
    store.close().await;
}

mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn emails_arrive_once_with_the_apps_sender() {
        with_smtp(
            Backend::Sqlite,
            super::emails_arrive_once_with_the_apps_sender,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_that_was_down_gets_the_email_once_it_is_up() {
        with_smtp_down(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn try_later_is_retried_and_a_refusal_is_final() {
        with_smtp(
            Backend::Sqlite,
            super::try_later_is_retried_and_a_refusal_is_final,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_email_claimed_by_a_killed_server_is_sent_by_the_next() {
        let (dir, url) = temp_db();
        super::an_email_claimed_by_a_killed_server_is_sent_by_the_next(&url).await;
        let _ = std::fs::remove_dir_all(dir);
    }
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn emails_arrive_once_with_the_apps_sender() {
        with_smtp(
            Backend::Postgres,
            super::emails_arrive_once_with_the_apps_sender,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_that_was_down_gets_the_email_once_it_is_up() {
        with_smtp_down(Backend::Postgres).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn try_later_is_retried_and_a_refusal_is_final() {
        with_smtp(
            Backend::Postgres,
            super::try_later_is_retried_and_a_refusal_is_final,
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_email_claimed_by_a_killed_server_is_sent_by_the_next() {
        let Some(db) = FreshPostgres::create("email crash").await else {
            return;
        };
        super::an_email_claimed_by_a_killed_server_is_sent_by_the_next(&db.url).await;
        db.drop_database().await;
    }
}
