//! Recently seen API keys, so that a request's key costs a hash lookup rather than a query:
//! after the access check's own read, the key's query was the largest part of its cost.
//! An entry lives for `TTL`; a key revoked (or an app's API access changed) through this
//! store stops working at once, one revoked by another process (the CLI, another node)
//! within `TTL`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::KeyOwner;

pub(crate) const TTL: Duration = Duration::from_secs(1);

/// Bounds the memory a flood of distinct valid keys could take; the cache starts afresh then.
const MAX_ENTRIES: usize = 10_000;

/// Secret keys by their hash; only keys that exist are kept, so a new key works at once.
pub(crate) type KeyCache = TtlCache<KeyOwner>;

/// Entries by a key's text, each used for `TTL`. Also keeps the environments of publishable
/// keys, with their settings (see `accounts`).
pub(crate) struct TtlCache<V> {
    entries: Mutex<HashMap<String, (V, Instant)>>,
}

impl<V> Default for TtlCache<V> {
    fn default() -> Self {
        TtlCache {
            entries: Mutex::default(),
        }
    }
}

impl<V: Clone> TtlCache<V> {
    pub(crate) fn get(&self, key_hash: &str) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        let (owner, at) = entries.get(key_hash)?;
        (at.elapsed() < TTL).then(|| owner.clone())
    }

    pub(crate) fn put(&self, key_hash: &str, owner: &V) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            entries.insert(key_hash.to_owned(), (owner.clone(), Instant::now()));
        }
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}
