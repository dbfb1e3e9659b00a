//! `pernode up` alone, as a child process: its peak resident memory and CPU with `--nodes N`
//! simulated nodes, first until every node is Ready, then until a daemon set applied through a
//! client on its kubeconfig has an available pod on every node. The figures are the child's
//! (`VmHWM` in `/proc/<pid>/status`, utime + stime in `/proc/<pid>/stat`), so the bench's own
//! clients do not count.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;
use serde_json::json;

use super::report::Figure;

const NAMESPACE: &str = "bench";
const NAME: &str = "agent";

/// The `pernode up` child; killed if the bench stops before it does.
struct Child {
    process: tokio::process::Child,
    pid: u32,
}

impl Child {
    fn start(nodes: usize, data_dir: &Path) -> anyhow::Result<Child> {
        let exe = std::env::current_exe().context("finding this executable")?;
        let process = tokio::process::Command::new(exe)
            .arg("up")
            .arg("--nodes")
            .arg(nodes.to_string())
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting pernode up")?;
        let pid = process.id().context("pernode up has no pid")?;
        Ok(Child { process, pid })
    }

    /// Fails once the child has exited.
    fn check(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.process.try_wait()? {
            bail!("pernode up exited: {status}");
        }
        Ok(())
    }

    fn status_kib(&self, field: &str) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    }

    /// Peak resident memory since the child started, MiB.
    fn peak_rss_mib(&self) -> f64 {
        self.status_kib("VmHWM:") / 1024.0
    }

    /// CPU seconds (user + system) of the child so far.
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        super::report::cpu_seconds_of(&stat)
    }

    /// SIGTERM, then SIGKILL after 10 s.
    async fn stop(mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        if tokio::time::timeout(Duration::from_secs(10), self.process.wait())
            .await
            .is_err()
        {
            let _ = self.process.kill().await;
        }
    }
}

/// Starts `pernode up --nodes N` and measures it; two figures: every node Ready, and the daemon
/// set available on every node (the peak is over the child's whole life in both).
pub async fn up(nodes: usize, timeout: Duration) -> anyhow::Result<Vec<Figure>> {
    let dir = tempfile::tempdir().context("temporary data dir")?;
    let start = Instant::now();
    let mut child = Child::start(nodes, &dir.path().join("data"))?;
    let result = measure(&mut child, dir.path(), nodes, start, timeout).await;
    child.stop().await;
    result
}

async fn measure(
    child: &mut Child,
    dir: &Path,
    nodes: usize,
    start: Instant,
    timeout: Duration,
) -> anyhow::Result<Vec<Figure>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let kubeconfig = dir.join("data").join("kubeconfig");
    while !kubeconfig.exists() {
        child.check()?;
        if tokio::time::Instant::now() > deadline {
            bail!("pernode up wrote no kubeconfig within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = crate::control_plane::client_from(&kubeconfig.to_path_buf()).await?;

    let bar = super::progress(nodes, &format!("pernode up: {nodes} nodes ready"));
    wait_nodes_ready(child, &client, nodes, &bar, deadline).await?;
    bar.finish_and_clear();
    let figure = |variant: &str, wall: Duration, peak: f64, cpu: f64| Figure {
        scenario: "memory".into(),
        variant: variant.into(),
        nodes,
        objects: nodes,
        wall_ms: wall.as_secs_f64() * 1e3,
        p50_ms: None,
        p99_ms: None,
        api_requests: None,
        store_commits: None,
        store_writes: None,
        store_limit_ms: None,
        limit_ratio: None,
        peak_rss_mib: peak,
        cpu_seconds: cpu,
        run: 1,
    };
    let cpu_ready = child.cpu_seconds();
    let ready = figure(
        "up, nodes Ready",
        start.elapsed(),
        child.peak_rss_mib(),
        cpu_ready,
    );

    let bar = super::progress(nodes, &format!("pernode up: converge {nodes}"));
    let applied = Instant::now();
    let generation = apply_daemon_set(&client).await?;
    wait_available(child, &client, nodes, generation, &bar, deadline).await?;
    bar.finish_and_clear();
    let converged = figure(
        "up, daemon set available",
        applied.elapsed(),
        child.peak_rss_mib(),
        child.cpu_seconds() - cpu_ready,
    );
    Ok(vec![ready, converged])
}

fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Watches the nodes (paged list, then watch) until `nodes` of them are Ready.
async fn wait_nodes_ready(
    child: &mut Child,
    client: &kube::Client,
    nodes: usize,
    bar: &indicatif::ProgressBar,
    deadline: tokio::time::Instant,
) -> anyhow::Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
    let mut ready: HashSet<String> = HashSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            ev = events.next() => {
                let node = match ev {
                    Some(Ok(watcher::Event::Apply(n) | watcher::Event::InitApply(n))) => n,
                    Some(Ok(watcher::Event::Delete(n))) => {
                        ready.remove(&n.metadata.name.unwrap_or_default());
                        continue;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "node watch interrupted");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    None => bail!("the node watch ended"),
                };
                let name = node.metadata.name.clone().unwrap_or_default();
                if node_ready(&node) {
                    ready.insert(name);
                } else {
                    ready.remove(&name);
                }
                bar.set_position(ready.len() as u64);
                if ready.len() >= nodes {
                    return Ok(());
                }
            }
            _ = tick.tick() => {
                child.check()?;
                if tokio::time::Instant::now() > deadline {
                    bail!("only {}/{nodes} nodes became Ready", ready.len());
                }
            }
        }
    }
}

/// Creates the bench namespace and a daemon set on every node; returns its generation.
async fn apply_daemon_set(client: &kube::Client) -> anyhow::Result<i64> {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e).context("creating the bench namespace"),
    }
    let ds: DaemonSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": NAME, "labels": {"app": NAME}},
        "spec": {
            "selector": {"matchLabels": {"app": NAME}},
            "template": {
                "metadata": {"labels": {"app": NAME}},
                "spec": {
                    "containers": [{"name": NAME, "image": "registry.example/agent:1.0",
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]
                }
            }
        }
    }))?;
    let created = Api::<DaemonSet>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &ds)
        .await
        .context("creating the daemon set")?;
    Ok(created.metadata.generation.unwrap_or(1))
}

/// Watches the daemon set until its status says every one of `nodes` pods is available.
async fn wait_available(
    child: &mut Child,
    client: &kube::Client,
    nodes: usize,
    generation: i64,
    bar: &indicatif::ProgressBar,
    deadline: tokio::time::Instant,
) -> anyhow::Result<()> {
    let api: Api<DaemonSet> = Api::namespaced(client.clone(), NAMESPACE);
    let config = watcher::Config::default().fields(&format!("metadata.name={NAME}"));
    let mut events = watcher::watcher(api, config).boxed();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            ev = events.next() => {
                let ds = match ev {
                    Some(Ok(watcher::Event::Apply(ds) | watcher::Event::InitApply(ds))) => ds,
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "daemon set watch interrupted");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                    None => bail!("the daemon set watch ended"),
                };
                bar.set_position(super::daemonset::available(&ds.status));
                if super::daemonset::settled(&ds, generation, nodes, true) {
                    return Ok(());
                }
            }
            _ = tick.tick() => {
                child.check()?;
                if tokio::time::Instant::now() > deadline {
                    bail!("the daemon set was not available on {nodes} nodes in time");
                }
            }
        }
    }
}
