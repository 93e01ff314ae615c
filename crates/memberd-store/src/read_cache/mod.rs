//! The hottest reads — the access check's grants, Appstle's membership status, a member by
//! id and a member's session — kept in memory, so that a gated page costs no round trip to the database.
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
//!   PostgreSQL notification on `memberd_reads` (see `peers`), and drops that environment's
//!   entries as soon as it arrives;
//! - the cache is only used while its listener is connected and hears the heartbeats this node
//!   sends itself: notifications sent while it is not are lost, so it is emptied when it stops
//!   hearing and filled again once it hears again;
//! - an entry is used for at most the lifetime the server gives it (a second by default),
//!   which bounds staleness should a node die between its commit and its notification.
//!
//! A read that began before a change and ends after it must not store what it read: every
//! drop bumps a generation, and a read stores its result only if the generation it saw before
//! asking the database is still current.

mod peers;

use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use memberd_core::access::Grant;
use memberd_core::{MemberId, Scope, SessionId};
use rustc_hash::FxHashMap;
use sqlx::AnyPool;
use tokio::task::AbortHandle;

use crate::reads::DirectSqlite;
use crate::wal_index::Header;
use crate::{ContractView, MemberView};

/// Bounds the memory of a flood of distinct members; the cache starts afresh then.
const MAX_ENTRIES: usize = 10_000;

/// A member's permissions and grants, as `Store::access_grants` returns them.
pub(crate) type Grants = Option<(Vec<String>, Vec<Grant>)>;
/// A customer's contracts, as `Store::customer_contracts` returns them.
pub(crate) type Contracts = Option<Vec<ContractView>>;
/// A member, as `Store::get_member` returns them.
pub(crate) type Member = Option<MemberView>;
/// A member's session, as `Store::get_session` returns it.
pub(crate) type Session = Option<memberd_core::Session>;

/// What a read learns from the cache before asking the database.
pub(crate) enum Lookup<T> {
    Hit(T),
    /// Not cached. `Some(generation)` when the result may be stored afterwards.
    Miss(Option<u64>),
}

/// How the cache has done since the process started, for `/metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    pub hits: u64,
    pub misses: u64,
    /// Environments dropped for a change, and whole emptyings.
    pub invalidations: u64,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    invalidations: AtomicU64,
}

impl Counters {
    fn count<T>(&self, lookup: &Lookup<T>) {
        let counter = match lookup {
            Lookup::Hit(_) => &self.hits,
            Lookup::Miss(_) => &self.misses,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

pub(crate) struct ReadCache {
    state: Mutex<State>,
    counters: Counters,
    source: Source,
    /// On PostgreSQL, how this node and the others tell each other of changes.
    peers: Option<Arc<peers::Peers>>,
    tasks: Mutex<Vec<AbortHandle>>,
}

impl Drop for ReadCache {
    fn drop(&mut self) {
        self.abort_tasks();
    }
}

/// Where the cache learns of changes.
#[derive(Default)]
enum Source {
    /// Nowhere: nothing is cached (an in-memory SQLite database).
    #[default]
    None,
    /// Notifications (see `peers`).
    Postgres,
    /// The WAL-index header of the database file.
    Sqlite(Arc<DirectSqlite>),
}

#[derive(Default)]
struct State {
    /// Whether the cache is on (on PostgreSQL: its listener is connected).
    live: bool,
    /// On PostgreSQL: entries are stored and used only while this node hears its own
    /// heartbeats, that is since one was heard and until `deaf_at`.
    needs_heartbeat: bool,
    heard: bool,
    deaf_at: Option<Instant>,
    /// Whether the cache's going deaf has been logged (once per spell).
    said_deaf: bool,
    /// On SQLite, the WAL-index header when the cache was last looked at.
    wal_header: Option<Header>,
    /// How long an entry is used.
    lifetime: Duration,
    generation: u64,
    entries: usize,
    scopes: FxHashMap<Scope, Entries>,
}

impl State {
    fn usable(&self, now: Instant) -> bool {
        self.live
            && (!self.needs_heartbeat || (self.heard && self.deaf_at.is_some_and(|t| now < t)))
    }

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
    sessions: FxHashMap<SessionId, (Arc<Session>, Instant)>,
}

impl ReadCache {
    fn new(source: Source, peers: Option<Arc<peers::Peers>>, state: State) -> ReadCache {
        ReadCache {
            state: Mutex::new(state),
            counters: Counters::default(),
            source,
            peers,
            tasks: Mutex::default(),
        }
    }

    pub(crate) fn for_postgres(url: &str) -> ReadCache {
        let state = State {
            needs_heartbeat: true,
            ..State::default()
        };
        ReadCache::new(
            Source::Postgres,
            Some(Arc::new(peers::Peers::new(url))),
            state,
        )
    }

    pub(crate) fn for_sqlite(fast: Option<Arc<DirectSqlite>>) -> ReadCache {
        let source = fast.map_or(Source::None, Source::Sqlite);
        ReadCache::new(source, None, State::default())
    }

    /// Turns the cache on, entries used for at most `lifetime` (zero: leaves it off). On
    /// PostgreSQL it starts, once, the task that tells other nodes of this one's changes (also
    /// for a zero lifetime: they may cache), and with a lifetime the listener; it returns once
    /// the listener has heard its first heartbeat or failed to. Until then nothing is cached.
    pub(crate) async fn start(self: &Arc<Self>, lifetime: Duration) {
        if let Some(mut state) = self.state() {
            state.lifetime = lifetime;
        }
        let first_heartbeat = match &self.peers {
            Some(peers) => {
                let Ok(mut tasks) = self.tasks.lock() else {
                    return;
                };
                if !tasks.is_empty() {
                    return;
                }
                let (spawned, first) = peers::spawn_all(self, peers, !lifetime.is_zero());
                *tasks = spawned;
                first
            }
            None => {
                if !lifetime.is_zero() && matches!(self.source, Source::Sqlite(_)) {
                    self.set_live(true);
                }
                None
            }
        };
        if let Some(first) = first_heartbeat {
            let _ = tokio::time::timeout(peers::DEAF_AFTER, first).await;
        }
    }

    /// Turns the cache off, and stops its tasks.
    pub(crate) fn stop(&self) {
        self.abort_tasks();
        self.set_live(false);
    }

    fn abort_tasks(&self) {
        if let Ok(mut tasks) = self.tasks.lock() {
            for task in tasks.drain(..) {
                task.abort();
            }
        }
        if let Some(peers) = &self.peers {
            peers.stopped_sending();
        }
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

    pub(crate) fn session(&self, scope: &Scope, id: &SessionId) -> Lookup<Session> {
        self.lookup(scope, |e| &e.sessions, id)
    }

    pub(crate) fn put_session(
        &self,
        scope: &Scope,
        id: &SessionId,
        session: &Session,
        seen: Option<u64>,
    ) {
        self.put(scope, seen, |e| &mut e.sessions, id, session);
    }

    /// Drops what is cached of `scope` after a change to it made here has committed, and
    /// tells the other nodes (on PostgreSQL).
    pub(crate) async fn changed_here(&self, scope: &Scope, pool: &AnyPool) {
        self.changed(scope);
        if let Some(peers) = &self.peers {
            peers.tell(scope, pool).await;
        }
    }

    /// Stops the cache (see `stop`), and tells the other nodes of the changes its sending
    /// task had yet to tell them of.
    pub(crate) async fn stop_and_tell(&self, pool: &AnyPool) {
        self.stop();
        if let Some(peers) = &self.peers {
            peers.send_pending(pool).await;
        }
    }

    /// Drops what is cached of `scope`.
    fn changed(&self, scope: &Scope) {
        self.invalidated();
        if let Some(mut state) = self.state() {
            state.generation += 1;
            if let Some(gone) = state.scopes.remove(scope) {
                state.entries -= gone.grants.len()
                    + gone.contracts.len()
                    + gone.members.len()
                    + gone.sessions.len();
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

    /// On PostgreSQL: the listener connected (it has heard nothing yet) or lost its connection.
    fn listening(&self, connected: bool) {
        if let Some(mut state) = self.state() {
            state.live = connected;
            state.heard = false;
            state.deaf_at = Some(Instant::now() + peers::DEAF_AFTER);
            state.forget_all();
        }
    }

    /// On PostgreSQL: this node's heartbeat was heard; the cache may be used until `until`.
    /// After a spell of deafness it starts empty: notifications may have been lost.
    fn heard(&self, until: Instant) {
        let back = {
            let Some(mut state) = self.state() else {
                return;
            };
            let usable = state.usable(Instant::now());
            state.heard = true;
            state.deaf_at = Some(until);
            if !usable {
                state.forget_all();
            }
            std::mem::take(&mut state.said_deaf)
        };
        if back {
            tracing::info!("the read cache's listener hears this node's heartbeats again; cached reads are back");
        }
    }

    /// On PostgreSQL: whether the listener, connected, has just been found deaf (its last
    /// heartbeat too long ago); the cache is emptied then, and this is true once per spell.
    fn went_deaf(&self, now: Instant) -> bool {
        let Some(mut state) = self.state() else {
            return false;
        };
        let deaf = state.live && state.needs_heartbeat && !state.usable(now);
        if !deaf || state.said_deaf || state.deaf_at.is_some_and(|t| now < t) {
            return false;
        }
        state.said_deaf = true;
        state.forget_all();
        true
    }

    fn forget_all(&self) {
        self.invalidated();
        if let Some(mut state) = self.state() {
            state.forget_all();
        }
    }

    fn state(&self) -> Option<MutexGuard<'_, State>> {
        self.state.lock().ok()
    }

    /// The state when the cache may be used now: on SQLite emptied first if anything has
    /// committed since it was last looked at. `None`: answer from the database.
    fn usable_state(&self) -> Option<(MutexGuard<'_, State>, Instant)> {
        // Read before the lock: a system call.
        let wal_header = match &self.source {
            Source::Sqlite(fast) => Some(fast.wal_header()?),
            _ => None,
        };
        let now = Instant::now();
        let mut state = self.state()?;
        if !state.usable(now) {
            return None;
        }
        if wal_header.is_some() && state.wal_header != wal_header {
            state.wal_header = wal_header;
            state.forget_all();
            self.invalidated();
        }
        Some((state, now))
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
        let found = self.find(scope, map, key);
        self.counters.count(&found);
        found
    }

    fn find<K, Q, T>(
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
        let found = {
            let Some((state, now)) = self.usable_state() else {
                return Lookup::Miss(None);
            };
            match fresh(&state, scope, map, key, now) {
                Some(value) => value,
                None => return Lookup::Miss(Some(state.generation)),
            }
        };
        // Copied outside the lock: the handlers consume what they read.
        Lookup::Hit(T::clone(&found))
    }

    /// A session and its member at once: one look at the WAL index and one lock, for the
    /// member-facing API's `GET /member`.
    pub(crate) fn session_and_member(
        &self,
        scope: &Scope,
        session: &SessionId,
        member: &MemberId,
    ) -> (Lookup<Session>, Lookup<Member>) {
        let (session, member) = {
            let Some((state, now)) = self.usable_state() else {
                self.counters.misses.fetch_add(2, Ordering::Relaxed);
                return (Lookup::Miss(None), Lookup::Miss(None));
            };
            let seen = state.generation;
            (
                fresh(&state, scope, |e| &e.sessions, session, now).ok_or(seen),
                fresh(&state, scope, |e| &e.members, member, now).ok_or(seen),
            )
        };
        let found = (hit(session), hit(member));
        self.counters.count(&found.0);
        self.counters.count(&found.1);
        found
    }

    pub(crate) fn counts(&self) -> CacheCounts {
        CacheCounts {
            hits: self.counters.hits.load(Ordering::Relaxed),
            misses: self.counters.misses.load(Ordering::Relaxed),
            invalidations: self.counters.invalidations.load(Ordering::Relaxed),
        }
    }

    fn invalidated(&self) {
        self.counters.invalidations.fetch_add(1, Ordering::Relaxed);
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
        if !state.usable(Instant::now()) || state.generation != seen {
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

/// What a read found, copied outside the lock (the handlers consume what they read).
fn hit<T: Clone>(found: Result<Arc<T>, u64>) -> Lookup<T> {
    match found {
        Ok(value) => Lookup::Hit(T::clone(&value)),
        Err(seen) => Lookup::Miss(Some(seen)),
    }
}

/// The entry of `key` in `scope`, unless it has outlived the cache's lifetime.
fn fresh<K, Q, T>(
    state: &State,
    scope: &Scope,
    map: impl Fn(&Entries) -> &FxHashMap<K, (Arc<T>, Instant)>,
    key: &Q,
    now: Instant,
) -> Option<Arc<T>>
where
    K: std::borrow::Borrow<Q> + Hash + Eq,
    Q: Hash + Eq + ?Sized,
{
    state
        .scopes
        .get(scope)
        .and_then(|entries| map(entries).get(key))
        .filter(|(_, at)| now.saturating_duration_since(*at) < state.lifetime)
        .map(|(value, _)| Arc::clone(value))
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
        let cache = ReadCache::for_sqlite(None);
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
        let cache = ReadCache::for_sqlite(None);
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

    fn listening_on_postgres() -> ReadCache {
        let state = State {
            needs_heartbeat: true,
            lifetime: Duration::from_secs(3600),
            ..State::default()
        };
        let cache = ReadCache::new(Source::Postgres, None, state);
        cache.listening(true);
        cache
    }

    #[test]
    fn on_postgres_nothing_is_cached_until_a_heartbeat_is_heard() {
        let cache = listening_on_postgres();
        read_and_store(&cache, &scope("app_a"), "mem_1", &["x"]);
        assert!(cached(&cache, &scope("app_a"), "mem_1").is_none());
        cache.heard(Instant::now() + Duration::from_secs(60));
        read_and_store(&cache, &scope("app_a"), "mem_1", &["x"]);
        assert!(cached(&cache, &scope("app_a"), "mem_1").is_some());
    }

    #[test]
    fn a_listener_that_stops_hearing_heartbeats_stops_the_cache_until_it_hears_again() {
        let cache = listening_on_postgres();
        let now = Instant::now();
        cache.heard(now + Duration::from_millis(20));
        read_and_store(&cache, &scope("app_a"), "mem_1", &["x"]);
        assert!(cached(&cache, &scope("app_a"), "mem_1").is_some());
        assert!(!cache.went_deaf(now), "still within its deadline");

        std::thread::sleep(Duration::from_millis(30));
        assert!(
            cached(&cache, &scope("app_a"), "mem_1").is_none(),
            "past the deadline, reads go to the database at once"
        );
        read_and_store(&cache, &scope("app_a"), "mem_2", &["x"]);
        assert!(cached(&cache, &scope("app_a"), "mem_2").is_none());
        assert!(cache.went_deaf(Instant::now()), "found deaf");
        assert!(!cache.went_deaf(Instant::now()), "and said so once");

        cache.heard(Instant::now() + Duration::from_secs(60));
        assert!(
            cached(&cache, &scope("app_a"), "mem_1").is_none(),
            "what was kept before the silence is gone"
        );
        read_and_store(&cache, &scope("app_a"), "mem_1", &["y"]);
        assert!(cached(&cache, &scope("app_a"), "mem_1").is_some());
    }

    #[test]
    fn a_listener_that_never_hears_a_heartbeat_is_found_deaf() {
        let cache = listening_on_postgres();
        cache.state().unwrap().deaf_at = Some(Instant::now());
        assert!(cache.went_deaf(Instant::now()));
    }
}
