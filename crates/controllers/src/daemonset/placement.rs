//! Placement (R1-R11): for a (DaemonSet, node), may a new daemon pod be created there
//! (`should_run`) and may an existing one stay (`should_continue_running`)?
//!
//! As upstream's `NodeShouldRunDaemonPod`: both answers are computed on a simulated pod (the
//! template with the default tolerations of R20) against the node's labels, name and taints,
//! through pernode-core's predicates. Nothing else about the node is consulted (R8): not its
//! conditions, not `spec.unschedulable` itself, not its capacity. Nodes are read through
//! `NodeView`, so the controller's cached records and whole `Node`s are judged alike.

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Node, PodSpec, Taint};
use pernode_core::scheduling::{
    TAINT_EFFECT_NO_EXECUTE, TAINT_EFFECT_NO_SCHEDULE, find_untolerated_taint,
    node_matches_node_selector_terms, node_selector_matches,
};

use super::pods::{add_or_update_daemon_pod_tolerations, is_node_critical};
use crate::trim::NodeView;

/// The two answers of R2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Placement {
    /// A new daemon pod may be created on the node.
    pub should_run: bool,
    /// An existing daemon pod may keep running on the node.
    pub should_continue_running: bool,
}

impl Placement {
    /// Neither run nor continue.
    pub const NONE: Placement = Placement {
        should_run: false,
        should_continue_running: false,
    };
    /// Run and continue.
    pub const BOTH: Placement = Placement {
        should_run: true,
        should_continue_running: true,
    };
}

/// The simulated pod spec of a DaemonSet, built once and checked against many nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacementChecker {
    spec: PodSpec,
}

impl PlacementChecker {
    /// The simulated pod of `ds` (upstream `NewPod` minus the node name, which only R3 uses).
    pub fn new(ds: &DaemonSet) -> Self {
        let mut spec = ds
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.clone())
            .unwrap_or_default();
        add_or_update_daemon_pod_tolerations(&mut spec, is_node_critical(ds));
        Self { spec }
    }

    /// R3-R7 for one node.
    pub fn check(&self, node: &impl NodeView) -> Placement {
        self.judge(node).0
    }

    /// R3-R7 for one node, with the rule that keeps a new pod off it (`None` when one may
    /// be created): the placement, and the first rule that fails in upstream's order.
    pub fn judge<'n>(&'n self, node: &'n impl NodeView) -> (Placement, Option<Exclusion<'n>>) {
        // R3, R11, then R4.
        if let Some(rule) = self
            .node_name_rule(node)
            .or_else(|| self.node_selector_rule(node))
            .or_else(|| self.node_affinity_rule(node))
        {
            return (Placement::NONE, Some(rule));
        }
        self.taint_rule(node)
    }

    /// R3, R11: a template nodeName pins the DaemonSet to that node.
    pub fn node_name_rule(&self, node: &impl NodeView) -> Option<Exclusion<'_>> {
        self.spec
            .node_name
            .as_deref()
            .filter(|pinned| !pinned.is_empty() && *pinned != node.name())
            .map(Exclusion::NodeName)
    }

    /// R4: every `nodeSelector` pair is one of the node's labels.
    pub fn node_selector_rule(&self, node: &impl NodeView) -> Option<Exclusion<'_>> {
        let selector = self.spec.node_selector.as_ref()?;
        (!node_selector_matches(selector, |k| node.label(k))).then_some(Exclusion::NodeSelector)
    }

    /// R4: the required node affinity matches the node (unparsable terms never match).
    pub fn node_affinity_rule(&self, node: &impl NodeView) -> Option<Exclusion<'_>> {
        let required = self
            .spec
            .affinity
            .as_ref()?
            .node_affinity
            .as_ref()?
            .required_during_scheduling_ignored_during_execution
            .as_ref()?;
        (!node_matches_node_selector_terms(required, &node.affinity_node()))
            .then_some(Exclusion::NodeAffinity)
    }

    /// R5-R7: untolerated NoSchedule or NoExecute taints keep new pods off (PreferNoSchedule
    /// is ignored); only an untolerated NoExecute taint removes a running one.
    pub fn taint_rule<'n>(&'n self, node: &'n impl NodeView) -> (Placement, Option<Exclusion<'n>>) {
        let taints = node.taints();
        let tolerations = self.spec.tolerations.as_deref().unwrap_or(&[]);
        let Some(blocking) = find_untolerated_taint(taints, tolerations, |t| {
            t.effect == TAINT_EFFECT_NO_SCHEDULE || t.effect == TAINT_EFFECT_NO_EXECUTE
        }) else {
            return (Placement::BOTH, None);
        };
        let evicted =
            find_untolerated_taint(taints, tolerations, |t| t.effect == TAINT_EFFECT_NO_EXECUTE)
                .is_some();
        let placement = Placement {
            should_run: false,
            should_continue_running: !evicted,
        };
        (placement, Some(Exclusion::Taint(blocking)))
    }

    /// Every placement rule's verdict on one node, each checked on its own (not only up to
    /// the first that fails), for `kubectl pernode why`: `(rule, failure)` in upstream's order.
    pub fn explain<'n>(&'n self, node: &'n impl NodeView) -> [(&'static str, Option<String>); 4] {
        let text = |e: Option<Exclusion<'_>>| e.map(|e| self.describe(&e));
        [
            ("nodeName", text(self.node_name_rule(node))),
            ("nodeSelector", text(self.node_selector_rule(node))),
            ("node affinity", text(self.node_affinity_rule(node))),
            ("taints", text(self.taint_rule(node).1)),
        ]
    }

    /// How an exclusion reads in the `NodesExcluded` condition: `nodeSelector daemon=need`,
    /// `taint forbid=true:NoSchedule not tolerated`.
    pub fn describe(&self, exclusion: &Exclusion<'_>) -> String {
        match exclusion {
            Exclusion::NodeName(pinned) => format!("nodeName {pinned}"),
            Exclusion::NodeSelector => {
                let pairs: Vec<String> = self
                    .spec
                    .node_selector
                    .iter()
                    .flatten()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!("nodeSelector {}", pairs.join(","))
            }
            Exclusion::NodeAffinity => "required node affinity".to_owned(),
            Exclusion::Taint(t) => match t.value.as_deref().filter(|v| !v.is_empty()) {
                Some(v) => format!("taint {}={v}:{} not tolerated", t.key, t.effect),
                None => format!("taint {}:{} not tolerated", t.key, t.effect),
            },
        }
    }
}

/// The placement rule that keeps a DaemonSet's new pods off a node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Exclusion<'a> {
    /// R3: the template's `nodeName` names another node.
    NodeName(&'a str),
    /// R4: the node's labels do not match `nodeSelector`.
    NodeSelector,
    /// R4: the node does not match the required node affinity.
    NodeAffinity,
    /// R5: a NoSchedule or NoExecute taint the pod does not tolerate.
    Taint(&'a Taint),
}

/// `NodeShouldRunDaemonPod` for one (DaemonSet, node).
pub fn node_should_run_daemon_pod(node: &Node, ds: &DaemonSet) -> Placement {
    PlacementChecker::new(ds).check(node)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemonset::testutil::{ds, node, taint};
    use crate::trim::{DaemonNode, kept_as};
    use k8s_openapi::api::core::v1::{
        Affinity, NodeAffinity, NodeCondition, NodeSelector, NodeSelectorRequirement,
        NodeSelectorTerm, NodeStatus, Toleration,
    };

    /// The placement on a whole node, which the controller's cached record of it must share.
    fn node_should_run_daemon_pod(node: &Node, ds: &DaemonSet) -> Placement {
        let placement = super::node_should_run_daemon_pod(node, ds);
        let record = kept_as::<DaemonNode>(node);
        assert_eq!(PlacementChecker::new(ds).check(&record), placement);
        placement
    }

    fn with_spec(f: impl FnOnce(&mut PodSpec)) -> DaemonSet {
        let mut d = ds("x");
        f(d.spec.as_mut().unwrap().template.spec.as_mut().unwrap());
        d
    }

    fn required(terms: Vec<NodeSelectorTerm>) -> Option<Affinity> {
        Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: terms,
                }),
                ..NodeAffinity::default()
            }),
            ..Affinity::default()
        })
    }

    fn expr(key: &str, op: &str, values: &[&str]) -> NodeSelectorRequirement {
        NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        }
    }

    #[test]
    fn r1_every_listed_node_is_a_candidate() {
        let mut n = node("n1", &[]);
        n.spec.as_mut().unwrap().unschedulable = Some(true);
        n.status = Some(NodeStatus {
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "False".into(),
                ..NodeCondition::default()
            }]),
            ..NodeStatus::default()
        });
        assert_eq!(node_should_run_daemon_pod(&n, &ds("x")), Placement::BOTH);
    }

    #[test]
    fn r3_template_node_name_other_node() {
        let d = with_spec(|s| s.node_name = Some("n2".into()));
        assert_eq!(
            node_should_run_daemon_pod(&node("n1", &[]), &d),
            Placement::NONE
        );
        assert_eq!(
            node_should_run_daemon_pod(&node("n2", &[]), &d),
            Placement::BOTH
        );
    }

    #[test]
    fn r4_node_selector_and_required_affinity() {
        let d = with_spec(|s| s.node_selector = Some([("daemon".into(), "need".into())].into()));
        let mut n = node("n1", &[]);
        assert_eq!(node_should_run_daemon_pod(&n, &d), Placement::NONE);
        n.metadata.labels = Some([("daemon".into(), "need".into())].into());
        assert_eq!(node_should_run_daemon_pod(&n, &d), Placement::BOTH);

        let d = with_spec(|s| {
            s.affinity = required(vec![
                NodeSelectorTerm {
                    match_expressions: Some(vec![expr("zone", "In", &["a"])]),
                    ..NodeSelectorTerm::default()
                },
                NodeSelectorTerm {
                    match_fields: Some(vec![expr("metadata.name", "In", &["n2"])]),
                    ..NodeSelectorTerm::default()
                },
            ])
        });
        assert_eq!(
            node_should_run_daemon_pod(&node("n1", &[]), &d),
            Placement::NONE
        );
        assert_eq!(
            node_should_run_daemon_pod(&node("n2", &[]), &d),
            Placement::BOTH
        );
        // A term without requirements matches nothing.
        let d = with_spec(|s| s.affinity = required(vec![NodeSelectorTerm::default()]));
        assert_eq!(
            node_should_run_daemon_pod(&node("n1", &[]), &d),
            Placement::NONE
        );
    }

    #[test]
    fn r5_tolerated_or_prefer_no_schedule_taints_allow() {
        let n = node("n1", &[taint("soft", "", "PreferNoSchedule")]);
        assert_eq!(node_should_run_daemon_pod(&n, &ds("x")), Placement::BOTH);
        let d = with_spec(|s| {
            s.tolerations = Some(vec![Toleration {
                key: Some("forbid".into()),
                operator: Some("Exists".into()),
                ..Toleration::default()
            }])
        });
        let n = node(
            "n1",
            &[
                taint("forbid", "true", "NoSchedule"),
                taint("forbid", "", "NoExecute"),
            ],
        );
        assert_eq!(node_should_run_daemon_pod(&n, &d), Placement::BOTH);
    }

    #[test]
    fn r6_no_schedule_blocks_new_no_execute_evicts() {
        let n = node("n1", &[taint("forbid", "true", "NoSchedule")]);
        assert_eq!(
            node_should_run_daemon_pod(&n, &ds("x")),
            Placement {
                should_run: false,
                should_continue_running: true
            }
        );
        let n = node("n1", &[taint("forbid", "true", "NoExecute")]);
        assert_eq!(node_should_run_daemon_pod(&n, &ds("x")), Placement::NONE);
    }

    #[test]
    fn r7_toleration_matching() {
        let tol = |key: Option<&str>, op: &str, value: Option<&str>, effect: Option<&str>| {
            with_spec(|s| {
                s.tolerations = Some(vec![Toleration {
                    key: key.map(Into::into),
                    operator: Some(op.into()),
                    value: value.map(Into::into),
                    effect: effect.map(Into::into),
                    toleration_seconds: None,
                }])
            })
        };
        let n = node("n1", &[taint("k", "v", "NoSchedule")]);
        let run = |d: &DaemonSet| node_should_run_daemon_pod(&n, d).should_run;
        assert!(
            run(&tol(None, "Exists", None, None)),
            "Exists with empty key matches all"
        );
        assert!(
            run(&tol(Some("k"), "Equal", Some("v"), None)),
            "empty effect matches all"
        );
        assert!(
            run(&tol(Some("k"), "", Some("v"), Some("NoSchedule"))),
            "empty operator is Equal"
        );
        assert!(!run(&tol(Some("k"), "Equal", Some("w"), None)));
        assert!(!run(&tol(Some("k"), "Exists", None, Some("NoExecute"))));
    }

    #[test]
    fn r8_r9_cordoned_node_still_runs_daemon() {
        let mut n = node(
            "n1",
            &[taint("node.kubernetes.io/unschedulable", "", "NoSchedule")],
        );
        n.spec.as_mut().unwrap().unschedulable = Some(true);
        assert_eq!(node_should_run_daemon_pod(&n, &ds("x")), Placement::BOTH);
    }

    #[test]
    fn r10_not_ready_and_unreachable_no_execute_tolerated() {
        for key in [
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        ] {
            let n = node("n1", &[taint(key, "", "NoExecute")]);
            assert_eq!(node_should_run_daemon_pod(&n, &ds("x")), Placement::BOTH);
            // R22: the NoSchedule variant is not tolerated: no new pod, existing pod stays.
            let n = node("n1", &[taint(key, "", "NoSchedule")]);
            assert_eq!(
                node_should_run_daemon_pod(&n, &ds("x")),
                Placement {
                    should_run: false,
                    should_continue_running: true
                }
            );
        }
        // network-unavailable only with hostNetwork (R20).
        let n = node(
            "n1",
            &[taint(
                "node.kubernetes.io/network-unavailable",
                "",
                "NoSchedule",
            )],
        );
        assert!(!node_should_run_daemon_pod(&n, &ds("x")).should_run);
        let d = with_spec(|s| s.host_network = Some(true));
        assert!(node_should_run_daemon_pod(&n, &d).should_run);
    }

    #[test]
    fn only_node_critical_daemon_sets_tolerate_the_critical_gate() {
        let gated = node("n1", &[pernode_core::node_critical::not_ready_taint()]);
        let plain = ds("x");
        assert_eq!(
            PlacementChecker::new(&plain).judge(&gated).1,
            Some(Exclusion::Taint(
                &pernode_core::node_critical::not_ready_taint()
            ))
        );
        let mut critical = ds("cni");
        critical
            .metadata
            .annotations
            .get_or_insert_default()
            .insert(
                pernode_core::node_critical::NODE_CRITICAL_ANNOTATION.into(),
                "true".into(),
            );
        assert_eq!(
            PlacementChecker::new(&critical).judge(&gated),
            (Placement::BOTH, None)
        );
        let template = super::super::pods::pod_template(&critical, None, "h");
        let tolerations = template.spec.unwrap().tolerations.unwrap();
        assert_eq!(
            tolerations.last(),
            Some(&pernode_core::node_critical::not_ready_toleration())
        );
    }

    #[test]
    fn exclusions_name_the_first_failing_rule() {
        let d = with_spec(|s| {
            s.node_selector = Some([("daemon".into(), "need".into())].into());
        });
        let checker = PlacementChecker::new(&d);
        let n = node("n1", &[]);
        let (_, why) = checker.judge(&n);
        assert_eq!(why, Some(Exclusion::NodeSelector));
        assert_eq!(checker.describe(&why.unwrap()), "nodeSelector daemon=need");
        let mut n = node("n1", &[taint("forbid", "true", "NoSchedule")]);
        n.metadata.labels = Some([("daemon".into(), "need".into())].into());
        let (placement, why) = checker.judge(&n);
        assert!(!placement.should_run && placement.should_continue_running);
        assert_eq!(
            checker.describe(&why.unwrap()),
            "taint forbid=true:NoSchedule not tolerated"
        );
        let n = node("n1", &[taint("gone", "", "NoExecute")]);
        let plain = PlacementChecker::new(&ds("x"));
        let (_, why) = plain.judge(&n);
        assert_eq!(
            plain.describe(&why.unwrap()),
            "taint gone:NoExecute not tolerated"
        );
        assert_eq!(plain.judge(&node("n1", &[])), (Placement::BOTH, None));
        let pinned = with_spec(|s| s.node_name = Some("n2".into()));
        let checker = PlacementChecker::new(&pinned);
        let n = node("n1", &[]);
        assert_eq!(checker.judge(&n).1, Some(Exclusion::NodeName("n2")));
        let affinity = with_spec(|s| s.affinity = required(vec![NodeSelectorTerm::default()]));
        let checker = PlacementChecker::new(&affinity);
        assert_eq!(checker.judge(&n).1, Some(Exclusion::NodeAffinity));
        assert_eq!(
            checker.describe(&Exclusion::NodeAffinity),
            "required node affinity"
        );
        // Every rule on its own: both the selector and the taint fail here.
        let d = with_spec(|s| {
            s.node_selector = Some([("daemon".into(), "need".into())].into());
        });
        let checker = PlacementChecker::new(&d);
        let n = node("n1", &[taint("forbid", "true", "NoSchedule")]);
        let verdicts = checker.explain(&n);
        assert_eq!(verdicts[0], ("nodeName", None));
        assert_eq!(
            verdicts[1],
            ("nodeSelector", Some("nodeSelector daemon=need".to_string()))
        );
        assert_eq!(verdicts[2], ("node affinity", None));
        assert_eq!(
            verdicts[3],
            (
                "taints",
                Some("taint forbid=true:NoSchedule not tolerated".to_string())
            )
        );
    }

    #[test]
    fn r11_node_name_with_excluding_selector_runs_nowhere() {
        let d = with_spec(|s| {
            s.node_name = Some("n1".into());
            s.node_selector = Some([("role".into(), "db".into())].into());
        });
        assert_eq!(
            node_should_run_daemon_pod(&node("n1", &[]), &d),
            Placement::NONE
        );
        assert_eq!(
            node_should_run_daemon_pod(&node("n2", &[]), &d),
            Placement::NONE
        );
    }
}
