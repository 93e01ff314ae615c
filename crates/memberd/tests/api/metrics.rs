//! `/metrics` of a real `memberd serve`, on its own listener: after a known sequence of
//! requests, logins, a webhook delivery and charges, the counts it caused are there, the whole
//! text parses as Prometheus's format, and no label carries an id, an email or a key.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use crate::cli::{temp_db, FreshPostgres, Served};
use crate::receiver::Receiver;

struct Api {
    client: Client,
    base: String,
    key: String,
    /// Every answer, by (route template, status class), as /metrics should count them.
    seen: BTreeMap<(String, String), u64>,
}

impl Api {
    async fn call(
        &mut self,
        route: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("memberd answers");
        let status = response.status();
        let class = format!("{}xx", status.as_u16() / 100);
        *self.seen.entry((route.to_owned(), class)).or_default() += 1;
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

async fn scrape(url: &str) -> String {
    let response = reqwest::get(url).await.expect("/metrics answers");
    assert_eq!(response.status(), StatusCode::OK);
    let kind = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
    response.text().await.unwrap()
}

/// The whole text, parsed as Prometheus's format: each sample as (name, labels, value).
fn parse(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let (metrics, error) = prom_text_format_parser::parse_scrape(text);
    assert!(
        error.is_none(),
        "/metrics does not parse: {error:?}\n{text}"
    );
    let mut samples = Vec::new();
    for metric in metrics {
        for sample in metric.samples {
            let labels = sample
                .labels
                .iter()
                .map(|l| (l.key.clone(), l.value.clone()))
                .collect();
            samples.push((metric.name.clone(), labels, sample.value.value.as_f64()));
        }
    }
    samples
}

/// The sum of the samples `name{labels}` (labels given in any order, others ignored); 0 when
/// there are none.
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    parse(text)
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

async fn counts_what_it_served(database_url: &str) {
    let served = Served::start_with(
        database_url,
        &[
            "--metrics-listen",
            "127.0.0.1:0",
            "--allow-private-webhook-targets",
            "--rate-limit-per-second",
            "20",
            "--rate-limit-burst",
            "20",
        ],
    );
    let metrics = served
        .printed
        .iter()
        .find_map(|l| l.trim().strip_prefix("metrics: "))
        .unwrap_or_else(|| panic!("serve says where /metrics is: {:?}", served.printed))
        .to_owned();
    let main_metrics = reqwest::get(format!("{}/metrics", served.base))
        .await
        .unwrap();
    assert_eq!(
        main_metrics.status(),
        StatusCode::NOT_FOUND,
        "not on the main listener unless asked"
    );
    let key = served.secret("sk_sb_").expect("the sandbox key is printed");
    let live_key = served.secret("sk_live_").expect("the live key is printed");
    let publishable = served
        .secret("pk_sb_")
        .expect("the publishable key is printed");
    let mut api = Api {
        client: Client::new(),
        base: served.base.clone(),
        key,
        seen: BTreeMap::new(),
    };

    let receiver = Receiver::start().await;
    let (status, _) = api
        .call(
            "/v1/webhook-endpoints",
            "POST",
            "/v1/webhook-endpoints",
            Some(
                json!({"url": format!("{}/hook", receiver.base), "eventTypes": ["member.created"]}),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for _ in 0..3 {
        let (status, _) = api.call("/v1/members", "GET", "/v1/members", None).await;
        assert_eq!(status, StatusCode::OK);
    }
    for _ in 0..2 {
        let (status, _) = api
            .call(
                "/v1/members/{id}",
                "GET",
                "/v1/members/nobody@example.com",
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    let (status, plan) = api
        .call("/v1/plans", "POST", "/v1/plans",
            Some(json!({"name": "Gold", "prices": [{"amount": 900, "currency": "USD", "interval": "MONTH"}]})))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    for (email, card, expected) in [
        ("paid@example.com", "4242424242424242", StatusCode::CREATED),
        (
            "declined@example.com",
            "4000000000000341",
            StatusCode::PAYMENT_REQUIRED,
        ),
    ] {
        let (_, member) = api
            .call(
                "/v1/members",
                "POST",
                "/v1/members",
                Some(json!({"email": email})),
            )
            .await;
        let id = member["id"].as_str().unwrap().to_owned();
        let (status, _) = api
            .call("/v1/members/{id}/payment-methods", "POST", &format!("/v1/members/{id}/payment-methods"),
                Some(json!({"card": {"number": card, "expMonth": 12, "expYear": 2040, "cvc": "123"}})))
            .await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _) = api
            .call(
                "/v1/members/{id}/plan-connections",
                "POST",
                &format!("/v1/members/{id}/plan-connections"),
                Some(json!({"planId": plan["id"]})),
            )
            .await;
        assert_eq!(status, expected);
    }
    receiver
        .wait_for(20, "the two member.created deliveries", |got| {
            got.len() >= 2
        })
        .await;

    // A member signs up, fails to log in once, then logs in.
    let client = Client::new();
    let member_api = |path: &str| {
        client
            .post(format!("{}/memberstack/client{path}", served.base))
            .header("X-API-Key", &publishable)
    };
    let signed_up = member_api("/auth/signup")
        .json(&json!({"email": "self@example.com", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        signed_up.status(),
        StatusCode::OK,
        "{}",
        signed_up.text().await.unwrap()
    );
    for (password, expected) in [
        ("wrong password!", StatusCode::UNAUTHORIZED),
        ("correct horse battery", StatusCode::OK),
    ] {
        let login = member_api("/auth/login")
            .json(&json!({"email": "self@example.com", "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), expected);
    }

    // The live key, far over its limit of 20 at once.
    let mut refused = 0;
    let mut flood = Vec::new();
    for _ in 0..40 {
        flood.push(
            api.client
                .get(format!("{}/v1/members", served.base))
                .bearer_auth(&live_key),
        );
    }
    let mut live_ok = 0u64;
    for response in all_at_once(flood).await {
        match response.status() {
            StatusCode::TOO_MANY_REQUESTS => refused += 1,
            StatusCode::OK => live_ok += 1,
            other => panic!("the flood got {other}"),
        }
    }
    assert!(
        refused > 0,
        "40 requests at once against a burst of 20 are refused in part"
    );

    // Three member.created deliveries (two members made with the key, one sign-up), counted
    // once their attempts have been made.
    let mut text = scrape(&metrics).await;
    for _ in 0..50 {
        if value(
            &text,
            "memberd_webhook_deliveries_total",
            &[("outcome", "delivered")],
        ) >= 3.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        text = scrape(&metrics).await;
    }

    for ((route, class), count) in &api.seen {
        let mut expected = *count;
        if route == "/v1/members" && class == "2xx" {
            expected += live_ok;
        }
        let counted = value(
            &text,
            "memberd_http_requests_total",
            &[("route", route), ("status", class)],
        );
        assert_eq!(counted, expected as f64, "{route} {class}");
    }
    assert_eq!(
        value(
            &text,
            "memberd_http_requests_total",
            &[("route", "/v1/members"), ("status", "4xx")]
        ),
        refused as f64
    );
    assert_eq!(
        value(&text, "memberd_rate_limited_total", &[]),
        refused as f64
    );
    assert_eq!(
        value(
            &text,
            "memberd_charges_total",
            &[("kind", "first"), ("outcome", "succeeded")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "memberd_charges_total",
            &[("kind", "first"), ("outcome", "failed")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "memberd_webhook_deliveries_total",
            &[("outcome", "delivered")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            "memberd_webhook_attempts_total",
            &[("outcome", "succeeded")]
        ),
        3.0
    );
    assert_eq!(
        value(
            &text,
            "memberd_logins_total",
            &[("who", "member"), ("outcome", "failed")]
        ),
        1.0
    );
    assert_eq!(
        value(
            &text,
            "memberd_logins_total",
            &[("who", "member"), ("outcome", "succeeded")]
        ),
        1.0
    );
    assert_eq!(
        value(&text, "memberd_webhook_queue_depth", &[("env", "sandbox")]),
        0.0
    );
    says_its_version(&text);
    assert!(value(&text, "memberd_db_pool_open_connections", &[]) >= 1.0);
    assert!(
        text.contains("memberd_http_request_duration_seconds_bucket{"),
        "a latency histogram"
    );
    assert!(
        text.contains("memberd_db_pool_wait_seconds_count{"),
        "the pool's wait, probed"
    );
    for secret in [&api.key, &live_key, &publishable] {
        assert!(!text.contains(secret.as_str()), "no key in /metrics");
    }
    assert!(
        !text.contains("@example.com") && !text.contains("mem_") && !text.contains("pln_"),
        "no id or email in a label"
    );
    promtool_accepts(&text);
    served.stop();
}

/// `promtool check metrics` (Debian's prometheus package), Prometheus's own parser and
/// linter, passes on the text. CI installs it; elsewhere it is skipped when missing.
fn promtool_accepts(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        assert!(
            std::env::var_os("MEMBERD_REQUIRE_SDK_TESTS").is_none(),
            "promtool is required but not installed (apt-get install prometheus)"
        );
        eprintln!("promtool is not installed: its check of /metrics skipped");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );
}

fn says_its_version(text: &str) {
    let version = [("version", env!("CARGO_PKG_VERSION"))];
    assert_eq!(value(text, "memberd_build_info", &version), 1.0);
}

/// Sends them all at once and waits for every answer.
async fn all_at_once(requests: Vec<reqwest::RequestBuilder>) -> Vec<reqwest::Response> {
    let sent: Vec<_> = requests
        .into_iter()
        .map(|r| tokio::spawn(r.send()))
        .collect();
    let mut answers = Vec::new();
    for answer in sent {
        answers.push(answer.await.unwrap().expect("memberd answers"));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let (dir, url) = temp_db();
    counts_what_it_served(&url).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let Some(db) = FreshPostgres::create("metrics").await else {
        return;
    };
    counts_what_it_served(&db.url).await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_serves_its_metrics_too() {
    use std::io::{BufRead, BufReader};
    let (dir, url) = temp_db();
    let mut worker = crate::cli::memberd()
        .args([
            "--database-url",
            &url,
            "worker",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("memberd worker starts");
    let stdout = worker.stdout.take().unwrap();
    let metrics = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| l.trim().strip_prefix("metrics: ").map(str::to_owned))
    })
    .await
    .unwrap()
    .expect("the worker says where /metrics is");
    let text = scrape(&metrics).await;
    says_its_version(&text);
    let queued: Vec<f64> = parse(&text)
        .into_iter()
        .filter(|(name, _, _)| name == "memberd_emails_queued")
        .map(|(_, _, v)| v)
        .collect();
    assert_eq!(queued, vec![0.0], "the queues are read at the scrape");
    promtool_accepts(&text);
    let _ = worker.kill();
    let _ = worker.wait();
    let _ = std::fs::remove_dir_all(dir);
}
