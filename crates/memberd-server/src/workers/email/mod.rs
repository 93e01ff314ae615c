//! The email sender: drains the outbox over SMTP.
//!
//! One pass claims the emails that are due with a lease, sends them concurrently and records
//! each outcome: sent; tried again later on a doubling wait (a server that is down, a 4xx
//! answer); failed at once on a 5xx answer, or after a day of tries. A sender killed mid-send
//! leaves a lease that runs out, and the email goes again: at least once, never lost. With no
//! SMTP server configured, emails are kept, marked `not_sent`, and read at `GET /v1/emails`.

pub mod smtp;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use memberd_core::sending::next_try;
use memberd_core::Timestamp;
use memberd_store::{DueEmail, EmailOutcome, Store};
use rand::Rng;
use tokio::sync::Notify;
use tokio::task::JoinSet;

pub use smtp::SmtpUrl;

use crate::clock::Clock;

/// What `not_sent` says when there is no SMTP server.
pub const NO_SMTP_SERVER: &str = "no SMTP server configured";
/// A sender woken by a stream of writes passes over the outbox at most this often.
const WOKEN_AT_MOST_EVERY: Duration = Duration::from_millis(20);

#[derive(Debug, Clone)]
pub struct MailerConfig {
    /// The SMTP server; `None` keeps emails unsent.
    pub smtp: Option<SmtpUrl>,
    /// The sender of emails whose environment names none: `memberd <no-reply@host>` of the
    /// public URL when unset.
    pub from: Option<String>,
    /// How long an SMTP conversation may take.
    pub timeout: Duration,
    /// How often to look for emails when nobody says there are some (others nodes' writes).
    pub poll_interval: Duration,
    /// The wait after the first failed try; each next one doubles, up to an hour.
    pub first_retry: Duration,
    /// How many emails are sent at once.
    pub concurrency: usize,
}

impl Default for MailerConfig {
    fn default() -> Self {
        MailerConfig {
            smtp: None,
            from: None,
            timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            first_retry: Duration::from_secs(30),
            concurrency: 8,
        }
    }
}

/// The sender for emails whose environment names none, given the server's public URL.
pub fn default_sender(config: &MailerConfig, public_url: &str) -> Result<Mailbox, String> {
    match &config.from {
        Some(from) => from
            .parse::<Mailbox>()
            .map_err(|e| format!("--email-from {from:?} is not an address: {e}")),
        None => {
            let host = url::Url::parse(public_url)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
                .filter(|h| h.contains('.') && !h.bytes().all(|b| b.is_ascii_digit() || b == b'.'))
                .unwrap_or_else(|| "localhost".to_owned());
            format!("memberd <no-reply@{host}>")
                .parse::<Mailbox>()
                .map_err(|e| format!("the default sender: {e}"))
        }
    }
}

pub struct Mailer {
    store: Store,
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    clock: Arc<dyn Clock>,
    config: MailerConfig,
    /// Identifies this sender's leases.
    owner: String,
    wake: Arc<Notify>,
}

impl Mailer {
    pub fn new(
        store: Store,
        config: MailerConfig,
        from: Mailbox,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Arc<Self>> {
        let transport = config
            .smtp
            .as_ref()
            .map(|url| url.transport(config.timeout))
            .transpose()?;
        Ok(Arc::new(Mailer {
            store,
            transport,
            from,
            clock,
            config,
            owner: format!("mailer-{:016x}", rand::random::<u64>()),
            wake: Arc::new(Notify::new()),
        }))
    }

    /// Wakes the sender now, after a write queued an email.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// How long a claimed email is this sender's: long enough to send it and record it.
    fn lease(&self) -> Duration {
        self.config.timeout * 2 + Duration::from_secs(5)
    }

    /// One pass over the emails that are due now; how many were tried.
    pub async fn tick(self: &Arc<Self>) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let lease_until = Timestamp::from_micros(now.as_micros() + self.lease().as_micros() as i64);
        let due = self
            .store
            .claim_emails(
                now,
                lease_until,
                &self.owner,
                self.config.concurrency as u32,
            )
            .await?;
        let count = due.len();
        let mut running = JoinSet::new();
        for email in due {
            let this = self.clone();
            running.spawn(async move {
                let outcome = this.send(&email).await;
                match &outcome {
                    EmailOutcome::Sent => crate::telemetry::email("sent"),
                    EmailOutcome::Failed { .. } => crate::telemetry::email("failed"),
                    EmailOutcome::NotSent { .. } => crate::telemetry::email("not_sent"),
                    EmailOutcome::RetryAt { .. } => {}
                }
                (email, outcome)
            });
        }
        while let Some(done) = running.join_next().await {
            let Ok((email, outcome)) = done else { continue };
            let now = self.clock.now();
            match self
                .store
                .record_email(&email.record.id, &self.owner, &outcome, now)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(email = %email.record.id, "an email's lease ran out before its outcome was recorded; it may be sent again")
                }
                Err(error) => {
                    tracing::error!(%error, email = %email.record.id, "could not record how an email went; it is sent again when its lease ends")
                }
            }
        }
        Ok(count)
    }

    /// Passes until nothing is due now: for tests.
    pub async fn drain(self: &Arc<Self>) -> anyhow::Result<usize> {
        let mut tried = 0;
        loop {
            let n = self.tick().await?;
            if n == 0 {
                return Ok(tried);
            }
            tried += n;
        }
    }

    /// Runs until `shutdown` resolves; a pass in flight finishes first.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        super::run_passes(
            "email sender",
            shutdown,
            self.config.poll_interval,
            Some(super::Wake {
                notify: &self.wake,
                at_most_every: WOKEN_AT_MOST_EVERY,
            }),
            || async { Ok(self.tick().await? > 0) },
        )
        .await;
    }

    #[tracing::instrument(skip_all, fields(email = %email.record.id, kind = %email.record.kind))]
    async fn send(&self, email: &DueEmail) -> EmailOutcome {
        let Some(transport) = &self.transport else {
            return EmailOutcome::NotSent {
                reason: NO_SMTP_SERVER.to_owned(),
            };
        };
        let message = match self.message(email) {
            Ok(message) => message,
            Err(reason) => return EmailOutcome::Failed { reason },
        };
        match transport.send(message).await {
            Ok(_) => EmailOutcome::Sent,
            Err(err) if err.is_permanent() => {
                let reason = format!("refused by the SMTP server: {err}");
                tracing::warn!(%reason, "an email was refused for good");
                EmailOutcome::Failed { reason }
            }
            Err(err) => {
                let error = describe(&err);
                let now = self.clock.now();
                let jitter = rand::thread_rng().gen::<f64>();
                let first_ms = self.config.first_retry.as_millis() as i64;
                match next_try(
                    email.record.attempts + 1,
                    email.record.created_at,
                    now,
                    first_ms,
                    jitter,
                ) {
                    Some(at) => {
                        tracing::info!(%error, attempt = email.record.attempts + 1, "an email could not be sent; it is tried again");
                        EmailOutcome::RetryAt { at, error }
                    }
                    None => {
                        let reason = format!("not sent within a day; the last try: {error}");
                        tracing::warn!(%reason, "gave up on an email");
                        EmailOutcome::Failed { reason }
                    }
                }
            }
        }
    }

    fn message(&self, email: &DueEmail) -> Result<Message, String> {
        let r = &email.record;
        let from = match &r.from_address {
            Some(address) => {
                let address = address
                    .parse()
                    .map_err(|e| format!("the sender {address:?} is not an address: {e}"))?;
                Mailbox::new(r.from_name.clone(), address)
            }
            None => self.from.clone(),
        };
        let to: Mailbox =
            r.to.parse()
                .map_err(|e| format!("the recipient is not an address: {e}"))?;
        // The same id on every try, so that a receiver can tell a resent email after a crash.
        let host = from.email.domain().to_owned();
        Message::builder()
            .from(from)
            .to(to)
            .subject(r.subject.clone())
            .message_id(Some(format!("<{}@{host}>", r.id)))
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(r.text.clone()),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(r.html.clone()),
                    ),
            )
            .map_err(|e| format!("the email could not be built: {e}"))
    }
}

/// Why a send failed, with its causes (the server's credentials are in none of them).
fn describe(err: &lettre::transport::smtp::Error) -> String {
    use std::error::Error;
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}
