//! A small write/list benchmark of the store, so `pernode bench` and
//! `examples/store_bench.rs` measure the same thing.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::{Store, StoreError, StoreOptions, labels_indexer};

/// Results of [`run`].
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// Writes awaited one after another: one durable commit each.
    pub sequential_writes: usize,
    pub sequential_elapsed: Duration,
    /// Writes issued all at once from concurrent tasks: group-committed.
    pub concurrent_writes: usize,
    pub concurrent_elapsed: Duration,
    /// Durable commits the concurrent writes took.
    pub concurrent_commits: u64,
    /// Listing every object written (cloning the entries).
    pub listed: usize,
    pub list_elapsed: Duration,
}

fn per_sec(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

impl std::fmt::Display for BenchReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "one write per commit: {} writes in {:.2?} = {:.0} writes/s",
            self.sequential_writes,
            self.sequential_elapsed,
            per_sec(self.sequential_writes, self.sequential_elapsed)
        )?;
        writeln!(
            f,
            "concurrent (batched): {} writes in {:.2?} = {:.0} writes/s ({} commits, {:.1} writes/commit)",
            self.concurrent_writes,
            self.concurrent_elapsed,
            per_sec(self.concurrent_writes, self.concurrent_elapsed),
            self.concurrent_commits,
            self.concurrent_writes as f64 / self.concurrent_commits.max(1) as f64
        )?;
        write!(
            f,
            "list: {} objects in {:.2?}",
            self.listed, self.list_elapsed
        )
    }
}

/// A pod-sized object (a few hundred bytes, with labels, so the indexer has work to do).
pub fn sample_pod(namespace: &str, name: &str) -> serde_json::Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("00000000-0000-0000-0000-{:012}", name.len()),
            "labels": {"app": "bench", "pod-template-hash": "6d4f8c9b7"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "bench",
                                 "uid": "11111111-2222-3333-4444-555555555555", "controller": true}]
        },
        "spec": {
            "nodeName": format!("node-{name}"),
            "containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]
        },
        "status": {"phase": "Pending"}
    })
}

/// Opens a fresh store in `dir` (which should be empty), writes `sequential` pods one at a
/// time, then `concurrent` pods from concurrent tasks, then lists them all. Needs a tokio
/// runtime.
pub async fn run(
    dir: &Path,
    sequential: usize,
    concurrent: usize,
) -> Result<BenchReport, StoreError> {
    let store = Store::open(dir, labels_indexer(), StoreOptions::default())?;
    run_on(store, sequential, concurrent, concurrent.max(1)).await
}

/// [`run`] on an open, empty store, with at most `in_flight` of the concurrent writes under
/// way at once (on etcd: each write is one transaction, as kube-apiserver issues them, and
/// kube-apiserver lets at most 200 mutating requests in flight; etcd's raft log batches
/// concurrent transactions itself). Closes the store at the end.
pub async fn run_on(
    store: Store,
    sequential: usize,
    concurrent: usize,
    in_flight: usize,
) -> Result<BenchReport, StoreError> {
    let start = Instant::now();
    for i in 0..sequential {
        let name = format!("seq-{i}");
        store
            .create(&format!("pods/bench/{name}"), sample_pod("bench", &name))
            .await?;
    }
    let sequential_elapsed = start.elapsed();

    let before = store.stats();
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    let slots = Arc::new(Semaphore::new(in_flight.max(1)));
    for i in 0..concurrent {
        let store = store.clone();
        let slots = slots.clone();
        tasks.spawn(async move {
            let _slot = slots.acquire().await.map_err(|_| StoreError::Closed)?;
            let name = format!("con-{i}");
            store
                .create(&format!("pods/bench/{name}"), sample_pod("bench", &name))
                .await
                .map(|_| ())
        });
    }
    while let Some(res) = tasks.join_next().await {
        // A panicked task is a bug in this function; report it as a closed store rather than
        // unwinding through the caller.
        res.map_err(|_| StoreError::Closed)??;
    }
    let concurrent_elapsed = start.elapsed();
    let concurrent_commits = store.stats().commits - before.commits;

    let start = Instant::now();
    let (_, items) = store.list("pods/", |_| true);
    let list_elapsed = start.elapsed();
    let listed = items.len();
    drop(items);
    store.close().await;

    Ok(BenchReport {
        sequential_writes: sequential,
        sequential_elapsed,
        concurrent_writes: concurrent,
        concurrent_elapsed,
        concurrent_commits,
        listed,
        list_elapsed,
    })
}
