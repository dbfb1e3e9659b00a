//! The node-critical gate's half at registration (`pernode_core::node_critical`): a Node
//! created while a node-critical DaemonSet would run on it is stored with the taint
//! `pernode.io/critical-daemons-not-ready:NoSchedule`, as if its kubelet had been started with
//! `--register-with-taints`.
//!
//! Why admission and not a controller: a controller tainting after the create leaves a window
//! in which the scheduler may bind an ordinary pod to the new node; a taint the create itself
//! stores leaves none, whatever registers the node (the simulator, `pernode agent`, kubectl).
//! Only creates are gated: a node already registered (its kubelet restarting, or a DaemonSet
//! marked node-critical later) keeps running what it runs.
//!
//! Whether a critical DaemonSet "would run" is judged here on the rules that read only the
//! node being created: the template's `nodeName`, `nodeSelector` and required node affinity.
//! Taints are left to the node-critical controller, which judges full placement as the
//! DaemonSet controller does and removes the taint at once from a node no critical daemon
//! should run on: a second copy of the daemon's default tolerations here could drift from
//! the controller's.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Node;
use pernode_core::node_critical::{has_not_ready_taint, is_node_critical, not_ready_taint};
use pernode_core::scheduling::pod_matches_node_selector_and_affinity;
use pernode_store::Store;
use serde_json::Value;

use super::added::{Added, Step};
use crate::error::ApiError;

/// The store prefix of every namespace's DaemonSets.
const DAEMON_SETS: &str = "daemonsets/";

/// A node's create: the gate's taint added when a node-critical DaemonSet would run on it.
pub fn admit_node(store: &Store, node: &mut Value, added: &mut Added) -> Result<(), ApiError> {
    // Stored JSON is compact, so a marked DaemonSet holds these bytes; only those are parsed
    // (a cluster without node-critical DaemonSets parses nothing per node).
    let (_, entries) = store.list(DAEMON_SETS, |e| {
        memchr::memmem::find(&e.json, br#""pernode.io/node-critical":"true""#).is_some()
    });
    if entries.is_empty() {
        return Ok(());
    }
    // A body that is not a Node is refused later by decoding, with the kind's own message.
    let Ok(typed) = serde_json::from_value::<Node>(node.clone()) else {
        return Ok(());
    };
    let taints = typed
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    if has_not_ready_taint(taints) {
        return Ok(());
    }
    let gated = entries
        .iter()
        .filter_map(|e| serde_json::from_slice::<DaemonSet>(&e.json).ok())
        .any(|ds| would_run(&ds, &typed));
    if !gated {
        return Ok(());
    }
    let taint =
        serde_json::to_value(not_ready_taint()).map_err(|e| ApiError::internal(e.to_string()))?;
    match node.get("spec") {
        None | Some(Value::Null) => added.insert(node, &[], "spec", serde_json::json!({})),
        Some(spec) if !spec.is_object() => return Ok(()),
        Some(_) => {}
    }
    added.push(node, &[Step::Key("spec")], "taints", taint);
    Ok(())
}

/// Whether `ds` is a live node-critical DaemonSet whose pod the node's name and labels admit.
fn would_run(ds: &DaemonSet, node: &Node) -> bool {
    if !is_node_critical(ds.metadata.annotations.as_ref())
        || ds.metadata.deletion_timestamp.is_some()
    {
        return false;
    }
    let Some(spec) = ds.spec.as_ref().and_then(|s| s.template.spec.as_ref()) else {
        return false;
    };
    let pinned_elsewhere = spec
        .node_name
        .as_deref()
        .is_some_and(|n| !n.is_empty() && Some(n) != node.metadata.name.as_deref());
    !pinned_elsewhere && pod_matches_node_selector_and_affinity(spec, node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ds(annotations: Value, node_selector: Value) -> DaemonSet {
        serde_json::from_value(json!({
            "metadata": {"name": "cni", "namespace": "kube-system", "annotations": annotations},
            "spec": {"selector": {"matchLabels": {"app": "cni"}}, "template": {
                "metadata": {"labels": {"app": "cni"}},
                "spec": {"nodeSelector": node_selector,
                         "containers": [{"name": "c", "image": "cni"}]}}}
        }))
        .unwrap()
    }

    fn node(labels: Value) -> Node {
        serde_json::from_value(json!({"metadata": {"name": "n1", "labels": labels}})).unwrap()
    }

    #[test]
    fn only_a_critical_daemon_set_that_selects_the_node_gates_it() {
        let critical = json!({"pernode.io/node-critical": "true"});
        let linux = json!({"kubernetes.io/os": "linux"});
        assert!(would_run(
            &ds(critical.clone(), json!({})),
            &node(json!({}))
        ));
        assert!(would_run(
            &ds(critical.clone(), linux.clone()),
            &node(linux.clone())
        ));
        assert!(!would_run(&ds(critical, linux), &node(json!({}))));
        assert!(!would_run(
            &ds(json!({"pernode.io/node-critical": "false"}), json!({})),
            &node(json!({}))
        ));
        assert!(!would_run(&ds(json!({}), json!({})), &node(json!({}))));
    }
}
