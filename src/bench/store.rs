//! The store alone on a fresh temporary dir (or under a fresh prefix of the bench's etcd): the
//! machine's limit every scenario is set beside. On etcd there is no batch: the "batched"
//! figure is concurrent transactions, one per write as kube-apiserver issues them and at most
//! as many at once as it lets in flight, which etcd's raft log batches on its own.

use std::time::Duration;

use anyhow::Context;

use super::report::{Figure, cpu_seconds, peak_rss_mib};

/// kube-apiserver's `--max-mutating-requests-inflight` default: the most writes it has under
/// way at once, so the most concurrent transactions it sends etcd.
const MAX_MUTATING_IN_FLIGHT: usize = 200;

/// The store's measured rates for one fleet size.
pub struct Limit {
    /// Writes per second from concurrent writers, group-committed.
    pub batched_per_s: f64,
    /// The `store` scenario's figures.
    pub figures: Vec<Figure>,
}

impl Limit {
    /// No comparison (phases that write nothing of their own).
    pub fn none() -> Limit {
        Limit {
            batched_per_s: f64::INFINITY,
            figures: Vec::new(),
        }
    }

    /// Milliseconds the store alone needs for `writes` writes, batched.
    pub fn batched_ms(&self, writes: u64) -> f64 {
        writes as f64 / self.batched_per_s.max(1e-9) * 1e3
    }
}

/// Measures the store with as many writes as the fleet has nodes (one per commit: at most
/// 2,000 of them, batched: at least 1,000).
pub async fn limit(nodes: usize, store: &crate::store::StoreArgs) -> anyhow::Result<Limit> {
    let sequential = nodes.clamp(100, 2_000);
    let batched = nodes.max(1_000);
    let bar = super::progress(2, &format!("store limit ({nodes})"));
    let dir = tempfile::tempdir().context("temporary data dir")?;
    let cpu = cpu_seconds();
    let report = match &store.store {
        None => pernode_store::bench::run(dir.path(), sequential, batched).await,
        Some(_) => {
            let store = crate::store::open(store, dir.path()).await?;
            pernode_store::bench::run_on(store, sequential, batched, MAX_MUTATING_IN_FLIGHT).await
        }
    }
    .context("store benchmark")?;
    bar.finish_and_clear();
    let per_s = |n: usize, d: Duration| n as f64 / d.as_secs_f64().max(1e-9);
    let batched_per_s = per_s(report.concurrent_writes, report.concurrent_elapsed);
    let cpu = cpu_seconds() - cpu;
    let figure = |variant: &str, objects: usize, wall: Duration, commits: u64| Figure {
        scenario: "store".into(),
        variant: variant.into(),
        nodes,
        objects,
        wall_ms: wall.as_secs_f64() * 1e3,
        p50_ms: None,
        p99_ms: None,
        api_requests: Some(0),
        store_commits: Some(commits),
        store_writes: Some(objects as u64),
        store_limit_ms: Some(wall.as_secs_f64() * 1e3),
        limit_ratio: Some(1.0),
        peak_rss_mib: peak_rss_mib(),
        cpu_seconds: cpu,
        run: 1,
    };
    Ok(Limit {
        batched_per_s,
        figures: vec![
            figure(
                "1 write per commit",
                report.sequential_writes,
                report.sequential_elapsed,
                report.sequential_writes as u64,
            ),
            figure(
                "batched",
                report.concurrent_writes,
                report.concurrent_elapsed,
                report.concurrent_commits,
            ),
        ],
    })
}
