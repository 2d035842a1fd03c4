//! A small time-bounded map for the admission path's reads.
//!
//! Every `SendEmail` and SMTP mail used to read the same few rows (sender address, domain verification, the
//! account's domain levels, the template's review state) from the store: about seven round trips to the
//! database's worker threads per mail, which was a large share of the server's CPU at a few thousand mails a
//! second. Those rows change rarely and only through operator or API actions; this process clears the caches
//! when it makes such a change, and another process's change (a separate `mailpush-api`) is seen within the
//! cache's time to live.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Entries kept before the map is emptied (a crude bound: the keys are per account or per sender address).
const MAX_ENTRIES: usize = 100_000;

/// A map whose entries expire `ttl` after they were put.
pub(crate) struct TtlCache<K, V> {
    ttl: Duration,
    entries: RwLock<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// An empty cache whose entries live `ttl`.
    pub(crate) fn new(ttl: Duration) -> Self {
        TtlCache {
            ttl,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The value put for `key` less than the time to live ago.
    pub(crate) fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let map = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let (value, at) = map.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// Remembers `value` for `key` from now.
    pub(crate) fn put(&self, key: K, value: V) {
        let mut map = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, (value, Instant::now()));
    }

    /// Forgets `key`.
    pub(crate) fn remove<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.entries.write().unwrap_or_else(PoisonError::into_inner).remove(key);
    }

    /// Forgets everything (after a change this process made, so it sees the change at once).
    pub(crate) fn clear(&self) {
        self.entries.write().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_clear() {
        let c: TtlCache<(i64, String), u8> = TtlCache::new(Duration::from_millis(50));
        c.put((1, "a".into()), 7);
        assert_eq!(c.get(&(1, "a".to_string())), Some(7));
        assert_eq!(c.get(&(2, "a".to_string())), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(c.get(&(1, "a".to_string())), None, "expired");
        c.put((1, "a".into()), 8);
        c.clear();
        assert_eq!(c.get(&(1, "a".to_string())), None, "cleared");
        c.put((1, "b".into()), 9);
        c.remove(&(1, "b".to_string()));
        assert_eq!(c.get(&(1, "b".to_string())), None, "removed");
    }
}
