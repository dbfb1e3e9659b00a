//! Rolling update (R59-R74) and the strategy arithmetic shared with the per-node sync (R35,
//! R36, R62, R63): as upstream's `pkg/controller/daemon/update.go`.
//!
//! The rolling update only decides a bounded set of old pods to delete (unavailable mode) or
//! nodes to create a new pod on (surge mode); everything else (pruning, creating on empty
//! nodes) is done by the per-node pass of [`super::sync`].

use foldhash::HashMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;

use super::Error;
use super::placement::Placement;
use super::pods::is_pod_updated;
use super::status::NodeToPods;
use crate::trim::PodRecord;

/// Whether the DaemonSet uses the RollingUpdate strategy (the default when unset, R131).
pub fn is_rolling_update(ds: &DaemonSet) -> bool {
    strategy_type(ds) == "RollingUpdate"
}

/// The strategy type, `RollingUpdate` when unset.
pub fn strategy_type(ds: &DaemonSet) -> &str {
    ds.spec
        .as_ref()
        .and_then(|s| s.update_strategy.as_ref())
        .and_then(|u| u.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

/// Upstream `GetScaledValueFromIntOrPercent` with rounding up (R62).
pub fn scaled_value(v: &IntOrString, total: i32) -> Result<i32, Error> {
    match v {
        IntOrString::Int(i) => Ok(*i),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| Error::InvalidIntOrPercent(s.clone()))?;
            let scaled = (pct * i64::from(total) + 99).div_euclid(100);
            Ok(i32::try_from(scaled).unwrap_or(i32::MAX))
        }
    }
}

fn rolling(ds: &DaemonSet) -> Option<&k8s_openapi::api::apps::v1::RollingUpdateDaemonSet> {
    if !is_rolling_update(ds) {
        return None;
    }
    ds.spec
        .as_ref()?
        .update_strategy
        .as_ref()?
        .rolling_update
        .as_ref()
}

/// Resolved maxSurge against `desired` (0 unless RollingUpdate with a maxSurge).
pub fn surge_count(ds: &DaemonSet, desired: i32) -> Result<i32, Error> {
    match rolling(ds).and_then(|r| r.max_surge.as_ref()) {
        Some(v) => scaled_value(v, desired),
        None => Ok(0),
    }
}

/// Resolved maxUnavailable against `desired` (0 unless RollingUpdate with a maxUnavailable).
pub fn unavailable_count(ds: &DaemonSet, desired: i32) -> Result<i32, Error> {
    match rolling(ds).and_then(|r| r.max_unavailable.as_ref()) {
        Some(v) => scaled_value(v, desired),
        None => Ok(0),
    }
}

/// R35/R36/R63: the DaemonSet surges when maxSurge resolved against one node is non-zero.
pub fn allows_surge(ds: &DaemonSet) -> bool {
    surge_count(ds, 1).is_ok_and(|s| s != 0)
}

/// R62: (maxSurge, maxUnavailable) against `desired`; both 0 with desired > 0 means
/// maxUnavailable 1.
pub fn resolve_counts(ds: &DaemonSet, desired: i32) -> Result<(i32, i32), Error> {
    let mut max_unavailable = unavailable_count(ds, desired)?;
    let max_surge = surge_count(ds, desired)?;
    if desired > 0 && max_unavailable == 0 && max_surge == 0 {
        max_unavailable = 1;
    }
    Ok((max_surge, max_unavailable))
}

/// What one rolling-update pass asks for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RollingPlan {
    /// Names of old pods to delete.
    pub pods_to_delete: Vec<String>,
    /// Nodes to create a new pod on (surge mode only).
    pub nodes_to_create: Vec<String>,
}

/// R61: the one new and one old non-terminating pod of a node, or `None` ("in flux") when
/// there are two of either.
fn updated_pods_on_node<'a>(
    pods: &[&'a PodRecord],
    hash: &str,
    generation: Option<i64>,
) -> Option<(Option<&'a PodRecord>, Option<&'a PodRecord>)> {
    let (mut new, mut old) = (None, None);
    for pod in pods.iter().copied() {
        if pod.deleting {
            continue;
        }
        let slot = if is_pod_updated(pod, hash, generation) {
            &mut new
        } else {
            &mut old
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(pod);
    }
    Some((new, old))
}

fn name(pod: &PodRecord) -> String {
    pod.name.to_string()
}

/// R61: every node with mapped pods plus every shouldRun node (with no pods), in node order.
/// Borrowed, not cloned: this runs on every sync over every node.
fn with_should_run_nodes<'a, 'p>(
    node_pods: &'p NodeToPods<'a>,
    nodes: &'a [(String, Placement)],
) -> Vec<(&'a str, &'p [&'a PodRecord])> {
    let mut view: Vec<(&str, &[&PodRecord])> = node_pods.iter().collect();
    let mut lookup = node_pods.lookup();
    for (n, p) in nodes {
        if p.should_run && lookup.get(n).is_none() {
            view.push((n.as_str(), &[]));
        }
    }
    view.sort_unstable_by(|a, b| a.0.cmp(b.0));
    view
}

/// One rolling-update pass (R59-R73). `nodes` is the node list with placements; `node_pods`
/// the mapped pods (including nodes outside the list, R73).
pub fn plan_rolling_update(
    ds: &DaemonSet,
    nodes: &[(String, Placement)],
    node_pods: &NodeToPods<'_>,
    hash: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Result<RollingPlan, Error> {
    plan_rolling_update_held(ds, nodes, node_pods, hash, generation, now, None)
}

/// [`plan_rolling_update`] under a partition (`super::rollout`): the old pods of desired
/// nodes up to `held` (in name order) are neither replaced nor surged next to; an unavailable
/// one still counts against maxUnavailable.
pub fn plan_rolling_update_held(
    ds: &DaemonSet,
    nodes: &[(String, Placement)],
    node_pods: &NodeToPods<'_>,
    hash: &str,
    generation: Option<i64>,
    now: Timestamp,
    held: Option<&str>,
) -> Result<RollingPlan, Error> {
    use super::rollout::is_held;
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let available = |p: &PodRecord| p.is_available(min_ready, now);

    let desired =
        i32::try_from(nodes.iter().filter(|(_, p)| p.should_run).count()).unwrap_or(i32::MAX);
    let view = with_should_run_nodes(node_pods, nodes);
    let (max_surge, max_unavailable) = resolve_counts(ds, desired)?;
    let mut plan = RollingPlan::default();

    if max_surge == 0 {
        // Unavailable mode (R64-R67, R73).
        let mut num_unavailable = 0;
        let mut candidates = Vec::new();
        for (node, pods) in &view {
            let Some((new, old)) = updated_pods_on_node(pods, hash, generation) else {
                num_unavailable += 1;
                continue;
            };
            match (new, old) {
                (None, None) | (Some(_), Some(_)) => num_unavailable += 1,
                (Some(new), None) => {
                    if !available(new) {
                        num_unavailable += 1;
                    }
                }
                // A partition keeps the old pod, available or not; an unavailable one is
                // unavailable all the same.
                (None, Some(old)) if is_held(node, held) => {
                    if !available(old) {
                        num_unavailable += 1;
                    }
                }
                (None, Some(old)) => {
                    if !available(old) {
                        // R65: an unavailable old pod is always replaced.
                        plan.pods_to_delete.push(name(old));
                    } else if num_unavailable < max_unavailable {
                        candidates.push(name(old));
                    }
                }
            }
        }
        let remaining = (max_unavailable - num_unavailable).max(0) as usize;
        plan.pods_to_delete
            .extend(candidates.into_iter().take(remaining));
        return Ok(plan);
    }

    // Surge mode (R68-R71).
    let placement: HashMap<&str, Placement> = nodes.iter().map(|(n, p)| (n.as_str(), *p)).collect();
    let mut should_not_run_to_delete = Vec::new();
    let mut candidates = Vec::new();
    let mut num_surge = 0;
    let mut num_available = 0;
    for (node, pods) in &view {
        let Some((new, old)) = updated_pods_on_node(pods, hash, generation) else {
            num_surge += 1;
            continue;
        };
        match (old, new) {
            (Some(o), _) if available(o) => num_available += 1,
            (None, Some(n)) if available(n) => num_available += 1,
            _ => {}
        }
        let should_run = placement.get(node).is_some_and(|p| p.should_run);
        match (new, old) {
            (_, None) => {}
            (None, Some(_)) if should_run && is_held(node, held) => {}
            (None, Some(old)) => {
                if !available(old) {
                    if should_run {
                        plan.nodes_to_create.push((*node).to_owned());
                    } else {
                        plan.pods_to_delete.push(name(old));
                    }
                } else if !should_run {
                    should_not_run_to_delete.push(name(old));
                } else if num_surge < max_surge {
                    candidates.push((*node).to_owned());
                }
            }
            (Some(new), Some(old)) => {
                if available(new) {
                    plan.pods_to_delete.push(name(old));
                } else {
                    num_surge += 1;
                }
            }
        }
    }
    // R70: sunset pods only as far as availability allows.
    let deletable = (num_available - desired).max(0) as usize;
    plan.pods_to_delete
        .extend(should_not_run_to_delete.into_iter().take(deletable));
    let remaining = (max_surge - num_surge).max(0) as usize;
    plan.nodes_to_create
        .extend(candidates.into_iter().take(remaining));
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemonset::testutil::{ds, pod_on};
    use k8s_openapi::api::apps::v1::{DaemonSetUpdateStrategy, RollingUpdateDaemonSet};

    const RUN: Placement = Placement::BOTH;

    fn strategy(d: &mut DaemonSet, surge: Option<IntOrString>, unavail: Option<IntOrString>) {
        d.spec.as_mut().unwrap().update_strategy = Some(DaemonSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDaemonSet {
                max_surge: surge,
                max_unavailable: unavail,
            }),
        });
    }

    fn now() -> Timestamp {
        Timestamp::from_second(10_000).unwrap()
    }

    fn nodes(n: usize) -> Vec<(String, Placement)> {
        (1..=n).map(|i| (format!("n{i}"), RUN)).collect()
    }

    fn map<'a>(pods: &'a [PodRecord]) -> NodeToPods<'a> {
        NodeToPods::from_pairs(
            pods.iter()
                .map(|p| (crate::daemonset::pods::target_node_name(p).unwrap(), p))
                .collect(),
        )
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    #[test]
    fn r62_percentages_round_up_and_zero_zero_means_one() {
        let pct = |p: &str, n| scaled_value(&IntOrString::String(p.into()), n).unwrap();
        assert_eq!(pct("20%", 3), 1);
        assert_eq!(pct("10%", 10), 1);
        assert_eq!(pct("10%", 11), 2);
        assert_eq!(pct("50%", 3), 2);
        assert!(scaled_value(&IntOrString::String("x".into()), 3).is_err());
        let mut d = ds("x");
        strategy(&mut d, Some(IntOrString::Int(0)), Some(IntOrString::Int(0)));
        assert_eq!(resolve_counts(&d, 3).unwrap(), (0, 1));
        assert_eq!(resolve_counts(&d, 0).unwrap(), (0, 0));
    }

    #[test]
    fn r63_surge_mode_iff_max_surge_non_zero() {
        let mut d = ds("x");
        strategy(&mut d, Some(IntOrString::Int(1)), Some(IntOrString::Int(0)));
        assert!(allows_surge(&d));
        strategy(
            &mut d,
            Some(IntOrString::String("10%".into())),
            Some(IntOrString::Int(0)),
        );
        assert!(allows_surge(&d), "10% of one node rounds up to 1");
        strategy(&mut d, Some(IntOrString::Int(0)), Some(IntOrString::Int(1)));
        assert!(!allows_surge(&d));
        d.spec.as_mut().unwrap().update_strategy = Some(DaemonSetUpdateStrategy {
            type_: Some("OnDelete".into()),
            rolling_update: Some(RollingUpdateDaemonSet {
                max_surge: Some(IntOrString::Int(1)),
                max_unavailable: None,
            }),
        });
        assert!(!allows_surge(&d));
    }

    #[test]
    fn r64_r66_unavailable_mode_deletes_within_budget() {
        let mut d = ds("x");
        strategy(&mut d, None, Some(IntOrString::Int(1)));
        let pods = [
            pod_on("a", "n1", "old", 1).ready(0).build(),
            pod_on("b", "n2", "old", 1).ready(0).build(),
            pod_on("c", "n3", "old", 1).ready(0).build(),
        ];
        let plan = plan_rolling_update(&d, &nodes(3), &map(&pods), "new", Some(2), now()).unwrap();
        assert_eq!(plan.pods_to_delete.len(), 1);
        assert!(plan.nodes_to_create.is_empty());
    }

    #[test]
    fn r65_unavailable_old_pods_always_deleted() {
        let mut d = ds("x");
        strategy(&mut d, None, Some(IntOrString::Int(1)));
        let pods = [
            pod_on("a", "n1", "old", 1).build(),
            pod_on("b", "n2", "old", 1).build(),
            pod_on("c", "n3", "new", 2).build(),
        ];
        let plan = plan_rolling_update(&d, &nodes(3), &map(&pods), "new", Some(2), now()).unwrap();
        assert_eq!(sorted(plan.pods_to_delete), vec!["a", "b"]);
    }

    #[test]
    fn r67_budget_used_by_unavailable_new_pods_stops_rollout() {
        let mut d = ds("x");
        strategy(&mut d, None, Some(IntOrString::Int(1)));
        let pods = [
            pod_on("a", "n1", "new", 2).build(),
            pod_on("b", "n2", "old", 1).ready(0).build(),
        ];
        let plan = plan_rolling_update(&d, &nodes(2), &map(&pods), "new", Some(2), now()).unwrap();
        assert!(plan.pods_to_delete.is_empty());
        // An empty desired node counts as unavailable too.
        let pods = [pod_on("b", "n2", "old", 1).ready(0).build()];
        let plan = plan_rolling_update(&d, &nodes(2), &map(&pods), "new", Some(2), now()).unwrap();
        assert!(plan.pods_to_delete.is_empty());
    }

    #[test]
    fn r61_in_flux_nodes_skipped_and_terminating_ignored() {
        let mut d = ds("x");
        strategy(&mut d, None, Some(IntOrString::Int(2)));
        let pods = [
            pod_on("a", "n1", "old", 1).ready(0).build(),
            pod_on("a2", "n1", "old", 1).ready(0).build(),
            pod_on("b", "n2", "old", 1).ready(0).build(),
            pod_on("t", "n2", "old", 1).terminating().build(),
        ];
        let plan = plan_rolling_update(&d, &nodes(2), &map(&pods), "new", Some(2), now()).unwrap();
        assert_eq!(plan.pods_to_delete, vec!["b"]);
    }

    #[test]
    fn r60_template_generation_makes_pod_updated() {
        let mut d = ds("x");
        strategy(&mut d, None, Some(IntOrString::Int(1)));
        let pods = [pod_on("a", "n1", "other", 3).ready(0).build()];
        let plan = plan_rolling_update(&d, &nodes(1), &map(&pods), "new", Some(3), now()).unwrap();
        assert!(plan.pods_to_delete.is_empty());
    }

    #[test]
    fn r68_r69_surge_creates_within_max_surge_and_for_unavailable_old() {
        let mut d = ds("x");
        strategy(&mut d, Some(IntOrString::Int(1)), Some(IntOrString::Int(0)));
        let pods = [
            pod_on("a", "n1", "old", 1).ready(0).build(),
            pod_on("b", "n2", "old", 1).ready(0).build(),
            pod_on("c", "n3", "old", 1).build(),
        ];
        let plan = plan_rolling_update(&d, &nodes(3), &map(&pods), "new", Some(2), now()).unwrap();
        assert_eq!(sorted(plan.nodes_to_create), vec!["n1", "n3"]);
        assert!(plan.pods_to_delete.is_empty());
    }

    #[test]
    fn r71_surge_deletes_old_only_when_new_available() {
        let mut d = ds("x");
        strategy(&mut d, Some(IntOrString::Int(1)), Some(IntOrString::Int(0)));
        d.spec.as_mut().unwrap().min_ready_seconds = Some(30);
        let pods = [
            pod_on("o1", "n1", "old", 1).ready(0).build(),
            pod_on("n1", "n1", "new", 2).ready(9_990).build(),
            pod_on("o2", "n2", "old", 1).ready(0).build(),
            pod_on("n2", "n2", "new", 2).ready(100).build(),
        ];
        let plan = plan_rolling_update(&d, &nodes(2), &map(&pods), "new", Some(2), now()).unwrap();
        assert_eq!(plan.pods_to_delete, vec!["o2"]);
        // n1 is surging (new not yet available): no further surge candidate.
        assert!(plan.nodes_to_create.is_empty());
    }

    #[test]
    fn r70_sunset_pods_deleted_only_as_availability_allows() {
        let mut d = ds("x");
        strategy(&mut d, Some(IntOrString::Int(1)), Some(IntOrString::Int(0)));
        let pods = [
            pod_on("o1", "n1", "old", 1).ready(0).build(),
            pod_on("o2", "n2", "old", 1).ready(0).build(),
        ];
        let no = Placement {
            should_run: false,
            should_continue_running: true,
        };
        let list = vec![
            ("n1".to_owned(), no),
            ("n2".to_owned(), RUN),
            ("n3".to_owned(), RUN),
        ];
        // desired 2, available 2: nothing deletable yet.
        let plan = plan_rolling_update(&d, &list, &map(&pods), "new", Some(2), now()).unwrap();
        assert!(plan.pods_to_delete.is_empty());
        let list = vec![("n1".to_owned(), no), ("n2".to_owned(), RUN)];
        let plan = plan_rolling_update(&d, &list, &map(&pods), "new", Some(2), now()).unwrap();
        assert_eq!(plan.pods_to_delete, vec!["o1"]);
    }

    #[test]
    fn r73_unavailable_mode_walks_nodes_outside_desired_set() {
        let mut d = ds("x");
        strategy(&mut d, None, Some(IntOrString::Int(1)));
        let pods = [pod_on("o1", "n1", "old", 1).ready(0).build()];
        let stay = Placement {
            should_run: false,
            should_continue_running: true,
        };
        let list = vec![("n1".to_owned(), stay)];
        let plan = plan_rolling_update(&d, &list, &map(&pods), "new", Some(2), now()).unwrap();
        assert_eq!(plan.pods_to_delete, vec!["o1"]);
    }

    #[test]
    fn a_partition_keeps_held_nodes_old_pods_in_both_modes() {
        let mut d = ds("x");
        strategy(&mut d, None, Some(IntOrString::Int(5)));
        let pods = [
            pod_on("a", "n1", "old", 1).ready(0).build(),
            pod_on("b", "n2", "old", 1).build(),
            pod_on("c", "n3", "old", 1).ready(0).build(),
        ];
        let plan = plan_rolling_update_held(
            &d,
            &nodes(3),
            &map(&pods),
            "new",
            Some(2),
            now(),
            Some("n2"),
        )
        .unwrap();
        assert_eq!(
            plan.pods_to_delete,
            vec!["c"],
            "n1, n2 held, unavailable or not"
        );
        strategy(&mut d, Some(IntOrString::Int(5)), Some(IntOrString::Int(0)));
        let plan = plan_rolling_update_held(
            &d,
            &nodes(3),
            &map(&pods),
            "new",
            Some(2),
            now(),
            Some("n2"),
        )
        .unwrap();
        assert_eq!(plan.nodes_to_create, vec!["n3"]);
        assert!(plan.pods_to_delete.is_empty());
        // A held unavailable pod is kept, and counts against maxUnavailable.
        strategy(&mut d, None, Some(IntOrString::Int(1)));
        let plan = plan_rolling_update_held(
            &d,
            &nodes(3),
            &map(&pods),
            "new",
            Some(2),
            now(),
            Some("n2"),
        )
        .unwrap();
        assert!(plan.pods_to_delete.is_empty());
    }

    #[test]
    fn r72_r74_non_template_changes_touch_nothing() {
        // Pods of the current template generation are updated whatever metadata.generation is.
        let mut d = ds("x");
        strategy(&mut d, None, Some(IntOrString::Int(1)));
        d.metadata.generation = Some(7);
        d.spec.as_mut().unwrap().min_ready_seconds = Some(5);
        let pods = [pod_on("a", "n1", "h", 1).ready(0).build()];
        let plan = plan_rolling_update(&d, &nodes(1), &map(&pods), "h", Some(1), now()).unwrap();
        assert_eq!(plan, RollingPlan::default());
    }
}
