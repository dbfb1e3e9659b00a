//! The API alone: list the daemon set's pods as JSON and as a Table, create pods, and watchers
//! each receiving every creation event.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::cluster::{CONCURRENCY, Cluster};
use super::report::{Figure, Meter};
use super::store::Limit;

/// A raw request through the kube client (bytes in, bytes out: no typed decoding to measure).
async fn send(
    client: &kube::Client,
    method: &str,
    path: &str,
    accept: Option<&str>,
    body: Option<Vec<u8>>,
) -> anyhow::Result<bytes::Bytes> {
    let mut request = http::Request::builder().method(method).uri(path);
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    if body.is_some() {
        request = request.header("Content-Type", "application/json");
    }
    let response = client
        .send(request.body(kube::client::Body::from(body.unwrap_or_default()))?)
        .await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        bail!(
            "{method} {path}: {status}: {}",
            String::from_utf8_lossy(&bytes)
        );
    }
    Ok(bytes)
}

/// `list_runs` lists of the daemon set's pods as JSON and as a Table (`kubectl get pods`);
/// p50 and p99 of each.
pub async fn list(cluster: &Cluster, nodes: usize, runs: usize) -> anyhow::Result<Vec<Figure>> {
    let path = format!(
        "/api/v1/namespaces/{}/pods?labelSelector=app%3Dagent",
        cluster.namespace
    );
    let mut figures = Vec::new();
    for (variant, accept) in [
        ("JSON", "application/json"),
        (
            "Table",
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        ),
    ] {
        let bar = super::progress(runs, &format!("list {nodes} pods ({variant})"));
        let meter = Meter::start(cluster);
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs.max(1) {
            let start = Instant::now();
            let bytes = send(&cluster.client, "GET", &path, Some(accept), None).await?;
            times.push(start.elapsed());
            if times.len() == 1 {
                let v: Value = serde_json::from_slice(&bytes)?;
                let count = v["items"]
                    .as_array()
                    .or(v["rows"].as_array())
                    .map(Vec::len)
                    .unwrap_or(0);
                if count != nodes {
                    bail!("listed {count} pods, expected {nodes}");
                }
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        times.sort();
        let pick = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
        let limit = Limit::none();
        let mut f = meter.figure(cluster, &limit, "list", variant, nodes, nodes);
        f.store_limit_ms = None;
        f.p50_ms = Some(pick(0.5).as_secs_f64() * 1e3);
        f.p99_ms = Some(pick(0.99).as_secs_f64() * 1e3);
        figures.push(f);
    }
    Ok(figures)
}

fn watch_namespace(cluster: &Cluster) -> String {
    format!("{}-watch", cluster.namespace)
}

/// A small pod no controller acts on (another scheduler's), so its creation is the only event.
fn idle_pod(i: usize) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": format!("idle-{i:05}"), "labels": {"app": "idle"}},
        "spec": {
            "schedulerName": "pernode-bench-none",
            "containers": [{"name": "idle", "image": "registry.example/idle:1.0"}]
        }
    })
}

/// Creates `n` pods from 64 concurrent clients; returns the figure and the resourceVersion
/// before the first creation (where the watchers start).
pub async fn create(
    cluster: &Cluster,
    nodes: usize,
    n: usize,
    limit: &Limit,
) -> anyhow::Result<(Figure, u64)> {
    let ns = watch_namespace(cluster);
    send(
        &cluster.client,
        "POST",
        "/api/v1/namespaces",
        None,
        Some(serde_json::to_vec(&json!({"metadata": {"name": ns}}))?),
    )
    .await
    .context("creating the watch namespace")?;
    // The namespace's own resourceVersion: every pod created after it is newer.
    let got = send(
        &cluster.client,
        "GET",
        &format!("/api/v1/namespaces/{ns}"),
        None,
        None,
    )
    .await?;
    let v: Value = serde_json::from_slice(&got)?;
    let from_rv: u64 = v["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .context("the namespace has no resourceVersion")?;
    let bar = super::progress(n, &format!("create {n} pods"));
    let path = format!("/api/v1/namespaces/{ns}/pods");
    let meter = Meter::start(cluster);
    let mut results = futures::stream::iter(0..n)
        .map(|i| {
            let client = cluster.client.clone();
            let path = path.clone();
            async move {
                let body = serde_json::to_vec(&idle_pod(i))?;
                send(&client, "POST", &path, None, Some(body)).await
            }
        })
        .buffer_unordered(CONCURRENCY);
    while let Some(r) = results.next().await {
        r?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((
        meter.figure(cluster, limit, "create", "pods, 64 clients", nodes, n),
        from_rv,
    ))
}

/// `watchers` concurrent watches from `from_rv`, each until it has received `n` events.
pub async fn watch(
    cluster: &mut Cluster,
    nodes: usize,
    from_rv: u64,
    n: usize,
    watchers: usize,
    limit: &Limit,
    timeout: Duration,
) -> anyhow::Result<Figure> {
    let ns = watch_namespace(cluster);
    let bar = super::progress(n * watchers, &format!("{watchers} watchers x {n} events"));
    let meter = Meter::start(cluster);
    let tasks = (0..watchers).map(|_| {
        let client = cluster.client.clone();
        let bar = bar.clone();
        let path = format!("/api/v1/namespaces/{ns}/pods?watch=true&resourceVersion={from_rv}");
        async move {
            let request = http::Request::get(path).body(kube::client::Body::from(Vec::new()))?;
            let response = client.send(request).await?;
            let mut body = response.into_body();
            let mut seen = 0usize;
            while seen < n {
                let Some(frame) = body.frame().await else {
                    bail!("watch ended after {seen} events")
                };
                if let Ok(data) = frame?.into_data() {
                    let lines = data.iter().filter(|b| **b == b'\n').count();
                    seen += lines;
                    bar.inc(lines as u64);
                }
            }
            anyhow::Ok(())
        }
    });
    let all = futures::future::try_join_all(tasks);
    match tokio::time::timeout(timeout, all).await {
        Ok(r) => {
            r?;
        }
        Err(_) => bail!("the watchers did not receive {n} events each within {timeout:?}"),
    }
    cluster.check()?;
    bar.finish_and_clear();
    let mut f = meter.figure(
        cluster,
        limit,
        "watch",
        &format!("{watchers} watchers"),
        nodes,
        n * watchers,
    );
    // The writes being delivered are the n creations, already made: set the watch beside the
    // store's time for those.
    f.store_limit_ms = Some(limit.batched_ms(n as u64));
    f.limit_ratio = f.store_limit_ms.map(|l| f.wall_ms / l.max(1e-9));
    Ok(f)
}
