//! pernode's health gate (`pernode.io/max-failed-nodes`, `pernode.io/auto-rollback`): the
//! rolling update stops by itself once that many desired nodes got an updated pod that fails
//! (as `pernode_core::health_gate` judges it), or rolls back to the previous revision.
//! Upstream's DaemonSet has no such gate; what happens at it follows what exists upstream:
//!
//! - **Stopped**: as pernode's pause (`super::rollout`): no more pods replaced, nodes that join
//!   get the revision most pods run. The stop is recorded in `pernode.io/health-gate-tripped`
//!   (the revision's hash), so neither a restart of the controller nor pods that recover resume
//!   it: only removing the annotation does (`kubectl pernode resume`), after which the gate
//!   counts again from what the pods show then. A new template is a new revision, not stopped.
//! - **Rolled back**: as `kubectl rollout undo` does for a DaemonSet (kubectl's
//!   `DaemonSetRollbacker`): the previous ControllerRevision's data (the whole template, with
//!   `$patch: replace`) is patched into the DaemonSet as a strategic merge patch, with the
//!   tripped annotation naming the bad revision in the same write. The history then reuses the
//!   old revision (R90); the bad one stays marked, so if its template comes back (a GitOps tool
//!   re-applying it) the rollout is stopped at once instead of retried.
//!
//! The counting runs only for a DaemonSet with a gate, over the pods the sync grouped anyway.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use pernode_core::health_gate::{NodeReadiness, PodFacts, PodFailure, Verdict, judge};
use pernode_core::rollout::{
    HEALTH_GATE_TRIPPED_ANNOTATION, MAX_FAILED_NODES_ANNOTATION, RolloutControls, tripped_revision,
};

use super::Error;
use super::controller::Ctx;
use super::history::revision_hash;
use super::placement::Placement;
use super::pods::{is_pod_updated, template_generation};
use super::status::NodeToPods;
use super::sync::WARNING;

/// Reason of Progressing False, and of the Warning event, when the gate stops a rollout.
pub const HEALTH_GATE_TRIPPED: &str = "HealthGateTripped";
/// Reason of the Warning event when the gate rolls a DaemonSet back.
pub const HEALTH_GATE_ROLLED_BACK: &str = "HealthGateRolledBack";
/// How many failed nodes a message names before it counts the rest.
const NAMED_NODES: usize = 3;

/// Whether the DaemonSet has a health gate or a tripped one: what makes a node's readiness
/// worth a sync.
pub fn is_gated(ds: &DaemonSet) -> bool {
    ds.metadata.annotations.as_ref().is_some_and(|a| {
        a.contains_key(MAX_FAILED_NODES_ANNOTATION)
            || a.contains_key(HEALTH_GATE_TRIPPED_ANNOTATION)
    })
}

/// A desired node the gate counts, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedNode {
    /// The node's name.
    pub node: String,
    /// Why.
    pub failure: PodFailure,
}

/// What the gate counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Count {
    /// The failed nodes, in node order.
    pub failed: Vec<FailedNode>,
    /// The first progress deadline still to come: a sync then may count one more node.
    pub next_deadline: Option<Timestamp>,
}

/// Counts the desired nodes whose updated pod (by `hash` or template `generation`, as the
/// rolling update tells them) fails; `readiness` is a node's Ready condition.
pub fn count_failed(
    nodes: &[(String, Placement)],
    node_pods: &NodeToPods<'_>,
    hash: &str,
    generation: Option<i64>,
    readiness: impl Fn(&str) -> Option<NodeReadiness>,
    deadline: Duration,
    now: Timestamp,
) -> Count {
    let mut count = Count::default();
    let mut lookup = node_pods.lookup();
    for (node, placement) in nodes {
        if !placement.should_run {
            continue;
        }
        let Some(pods) = lookup.get(node) else {
            continue;
        };
        for pod in pods
            .iter()
            .filter(|p| !p.deleting && is_pod_updated(p, hash, generation))
        {
            let facts = PodFacts {
                waiting: pod.waiting,
                ready: pod.is_ready(),
                ready_changed: pod.readiness.and_then(|r| r.since),
                created: pod.created,
            };
            match judge(facts, readiness(node), deadline, now) {
                Verdict::Failed(failure) => {
                    count.failed.push(FailedNode {
                        node: node.clone(),
                        failure,
                    });
                    break;
                }
                Verdict::Pending { deadline } => {
                    count.next_deadline =
                        Some(count.next_deadline.map_or(deadline, |d| d.min(deadline)));
                }
                Verdict::Healthy | Verdict::Skipped => {}
            }
        }
    }
    count
}

/// `2 nodes failed: node-1 (ImagePullBackOff), node-3 (node NotReady)`, the first few named and
/// the rest counted (`... and 4 more`).
pub fn describe(failed: &[FailedNode]) -> String {
    let noun = if failed.len() == 1 { "node" } else { "nodes" };
    let named: Vec<String> = failed
        .iter()
        .take(NAMED_NODES)
        .map(|f| format!("{} ({})", f.node, f.failure.as_str()))
        .collect();
    let more = failed.len().saturating_sub(NAMED_NODES);
    let rest = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    format!("{} {noun} failed: {}{rest}", failed.len(), named.join(", "))
}

/// Progressing's message (and the event's) when the gate stops the rollout of `hash`.
pub fn tripped_message(name: &str, hash: &str, threshold: usize, failed: &[FailedNode]) -> String {
    format!(
        "DaemonSet {name:?} stopped by its health gate at revision {hash} (pernode.io/max-failed-nodes: {threshold}): {}; kubectl pernode resume to go on",
        describe(failed)
    )
}

/// What the gate makes of a sync.
#[derive(Debug, PartialEq)]
pub enum Decision<'a> {
    /// No gate, or under it: roll on.
    Go,
    /// Tripped before (the annotation names the current revision): replace nothing.
    Stopped,
    /// Trips now: record it, say so, replace nothing.
    Trip {
        /// What the event and Progressing say.
        message: String,
    },
    /// Trips now with auto-rollback: patch the previous revision's template in.
    RollBack {
        /// The revision rolled back to.
        to: &'a ControllerRevision,
        /// The event's message.
        message: String,
    },
}

/// The gate's decision for a DaemonSet at revision `hash` with `old` revisions, given what
/// [`count_failed`] counted among `desired` nodes.
pub fn decide<'a>(
    ds: &DaemonSet,
    hash: &str,
    desired: i32,
    count: &Count,
    old: &'a [ControllerRevision],
) -> Decision<'a> {
    let annotations = ds.metadata.annotations.as_ref();
    if tripped_revision(annotations) == Some(hash) {
        return Decision::Stopped;
    }
    let controls = RolloutControls::of(annotations);
    let Some(threshold) = controls.max_failed(desired) else {
        return Decision::Go;
    };
    if count.failed.len() < threshold {
        return Decision::Go;
    }
    let name = ds.metadata.name.as_deref().unwrap_or("");
    let previous = old
        .iter()
        .filter(|r| revision_hash(r).is_some_and(|h| h != hash))
        .max_by_key(|r| r.revision);
    match previous {
        Some(to) if controls.auto_rollback => Decision::RollBack {
            to,
            message: format!(
                "Rolled back to revision {}: revision {hash} failed the health gate (pernode.io/max-failed-nodes: {threshold}): {}; it is not rolled out again until kubectl pernode resume",
                to.revision,
                describe(&count.failed)
            ),
        },
        _ => {
            let mut message = tripped_message(name, hash, threshold, &count.failed);
            if controls.auto_rollback {
                message.push_str(" (no previous revision to roll back to)");
            }
            Decision::Trip { message }
        }
    }
}

/// The strategic merge patch that records a trip of `hash`: the annotation alone, or with
/// `to`'s template (its revision data, `$patch: replace` included) for a rollback.
pub fn trip_patch(hash: &str, to: Option<&ControllerRevision>) -> serde_json::Value {
    let mut patch = to
        .and_then(|r| r.data.as_ref())
        .map(|d| d.0.clone())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    if let Some(map) = patch.as_object_mut() {
        map.insert(
            "metadata".to_owned(),
            serde_json::json!({"annotations": {HEALTH_GATE_TRIPPED_ANNOTATION: hash}}),
        );
    }
    patch
}

/// Progressing's message while the rollout of `hash` is stopped by the gate: the one said when
/// it tripped (`previous`, kept while it names the revision, so that it still names the nodes
/// once their pods recover), else one made from what is counted now.
pub fn stopped_message(
    ds: &DaemonSet,
    hash: &str,
    desired: i32,
    count: &Count,
    previous: Option<&str>,
) -> String {
    if let Some(p) = previous.filter(|p| p.contains(&format!(" at revision {hash} "))) {
        return p.to_owned();
    }
    let threshold = RolloutControls::of(ds.metadata.annotations.as_ref())
        .max_failed(desired)
        .unwrap_or(1);
    tripped_message(
        ds.metadata.name.as_deref().unwrap_or(""),
        hash,
        threshold,
        &count.failed,
    )
}

// ---- wiring: the sync's calls ---------------------------------------------------------------

/// The gate's part of a sync: counts (only with a gate), trips or rolls back when the count
/// says so, and answers whether the rolling update must stop as paused.
pub(crate) async fn enforce(
    ctx: &Ctx,
    ds: &Arc<DaemonSet>,
    key: &str,
    nodes: &[(String, Placement)],
    node_pods: &NodeToPods<'_>,
    hash: &str,
    old: &[ControllerRevision],
) -> Result<bool, Error> {
    if !is_gated(ds) {
        return Ok(false);
    }
    let annotations = ds.metadata.annotations.as_ref();
    if tripped_revision(annotations) == Some(hash) {
        return Ok(true);
    }
    let controls = RolloutControls::of(annotations);
    if controls.max_failed_nodes.is_none() {
        return Ok(false);
    }
    let now = Timestamp::now();
    let count = count_of(ctx, ds, nodes, node_pods, hash, &controls, now);
    // A pod still within its deadline may fail at it: look again then.
    if let Some(due) = count.next_deadline {
        let left = due.duration_since(now).unsigned_abs() + Duration::from_secs(1);
        ctx.queue.add_after(key.to_string(), left);
    }
    let (to, reason, message) = match decide(ds, hash, desired(nodes), &count, old) {
        Decision::Go => return Ok(false),
        Decision::Stopped => return Ok(true),
        Decision::Trip { message } => (None, HEALTH_GATE_TRIPPED, message),
        Decision::RollBack { to, message } => (Some(to), HEALTH_GATE_ROLLED_BACK, message),
    };
    let mut patch = trip_patch(hash, to);
    // Written over the version judged: a template changed meanwhile is not rolled back.
    if let Some(rv) = &ds.metadata.resource_version {
        patch["metadata"]["resourceVersion"] = serde_json::Value::from(rv.as_str());
    }
    let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
    let name = ds.metadata.name.as_deref().unwrap_or_default();
    ctx.ds_api(ns)
        .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
        .await?;
    tracing::info!(ds = %key, %message, "health gate");
    ctx.recorder.record(ds, WARNING, reason, message);
    Ok(true)
}

/// Progressing's message while the gate stops the current revision (`None` when it does not).
pub(crate) fn stopped_progressing(
    ctx: &Ctx,
    ds: &DaemonSet,
    nodes: &[(String, Placement)],
    node_pods: &NodeToPods<'_>,
    hash: &str,
    now: Timestamp,
) -> Option<String> {
    let annotations = ds.metadata.annotations.as_ref();
    if tripped_revision(annotations) != Some(hash) {
        return None;
    }
    let previous = ds
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == super::conditions::PROGRESSING))
        .filter(|c| c.reason.as_deref() == Some(HEALTH_GATE_TRIPPED))
        .and_then(|c| c.message.as_deref());
    let controls = RolloutControls::of(annotations);
    let count = count_of(ctx, ds, nodes, node_pods, hash, &controls, now);
    Some(stopped_message(ds, hash, desired(nodes), &count, previous))
}

fn desired(nodes: &[(String, Placement)]) -> i32 {
    i32::try_from(nodes.iter().filter(|(_, p)| p.should_run).count()).unwrap_or(i32::MAX)
}

fn count_of(
    ctx: &Ctx,
    ds: &DaemonSet,
    nodes: &[(String, Placement)],
    node_pods: &NodeToPods<'_>,
    hash: &str,
    controls: &RolloutControls,
    now: Timestamp,
) -> Count {
    count_failed(
        nodes,
        node_pods,
        hash,
        template_generation(ds),
        |n| ctx.nodes.get("", n).and_then(|r| r.part),
        Duration::from_secs(u64::from(controls.progress_deadline_seconds)),
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemonset::history::{new_revision, revision_patch};
    use crate::daemonset::testutil::{ds, pod_on};
    use crate::trim::PodRecord;
    use std::collections::BTreeMap;

    const RUN: Placement = Placement::BOTH;
    const NO: Placement = Placement::NONE;
    const DEADLINE: Duration = Duration::from_secs(60);

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn ready_node() -> Option<NodeReadiness> {
        Some(NodeReadiness {
            ready: true,
            since: Some(t(0)),
        })
    }

    fn count(
        nodes: &[(&str, Placement)],
        pods: &[PodRecord],
        readiness: impl Fn(&str) -> Option<NodeReadiness>,
        now: i64,
    ) -> Count {
        let nodes: Vec<(String, Placement)> =
            nodes.iter().map(|(n, p)| (n.to_string(), *p)).collect();
        let pairs = pods
            .iter()
            .map(|p| (p.target_node.as_deref().unwrap_or(""), p))
            .collect();
        let node_pods = NodeToPods::from_pairs(pairs);
        count_failed(&nodes, &node_pods, "new", None, readiness, DEADLINE, t(now))
    }

    #[test]
    fn only_updated_pods_on_desired_nodes_count() {
        let pods = [
            pod_on("a", "n1", "new", 0)
                .waiting("ImagePullBackOff")
                .build(),
            pod_on("b", "n2", "old", 0)
                .waiting("ImagePullBackOff")
                .build(),
            pod_on("c", "n3", "new", 0)
                .waiting("CrashLoopBackOff")
                .build(),
            pod_on("d", "n4", "new", 0).ready(1).build(),
            pod_on("e", "n5", "new", 0)
                .waiting("ErrImagePull")
                .terminating()
                .build(),
        ];
        let nodes = [
            ("n1", RUN),
            ("n2", RUN),
            ("n3", NO),
            ("n4", RUN),
            ("n5", RUN),
        ];
        let c = count(&nodes, &pods, |_| ready_node(), 10);
        assert_eq!(
            c.failed,
            vec![FailedNode {
                node: "n1".into(),
                failure: PodFailure::ImagePullBackOff
            }]
        );
        assert_eq!(c.next_deadline, None);
    }

    #[test]
    fn unready_pods_fail_at_the_deadline_and_say_when() {
        let pods = [
            pod_on("a", "n1", "new", 0).created(5).build(),
            pod_on("b", "n2", "new", 0).created(20).build(),
        ];
        let nodes = [("n1", RUN), ("n2", RUN)];
        let before = count(&nodes, &pods, |_| ready_node(), 30);
        assert!(before.failed.is_empty());
        assert_eq!(before.next_deadline, Some(t(65)));
        let after = count(&nodes, &pods, |_| ready_node(), 70);
        assert_eq!(after.failed.len(), 1);
        assert_eq!(after.failed[0].failure, PodFailure::NotReadyInTime);
        assert_eq!(after.next_deadline, Some(t(80)));
    }

    #[test]
    fn nodes_not_ready_before_the_pod_are_skipped_after_it_counted() {
        let pods = [
            pod_on("a", "n1", "new", 0)
                .created(10)
                .waiting("ErrImagePull")
                .build(),
            pod_on("b", "n2", "new", 0).created(10).ready(12).build(),
        ];
        let nodes = [("n1", RUN), ("n2", RUN)];
        let readiness = |node: &str| {
            Some(NodeReadiness {
                ready: false,
                since: Some(t(if node == "n1" { 5 } else { 30 })),
            })
        };
        let c = count(&nodes, &pods, readiness, 40);
        assert_eq!(
            c.failed,
            vec![FailedNode {
                node: "n2".into(),
                failure: PodFailure::NodeNotReady
            }]
        );
    }

    #[test]
    fn messages_name_the_first_nodes_and_count_the_rest() {
        let failed: Vec<FailedNode> = (1..=5)
            .map(|i| FailedNode {
                node: format!("node-{i}"),
                failure: PodFailure::ImagePullBackOff,
            })
            .collect();
        assert_eq!(
            describe(&failed[..1]),
            "1 node failed: node-1 (ImagePullBackOff)"
        );
        assert_eq!(
            describe(&failed),
            "5 nodes failed: node-1 (ImagePullBackOff), node-2 (ImagePullBackOff), node-3 (ImagePullBackOff) and 2 more"
        );
    }

    fn gated(annotations: &[(&str, &str)]) -> DaemonSet {
        let mut d = ds("x");
        d.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        );
        d
    }

    fn revision(hash: &str, number: i64) -> ControllerRevision {
        let d = ds("x");
        new_revision(&d, &revision_patch(&d).unwrap(), hash, number).unwrap()
    }

    fn failing(n: usize) -> Count {
        Count {
            failed: (1..=n)
                .map(|i| FailedNode {
                    node: format!("node-{i}"),
                    failure: PodFailure::CrashLoopBackOff,
                })
                .collect(),
            next_deadline: None,
        }
    }

    #[test]
    fn the_gate_trips_at_the_threshold_and_stays_tripped() {
        let old = [revision("a", 1), revision("b", 2)];
        let d = gated(&[(MAX_FAILED_NODES_ANNOTATION, "2")]);
        assert_eq!(decide(&d, "new", 5, &failing(1), &old), Decision::Go);
        let Decision::Trip { message } = decide(&d, "new", 5, &failing(2), &old) else {
            panic!("trips at 2");
        };
        assert_eq!(
            message,
            "DaemonSet \"x\" stopped by its health gate at revision new (pernode.io/max-failed-nodes: 2): 2 nodes failed: node-1 (CrashLoopBackOff), node-2 (CrashLoopBackOff); kubectl pernode resume to go on"
        );
        // Sticky: recovered pods do not resume it; another revision is not stopped.
        let tripped = gated(&[
            (MAX_FAILED_NODES_ANNOTATION, "2"),
            (HEALTH_GATE_TRIPPED_ANNOTATION, "new"),
        ]);
        assert_eq!(
            decide(&tripped, "new", 5, &failing(0), &old),
            Decision::Stopped
        );
        assert_eq!(
            decide(&tripped, "newer", 5, &failing(0), &old),
            Decision::Go
        );
        // No gate, no decision.
        assert_eq!(decide(&ds("x"), "new", 5, &failing(5), &old), Decision::Go);
        // Kept message while it names the revision.
        let said = stopped_message(&tripped, "new", 5, &failing(0), Some(&message));
        assert_eq!(said, message);
        let fresh = stopped_message(&tripped, "new", 5, &failing(1), Some("other"));
        assert!(fresh.contains("1 node failed: node-1"), "{fresh}");
    }

    #[test]
    fn auto_rollback_goes_to_the_latest_older_revision() {
        let old = [revision("a", 1), revision("b", 3), revision("c", 2)];
        let d = gated(&[
            (MAX_FAILED_NODES_ANNOTATION, "1"),
            ("pernode.io/auto-rollback", "true"),
        ]);
        let Decision::RollBack { to, message } = decide(&d, "new", 5, &failing(1), &old) else {
            panic!("rolls back");
        };
        assert_eq!(revision_hash(to), Some("b"));
        assert!(
            message.starts_with("Rolled back to revision 3: revision new failed the health gate"),
            "{message}"
        );
        let patch = trip_patch("new", Some(to));
        assert_eq!(
            patch["metadata"]["annotations"][HEALTH_GATE_TRIPPED_ANNOTATION],
            "new"
        );
        assert_eq!(patch["spec"]["template"]["$patch"], "replace");
        assert_eq!(
            trip_patch("new", None),
            serde_json::json!({"metadata": {"annotations": {HEALTH_GATE_TRIPPED_ANNOTATION: "new"}}})
        );
        // Nothing to go back to: stop instead, and say so.
        let Decision::Trip { message } = decide(&d, "new", 5, &failing(1), &[]) else {
            panic!("stops");
        };
        assert!(
            message.ends_with("(no previous revision to roll back to)"),
            "{message}"
        );
    }
}
