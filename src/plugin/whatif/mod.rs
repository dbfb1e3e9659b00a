//! `kubectl pernode whatif -f new.yaml` (and `pernode whatif --kubeconfig K -f new.yaml`):
//! what applying a DaemonSet would do, predicted by running it.
//!
//! The live cluster is only read (nodes; the DaemonSet named in the file, its revisions and
//! pods). They are copied into an in-process cluster ([`sim`]): an API server on an in-memory
//! store with the controllers and fleet simulator `pernode up` runs, so the change is rolled
//! by the real DaemonSet controller (strategy, partition, pause, waves, and every gate it
//! has), and the scheduler and the node-critical gate act as they would. Pods start after
//! `--pod-start`; `--failure-rate` of the nodes (chosen by `--seed`, deterministically) fail
//! the new revision's pods (they exit, as a crash-looping container). The clock is the real
//! one scaled by `--time-scale` (see [`sim`]); the report gives simulated times.
//!
//! The run ends when the controller reports the rollout complete (`Progressing`
//! `RolloutComplete`), paused, or when no node changed for a while (stalled); then
//! [`report`] says which nodes changed and when, which are blocked and why (`why`'s verdicts
//! on the final simulated state), the peak of unavailable nodes and the waves' timeline.

mod report;
mod sim;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use pernode_controllers::daemonset::CONTROLLER_REVISION_HASH_LABEL;
use pernode_controllers::daemonset::placement::PlacementChecker;
use pernode_controllers::daemonset::sync::controller_of;
use pernode_core::waves::WaveControls;

use super::ClientArgs;
use report::{Blocked, NodeChange, Report, WaveTimeline};
use sim::{LiveState, SimCluster};

#[derive(Args, Debug, Clone)]
pub struct WhatifArgs {
    /// The DaemonSet as it would be applied (one apps/v1 DaemonSet, YAML or JSON).
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// How long a pod takes from being bound to Ready.
    #[arg(long, value_parser = crate::control_plane::parse_duration, default_value = "2s")]
    pub pod_start: Duration,
    /// The share of nodes (0 to 1) where the new revision's pods fail.
    #[arg(long, default_value_t = 0.0)]
    pub failure_rate: f64,
    /// Chooses the failing nodes; the same seed, the same nodes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated seconds per real second (the controllers run on the real clock).
    #[arg(long, default_value_t = 20.0)]
    pub time_scale: f64,
    /// The longest simulated run.
    #[arg(long, value_parser = crate::control_plane::parse_duration, default_value = "2h")]
    pub timeout: Duration,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `pernode whatif`: the kubeconfig flags, then the verb's.
#[derive(Args, Debug)]
pub struct WhatifCommand {
    #[command(flatten)]
    pub client: ClientArgs,
    #[command(flatten)]
    pub args: WhatifArgs,
}

/// How often the simulated cluster is looked at (real time).
const POLL: Duration = Duration::from_millis(50);

pub async fn whatif(client_args: &ClientArgs, args: &WhatifArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.failure_rate) {
        bail!("--failure-rate must be between 0 and 1");
    }
    if !(args.time_scale.is_finite() && args.time_scale >= 1.0) {
        bail!("--time-scale must be at least 1");
    }
    let new = read_daemon_set(&args.file)?;
    let (live_client, default_ns) = super::client(client_args).await?;
    let namespace = new
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| default_ns.clone());
    let name = new.metadata.name.clone().unwrap_or_default();
    let live = read_live(&live_client, &namespace, &name).await?;
    let report = run(&live, new, &namespace, args).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.table());
    }
    Ok(())
}

/// The file's DaemonSet; anything else is an error naming the file.
fn read_daemon_set(file: &PathBuf) -> anyhow::Result<DaemonSet> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let value: serde_json::Value = serde_saphyr::from_str(&text)
        .with_context(|| format!("{}: not YAML or JSON", file.display()))?;
    let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or("");
    let api_version = value
        .get("apiVersion")
        .and_then(|k| k.as_str())
        .unwrap_or("");
    if kind != "DaemonSet" || api_version != "apps/v1" {
        bail!(
            "{}: expected one apps/v1 DaemonSet, found {:?} {:?}",
            file.display(),
            api_version,
            kind
        );
    }
    let ds: DaemonSet = serde_json::from_value(value)
        .with_context(|| format!("{}: not a valid DaemonSet", file.display()))?;
    if ds.metadata.name.as_deref().unwrap_or("").is_empty() {
        bail!("{}: the DaemonSet has no metadata.name", file.display());
    }
    Ok(ds)
}

/// Reads (never writes) what the what-if starts from.
async fn read_live(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<LiveState> {
    let mut nodes = Api::<Node>::all(client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let daemon_set = Api::<DaemonSet>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?;
    let (mut revisions, mut pods) = (Vec::new(), Vec::new());
    if let Some(ds) = &daemon_set {
        let uid = ds.metadata.uid.as_deref();
        revisions = Api::<ControllerRevision>::namespaced(client.clone(), namespace)
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|r| controller_of(&r.metadata).map(|o| o.uid.as_str()) == uid)
            .collect();
        pods = Api::<Pod>::namespaced(client.clone(), namespace)
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|p| controller_of(&p.metadata).map(|o| o.uid.as_str()) == uid)
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
    }
    Ok(LiveState {
        nodes,
        daemon_set,
        revisions,
        pods,
    })
}

/// Whether a pod is Ready.
fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

fn pod_hash(p: &Pod) -> Option<String> {
    p.metadata
        .labels
        .as_ref()?
        .get(CONTROLLER_REVISION_HASH_LABEL)
        .cloned()
}

/// Node → the revision of its Ready live pod (nodes without one are absent).
fn node_states(pods: &[Pod]) -> BTreeMap<String, String> {
    pods.iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && pod_ready(p))
        .filter_map(|p| {
            let node = p.spec.as_ref()?.node_name.clone()?;
            Some((node, pod_hash(p)?))
        })
        .collect()
}

/// Whether `node` is among the failing share for `seed`: a fixed hash (FNV-1a, then
/// splitmix64's finaliser) of the seed and the name, so the same seed picks the same nodes
/// on every run and machine.
fn fails(seed: u64, node: &str, rate: f64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in node.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    (h as f64 / u64::MAX as f64) < rate
}

async fn run(
    live: &LiveState,
    mut new: DaemonSet,
    namespace: &str,
    args: &WhatifArgs,
) -> anyhow::Result<Report> {
    let scale = args.time_scale;
    let mut sim = SimCluster::new().await?;
    sim.seed_nodes(&live.nodes).await?;
    let accounts: Vec<String> = [live.daemon_set.as_ref(), Some(&new)]
        .into_iter()
        .flatten()
        .filter_map(|d| {
            d.spec
                .as_ref()?
                .template
                .spec
                .as_ref()?
                .service_account_name
                .clone()
        })
        .collect();
    sim.seed_namespace(namespace, &accounts).await?;
    sim.start_simulator(args.pod_start.div_f64(scale), &live.nodes);
    let ds_api: Api<DaemonSet> = Api::namespaced(sim.client.clone(), namespace);
    let pod_api: Api<Pod> = Api::namespaced(sim.client.clone(), namespace);
    let name = new.metadata.name.clone().unwrap_or_default();
    let before = node_states(&live.pods);
    let start_hashes: BTreeSet<String> = live.pods.iter().filter_map(pod_hash).collect();
    let copied = match &live.daemon_set {
        Some(ds) => Some(sim.seed_daemon_set(live, ds, scale).await?),
        None => None,
    };
    sim.start_controllers();
    if copied.is_some() {
        settle(&mut sim, &ds_api, &pod_api, &name, before.len()).await?;
    }
    let failing: BTreeSet<String> = live
        .nodes
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .filter(|n| fails(args.seed, n, args.failure_rate))
        .collect();
    let injector = (!failing.is_empty()).then(|| {
        tokio::spawn(inject_failures(
            pod_api.clone(),
            failing.clone(),
            start_hashes.clone(),
        ))
    });

    // The change, as `kubectl apply` would make it: spec, labels and annotations.
    sim::scale_durations(&mut new, scale);
    let started = Instant::now();
    match ds_api.get_opt(&name).await? {
        Some(mut current) => {
            let mut annotations = new.metadata.annotations.clone().unwrap_or_default();
            for (k, v) in current.metadata.annotations.iter().flatten() {
                if k == pernode_controllers::daemonset::TEMPLATE_GENERATION_ANNOTATION {
                    annotations.insert(k.clone(), v.clone());
                }
            }
            current.metadata.annotations = Some(annotations);
            current.metadata.labels = new.metadata.labels.clone();
            current.spec = new.spec.clone();
            // Unconditional, as `kubectl apply`'s patch is: the copy's controllers write
            // status meanwhile, and a resourceVersion precondition would lose that race.
            current.metadata.resource_version = None;
            ds_api
                .replace(&name, &PostParams::default(), &current)
                .await?;
        }
        None => {
            new.metadata.namespace = Some(namespace.to_owned());
            new.metadata.resource_version = None;
            new.metadata.uid = None;
            new.status = None;
            ds_api.create(&PostParams::default(), &new).await?;
        }
    }

    let stall = Duration::from_secs(2)
        .max(args.pod_start.div_f64(scale) * 5)
        .max(soak_of(&new) + Duration::from_secs(2));
    let real_timeout = args.timeout.div_f64(scale);
    let mut states = before.clone();
    let mut changed_at: HashMap<String, Duration> = HashMap::new();
    let mut last_change = Instant::now();
    let mut last_progress = Instant::now();
    let mut peak_unavailable = 0;
    let (outcome, complete_after) = loop {
        sim.check()?;
        tokio::time::sleep(POLL).await;
        let ds = ds_api.get(&name).await?;
        let pods = pod_api.list(&ListParams::default()).await?.items;
        let now = node_states(&pods);
        for node in now.keys().chain(states.keys()) {
            if now.get(node) != states.get(node) {
                changed_at.insert(node.clone(), started.elapsed());
                last_change = Instant::now();
            }
        }
        states = now;
        let generation = ds.metadata.generation.unwrap_or(0);
        let status = ds.status.clone().unwrap_or_default();
        let current = status.observed_generation.unwrap_or(0) >= generation;
        if current {
            peak_unavailable = peak_unavailable
                .max(status.desired_number_scheduled - status.number_available.unwrap_or(0));
        }
        let reason = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Progressing")
            .and_then(|c| c.reason.clone())
            .unwrap_or_default();
        if current && reason == "RolloutComplete" {
            break ("complete", Some(started.elapsed()));
        }
        if current && last_change.elapsed() >= stall {
            // Nothing moved for the stall window: what is left is held or blocked.
            break (
                if reason == "RolloutPaused" {
                    "paused"
                } else {
                    "stalled"
                },
                None,
            );
        }
        if started.elapsed() >= real_timeout {
            break ("timed out", None);
        }
        if last_progress.elapsed() >= Duration::from_secs(2) {
            last_progress = Instant::now();
            eprintln!(
                "whatif: {}s simulated, {} of {} desired pods updated, {} available",
                (started.elapsed().as_secs_f64() * scale).round(),
                status.updated_number_scheduled.unwrap_or(0),
                status.desired_number_scheduled,
                status.number_available.unwrap_or(0),
            );
        }
    };
    if let Some(task) = injector {
        task.abort();
    }
    let elapsed = started.elapsed();
    let final_ds = ds_api.get(&name).await?;
    let final_pods: Vec<Pod> = pod_api
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let final_revisions = Api::<ControllerRevision>::namespaced(sim.client.clone(), namespace)
        .list(&ListParams::default())
        .await?
        .items;
    let final_nodes = Api::<Node>::all(sim.client.clone())
        .list(&ListParams::default())
        .await?
        .items;
    let revision_after = super::why::current_hash(&final_ds, &final_revisions).ok();
    let revision_before = match &live.daemon_set {
        Some(ds) => super::why::current_hash(ds, &live.revisions).ok(),
        None => None,
    };

    let sim_seconds = |d: Duration| d.as_secs_f64() * scale;
    let waves = WaveControls::of(new.metadata.annotations.as_ref()).and_then(Result::ok);
    let labels_of: HashMap<&str, &Node> = live
        .nodes
        .iter()
        .map(|n| (n.metadata.name.as_deref().unwrap_or(""), n))
        .collect();
    let wave_of = |node: &str| -> Option<usize> {
        let w = waves.as_ref()?;
        let labels = labels_of.get(node)?.metadata.labels.as_ref();
        w.waves
            .wave_of(|k| labels.and_then(|l| l.get(k)).map(String::as_str))
            .map(|i| i + 1)
    };
    let mut changed: Vec<NodeChange> = states
        .keys()
        .chain(before.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|n| states.get(*n) != before.get(*n))
        .map(|n| NodeChange {
            node: n.clone(),
            from: before.get(n).cloned(),
            to: states.get(n).cloned(),
            at_seconds: sim_seconds(changed_at.get(n).copied().unwrap_or(elapsed)),
            wave: wave_of(n),
        })
        .collect();
    changed.sort_by(|a, b| {
        a.at_seconds
            .total_cmp(&b.at_seconds)
            .then_with(|| a.node.cmp(&b.node))
    });
    let blocked = blocked_nodes(
        &final_ds,
        &final_nodes,
        &final_pods,
        &final_revisions,
        &states,
        revision_after.as_deref(),
        &failing,
    )?;
    let timeline = waves
        .as_ref()
        .map(|w| {
            w.waves
                .waves()
                .iter()
                .enumerate()
                .map(|(i, wave)| {
                    let times: Vec<f64> = changed
                        .iter()
                        .filter(|c| c.wave == Some(i + 1))
                        .map(|c| c.at_seconds)
                        .collect();
                    WaveTimeline {
                        wave: i + 1,
                        selector: wave.text.clone(),
                        nodes: times.len(),
                        started_seconds: times.iter().copied().reduce(f64::min),
                        finished_seconds: times.iter().copied().reduce(f64::max),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Report {
        daemon_set: format!("{namespace}/{name}"),
        nodes: live.nodes.len(),
        outcome: outcome.to_owned(),
        time_to_complete_seconds: complete_after.map(sim_seconds),
        simulated_seconds: sim_seconds(elapsed),
        peak_unavailable,
        revision_before,
        revision_after,
        changed,
        blocked,
        waves: timeline,
        pod_start_seconds: args.pod_start.as_secs_f64(),
        failure_rate: args.failure_rate,
        seed: args.seed,
        time_scale: scale,
    })
}

/// The scaled wave soak of `ds` (zero without).
fn soak_of(ds: &DaemonSet) -> Duration {
    WaveControls::of(ds.metadata.annotations.as_ref())
        .and_then(Result::ok)
        .map(|w| w.soak)
        .unwrap_or_default()
}

/// Waits until the copied DaemonSet's status is the controller's and its copied Ready pods
/// are Ready again (the simulator started them), so the change starts from the live state.
async fn settle(
    sim: &mut SimCluster,
    ds_api: &Api<DaemonSet>,
    pod_api: &Api<Pod>,
    name: &str,
    ready: usize,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        sim.check()?;
        let ds = ds_api.get(name).await?;
        let observed = ds
            .status
            .as_ref()
            .and_then(|s| s.observed_generation)
            .unwrap_or(0)
            >= ds.metadata.generation.unwrap_or(0);
        let pods = pod_api.list(&ListParams::default()).await?.items;
        if observed && node_states(&pods).len() >= ready {
            return Ok(());
        }
        if Instant::now() >= deadline {
            // Pods on nodes the simulator does not run (NotReady live) never start again:
            // go on from what there is.
            eprintln!("whatif: the copied pods did not all turn Ready within 120s; going on");
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Makes the pods of a new revision on the failing nodes exit (`pernode.io/simulate-exit`),
/// as a container that crashes: the controller sees them fail, as on a bad image.
async fn inject_failures(
    pods: Api<Pod>,
    failing: BTreeSet<String>,
    start_hashes: BTreeSet<String>,
) {
    let mut events = watcher::watcher(pods.clone(), watcher::Config::default()).boxed();
    while let Some(event) = events.next().await {
        let pod = match event {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => p,
            _ => continue,
        };
        let on_failing = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .or_else(|| {
                pod.spec
                    .as_ref()
                    .and_then(pernode_core::scheduling::target_node_name)
            })
            .is_some_and(|n| failing.contains(n));
        let new_revision = pod_hash(&pod).is_some_and(|h| !start_hashes.contains(&h));
        let marked =
            pod.metadata.annotations.as_ref().is_some_and(|a| {
                a.contains_key(pernode_agent::simulator::SIMULATE_EXIT_ANNOTATION)
            });
        if on_failing && new_revision && !marked {
            let patch = serde_json::json!({"metadata": {"annotations": {
                pernode_agent::simulator::SIMULATE_EXIT_ANNOTATION: "1"}}});
            let name = pod.metadata.name.clone().unwrap_or_default();
            // A pod gone meanwhile needs nothing; its replacement comes as another event.
            let _ = pods
                .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await;
        }
    }
}

/// Nodes the changed DaemonSet should run on that do not run its current revision, with the
/// verdicts of `why` that are not `pass` (and the injected failure).
fn blocked_nodes(
    ds: &DaemonSet,
    nodes: &[Node],
    pods: &[Pod],
    revisions: &[ControllerRevision],
    states: &BTreeMap<String, String>,
    current: Option<&str>,
    failing: &BTreeSet<String>,
) -> anyhow::Result<Vec<Blocked>> {
    let checker = PlacementChecker::new(ds);
    let mut sorted: Vec<Node> = nodes.to_vec();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let blocked: Vec<String> = sorted
        .iter()
        .filter(|n| checker.check(*n).should_run)
        .filter_map(|n| n.metadata.name.clone())
        .filter(|n| states.get(n).map(String::as_str) != current)
        .collect();
    if blocked.is_empty() {
        return Ok(Vec::new());
    }
    let explained = super::why::explain(ds, &sorted, pods, revisions, None)?;
    let mut reasons: HashMap<String, Vec<String>> = HashMap::new();
    let mut node = String::new();
    for line in explained.lines() {
        if !line.starts_with(' ') {
            node = line.split(':').next().unwrap_or("").to_owned();
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let verdict = line
            .split_whitespace()
            .find(|w| ["pass", "fail", "held", "waiting", "-"].contains(w));
        if matches!(verdict, Some("fail" | "held" | "waiting")) {
            reasons
                .entry(node.clone())
                .or_default()
                .push(words.join(" "));
        }
    }
    Ok(blocked
        .into_iter()
        .map(|n| {
            let mut why = reasons.remove(&n).unwrap_or_default();
            if failing.contains(&n) {
                why.insert(
                    0,
                    "pods of the new revision fail (--failure-rate)".to_owned(),
                );
            }
            if why.is_empty() {
                why.push("not updated when the run ended".to_owned());
            }
            Blocked {
                node: n,
                reasons: why,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failing_share_is_deterministic_and_about_the_rate() {
        let names: Vec<String> = (1..=1000).map(|i| format!("node-{i}")).collect();
        let picked = |seed| names.iter().filter(|n| fails(seed, n, 0.05)).count();
        assert_eq!(picked(7), picked(7));
        assert!((30..=70).contains(&picked(7)), "{}", picked(7));
        assert_eq!(names.iter().filter(|n| fails(7, n, 0.0)).count(), 0);
        assert_eq!(names.iter().filter(|n| fails(7, n, 1.0)).count(), 1000);
    }

    #[test]
    fn only_an_apps_v1_daemon_set_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).unwrap();
            p
        };
        let cm = write(
            "cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        );
        let err = read_daemon_set(&cm).unwrap_err().to_string();
        assert!(err.contains("expected one apps/v1 DaemonSet"), "{err}");
        let broken = write("b.yaml", "kind: [DaemonSet\n");
        assert!(read_daemon_set(&broken).is_err());
        assert!(read_daemon_set(&dir.path().join("missing.yaml")).is_err());
    }
}
