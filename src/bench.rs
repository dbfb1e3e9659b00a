//! `pernode bench`: measures the control plane the way users meet it, over HTTP on loopback
//! against a server on a temporary data dir (the real SQLite store), and prints a table.
//!
//! Scenarios: `store` (the machine's limit: durable commits of the store alone), `create`
//! (N pods through the API from 64 concurrent clients), `list` (all pods as JSON and as a
//! Table, p50/p99), `watch` (watchers each receiving the N creation events).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use futures::StreamExt;
use http_body_util::BodyExt;
use indicatif::{ProgressBar, ProgressStyle};
use pernode_apiserver::ApiServer;
use serde_json::{Value, json};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Objects per scenario (pods created, listed and watched).
    #[arg(long, default_value_t = 10_000)]
    pub pods: usize,
    /// Scenarios to run, comma-separated: store,create,list,watch.
    #[arg(long, value_delimiter = ',', default_value = "store,create,list,watch")]
    pub only: Vec<String>,
    /// Concurrent watchers in the watch scenario.
    #[arg(long, default_value_t = 1)]
    pub watchers: usize,
    /// Runs of each list for the percentiles.
    #[arg(long, default_value_t = 50)]
    pub list_runs: usize,
    /// Also write the results as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// One line of the report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figure {
    pub scenario: String,
    pub objects: usize,
    pub wall_ms: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub per_second: Option<f64>,
    pub store_commits: u64,
    pub peak_rss_mib: f64,
    pub cpu_seconds: f64,
}

const NAMESPACE: &str = "bench";
const CONCURRENCY: usize = 64;

pub async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let wants = |s: &str| args.only.iter().any(|o| o == s);
    let mut figures = Vec::new();
    if wants("store") {
        figures.extend(store_limit(args.pods).await?);
    }
    let needs_server = ["create", "list", "watch"].iter().any(|s| wants(s));
    if needs_server {
        let dir = tempfile::tempdir().context("temporary data dir")?;
        let store = pernode_apiserver::open_store(dir.path()).context("opening the store")?;
        let server = std::sync::Arc::new(
            ApiServer::new(store)
                .await
                .context("starting the API server")?,
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = {
            let server = server.clone();
            tokio::spawn(async move {
                server
                    .serve(listener, async move {
                        let _ = stopped.await;
                    })
                    .await
            })
        };
        let config = kube::Config::new(format!("http://{addr}").parse()?);
        let client = kube::Client::try_from(config)?;
        let stats = || server.store().stats().commits;
        send(
            &client,
            "POST",
            "/api/v1/namespaces",
            None,
            Some(json!({"metadata": {"name": NAMESPACE}})),
        )
        .await?;
        let start_rv = server.store().current_rv();
        // Pods must exist for list and watch; create them even when create is not reported.
        let commits = stats();
        let created = create_pods(&client, args.pods).await?;
        if wants("create") {
            figures.push(figure(
                "create pods",
                args.pods,
                created,
                None,
                stats() - commits,
            ));
        }
        if wants("list") {
            for (name, accept) in [
                ("list pods (JSON)", "application/json"),
                (
                    "list pods (Table)",
                    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
                ),
            ] {
                let (wall, p50, p99) =
                    list_pods(&client, accept, args.list_runs, args.pods).await?;
                figures.push(figure(name, args.pods, wall, Some((p50, p99)), 0));
            }
        }
        if wants("watch") {
            let wall = watch_events(&client, start_rv, args.pods, args.watchers).await?;
            let mut f = figure(
                &format!("watch {} x events", args.watchers),
                args.pods * args.watchers,
                wall,
                None,
                0,
            );
            f.per_second = Some((args.pods * args.watchers) as f64 / wall.as_secs_f64());
            figures.push(f);
        }
        server.close_watches();
        let _ = stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), serving).await;
        server.store().close().await;
    }
    print_table(&figures);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&figures)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn figure(
    scenario: &str,
    objects: usize,
    wall: Duration,
    percentiles: Option<(Duration, Duration)>,
    commits: u64,
) -> Figure {
    let (rss, cpu) = process_usage();
    Figure {
        scenario: scenario.to_string(),
        objects,
        wall_ms: wall.as_secs_f64() * 1e3,
        p50_ms: percentiles.map(|p| p.0.as_secs_f64() * 1e3),
        p99_ms: percentiles.map(|p| p.1.as_secs_f64() * 1e3),
        per_second: percentiles
            .is_none()
            .then(|| objects as f64 / wall.as_secs_f64()),
        store_commits: commits,
        peak_rss_mib: rss,
        cpu_seconds: cpu,
    }
}

fn progress(len: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    bar.set_style(
        ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len} {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(what.to_string());
    bar
}

/// The store alone, one object per durable commit and batched: the limit the API is measured
/// against.
async fn store_limit(n: usize) -> anyhow::Result<Vec<Figure>> {
    let bar = progress(2, "store limit");
    let dir = tempfile::tempdir()?;
    let sequential = (n / 10).max(100);
    let report = pernode_store::bench::run(dir.path(), sequential, n)
        .await
        .context("store benchmark")?;
    bar.finish_and_clear();
    Ok(vec![
        figure(
            "store: 1 write per commit",
            report.sequential_writes,
            report.sequential_elapsed,
            None,
            report.sequential_writes as u64,
        ),
        figure(
            "store: concurrent, batched",
            report.concurrent_writes,
            report.concurrent_elapsed,
            None,
            report.concurrent_commits,
        ),
    ])
}

/// A daemon pod as the controller builds it (affinity, tolerations, owner), a few KiB of JSON.
fn daemon_pod(i: usize) -> Value {
    let node = format!("node-{i}");
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": format!("agent-{i:05}"),
            "labels": {"app": "agent", "controller-revision-hash": "6d4f8c9b7", "pod-template-generation": "1"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                "uid": "11111111-2222-3333-4444-555555555555", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}}},
            "containers": [{"name": "agent", "image": "registry.example/agent:1.0",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}}],
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
                {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}
            ]
        }
    })
}

async fn send(
    client: &kube::Client,
    method: &str,
    path: &str,
    accept: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<bytes::Bytes> {
    let mut request = http::Request::builder().method(method).uri(path);
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let body = match body {
        Some(v) => {
            request = request.header("Content-Type", "application/json");
            serde_json::to_vec(&v)?
        }
        None => Vec::new(),
    };
    let response = client
        .send(request.body(kube::client::Body::from(body))?)
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

async fn create_pods(client: &kube::Client, n: usize) -> anyhow::Result<Duration> {
    let bar = progress(n, "create pods");
    let path = format!("/api/v1/namespaces/{NAMESPACE}/pods");
    let start = Instant::now();
    let mut results = futures::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            let path = path.clone();
            async move { send(&client, "POST", &path, None, Some(daemon_pod(i))).await }
        })
        .buffer_unordered(CONCURRENCY);
    while let Some(r) = results.next().await {
        r?;
        bar.inc(1);
    }
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    Ok(elapsed)
}

async fn list_pods(
    client: &kube::Client,
    accept: &str,
    runs: usize,
    expect: usize,
) -> anyhow::Result<(Duration, Duration, Duration)> {
    let bar = progress(runs, "list pods");
    let path = format!("/api/v1/namespaces/{NAMESPACE}/pods");
    let mut times = Vec::with_capacity(runs);
    let total = Instant::now();
    for _ in 0..runs.max(1) {
        let start = Instant::now();
        let bytes = send(client, "GET", &path, Some(accept), None).await?;
        times.push(start.elapsed());
        if times.len() == 1 {
            let v: Value = serde_json::from_slice(&bytes)?;
            let count = v["items"]
                .as_array()
                .or(v["rows"].as_array())
                .map(Vec::len)
                .unwrap_or(0);
            if count != expect {
                bail!("listed {count} pods, expected {expect}");
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    times.sort();
    let pick = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    Ok((total.elapsed(), pick(0.5), pick(0.99)))
}

/// `watchers` concurrent watches from before the creations, each until it has seen `n` events.
async fn watch_events(
    client: &kube::Client,
    from_rv: u64,
    n: usize,
    watchers: usize,
) -> anyhow::Result<Duration> {
    let bar = progress(n * watchers, "watch events");
    let start = Instant::now();
    let tasks = (0..watchers).map(|_| {
        let client = client.clone();
        let bar = bar.clone();
        async move {
            let path =
                format!("/api/v1/namespaces/{NAMESPACE}/pods?watch=true&resourceVersion={from_rv}");
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
    for r in futures::future::join_all(tasks).await {
        r?;
    }
    bar.finish_and_clear();
    Ok(start.elapsed())
}

/// Peak resident memory (MiB) and CPU seconds of this process so far.
pub fn process_usage() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may contain spaces): utime and stime are 14 and 15.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let cpu = (ticks(11) + ticks(12)) / 100.0;
    (hwm_kib / 1024.0, cpu)
}

fn print_table(figures: &[Figure]) {
    println!(
        "{:<30} {:>8} {:>11} {:>9} {:>9} {:>11} {:>8} {:>9} {:>7}",
        "scenario",
        "objects",
        "wall ms",
        "p50 ms",
        "p99 ms",
        "per second",
        "commits",
        "RSS MiB",
        "CPU s"
    );
    let opt =
        |v: Option<f64>, p: usize| v.map(|v| format!("{v:.p$}")).unwrap_or_else(|| "-".into());
    for f in figures {
        println!(
            "{:<30} {:>8} {:>11.1} {:>9} {:>9} {:>11} {:>8} {:>9.0} {:>7.1}",
            f.scenario,
            f.objects,
            f.wall_ms,
            opt(f.p50_ms, 1),
            opt(f.p99_ms, 1),
            opt(f.per_second, 0),
            f.store_commits,
            f.peak_rss_mib,
            f.cpu_seconds
        );
    }
}
