//! Starts the real server on a random port, over a fresh SQLite file or a fresh PostgreSQL
//! database, with two apps to tell tenants apart.

use std::future::Future;
use std::net::SocketAddr;

use memberd_core::Environment;
use memberd_server::{ops, Config};
use memberd_store::Store;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// The sandbox key of the first app: the key most tests use.
    pub key: String,
    /// The live key of the first app.
    pub live_key: String,
    /// The sandbox key of a second app.
    pub other_app_key: String,
    /// The first app, the audience of its members' tokens.
    pub app_id: String,
    /// The publishable keys of the first app's sandbox and live environments, and of the
    /// second app's sandbox: what browsers send to the member-facing API.
    pub publishable_key: String,
    pub live_publishable_key: String,
    pub other_publishable_key: String,
    pub store: Store,
    /// The database the server runs on, for running the `memberd` binary against it.
    pub database_url: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    cleanup: Cleanup,
}

enum Cleanup {
    Sqlite(std::path::PathBuf),
    Postgres { admin: Store, name: String },
}

/// Settings for tests: the defaults, without a rate limit unless a test asks for one.
/// The Redis the tests may use, when MEMBERD_TEST_REDIS_URL names one.
pub fn redis_url() -> Option<String> {
    match std::env::var("MEMBERD_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            eprintln!("MEMBERD_TEST_REDIS_URL is unset: the Redis rate-limit test is skipped");
            None
        }
    }
}

pub fn test_config() -> Config {
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        rate_limit_per_second: 0,
        // As `memberd serve` does on SQLite: requests are read on two threads of their own
        // and written on the test's runtime, so every SQLite test also shows that an outcome
        // does not depend on where a request ran.
        serving_threads: 2,
        ..Config::default()
    };
    // Test receivers listen on 127.0.0.1.
    config.webhooks.allow_private_targets = true;
    config.webhooks.poll_interval = std::time::Duration::from_millis(100);
    config
}

fn secret_of(keys: &[ops::NewKey], env: Environment) -> String {
    keys.iter()
        .find(|k| k.key.env == env)
        .map(|k| k.secret.clone())
        .expect("create_app makes a key per environment")
}

impl TestApp {
    /// `None` when the backend is PostgreSQL and MEMBERD_TEST_POSTGRES_URL is unset.
    pub async fn spawn(backend: Backend, config: Config) -> Option<TestApp> {
        let (store, database_url, cleanup) = match backend {
            Backend::Sqlite => {
                let dir =
                    std::env::temp_dir().join(format!("memberd-api-{}", rand::random::<u64>()));
                std::fs::create_dir_all(&dir).unwrap();
                let url = format!("sqlite:{}", dir.join("memberd.db").display());
                (
                    Store::connect(&url).await.unwrap(),
                    url,
                    Cleanup::Sqlite(dir),
                )
            }
            Backend::Postgres => {
                let Ok(url) = std::env::var("MEMBERD_TEST_POSTGRES_URL") else {
                    eprintln!("MEMBERD_TEST_POSTGRES_URL is unset: PostgreSQL API test skipped");
                    return None;
                };
                let admin = Store::connect(&url).await.unwrap();
                let name = format!("memberd_api_{}", rand::random::<u32>());
                admin
                    .execute_admin(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap();
                let (base, _) = url.rsplit_once('/').unwrap();
                let url = format!("{base}/{name}");
                let store = Store::connect(&url).await.unwrap();
                (store, url, Cleanup::Postgres { admin, name })
            }
        };
        store.migrate().await.unwrap();
        let (first, keys) = ops::create_app(&store, "First", None).await.unwrap();
        let (second, other) = ops::create_app(&store, "Second", None).await.unwrap();
        let publishable = store.list_publishable_keys(None).await.unwrap();
        let publishable_of = |app: &memberd_core::AppId, env: Environment| {
            publishable
                .iter()
                .find(|k| &k.app_id == app && k.env == env)
                .map(|k| k.key.clone())
                .expect("every environment has a publishable key")
        };

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let server_store = store.clone();
        let server = tokio::spawn(async move {
            memberd_server::serve(config, server_store, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Some(TestApp {
            base: format!("http://{address}"),
            client: reqwest::Client::new(),
            key: secret_of(&keys, Environment::Sandbox),
            live_key: secret_of(&keys, Environment::Live),
            other_app_key: secret_of(&other, Environment::Sandbox),
            app_id: first.id.to_string(),
            publishable_key: publishable_of(&first.id, Environment::Sandbox),
            live_publishable_key: publishable_of(&first.id, Environment::Live),
            other_publishable_key: publishable_of(&second.id, Environment::Sandbox),
            store,
            database_url,
            shutdown: Some(tx),
            server: Some(server),
            cleanup,
        })
    }

    /// Stops the server and removes the database.
    pub async fn finish(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            // Idle keep-alive connections of a test that failed midway must not hold the
            // graceful shutdown forever.
            let abort = server.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(10), server)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        self.store.close().await;
        match &self.cleanup {
            Cleanup::Sqlite(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin, name } => {
                admin
                    .execute_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .unwrap();
                admin.close().await;
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A request with the default key.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.request_as(&self.key, method, path)
    }

    pub fn request_as(&self, key: &str, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(key)
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        send(self.request(Method::POST, path).json(&body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (StatusCode, Value) {
        send(self.request(Method::PATCH, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> (StatusCode, Value) {
        send(self.request(Method::DELETE, path)).await
    }

    /// A request to a Memberstack face, keyed as Memberstack clients do.
    pub fn ms(&self, method: Method, path: &str) -> RequestBuilder {
        self.ms_as(&self.key, method, path)
    }

    pub fn ms_as(&self, key: &str, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .header("X-API-KEY", key)
    }

    /// Creates what most tests need, asserting that it worked.
    pub async fn create_plan(&self, body: Value) -> Value {
        let (status, plan) = self.post("/v1/plans", body).await;
        assert_eq!(status, StatusCode::CREATED, "{plan}");
        plan
    }

    pub async fn create_member(&self, email: &str) -> Value {
        let (status, member) = self
            .post("/v1/members", serde_json::json!({ "email": email }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{member}");
        member
    }

    pub async fn connect(&self, member: &Value, body: Value) -> Value {
        let (status, connection) = self
            .post(
                &format!("/v1/members/{}/plan-connections", id(member)),
                body,
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{connection}");
        connection
    }

    /// Attaches the sandbox card that always succeeds, so the member can take paid plans.
    pub async fn attach_card(&self, member: &Value) {
        self.attach_card_as(&self.key, member).await;
    }

    pub async fn attach_card_as(&self, key: &str, member: &Value) {
        let (status, body) = send(
            self.request_as(key, Method::POST, &format!("/v1/members/{}/payment-methods", id(member)))
                .json(&serde_json::json!({"card": {"number": "4242424242424242", "expMonth": 12, "expYear": 2040, "cvc": "123"}})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// How many events the default key's environment has recorded.
    pub async fn event_count(&self) -> i64 {
        let (_, page) = self.get("/v1/events?limit=1").await;
        page["totalCount"].as_i64().unwrap()
    }

    pub async fn member_count(&self) -> i64 {
        let (_, page) = self.get("/v1/members?limit=1").await;
        page["totalCount"].as_i64().unwrap()
    }
}

pub fn id(object: &Value) -> &str {
    object["id"].as_str().expect("an object with an id")
}

/// Sends a request and reads the JSON body, asserting the invariants of every response: a
/// request id, and a JSON body in the error envelope when the status is an error.
pub async fn send(request: RequestBuilder) -> (StatusCode, Value) {
    let response: Response = request.send().await.expect("the server answers");
    let status = response.status();
    assert!(
        response.headers().contains_key("x-request-id"),
        "every response carries X-Request-Id"
    );
    let text = response.text().await.unwrap();
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("a JSON body, got {text:?}: {e}"));
    if status.is_client_error() || status.is_server_error() {
        assert_error_envelope(&body);
    }
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    (status, body)
}

/// Sends a request to a Memberstack face: errors come in Memberstack's envelope,
/// `{"error": {"code", "message"}}`, and nothing else.
pub async fn send_ms(request: RequestBuilder) -> (StatusCode, Value) {
    let response: Response = request.send().await.expect("the server answers");
    let status = response.status();
    assert!(response.headers().contains_key("x-request-id"));
    let text = response.text().await.unwrap();
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("a JSON body, got {text:?}: {e}"));
    if status.is_client_error() || status.is_server_error() {
        let error = body["error"].as_object().expect("an error object");
        assert!(
            error["code"].is_string() && error["message"].is_string(),
            "{body}"
        );
        assert_eq!(error.len(), 2, "only code and message: {body}");
    }
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    (status, body)
}

/// Asserts a Memberstack error: its status and code.
#[track_caller]
pub fn assert_ms_error(
    (status, body): &(StatusCode, Value),
    want_status: StatusCode,
    want_code: &str,
) {
    assert_eq!(*status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
}

pub fn assert_error_envelope(body: &Value) {
    let error = &body["error"];
    for field in ["type", "code", "message"] {
        assert!(error[field].is_string(), "error.{field} in {body}");
    }
    assert!(
        error.get("param").is_some(),
        "error.param present (maybe null) in {body}"
    );
}

/// Asserts an error response: its status, code and the field it names.
#[track_caller]
pub fn assert_error(
    (status, body): &(StatusCode, Value),
    want_status: StatusCode,
    want_param: Option<&str>,
) {
    assert_eq!(*status, want_status, "{body}");
    assert_eq!(body["error"]["param"].as_str(), want_param, "{body}");
}

/// Runs `test` on a fresh app, then cleans up even when the test fails.
pub async fn run<F, Fut>(backend: Backend, config: Config, test: F)
where
    F: FnOnce(std::sync::Arc<TestApp>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let Some(app) = TestApp::spawn(backend, config).await else {
        return;
    };
    let app = std::sync::Arc::new(app);
    let outcome = tokio::spawn(test(app.clone())).await;
    if let Ok(app) = std::sync::Arc::try_unwrap(app) {
        app.finish().await;
    }
    if let Err(err) = outcome {
        if let Ok(panic) = err.try_into_panic() {
            std::panic::resume_unwind(panic);
        }
        panic!("the test was cancelled");
    }
}

/// Generates, for each case `name(app: Arc<TestApp>)`, one test on SQLite and one on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($config:expr => $($case:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    $crate::support::run($crate::support::Backend::Sqlite, $config, super::$case).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    $crate::support::run($crate::support::Backend::Postgres, $config, super::$case).await;
                }
            )+
        }
    };
    ($($case:ident),+ $(,)?) => {
        $crate::both_backends!($crate::support::test_config() => $($case),+);
    };
}
