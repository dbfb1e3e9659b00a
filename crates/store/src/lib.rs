//! pernode-store: the API server's object store, etcd and kube-apiserver's watch cache in one.
//!
//! - [`Store`] keeps the whole current state in memory (a `BTreeMap` keyed by
//!   `"{resource}/{namespace}/{name}"`, so a list is a prefix range scan that never touches
//!   disk) plus a bounded ring of recent [`Event`]s that serves watches.
//! - One writer thread (`writer`) batches concurrent writes into one durable transaction
//!   (group commit), assigns the global, monotonically increasing resourceVersion, and
//!   acknowledges a write only once its batch is durable.
//! - [`Backend`] is the durable part: [`SqliteBackend`] (WAL, `synchronous=FULL`) by default,
//!   [`MemoryBackend`] for tests.
//! - With the `etcd` feature, [`etcd`](mod@etcd) stores in etcd instead (`Store::open_etcd`):
//!   etcd assigns the resourceVersions and the in-memory state is a watch cache fed by one
//!   etcd watch, as kube-apiserver's cacher.
//! - A few indexed fields (`spec.nodeName` by default) also have a reverse index, for
//!   [`Store::list_field_equals`].
//! - [`Watcher`] reads the ring from a resourceVersion on; too old a start (or falling behind)
//!   gives [`StoreError::Expired`], which the API server turns into 410 Gone.
//! - [`StoreMetrics`]: the writer's commit latency and batch sizes, for `/metrics`.
//! - [`bench`](mod@bench) measures write throughput for `pernode bench` and `examples/store_bench.rs`.

mod backend;
pub mod bench;
mod error;
#[cfg(feature = "etcd")]
pub mod etcd;
mod index;
mod metrics;
mod store;
mod types;
mod watcher;
mod writer;

pub use backend::{Backend, DB_FILE, Loaded, MemoryBackend, SqliteBackend, Write, private_dir};
pub use error::{BackendError, StoreError};
pub use metrics::StoreMetrics;
pub use store::Store;
pub use types::{
    Attrs, Entry, Event, EventType, Indexer, Op, Prev, StoreOptions, StoreStats, labels_indexer,
    no_attrs,
};
pub use watcher::Watcher;
