//! What the simulator decodes of Nodes, Pods and Leases, and what it keeps of a pod.
//!
//! Its watches see every Node and every Pod of the cluster. k8s-openapi's types decode every
//! field (a daemon pod is ~12.7 KB decoded for ~2.9 KB of JSON: managed fields, tolerations,
//! affinity, resources, ...), which costs CPU on every watch event and memory for as long as
//! it is cached. The types here declare only the fields the simulator reads; serde skips the
//! rest without allocating. They implement k8s-openapi's `Resource` and `Metadata` (the
//! metadata is an `ObjectMeta` with only the fields the simulator reads), so `kube::Api` and
//! the watcher use them like the generated types.
//!
//! [`PodRecord`] is what the fleet keeps of a pod: the compact spec and status, with
//! [`PodFacts`] so the shared status functions judge and build its status.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeAddress, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::status::{
    ConditionFacts, ContainerFacts, ContainerStatusFacts, KUBELET_POD_CONDITIONS, NodeFacts,
    NodeStatusFacts, PodFacts, PodStatusFacts, SIMULATE_EXIT_ANNOTATION, SIMULATED_ANNOTATION,
};

/// Annotations the simulator reads; metadata decoding drops every other one.
const KEPT_ANNOTATIONS: [&str; 2] = [SIMULATED_ANNOTATION, SIMULATE_EXIT_ANNOTATION];

/// Values of enum-like fields (condition status, pod phase, QoS class) kept without allocating.
const WORDS: [&str; 10] = [
    "True",
    "False",
    "Unknown",
    "Pending",
    "Running",
    "Succeeded",
    "Failed",
    "BestEffort",
    "Burstable",
    "Guaranteed",
];

// ---- metadata -------------------------------------------------------------------------------

/// The metadata fields the simulator (and kube's watcher: resourceVersion) reads.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CompactMeta {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    deletion_timestamp: Option<Time>,
    deletion_grace_period_seconds: Option<i64>,
    #[serde(default, deserialize_with = "kept_annotations")]
    annotations: Option<BTreeMap<String, String>>,
}

/// `metadata` with only [`CompactMeta`]'s fields set.
fn compact_meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    let m = CompactMeta::deserialize(d)?;
    Ok(ObjectMeta {
        name: m.name,
        namespace: m.namespace,
        uid: m.uid,
        resource_version: m.resource_version,
        deletion_timestamp: m.deletion_timestamp,
        deletion_grace_period_seconds: m.deletion_grace_period_seconds,
        annotations: m.annotations,
        ..Default::default()
    })
}

/// A map key, recognised as one of [`KEPT_ANNOTATIONS`] without allocating.
struct KeptKey(Option<&'static str>);

impl<'de> Deserialize<'de> for KeptKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeptKey;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an annotation key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeptKey, E> {
                Ok(KeptKey(KEPT_ANNOTATIONS.iter().copied().find(|k| *k == v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// The annotations among [`KEPT_ANNOTATIONS`]; the others are skipped unread.
fn kept_annotations<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<BTreeMap<String, String>>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Option<BTreeMap<String, String>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a map of annotations")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(V)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut kept = BTreeMap::new();
            while let Some(KeptKey(key)) = map.next_key()? {
                match key {
                    Some(key) => {
                        kept.insert(key.to_string(), map.next_value()?);
                    }
                    None => {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok((!kept.is_empty()).then_some(kept))
        }
    }
    d.deserialize_option(V)
}

/// A string that is almost always one of [`WORDS`], kept without allocating when it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Word(Cow<'static, str>);

impl Word {
    fn new(s: &str) -> Word {
        Word(match WORDS.iter().find(|w| **w == s) {
            Some(w) => Cow::Borrowed(*w),
            None => Cow::Owned(s.to_string()),
        })
    }

    fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Word {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Word;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Word, E> {
                Ok(Word::new(v))
            }
        }
        d.deserialize_str(V)
    }
}

/// A list, without the spare capacity decoding leaves (it grows a vector to 4 elements for
/// one): these vectors are cached for as long as their pod lives.
fn exact_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let mut v = Option::<Vec<T>>::deserialize(d)?.unwrap_or_default();
    v.shrink_to_fit();
    Ok(v)
}

/// [`exact_vec`] for a list that may be absent.
fn exact_opt_vec<'de, D, T>(d: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let mut v = Option::<Vec<T>>::deserialize(d)?;
    if let Some(v) = v.as_mut() {
        v.shrink_to_fit();
    }
    Ok(v)
}

fn timestamp(t: &Option<Time>) -> Option<Timestamp> {
    t.as_ref().map(|t| t.0)
}

// ---- nodes ----------------------------------------------------------------------------------

/// A Node as the simulator decodes it: metadata, and the status fields it compares with what
/// it posts ([`crate::status::node_status_current`]) or keeps ([`crate::status::OwnConditionTimes`]).
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct SimNode {
    #[serde(default, deserialize_with = "compact_meta")]
    pub metadata: ObjectMeta,
    pub status: Option<SimNodeStatus>,
}

pernode_core::resource_like!(SimNode => Node);

/// The parts of `status` of a Node the simulator reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SimNodeStatus {
    capacity: Option<BTreeMap<String, Quantity>>,
    allocatable: Option<BTreeMap<String, Quantity>>,
    conditions: Option<Vec<SimNodeCondition>>,
    addresses: Option<Vec<NodeAddress>>,
    node_info: Option<SimNodeInfo>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SimNodeCondition {
    #[serde(rename = "type", default)]
    type_: String,
    #[serde(default)]
    status: Word,
    last_transition_time: Option<Time>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SimNodeInfo {
    #[serde(default)]
    kubelet_version: String,
    #[serde(default)]
    container_runtime_version: String,
}

impl NodeFacts for SimNode {
    type Status = SimNodeStatus;

    fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }

    fn uid(&self) -> &str {
        self.metadata.uid.as_deref().unwrap_or("")
    }

    fn status(&self) -> Option<&SimNodeStatus> {
        self.status.as_ref()
    }
}

impl NodeStatusFacts for SimNodeStatus {
    fn capacity(&self) -> Option<&BTreeMap<String, Quantity>> {
        self.capacity.as_ref()
    }

    fn allocatable(&self) -> Option<&BTreeMap<String, Quantity>> {
        self.allocatable.as_ref()
    }

    fn conditions(&self) -> Option<impl Iterator<Item = ConditionFacts<'_>>> {
        let conditions = self.conditions.as_ref()?;
        Some(conditions.iter().map(|c| ConditionFacts {
            type_: &c.type_,
            status: c.status.as_str(),
            last_transition: timestamp(&c.last_transition_time),
        }))
    }

    fn addresses(&self) -> Option<&[NodeAddress]> {
        self.addresses.as_deref()
    }

    fn versions(&self) -> Option<(&str, &str)> {
        let info = self.node_info.as_ref()?;
        Some((&info.kubelet_version, &info.container_runtime_version))
    }
}

// ---- leases ---------------------------------------------------------------------------------

/// A Lease as the simulator decodes the answers to its renewals: metadata only (it never reads
/// them).
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct SimLease {
    #[serde(default, deserialize_with = "compact_meta")]
    pub metadata: ObjectMeta,
}

pernode_core::resource_like!(SimLease => Lease);

// ---- pods -----------------------------------------------------------------------------------

/// A Pod as the simulator decodes it: metadata, and the spec and status fields it reads.
#[derive(Clone, Debug, Default, Deserialize)]
pub(crate) struct SimPod {
    #[serde(default, deserialize_with = "compact_meta")]
    pub metadata: ObjectMeta,
    pub spec: Option<SimPodSpec>,
    pub status: Option<SimPodStatus>,
}

pernode_core::resource_like!(SimPod => Pod);

/// The parts of a pod's `spec` the simulator reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SimPodSpec {
    pub node_name: Option<String>,
    host_network: Option<bool>,
    termination_grace_period_seconds: Option<i64>,
    #[serde(default, deserialize_with = "exact_vec")]
    containers: Vec<SimContainer>,
    #[serde(default, deserialize_with = "exact_opt_vec")]
    init_containers: Option<Vec<SimContainer>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct SimContainer {
    #[serde(default)]
    name: String,
    image: Option<String>,
}

/// The parts of a pod's `status` the simulator reads: what [`crate::status::status_reflects`]
/// judges and what [`crate::status::pod_status`] carries over.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SimPodStatus {
    phase: Option<Word>,
    start_time: Option<Time>,
    #[serde(rename = "podIP")]
    pod_ip: Option<String>,
    qos_class: Option<Word>,
    #[serde(default, deserialize_with = "pod_conditions")]
    conditions: Vec<SimPodCondition>,
    #[serde(default, deserialize_with = "exact_opt_vec")]
    container_statuses: Option<Vec<SimContainerStatus>>,
}

/// A pod condition: the kubelet's own are kept as far as status building reads them, the
/// others in full (status building writes them back as they are).
#[derive(Clone, Debug, PartialEq)]
enum SimPodCondition {
    Kubelet {
        type_: &'static str,
        status: Word,
        last_transition: Option<Timestamp>,
    },
    Other(Box<PodCondition>),
}

/// `status.conditions`, split as [`SimPodCondition`] says, in a vector of their exact count.
fn pod_conditions<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<SimPodCondition>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<SimPodCondition>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a list of pod conditions")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(V)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut conditions = Vec::new();
            while let Some(c) = seq.next_element::<PodCondition>()? {
                let kubelet = KUBELET_POD_CONDITIONS
                    .iter()
                    .copied()
                    .find(|t| *t == c.type_);
                conditions.push(match kubelet {
                    Some(type_) => SimPodCondition::Kubelet {
                        type_,
                        status: Word::new(&c.status),
                        last_transition: timestamp(&c.last_transition_time),
                    },
                    None => SimPodCondition::Other(Box::new(c)),
                });
            }
            conditions.shrink_to_fit();
            Ok(conditions)
        }
    }
    d.deserialize_option(V)
}

#[derive(Clone, Debug, Default, Deserialize)]
struct SimContainerStatus {
    #[serde(default)]
    ready: bool,
    state: Option<SimContainerState>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct SimContainerState {
    waiting: Option<SimWaiting>,
    running: Option<SimRunning>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct SimWaiting {
    reason: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SimRunning {
    started_at: Option<Time>,
}

/// What the simulator keeps of a pod it runs: no metadata beyond what it reads (uid,
/// deletion, the simulate-exit annotation), the compact spec and status.
#[derive(Clone, Debug, Default)]
pub(crate) struct PodRecord {
    pub uid: String,
    simulate_exit: Option<String>,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// `metadata.deletionGracePeriodSeconds`.
    deletion_grace_period_seconds: Option<i64>,
    pub spec: SimPodSpec,
    status: Option<SimPodStatus>,
}

impl PodRecord {
    /// The record of a decoded pod (its namespace and name are the cache's key).
    pub fn new(pod: SimPod) -> PodRecord {
        let SimPod {
            metadata,
            spec,
            status,
        } = pod;
        PodRecord {
            uid: metadata.uid.unwrap_or_default(),
            simulate_exit: metadata
                .annotations
                .and_then(|mut a| a.remove(SIMULATE_EXIT_ANNOTATION)),
            terminating: metadata.deletion_timestamp.is_some(),
            deletion_grace_period_seconds: metadata.deletion_grace_period_seconds,
            spec: spec.unwrap_or_default(),
            status,
        }
    }

    /// `spec.nodeName` (empty if unbound).
    pub fn node_name(&self) -> &str {
        self.spec.node_name.as_deref().unwrap_or("")
    }

    /// The grace period it gets when deleted: `metadata.deletionGracePeriodSeconds`, else
    /// `spec.terminationGracePeriodSeconds`.
    pub fn grace_period_seconds(&self) -> Option<i64> {
        self.deletion_grace_period_seconds
            .or(self.spec.termination_grace_period_seconds)
    }

    /// Succeeded or Failed (as `pernode_core::pod::is_pod_terminal`).
    pub fn is_terminal(&self) -> bool {
        pernode_core::pod::is_terminal_phase(self.status().and_then(|s| s.phase()))
    }
}

fn container_facts(c: &SimContainer) -> ContainerFacts<'_> {
    ContainerFacts {
        name: &c.name,
        image: c.image.as_deref(),
    }
}

impl PodFacts for PodRecord {
    type Status = SimPodStatus;

    fn uid(&self) -> &str {
        &self.uid
    }

    fn simulate_exit(&self) -> Option<&str> {
        self.simulate_exit.as_deref()
    }

    fn host_network(&self) -> bool {
        self.spec.host_network.unwrap_or(false)
    }

    fn containers(&self) -> impl ExactSizeIterator<Item = ContainerFacts<'_>> {
        self.spec.containers.iter().map(container_facts)
    }

    fn init_containers(&self) -> Option<impl Iterator<Item = ContainerFacts<'_>>> {
        let inits = self.spec.init_containers.as_ref()?;
        Some(inits.iter().map(container_facts))
    }

    fn status(&self) -> Option<&SimPodStatus> {
        self.status.as_ref()
    }
}

impl PodStatusFacts for SimPodStatus {
    fn phase(&self) -> Option<&str> {
        self.phase.as_ref().map(Word::as_str)
    }

    fn start_time(&self) -> Option<Timestamp> {
        timestamp(&self.start_time)
    }

    fn pod_ip(&self) -> Option<&str> {
        self.pod_ip.as_deref()
    }

    fn qos_class(&self) -> Option<&str> {
        self.qos_class.as_ref().map(Word::as_str)
    }

    fn container_statuses(&self) -> impl ExactSizeIterator<Item = ContainerStatusFacts<'_>> {
        let statuses = self.container_statuses.as_deref().unwrap_or(&[]);
        statuses.iter().map(|c| {
            let state = c.state.as_ref();
            ContainerStatusFacts {
                ready: c.ready,
                waiting_reason: state
                    .and_then(|s| s.waiting.as_ref())
                    .and_then(|w| w.reason.as_deref()),
                running_since: state
                    .and_then(|s| s.running.as_ref())
                    .and_then(|r| timestamp(&r.started_at)),
            }
        })
    }

    fn conditions(&self) -> impl Iterator<Item = ConditionFacts<'_>> {
        self.conditions.iter().map(|c| match c {
            SimPodCondition::Kubelet {
                type_,
                status,
                last_transition,
            } => ConditionFacts {
                type_,
                status: status.as_str(),
                last_transition: *last_transition,
            },
            SimPodCondition::Other(c) => ConditionFacts {
                type_: &c.type_,
                status: &c.status,
                last_transition: timestamp(&c.last_transition_time),
            },
        })
    }

    fn other_conditions(&self) -> impl Iterator<Item = &PodCondition> {
        self.conditions.iter().filter_map(|c| match c {
            SimPodCondition::Other(c) => Some(&**c),
            SimPodCondition::Kubelet { .. } => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{
        NodeProfile, Outcome, OwnConditionTimes, PodAddresses, node_ip, node_status_current,
        node_status_patch, pod_ip, pod_status, requested_outcome, status_reflects,
    };
    use serde_json::json;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp literal")
    }

    /// A daemon pod as the API serves it, with much the simulator never reads.
    fn daemon_pod_json() -> serde_json::Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "agent-x7k2p",
                "generateName": "agent-",
                "namespace": "bench",
                "uid": "0b9c-11",
                "resourceVersion": "4711",
                "creationTimestamp": "2025-01-01T00:00:00Z",
                "deletionTimestamp": "2025-01-01T00:10:00Z",
                "deletionGracePeriodSeconds": 5,
                "labels": {"app": "agent", "controller-revision-hash": "6d4f"},
                "annotations": {
                    "kubectl.kubernetes.io/restartedAt": "now",
                    SIMULATE_EXIT_ANNOTATION: "3",
                },
                "ownerReferences": [{
                    "apiVersion": "apps/v1", "kind": "DaemonSet", "name": "agent",
                    "uid": "ds-1", "controller": true, "blockOwnerDeletion": true,
                }],
                "managedFields": [{
                    "manager": "pernode-controllers", "operation": "Update",
                    "apiVersion": "v1", "time": "2025-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}},
                }],
            },
            "spec": {
                "nodeName": "node-7",
                "terminationGracePeriodSeconds": 30,
                "hostNetwork": true,
                "initContainers": [{"name": "init", "image": "busybox:1"}],
                "containers": [{
                    "name": "main",
                    "image": "nginx:1.27",
                    "command": ["nginx"],
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "10m"}},
                    "env": [{"name": "A", "value": "b"}],
                }],
                "tolerations": [
                    {"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                     "effect": "NoExecute"},
                ],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [{
                        "key": "metadata.name", "operator": "In", "values": ["node-7"],
                    }]}],
                }}},
            },
            "status": {
                "phase": "Running",
                "qosClass": "Burstable",
                "hostIP": "10.0.0.7",
                "podIP": "100.64.0.9",
                "podIPs": [{"ip": "100.64.0.9"}],
                "startTime": "2025-01-01T00:00:01Z",
                "conditions": [
                    {"type": "Ready", "status": "True",
                     "lastTransitionTime": "2025-01-01T00:00:02Z"},
                    {"type": "DisruptionTarget", "status": "True",
                     "reason": "DeletionByTaintManager", "message": "Taint manager",
                     "lastTransitionTime": "2025-01-01T00:00:03Z"},
                ],
                "containerStatuses": [{
                    "name": "main", "image": "nginx:1.27", "imageID": "x", "ready": true,
                    "restartCount": 0, "started": true,
                    "state": {"running": {"startedAt": "2025-01-01T00:00:02Z"}},
                }],
            },
        })
    }

    #[test]
    fn pods_decode_compactly_with_what_status_building_reads() {
        let text = daemon_pod_json().to_string();
        let pod: SimPod = serde_json::from_str(&text).expect("compact pod");
        let meta = &pod.metadata;
        assert_eq!(meta.name.as_deref(), Some("agent-x7k2p"));
        assert_eq!(meta.namespace.as_deref(), Some("bench"));
        assert_eq!(meta.resource_version.as_deref(), Some("4711"));
        // Only what the simulator reads: no labels, owners, managed fields, other annotations.
        assert!(meta.labels.is_none() && meta.owner_references.is_none());
        assert!(meta.managed_fields.is_none() && meta.creation_timestamp.is_none());
        assert_eq!(
            meta.annotations,
            Some([(SIMULATE_EXIT_ANNOTATION.to_string(), "3".to_string())].into())
        );

        let record = PodRecord::new(pod);
        assert_eq!(record.uid(), "0b9c-11");
        assert_eq!(record.node_name(), "node-7");
        assert!(record.terminating);
        assert_eq!(record.grace_period_seconds(), Some(5));
        assert!(record.host_network());
        assert!(!record.is_terminal());
        assert_eq!(record.simulate_exit(), Some("3"));
        assert_eq!(requested_outcome(&record), Outcome::Exit(3));
        assert!(status_reflects(&record, &Outcome::Run));
        let containers: Vec<_> = record.containers().collect();
        assert_eq!(
            containers,
            [ContainerFacts {
                name: "main",
                image: Some("nginx:1.27")
            }]
        );
        let inits: Vec<_> = record.init_containers().into_iter().flatten().collect();
        assert_eq!(
            inits,
            [ContainerFacts {
                name: "init",
                image: Some("busybox:1")
            }]
        );

        // Status building from the record agrees with building from the full Pod.
        let full: Pod = serde_json::from_str(&text).expect("full pod");
        let addrs = PodAddresses {
            host_ip: node_ip(6),
            pod_ip: pod_ip(1),
        };
        let now = ts("2025-01-01T00:05:00Z");
        for outcome in [
            Outcome::Run,
            Outcome::Exit(0),
            Outcome::Exit(3),
            Outcome::ImagePullFails { backoff: true },
        ] {
            assert_eq!(
                pod_status(&record, &outcome, addrs, now),
                pod_status(&full, &outcome, addrs, now),
                "{outcome:?}"
            );
            assert_eq!(
                status_reflects(&record, &outcome),
                status_reflects(&full, &outcome),
                "{outcome:?}"
            );
        }
        let built = pod_status(&record, &Outcome::Run, addrs, now);
        let disruption = built
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "DisruptionTarget")
            .expect("others' conditions are kept");
        assert_eq!(disruption.message.as_deref(), Some("Taint manager"));
        assert_eq!(built.qos_class.as_deref(), Some("Burstable"));
        assert_eq!(built.start_time, Some(Time(ts("2025-01-01T00:00:01Z"))));
    }

    #[test]
    fn sparse_and_null_fields_decode() {
        let pod: SimPod = serde_json::from_value(json!({
            "metadata": {"name": "p", "annotations": null, "labels": null},
            "spec": {"containers": [{"name": "c", "image": null}], "nodeName": null},
            "status": {"conditions": null, "phase": "Pending"},
        }))
        .expect("sparse pod");
        let record = PodRecord::new(pod);
        assert_eq!(record.node_name(), "");
        assert_eq!(record.simulate_exit(), None);
        assert!(!status_reflects(&record, &Outcome::Run));
        assert_eq!(requested_outcome(&record), Outcome::Run);
        let bare: SimPod = serde_json::from_value(json!({})).expect("empty pod");
        assert!(PodRecord::new(bare).status().is_none());
    }

    #[test]
    fn nodes_decode_compactly_and_judge_as_full_nodes() {
        let profile = NodeProfile::default();
        let ip = node_ip(0);
        let t0 = ts("2025-01-01T00:00:00Z");
        let bare = json!({
            "metadata": {
                "name": "node-1", "uid": "ab-cd", "resourceVersion": "9",
                "labels": {"kubernetes.io/hostname": "node-1"},
                "annotations": {SIMULATED_ANNOTATION: "true", "other": "x"},
                "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}],
            },
            "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]},
        });
        let node: SimNode = serde_json::from_value(bare.clone()).expect("compact node");
        assert!(crate::status::is_simulated(&node.metadata));
        assert_eq!(
            node.metadata.annotations.as_ref().map(BTreeMap::len),
            Some(1)
        );
        assert!(!node_status_current(&node, &profile, ip));
        // After the simulator's own post, the compact node is current and keeps the times.
        let mut posted = bare;
        posted["status"] = node_status_patch(&node, &profile, ip, t0)["status"].clone();
        posted["status"]["images"] = json!([{"names": ["nginx:1"], "sizeBytes": 1}]);
        let node: SimNode = serde_json::from_value(posted.clone()).expect("compact node");
        let full: Node = serde_json::from_value(posted).expect("full node");
        assert!(node_status_current(&node, &profile, ip));
        assert!(node_status_current(&full, &profile, ip));
        assert!(!node_status_current(&node, &profile, node_ip(1)));
        assert_eq!(OwnConditionTimes::of(&node), OwnConditionTimes::of(&full));
        let later = ts("2025-01-01T00:01:00Z");
        assert_eq!(
            node_status_patch(&node, &profile, ip, later),
            node_status_patch(&full, &profile, ip, later)
        );
    }

    #[test]
    fn compact_types_address_the_same_resources() {
        use kube::Resource;
        assert_eq!(SimPod::plural(&()), Pod::plural(&()));
        assert_eq!(SimPod::api_version(&()), Pod::api_version(&()));
        assert_eq!(SimNode::kind(&()), Node::kind(&()));
        assert_eq!(SimLease::group(&()), Lease::group(&()));
        assert_eq!(SimLease::plural(&()), "leases");
    }
}
