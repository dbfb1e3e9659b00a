//! One sync of one DaemonSet (R27-R40, R108-R113): claim pods and revisions, build history,
//! plan per-node creates and deletes, roll, clean history, write status.
//!
//! The first half of this file is pure planning over k8s-openapi types (unit tested rule by
//! rule); [`sync_daemonset`] at the end executes a plan through the API.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use pernode_core::pod::{is_pod_available, is_pod_ready, is_pod_terminal, is_pod_terminating};

use super::backoff::{Backoff, failed_pods_backoff_key};
use super::placement::Placement;
use super::pods::{pod_hash, pod_order, target_node_name};
use super::status::NodeToPods;
use super::update::allows_surge;

/// Event type Normal.
pub const NORMAL: &str = "Normal";
/// Event type Warning.
pub const WARNING: &str = "Warning";

/// An event the sync wants recorded on the DaemonSet (R52).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    /// The reason, e.g. `FailedDaemonPod`.
    pub reason: &'static str,
    /// The message.
    pub message: String,
}

/// What the per-node pass (R33-R40) decided.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ManagePlan {
    /// Nodes that need a new daemon pod, in node-list order.
    pub nodes_to_create: Vec<String>,
    /// Names of pods to delete.
    pub pods_to_delete: Vec<String>,
    /// Events to record.
    pub events: Vec<PlannedEvent>,
    /// Sync again after this delay (a failed pod still in backoff, R119).
    pub requeue_after: Option<Duration>,
}

/// What claiming decides for one object (R108, R109, R111).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Controlled by us and matching: ours.
    Owned,
    /// An orphan that matches: adopt it (after the uncached recheck).
    Adopt,
    /// Controlled by us but no longer matching: release it.
    Release,
    /// Someone else's, or not ours to take.
    Ignore,
}

/// The controller ownerReference of an object, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// Upstream `ClaimObject` for one object.
pub fn claim(ds: &DaemonSet, obj: &ObjectMeta, selector_matches: bool) -> Claim {
    let ds_uid = ds.metadata.uid.as_deref().unwrap_or("");
    let ds_deleting = ds.metadata.deletion_timestamp.is_some();
    if let Some(owner) = controller_of(obj) {
        if owner.uid != ds_uid {
            return Claim::Ignore;
        }
        if selector_matches {
            return Claim::Owned;
        }
        return if ds_deleting {
            Claim::Ignore
        } else {
            Claim::Release
        };
    }
    if ds_deleting || !selector_matches || obj.deletion_timestamp.is_some() {
        return Claim::Ignore;
    }
    if obj.namespace != ds.metadata.namespace {
        return Claim::Ignore;
    }
    Claim::Adopt
}

/// Groups claimed pods by target node (§0 mapped pods). Pods both terminal and terminating
/// are left out unless `include_deleted_terminal` (history cleanup counts them, R93).
pub fn nodes_to_daemon_pods<'a>(
    claimed: impl IntoIterator<Item = &'a Pod>,
    include_deleted_terminal: bool,
) -> NodeToPods<'a> {
    let mut out = NodeToPods::new();
    for pod in claimed {
        if !include_deleted_terminal && is_pod_terminal(pod) && is_pod_terminating(pod) {
            continue;
        }
        if let Some(node) = target_node_name(pod) {
            out.entry(node.to_owned()).or_default().push(pod);
        }
    }
    out
}

fn name(pod: &Pod) -> String {
    pod.metadata.name.clone().unwrap_or_default()
}

/// R33-R38 for one node.
#[allow(clippy::too_many_arguments)]
fn plan_node(
    ds: &DaemonSet,
    node: &str,
    placement: Placement,
    pods: Option<&Vec<&Pod>>,
    hash: &str,
    surge: bool,
    backoff: &Backoff,
    now: Instant,
    now_ts: Timestamp,
    plan: &mut ManagePlan,
) {
    let ns = ds.metadata.namespace.as_deref().unwrap_or("");
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    match pods {
        // R33.
        None if placement.should_run => plan.nodes_to_create.push(node.to_owned()),
        Some(pods) if placement.should_continue_running => {
            let mut running: Vec<&Pod> = Vec::new();
            for pod in pods.iter().copied() {
                if is_pod_terminating(pod) {
                    continue;
                }
                match super::pods::phase(pod) {
                    "Failed" => {
                        // R119: do not fight a kubelet that keeps failing the pod.
                        let key = failed_pods_backoff_key(
                            ds.metadata.uid.as_deref().unwrap_or(""),
                            ds.status
                                .as_ref()
                                .and_then(|s| s.observed_generation)
                                .unwrap_or(0),
                            node,
                        );
                        if backoff.in_backoff_since_update(&key, now) {
                            let delay = backoff.get(&key);
                            plan.requeue_after =
                                Some(plan.requeue_after.map_or(delay, |d| d.min(delay)));
                            continue;
                        }
                        backoff.next(&key, now);
                        plan.events.push(PlannedEvent {
                            type_: WARNING,
                            reason: "FailedDaemonPod",
                            message: format!(
                                "Found failed daemon pod {ns}/{} on node {node}, will try to kill it",
                                name(pod)
                            ),
                        });
                        plan.pods_to_delete.push(name(pod));
                    }
                    "Succeeded" => {
                        plan.events.push(PlannedEvent {
                            type_: NORMAL,
                            reason: "SucceededDaemonPod",
                            message: format!(
                                "Found succeeded daemon pod {ns}/{} on node {node}, will try to delete it",
                                name(pod)
                            ),
                        });
                        plan.pods_to_delete.push(name(pod));
                    }
                    _ => running.push(pod),
                }
            }
            running.sort_by(|a, b| pod_order(a, b));
            if !surge {
                // R35: keep the first in pod order; an empty set waits for a later sync.
                plan.pods_to_delete
                    .extend(running.iter().skip(1).map(|p| name(p)));
                return;
            }
            // R36.
            if running.len() <= 1 {
                if running.is_empty() && placement.should_run {
                    plan.nodes_to_create.push(node.to_owned());
                }
                return;
            }
            let (mut oldest_new, mut oldest_old): (Option<&Pod>, Option<&Pod>) = (None, None);
            for pod in running {
                let slot = if pod_hash(pod) == Some(hash) {
                    &mut oldest_new
                } else {
                    &mut oldest_old
                };
                if slot.is_none() {
                    *slot = Some(pod);
                } else {
                    plan.pods_to_delete.push(name(pod));
                }
            }
            if let (Some(new), Some(old)) = (oldest_new, oldest_old)
                && (!is_pod_ready(old) || is_pod_available(new, min_ready, now_ts))
            {
                plan.pods_to_delete.push(name(old));
            }
        }
        // R37.
        Some(pods) if !placement.should_continue_running => {
            plan.pods_to_delete.extend(
                pods.iter()
                    .filter(|p| !is_pod_terminating(p))
                    .map(|p| name(p)),
            );
        }
        // R38 and no-pod nodes that should not run.
        _ => {}
    }
}

/// The per-node pass (upstream `manage`, R33-R40): nodes needing a pod and pods to delete.
pub fn plan_manage(
    ds: &DaemonSet,
    nodes: &[(String, Placement)],
    node_pods: &NodeToPods<'_>,
    hash: &str,
    backoff: &Backoff,
    now: Instant,
    now_ts: Timestamp,
) -> ManagePlan {
    let surge = allows_surge(ds);
    let mut plan = ManagePlan::default();
    let mut listed = BTreeSet::new();
    for (node, placement) in nodes {
        listed.insert(node.as_str());
        plan_node(
            ds,
            node,
            *placement,
            node_pods.get(node),
            hash,
            surge,
            backoff,
            now,
            now_ts,
            &mut plan,
        );
    }
    // R39: unbound pods pinned to a node that does not exist are never scheduled: delete.
    for (node, pods) in node_pods {
        if listed.contains(node.as_str()) {
            continue;
        }
        plan.pods_to_delete.extend(
            pods.iter()
                .filter(|p| {
                    p.spec
                        .as_ref()
                        .and_then(|s| s.node_name.as_deref())
                        .is_none_or(str::is_empty)
                })
                .map(|p| name(p)),
        );
    }
    plan
}

/// Hash labels of live pods (R93: revisions in use are never cleaned up).
pub fn live_hashes<'a>(pods: impl IntoIterator<Item = &'a Pod>) -> BTreeSet<String> {
    pods.into_iter()
        .filter_map(|p| pod_hash(p))
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Pods per node, for logs: `node -> names`.
pub fn describe(node_pods: &NodeToPods<'_>) -> BTreeMap<String, Vec<String>> {
    node_pods
        .iter()
        .map(|(n, pods)| (n.clone(), pods.iter().map(|p| name(p)).collect()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemonset::testutil::{ds, pod_on};
    use k8s_openapi::api::apps::v1::{DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    const RUN: Placement = Placement::BOTH;
    const STAY: Placement = Placement {
        should_run: false,
        should_continue_running: true,
    };

    fn now_ts() -> Timestamp {
        Timestamp::from_second(10_000).unwrap()
    }

    fn plan(d: &DaemonSet, nodes: &[(&str, Placement)], pods: &[Pod]) -> ManagePlan {
        plan_with(d, nodes, pods, &Backoff::default(), Instant::now())
    }

    fn plan_with(
        d: &DaemonSet,
        nodes: &[(&str, Placement)],
        pods: &[Pod],
        backoff: &Backoff,
        now: Instant,
    ) -> ManagePlan {
        let nodes: Vec<(String, Placement)> =
            nodes.iter().map(|(n, p)| (n.to_string(), *p)).collect();
        let np = nodes_to_daemon_pods(pods.iter(), false);
        plan_manage(d, &nodes, &np, "new", backoff, now, now_ts())
    }

    fn surge(d: &mut DaemonSet) {
        d.spec.as_mut().unwrap().update_strategy = Some(DaemonSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDaemonSet {
                max_surge: Some(IntOrString::Int(1)),
                max_unavailable: Some(IntOrString::Int(0)),
            }),
        });
    }

    #[test]
    fn r33_create_on_should_run_node_without_pods() {
        let p = plan(
            &ds("x"),
            &[("n1", RUN), ("n2", RUN), ("n3", Placement::NONE)],
            &[pod_on("a", "n2", "new", 1).build()],
        );
        assert_eq!(p.nodes_to_create, vec!["n1"]);
        assert!(p.pods_to_delete.is_empty());
    }

    #[test]
    fn r34_failed_and_succeeded_pods_deleted_with_events() {
        let p = plan(
            &ds("x"),
            &[("n1", RUN), ("n2", RUN)],
            &[
                pod_on("f", "n1", "new", 1).phase("Failed").build(),
                pod_on("s", "n2", "new", 1).phase("Succeeded").build(),
            ],
        );
        assert_eq!(p.pods_to_delete, vec!["f", "s"]);
        assert!(
            p.nodes_to_create.is_empty(),
            "replacements come on a later sync (R120)"
        );
        assert_eq!(p.events[0].reason, "FailedDaemonPod");
        assert_eq!(p.events[0].type_, WARNING);
        assert_eq!(
            p.events[0].message,
            "Found failed daemon pod default/f on node n1, will try to kill it"
        );
        assert_eq!(p.events[1].reason, "SucceededDaemonPod");
        assert_eq!(p.events[1].type_, NORMAL);
    }

    #[test]
    fn r119_failed_pod_in_backoff_is_left_and_requeued() {
        let b = Backoff::default();
        let t0 = Instant::now();
        let pods = [pod_on("f", "n1", "new", 1).phase("Failed").build()];
        let p = plan_with(&ds("x"), &[("n1", RUN)], &pods, &b, t0);
        assert_eq!(p.pods_to_delete, vec!["f"]);
        let p = plan_with(
            &ds("x"),
            &[("n1", RUN)],
            &pods,
            &b,
            t0 + Duration::from_millis(10),
        );
        assert!(p.pods_to_delete.is_empty());
        assert_eq!(p.requeue_after, Some(Duration::from_secs(1)));
        // R120: succeeded pods get no backoff.
        let pods = [pod_on("s", "n1", "new", 1).phase("Succeeded").build()];
        for _ in 0..3 {
            assert_eq!(
                plan_with(&ds("x"), &[("n1", RUN)], &pods, &b, t0).pods_to_delete,
                vec!["s"]
            );
        }
    }

    #[test]
    fn r35_extra_pods_pruned_to_oldest() {
        let p = plan(
            &ds("x"),
            &[("n1", RUN)],
            &[
                pod_on("young", "n1", "new", 1).created(5).build(),
                pod_on("old", "n1", "new", 1).created(1).build(),
                pod_on("unbound", "n1", "new", 1)
                    .created(0)
                    .unbound()
                    .build(),
            ],
        );
        let mut del = p.pods_to_delete;
        del.sort();
        assert_eq!(del, vec!["unbound", "young"]);
    }

    #[test]
    fn r35_no_replacement_while_pod_terminating() {
        let p = plan(
            &ds("x"),
            &[("n1", RUN)],
            &[pod_on("t", "n1", "old", 1).terminating().build()],
        );
        assert_eq!(p, ManagePlan::default());
    }

    #[test]
    fn r36_surge_creates_while_old_terminating() {
        let mut d = ds("x");
        surge(&mut d);
        let p = plan(
            &d,
            &[("n1", RUN)],
            &[pod_on("t", "n1", "old", 1).terminating().build()],
        );
        assert_eq!(p.nodes_to_create, vec!["n1"]);
    }

    #[test]
    fn r36_surge_keeps_oldest_new_and_old_and_prunes_rest() {
        let mut d = ds("x");
        surge(&mut d);
        let pods = [
            pod_on("old1", "n1", "old", 1).created(1).ready(0).build(),
            pod_on("old2", "n1", "old", 1).created(2).ready(0).build(),
            pod_on("new1", "n1", "new", 2).created(3).build(),
            pod_on("new2", "n1", "new", 2).created(4).build(),
        ];
        let p = plan(&d, &[("n1", RUN)], &pods);
        assert_eq!(
            p.pods_to_delete,
            vec!["old2", "new2"],
            "old ready, new not available: keep both"
        );
        let pods = [
            pod_on("old1", "n1", "old", 1).created(1).build(),
            pod_on("new1", "n1", "new", 2).created(3).build(),
        ];
        assert_eq!(
            plan(&d, &[("n1", RUN)], &pods).pods_to_delete,
            vec!["old1"],
            "old not ready"
        );
        let pods = [
            pod_on("old1", "n1", "old", 1).created(1).ready(0).build(),
            pod_on("new1", "n1", "new", 2).created(3).ready(5).build(),
        ];
        assert_eq!(
            plan(&d, &[("n1", RUN)], &pods).pods_to_delete,
            vec!["old1"],
            "new available"
        );
    }

    #[test]
    fn r37_pods_on_ineligible_node_deleted() {
        let p = plan(
            &ds("x"),
            &[("n1", Placement::NONE)],
            &[
                pod_on("a", "n1", "new", 1).build(),
                pod_on("t", "n1", "new", 1).terminating().build(),
            ],
        );
        assert_eq!(p.pods_to_delete, vec!["a"]);
    }

    #[test]
    fn r38_should_continue_without_pods_does_nothing() {
        let p = plan(&ds("x"), &[("n1", STAY)], &[]);
        assert_eq!(p, ManagePlan::default());
        // R6: the running pod under a new NoSchedule taint stays.
        let p = plan(
            &ds("x"),
            &[("n1", STAY)],
            &[pod_on("a", "n1", "new", 1).build()],
        );
        assert_eq!(p, ManagePlan::default());
    }

    #[test]
    fn r39_unbound_pods_of_missing_nodes_deleted_bound_ones_left() {
        let p = plan(
            &ds("x"),
            &[],
            &[
                pod_on("unbound", "gone", "new", 1).unbound().build(),
                pod_on("bound", "gone", "new", 1).build(),
            ],
        );
        assert_eq!(p.pods_to_delete, vec!["unbound"]);
    }

    #[test]
    fn r40_terminal_terminating_pod_does_not_block_node() {
        let p = plan(
            &ds("x"),
            &[("n1", RUN)],
            &[pod_on("f", "n1", "new", 1)
                .phase("Failed")
                .terminating()
                .build()],
        );
        assert_eq!(p.nodes_to_create, vec!["n1"]);
        // But history cleanup still sees it (R93).
        let pods = [pod_on("f", "n1", "h", 1)
            .phase("Failed")
            .terminating()
            .build()];
        assert_eq!(nodes_to_daemon_pods(pods.iter(), true).len(), 1);
    }

    #[test]
    fn r108_claim_owned_foreign_and_release() {
        let d = ds("x");
        let other = ds("y");
        let mine = pod_on("a", "n1", "h", 1).owned_by(&d).build();
        assert_eq!(claim(&d, &mine.metadata, true), Claim::Owned);
        assert_eq!(claim(&d, &mine.metadata, false), Claim::Release);
        let theirs = pod_on("b", "n1", "h", 1).owned_by(&other).build();
        assert_eq!(claim(&d, &theirs.metadata, true), Claim::Ignore);
        // Being deleted: no release.
        let mut deleting = d.clone();
        deleting.metadata.deletion_timestamp = mine.metadata.creation_timestamp.clone();
        assert_eq!(claim(&deleting, &mine.metadata, false), Claim::Ignore);
        assert_eq!(claim(&deleting, &mine.metadata, true), Claim::Owned);
    }

    #[test]
    fn r109_orphans_adopted_unless_terminating_or_other_namespace() {
        let d = ds("x");
        let orphan = pod_on("a", "n1", "h", 1).build();
        assert_eq!(claim(&d, &orphan.metadata, true), Claim::Adopt);
        assert_eq!(claim(&d, &orphan.metadata, false), Claim::Ignore);
        let dying = pod_on("a", "n1", "h", 1).terminating().build();
        assert_eq!(claim(&d, &dying.metadata, true), Claim::Ignore);
        let mut elsewhere = orphan.clone();
        elsewhere.metadata.namespace = Some("other".into());
        assert_eq!(claim(&d, &elsewhere.metadata, true), Claim::Ignore);
    }

    #[test]
    fn r114_only_controller_ref_owner_acts() {
        let d = ds("x");
        let other = ds("y");
        let pod = pod_on("a", "n1", "h", 1).owned_by(&d).build();
        assert_eq!(claim(&other, &pod.metadata, true), Claim::Ignore);
    }

    #[test]
    fn r110_adopted_pods_pruned_like_any() {
        // Claimed (adopted) pods enter the same per-node pass: extras pruned.
        let p = plan(
            &ds("x"),
            &[("n1", RUN)],
            &[
                pod_on("mine", "n1", "new", 1).created(1).build(),
                pod_on("adopted", "n1", "old", 0).created(2).build(),
            ],
        );
        assert_eq!(p.pods_to_delete, vec!["adopted"]);
    }
}
