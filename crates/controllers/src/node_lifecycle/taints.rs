//! Which taints the node lifecycle controller owns and what they should be, as upstream's
//! `nodeConditionToTaintKeyStatusMap`, `doNoScheduleTaintingPass` and `SwapNodeControllerTaint`.
//!
//! Pure functions over k8s-openapi taints and a node's view (a whole `Node`, or the controller's
//! cached record); the controller applies their answers.

use k8s_openapi::api::core::v1::Taint;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use pernode_core::scheduling::{TAINT_EFFECT_NO_EXECUTE, TAINT_EFFECT_NO_SCHEDULE};

use crate::trim::{ConditionsView, NodeView};

/// Ready=False.
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// Ready=Unknown (the kubelet stopped posting status).
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// `spec.unschedulable` (cordoned).
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// MemoryPressure=True.
pub const TAINT_MEMORY_PRESSURE: &str = "node.kubernetes.io/memory-pressure";
/// DiskPressure=True.
pub const TAINT_DISK_PRESSURE: &str = "node.kubernetes.io/disk-pressure";
/// PIDPressure=True.
pub const TAINT_PID_PRESSURE: &str = "node.kubernetes.io/pid-pressure";
/// NetworkUnavailable=True.
pub const TAINT_NETWORK_UNAVAILABLE: &str = "node.kubernetes.io/network-unavailable";

/// (condition type, condition status, taint key): upstream's nodeConditionToTaintKeyStatusMap.
const CONDITION_TAINTS: [(&str, &str, &str); 6] = [
    ("Ready", "False", TAINT_NOT_READY),
    ("Ready", "Unknown", TAINT_UNREACHABLE),
    ("MemoryPressure", "True", TAINT_MEMORY_PRESSURE),
    ("DiskPressure", "True", TAINT_DISK_PRESSURE),
    ("NetworkUnavailable", "True", TAINT_NETWORK_UNAVAILABLE),
    ("PIDPressure", "True", TAINT_PID_PRESSURE),
];

/// A taint with no value and no timeAdded.
pub fn taint(key: &str, effect: &str) -> Taint {
    Taint {
        key: key.to_string(),
        effect: effect.to_string(),
        value: None,
        time_added: None,
    }
}

/// Upstream's `MatchTaint`: same key and effect (value and timeAdded do not matter).
pub fn same_taint(a: &Taint, b: &Taint) -> bool {
    a.key == b.key && a.effect == b.effect
}

/// Whether `taints` holds a taint with this key and effect.
pub fn has_taint(taints: &[Taint], key: &str, effect: &str) -> bool {
    taints.iter().any(|t| t.key == key && t.effect == effect)
}

/// The NoExecute taints of a node (what taint eviction acts on).
pub fn no_execute_taints(node: &impl NodeView) -> Vec<Taint> {
    node.taints()
        .iter()
        .filter(|t| t.effect == TAINT_EFFECT_NO_EXECUTE)
        .cloned()
        .collect()
}

/// The NoSchedule taints the node's conditions and `spec.unschedulable` call for.
pub fn desired_no_schedule_taints(node: &impl ConditionsView) -> Vec<Taint> {
    let mut out: Vec<Taint> = Vec::new();
    for c in node.conditions() {
        for (type_, status, key) in CONDITION_TAINTS {
            if c.type_ == type_
                && c.status == status
                && !has_taint(&out, key, TAINT_EFFECT_NO_SCHEDULE)
            {
                out.push(taint(key, TAINT_EFFECT_NO_SCHEDULE));
            }
        }
    }
    if node.unschedulable() {
        out.push(taint(TAINT_UNSCHEDULABLE, TAINT_EFFECT_NO_SCHEDULE));
    }
    out
}

/// Whether a NoSchedule taint with this key is one the NoSchedule pass owns.
fn owned_no_schedule_key(key: &str) -> bool {
    key == TAINT_UNSCHEDULABLE || CONDITION_TAINTS.iter().any(|(_, _, k)| *k == key)
}

/// The NoSchedule pass for one node: `(to_add, to_remove)` so that the owned NoSchedule taints
/// are exactly [`desired_no_schedule_taints`]. Both empty means nothing to do.
pub fn no_schedule_diff(node: &impl ConditionsView) -> (Vec<Taint>, Vec<Taint>) {
    let desired = desired_no_schedule_taints(node);
    let current: Vec<&Taint> = node
        .taints()
        .iter()
        .filter(|t| t.effect == TAINT_EFFECT_NO_SCHEDULE && owned_no_schedule_key(&t.key))
        .collect();
    let add = desired
        .iter()
        .filter(|d| !current.iter().any(|c| same_taint(c, d)))
        .cloned()
        .collect();
    let remove = current
        .into_iter()
        .filter(|c| !desired.iter().any(|d| same_taint(c, d)))
        .cloned()
        .collect();
    (add, remove)
}

/// The NoExecute taint a Ready status calls for and the one it excludes (not-ready and
/// unreachable mirror Ready=False/Unknown and never coexist); `None` for Ready=True.
pub fn no_execute_for_ready(status: &str) -> Option<(&'static str, &'static str)> {
    match status {
        "False" => Some((TAINT_NOT_READY, TAINT_UNREACHABLE)),
        "Unknown" => Some((TAINT_UNREACHABLE, TAINT_NOT_READY)),
        _ => None,
    }
}

/// `SwapNodeControllerTaint` on a taint list: remove `remove` (by key and effect), add each of
/// `add` that is not already there, stamped with `timeAdded = now`. `None` when nothing changes,
/// so an existing taint keeps its original timeAdded.
pub fn swap_taints(
    current: &[Taint],
    add: &[Taint],
    remove: &[Taint],
    now: Timestamp,
) -> Option<Vec<Taint>> {
    let mut out: Vec<Taint> = current
        .iter()
        .filter(|t| !remove.iter().any(|r| same_taint(t, r)))
        .cloned()
        .collect();
    let mut changed = out.len() != current.len();
    for a in add {
        if out.iter().any(|t| same_taint(t, a)) {
            continue;
        }
        let mut t = a.clone();
        t.time_added = Some(Time(now));
        out.push(t);
        changed = true;
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trim::{LifecycleNode, kept_as};
    use k8s_openapi::api::core::v1::Node;
    use serde_json::json;

    fn node(v: serde_json::Value) -> Node {
        let node: Node = serde_json::from_value(v).expect("node literal");
        // The controller's cached record of it judges alike.
        let record = kept_as::<LifecycleNode>(&node);
        assert_eq!(no_schedule_diff(&record), no_schedule_diff(&node));
        assert_eq!(no_execute_taints(&record), no_execute_taints(&node));
        node
    }

    fn keys(ts: &[Taint]) -> Vec<String> {
        let mut k: Vec<String> = ts
            .iter()
            .map(|t| format!("{}:{}", t.key, t.effect))
            .collect();
        k.sort();
        k
    }

    #[test]
    fn conditions_map_to_no_schedule_taints() {
        let n = node(json!({
            "metadata": {"name": "n"},
            "spec": {"unschedulable": true},
            "status": {"conditions": [
                {"type": "Ready", "status": "Unknown"},
                {"type": "MemoryPressure", "status": "True"},
                {"type": "DiskPressure", "status": "True"},
                {"type": "PIDPressure", "status": "True"},
                {"type": "NetworkUnavailable", "status": "True"},
            ]},
        }));
        assert_eq!(
            keys(&desired_no_schedule_taints(&n)),
            vec![
                "node.kubernetes.io/disk-pressure:NoSchedule",
                "node.kubernetes.io/memory-pressure:NoSchedule",
                "node.kubernetes.io/network-unavailable:NoSchedule",
                "node.kubernetes.io/pid-pressure:NoSchedule",
                "node.kubernetes.io/unreachable:NoSchedule",
                "node.kubernetes.io/unschedulable:NoSchedule",
            ]
        );
        let ready_false = node(json!({
            "metadata": {"name": "n"},
            "status": {"conditions": [{"type": "Ready", "status": "False"},
                                      {"type": "MemoryPressure", "status": "False"}]},
        }));
        assert_eq!(
            keys(&desired_no_schedule_taints(&ready_false)),
            vec!["node.kubernetes.io/not-ready:NoSchedule"]
        );
        let healthy = node(json!({
            "metadata": {"name": "n"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]},
        }));
        assert!(desired_no_schedule_taints(&healthy).is_empty());
    }

    #[test]
    fn no_schedule_diff_removes_taints_whose_cause_went_and_keeps_foreign_ones() {
        let n = node(json!({
            "metadata": {"name": "n"},
            "spec": {"taints": [
                {"key": "node.kubernetes.io/memory-pressure", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"},
                {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"},
                {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
            ]},
            "status": {"conditions": [{"type": "Ready", "status": "True"},
                                      {"type": "DiskPressure", "status": "True"}]},
        }));
        let (add, remove) = no_schedule_diff(&n);
        assert_eq!(
            keys(&add),
            vec!["node.kubernetes.io/disk-pressure:NoSchedule"]
        );
        assert_eq!(
            keys(&remove),
            vec![
                "node.kubernetes.io/memory-pressure:NoSchedule",
                "node.kubernetes.io/unschedulable:NoSchedule",
            ]
        );
    }

    #[test]
    fn no_schedule_diff_is_empty_when_in_step() {
        let n = node(json!({
            "metadata": {"name": "n"},
            "spec": {"taints": [
                {"key": "node.kubernetes.io/network-unavailable", "effect": "NoSchedule"},
            ]},
            "status": {"conditions": [{"type": "NetworkUnavailable", "status": "True"}]},
        }));
        let (add, remove) = no_schedule_diff(&n);
        assert!(add.is_empty() && remove.is_empty());
    }

    #[test]
    fn ready_status_picks_the_no_execute_taint() {
        assert_eq!(
            no_execute_for_ready("False"),
            Some((TAINT_NOT_READY, TAINT_UNREACHABLE))
        );
        assert_eq!(
            no_execute_for_ready("Unknown"),
            Some((TAINT_UNREACHABLE, TAINT_NOT_READY))
        );
        assert_eq!(no_execute_for_ready("True"), None);
    }

    #[test]
    fn swap_stamps_new_taints_and_keeps_existing_time_added() {
        let then = Timestamp::from_second(1_000).expect("ts");
        let now = Timestamp::from_second(2_000).expect("ts");
        let mut existing = taint(TAINT_UNREACHABLE, TAINT_EFFECT_NO_EXECUTE);
        existing.time_added = Some(Time(then));
        let current = vec![existing.clone(), taint("other", TAINT_EFFECT_NO_SCHEDULE)];
        // Already there: no change.
        assert_eq!(
            swap_taints(
                &current,
                &[taint(TAINT_UNREACHABLE, TAINT_EFFECT_NO_EXECUTE)],
                &[taint(TAINT_NOT_READY, TAINT_EFFECT_NO_EXECUTE)],
                now
            ),
            None
        );
        // Swap unreachable for not-ready.
        let out = swap_taints(
            &current,
            &[taint(TAINT_NOT_READY, TAINT_EFFECT_NO_EXECUTE)],
            &[taint(TAINT_UNREACHABLE, TAINT_EFFECT_NO_EXECUTE)],
            now,
        )
        .expect("changed");
        assert_eq!(
            keys(&out),
            vec!["node.kubernetes.io/not-ready:NoExecute", "other:NoSchedule"]
        );
        let added = out
            .iter()
            .find(|t| t.key == TAINT_NOT_READY)
            .expect("added");
        assert_eq!(added.time_added, Some(Time(now)));
    }
}
