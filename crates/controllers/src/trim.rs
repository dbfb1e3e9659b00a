//! What a controller keeps of the objects it caches. Every controller in `pernode up` watches
//! the same nodes and pods, and a decoded k8s-openapi object costs several times its JSON; at
//! 10,000 nodes each full copy of the fleet is tens of MiB. Each cache keeps the fields its
//! controller reads, and never writes a trimmed object back (writes are patches, or start
//! from a fresh GET).

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Node, NodeStatus, Pod, PodSpec, PodStatus};

/// Drops what a controller's cache does not read, keeping the type.
pub(crate) trait Trim {
    fn trim(self) -> Self;
}

impl Trim for DaemonSet {
    fn trim(mut self) -> Self {
        self.metadata.managed_fields = None;
        self
    }
}

impl Trim for ControllerRevision {
    fn trim(mut self) -> Self {
        self.metadata.managed_fields = None;
        self
    }
}

/// The DaemonSet controller places pods by labels, taints, `unschedulable` and the name: the
/// metadata and the spec. It never reads a node's status.
impl Trim for Node {
    fn trim(mut self) -> Self {
        self.metadata.managed_fields = None;
        self.status = None;
        self
    }
}

/// The DaemonSet controller reads a pod's metadata (labels, owner, deletion), the node it is
/// bound to or targets (`nodeName`, the node affinity), and its phase and conditions
/// (readiness, availability).
impl Trim for Pod {
    fn trim(mut self) -> Self {
        self.metadata.managed_fields = None;
        self.spec = self.spec.map(|s| PodSpec {
            node_name: s.node_name,
            affinity: s.affinity,
            containers: Vec::new(),
            ..Default::default()
        });
        self.status = self.status.map(|s| PodStatus {
            phase: s.phase,
            conditions: s.conditions,
            ..Default::default()
        });
        self
    }
}

/// The scheduler's view of a node: metadata, spec (taints, unschedulable) and what is
/// allocatable; not its conditions, addresses, images or node info.
pub(crate) fn node_for_scheduling(mut node: Node) -> Node {
    node.metadata.managed_fields = None;
    node.status = node.status.map(|s| NodeStatus {
        allocatable: s.allocatable,
        ..Default::default()
    });
    node
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_what_placement_availability_and_fit_read() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "labels": {"a": "b"}, "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "d", "uid": "u", "controller": true}]},
            "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "i"}],
                "affinity": {"nodeAffinity": {}}, "tolerations": [{"operator": "Exists"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                "podIP": "10.0.0.1"}
        }))
        .unwrap();
        let t = pod.clone().trim();
        assert_eq!(t.metadata, pod.metadata);
        let spec = t.spec.unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n"));
        assert!(spec.affinity.is_some() && spec.tolerations.is_none());
        let status = t.status.unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(pernode_core::pod::is_pod_ready(&Pod {
            status: Some(status.clone()),
            ..Default::default()
        }));
        assert!(status.pod_ip.is_none());

        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": "n", "labels": {"k": "v"}},
            "spec": {"taints": [{"key": "t", "effect": "NoSchedule"}], "unschedulable": true},
            "status": {"allocatable": {"cpu": "2"}, "capacity": {"cpu": "2"},
                "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let placed = node.clone().trim();
        assert_eq!(
            (placed.metadata.clone(), placed.spec.clone()),
            (node.metadata.clone(), node.spec.clone())
        );
        assert!(placed.status.is_none());
        let scheduled = node_for_scheduling(node.clone());
        assert_eq!(scheduled.spec, node.spec);
        let status = scheduled.status.unwrap();
        assert_eq!(status.allocatable, node.status.unwrap().allocatable);
        assert!(status.conditions.is_none() && status.capacity.is_none());
    }
}
