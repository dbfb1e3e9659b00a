//! The answers the kubelet port caches (TokenReviews, SubjectAccessReviews), each until its
//! own expiry, as the kubelet's webhook caches keep them.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Values by key, each dropped once its time is up.
pub struct ExpiringCache<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Hash + Eq, V: Clone> ExpiringCache<K, V> {
    pub fn new() -> Self {
        ExpiringCache {
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value kept for `key`, if it has not expired (expired ones are dropped on the way).
    pub fn get(&self, key: &K) -> Option<V> {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, (_, expires)| *expires > now);
        entries.get(key).map(|(value, _)| value.clone())
    }

    /// Keeps `value` for `key` for `ttl`.
    pub fn insert(&self, key: K, value: V, ttl: Duration) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, (value, Instant::now() + ttl));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_expire_each_at_its_own_time() {
        let cache = ExpiringCache::new();
        cache.insert("long", 1, Duration::from_secs(300));
        cache.insert("gone", 2, Duration::ZERO);
        assert_eq!(cache.get(&"long"), Some(1));
        assert_eq!(cache.get(&"gone"), None);
        assert_eq!(cache.get(&"never"), None);
    }
}
