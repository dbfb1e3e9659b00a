//! Expectations (R122): how many pod creations and deletions a DaemonSet still waits to see
//! in its watch, so that a sync never acts twice on the same gap while events are in flight.
//!
//! As upstream's `ControllerExpectations`: counts per DaemonSet key, lowered by watch events
//! (and by failed API calls), satisfied when both are ≤ 0, when there is no record, or when the
//! record is older than [`EXPECTATIONS_TTL`].

use foldhash::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// After this long, unfulfilled expectations are considered satisfied (a lost watch event
/// must not stall a DaemonSet forever).
pub const EXPECTATIONS_TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Copy)]
struct Record {
    add: i64,
    del: i64,
    timestamp: Instant,
}

/// Expectations of every DaemonSet, keyed by `namespace/name`.
#[derive(Debug, Default)]
pub struct Expectations {
    records: Mutex<HashMap<String, Record>>,
}

impl Expectations {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Record>) -> R) -> R {
        // A poisoned lock only means another worker panicked mid-update of plain counters;
        // the counters are still usable.
        let mut guard = self
            .records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }

    /// Whether the DaemonSet may be synced fully, at `now`.
    pub fn satisfied_at(&self, key: &str, now: Instant) -> bool {
        self.with(|m| match m.get(key) {
            None => true,
            Some(r) => {
                (r.add <= 0 && r.del <= 0) || now.duration_since(r.timestamp) > EXPECTATIONS_TTL
            }
        })
    }

    /// Whether the DaemonSet may be synced fully.
    pub fn satisfied(&self, key: &str) -> bool {
        self.satisfied_at(key, Instant::now())
    }

    /// Records that `add` creations and `del` deletions are about to be issued.
    pub fn set(&self, key: &str, add: usize, del: usize) {
        self.set_at(key, add, del, Instant::now());
    }

    /// [`Self::set`] at a given instant.
    pub fn set_at(&self, key: &str, add: usize, del: usize, now: Instant) {
        self.with(|m| {
            m.insert(
                key.to_owned(),
                Record {
                    add: add as i64,
                    del: del as i64,
                    timestamp: now,
                },
            )
        });
    }

    /// Lowers the counts (observed events, failed calls, skipped creates).
    pub fn lower(&self, key: &str, add: usize, del: usize) {
        self.with(|m| {
            if let Some(r) = m.get_mut(key) {
                r.add -= add as i64;
                r.del -= del as i64;
            }
        });
    }

    /// A pod creation was observed (or a create failed).
    pub fn creation_observed(&self, key: &str) {
        self.lower(key, 1, 0);
    }

    /// A pod deletion was observed (or a delete failed).
    pub fn deletion_observed(&self, key: &str) {
        self.lower(key, 0, 1);
    }

    /// Forgets a DaemonSet (deleted, R113).
    pub fn delete(&self, key: &str) {
        self.with(|m| m.remove(key));
    }

    /// The outstanding (add, del) counts, for tests and logs.
    pub fn pending(&self, key: &str) -> Option<(i64, i64)> {
        self.with(|m| m.get(key).map(|r| (r.add, r.del)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn r122_expectations_lowered_by_observations() {
        let e = Expectations::new();
        assert!(e.satisfied("ns/a"), "no record is satisfied");
        e.set("ns/a", 2, 1);
        assert!(!e.satisfied("ns/a"));
        e.creation_observed("ns/a");
        e.deletion_observed("ns/a");
        assert!(!e.satisfied("ns/a"));
        e.creation_observed("ns/a");
        assert!(e.satisfied("ns/a"));
        // Observations for a DaemonSet without record create none.
        e.creation_observed("ns/b");
        assert_eq!(e.pending("ns/b"), None);
    }

    #[test]
    fn r122_expectations_expire_after_five_minutes() {
        let e = Expectations::new();
        let t0 = Instant::now();
        e.set_at("ns/a", 1, 0, t0);
        assert!(!e.satisfied_at("ns/a", t0 + Duration::from_secs(299)));
        assert!(e.satisfied_at("ns/a", t0 + Duration::from_secs(301)));
    }

    #[test]
    fn r113_delete_clears_expectations() {
        let e = Expectations::new();
        e.set("ns/a", 5, 5);
        e.delete("ns/a");
        assert!(e.satisfied("ns/a"));
    }
}
