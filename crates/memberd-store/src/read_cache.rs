//! The hottest reads — the access check's grants, Appstle's membership status and a member
//! by id — kept in memory, so that a gated page costs no round trip to the database.
//!
//! On PostgreSQL every read was a round trip to a server on the same cores: at 12,500 access
//! checks a second memberd and PostgreSQL each used a core, most of it waking each other up.
//! On SQLite a read is in-process, and the cache saves running the query and decoding its rows.
//!
//! On SQLite, the cache is emptied whenever the WAL-index header has changed since it was last
//! looked at: every commit rewrites it, from any connection of any process (see `wal_index`),
//! so nothing read before a commit is used after it. Every commit counts, even one that
//! touched nothing cached; that keeps the rule plain.
//!
//! On PostgreSQL an entry stops being used when the data it was read from may have changed:
//! - a change made through this store drops its environment's entries as it commits, so a
//!   client reads its own writes;
//! - a change made anywhere else (another node, the CLI, plain SQL) reaches every node as a
//!   PostgreSQL notification on `memberd_reads`, sent at commit by triggers on members, plans
//!   and plan connections (migration 0009), and drops that environment's entries as soon as
//!   it arrives;
//! - the cache is only used while its listener is connected: notifications sent while it is
//!   not are lost, so it is emptied when the connection drops and filled again once it is back;
//! - an entry is used for at most the lifetime the server gives it (a second by default),
//!   which bounds staleness should the listener's connection die without the socket noticing.
//!
//! A read that began before a change and ends after it must not store what it read: every
//! drop bumps a generation, and a read stores its result only if the generation it saw before
//! asking the database is still current.

use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use memberd_core::access::Grant;
use memberd_core::{MemberId, Scope};
use rustc_hash::FxHashMap;
use sqlx::postgres::PgListener;
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::reads::DirectSqlite;
use crate::wal_index::Header;
use crate::{ContractView, MemberView};

/// The channel the triggers of migration 0009 notify, with `"<app id> <env>"` as payload.
const CHANNEL: &str = "memberd_reads";

/// Bounds the memory of a flood of distinct members; the cache starts afresh then.
const MAX_ENTRIES: usize = 10_000;

/// How long to wait before listening again after the listener's connection failed; doubled
/// after each failure in a row, up to `RECONNECT_AFTER_AT_MOST`, so that a database that is
/// down is neither hammered nor logged about twice a second.
const RECONNECT_AFTER: Duration = Duration::from_millis(500);
const RECONNECT_AFTER_AT_MOST: Duration = Duration::from_secs(30);

/// A member's permissions and grants, as `Store::access_grants` returns them.
pub(crate) type Grants = Option<(Vec<String>, Vec<Grant>)>;
/// A customer's contracts, as `Store::customer_contracts` returns them.
pub(crate) type Contracts = Option<Vec<ContractView>>;
/// A member, as `Store::get_member` returns them.
pub(crate) type Member = Option<MemberView>;

/// What a read learns from the cache before asking the database.
pub(crate) enum Lookup<T> {
    Hit(T),
    /// Not cached. `Some(generation)` when the result may be stored afterwards.
    Miss(Option<u64>),
}

#[derive(Default)]
pub(crate) struct ReadCache {
    state: Mutex<State>,
    source: Source,
    listener: Mutex<Option<AbortHandle>>,
}

/// Where the cache learns of changes.
#[derive(Default)]
enum Source {
    /// Nowhere: nothing is cached (an in-memory SQLite database).
    #[default]
    None,
    /// Notifications, on a connection of its own to this URL.
    Postgres(String),
    /// The WAL-index header of the database file.
    Sqlite(Arc<DirectSqlite>),
}

#[derive(Default)]
struct State {
    /// Whether the cache is on (on PostgreSQL: its listener is connected): entries are stored
    /// and used only then.
    live: bool,
    /// On SQLite, the WAL-index header when the cache was last looked at.
    wal_header: Option<Header>,
    /// How long an entry is used.
    lifetime: Duration,
    generation: u64,
    entries: usize,
    scopes: FxHashMap<Scope, Entries>,
}

impl State {
    fn forget_all(&mut self) {
        self.generation += 1;
        self.scopes.clear();
        self.entries = 0;
    }
}

#[derive(Default)]
struct Entries {
    grants: FxHashMap<MemberId, (Arc<Grants>, Instant)>,
    contracts: FxHashMap<String, (Arc<Contracts>, Instant)>,
    members: FxHashMap<MemberId, (Arc<Member>, Instant)>,
}

impl ReadCache {
    pub(crate) fn for_postgres(url: &str) -> ReadCache {
        ReadCache {
            source: Source::Postgres(url.to_owned()),
            ..ReadCache::default()
        }
    }

    pub(crate) fn for_sqlite(fast: Option<Arc<DirectSqlite>>) -> ReadCache {
        ReadCache {
            source: fast.map_or(Source::None, Source::Sqlite),
            ..ReadCache::default()
        }
    }

    /// Turns the cache on, entries used for at most `lifetime` (zero: leaves it off). On
    /// PostgreSQL it starts the listener, once, and returns when its first attempt to connect
    /// has succeeded or failed; until it is connected, nothing is cached.
    pub(crate) async fn start(self: &Arc<Self>, lifetime: Duration) {
        if lifetime.is_zero() {
            return;
        }
        if let Some(mut state) = self.state() {
            state.lifetime = lifetime;
        }
        let url = match &self.source {
            Source::None => return,
            Source::Sqlite(_) => return self.set_live(true),
            Source::Postgres(url) => url.clone(),
        };
        let (tried, first_try) = oneshot::channel();
        {
            let Ok(mut listener) = self.listener.lock() else {
                return;
            };
            if listener.is_some() {
                return;
            }
            let task = tokio::spawn(listen(Arc::downgrade(self), url, tried));
            *listener = Some(task.abort_handle());
        }
        let _ = first_try.await;
    }

    /// Turns the cache off, and stops the listener.
    pub(crate) fn stop(&self) {
        if let Some(task) = self.listener.lock().ok().and_then(|mut l| l.take()) {
            task.abort();
        }
        self.set_live(false);
    }

    pub(crate) fn grants(&self, scope: &Scope, member: &MemberId) -> Lookup<Grants> {
        self.lookup(scope, |e| &e.grants, member)
    }

    pub(crate) fn put_grants(
        &self,
        scope: &Scope,
        member: &MemberId,
        grants: &Grants,
        seen: Option<u64>,
    ) {
        self.put(scope, seen, |e| &mut e.grants, member, grants);
    }

    pub(crate) fn contracts(&self, scope: &Scope, customer: &str) -> Lookup<Contracts> {
        self.lookup(scope, |e| &e.contracts, customer)
    }

    pub(crate) fn put_contracts(
        &self,
        scope: &Scope,
        customer: &str,
        contracts: &Contracts,
        seen: Option<u64>,
    ) {
        self.put(scope, seen, |e| &mut e.contracts, customer, contracts);
    }

    pub(crate) fn member(&self, scope: &Scope, id: &MemberId) -> Lookup<Member> {
        self.lookup(scope, |e| &e.members, id)
    }

    pub(crate) fn put_member(
        &self,
        scope: &Scope,
        id: &MemberId,
        member: &Member,
        seen: Option<u64>,
    ) {
        self.put(scope, seen, |e| &mut e.members, id, member);
    }

    /// Drops what is cached of `scope`: called after a change to it commits.
    pub(crate) fn changed(&self, scope: &Scope) {
        if let Some(mut state) = self.state() {
            state.generation += 1;
            if let Some(gone) = state.scopes.remove(scope) {
                state.entries -= gone.grants.len() + gone.contracts.len() + gone.members.len();
            }
        }
    }

    /// Turns the cache on or off; either way it starts empty.
    fn set_live(&self, live: bool) {
        if let Some(mut state) = self.state() {
            state.live = live;
            state.forget_all();
        }
    }

    fn forget_all(&self) {
        if let Some(mut state) = self.state() {
            state.forget_all();
        }
    }

    fn state(&self) -> Option<MutexGuard<'_, State>> {
        self.state.lock().ok()
    }

    fn lookup<K, Q, T>(
        &self,
        scope: &Scope,
        map: impl Fn(&Entries) -> &FxHashMap<K, (Arc<T>, Instant)>,
        key: &Q,
    ) -> Lookup<T>
    where
        K: std::borrow::Borrow<Q> + Hash + Eq,
        Q: Hash + Eq + ?Sized,
        T: Clone,
    {
        // Read before the lock: a system call.
        let wal_header = match &self.source {
            Source::Sqlite(fast) => match fast.wal_header() {
                Some(header) => Some(header),
                None => return Lookup::Miss(None),
            },
            _ => None,
        };
        let found = {
            let Some(mut state) = self.state() else {
                return Lookup::Miss(None);
            };
            if !state.live {
                return Lookup::Miss(None);
            }
            if wal_header.is_some() && state.wal_header != wal_header {
                state.wal_header = wal_header;
                state.forget_all();
            }
            let fresh = state
                .scopes
                .get(scope)
                .and_then(|entries| map(entries).get(key))
                .filter(|(_, at)| at.elapsed() < state.lifetime);
            match fresh {
                Some((value, _)) => Arc::clone(value),
                None => return Lookup::Miss(Some(state.generation)),
            }
        };
        // Copied outside the lock: the handlers consume what they read.
        Lookup::Hit(T::clone(&found))
    }

    fn put<K, Q, T>(
        &self,
        scope: &Scope,
        seen: Option<u64>,
        map: impl Fn(&mut Entries) -> &mut FxHashMap<K, (Arc<T>, Instant)>,
        key: &Q,
        value: &T,
    ) where
        K: std::borrow::Borrow<Q> + Hash + Eq,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        T: Clone,
    {
        let Some(seen) = seen else { return };
        let value = Arc::new(value.clone());
        let Some(mut state) = self.state() else {
            return;
        };
        if !state.live || state.generation != seen {
            return;
        }
        if state.entries >= MAX_ENTRIES {
            state.forget_all();
        }
        let entries = state.scopes.entry(scope.clone()).or_default();
        let replaced = map(entries).insert(key.to_owned(), (value, Instant::now()));
        if replaced.is_none() {
            state.entries += 1;
        }
    }
}

/// Keeps a connection listening on `CHANNEL` for as long as the cache exists, and the cache
/// live only while it is connected.
async fn listen(cache: Weak<ReadCache>, url: String, tried: oneshot::Sender<()>) {
    let mut tried = Some(tried);
    let mut wait = RECONNECT_AFTER;
    loop {
        match PgListener::connect(&url).await {
            Ok(mut listener) => {
                listener.eager_reconnect(false);
                match listener.listen(CHANNEL).await {
                    Ok(()) => {
                        match cache.upgrade() {
                            Some(cache) => cache.set_live(true),
                            None => return,
                        }
                        if let Some(tried) = tried.take() {
                            let _ = tried.send(());
                        }
                        wait = RECONNECT_AFTER;
                        forward(&cache, &mut listener).await;
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
            Some(cache) => cache.set_live(false),
            None => return,
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RECONNECT_AFTER_AT_MOST);
    }
}

/// Drops each notified environment's entries until the connection is lost.
async fn forward(cache: &Weak<ReadCache>, listener: &mut PgListener) {
    while let Ok(Some(notification)) = listener.try_recv().await {
        let Some(cache) = cache.upgrade() else { return };
        match parse_scope(notification.payload()) {
            Some(scope) => cache.changed(&scope),
            // Not a payload of ours: drop everything rather than miss a change.
            None => cache.forget_all(),
        }
    }
}

fn parse_scope(payload: &str) -> Option<Scope> {
    let (app, env) = payload.split_once(' ')?;
    Some(Scope::new(
        memberd_core::AppId::from_trusted(app.to_owned()),
        env.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use memberd_core::{AppId, Environment};

    fn scope(app: &str) -> Scope {
        Scope::new(AppId::from_trusted(app.into()), Environment::Sandbox)
    }

    fn member(id: &str) -> MemberId {
        MemberId::from_trusted(id.into())
    }

    fn live() -> ReadCache {
        let cache = ReadCache::default();
        cache.state().unwrap().lifetime = Duration::from_secs(3600);
        cache.set_live(true);
        cache
    }

    fn cached(cache: &ReadCache, scope: &Scope, id: &str) -> Option<Grants> {
        match cache.grants(scope, &member(id)) {
            Lookup::Hit(grants) => Some(grants),
            Lookup::Miss(_) => None,
        }
    }

    fn read_and_store(cache: &ReadCache, scope: &Scope, id: &str, perms: &[&str]) {
        let Lookup::Miss(seen) = cache.grants(scope, &member(id)) else {
            panic!("{id} was cached already");
        };
        let grants = Some((perms.iter().map(|p| p.to_string()).collect(), vec![]));
        cache.put_grants(scope, &member(id), &grants, seen);
    }

    #[test]
    fn nothing_is_cached_until_the_listener_is_connected() {
        let cache = ReadCache::default();
        read_and_store(&cache, &scope("app_a"), "mem_1", &["x"]);
        assert!(cached(&cache, &scope("app_a"), "mem_1").is_none());
    }

    #[test]
    fn a_read_is_served_from_memory_until_its_environment_changes() {
        let cache = live();
        read_and_store(&cache, &scope("app_a"), "mem_1", &["x"]);
        read_and_store(&cache, &scope("app_b"), "mem_1", &["y"]);
        let hit = cached(&cache, &scope("app_a"), "mem_1").expect("cached");
        assert_eq!(hit.unwrap().0, vec!["x".to_string()]);

        cache.changed(&scope("app_a"));
        assert!(cached(&cache, &scope("app_a"), "mem_1").is_none());
        assert!(
            cached(&cache, &scope("app_b"), "mem_1").is_some(),
            "another environment's entries stay"
        );
    }

    #[test]
    fn a_read_that_overlapped_a_change_is_not_stored() {
        let cache = live();
        let Lookup::Miss(seen) = cache.grants(&scope("app_a"), &member("mem_1")) else {
            panic!("empty cache hit");
        };
        // The change commits while the read is at the database.
        cache.changed(&scope("app_a"));
        cache.put_grants(&scope("app_a"), &member("mem_1"), &None, seen);
        assert!(cached(&cache, &scope("app_a"), "mem_1").is_none());
    }

    #[test]
    fn losing_the_listener_empties_the_cache_and_stops_it() {
        let cache = live();
        read_and_store(&cache, &scope("app_a"), "mem_1", &["x"]);
        cache.set_live(false);
        assert!(cached(&cache, &scope("app_a"), "mem_1").is_none());
        read_and_store(&cache, &scope("app_a"), "mem_1", &["x"]);
        assert!(cached(&cache, &scope("app_a"), "mem_1").is_none());
    }

    #[test]
    fn an_entry_is_used_for_its_lifetime_at_most() {
        let cache = live();
        cache.state().unwrap().lifetime = Duration::from_millis(1);
        read_and_store(&cache, &scope("app_a"), "mem_1", &["x"]);
        std::thread::sleep(Duration::from_millis(5));
        assert!(cached(&cache, &scope("app_a"), "mem_1").is_none());
    }

    #[test]
    fn a_full_cache_starts_afresh() {
        let cache = live();
        for i in 0..MAX_ENTRIES {
            read_and_store(&cache, &scope("app_a"), &format!("mem_{i}"), &[]);
        }
        assert!(cached(&cache, &scope("app_a"), "mem_0").is_some());
        read_and_store(&cache, &scope("app_a"), "mem_new", &[]);
        assert!(cached(&cache, &scope("app_a"), "mem_0").is_none());
        assert!(cached(&cache, &scope("app_a"), "mem_new").is_some());
    }

    #[test]
    fn notifications_name_an_environment() {
        assert_eq!(parse_scope("app_1 sandbox"), Some(scope("app_1")));
        assert_eq!(parse_scope("app_1 staging"), None);
        assert_eq!(parse_scope("garbage"), None);
    }
}
