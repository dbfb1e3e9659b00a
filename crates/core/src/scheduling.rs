//! Placement predicates shared by the DaemonSet controller and the scheduler: taint/toleration
//! matching (R5–R7) and node selectors / required node affinity (R4), as upstream's
//! `v1.Toleration.ToleratesTaint`, `v1helper.FindMatchingUntoleratedTaint` and
//! component-helpers' `nodeaffinity.GetRequiredNodeAffinity(pod).Match(node)`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Taint, Toleration,
};

use crate::labels::{LabelSelector, Operator, Requirement};

/// Taint effect `NoSchedule`.
pub const TAINT_EFFECT_NO_SCHEDULE: &str = "NoSchedule";
/// Taint effect `PreferNoSchedule`.
pub const TAINT_EFFECT_PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";
/// Taint effect `NoExecute`.
pub const TAINT_EFFECT_NO_EXECUTE: &str = "NoExecute";
/// The field key node affinity `matchFields` may use.
pub const OBJECT_NAME_FIELD: &str = "metadata.name";

/// R7: does `tol` tolerate `taint`? An empty toleration effect matches every effect; an empty
/// key matches every key; operator `Exists` matches any value; `Equal` (or empty) needs equal
/// values. Unknown operators tolerate nothing.
pub fn toleration_tolerates_taint(tol: &Toleration, taint: &Taint) -> bool {
    let effect = tol.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = tol.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match tol.operator.as_deref().unwrap_or("") {
        "" | "Equal" => tol.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

/// True when any toleration tolerates the taint.
pub fn tolerations_tolerate_taint(tols: &[Toleration], taint: &Taint) -> bool {
    tols.iter().any(|t| toleration_tolerates_taint(t, taint))
}

/// `FindMatchingUntoleratedTaint`: the first taint accepted by `filter` that no toleration
/// tolerates.
pub fn find_untolerated_taint<'a>(
    taints: &'a [Taint],
    tols: &[Toleration],
    filter: impl Fn(&Taint) -> bool,
) -> Option<&'a Taint> {
    taints
        .iter()
        .find(|t| filter(t) && !tolerations_tolerate_taint(tols, t))
}

/// R5/R6 for one pod and node: `(should_run, should_continue_running)` as far as taints go.
/// An untolerated NoSchedule or NoExecute taint blocks new pods; only an untolerated NoExecute
/// taint evicts running ones. PreferNoSchedule is ignored.
pub fn taints_allow(taints: &[Taint], tols: &[Toleration]) -> (bool, bool) {
    let blocking = find_untolerated_taint(taints, tols, |t| {
        t.effect == TAINT_EFFECT_NO_SCHEDULE || t.effect == TAINT_EFFECT_NO_EXECUTE
    });
    if blocking.is_none() {
        return (true, true);
    }
    let evicting =
        find_untolerated_taint(taints, tols, |t| t.effect == TAINT_EFFECT_NO_EXECUTE).is_some();
    (false, !evicting)
}

fn label_operator(op: &str) -> Option<Operator> {
    Some(match op {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        "Gt" => Operator::GreaterThan,
        "Lt" => Operator::LessThan,
        _ => return None,
    })
}

/// `nodeSelectorRequirementsAsSelector`: `None` when any requirement is invalid.
fn expressions_as_selector(exprs: &[NodeSelectorRequirement]) -> Option<LabelSelector> {
    let mut reqs = Vec::with_capacity(exprs.len());
    for e in exprs {
        let op = label_operator(&e.operator)?;
        reqs.push(Requirement::new(&e.key, op, e.values.clone()).ok()?);
    }
    Some(LabelSelector::from_requirements(reqs))
}

/// `nodeSelectorRequirementsAsFieldSelector` + match: `None` when any requirement is invalid
/// (operator other than In/NotIn, or not exactly one value).
fn fields_match(exprs: &[NodeSelectorRequirement], node_name: &str) -> Option<bool> {
    let mut ok = true;
    for e in exprs {
        let [value] = e.values.as_deref().unwrap_or(&[]) else {
            return None;
        };
        let have = if e.key == OBJECT_NAME_FIELD {
            node_name
        } else {
            ""
        };
        let m = match e.operator.as_str() {
            "In" => have == value,
            "NotIn" => have != value,
            _ => return None,
        };
        ok &= m;
    }
    Some(ok)
}

/// One term: `None` when it does not parse (upstream skips such terms).
fn term_matches(
    term: &NodeSelectorTerm,
    labels: &BTreeMap<String, String>,
    node_name: &str,
) -> Option<bool> {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    let label_sel = if exprs.is_empty() {
        None
    } else {
        Some(expressions_as_selector(exprs)?)
    };
    // Parse the fields before matching so an invalid field requirement voids the term.
    let fields_ok = if fields.is_empty() {
        None
    } else {
        Some(fields_match(fields, node_name)?)
    };
    if let Some(sel) = label_sel
        && !sel.matches(labels)
    {
        return Some(false);
    }
    // Upstream only consults matchFields when the node has a name.
    if let Some(false) = fields_ok
        && !node_name.is_empty()
    {
        return Some(false);
    }
    Some(true)
}

/// Required node affinity: terms are ORed; within a term matchExpressions (labels) and
/// matchFields (`metadata.name`) are ANDed; a term without requirements matches nothing; a
/// term that does not parse (bad operator, bad key/value, wrong value count, non-integer
/// Gt/Lt) is skipped, i.e. never matches.
pub fn node_matches_node_selector_terms(terms: &NodeSelector, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let name = node.metadata.name.as_deref().unwrap_or("");
    terms.node_selector_terms.iter().any(|term| {
        let is_empty = term.match_expressions.as_deref().unwrap_or(&[]).is_empty()
            && term.match_fields.as_deref().unwrap_or(&[]).is_empty();
        !is_empty && term_matches(term, labels, name) == Some(true)
    })
}

/// A pod's `nodeSelector` against a node's labels (given as a lookup): every pair is a label.
pub fn node_selector_matches<'a>(
    selector: &BTreeMap<String, String>,
    label: impl Fn(&str) -> Option<&'a str>,
) -> bool {
    selector.iter().all(|(k, v)| label(k) == Some(v.as_str()))
}

/// R4: every `nodeSelector` pair equals a node label, and the required node affinity (if any)
/// matches.
pub fn pod_matches_node_selector_and_affinity(spec: &PodSpec, node: &Node) -> bool {
    if let Some(ns) = &spec.node_selector {
        let labels = node.metadata.labels.as_ref();
        if !node_selector_matches(ns, |k| labels.and_then(|l| l.get(k)).map(String::as_str)) {
            return false;
        }
    }
    match spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        }) {
        Some(required) => node_matches_node_selector_terms(required, node),
        None => true,
    }
}

/// The node a pod is bound or pinned to (DaemonSet "target node", upstream's
/// `GetTargetNodeName`): `spec.nodeName` if set, else the single value of the first required
/// node-affinity `matchFields` requirement on `metadata.name` with operator In. `None` when
/// there is none, or that requirement does not have exactly one value.
pub fn target_node_name(spec: &PodSpec) -> Option<&str> {
    if let Some(n) = spec.node_name.as_deref()
        && !n.is_empty()
    {
        return Some(n);
    }
    let required = spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?;
    required_node_name(required)
}

/// The node a required node selector pins a pod to: a `metadata.name In [one name]` field
/// requirement, as the DaemonSet controller writes it.
pub fn required_node_name(required: &NodeSelector) -> Option<&str> {
    for term in &required.node_selector_terms {
        for e in term.match_fields.iter().flatten() {
            if e.key == OBJECT_NAME_FIELD && e.operator == "In" {
                return match e.values.as_deref() {
                    Some([v]) => Some(v.as_str()),
                    _ => None,
                };
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use k8s_openapi::serde_json;

    fn tol(key: &str, op: &str, value: &str, effect: &str) -> Toleration {
        let opt = |s: &str| {
            if s.is_empty() {
                None
            } else {
                Some(s.to_string())
            }
        };
        Toleration {
            key: opt(key),
            operator: opt(op),
            value: opt(value),
            effect: opt(effect),
            toleration_seconds: None,
        }
    }

    fn taint(key: &str, value: &str, effect: &str) -> Taint {
        Taint {
            key: key.into(),
            value: if value.is_empty() {
                None
            } else {
                Some(value.into())
            },
            effect: effect.into(),
            time_added: None,
        }
    }

    #[test]
    fn tolerations() {
        let t = taint("foo", "bar", "NoSchedule");
        let cases = [
            (tol("foo", "Equal", "bar", "NoSchedule"), true),
            (tol("foo", "", "bar", "NoSchedule"), true),
            (tol("foo", "Equal", "bar", ""), true),
            (tol("foo", "Equal", "baz", "NoSchedule"), false),
            (tol("foo", "Equal", "bar", "NoExecute"), false),
            (tol("foo", "Exists", "", "NoSchedule"), true),
            (tol("foo", "Exists", "", ""), true),
            (tol("other", "Exists", "", ""), false),
            (tol("", "Exists", "", ""), true),
            (tol("", "Exists", "", "NoExecute"), false),
            (tol("", "", "bar", ""), true), // empty key skips the key check (upstream)
            (tol("foo", "Bogus", "bar", ""), false),
        ];
        for (i, (tl, want)) in cases.iter().enumerate() {
            assert_eq!(toleration_tolerates_taint(tl, &t), *want, "case {i}");
        }
        let empty_value = taint("k", "", "NoExecute");
        assert!(toleration_tolerates_taint(
            &tol("k", "Equal", "", ""),
            &empty_value
        ));
        assert!(!toleration_tolerates_taint(
            &tol("k", "Equal", "v", ""),
            &empty_value
        ));
    }

    #[test]
    fn untolerated_and_r5_r6() {
        let taints = vec![
            taint("a", "", "PreferNoSchedule"),
            taint("b", "", "NoSchedule"),
            taint("c", "", "NoExecute"),
        ];
        let none: Vec<Toleration> = vec![];
        let found = find_untolerated_taint(&taints, &none, |_| true).map(|t| t.key.as_str());
        assert_eq!(found, Some("a"));
        let found = find_untolerated_taint(&taints, &none, |t| t.effect != "PreferNoSchedule")
            .map(|t| t.key.as_str());
        assert_eq!(found, Some("b"));
        assert_eq!(taints_allow(&taints, &none), (false, false));
        let tol_c = vec![tol("c", "Exists", "", "")];
        assert_eq!(taints_allow(&taints, &tol_c), (false, true));
        let all = vec![tol("", "Exists", "", "")];
        assert_eq!(taints_allow(&taints, &all), (true, true));
        assert!(find_untolerated_taint(&taints, &all, |_| true).is_none());
        assert_eq!(taints_allow(&taints[..1], &none), (true, true));
    }

    fn node(name: &str, labels: &[(&str, &str)]) -> Node {
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn selector(v: serde_json::Value) -> NodeSelector {
        serde_json::from_value(v).expect("node selector")
    }

    #[test]
    fn node_selector_terms() {
        use serde_json::json;
        let n = node("n1", &[("disk", "ssd"), ("zone", "a"), ("cpus", "8")]);
        let cases = [
            (json!({"nodeSelectorTerms": []}), false),
            (json!({"nodeSelectorTerms": [{}]}), false),
            (
                json!({"nodeSelectorTerms": [{"matchExpressions": [], "matchFields": []}]}),
                false,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd", "hdd"]}]}]}),
                true,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]}]}),
                false,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": "gpu", "operator": "NotIn", "values": ["x"]}]}]}),
                true,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "Exists"}]}]}),
                true,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "DoesNotExist"}]}]}),
                false,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": "cpus", "operator": "Gt", "values": ["4"]}]}]}),
                true,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": "cpus", "operator": "Lt", "values": ["4"]}]}]}),
                false,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": "cpus", "operator": "Gt", "values": ["x"]}]}]}),
                false,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "Bogus", "values": ["ssd"]}]}]}),
                false,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": []}]}]}),
                false,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["a b"]}]}]}),
                false,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}),
                true,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}),
                false,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["n2"]}]}]}),
                true,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1", "n2"]}]}]}),
                false,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "Exists"}]}]}),
                false,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}], "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}),
                false,
            ),
            (
                json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}], "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}),
                true,
            ),
            // ORed terms; an invalid term is skipped, not fatal.
            (
                json!({"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "disk", "operator": "Bogus"}]},
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}
                ]}),
                true,
            ),
            (
                json!({"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                    {}
                ]}),
                false,
            ),
        ];
        for (i, (v, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                node_matches_node_selector_terms(&selector(v), &n),
                want,
                "case {i}"
            );
        }
    }

    #[test]
    fn pod_selector_and_affinity() {
        use serde_json::json;
        let n = node("n1", &[("disk", "ssd")]);
        let spec = |v: serde_json::Value| -> PodSpec { serde_json::from_value(v).expect("spec") };
        let cases = [
            (json!({"containers": []}), true),
            (json!({"containers": [], "nodeSelector": {}}), true),
            (
                json!({"containers": [], "nodeSelector": {"disk": "ssd"}}),
                true,
            ),
            (
                json!({"containers": [], "nodeSelector": {"disk": "hdd"}}),
                false,
            ),
            (
                json!({"containers": [], "nodeSelector": {"disk": "ssd", "gpu": "1"}}),
                false,
            ),
            (
                json!({"containers": [], "nodeSelector": {"disk": "ssd"}, "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}}}),
                true,
            ),
            (
                json!({"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n2"]}]}]}}}}),
                false,
            ),
            (
                json!({"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}}),
                false,
            ),
            (
                json!({"containers": [], "affinity": {"nodeAffinity": {}}}),
                true,
            ),
        ];
        for (i, (v, want)) in cases.into_iter().enumerate() {
            assert_eq!(
                pod_matches_node_selector_and_affinity(&spec(v), &n),
                want,
                "case {i}"
            );
        }
    }

    #[test]
    fn target_node() {
        use serde_json::json;
        let spec = |v: serde_json::Value| -> PodSpec { serde_json::from_value(v).expect("spec") };
        assert_eq!(
            target_node_name(&spec(json!({"containers": [], "nodeName": "a"}))),
            Some("a")
        );
        assert_eq!(target_node_name(&spec(json!({"containers": []}))), None);
        let pinned = spec(
            json!({"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n7"]}]}]}}}}),
        );
        assert_eq!(target_node_name(&pinned), Some("n7"));
        let two = spec(
            json!({"containers": [], "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a", "b"]}]}]}}}}),
        );
        assert_eq!(target_node_name(&two), None);
    }
}
