//! What the writer thread reports about its commits, as Prometheus histograms the API server's
//! `/metrics` exposes: how long a batch's durable transaction took (etcd's
//! `etcd_disk_backend_commit_duration_seconds`, the same measurement: the backend's commit of a
//! batch of writes) and how many writes a batch held (group commit has no etcd counterpart).
//! Only the writer thread observes them, so their locks are never contended.

use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The store's commit histograms. Clones share the same counts.
#[derive(Clone, Debug)]
pub struct StoreMetrics {
    /// Seconds per durable batch commit.
    pub commit_duration: Histogram,
    /// Writes per committed batch.
    pub batch_writes: Histogram,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        StoreMetrics {
            // etcd's buckets for this histogram: 1 ms doubling to about 8 s.
            commit_duration: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            // 1 to 8,192 writes, doubling: `max_batch` bounds a batch well below the top.
            batch_writes: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
        }
    }
}

impl StoreMetrics {
    /// Adds the histograms to `registry` under their exposed names.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "etcd_disk_backend_commit_duration_seconds",
            "The latency distributions of commit called by backend.",
            self.commit_duration.clone(),
        );
        registry.register(
            "pernode_store_commit_batch_writes",
            "Writes made durable by one backend commit (group commit's batch size).",
            self.batch_writes.clone(),
        );
    }
}
