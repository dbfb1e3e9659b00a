//! `kubectl pernode why ds/x [NODE]`: for each node (or the one named), why the DaemonSet's pod
//! is or is not there, rule by rule, as the scheduler simulator explains a scheduling decision.
//!
//! The placement rules are judged by the DaemonSet controller's own predicates
//! (`PlacementChecker::explain`, each rule on its own), the partition by the controller's own
//! `rollout` module, the waves (with `pernode.io/rollout-waves`) by its `waves` module from the
//! pods listed; resources are what the scheduler said about the pod (its `PodScheduled`
//! condition), the node state its `Ready` condition; with a health gate
//! (`pernode.io/max-failed-nodes`), whether the gate counts the node's updated pod as failed
//! (`pernode_core::health_gate::judge`, as the controller judges). Nothing is written.

use std::fmt::Write as _;

use clap::Args;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, ListParams};
use pernode_controllers::daemonset::CONTROLLER_REVISION_HASH_LABEL;
use pernode_controllers::daemonset::health_gate::is_gated;
use pernode_controllers::daemonset::history::{
    compute_hash, matches, revision_hash, revision_patch,
};
use pernode_controllers::daemonset::placement::{Placement, PlacementChecker};
use pernode_controllers::daemonset::rollout::{is_held, partition_boundary};
use pernode_controllers::daemonset::sync::controller_of;
use pernode_controllers::daemonset::update::is_rolling_update;
use pernode_controllers::daemonset::waves::{NodeDone, WaveProgress, progress};
use pernode_core::health_gate::{NodeReadiness, PodFacts, PodFailure, Verdict as Health, judge};
use pernode_core::rollout::{RolloutControls, tripped_revision};
use pernode_core::waves::{WaveControls, Waves};

use super::ClientArgs;

#[derive(Args, Debug)]
pub struct WhyArgs {
    /// The DaemonSet: `ds/NAME` (or `NAME`).
    pub daemonset: String,
    /// Only this node.
    pub node: Option<String>,
}

/// One rule's verdict on one node.
struct Verdict {
    rule: &'static str,
    /// `pass`, `fail`, `held`, `waiting` or `-` (does not apply).
    verdict: &'static str,
    detail: String,
}

fn verdict(rule: &'static str, verdict: &'static str, detail: impl Into<String>) -> Verdict {
    Verdict {
        rule,
        verdict,
        detail: detail.into(),
    }
}

pub async fn why(client_args: &ClientArgs, args: &WhyArgs) -> anyhow::Result<()> {
    let name = super::target::daemonset_name(&args.daemonset).map_err(anyhow::Error::msg)?;
    let (client, namespace) = super::client(client_args).await?;
    let ds = Api::<DaemonSet>::namespaced(client.clone(), &namespace)
        .get(name)
        .await?;
    let node_api: Api<Node> = Api::all(client.clone());
    if let Some(only) = &args.node {
        // The server's NotFound for a node that does not exist.
        node_api.get(only).await?;
    }
    let mut nodes = node_api.list(&ListParams::default()).await?.items;
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let uid = ds.metadata.uid.as_deref();
    let pods: Vec<Pod> = Api::<Pod>::namespaced(client.clone(), &namespace)
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter(|p| controller_of(&p.metadata).map(|r| r.uid.as_str()) == uid)
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    let revisions = Api::<ControllerRevision>::namespaced(client, &namespace)
        .list(&ListParams::default())
        .await?
        .items;
    print!(
        "{}",
        explain(&ds, &nodes, &pods, &revisions, args.node.as_deref())?
    );
    Ok(())
}

/// The current revision's hash: the label of the owned revision holding the template (as the
/// controller finds it), else the hash the controller would give a new one.
pub(super) fn current_hash(
    ds: &DaemonSet,
    revisions: &[ControllerRevision],
) -> anyhow::Result<String> {
    let patch = revision_patch(ds)?;
    let owned = revisions.iter().filter(|r| {
        controller_of(&r.metadata).map(|o| o.uid.as_str()) == ds.metadata.uid.as_deref()
    });
    for rev in owned {
        if matches(&patch, rev)
            && let Some(h) = revision_hash(rev)
        {
            return Ok(h.to_owned());
        }
    }
    let collisions = ds.status.as_ref().and_then(|s| s.collision_count);
    Ok(compute_hash(&patch, collisions))
}

/// The report for `only` (or every node), nodes in name order (`nodes` sorted by name).
pub(super) fn explain(
    ds: &DaemonSet,
    nodes: &[Node],
    pods: &[Pod],
    revisions: &[ControllerRevision],
    only: Option<&str>,
) -> anyhow::Result<String> {
    let checker = PlacementChecker::new(ds);
    let placements: Vec<(String, Placement)> = nodes
        .iter()
        .map(|n| {
            (
                n.metadata.name.clone().unwrap_or_default(),
                checker.check(n),
            )
        })
        .collect();
    let controls = RolloutControls::of(ds.metadata.annotations.as_ref());
    let boundary = partition_boundary(&placements, &controls);
    let hash = current_hash(ds, revisions)?;
    let now = k8s_openapi::jiff::Timestamp::now();
    let waves = WaveControls::of(ds.metadata.annotations.as_ref()).map(|w| {
        w.map(|w| {
            let p = progress(
                &w,
                &placements,
                |name| {
                    let i = nodes
                        .binary_search_by(|n| n.metadata.name.as_deref().unwrap_or("").cmp(name))
                        .ok()?;
                    let labels = nodes.get(i)?.metadata.labels.as_ref();
                    w.waves
                        .wave_of(|k| labels.and_then(|l| l.get(k)).map(String::as_str))
                },
                |n| is_held(n, boundary),
                |n| node_done(ds, pods, n, &hash, now),
                now,
            );
            (w.waves, p)
        })
    });
    let mut out = String::new();
    for (index, (node, (node_name, placement))) in nodes.iter().zip(&placements).enumerate() {
        if only.is_some_and(|o| o != node_name) {
            continue;
        }
        let pod = pods.iter().find(|p| {
            p.spec
                .as_ref()
                .and_then(pernode_core::scheduling::target_node_name)
                == Some(node_name.as_str())
        });
        let mut verdicts: Vec<Verdict> = checker
            .explain(node)
            .into_iter()
            .map(|(rule, failure)| match failure {
                Some(why) => verdict(rule, "fail", why),
                None => verdict(rule, "pass", ""),
            })
            .collect();
        verdicts.push(resources(pod));
        verdicts.push(node_state(node));
        if is_gated(ds) {
            verdicts.push(health(pod, node, &hash, &controls, now));
        }
        let mut held_by = is_held(node_name, boundary).then_some("pernode.io/partition");
        match &waves {
            Some(Ok((w, p))) => {
                verdicts.push(wave(w, p, index));
                if p.holds(index) {
                    held_by = held_by.or(Some("pernode.io/rollout-waves"));
                }
            }
            Some(Err(invalid)) => {
                verdicts.push(verdict(
                    "wave",
                    "fail",
                    format!("{invalid}: the rollout is stopped"),
                ));
                held_by = held_by.or(Some("pernode.io/rollout-waves, which does not parse"));
            }
            None => {}
        }
        verdicts.push(rollout(ds, pod, &hash, &controls, held_by));
        let headline = match pod {
            Some(p) => format!("pod {}", p.metadata.name.as_deref().unwrap_or("")),
            None if placement.should_run => "no pod yet".to_owned(),
            None => "no pod: excluded by placement".to_owned(),
        };
        let _ = writeln!(out, "{node_name}: {headline}");
        for v in verdicts {
            let line = format!("  {:<14} {:<8} {}", v.rule, v.verdict, v.detail);
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    Ok(out)
}

/// Where a node stands in the rollout ([`NodeDone`]) by the pods listed: only an updated pod
/// (by its hash), Ready for minReadySeconds.
fn node_done(
    ds: &DaemonSet,
    pods: &[Pod],
    node: &str,
    hash: &str,
    now: k8s_openapi::jiff::Timestamp,
) -> NodeDone {
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let mut at = None;
    let mut updated = false;
    for pod in pods.iter().filter(|p| {
        p.spec
            .as_ref()
            .and_then(pernode_core::scheduling::target_node_name)
            == Some(node)
    }) {
        let pod_hash = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(CONTROLLER_REVISION_HASH_LABEL));
        let ready = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .find(|c| c.type_ == "Ready");
        let since = ready.and_then(|c| c.last_transition_time.as_ref().map(|t| t.0));
        let is_ready = ready.is_some_and(|c| c.status == "True");
        if pod_hash.map(String::as_str) != Some(hash)
            || !pernode_core::pod::ready_condition_available(is_ready, since, min_ready, now)
        {
            return None;
        }
        updated = true;
        let secs = std::time::Duration::from_secs(u64::try_from(min_ready).unwrap_or(0));
        at = at.max(since.and_then(|s| s.checked_add(secs).ok()));
    }
    updated.then_some(at)
}

/// The node's wave and where the rollout is: its wave finished, rolling, soaking, or to come.
fn wave(waves: &Waves, p: &WaveProgress, index: usize) -> Verdict {
    let label = |w: usize| {
        let text = waves.waves().get(w).map_or("", |w| w.text.as_str());
        format!("wave {}/{} ({text})", w + 1, p.count)
    };
    let Some(w) = p.membership.get(index).copied().flatten() else {
        return verdict(
            "wave",
            "held",
            "in no wave of pernode.io/rollout-waves: not updated",
        );
    };
    if w < p.current {
        verdict("wave", "pass", format!("{}: finished", label(w)))
    } else if w > p.current {
        verdict(
            "wave",
            "held",
            format!("{}: after the current {}", label(w), label(p.current)),
        )
    } else if let Some(until) = p.soaking_until {
        verdict(
            "wave",
            "held",
            format!(
                "{}: next, once the waves before it soak (pernode.io/wave-soak) until {until}",
                label(w)
            ),
        )
    } else {
        verdict("wave", "pass", format!("{}: the current wave", label(w)))
    }
}

/// The health gate's verdict on the node's updated pod.
fn health(
    pod: Option<&Pod>,
    node: &Node,
    hash: &str,
    controls: &RolloutControls,
    now: k8s_openapi::jiff::Timestamp,
) -> Verdict {
    let Some(pod) = pod.filter(|p| {
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(CONTROLLER_REVISION_HASH_LABEL))
            .is_some_and(|h| h == hash)
    }) else {
        return verdict("health gate", "-", "no updated pod");
    };
    let status = pod.status.as_ref();
    let waiting = status
        .into_iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .find_map(|c| {
            let reason = c.state.as_ref()?.waiting.as_ref()?.reason.as_deref()?;
            PodFailure::of_waiting_reason(reason)
        });
    let ready = find_ready(status.and_then(|s| s.conditions.as_deref()));
    let facts = PodFacts {
        waiting,
        ready: ready.is_some_and(|c| c.0),
        ready_changed: ready.and_then(|c| c.1),
        created: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
    };
    let node_ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Ready")
        .map(|c| NodeReadiness {
            ready: c.status == "True",
            since: c.last_transition_time.as_ref().map(|t| t.0),
        });
    let deadline = std::time::Duration::from_secs(u64::from(controls.progress_deadline_seconds));
    match judge(facts, node_ready, deadline, now) {
        Health::Healthy => verdict("health gate", "pass", "updated pod healthy"),
        Health::Pending { deadline } => verdict(
            "health gate",
            "waiting",
            format!("not Ready yet; counted as failed if not Ready by {deadline}"),
        ),
        Health::Failed(f) => verdict(
            "health gate",
            "fail",
            format!("{}: counted by pernode.io/max-failed-nodes", f.as_str()),
        ),
        Health::Skipped => verdict(
            "health gate",
            "-",
            "node NotReady before it got the pod: not counted",
        ),
    }
}

/// A pod's Ready condition: True or not, and its lastTransitionTime.
fn find_ready(
    conditions: Option<&[k8s_openapi::api::core::v1::PodCondition]>,
) -> Option<(bool, Option<k8s_openapi::jiff::Timestamp>)> {
    conditions?.iter().find(|c| c.type_ == "Ready").map(|c| {
        (
            c.status == "True",
            c.last_transition_time.as_ref().map(|t| t.0),
        )
    })
}

/// What the scheduler said about the pod: bound, or why not (`PodScheduled` False).
fn resources(pod: Option<&Pod>) -> Verdict {
    let Some(pod) = pod else {
        return verdict("resources", "-", "no pod");
    };
    if pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some()
    {
        return verdict("resources", "pass", "bound to the node");
    }
    let unschedulable = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False");
    match unschedulable {
        Some(c) => verdict("resources", "fail", c.message.clone().unwrap_or_default()),
        None => verdict("resources", "waiting", "not scheduled yet"),
    }
}

/// The node's `Ready` condition; a cordoned node still runs daemon pods (R8).
fn node_state(node: &Node) -> Verdict {
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.type_ == "Ready");
    let cordoned = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let cordon = if cordoned {
        ", cordoned (daemon pods still run)"
    } else {
        ""
    };
    match ready.map(|c| c.status.as_str()) {
        Some("True") => verdict("node state", "pass", format!("Ready{cordon}")),
        Some(status) => verdict("node state", "fail", format!("Ready={status}{cordon}")),
        None => verdict(
            "node state",
            "waiting",
            format!("no Ready condition yet{cordon}"),
        ),
    }
}

/// Whether the pod runs the current revision, and if not what holds it back.
fn rollout(
    ds: &DaemonSet,
    pod: Option<&Pod>,
    hash: &str,
    controls: &RolloutControls,
    held_by: Option<&str>,
) -> Verdict {
    let Some(pod) = pod else {
        return verdict("rollout", "-", "no pod");
    };
    let pod_hash = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(CONTROLLER_REVISION_HASH_LABEL))
        .map(String::as_str)
        .unwrap_or("");
    if pod_hash == hash {
        return verdict("rollout", "pass", format!("updated (revision {hash})"));
    }
    let old = format!("old revision {pod_hash}");
    if tripped_revision(ds.metadata.annotations.as_ref()) == Some(hash) {
        verdict(
            "rollout",
            "held",
            format!(
                "{old}: stopped by the health gate (pernode.io/health-gate-tripped: {hash}); kubectl pernode resume clears it"
            ),
        )
    } else if controls.paused {
        verdict(
            "rollout",
            "held",
            format!("{old}: paused (pernode.io/paused)"),
        )
    } else if let Some(by) = held_by {
        verdict("rollout", "held", format!("{old}: held by {by}"))
    } else if !is_rolling_update(ds) {
        verdict(
            "rollout",
            "held",
            format!("{old}: OnDelete replaces it once it is deleted"),
        )
    } else {
        verdict(
            "rollout",
            "waiting",
            format!("{old}: waiting its turn (maxUnavailable/maxSurge)"),
        )
    }
}
