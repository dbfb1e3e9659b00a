//! Daemon pods: how the pod for a node is built (R15-R21), which node a pod belongs to (§0
//! target node), the order used to pick "the oldest" pod, and updatedness (§0, R60), the
//! latter over the pods the controller caches (`PodRecord`).
//!
//! Mirrors upstream's `pkg/controller/daemon/util/daemonset_util.go` and `GetPodFromTemplate`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{
    Affinity, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec,
    PodTemplateSpec, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use super::{
    CONTROLLER_REVISION_HASH_LABEL, Error, POD_TEMPLATE_GENERATION_LABEL,
    TEMPLATE_GENERATION_ANNOTATION,
};

use crate::trim::PodRecord;
use pernode_core::scheduling::OBJECT_NAME_FIELD;

/// The default tolerations of a daemon pod, in upstream's order (R20).
pub fn default_tolerations(host_network: bool) -> Vec<Toleration> {
    let mut keys = vec![
        ("node.kubernetes.io/not-ready", "NoExecute"),
        ("node.kubernetes.io/unreachable", "NoExecute"),
        ("node.kubernetes.io/disk-pressure", "NoSchedule"),
        ("node.kubernetes.io/memory-pressure", "NoSchedule"),
        ("node.kubernetes.io/pid-pressure", "NoSchedule"),
        ("node.kubernetes.io/unschedulable", "NoSchedule"),
    ];
    if host_network {
        keys.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    keys.into_iter()
        .map(|(key, effect)| Toleration {
            key: Some(key.to_owned()),
            operator: Some("Exists".to_owned()),
            effect: Some(effect.to_owned()),
            ..Toleration::default()
        })
        .collect()
}

/// Upstream's `Toleration.MatchToleration`: same key, operator, value and effect (absent and
/// empty are the same string in Go).
fn same_toleration(a: &Toleration, b: &Toleration) -> bool {
    fn s(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or("")
    }
    s(&a.key) == s(&b.key)
        && s(&a.operator) == s(&b.operator)
        && s(&a.value) == s(&b.value)
        && s(&a.effect) == s(&b.effect)
}

/// Merges the default tolerations into a pod spec (R21): an identical user toleration is
/// replaced in place by the default one, otherwise the default is appended. A node-critical
/// DaemonSet's pods (`pernode_core::node_critical`) also tolerate the taint joining nodes
/// carry until those very pods are Ready; no other pod does.
pub fn add_or_update_daemon_pod_tolerations(spec: &mut PodSpec, node_critical: bool) {
    let host_network = spec.host_network.unwrap_or(false);
    let mut tolerations = spec.tolerations.take().unwrap_or_default();
    let mut defaults = default_tolerations(host_network);
    if node_critical {
        defaults.push(pernode_core::node_critical::not_ready_toleration());
    }
    for default in defaults {
        let mut replaced = false;
        for t in tolerations.iter_mut() {
            if same_toleration(t, &default) {
                *t = default.clone();
                replaced = true;
            }
        }
        if !replaced {
            tolerations.push(default);
        }
    }
    spec.tolerations = Some(tolerations);
}

/// The required node affinity that pins a pod to `node` (R19).
fn node_name_term(node: &str) -> NodeSelectorTerm {
    NodeSelectorTerm {
        match_fields: Some(vec![NodeSelectorRequirement {
            key: OBJECT_NAME_FIELD.to_owned(),
            operator: "In".to_owned(),
            values: Some(vec![node.to_owned()]),
        }]),
        ..NodeSelectorTerm::default()
    }
}

/// Replaces the required node affinity terms by the single `metadata.name In [node]` term,
/// keeping preferred terms and pod (anti-)affinity (R19).
pub fn replace_node_name_affinity(affinity: Option<Affinity>, node: &str) -> Affinity {
    let mut affinity = affinity.unwrap_or_default();
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(NodeSelector {
        node_selector_terms: vec![node_name_term(node)],
    });
    affinity
}

/// Whether `ds` is annotated `pernode.io/node-critical: "true"`.
pub fn is_node_critical(ds: &DaemonSet) -> bool {
    pernode_core::node_critical::is_node_critical(ds.metadata.annotations.as_ref())
}

/// The template generation of a DaemonSet (R143), or `None` when absent or unparsable (the
/// controller then relies on the hash alone, as upstream).
pub fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.metadata
        .annotations
        .as_ref()?
        .get(TEMPLATE_GENERATION_ANNOTATION)?
        .parse()
        .ok()
}

/// The controller ownerReference the DaemonSet puts on its pods and revisions (R17).
pub fn controller_ref(ds: &DaemonSet) -> Result<OwnerReference, Error> {
    Ok(OwnerReference {
        api_version: "apps/v1".to_owned(),
        kind: "DaemonSet".to_owned(),
        name: ds
            .metadata
            .name
            .clone()
            .ok_or(Error::Missing("metadata.name"))?,
        uid: ds
            .metadata
            .uid
            .clone()
            .ok_or(Error::Missing("metadata.uid"))?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// The template pods are created from (upstream `CreatePodTemplate`): default tolerations
/// merged, `pod-template-generation` and `controller-revision-hash` labels added (R16).
pub fn pod_template(ds: &DaemonSet, generation: Option<i64>, hash: &str) -> PodTemplateSpec {
    let mut template = ds
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    let spec = template.spec.get_or_insert_with(PodSpec::default);
    add_or_update_daemon_pod_tolerations(spec, is_node_critical(ds));
    let meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    let labels = meta.labels.get_or_insert_with(BTreeMap::new);
    if let Some(generation) = generation {
        labels.insert(
            POD_TEMPLATE_GENERATION_LABEL.to_owned(),
            generation.to_string(),
        );
    }
    if !hash.is_empty() {
        labels.insert(CONTROLLER_REVISION_HASH_LABEL.to_owned(), hash.to_owned());
    }
    template
}

/// The prefix of generated pod names: `<ds-name>-` (R15); upstream falls back to the bare name
/// when the prefix is not a valid generateName (it always is for a valid DaemonSet name).
pub fn generate_name(ds_name: &str) -> String {
    format!("{ds_name}-")
}

/// The pod to create for `node` from a template made by [`pod_template`] (R15-R19):
/// labels, annotations and finalizers of the template, `generateName`, the DaemonSet's
/// namespace, one controller ownerReference, and the node-name affinity.
pub fn new_pod(
    template: &PodTemplateSpec,
    namespace: &str,
    owner: &OwnerReference,
    node: &str,
) -> Pod {
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.affinity = Some(replace_node_name_affinity(spec.affinity.take(), node));
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(generate_name(&owner.name)),
            namespace: Some(namespace.to_owned()),
            labels: tmeta.labels,
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![owner.clone()]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// The JSON bodies of a sync's new pods. They differ only in the node their affinity names, so
/// the pod is encoded once, with a placeholder node, and each body is that encoding with the
/// node's name in the placeholder's place: building and encoding a typed pod per node was most
/// of the controller's own share of a 10,000-node converge.
pub struct PodBodies {
    /// The encoding split at the placeholder, or `None` when the template itself contains the
    /// placeholder text (then each pod is built and encoded whole).
    parts: Option<Vec<Vec<u8>>>,
    template: PodTemplateSpec,
    namespace: String,
    owner: OwnerReference,
}

/// A node name no node has (NUL is not allowed in names).
const NODE_PLACEHOLDER: &str = "\u{0}pernode-node\u{0}";

impl PodBodies {
    pub fn new(
        template: PodTemplateSpec,
        namespace: &str,
        owner: OwnerReference,
    ) -> Result<PodBodies, serde_json::Error> {
        let placeholder = serde_json::to_vec(NODE_PLACEHOLDER)?;
        let template_json = serde_json::to_vec(&template)?;
        let parts = if memchr::memmem::find(&template_json, &placeholder).is_some() {
            None
        } else {
            let pod = serde_json::to_vec(&new_pod(&template, namespace, &owner, NODE_PLACEHOLDER))?;
            let mut parts = Vec::new();
            let mut start = 0;
            for at in memchr::memmem::find_iter(&pod, &placeholder) {
                parts.push(pod[start..at].to_vec());
                start = at + placeholder.len();
            }
            parts.push(pod[start..].to_vec());
            Some(parts)
        };
        Ok(PodBodies {
            parts,
            template,
            namespace: namespace.to_owned(),
            owner,
        })
    }

    /// The body of the pod for `node`: what encoding [`new_pod`] gives.
    pub fn for_node(&self, node: &str) -> Result<Vec<u8>, serde_json::Error> {
        let Some(parts) = &self.parts else {
            return serde_json::to_vec(&new_pod(
                &self.template,
                &self.namespace,
                &self.owner,
                node,
            ));
        };
        let node = serde_json::to_vec(node)?;
        let len = parts.iter().map(Vec::len).sum::<usize>() + node.len() * (parts.len() - 1);
        let mut body = Vec::with_capacity(len);
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                body.extend_from_slice(&node);
            }
            body.extend_from_slice(part);
        }
        Ok(body)
    }
}

/// The node a daemon pod belongs to (§0 target node), as pernode-core's `target_node_name`
/// found it when the pod was cached.
pub fn target_node_name(pod: &PodRecord) -> Option<&str> {
    pod.target_node.as_deref()
}

/// Pod order of §0 (upstream `podByCreationTimestampAndPhase`): bound pods first, then older
/// creationTimestamp, then name.
pub fn pod_order(a: &PodRecord, b: &PodRecord) -> Ordering {
    match (a.bound, b.bound) {
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    // An absent timestamp is Go's zero time, older than any real one.
    a.created.cmp(&b.created).then_with(|| a.name.cmp(&b.name))
}

/// The pod's `controller-revision-hash` label.
pub fn pod_hash(pod: &PodRecord) -> Option<&str> {
    pod.labels.get(CONTROLLER_REVISION_HASH_LABEL)
}

/// Updatedness (§0): the hash label equals the current hash, or the template-generation label
/// equals the template generation.
pub fn is_pod_updated(pod: &PodRecord, hash: &str, generation: Option<i64>) -> bool {
    // Compared as text, as upstream does, without allocating: this runs per pod per sync.
    let template_matches = generation.is_some_and(|g| {
        pod.labels
            .get(POD_TEMPLATE_GENERATION_LABEL)
            .is_some_and(|l| is_decimal_of(l, g))
    });
    let hash_matches = !hash.is_empty() && pod_hash(pod) == Some(hash);
    hash_matches || template_matches
}

/// Whether `text` is exactly `g` printed in decimal (what `g.to_string() == text` says).
fn is_decimal_of(text: &str, g: i64) -> bool {
    let mut buf = [0u8; 20];
    let mut pos = buf.len();
    let mut n = g.unsigned_abs();
    loop {
        pos -= 1;
        buf[pos] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = &buf[pos..];
    match text.as_bytes().split_first() {
        Some((b'-', rest)) => g < 0 && rest == digits,
        _ => g >= 0 && text.as_bytes() == digits,
    }
}

/// The pod's phase, `""` when unset.
pub fn phase(pod: &PodRecord) -> &str {
    pod.phase.as_deref().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trim::{ControllerPod, kept_as};

    #[test]
    fn decimal_comparison_matches_to_string() {
        for g in [0i64, 1, 7, 10, 42, 1234567, -1, -90, i64::MAX, i64::MIN] {
            assert!(is_decimal_of(&g.to_string(), g), "{g}");
            assert!(!is_decimal_of(&format!("0{g}"), g), "{g}");
            assert!(!is_decimal_of(&format!("+{g}"), g), "{g}");
            assert!(!is_decimal_of(&(g.wrapping_add(1)).to_string(), g), "{g}");
        }
        assert!(!is_decimal_of("", 0));
        assert!(!is_decimal_of("-0", 0));
    }
    use crate::daemonset::testutil::ds;
    use k8s_openapi::api::core::v1::{PodAffinity, PreferredSchedulingTerm};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;

    fn build(ds: &DaemonSet, node: &str) -> Pod {
        let template = pod_template(ds, template_generation(ds), "abc");
        new_pod(&template, "default", &controller_ref(ds).unwrap(), node)
    }

    #[test]
    fn a_pod_body_for_a_node_is_the_encoding_of_its_pod() {
        let plain = ds("nginx");
        let mut with_affinity = ds("agent");
        with_affinity
            .spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap()
            .affinity = serde_json::from_value(serde_json::json!({
                "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "disk", "operator": "In", "values": ["ssd"]}]}]}},
                "podAntiAffinity": {}}))
        .unwrap();
        // A template holding the placeholder text is encoded pod by pod.
        let mut odd = ds("odd");
        let meta = odd
            .spec
            .as_mut()
            .unwrap()
            .template
            .metadata
            .as_mut()
            .unwrap();
        meta.annotations = Some([("x".to_owned(), NODE_PLACEHOLDER.to_owned())].into());
        for d in [plain, with_affinity, odd] {
            let template = pod_template(&d, template_generation(&d), "abc");
            let owner = controller_ref(&d).unwrap();
            let bodies = PodBodies::new(template.clone(), "default", owner.clone()).unwrap();
            assert_eq!(
                bodies.parts.is_none(),
                d.metadata.name.as_deref() == Some("odd")
            );
            for node in ["n1", "node-10000", "a.b-c", "quote\"d"] {
                let expected =
                    serde_json::to_vec(&new_pod(&template, "default", &owner, node)).unwrap();
                assert_eq!(
                    String::from_utf8(bodies.for_node(node).unwrap()).unwrap(),
                    String::from_utf8(expected).unwrap()
                );
            }
        }
    }

    #[test]
    fn r15_pod_copies_template_metadata_and_uses_generate_name() {
        let mut d = ds("nginx");
        let t = d.spec.as_mut().unwrap().template.metadata.as_mut().unwrap();
        t.annotations = Some([("a".to_owned(), "b".to_owned())].into());
        t.finalizers = Some(vec!["example.com/f".to_owned()]);
        let pod = build(&d, "n1");
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("nginx-"));
        assert_eq!(pod.metadata.name, None);
        assert_eq!(pod.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(pod.metadata.annotations.unwrap()["a"], "b");
        assert_eq!(pod.metadata.finalizers.unwrap(), vec!["example.com/f"]);
        assert_eq!(pod.metadata.labels.as_ref().unwrap()["app"], "nginx");
        assert_eq!(
            pod.spec.unwrap().containers[0].image.as_deref(),
            Some("nginx")
        );
    }

    #[test]
    fn r16_pod_labels_hash_and_template_generation() {
        let pod = build(&ds("nginx"), "n1");
        let labels = pod.metadata.labels.unwrap();
        assert_eq!(labels[CONTROLLER_REVISION_HASH_LABEL], "abc");
        assert_eq!(labels[POD_TEMPLATE_GENERATION_LABEL], "1");
    }

    #[test]
    fn r17_pod_has_one_controller_owner_reference() {
        let pod = build(&ds("nginx"), "n1");
        let refs = pod.metadata.owner_references.unwrap();
        assert_eq!(refs.len(), 1);
        let r = &refs[0];
        assert_eq!(
            (
                r.api_version.as_str(),
                r.kind.as_str(),
                r.name.as_str(),
                r.uid.as_str()
            ),
            ("apps/v1", "DaemonSet", "nginx", "uid-nginx")
        );
        assert_eq!(r.controller, Some(true));
        assert_eq!(r.block_owner_deletion, Some(true));
    }

    #[test]
    fn r18_node_name_left_as_in_template() {
        let pod = build(&ds("nginx"), "n1");
        assert_eq!(pod.spec.unwrap().node_name, None);
        let mut d = ds("nginx");
        d.spec
            .as_mut()
            .unwrap()
            .template
            .spec
            .as_mut()
            .unwrap()
            .node_name = Some("n1".into());
        assert_eq!(
            build(&d, "n1").spec.unwrap().node_name.as_deref(),
            Some("n1")
        );
    }

    #[test]
    fn r19_required_affinity_replaced_preferred_kept() {
        let mut d = ds("nginx");
        let spec = d.spec.as_mut().unwrap().template.spec.as_mut().unwrap();
        spec.affinity = Some(Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                    node_selector_terms: vec![NodeSelectorTerm {
                        match_expressions: Some(vec![NodeSelectorRequirement {
                            key: "zone".into(),
                            operator: "In".into(),
                            values: Some(vec!["a".into()]),
                        }]),
                        ..NodeSelectorTerm::default()
                    }],
                }),
                preferred_during_scheduling_ignored_during_execution: Some(vec![
                    PreferredSchedulingTerm {
                        weight: 1,
                        preference: NodeSelectorTerm::default(),
                    },
                ]),
            }),
            pod_affinity: Some(PodAffinity::default()),
            pod_anti_affinity: None,
        });
        let pod = build(&d, "n1");
        let aff = pod.spec.as_ref().unwrap().affinity.clone().unwrap();
        let na = aff.node_affinity.unwrap();
        let terms = na
            .required_during_scheduling_ignored_during_execution
            .unwrap()
            .node_selector_terms;
        assert_eq!(terms, vec![node_name_term("n1")]);
        assert_eq!(
            na.preferred_during_scheduling_ignored_during_execution
                .unwrap()
                .len(),
            1
        );
        assert!(aff.pod_affinity.is_some());
        assert_eq!(target_node_name(&rec(&pod)), Some("n1"));
        // Absent affinity is created.
        let pod = build(&ds("x"), "n2");
        assert_eq!(target_node_name(&rec(&pod)), Some("n2"));
    }

    fn tol(
        key: &str,
        op: &str,
        value: Option<&str>,
        effect: &str,
        secs: Option<i64>,
    ) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some(op.into()),
            value: value.map(Into::into),
            effect: Some(effect.into()),
            toleration_seconds: secs,
        }
    }

    #[test]
    fn r20_default_tolerations_in_order_network_only_with_host_network() {
        let keys = |host: bool| {
            default_tolerations(host)
                .into_iter()
                .map(|t| format!("{}:{}", t.key.unwrap(), t.effect.unwrap()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(false),
            vec![
                "node.kubernetes.io/not-ready:NoExecute",
                "node.kubernetes.io/unreachable:NoExecute",
                "node.kubernetes.io/disk-pressure:NoSchedule",
                "node.kubernetes.io/memory-pressure:NoSchedule",
                "node.kubernetes.io/pid-pressure:NoSchedule",
                "node.kubernetes.io/unschedulable:NoSchedule",
            ]
        );
        assert_eq!(
            keys(true).last().unwrap(),
            "node.kubernetes.io/network-unavailable:NoSchedule"
        );
        assert!(
            default_tolerations(true)
                .iter()
                .all(|t| t.operator.as_deref() == Some("Exists")
                    && t.value.is_none()
                    && t.toleration_seconds.is_none())
        );
    }

    #[test]
    fn r21_identical_toleration_replaced_in_place_others_appended() {
        let mut spec = PodSpec {
            tolerations: Some(vec![
                tol("custom", "Exists", None, "NoSchedule", None),
                tol(
                    "node.kubernetes.io/not-ready",
                    "Exists",
                    None,
                    "NoExecute",
                    Some(30),
                ),
                tol(
                    "node.kubernetes.io/unreachable",
                    "Equal",
                    Some("x"),
                    "NoExecute",
                    Some(5),
                ),
            ]),
            ..PodSpec::default()
        };
        add_or_update_daemon_pod_tolerations(&mut spec, false);
        let t = spec.tolerations.unwrap();
        assert_eq!(t.len(), 3 + 5);
        assert_eq!(t[0].key.as_deref(), Some("custom"));
        // Same key/operator/value/effect: replaced in place, tolerationSeconds lost.
        assert_eq!(
            t[1],
            tol(
                "node.kubernetes.io/not-ready",
                "Exists",
                None,
                "NoExecute",
                None
            )
        );
        // Different operator: kept, and the default appended.
        assert_eq!(t[2].toleration_seconds, Some(5));
        assert_eq!(t[3].key.as_deref(), Some("node.kubernetes.io/unreachable"));
    }

    /// A pod as the controller's cache keeps it.
    fn rec(pod: &Pod) -> PodRecord {
        kept_as::<ControllerPod>(pod)
    }

    fn pod(name: &str, node: Option<&str>, secs: i64) -> PodRecord {
        rec(&Pod {
            metadata: ObjectMeta {
                name: Some(name.into()),
                creation_timestamp: Some(Time(Timestamp::from_second(secs).unwrap())),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: node.map(Into::into),
                ..PodSpec::default()
            }),
            status: None,
        })
    }

    #[test]
    fn pod_order_bound_first_then_oldest_then_name() {
        let mut pods = [
            pod("d", None, 1),
            pod("c", Some("n"), 5),
            pod("b", Some("n"), 3),
            pod("a", Some("n"), 3),
        ];
        pods.sort_by(pod_order);
        let names: Vec<_> = pods.iter().map(|p| p.name.to_string()).collect();
        assert_eq!(names, vec!["a", "b", "c", "d"]);
    }

    #[test]
    fn target_node_requires_single_value() {
        let mut p = build(&ds("x"), "n1");
        let req = &mut p
            .spec
            .as_mut()
            .unwrap()
            .affinity
            .as_mut()
            .unwrap()
            .node_affinity
            .as_mut()
            .unwrap()
            .required_during_scheduling_ignored_during_execution
            .as_mut()
            .unwrap()
            .node_selector_terms[0]
            .match_fields
            .as_mut()
            .unwrap()[0];
        req.values = Some(vec!["a".into(), "b".into()]);
        assert_eq!(target_node_name(&rec(&p)), None);
        p.spec.as_mut().unwrap().node_name = Some("bound".into());
        assert_eq!(target_node_name(&rec(&p)), Some("bound"));
    }

    #[test]
    fn r60_updated_by_hash_or_template_generation() {
        let p = rec(&build(&ds("x"), "n1"));
        assert!(is_pod_updated(&p, "abc", None));
        assert!(is_pod_updated(&p, "zzz", Some(1)));
        assert!(!is_pod_updated(&p, "zzz", Some(2)));
        assert!(!is_pod_updated(&p, "", None));
    }
}
