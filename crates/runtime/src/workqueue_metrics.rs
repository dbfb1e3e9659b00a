//! client-go's workqueue metrics (component-base's `workqueue` prometheus provider), labelled
//! `name` by queue: `workqueue_depth`, `workqueue_adds_total`,
//! `workqueue_queue_duration_seconds`, `workqueue_work_duration_seconds`,
//! `workqueue_retries_total`.
//!
//! As upstream's, the families are process-wide and a queue records only when
//! it is named ([`crate::WorkQueue::named`]); whoever serves `/metrics` adds them to its
//! registry with [`register`]. Each named queue holds its own handles on its series, so
//! recording is an atomic add (and, for the histograms, an uncontended lock) with no lookup.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueName {
    name: String,
}

/// The families of every queue in the process.
struct Families {
    depth: Family<QueueName, Gauge>,
    adds: Family<QueueName, Counter>,
    queue_duration: Family<QueueName, Histogram, fn() -> Histogram>,
    work_duration: Family<QueueName, Histogram, fn() -> Histogram>,
    retries: Family<QueueName, Counter>,
}

/// Upstream's buckets for both durations: 10 ns to 10 s by powers of ten.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(10e-9, 10.0, 10))
}

static FAMILIES: LazyLock<Families> = LazyLock::new(|| Families {
    depth: Family::default(),
    adds: Family::default(),
    queue_duration: Family::new_with_constructor(duration_histogram),
    work_duration: Family::new_with_constructor(duration_histogram),
    retries: Family::default(),
});

/// The process-wide families.
fn families() -> &'static Families {
    &FAMILIES
}

/// Adds every queue's metrics to `registry` under upstream's names.
pub fn register(registry: &mut Registry) {
    let f = families();
    registry.register(
        "workqueue_depth",
        "Current depth of workqueue",
        f.depth.clone(),
    );
    // The text encoder appends `_total` to counters' names.
    registry.register(
        "workqueue_adds",
        "Total number of adds handled by workqueue",
        f.adds.clone(),
    );
    registry.register(
        "workqueue_queue_duration_seconds",
        "How long in seconds an item stays in workqueue before being requested.",
        f.queue_duration.clone(),
    );
    registry.register(
        "workqueue_work_duration_seconds",
        "How long in seconds processing an item from workqueue takes.",
        f.work_duration.clone(),
    );
    registry.register(
        "workqueue_retries",
        "Total number of retries handled by workqueue",
        f.retries.clone(),
    );
}

/// One named queue's series.
#[derive(Clone, Debug)]
pub(crate) struct QueueMetrics {
    pub depth: Gauge,
    pub adds: Counter,
    pub queue_duration: Histogram,
    pub work_duration: Histogram,
    pub retries: Counter,
}

impl QueueMetrics {
    /// The series of the queue `name` (queues of the same name share them, as upstream's).
    pub fn of(name: &str) -> QueueMetrics {
        let f = families();
        let label = QueueName {
            name: name.to_string(),
        };
        QueueMetrics {
            depth: f.depth.get_or_create_owned(&label),
            adds: f.adds.get_or_create_owned(&label),
            queue_duration: f.queue_duration.get_or_create_owned(&label),
            work_duration: f.work_duration.get_or_create_owned(&label),
            retries: f.retries.get_or_create_owned(&label),
        }
    }
}
