//! The node-critical gate: `pernode.io/node-critical: "true"` marks a DaemonSet whose daemon a
//! node needs before it can run anything else (a CNI or storage plugin). A node that joins
//! while such a DaemonSet would run on it is registered with the taint
//! `pernode.io/critical-daemons-not-ready:NoSchedule`, which only the node-critical
//! DaemonSets' pods tolerate; the node-critical controller removes it once every critical
//! daemon pod that should run on the node is Ready. The same pattern as the kubelet's
//! `node.kubernetes.io/network-unavailable` and upstream's Node Readiness Controller
//! (kubernetes-sigs/node-readiness-controller), on the plain apps/v1 DaemonSet.
//!
//! ```
//! use std::collections::BTreeMap;
//! use pernode_core::node_critical::{is_node_critical, NODE_CRITICAL_ANNOTATION};
//! let a = BTreeMap::from([(NODE_CRITICAL_ANNOTATION.to_string(), "true".to_string())]);
//! assert!(is_node_critical(Some(&a)));
//! assert!(!is_node_critical(None));
//! ```

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Taint, Toleration};

use crate::scheduling::TAINT_EFFECT_NO_SCHEDULE;

/// The annotation that marks a DaemonSet node-critical.
pub const NODE_CRITICAL_ANNOTATION: &str = "pernode.io/node-critical";

/// The taint a joining node carries until its critical daemons are Ready.
pub const CRITICAL_DAEMONS_NOT_READY_TAINT: &str = "pernode.io/critical-daemons-not-ready";

/// Whether annotations carry `pernode.io/node-critical: "true"` (any other value is not).
pub fn is_node_critical(annotations: Option<&BTreeMap<String, String>>) -> bool {
    annotations
        .and_then(|a| a.get(NODE_CRITICAL_ANNOTATION))
        .is_some_and(|v| v == "true")
}

/// `pernode.io/critical-daemons-not-ready:NoSchedule`.
pub fn not_ready_taint() -> Taint {
    Taint {
        key: CRITICAL_DAEMONS_NOT_READY_TAINT.to_owned(),
        effect: TAINT_EFFECT_NO_SCHEDULE.to_owned(),
        value: None,
        time_added: None,
    }
}

/// The toleration node-critical daemon pods get: `Exists` on the taint, NoSchedule.
pub fn not_ready_toleration() -> Toleration {
    Toleration {
        key: Some(CRITICAL_DAEMONS_NOT_READY_TAINT.to_owned()),
        operator: Some("Exists".to_owned()),
        effect: Some(TAINT_EFFECT_NO_SCHEDULE.to_owned()),
        ..Toleration::default()
    }
}

/// Whether `taints` hold the gate's taint.
pub fn has_not_ready_taint(taints: &[Taint]) -> bool {
    taints
        .iter()
        .any(|t| t.key == CRITICAL_DAEMONS_NOT_READY_TAINT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduling::tolerations_tolerate_taint;

    #[test]
    fn only_true_marks_a_daemon_set_critical() {
        for (v, want) in [
            ("true", true),
            ("false", false),
            ("True", false),
            ("", false),
        ] {
            let a = BTreeMap::from([(NODE_CRITICAL_ANNOTATION.to_string(), v.to_string())]);
            assert_eq!(is_node_critical(Some(&a)), want, "{v:?}");
        }
    }

    #[test]
    fn the_toleration_tolerates_the_taint_and_nothing_else() {
        let tol = not_ready_toleration();
        assert!(tolerations_tolerate_taint(
            std::slice::from_ref(&tol),
            &not_ready_taint()
        ));
        let other = Taint {
            key: "node.kubernetes.io/network-unavailable".into(),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        assert!(!tolerations_tolerate_taint(&[tol], &other));
        assert!(has_not_ready_taint(&[other.clone(), not_ready_taint()]));
        assert!(!has_not_ready_taint(&[other]));
    }
}
