//! How memberd nodes over one PostgreSQL database tell each other what changed, and how each
//! knows that it still hears the others.
//!
//! - After a commit, the store names the environment it changed to [`Peers::tell`]. A task with
//!   a connection of its own sends every environment named since it last sent, in one
//!   statement, as notifications on `memberd_reads` with the payload `"<app> <env> <node>"`.
//!   A transaction that notifies takes a lock at commit that is one for the whole server and
//!   holds it until its commit record is flushed (migration 0013): this way that is one small
//!   transaction per batch, on a connection whose commits do not wait for the flush, instead
//!   of every write's.
//! - Writes made elsewhere (plain SQL, another tool) are still announced at commit by the
//!   triggers of migration 0009, as `"<app> <env>"`: they fire on every connection not marked
//!   `memberd.store = on`, which the store's own are.
//! - The same task sends `"heartbeat <node>"` every `HEARTBEAT_EVERY`, and the node expects to
//!   hear its own. One that has heard none for `DEAF_AFTER` — its listening connection open,
//!   but the notifications not arriving (a proxy that drops them, say) — stops using its cache
//!   until it hears one again, and says so once.
//! - A process that never started the task (a CLI command that writes once) sends the
//!   notification itself, after its commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use memberd_core::Scope;
use rustc_hash::FxHashSet;
use sqlx::postgres::{PgConnection, PgListener};
use sqlx::{AnyPool, Connection, Executor};
use tokio::sync::{oneshot, Notify};

use super::ReadCache;

/// The channel of the notifications, both the store's and the triggers'.
pub(super) const CHANNEL: &str = "memberd_reads";

/// How often a node sends itself a heartbeat, and how long it goes without hearing one before
/// it takes its listener for deaf.
pub(crate) const HEARTBEAT_EVERY: Duration = Duration::from_millis(500);
pub(crate) const DEAF_AFTER: Duration = Duration::from_secs(2);
const WATCH_EVERY: Duration = Duration::from_millis(250);

/// How long to wait before connecting again after a connection failed; doubled after each
/// failure in a row, up to `RECONNECT_AFTER_AT_MOST`, so that a database that is down is
/// neither hammered nor logged about twice a second.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);
const RECONNECT_AFTER_AT_MOST: Duration = Duration::from_secs(30);

/// The least time between two sends of a node. Every notification wakes every node's listener
/// and a PostgreSQL backend for each: a node that sent after each of its commits cost three
/// nodes creating members 14% of their CPU per create (1.16 ms against 1.00 ms with this
/// pause, in rounds alternating the two, with 17% more creates). After a quiet spell the first
/// change still goes out at once; under load a node's changes go out together, at most this
/// much later.
const SEND_AT_MOST_EVERY: Duration = Duration::from_millis(25);

/// Every pending notification in one statement (and one transaction).
const SEND: &str = "SELECT count(*) FROM (SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload) AS sent";

/// This node's side of the conversation.
pub(crate) struct Peers {
    url: String,
    /// This node's name in its notifications, so that it skips its own.
    node: String,
    /// Environments changed here and not yet announced.
    pending: Mutex<FxHashSet<Scope>>,
    wake: Notify,
    sending: AtomicBool,
}

/// What a notification says.
#[derive(Debug, PartialEq)]
pub(super) enum Message {
    Changed {
        scope: Scope,
        from: Option<String>,
    },
    Heartbeat {
        from: String,
    },
    /// Not a payload of ours.
    Unknown,
}

impl Message {
    pub(super) fn parse(payload: &str) -> Message {
        let mut words = payload.split(' ');
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("heartbeat"), Some(from), None, None) => Message::Heartbeat {
                from: from.to_owned(),
            },
            (Some(app), Some(env), from, None) => match env.parse() {
                Ok(env) => Message::Changed {
                    scope: Scope::new(memberd_core::AppId::from_trusted(app.to_owned()), env),
                    from: from.map(str::to_owned),
                },
                Err(_) => Message::Unknown,
            },
            _ => Message::Unknown,
        }
    }
}

impl Peers {
    pub(crate) fn new(url: &str) -> Peers {
        Peers {
            url: url.to_owned(),
            node: memberd_core::ids::random_suffix(12),
            pending: Mutex::default(),
            wake: Notify::new(),
            sending: AtomicBool::new(false),
        }
    }

    /// The sending task was stopped: from now on `tell` sends for itself.
    pub(super) fn stopped_sending(&self) {
        self.sending.store(false, Ordering::Release);
    }

    pub(super) fn node(&self) -> &str {
        &self.node
    }

    pub(super) fn url(&self) -> &str {
        &self.url
    }

    fn changed_payload(&self, scope: &Scope) -> String {
        format!("{} {} {}", scope.app_id, scope.env.as_str(), self.node)
    }

    /// Tells the other nodes that `scope` changed here (its write has committed).
    pub(crate) async fn tell(&self, scope: &Scope, pool: &AnyPool) {
        if self.sending.load(Ordering::Acquire) {
            if let Ok(mut pending) = self.pending.lock() {
                pending.insert(scope.clone());
            }
            self.wake.notify_one();
            return;
        }
        self.tell_now(scope, pool).await;
    }

    /// Tells the other nodes that `scope` changed here, through `pool`.
    async fn tell_now(&self, scope: &Scope, pool: &AnyPool) {
        let sent = sqlx::query("SELECT count(*) FROM (SELECT pg_notify($1, $2)) AS sent")
            .bind(CHANNEL)
            .bind(self.changed_payload(scope))
            .execute(pool)
            .await;
        if let Err(error) = sent {
            tracing::warn!(%error, "could not tell other nodes of a change; what they keep of it in memory lasts at most --read-cache-ms");
        }
    }

    /// Sends what `tell` gathered and the sending task has not sent, through `pool`: for a
    /// node that stops, after its task has.
    pub(super) async fn send_pending(&self, pool: &AnyPool) {
        let scopes: Vec<Scope> = match self.pending.lock() {
            Ok(mut pending) => pending.drain().collect(),
            Err(_) => return,
        };
        for scope in &scopes {
            self.tell_now(scope, pool).await;
        }
    }
}

/// Sends what `tell` gathered, and heartbeats when `heartbeats`, for as long as `peers` lives.
pub(super) async fn send(peers: Arc<Peers>, heartbeats: bool) {
    peers.sending.store(true, Ordering::Release);
    let mut wait = RECONNECT_AFTER;
    let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut complained = false;
    loop {
        match connect_sender(&peers.url).await {
            Ok(mut conn) => {
                wait = RECONNECT_AFTER;
                complained = false;
                loop {
                    let beating = tokio::select! {
                        () = peers.wake.notified() => false,
                        _ = beat.tick() => heartbeats,
                    };
                    let scopes: Vec<Scope> = match peers.pending.lock() {
                        Ok(mut pending) => pending.drain().collect(),
                        Err(_) => return,
                    };
                    let mut payloads: Vec<String> =
                        scopes.iter().map(|s| peers.changed_payload(s)).collect();
                    if beating {
                        payloads.push(format!("heartbeat {}", peers.node));
                    }
                    if payloads.is_empty() {
                        continue;
                    }
                    let sent = sqlx::query(SEND)
                        .bind(CHANNEL)
                        .bind(&payloads)
                        .execute(&mut conn)
                        .await;
                    if let Err(error) = sent {
                        if let Ok(mut pending) = peers.pending.lock() {
                            pending.extend(scopes);
                        }
                        tracing::warn!(%error, "the connection that tells other nodes of changes failed; connecting again");
                        break;
                    }
                    // Changes told meanwhile wait for the next send; `wake` keeps their call.
                    tokio::time::sleep(SEND_AT_MOST_EVERY).await;
                }
            }
            Err(error) => {
                if !complained {
                    tracing::warn!(%error, "could not connect to tell other nodes of changes; trying again");
                    complained = true;
                }
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RECONNECT_AFTER_AT_MOST);
    }
}

/// A notification only steers caches: its commit need not wait for the flush to disk, and
/// so holds the server-wide notify lock only for as long as it takes to write it.
async fn connect_sender(url: &str) -> Result<PgConnection, sqlx::Error> {
    let mut conn = PgConnection::connect(url).await?;
    conn.execute(
        "SELECT set_config('synchronous_commit', 'off', false), \
         set_config('application_name', 'memberd notifier', false)",
    )
    .await?;
    Ok(conn)
}

/// Keeps a connection listening on `CHANNEL` for as long as the cache exists; the cache is
/// used only while it is connected and hears this node's heartbeats.
pub(super) async fn listen(
    cache: Weak<ReadCache>,
    url: String,
    node: String,
    tried: oneshot::Sender<()>,
) {
    let mut tried = Some(tried);
    let mut wait = RECONNECT_AFTER;
    loop {
        match PgListener::connect(&url).await {
            Ok(mut listener) => {
                listener.eager_reconnect(false);
                match listener.listen(CHANNEL).await {
                    Ok(()) => {
                        match cache.upgrade() {
                            Some(cache) => cache.listening(true),
                            None => return,
                        }
                        wait = RECONNECT_AFTER;
                        forward(&cache, &mut listener, &node, &mut tried).await;
                        tracing::warn!("the read cache's listener lost its connection; reads go to the database until it is back");
                    }
                    Err(error) => tracing::warn!(%error, "the read cache could not listen"),
                }
            }
            Err(error) => tracing::warn!(%error, "the read cache's listener could not connect"),
        }
        if let Some(tried) = tried.take() {
            let _ = tried.send(());
        }
        match cache.upgrade() {
            Some(cache) => cache.listening(false),
            None => return,
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RECONNECT_AFTER_AT_MOST);
    }
}

/// Acts on each notification until the connection is lost. `tried` is told when the first
/// heartbeat is heard.
async fn forward(
    cache: &Weak<ReadCache>,
    listener: &mut PgListener,
    node: &str,
    tried: &mut Option<oneshot::Sender<()>>,
) {
    while let Ok(Some(notification)) = listener.try_recv().await {
        let Some(cache) = cache.upgrade() else { return };
        match Message::parse(notification.payload()) {
            Message::Heartbeat { from } if from == node => {
                cache.heard(Instant::now() + DEAF_AFTER);
                if let Some(tried) = tried.take() {
                    let _ = tried.send(());
                }
            }
            Message::Heartbeat { .. } => {}
            Message::Changed {
                from: Some(from), ..
            } if from == node => {}
            Message::Changed { scope, .. } => cache.changed(&scope),
            // Not a payload of ours: drop everything rather than miss a change.
            Message::Unknown => cache.forget_all(),
        }
    }
}

/// Empties the cache, and says so once, when its listener stops hearing this node's
/// heartbeats (the reads already stopped using it: see `State::usable`).
pub(super) async fn watch(cache: Weak<ReadCache>) {
    let mut every = tokio::time::interval(WATCH_EVERY);
    loop {
        every.tick().await;
        let Some(cache) = cache.upgrade() else { return };
        if cache.went_deaf(Instant::now()) {
            tracing::warn!(
                "the read cache's listener has heard none of this node's heartbeats for {} s: notifications are not arriving; reads go to the database until they do",
                DEAF_AFTER.as_secs()
            );
        }
    }
}

pub(super) fn spawn_all(
    cache: &Arc<ReadCache>,
    peers: &Arc<Peers>,
    listen_too: bool,
) -> (Vec<tokio::task::AbortHandle>, Option<oneshot::Receiver<()>>) {
    let mut tasks = vec![tokio::spawn(send(Arc::clone(peers), listen_too)).abort_handle()];
    if !listen_too {
        return (tasks, None);
    }
    let (tried, first_try) = oneshot::channel();
    tasks.push(
        tokio::spawn(listen(
            Arc::downgrade(cache),
            peers.url().to_owned(),
            peers.node().to_owned(),
            tried,
        ))
        .abort_handle(),
    );
    tasks.push(tokio::spawn(watch(Arc::downgrade(cache))).abort_handle());
    (tasks, Some(first_try))
}

#[cfg(test)]
mod tests {
    use super::*;
    use memberd_core::{AppId, Environment};

    fn scope(app: &str) -> Scope {
        Scope::new(AppId::from_trusted(app.into()), Environment::Sandbox)
    }

    #[test]
    fn notifications_say_what_changed_and_who_changed_it() {
        assert_eq!(
            Message::parse("app_1 sandbox"),
            Message::Changed {
                scope: scope("app_1"),
                from: None
            }
        );
        assert_eq!(
            Message::parse("app_1 sandbox n0de"),
            Message::Changed {
                scope: scope("app_1"),
                from: Some("n0de".into())
            }
        );
        assert_eq!(
            Message::parse("heartbeat n0de"),
            Message::Heartbeat {
                from: "n0de".into()
            }
        );
        assert_eq!(Message::parse("app_1 staging"), Message::Unknown);
        assert_eq!(Message::parse("garbage"), Message::Unknown);
        assert_eq!(Message::parse("a b c d"), Message::Unknown);
    }

    #[test]
    fn a_change_is_announced_with_the_nodes_name() {
        let peers = Peers::new("postgres://nowhere/db");
        let payload = peers.changed_payload(&scope("app_1"));
        assert_eq!(
            Message::parse(&payload),
            Message::Changed {
                scope: scope("app_1"),
                from: Some(peers.node().to_owned())
            }
        );
    }
}
