//! Failed-pod deletion backoff (R119, R121): a node whose kubelet keeps failing the daemon pod
//! must not make the controller delete and recreate it in a hot loop.
//!
//! As upstream's `flowcontrol.Backoff` (1 s initial, 15 min cap), keyed by
//! `<ds uid>/<observedGeneration>/<node>`: the first deletion is immediate, later ones wait
//! 1 s, 2 s, 4 s, ...; an entry idle for twice the cap is forgotten.

use foldhash::{HashMap, HashMapExt};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// First delay after a failed pod was deleted.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// Longest delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, Copy)]
struct Entry {
    backoff: Duration,
    last_update: Instant,
}

/// Per-key exponential backoff.
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(INITIAL_BACKOFF, MAX_BACKOFF)
    }
}

/// The backoff key of a (DaemonSet, node) pair (R119): a new observedGeneration starts fresh.
pub fn failed_pods_backoff_key(ds_uid: &str, observed_generation: i64, node: &str) -> String {
    format!("{ds_uid}/{observed_generation}/{node}")
}

impl Backoff {
    /// A backoff with the given initial and maximal delays.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Entry>) -> R) -> R {
        let mut guard = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    fn expired(&self, now: Instant, last_update: Instant) -> bool {
        now.saturating_duration_since(last_update) > self.max * 2
    }

    /// Records one more deletion for `key` at `now`: the delay starts at the initial value or
    /// doubles, up to the cap.
    pub fn next(&self, key: &str, now: Instant) {
        let (initial, max) = (self.initial, self.max);
        let expired = |e: &Entry| self.expired(now, e.last_update);
        self.with(|m| {
            let entry = match m.get(key) {
                Some(e) if !expired(e) => Entry {
                    backoff: (e.backoff * 2).min(max),
                    last_update: now,
                },
                _ => Entry {
                    backoff: initial,
                    last_update: now,
                },
            };
            m.insert(key.to_owned(), entry);
        });
    }

    /// Whether `key` is still waiting at `now` since its last deletion.
    pub fn in_backoff_since_update(&self, key: &str, now: Instant) -> bool {
        self.with(|m| match m.get(key) {
            None => false,
            Some(e) if self.expired(now, e.last_update) => false,
            Some(e) => now.saturating_duration_since(e.last_update) < e.backoff,
        })
    }

    /// The current delay of `key` (zero when unknown).
    pub fn get(&self, key: &str) -> Duration {
        self.with(|m| m.get(key).map(|e| e.backoff).unwrap_or_default())
    }

    /// Forgets entries idle for twice the cap (run every minute).
    pub fn gc(&self, now: Instant) {
        let max = self.max;
        self.with(|m| m.retain(|_, e| now.saturating_duration_since(e.last_update) <= max * 2));
    }

    /// Number of entries, for tests.
    pub fn len(&self) -> usize {
        self.with(|m| m.len())
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r119_failed_pod_backoff_doubles_and_caps() {
        let b = Backoff::default();
        let t0 = Instant::now();
        let key = failed_pods_backoff_key("uid", 1, "n1");
        assert_eq!(key, "uid/1/n1");
        assert!(
            !b.in_backoff_since_update(&key, t0),
            "first deletion is immediate"
        );
        b.next(&key, t0);
        assert!(b.in_backoff_since_update(&key, t0 + Duration::from_millis(500)));
        assert!(!b.in_backoff_since_update(&key, t0 + Duration::from_millis(1001)));
        let t1 = t0 + Duration::from_secs(2);
        b.next(&key, t1);
        assert_eq!(b.get(&key), Duration::from_secs(2));
        for _ in 0..20 {
            b.next(&key, t1);
        }
        assert_eq!(b.get(&key), MAX_BACKOFF);
        // Idle for more than twice the cap: forgotten.
        let late = t1 + MAX_BACKOFF * 2 + Duration::from_secs(1);
        assert!(!b.in_backoff_since_update(&key, late));
        b.gc(late);
        assert!(b.is_empty());
    }

    #[test]
    fn r121_backoff_is_per_node() {
        let b = Backoff::default();
        let t0 = Instant::now();
        b.next(&failed_pods_backoff_key("uid", 1, "n1"), t0);
        assert!(!b.in_backoff_since_update(&failed_pods_backoff_key("uid", 1, "n2"), t0));
        assert!(!b.in_backoff_since_update(&failed_pods_backoff_key("uid", 2, "n1"), t0));
    }
}
