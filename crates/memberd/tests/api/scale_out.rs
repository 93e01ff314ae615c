//! Three `memberd serve` processes over one PostgreSQL database, as a cluster runs: each event
//! is delivered once, a key's rate limit is one for all of them, a change made through one node
//! (or in plain SQL) reaches the other nodes' read caches long before an entry's lifetime ends,
//! and a node that stops hearing notifications stops caching. PostgreSQL only: on SQLite one
//! process serves the file.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{StatusCode, Url};
use serde_json::{json, Value};
use sqlx::{Connection, PgConnection, Row};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use super::cli::{FreshPostgres, Served};
use crate::receiver::{Received, Receiver};

/// Entries live ten minutes, far beyond any test here: a change that shows was made to show by
/// a notification (or by the node finding its listener deaf), never by an entry expiring.
const CACHING: [&str; 4] = ["--read-cache-ms", "600000", "--rate-limit-per-second", "0"];
/// How long a change may take to reach another node's cache, or a log line to appear: far
/// below the cache's lifetime, and generous for a loaded machine.
const WITHIN: Duration = Duration::from_secs(30);

const DEAF: &str = "has heard none of this node's heartbeats";
const HEARS_AGAIN: &str = "hears this node's heartbeats again";

impl Served {
    /// How many lines logged so far contain `text`.
    fn logged(&self, text: &str) -> usize {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(text))
            .count()
    }

    async fn wait_for_log(&self, text: &str) {
        let deadline = Instant::now() + WITHIN;
        while self.logged(text) == 0 {
            assert!(
                Instant::now() < deadline,
                "no {text:?} within {WITHIN:?}; logged: {:#?}",
                self.logs.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Three nodes, on `urls` (the same database, reached directly or not): the first migrates the
/// empty database, creates the app and prints its sandbox key; the others start after it.
fn start_three(urls: [&str; 3], flags: &[&str]) -> ([Served; 3], String) {
    let first = Served::start_logging(urls[0], flags);
    let words = first.printed.iter().flat_map(|l| l.split_whitespace());
    let key = words
        .into_iter()
        .find(|w| w.starts_with("sk_sb_"))
        .expect("the first node prints the keys")
        .to_owned();
    let second = Served::start_logging(urls[1], flags);
    let third = Served::start_logging(urls[2], flags);
    ([first, second, third], key)
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    key: String,
}

impl Api {
    fn new(key: String) -> Api {
        Api {
            http: reqwest::Client::new(),
            key,
        }
    }

    async fn create(&self, base: &str, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{base}{path}"))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let created: Value = response.json().await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "POST {path}: {created}");
        created
    }

    async fn allowed(&self, base: &str, member: &str, permission: &str) -> bool {
        let response = self
            .http
            .get(format!("{base}/v1/members/{member}/access"))
            .query(&[("permission", permission)])
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let answer: Value = response.json().await.unwrap();
        answer["allowed"].as_bool().expect("allowed is a boolean")
    }

    /// Asks `base` every few milliseconds until `member` has `permission`; how long that took.
    async fn time_until_allowed(&self, base: &str, member: &str, permission: &str) -> Duration {
        let started = Instant::now();
        while !self.allowed(base, member, permission).await {
            assert!(
                started.elapsed() < WITHIN,
                "{base} still denies {permission} after {WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        started.elapsed()
    }
}

/// Runs `job` for 0..count, `at_once` at a time, and gathers what each returned (in no order).
async fn run_at_once<T, F, Fut>(count: usize, at_once: usize, job: F) -> Vec<T>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = T> + Send,
    T: Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..at_once)
        .map(|_| {
            let (job, next) = (job.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return done;
                    }
                    done.push(job(i).await);
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    all
}

/// A plan granting "gold" and a member without it, made through `base`; their ids.
async fn gold_plan_and_member(api: &Api, base: &str) -> (String, String) {
    let plan = api
        .create(
            base,
            "/v1/plans",
            json!({"name": "Gold", "permissions": ["gold"]}),
        )
        .await;
    let member = api
        .create(base, "/v1/members", json!({"email": "ann@example.com"}))
        .await;
    let id = |v: &Value| v["id"].as_str().unwrap().to_owned();
    (id(&plan), id(&member))
}

/// Writes a member's permissions as memberd's own connections do (`memberd.store = on`), so
/// that no trigger announces the change: only a node that asks the database sees it.
async fn set_permissions_unannounced(conn: &mut PgConnection, member: &str, permission: &str) {
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SET LOCAL memberd.store = 'on'")
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query("UPDATE members SET permissions = $1 WHERE id = $2")
        .bind(json!([permission]).to_string())
        .bind(member)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

/// Shows that `base` answers `member`'s access check from memory: after a change that no one
/// announces it still gives the answer it read before. Without this, the tests below would
/// also pass against a node that caches nothing. A read that overlapped some other change is
/// not kept, hence a few tries.
async fn assert_answers_from_memory(api: &Api, conn: &mut PgConnection, base: &str, member: &str) {
    for _ in 0..5 {
        let permission = format!("unannounced_{}", rand::random::<u32>());
        assert!(!api.allowed(base, member, &permission).await);
        set_permissions_unannounced(conn, member, &permission).await;
        if !api.allowed(base, member, &permission).await {
            return;
        }
    }
    panic!("{base} never answered from memory: its read cache is not in use");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_deliver_each_event_exactly_once() {
    const MEMBERS: usize = 150;
    let Some(db) = FreshPostgres::create("scale-out delivery").await else {
        return;
    };
    let receiver = Receiver::start().await;
    let flags = [
        "--allow-private-webhook-targets",
        "--rate-limit-per-second",
        "0",
    ];
    let (nodes, key) = start_three([&db.url; 3], &flags);
    let api = Api::new(key);
    let endpoint =
        json!({"url": format!("{}/hook", receiver.base), "eventTypes": ["member.created"]});
    api.create(&nodes[0].base, "/v1/webhook-endpoints", endpoint)
        .await;

    // Every node writes events, and every node's dispatcher competes to deliver them.
    let started = Instant::now();
    let bases: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.base.clone()).collect());
    let writer = api.clone();
    run_at_once(MEMBERS, 6, move |i| {
        let (api, bases) = (writer.clone(), Arc::clone(&bases));
        async move {
            let email = format!("m{i}@example.com");
            api.create(&bases[i % 3], "/v1/members", json!({"email": email}))
                .await;
        }
    })
    .await;
    receiver
        .wait_for(60, "every member.created", |got| {
            got.iter()
                .map(|r| r.header("webhook-id"))
                .collect::<HashSet<_>>()
                .len()
                >= MEMBERS
        })
        .await;

    // Once every delivery is recorded as delivered no node sends it again, so what arrived by
    // then is all that will arrive; a delivery sent twice would also show as a second attempt.
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let (deliveries, attempts) = loop {
        let row = sqlx::query(
            "SELECT count(*) FILTER (WHERE status = 'delivered') AS delivered, count(*) AS deliveries, \
             (SELECT count(*) FROM webhook_attempts) AS attempts FROM webhook_deliveries",
        )
        .fetch_one(&mut conn)
        .await
        .unwrap();
        let (delivered, deliveries): (i64, i64) = (row.get("delivered"), row.get("deliveries"));
        if delivered == deliveries && delivered >= MEMBERS as i64 {
            break (deliveries, row.get::<i64, _>("attempts"));
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{delivered} of {deliveries} delivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let got = receiver.at("/hook");
    eprintln!(
        "three nodes: {} requests received for {MEMBERS} members, all delivered {:.2} s after the first write",
        got.len(),
        started.elapsed().as_secs_f64()
    );
    let mut arrivals: HashMap<&str, usize> = HashMap::new();
    for r in &got {
        *arrivals.entry(r.header("webhook-id")).or_default() += 1;
    }
    let twice: Vec<_> = arrivals.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(arrivals.len(), MEMBERS, "one event per member");
    assert_eq!(got.len(), MEMBERS);
    assert_eq!((deliveries, attempts), (MEMBERS as i64, MEMBERS as i64));
    let email = |r: &Received| {
        r.json()["data"]["auth"]["email"]
            .as_str()
            .map(str::to_owned)
    };
    let emails: HashSet<String> = got.iter().filter_map(email).collect();
    let expected: HashSet<String> = (0..MEMBERS).map(|i| format!("m{i}@example.com")).collect();
    assert_eq!(emails, expected, "each member's own event");

    conn.close().await.unwrap();
    drop(nodes);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_is_one_for_the_cluster() {
    const REQUESTS: usize = 300;
    const IN_FLIGHT: usize = 30;
    const PER_SECOND: u32 = 10;
    const BURST: u32 = 10;
    let Some(db) = FreshPostgres::create("scale-out rate limit").await else {
        return;
    };
    let (rate, burst) = (PER_SECOND.to_string(), BURST.to_string());
    let flags = [
        "--rate-limit-per-second",
        &rate,
        "--rate-limit-burst",
        &burst,
    ];
    let (nodes, key) = start_three([&db.url; 3], &flags);
    let shared = |n: &Served| n.printed.iter().any(|l| l.contains("one for every node"));
    assert!(
        nodes.iter().all(shared),
        "each node says its limits are shared"
    );

    // The key is used for the first time here: its bucket starts full.
    let api = Api::new(key);
    let bases: Arc<Vec<String>> = Arc::new(nodes.iter().map(|n| n.base.clone()).collect());
    let started = Instant::now();
    let answers = run_at_once(REQUESTS, IN_FLIGHT, move |i| {
        let (api, bases) = (api.clone(), Arc::clone(&bases));
        async move {
            let response = api
                .http
                .get(format!("{}/v1/plans", bases[i % 3]))
                .bearer_auth(&api.key)
                .send()
                .await
                .unwrap();
            let header = |name: &str| {
                let value = response.headers().get(name)?;
                Some(value.to_str().unwrap().to_owned())
            };
            let (retry_after, remaining) = (header("retry-after"), header("ratelimit-remaining"));
            (response.status(), retry_after, remaining)
        }
    })
    .await;
    let elapsed = started.elapsed().as_secs_f64();

    let admitted = answers.iter().filter(|a| a.0 == StatusCode::OK).count();
    let refused: Vec<_> = answers
        .iter()
        .filter(|a| a.0 == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(admitted + refused.len(), REQUESTS, "only 200s and 429s");
    for (_, retry_after, remaining) in &refused {
        let secs: u64 = retry_after
            .as_deref()
            .expect("Retry-After")
            .parse()
            .unwrap();
        assert!(secs >= 1);
        assert_eq!(remaining.as_deref(), Some("0"), "RateLimit-Remaining");
    }
    // GCRA on the database's clock lets through at most the burst plus the rate times the time
    // between the first and the last take, which lies within `elapsed`. A node may keep tokens
    // it took unspent — a hundredth of the rate per take, rounded up (shared.rs) — but at 10/s
    // a take is one token, spent on the request that took it, so the nodes add nothing: the
    // 3 (one per node) is margin for the two clocks. Limits per process would let about three
    // times the burst and the rate through.
    let bound = BURST as usize + (f64::from(PER_SECOND) * elapsed).ceil() as usize + 3;
    eprintln!(
        "one limit for three nodes: {admitted} of {REQUESTS} admitted, {} refused, in {elapsed:.3} s (bound {bound})",
        refused.len()
    );
    assert!(admitted >= BURST as usize, "the first burst is let through");
    assert!(admitted <= bound, "{admitted} admitted in {elapsed:.3} s");

    drop(nodes);
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_node_reaches_the_others_cache_within_the_bound() {
    let Some(db) = FreshPostgres::create("scale-out cache").await else {
        return;
    };
    let (nodes, key) = start_three([&db.url; 3], &CACHING);
    let api = Api::new(key);
    let [one, two, three] = [&nodes[0].base, &nodes[1].base, &nodes[2].base];
    let (plan, member) = gold_plan_and_member(&api, one).await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    for base in [two, three] {
        assert!(!api.allowed(base, &member, "gold").await);
        assert_answers_from_memory(&api, &mut conn, base, &member).await;
    }

    api.create(
        one,
        &format!("/v1/members/{member}/plan-connections"),
        json!({"planId": plan}),
    )
    .await;
    let (to_two, to_three) = tokio::join!(
        api.time_until_allowed(two, &member, "gold"),
        api.time_until_allowed(three, &member, "gold"),
    );
    eprintln!(
        "a change through node 1 showed on node 2 after {} ms and on node 3 after {} ms",
        to_two.as_millis(),
        to_three.as_millis()
    );

    // Plain SQL, as another tool writes: the triggers announce it.
    assert_answers_from_memory(&api, &mut conn, two, &member).await;
    sqlx::query("UPDATE members SET permissions = '[\"plain\"]' WHERE id = $1")
        .bind(&member)
        .execute(&mut conn)
        .await
        .unwrap();
    let plain = api.time_until_allowed(two, &member, "plain").await;
    eprintln!(
        "a change in plain SQL showed on node 2 after {} ms",
        plain.as_millis()
    );

    conn.close().await.unwrap();
    drop(nodes);
    db.drop_database().await;
}

/// A TCP proxy to PostgreSQL at `upstream` that, while the flag it returns is set, drops the
/// NotificationResponse messages the server sends and passes everything else: the listener's
/// connection stays open and answered, but no notification arrives. That is the failure the
/// heartbeats are for. The client must use `sslmode=disable`, so that the bytes are protocol
/// messages.
async fn notification_dropping_proxy(upstream: String) -> (SocketAddr, Arc<AtomicBool>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let dropping = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&dropping);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(&upstream).await else {
                continue;
            };
            let (mut from_client, to_client) = client.into_split();
            let (from_server, mut to_server) = server.into_split();
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut from_client, &mut to_server).await;
            });
            tokio::spawn(forward_from_server(
                from_server,
                to_client,
                Arc::clone(&flag),
            ));
        }
    });
    (address, dropping)
}

/// Server to client, message by message: a type byte, then a big-endian length that counts
/// itself, then the body.
async fn forward_from_server(
    from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    dropping: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let mut from = tokio::io::BufReader::new(from);
    loop {
        let mut message = vec![0u8; 5];
        from.read_exact(&mut message).await?;
        let length = u32::from_be_bytes(message[1..5].try_into().unwrap()) as usize;
        message.resize(1 + length.max(4), 0);
        from.read_exact(&mut message[5..]).await?;
        if message[0] == b'A' && dropping.load(Ordering::SeqCst) {
            continue;
        }
        to.write_all(&message).await?;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_listener_goes_silent_stops_caching() {
    let Some(db) = FreshPostgres::create("scale-out deaf listener").await else {
        return;
    };
    let mut proxied = Url::parse(&db.url).unwrap();
    let upstream = format!(
        "{}:{}",
        proxied.host_str().expect("PostgreSQL over TCP"),
        proxied.port().unwrap_or(5432)
    );
    let (proxy, dropping) = notification_dropping_proxy(upstream).await;
    proxied.set_ip_host(proxy.ip()).unwrap();
    proxied.set_port(Some(proxy.port())).unwrap();
    proxied.set_query(Some("sslmode=disable"));
    let (nodes, key) = start_three([&db.url, proxied.as_str(), &db.url], &CACHING);
    let api = Api::new(key);
    let (one, two) = (&nodes[0].base, &nodes[1]);
    let (plan, member) = gold_plan_and_member(&api, one).await;
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    assert!(!api.allowed(&two.base, &member, "gold").await);
    assert_answers_from_memory(&api, &mut conn, &two.base, &member).await;
    assert_eq!(two.logged(DEAF), 0, "node 2 heard its heartbeats so far");

    // Node 2 never hears of this change: only finding its listener deaf can make it show.
    dropping.store(true, Ordering::SeqCst);
    let silent_since = Instant::now();
    api.create(
        one,
        &format!("/v1/members/{member}/plan-connections"),
        json!({"planId": plan}),
    )
    .await;
    let shown = api.time_until_allowed(&two.base, &member, "gold").await;
    eprintln!(
        "with its notifications dropped, node 2 showed the change after {} ms ({} ms after they stopped)",
        shown.as_millis(),
        silent_since.elapsed().as_millis()
    );
    two.wait_for_log(DEAF).await;

    dropping.store(false, Ordering::SeqCst);
    let heard_since = Instant::now();
    two.wait_for_log(HEARS_AGAIN).await;
    eprintln!(
        "node 2 heard its heartbeats again {} ms after notifications passed again",
        heard_since.elapsed().as_millis()
    );
    assert_eq!(two.logged(DEAF), 1, "the deaf spell is logged once");
    assert_eq!(two.logged(HEARS_AGAIN), 1);
    assert_answers_from_memory(&api, &mut conn, &two.base, &member).await;

    conn.close().await.unwrap();
    drop(nodes);
    db.drop_database().await;
}
