//! The webhook dispatcher: drains the event log into per-endpoint deliveries and sends them,
//! signed per Standard Webhooks, with retries on a growing schedule.
//!
//! One pass ("tick") fans new events out into deliveries, leases the deliveries that are due,
//! sends them concurrently, and records every attempt with what follows from it. Leases live
//! in the database, so several dispatchers (in several memberd processes) never send the same
//! attempt at once, and a dispatcher that dies mid-send leaves leases that simply expire.

pub mod js_json;
pub mod signing;
pub mod target;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use memberd_core::webhook::{self, failed_too_long, next_attempt, ContractContext, Flavour};
use memberd_core::{AttemptId, ConnectionId, Timestamp};
use memberd_store::{AttemptRecord, AttemptResult, DeliveryNext, DueDelivery, Store};
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::clock::Clock;

/// How much of a receiver's answer the attempt log keeps.
const RESPONSE_BODY_LIMIT: usize = 2_048;
/// A dispatcher woken by writes whose events no endpoint wants (or none is there) would pass
/// over the endpoints after every one of them.
const WOKEN_AT_MOST_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// How long a receiver may take to answer.
    pub timeout: Duration,
    /// How many deliveries are sent at once.
    pub concurrency: usize,
    /// How often to look for work when nobody says there is some.
    pub poll_interval: Duration,
    /// Whether webhooks may reach loopback, private and link-local addresses.
    pub allow_private_targets: bool,
}

impl Default for DispatcherConfig {
    fn default() -> Self {
        DispatcherConfig {
            timeout: Duration::from_secs(15),
            concurrency: 64,
            poll_interval: Duration::from_millis(500),
            allow_private_targets: false,
        }
    }
}

pub struct Dispatcher {
    store: Store,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
    config: DispatcherConfig,
    /// Identifies this dispatcher's leases.
    owner: String,
    wake: Arc<Notify>,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    pub fanned_out: usize,
    pub attempts: usize,
}

impl Tick {
    pub fn is_idle(&self) -> bool {
        self.fanned_out == 0 && self.attempts == 0
    }
}

impl Dispatcher {
    pub fn new(
        store: Store,
        config: DispatcherConfig,
        clock: Arc<dyn Clock>,
    ) -> anyhow::Result<Arc<Self>> {
        let client = target::client(config.timeout, config.allow_private_targets)?;
        Ok(Arc::new(Dispatcher {
            store,
            client,
            clock,
            config,
            owner: format!("dispatcher-{:016x}", rand::random::<u64>()),
            wake: Arc::new(Notify::new()),
        }))
    }

    /// Wakes the dispatcher now, for instance after a write recorded events.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// One pass over what is due now.
    pub async fn tick(self: &Arc<Self>) -> anyhow::Result<Tick> {
        let fanned_out = self.store.fan_out(1_000).await?;
        let now = self.clock.now();
        // Long enough to send and record; short enough that the deliveries of a dispatcher
        // that died are picked up soon by another.
        let lease = self.config.timeout * 2 + Duration::from_secs(5);
        let lease_until = Timestamp::from_micros(now.as_micros() + lease.as_micros() as i64);
        let due = self
            .store
            .claim_deliveries(
                now,
                lease_until,
                &self.owner,
                self.config.concurrency as u32,
            )
            .await?;
        let attempts = due.len();
        let mut running = JoinSet::new();
        for delivery in due {
            let this = self.clone();
            running.spawn(async move { this.attempt(delivery).await });
        }
        // Attempts that finish while others are being recorded are recorded together.
        let mut finished = Vec::new();
        while let Some(done) = running.join_next().await {
            finished.extend(done.ok());
            while let Some(done) = running.try_join_next() {
                finished.extend(done.ok());
            }
            if finished.is_empty() {
                continue;
            }
            if let Err(err) = self.store.record_attempts(&finished).await {
                tracing::error!(error = %err, attempts = finished.len(), "could not record webhook attempts; they are made again when their leases end");
            }
            finished.clear();
        }
        Ok(Tick {
            fanned_out,
            attempts,
        })
    }

    /// Passes until nothing is left to do now: for tests, which then look at the receiver.
    pub async fn drain(self: &Arc<Self>) -> anyhow::Result<usize> {
        let mut attempts = 0;
        loop {
            let tick = self.tick().await?;
            attempts += tick.attempts;
            if tick.is_idle() {
                return Ok(attempts);
            }
        }
    }

    /// Runs until `shutdown` resolves; a pass in flight finishes first.
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        super::run_passes(
            "webhook dispatcher",
            shutdown,
            self.config.poll_interval,
            Some(super::Wake {
                notify: &self.wake,
                at_most_every: WOKEN_AT_MOST_EVERY,
            }),
            || async { Ok(!self.tick().await?.is_idle()) },
        )
        .await;
    }

    #[tracing::instrument(skip_all, fields(delivery = %d.id, endpoint = %d.endpoint.id, event = %d.event.id))]
    async fn attempt(&self, d: DueDelivery) -> AttemptResult {
        let now = self.clock.now();
        let number = d.attempts.saturating_add(1);
        let started = Instant::now();
        let sent = self.send(&d, now).await;
        let duration_ms = started.elapsed().as_millis() as i64;
        let (status_code, response_body, error) = match sent {
            Ok((status, body)) => (Some(status), Some(body), None),
            Err(err) => (None, None, Some(err)),
        };
        let success = status_code.is_some_and(|s| (200..300).contains(&s));
        let gone = status_code == Some(410);
        let next = if success {
            DeliveryNext::Delivered
        } else if gone {
            DeliveryNext::GiveUp
        } else {
            let jitter = rand::thread_rng().gen::<f64>();
            next_attempt(number, now, jitter).map_or(DeliveryNext::GiveUp, DeliveryNext::RetryAt)
        };
        let disable_endpoint = if gone {
            Some("gone".to_owned())
        } else if !success && failed_too_long(d.endpoint.failing_since, now) {
            Some("failing".to_owned())
        } else {
            None
        };
        if !success {
            tracing::info!(status = ?status_code, error = ?error, attempt = number, "webhook attempt failed");
        }
        crate::telemetry::webhook_attempt(match (success, gone) {
            (true, _) => "succeeded",
            (false, true) => "gone",
            (false, false) => "failed",
        });
        match next {
            DeliveryNext::Delivered => crate::telemetry::webhook_delivery("delivered"),
            DeliveryNext::GiveUp => crate::telemetry::webhook_delivery("given_up"),
            DeliveryNext::RetryAt(_) => {}
        }
        AttemptResult {
            scope: d.scope,
            attempt: AttemptRecord {
                id: AttemptId::generate(),
                delivery_id: d.id,
                endpoint_id: d.endpoint.id,
                event_id: d.event.id,
                attempt: number,
                trigger: if d.replay { "manual" } else { "automatic" }.to_owned(),
                started_at: now,
                duration_ms,
                status_code,
                response_body,
                error,
            },
            next,
            disable_endpoint,
            lease_owner: self.owner.clone(),
            now,
        }
    }

    /// The contract an `appstle` message is about, as the store knows it now (its number, plan
    /// name and customer id are not in the event).
    async fn contract_context(&self, d: &DueDelivery) -> ContractContext {
        if d.endpoint.flavour != Flavour::Appstle {
            return ContractContext::default();
        }
        let Some(id) = d.event.data["planConnection"]["id"]
            .as_str()
            .and_then(ConnectionId::parse)
        else {
            return ContractContext::default();
        };
        self.store
            .contract_context(&d.scope, &id)
            .await
            .unwrap_or_else(|err| {
                tracing::warn!(error = %err, "could not read a contract for an appstle message");
                ContractContext::default()
            })
    }

    /// Sends one message; the receiver's status and the start of its body, or why nothing
    /// was received.
    async fn send(&self, d: &DueDelivery, now: Timestamp) -> Result<(u16, String), String> {
        let context = self.contract_context(d).await;
        send_event(
            &self.client,
            &d.endpoint,
            &d.event,
            &context,
            self.config.allow_private_targets,
            now,
        )
        .await
    }
}

/// Sends `event` to `endpoint`, signed, in the endpoint's flavour: the receiver's status and
/// the start of its body, or why nothing was received. The dispatcher's deliveries and the
/// dashboard's test events both go out through this.
pub async fn send_event(
    client: &reqwest::Client,
    endpoint: &memberd_core::webhook::Endpoint,
    event: &memberd_core::event::Event,
    context: &ContractContext,
    allow_private_targets: bool,
    now: Timestamp,
) -> Result<(u16, String), String> {
    let message = webhook::message_with(endpoint.flavour, event, context).ok_or_else(|| {
        format!(
            "the {} flavour does not send {} events",
            endpoint.flavour, event.kind
        )
    })?;
    let url = reqwest::Url::parse(&endpoint.url).map_err(|e| format!("invalid url: {e}"))?;
    target::check_literal(&url, allow_private_targets)?;
    let body = js_json::to_string(&message.body);
    // The header carries the wall-clock time of sending, which receivers compare with
    // their own clocks; scheduling reads the dispatcher's clock.
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut secrets = endpoint.signing_secrets(now);
    if endpoint.flavour == Flavour::Memberstack {
        // Memberstack's SDK reads a single signature.
        secrets.truncate(1);
    }
    let msg_id = event.id.as_str();
    let signature = secrets
        .iter()
        .filter_map(|s| signing::sign(s, msg_id, timestamp, body.as_bytes()))
        .collect::<Vec<_>>()
        .join(" ");
    let headers = headers(msg_id, timestamp, &signature).map_err(|e| e.to_string())?;
    let response = client
        .post(url)
        .headers(headers)
        .body(body)
        .send()
        .await
        .map_err(describe)?;
    let status = response.status().as_u16();
    Ok((status, bounded_body(response).await))
}

fn headers(
    msg_id: &str,
    timestamp: i64,
    signature: &str,
) -> Result<HeaderMap, reqwest::header::InvalidHeaderValue> {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for prefix in ["webhook", "svix"] {
        h.insert(
            reqwest::header::HeaderName::from_bytes(format!("{prefix}-id").as_bytes())
                .expect("a valid header name"),
            HeaderValue::from_str(msg_id)?,
        );
        h.insert(
            reqwest::header::HeaderName::from_bytes(format!("{prefix}-timestamp").as_bytes())
                .expect("a valid header name"),
            HeaderValue::from(timestamp),
        );
        h.insert(
            reqwest::header::HeaderName::from_bytes(format!("{prefix}-signature").as_bytes())
                .expect("a valid header name"),
            HeaderValue::from_str(signature)?,
        );
    }
    Ok(h)
}

/// Reads at most `RESPONSE_BODY_LIMIT` bytes of a response.
async fn bounded_body(mut response: reqwest::Response) -> String {
    let mut body = Vec::new();
    while body.len() < RESPONSE_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(RESPONSE_BODY_LIMIT);
    String::from_utf8_lossy(&body).into_owned()
}

/// Why a request got no answer, without the URL (the log has it) and with the cause.
fn describe(err: reqwest::Error) -> String {
    use std::error::Error;
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut message = kind.to_owned();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
