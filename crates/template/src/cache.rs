//! A bounded, thread-safe cache of compiled templates.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::CompiledTemplate;

/// The usual cache key: a template id and its version (a counter or the updated-at time).
///
/// Editing a template changes its version, so stale entries are never served; they age
/// out of the LRU. If the Subject varies per send, cache the bodies under this key and
/// attach each Subject with [`CompiledTemplate::with_subject`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TemplateKey {
    /// The template id (Tencent TemplateID).
    pub template_id: u64,
    /// Version or updated-at timestamp: anything that changes when the template changes.
    pub version: u64,
}

impl TemplateKey {
    /// A key for `template_id` at `version`.
    pub fn new(template_id: u64, version: u64) -> Self {
        Self { template_id, version }
    }
}

/// Counters since the cache was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Lookups served from the cache.
    pub hits: u64,
    /// Lookups that found nothing.
    pub misses: u64,
    /// Entries dropped to stay within capacity.
    pub evictions: u64,
}

struct Lru<K> {
    map: HashMap<K, (CompiledTemplate, u64)>,
    /// Last-use tick → key; the first entry is the least recently used.
    order: BTreeMap<u64, K>,
    tick: u64,
}

impl<K: Clone + Eq + Hash> Lru<K> {
    fn touch(&mut self, key: &K) -> Option<CompiledTemplate> {
        self.tick += 1;
        let tick = self.tick;
        let (template, used) = self.map.get_mut(key)?;
        self.order.remove(used);
        *used = tick;
        self.order.insert(tick, key.clone());
        Some(template.clone())
    }
}

/// Least-recently-used cache of [`CompiledTemplate`]s, bounded by entry count.
///
/// Thread-safe without async: one short mutex section per lookup; compiling happens
/// outside the lock (two threads missing the same key at once may both compile; the
/// results are identical). Capacity 0 disables caching.
pub struct TemplateCache<K = TemplateKey> {
    capacity: usize,
    inner: Mutex<Lru<K>>,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
}

impl<K> std::fmt::Debug for TemplateCache<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemplateCache")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl<K: Clone + Eq + Hash> TemplateCache<K> {
    /// A cache holding at most `capacity` templates.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Lru {
                map: HashMap::new(),
                order: BTreeMap::new(),
                tick: 0,
            }),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lru<K>> {
        // A panic elsewhere while holding the lock leaves the map consistent enough
        // (every mutation is a single insert/remove pair); keep serving.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached template for `key`, marking it recently used.
    pub fn get(&self, key: &K) -> Option<CompiledTemplate> {
        let found = self.lock().touch(key);
        let counter = if found.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Caches `template` under `key`, evicting the least recently used entries if full.
    pub fn insert(&self, key: K, template: CompiledTemplate) {
        if self.capacity == 0 {
            return;
        }
        let mut lru = self.lock();
        lru.tick += 1;
        let tick = lru.tick;
        if let Some((_, old)) = lru.map.insert(key.clone(), (template, tick)) {
            lru.order.remove(&old);
        }
        lru.order.insert(tick, key);
        while lru.map.len() > self.capacity {
            let Some((_, oldest)) = lru.order.pop_first() else {
                break;
            };
            lru.map.remove(&oldest);
            self.evictions.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The cached template for `key`, or the one `compile` builds (then cached).
    /// A compile error is returned and nothing is cached.
    pub fn get_or_try_insert_with<E>(
        &self,
        key: K,
        compile: impl FnOnce() -> Result<CompiledTemplate, E>,
    ) -> Result<CompiledTemplate, E> {
        if let Some(found) = self.get(&key) {
            return Ok(found);
        }
        let template = compile()?;
        self.insert(key, template.clone());
        Ok(template)
    }

    /// Drops `key`'s entry; returns whether there was one.
    pub fn remove(&self, key: &K) -> bool {
        let mut lru = self.lock();
        match lru.map.remove(key) {
            Some((_, used)) => {
                lru.order.remove(&used);
                true
            }
            None => false,
        }
    }

    /// Keeps only the entries whose key satisfies `keep` (e.g. drop every version of a
    /// deleted template).
    pub fn retain(&self, mut keep: impl FnMut(&K) -> bool) {
        let mut lru = self.lock();
        let Lru { map, order, .. } = &mut *lru;
        map.retain(|k, (_, used)| {
            let kept = keep(k);
            if !kept {
                order.remove(used);
            }
            kept
        });
    }

    /// Drops every entry.
    pub fn clear(&self) {
        let mut lru = self.lock();
        lru.map.clear();
        lru.order.clear();
    }

    /// Number of cached templates.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Hit, miss and eviction counts.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn tpl(n: u64) -> CompiledTemplate {
        CompiledTemplate::compile(&format!("s{n}"), None, Some("body")).expect("compiles")
    }

    #[test]
    fn lru_eviction_and_stats() {
        let cache = TemplateCache::new(2);
        cache.insert(TemplateKey::new(1, 1), tpl(1));
        cache.insert(TemplateKey::new(2, 1), tpl(2));
        assert!(cache.get(&TemplateKey::new(1, 1)).is_some()); // 1 is now most recent
        cache.insert(TemplateKey::new(3, 1), tpl(3)); // evicts 2
        assert!(cache.get(&TemplateKey::new(2, 1)).is_none());
        assert!(cache.get(&TemplateKey::new(1, 1)).is_some());
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.stats(),
            CacheStats {
                hits: 2,
                misses: 1,
                evictions: 1
            }
        );
        cache.retain(|k| k.template_id != 1);
        assert_eq!(cache.len(), 1);
        assert!(cache.remove(&TemplateKey::new(3, 1)));
        assert!(cache.is_empty());
    }

    #[test]
    fn get_or_try_insert_compiles_once_and_skips_errors() {
        let cache: TemplateCache = TemplateCache::new(8);
        let key = TemplateKey::new(7, 3);
        let mut compiled = 0;
        for _ in 0..3 {
            let got = cache.get_or_try_insert_with(key, || {
                compiled += 1;
                Ok::<_, crate::TemplateError>(tpl(7))
            });
            assert!(got.is_ok());
        }
        assert_eq!(compiled, 1);
        let err = cache.get_or_try_insert_with(TemplateKey::new(8, 1), || CompiledTemplate::compile("s", None, None));
        assert!(err.is_err());
        assert_eq!(cache.len(), 1);
        let disabled = TemplateCache::new(0);
        disabled.insert(key, tpl(1));
        assert!(disabled.is_empty());
    }

    #[test]
    fn shared_across_threads() {
        let cache: Arc<TemplateCache> = Arc::new(TemplateCache::new(16));
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let cache = Arc::clone(&cache);
                std::thread::spawn(move || {
                    for i in 0..50u64 {
                        let key = TemplateKey::new(i % 20, t);
                        let got = cache.get_or_try_insert_with(key, || Ok::<_, crate::TemplateError>(tpl(i)));
                        assert!(got.is_ok());
                    }
                })
            })
            .collect();
        for h in handles {
            assert!(h.join().is_ok());
        }
        assert!(cache.len() <= 16);
    }
}
