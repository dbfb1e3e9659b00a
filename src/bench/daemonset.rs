//! A daemon set on the simulated fleet: converge (apply until every pod is available and the
//! status says so), rollouts (set image until `kubectl rollout status` would return, with
//! maxUnavailable 10% and with maxSurge 10%) and node churn (10% of the nodes replaced, until
//! the status settles).

use std::collections::HashSet;
use std::time::Duration;

use anyhow::{Context, bail};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;

use super::cluster::{Cluster, NODE_LABEL};
use super::report::{Figure, Meter};
use super::store::Limit;

const NAME: &str = "agent";

fn daemon_set(cluster: &Cluster) -> anyhow::Result<DaemonSet> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": NAME, "labels": {"app": NAME}},
        "spec": {
            "selector": {"matchLabels": {"app": NAME}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%"}},
            "template": {
                "metadata": {"labels": {"app": NAME}},
                "spec": {
                    "nodeSelector": {NODE_LABEL: cluster.run},
                    "containers": [{"name": NAME, "image": "registry.example/agent:1.0",
                        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]
                }
            }
        }
    }))?)
}

fn api(cluster: &Cluster) -> Api<DaemonSet> {
    Api::namespaced(cluster.client.clone(), &cluster.namespace)
}

/// The DaemonSet's status has caught up with generation `generation` and says every one of
/// `nodes` pods is scheduled, up to date and available (`strict`), or only what `kubectl rollout
/// status` checks (updated and available).
pub(super) fn settled(ds: &DaemonSet, generation: i64, nodes: usize, strict: bool) -> bool {
    let Some(s) = &ds.status else { return false };
    let n = nodes as i32;
    let caught_up = s.observed_generation.unwrap_or(0) >= generation;
    let rollout = s.desired_number_scheduled == n
        && s.updated_number_scheduled.unwrap_or(0) >= n
        && s.number_available.unwrap_or(0) >= n;
    let exact = s.current_number_scheduled == n
        && s.number_ready == n
        && s.number_available == Some(n)
        && s.number_misscheduled == 0;
    caught_up && rollout && (!strict || exact)
}

pub(super) fn available(s: &Option<DaemonSetStatus>) -> u64 {
    s.as_ref()
        .and_then(|s| s.number_available)
        .unwrap_or(0)
        .max(0) as u64
}

/// Watches the DaemonSet until `done` holds (the bar shows available pods).
async fn wait_for(
    cluster: &mut Cluster,
    bar: &indicatif::ProgressBar,
    timeout: Duration,
    mut done: impl FnMut(&DaemonSet) -> bool,
) -> anyhow::Result<DaemonSet> {
    let config = watcher::Config::default().fields(&format!("metadata.name={NAME}"));
    let mut events = watcher::watcher(api(cluster), config).boxed();
    let deadline = tokio::time::Instant::now() + timeout;
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
                bar.set_position(available(&ds.status));
                if done(&ds) {
                    return Ok(ds);
                }
            }
            _ = tick.tick() => {
                cluster.check()?;
                if tokio::time::Instant::now() > deadline {
                    bail!("no result within {timeout:?}");
                }
            }
        }
    }
}

/// Every node named in `expect` runs exactly one available pod of the daemon set whose image is
/// `image`.
async fn pods_available(
    cluster: &Cluster,
    expect: &HashSet<String>,
    image: &str,
) -> anyhow::Result<Result<(), String>> {
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let list = pods
        .list(&ListParams::default().labels(&format!("app={NAME}")))
        .await
        .context("listing the daemon pods")?;
    let mut seen = HashSet::new();
    for pod in &list.items {
        if pod.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) else {
            continue;
        };
        if !expect.contains(&node) {
            continue;
        }
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let current = pod.spec.as_ref().is_some_and(|s| {
            s.containers
                .iter()
                .all(|c| c.image.as_deref() == Some(image))
        });
        if ready && current && !seen.insert(node.clone()) {
            return Ok(Err(format!("two available pods on {node}")));
        }
    }
    if seen.len() != expect.len() {
        return Ok(Err(format!(
            "{} of {} nodes have an available pod of {image}",
            seen.len(),
            expect.len()
        )));
    }
    Ok(Ok(()))
}

/// Apply the daemon set; until every pod is available and the status says so.
pub async fn converge(
    cluster: &mut Cluster,
    nodes: usize,
    limit: &Limit,
    timeout: Duration,
) -> anyhow::Result<Figure> {
    let bar = super::progress(nodes, &format!("converge {nodes} nodes"));
    let ds = daemon_set(cluster)?;
    let meter = Meter::start(cluster);
    let created = api(cluster)
        .create(&PostParams::default(), &ds)
        .await
        .context("creating the daemon set")?;
    let generation = created.metadata.generation.unwrap_or(1);
    wait_for(cluster, &bar, timeout, |ds| {
        settled(ds, generation, nodes, true)
    })
    .await
    .context("converge")?;
    let figure = meter.figure(cluster, limit, "converge", "apply", nodes, nodes);
    bar.finish_and_clear();
    let every: HashSet<String> = (1..=nodes).map(|i| cluster.node_name(i)).collect();
    if let Err(e) = pods_available(cluster, &every, "registry.example/agent:1.0").await? {
        bail!("converge: the status says done but {e}");
    }
    Ok(figure)
}

/// `kubectl set image`: a strategic merge patch of the container's image; returns the new
/// generation.
async fn set_image(cluster: &Cluster, image: &str) -> anyhow::Result<i64> {
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": NAME, "image": image}]}}}});
    let ds = api(cluster)
        .patch(NAME, &PatchParams::default(), &Patch::Strategic(patch))
        .await
        .context("setting the image")?;
    Ok(ds.metadata.generation.unwrap_or(0))
}

/// Set image with maxUnavailable 10%, then with maxSurge 10% (maxUnavailable 0); each until
/// `kubectl rollout status` would return.
pub async fn rollouts(
    cluster: &mut Cluster,
    nodes: usize,
    limit: &Limit,
    timeout: Duration,
) -> anyhow::Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for (variant, strategy, image) in [
        (
            "maxUnavailable 10%",
            json!({"maxUnavailable": "10%", "maxSurge": 0}),
            "registry.example/agent:2.0",
        ),
        (
            "maxSurge 10%",
            json!({"maxUnavailable": 0, "maxSurge": "10%"}),
            "registry.example/agent:3.0",
        ),
    ] {
        // Setup: the strategy, applied and observed before the clock starts.
        let patch = json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": strategy}}});
        let ds = api(cluster)
            .patch(NAME, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .context("setting the update strategy")?;
        let generation = ds.metadata.generation.unwrap_or(0);
        let bar = super::progress(nodes, &format!("rollout {variant} {nodes}"));
        wait_for(cluster, &bar, timeout, |ds| {
            settled(ds, generation, nodes, true)
        })
        .await
        .context("applying the update strategy")?;
        bar.reset();
        let meter = Meter::start(cluster);
        let generation = set_image(cluster, image).await?;
        wait_for(cluster, &bar, timeout, |ds| {
            settled(ds, generation, nodes, false)
        })
        .await
        .with_context(|| format!("rollout {variant}"))?;
        figures.push(meter.figure(cluster, limit, "rollout", variant, nodes, nodes));
        bar.finish_and_clear();
        let every: HashSet<String> = (1..=nodes).map(|i| cluster.node_name(i)).collect();
        if let Err(e) = pods_available(cluster, &every, image).await? {
            bail!("rollout {variant}: rollout status would return but {e}");
        }
    }
    Ok(figures)
}

/// Add 10% more nodes and remove 10% of the nodes at once; until the status settles on the new
/// fleet and every new node runs an available pod.
pub async fn node_churn(
    cluster: &mut Cluster,
    nodes: usize,
    limit: &Limit,
    timeout: Duration,
) -> anyhow::Result<Figure> {
    let churn = (nodes / 10).max(1);
    let bar = super::progress(nodes, &format!("node churn {churn}/{nodes}"));
    let image = current_image(cluster).await?;
    let generation = api(cluster)
        .get(NAME)
        .await
        .context("reading the daemon set")?
        .metadata
        .generation
        .unwrap_or(0);
    let meter = Meter::start(cluster);
    let (added, removed) = tokio::join!(
        cluster.add_nodes(nodes + 1, churn, None),
        cluster.delete_nodes(1, churn)
    );
    added?;
    removed?;
    let fleet: HashSet<String> = (churn + 1..=nodes + churn)
        .map(|i| cluster.node_name(i))
        .collect();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        wait_for(cluster, &bar, timeout, |ds| {
            settled(ds, generation, nodes, true)
        })
        .await
        .context("node churn")?;
        // The status alone may still describe the old fleet: the new nodes must have pods.
        match pods_available(cluster, &fleet, &image).await? {
            Ok(()) => break,
            Err(e) if tokio::time::Instant::now() > deadline => bail!("node churn: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    bar.finish_and_clear();
    Ok(meter.figure(
        cluster,
        limit,
        "nodechurn",
        &format!("+{churn} -{churn} nodes"),
        nodes,
        2 * churn,
    ))
}

async fn current_image(cluster: &Cluster) -> anyhow::Result<String> {
    let ds = api(cluster)
        .get(NAME)
        .await
        .context("reading the daemon set")?;
    ds.spec
        .and_then(|s| s.template.spec)
        .and_then(|s| s.containers.into_iter().next())
        .and_then(|c| c.image)
        .context("the daemon set has no image")
}
