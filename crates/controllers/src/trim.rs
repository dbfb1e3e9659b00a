//! What a controller decodes and keeps of the objects it watches. Every controller in
//! `pernode up` watches the same nodes and pods; a k8s-openapi `Pod` decoded in full is ~12.7 KB
//! for ~2.9 KB of JSON (managed fields, containers, tolerations, ...), and at 10,000 nodes every
//! pod and node event is decoded once per watcher. The compact types here declare only the
//! fields a controller reads; serde skips the rest without allocating. They implement
//! k8s-openapi's `Resource` and `Metadata` as the type they stand for (their `metadata` is an
//! `ObjectMeta` with only [`MetaFields`] set), so kube's blanket `kube::Resource` impl lets
//! `Api` and the watcher use them like the generated types.
//!
//! One shape per set of fields: [`PodOf`] with the spec (and status) part a controller reads,
//! [`NodeOf`] with the status part, [`MetaOnly`] for metadata-only watches. [`Keep`] makes what
//! a cache holds of a decoded object: a [`NodeRecord`] (a k8s-openapi `Node` is ~1.5 KB before
//! any field is set, and three controllers keep every node), or a typed object where the
//! controller's logic is written against k8s-openapi types. [`NodeView`] and its extensions let
//! the same checks read a record or a whole `Node` (a fresh GET, a test). Caches never write
//! what they hold back (writes are patches, or start from a fresh GET).
//!
//! [`Interner`] and [`Recent`] share the strings and values many cache entries repeat
//! (namespaces, node names, a DaemonSet's tolerations and requests).

use std::borrow::{Borrow, Cow};
use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::sync::Arc;

use foldhash::{HashSet, HashSetExt};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    Affinity, Container, ContainerPort, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement,
    NodeSelectorTerm, Pod, PodCondition, PodSpec, PodStatus, ResourceRequirements, Taint,
    Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use pernode_core::health_gate::{NodeReadiness, PodFailure};
use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

// ---- metadata -------------------------------------------------------------------------------

/// The metadata fields the controllers read (and kube's watcher: `resourceVersion`), with the
/// labels (`BTreeMap`) or without them (`IgnoredAny`). Annotations and managed fields, most of a
/// pod's metadata, are never read from a watch.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetaFields<L> {
    name: Option<String>,
    namespace: Option<String>,
    uid: Option<String>,
    resource_version: Option<String>,
    labels: Option<L>,
    owner_references: Option<Vec<OwnerReference>>,
    finalizers: Option<Vec<String>>,
    creation_timestamp: Option<Time>,
    deletion_timestamp: Option<Time>,
}

/// Labels kept (`BTreeMap`) or skipped (`IgnoredAny`).
trait LabelsPart {
    fn kept(self) -> Option<BTreeMap<String, String>>;
}

impl LabelsPart for BTreeMap<String, String> {
    fn kept(self) -> Option<BTreeMap<String, String>> {
        Some(self)
    }
}

impl LabelsPart for IgnoredAny {
    fn kept(self) -> Option<BTreeMap<String, String>> {
        None
    }
}

impl<L: LabelsPart> From<MetaFields<L>> for ObjectMeta {
    fn from(m: MetaFields<L>) -> ObjectMeta {
        ObjectMeta {
            name: m.name,
            namespace: m.namespace,
            uid: m.uid,
            resource_version: m.resource_version,
            labels: m.labels.and_then(LabelsPart::kept),
            owner_references: m.owner_references.map(exact),
            finalizers: m.finalizers.map(exact),
            creation_timestamp: m.creation_timestamp,
            deletion_timestamp: m.deletion_timestamp,
            ..ObjectMeta::default()
        }
    }
}

/// `v` without spare capacity: serde grows a decoded list to at least four elements, and an
/// `OwnerReference` is 104 bytes.
fn exact<T>(mut v: Vec<T>) -> Vec<T> {
    v.shrink_to_fit();
    v
}

/// `metadata` with only [`MetaFields`] set, labels included.
fn meta<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    MetaFields::<BTreeMap<String, String>>::deserialize(d).map(ObjectMeta::from)
}

/// `metadata` with only [`MetaFields`] set, without the labels.
fn meta_without_labels<'de, D: Deserializer<'de>>(d: D) -> Result<ObjectMeta, D::Error> {
    MetaFields::<IgnoredAny>::deserialize(d).map(ObjectMeta::from)
}

/// The metadata of any kind, asked for as `meta.k8s.io/v1` PartialObjectMetadata (as kube's
/// `PartialObjectMeta<K>`), decoded without labels: what the garbage collector's graph and pod
/// GC's node names need.
#[derive(Deserialize)]
pub(crate) struct MetaOnly<K> {
    #[serde(default, deserialize_with = "meta_without_labels")]
    pub(crate) metadata: ObjectMeta,
    #[serde(skip)]
    kind: PhantomData<fn() -> K>,
}

// By hand: derives would ask `K: Clone + Debug`, which the marker does not need.
impl<K> Clone for MetaOnly<K> {
    fn clone(&self) -> Self {
        MetaOnly {
            metadata: self.metadata.clone(),
            kind: PhantomData,
        }
    }
}

impl<K> std::fmt::Debug for MetaOnly<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaOnly")
            .field("metadata", &self.metadata)
            .finish()
    }
}

impl<K: kube::Resource> kube::Resource for MetaOnly<K> {
    type DynamicType = K::DynamicType;
    type Scope = K::Scope;

    fn metadata_api() -> bool {
        true
    }

    fn kind(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::kind(dt)
    }

    fn group(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::group(dt)
    }

    fn version(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::version(dt)
    }

    fn plural(dt: &Self::DynamicType) -> Cow<'_, str> {
        K::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

// ---- pods -----------------------------------------------------------------------------------

/// A Pod with the spec part `S` and the status part `St` (`IgnoredAny` when unread).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct PodOf<S, St> {
    #[serde(default, deserialize_with = "meta")]
    pub(crate) metadata: ObjectMeta,
    pub(crate) spec: Option<S>,
    pub(crate) status: Option<St>,
}

pernode_core::resource_like!(<S, St> PodOf<S, St> => Pod);

/// The pod spec the control loops that share a pod watch read (see [`crate::pod_watch`]):
/// where a pod is bound (`nodeName`, all of them), the node its required affinity targets (the
/// DaemonSet controller, the scheduler), what it tolerates (taint eviction, the scheduler), and
/// what the scheduler reads besides: whose it is, its node selector and what it asks of a node
/// (see [`scheduling_pod`]).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ControllerPodSpec {
    pub(crate) node_name: Option<String>,
    pub(crate) affinity: Option<RequiredNodeAffinity>,
    pub(crate) tolerations: Option<Vec<Toleration>>,
    scheduler_name: Option<String>,
    node_selector: Option<BTreeMap<String, String>>,
    #[serde(default)]
    containers: Vec<ContainerDemand>,
    init_containers: Option<Vec<ContainerDemand>>,
    overhead: Option<BTreeMap<String, Quantity>>,
}

/// A pod as the DaemonSet controller, node lifecycle and pod GC decode it, once for all three:
/// metadata (labels, owner, creation, deletion), [`ControllerPodSpec`], phase and readiness. The
/// DaemonSet controller's cache keeps a [`PodRecord`] of it.
pub(crate) type ControllerPod = PodOf<ControllerPodSpec, ReadyStatus>;

/// What the DaemonSet controller keeps of a pod: identity, labels, controller reference,
/// creation and deletion, whether it is bound and the node it belongs to (upstream's
/// `GetTargetNodeName`), its phase and its readiness. A typed `Pod` is ~2.2 KB before any field
/// is set; with its labels map, owner references, affinity and conditions a cached daemon pod
/// was ~3.7 KB.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodRecord {
    pub(crate) name: Box<str>,
    pub(crate) namespace: Box<str>,
    pub(crate) uid: Option<Box<str>>,
    pub(crate) resource_version: Option<Box<str>>,
    /// Shared with the other pods that have the same (see [`PodSharing`]).
    pub(crate) labels: Arc<Labels>,
    /// The controller reference (the first owner reference with `controller: true`), shared
    /// like the labels.
    pub(crate) controller: Option<Arc<OwnerReference>>,
    pub(crate) created: Option<Timestamp>,
    /// `metadata.deletionTimestamp` is set.
    pub(crate) deleting: bool,
    /// `spec.nodeName` is set (and not empty).
    pub(crate) bound: bool,
    /// `spec.nodeName`, else the node its required node affinity pins it to.
    pub(crate) target_node: Option<Box<str>>,
    pub(crate) phase: Option<Word>,
    /// Its Ready condition.
    pub(crate) readiness: Option<Readiness>,
    /// The failure one of its containers waits with (the health gate's), one byte.
    pub(crate) waiting: Option<PodFailure>,
}

/// Shares the labels and controller reference of pods that have equal ones: a DaemonSet's pods
/// all do, bar the hash and generation labels of a rollout in progress. Sharing keeps one copy,
/// which the per-pod label lookups of every sync also find in cache.
#[derive(Default)]
pub(crate) struct PodSharing {
    labels: Recent<Labels>,
    controllers: Recent<OwnerReference>,
}

impl PodSharing {
    /// `pod` with its labels and controller reference shared.
    pub(crate) fn share(&mut self, mut pod: PodRecord) -> PodRecord {
        pod.labels = self.labels.share(pod.labels);
        pod.controller = pod.controller.map(|c| self.controllers.share(c));
        pod
    }
}

/// What readiness and availability read of a pod's Ready condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Readiness {
    /// Its status is `True`.
    pub(crate) ready: bool,
    /// Its `lastTransitionTime`.
    pub(crate) since: Option<Timestamp>,
}

impl PodRecord {
    /// pernode-core's `is_pod_ready` on the kept Ready condition.
    pub(crate) fn is_ready(&self) -> bool {
        self.readiness.is_some_and(|r| r.ready)
    }

    /// pernode-core's `is_pod_available` on the kept Ready condition: Ready, and either
    /// `min_ready_seconds` is 0 or lastTransitionTime + minReadySeconds is strictly before `now`.
    pub(crate) fn is_available(&self, min_ready_seconds: i32, now: Timestamp) -> bool {
        self.readiness.is_some_and(|r| {
            pernode_core::pod::ready_condition_available(r.ready, r.since, min_ready_seconds, now)
        })
    }

    /// pernode-core's `is_pod_terminal`: phase `Succeeded` or `Failed`.
    pub(crate) fn is_terminal(&self) -> bool {
        pernode_core::pod::is_terminal_phase(self.phase.as_deref())
    }
}

impl Keep for ControllerPod {
    type Kept = PodRecord;
    fn keep(self) -> PodRecord {
        PodRecord::from(&self)
    }
}

/// From a shared decoded pod, copying only what the record keeps.
impl From<&ControllerPod> for PodRecord {
    fn from(pod: &ControllerPod) -> PodRecord {
        let m = &pod.metadata;
        let spec = pod.spec.as_ref();
        let node_name = spec.and_then(|s| s.node_name.as_deref());
        let bound = node_name.is_some_and(|n| !n.is_empty());
        let target_node = if bound {
            node_name
        } else {
            spec.and_then(|s| s.affinity.as_ref())
                .and_then(|a| a.node_affinity.as_ref())
                .and_then(|n| {
                    n.required_during_scheduling_ignored_during_execution
                        .as_ref()
                })
                .and_then(pernode_core::scheduling::required_node_name)
        };
        let status = pod.status.as_ref();
        PodRecord {
            name: m.name.as_deref().unwrap_or_default().into(),
            namespace: m.namespace.as_deref().unwrap_or_default().into(),
            uid: m.uid.as_deref().map(Box::from),
            resource_version: m.resource_version.as_deref().map(Box::from),
            labels: Arc::new(m.labels.as_ref().map(Labels::from).unwrap_or_default()),
            controller: m
                .owner_references
                .iter()
                .flatten()
                .find(|r| r.controller == Some(true))
                .map(|r| Arc::new(r.clone())),
            created: m.creation_timestamp.as_ref().map(|t| t.0),
            deleting: m.deletion_timestamp.is_some(),
            bound,
            target_node: target_node.map(Box::from),
            phase: status.and_then(|s| s.phase.as_deref()).map(word_of),
            readiness: status.and_then(|s| s.ready.as_ref()).map(|c| Readiness {
                ready: c.status == "True",
                since: c.last_transition_time.as_ref().map(|t| t.0),
            }),
            waiting: status.and_then(|s| s.waiting),
        }
    }
}

/// The part of a pod's affinity the controllers read: the required node affinity (the
/// DaemonSet's target node, the scheduler's NodeAffinity filter). Preferred terms and pod
/// (anti-)affinity are skipped.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequiredNodeAffinity {
    node_affinity: Option<RequiredNodeSelector>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RequiredNodeSelector {
    required_during_scheduling_ignored_during_execution: Option<NodeSelector>,
}

impl From<RequiredNodeAffinity> for Affinity {
    fn from(a: RequiredNodeAffinity) -> Affinity {
        let required = a
            .node_affinity
            .and_then(|n| n.required_during_scheduling_ignored_during_execution)
            .map(|s| NodeSelector {
                node_selector_terms: exact(
                    s.node_selector_terms
                        .into_iter()
                        .map(|t| NodeSelectorTerm {
                            match_expressions: t.match_expressions.map(exact_requirements),
                            match_fields: t.match_fields.map(exact_requirements),
                        })
                        .collect(),
                ),
            });
        Affinity {
            node_affinity: Some(NodeAffinity {
                required_during_scheduling_ignored_during_execution: required,
                preferred_during_scheduling_ignored_during_execution: None,
            }),
            ..Affinity::default()
        }
    }
}

fn exact_requirements(rs: Vec<NodeSelectorRequirement>) -> Vec<NodeSelectorRequirement> {
    exact(
        rs.into_iter()
            .map(|r| NodeSelectorRequirement {
                values: r.values.map(exact),
                ..r
            })
            .collect(),
    )
}

/// The pod status the shared pod watch's readers take: the phase, the Ready condition
/// (readiness and availability, for the DaemonSet controller and taint eviction), found as
/// upstream's `GetPodReadyCondition` finds it (the first of its type), and the first
/// PodScheduled condition (what the scheduler last reported of a pod it could not place); the
/// other conditions are skipped. Of the container statuses, only a waiting reason the health
/// gate counts ([`PodFailure`]), as one byte.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReadyStatus {
    pub(crate) phase: Option<String>,
    pub(crate) ready: Option<PodCondition>,
    pub(crate) scheduled: Option<PodCondition>,
    pub(crate) waiting: Option<PodFailure>,
}

impl<'de> Deserialize<'de> for ReadyStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Fields {
            phase: Option<String>,
            #[serde(default, deserialize_with = "kept_conditions")]
            conditions: KeptConditions,
            #[serde(default, deserialize_with = "first_failure")]
            container_statuses: Option<PodFailure>,
            #[serde(default, deserialize_with = "first_failure")]
            init_container_statuses: Option<PodFailure>,
        }
        let f = Fields::deserialize(d)?;
        let waiting = f.init_container_statuses.or(f.container_statuses);
        Ok(ReadyStatus {
            phase: f.phase,
            ready: f.conditions.ready,
            scheduled: f.conditions.scheduled,
            waiting,
        })
    }
}

/// A container status as [`ReadyStatus`] reads it: `state.waiting.reason`, nothing else.
#[derive(Deserialize)]
struct ContainerStatusPart {
    state: Option<ContainerStatePart>,
}

#[derive(Deserialize)]
struct ContainerStatePart {
    waiting: Option<WaitingPart>,
}

#[derive(Deserialize)]
struct WaitingPart {
    #[serde(default)]
    reason: WaitingReason,
}

/// The first failing waiting reason of a list of container statuses, read without collecting
/// the list (every pod event of the shared watch passes here).
fn first_failure<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PodFailure>, D::Error> {
    struct First;
    impl<'de> Visitor<'de> for First {
        type Value = Option<PodFailure>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of container statuses")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut first = None;
            while let Some(c) = seq.next_element::<ContainerStatusPart>()? {
                if first.is_none() {
                    first = c.state.and_then(|s| s.waiting).and_then(|w| w.reason.0);
                }
            }
            Ok(first)
        }
    }
    d.deserialize_option(First)
}

/// A waiting reason, read without allocating: one the health gate counts, or none.
#[derive(Default)]
struct WaitingReason(Option<PodFailure>);

impl<'de> Deserialize<'de> for WaitingReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Reason;
        impl<'de> Visitor<'de> for Reason {
            type Value = WaitingReason;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a waiting reason")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<WaitingReason, E> {
                Ok(WaitingReason(PodFailure::of_waiting_reason(v)))
            }
            fn visit_none<E: de::Error>(self) -> Result<WaitingReason, E> {
                Ok(WaitingReason(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<WaitingReason, E> {
                Ok(WaitingReason(None))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<WaitingReason, D::Error> {
                d.deserialize_str(self)
            }
        }
        d.deserialize_option(Reason)
    }
}

/// The conditions [`ReadyStatus`] keeps (and of a node's, [`ReadyConditionStatus`]).
#[derive(Clone, Debug, Default)]
struct KeptConditions {
    ready: Option<PodCondition>,
    scheduled: Option<PodCondition>,
}

/// What is read of a condition: availability reads the type, status and transition time of
/// Ready; the scheduler reads a PodScheduled condition's reason and message as well.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConditionFields {
    #[serde(rename = "type")]
    type_: String,
    status: String,
    last_transition_time: Option<Time>,
    reason: Option<String>,
    message: Option<String>,
}

/// The first `Ready` and the first `PodScheduled` condition of a list of pod conditions.
fn kept_conditions<'de, D: Deserializer<'de>>(d: D) -> Result<KeptConditions, D::Error> {
    struct FirstReady;
    impl<'de> Visitor<'de> for FirstReady {
        type Value = KeptConditions;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a list of pod conditions")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(KeptConditions::default())
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(KeptConditions::default())
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut kept = KeptConditions::default();
            while let Some(c) = seq.next_element::<ConditionFields>()? {
                match c.type_.as_str() {
                    "Ready" if kept.ready.is_none() => {
                        kept.ready = Some(PodCondition {
                            type_: c.type_,
                            status: c.status,
                            last_transition_time: c.last_transition_time,
                            ..PodCondition::default()
                        });
                    }
                    "PodScheduled" if kept.scheduled.is_none() => {
                        kept.scheduled = Some(PodCondition {
                            type_: c.type_,
                            status: c.status,
                            last_transition_time: c.last_transition_time,
                            reason: c.reason,
                            message: c.message,
                            ..PodCondition::default()
                        });
                    }
                    _ => {}
                }
            }
            Ok(kept)
        }
    }
    d.deserialize_option(FirstReady)
}

/// What a container asks of a node.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerDemand {
    #[serde(default)]
    name: String,
    resources: Option<ResourceRequirements>,
    ports: Option<Vec<ContainerPort>>,
    restart_policy: Option<String>,
}

impl From<ContainerDemand> for Container {
    fn from(c: ContainerDemand) -> Container {
        Container {
            name: c.name,
            resources: c.resources,
            ports: c.ports,
            restart_policy: c.restart_policy,
            ..Container::default()
        }
    }
}

/// An unbound pod of the shared watch as the scheduler reads it to schedule it: who it is and
/// whether it is being deleted; what it asks of a node (requests, host ports), where it may go
/// (node selector, affinity, tolerations) and whose it is (`schedulerName`); its phase and
/// PodScheduled condition. (A bound pod places its demand alone: [`demand_spec`].)
pub(crate) fn scheduling_pod(p: &ControllerPod) -> Pod {
    let m = &p.metadata;
    Pod {
        metadata: ObjectMeta {
            name: m.name.clone(),
            namespace: m.namespace.clone(),
            uid: m.uid.clone(),
            resource_version: m.resource_version.clone(),
            deletion_timestamp: m.deletion_timestamp.clone(),
            ..ObjectMeta::default()
        },
        spec: p.spec.as_ref().map(|s| PodSpec {
            node_name: s.node_name.clone(),
            scheduler_name: s.scheduler_name.clone(),
            node_selector: s.node_selector.clone(),
            affinity: s.affinity.clone().map(Affinity::from),
            tolerations: s.tolerations.clone(),
            ..spec_of_demands(s)
        }),
        status: p.status.as_ref().map(|s| PodStatus {
            phase: s.phase.clone(),
            conditions: s.scheduled.clone().map(|c| vec![c]),
            ..PodStatus::default()
        }),
    }
}

/// What a pod of the shared watch asks of its node, as a spec for the scheduler's demand
/// (`fit::spec_demand`): its containers' and init containers' demands and its overhead.
pub(crate) fn demand_spec(p: &ControllerPod) -> Option<PodSpec> {
    p.spec.as_ref().map(spec_of_demands)
}

/// A spec with `s`'s containers' and init containers' demands and its overhead only.
fn spec_of_demands(s: &ControllerPodSpec) -> PodSpec {
    let demands = |cs: &[ContainerDemand]| -> Vec<Container> {
        cs.iter().cloned().map(Container::from).collect()
    };
    PodSpec {
        containers: demands(&s.containers),
        init_containers: s.init_containers.as_deref().map(demands),
        overhead: s.overhead.clone(),
        ..PodSpec::default()
    }
}

impl<S, St> PodOf<S, St> {
    /// `(namespace, name)`.
    pub(crate) fn ns_name(&self) -> (&str, &str) {
        (
            self.metadata.namespace.as_deref().unwrap_or(""),
            self.metadata.name.as_deref().unwrap_or(""),
        )
    }
}

// ---- nodes ----------------------------------------------------------------------------------

/// A Node as decoded: its metadata, the spec fields that steer placement (taints,
/// `unschedulable`) and the status part `St` (`IgnoredAny` when unread).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct NodeOf<St> {
    #[serde(default, deserialize_with = "meta")]
    pub(crate) metadata: ObjectMeta,
    spec: Option<NodeSpecPart>,
    status: Option<St>,
}

pernode_core::resource_like!(<St> NodeOf<St> => Node);

#[derive(Clone, Debug, Deserialize)]
struct NodeSpecPart {
    taints: Option<Vec<Taint>>,
    unschedulable: Option<bool>,
}

/// A node as the DaemonSet controller decodes it: what placement reads, and the Ready condition
/// (the health gate's; placement never reads it, R8).
pub(crate) type DaemonNode = NodeOf<ReadyConditionStatus>;
/// A node as placement alone decodes it (the node-critical controller's): never its status (R8).
pub(crate) type PlacementNode = NodeOf<IgnoredAny>;
/// A node as the scheduler decodes it: what is allocatable; not its conditions, addresses,
/// images or node info.
pub(crate) type SchedulingNode = NodeOf<AllocatableStatus>;
/// A node as the node lifecycle controller decodes it: its conditions' types, statuses and
/// heartbeats.
pub(crate) type LifecycleNode = NodeOf<ConditionsStatus>;

/// What the controllers keep of a node: its name, labels, taints and `unschedulable` (what
/// placement and fit checks read), and the part `P` of the rest one controller reads. A
/// k8s-openapi `Node` is ~1.5 KB before any of its fields is set, and each of three
/// controllers keeps every node.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct NodeRecord<P = ()> {
    pub(crate) name: Box<str>,
    pub(crate) labels: Labels,
    pub(crate) taints: Box<[Taint]>,
    pub(crate) unschedulable: bool,
    pub(crate) part: P,
}

/// A node's status as one controller decodes it, and what it keeps of it (and of the metadata).
pub(crate) trait NodeStatusPart: Sized {
    type Part;
    fn part(meta: &mut ObjectMeta, status: Option<Self>) -> Self::Part;
}

impl NodeStatusPart for IgnoredAny {
    type Part = ();
    fn part(_: &mut ObjectMeta, _: Option<Self>) {}
}

/// A node status of which only the Ready condition is read.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct ReadyConditionStatus {
    #[serde(default, deserialize_with = "kept_conditions")]
    conditions: KeptConditions,
}

impl NodeStatusPart for ReadyConditionStatus {
    type Part = Option<NodeReadiness>;
    fn part(_: &mut ObjectMeta, status: Option<Self>) -> Option<NodeReadiness> {
        let ready = status?.conditions.ready?;
        Some(NodeReadiness {
            ready: ready.status == "True",
            since: ready.last_transition_time.map(|t| t.0),
        })
    }
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct AllocatableStatus {
    allocatable: Option<BTreeMap<String, Quantity>>,
}

/// What is allocatable on a node, in milli-units, by resource (sorted); quantities that do not
/// parse count as none, as the fit checks read them.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Allocatable(Box<[(Box<str>, i128)]>);

impl Allocatable {
    fn from_map(m: &BTreeMap<String, Quantity>) -> Allocatable {
        Allocatable(
            m.iter()
                .filter_map(|(k, q)| Some((k.as_str().into(), milli(q)?)))
                .collect(),
        )
    }
}

/// A quantity in milli-units.
fn milli(q: &Quantity) -> Option<i128> {
    pernode_core::quantity::parse_quantity(&q.0)
        .ok()
        .map(|q| q.milli_value())
}

impl NodeStatusPart for AllocatableStatus {
    type Part = Allocatable;
    fn part(_: &mut ObjectMeta, status: Option<Self>) -> Allocatable {
        status
            .and_then(|s| s.allocatable)
            .map(|m| Allocatable::from_map(&m))
            .unwrap_or_default()
    }
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct ConditionsStatus {
    conditions: Option<Vec<ConditionPart>>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConditionPart {
    #[serde(rename = "type")]
    type_: String,
    status: String,
    last_heartbeat_time: Option<Time>,
}

/// What the node lifecycle controller keeps of a node beyond the common part: identity (events,
/// the version a status write is made at), creation (the grace of a node that never reported)
/// and each condition's type, status and heartbeat. Reasons and messages are not read from the
/// cache (a write of conditions starts from a fresh GET).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Lifecycle {
    pub(crate) uid: Option<Box<str>>,
    pub(crate) resource_version: Option<Box<str>>,
    pub(crate) created: Option<Timestamp>,
    pub(crate) conditions: Box<[ConditionRecord]>,
}

/// A node condition's type, status and heartbeat.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ConditionRecord {
    pub(crate) type_: Word,
    pub(crate) status: Word,
    pub(crate) heartbeat: Option<Timestamp>,
}

/// A string that is usually one of a few words (condition types and statuses, pod phases): those are kept
/// without allocating.
pub(crate) type Word = Cow<'static, str>;

/// The usual words, kept without allocating.
const WORDS: [&str; 12] = [
    "Ready",
    "MemoryPressure",
    "DiskPressure",
    "PIDPressure",
    "NetworkUnavailable",
    "True",
    "False",
    "Unknown",
    "Pending",
    "Running",
    "Succeeded",
    "Failed",
];

fn word(s: String) -> Word {
    usual_word(&s).map_or(Cow::Owned(s), Cow::Borrowed)
}

/// [`word`] of a borrowed string: copied only when it is none of the usual words.
fn word_of(s: &str) -> Word {
    usual_word(s).map_or_else(|| Cow::Owned(s.to_string()), Cow::Borrowed)
}

fn usual_word(s: &str) -> Option<&'static str> {
    WORDS.iter().copied().find(|w| *w == s)
}

impl NodeStatusPart for ConditionsStatus {
    type Part = Lifecycle;
    fn part(meta: &mut ObjectMeta, status: Option<Self>) -> Lifecycle {
        let conditions = status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .into_iter()
            .map(|c| ConditionRecord {
                type_: word(c.type_),
                status: word(c.status),
                heartbeat: c.last_heartbeat_time.map(|t| t.0),
            })
            .collect();
        Lifecycle {
            uid: meta.uid.take().map(String::into_boxed_str),
            resource_version: meta.resource_version.take().map(String::into_boxed_str),
            created: meta.creation_timestamp.take().map(|t| t.0),
            conditions,
        }
    }
}

impl<St: NodeStatusPart> Keep for NodeOf<St> {
    type Kept = NodeRecord<St::Part>;
    fn keep(mut self) -> NodeRecord<St::Part> {
        let part = St::part(&mut self.metadata, self.status);
        let spec = self.spec;
        NodeRecord {
            name: self.metadata.name.unwrap_or_default().into_boxed_str(),
            labels: self.metadata.labels.map(Labels::from).unwrap_or_default(),
            taints: spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default()
                .into_boxed_slice(),
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            part,
        }
    }
}

/// What a cache keeps of `obj` when its watch decodes it as `D` (tests compare records with
/// the whole objects they stand for).
#[cfg(test)]
pub(crate) fn kept_as<D: serde::de::DeserializeOwned + Keep>(
    obj: &impl serde::Serialize,
) -> D::Kept {
    serde_json::from_value::<D>(serde_json::to_value(obj).expect("encodes"))
        .expect("decodes")
        .keep()
}

/// Labels of a cached object, sorted by key: a small map costs a few hundred bytes less than
/// a `BTreeMap` (whose first node has room for eleven entries).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Labels(Box<[(Box<str>, Box<str>)]>);

impl From<BTreeMap<String, String>> for Labels {
    fn from(m: BTreeMap<String, String>) -> Labels {
        Labels(
            m.into_iter()
                .map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str()))
                .collect(),
        )
    }
}

impl From<&BTreeMap<String, String>> for Labels {
    fn from(m: &BTreeMap<String, String>) -> Labels {
        Labels(
            m.iter()
                .map(|(k, v)| (Box::from(k.as_str()), Box::from(v.as_str())))
                .collect(),
        )
    }
}

impl Labels {
    /// The value of a label.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .map(|i| &*self.0[i].1)
    }

    /// As the `BTreeMap` of k8s-openapi types (`None` when empty).
    fn to_map(&self) -> Option<BTreeMap<String, String>> {
        (!self.0.is_empty()).then(|| {
            self.0
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
    }
}

/// What placement and fit checks read of a node, whether a whole `Node` (a fresh GET, a test)
/// or a cached [`NodeRecord`].
pub trait NodeView {
    /// `metadata.name`.
    fn name(&self) -> &str;
    /// One label.
    fn label(&self, key: &str) -> Option<&str>;
    /// `spec.taints`.
    fn taints(&self) -> &[Taint];
    /// `spec.unschedulable`.
    fn unschedulable(&self) -> bool;
    /// The node as pernode-core's node-affinity predicates read it (name and labels).
    fn affinity_node(&self) -> Cow<'_, Node>;
}

/// What is allocatable on a node, for the fit checks.
pub trait AllocatableView: NodeView {
    /// Allocatable amount of a resource in milli-units (0 when unset or unparsable).
    fn allocatable(&self, resource: &str) -> i128;
}

/// One node condition as the node lifecycle controller reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConditionView<'a> {
    /// Its type.
    pub type_: &'a str,
    /// Its status.
    pub status: &'a str,
    /// Its `lastHeartbeatTime`.
    pub heartbeat: Option<Timestamp>,
}

/// What the node lifecycle controller reads of a node's status and metadata.
pub trait ConditionsView: NodeView {
    /// The node's conditions, in order.
    fn conditions(&self) -> impl Iterator<Item = ConditionView<'_>>;
    /// `metadata.creationTimestamp`.
    fn created(&self) -> Option<Timestamp>;
}

impl NodeView for Node {
    fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.metadata.labels.as_ref()?.get(key).map(String::as_str)
    }

    fn taints(&self) -> &[Taint] {
        self.spec
            .as_ref()
            .and_then(|s| s.taints.as_deref())
            .unwrap_or(&[])
    }

    fn unschedulable(&self) -> bool {
        self.spec
            .as_ref()
            .and_then(|s| s.unschedulable)
            .unwrap_or(false)
    }

    fn affinity_node(&self) -> Cow<'_, Node> {
        Cow::Borrowed(self)
    }
}

impl AllocatableView for Node {
    fn allocatable(&self, resource: &str) -> i128 {
        self.status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .and_then(|a| a.get(resource))
            .and_then(milli)
            .unwrap_or(0)
    }
}

impl ConditionsView for Node {
    fn conditions(&self) -> impl Iterator<Item = ConditionView<'_>> {
        self.status
            .as_ref()
            .and_then(|s| s.conditions.as_deref())
            .unwrap_or(&[])
            .iter()
            .map(|c| ConditionView {
                type_: &c.type_,
                status: &c.status,
                heartbeat: c.last_heartbeat_time.as_ref().map(|t| t.0),
            })
    }

    fn created(&self) -> Option<Timestamp> {
        self.metadata.creation_timestamp.as_ref().map(|t| t.0)
    }
}

impl<P> NodeView for NodeRecord<P> {
    fn name(&self) -> &str {
        &self.name
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key)
    }

    fn taints(&self) -> &[Taint] {
        &self.taints
    }

    fn unschedulable(&self) -> bool {
        self.unschedulable
    }

    fn affinity_node(&self) -> Cow<'_, Node> {
        Cow::Owned(Node {
            metadata: ObjectMeta {
                name: Some(self.name.to_string()),
                labels: self.labels.to_map(),
                ..ObjectMeta::default()
            },
            ..Node::default()
        })
    }
}

impl AllocatableView for NodeRecord<Allocatable> {
    fn allocatable(&self, resource: &str) -> i128 {
        let a = &self.part.0;
        a.binary_search_by(|(k, _)| (**k).cmp(resource))
            .map_or(0, |i| a[i].1)
    }
}

impl ConditionsView for NodeRecord<Lifecycle> {
    fn conditions(&self) -> impl Iterator<Item = ConditionView<'_>> {
        self.part.conditions.iter().map(|c| ConditionView {
            type_: &c.type_,
            status: &c.status,
            heartbeat: c.heartbeat,
        })
    }

    fn created(&self) -> Option<Timestamp> {
        self.part.created
    }
}

impl<T: NodeView + ?Sized> NodeView for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn label(&self, key: &str) -> Option<&str> {
        (**self).label(key)
    }

    fn taints(&self) -> &[Taint] {
        (**self).taints()
    }

    fn unschedulable(&self) -> bool {
        (**self).unschedulable()
    }

    fn affinity_node(&self) -> Cow<'_, Node> {
        (**self).affinity_node()
    }
}

impl<T: ConditionsView + ?Sized> ConditionsView for Arc<T> {
    fn conditions(&self) -> impl Iterator<Item = ConditionView<'_>> {
        (**self).conditions()
    }

    fn created(&self) -> Option<Timestamp> {
        (**self).created()
    }
}

/// pernode-core's `pod_matches_node_selector_and_affinity` on any node view. That predicate
/// reads the node only when the pod has a node selector or a required node affinity; only
/// then is the node's name and labels materialised for it.
pub(crate) fn matches_node_selector_and_affinity(spec: &PodSpec, node: &impl NodeView) -> bool {
    let selects = spec.node_selector.as_ref().is_some_and(|s| !s.is_empty())
        || spec
            .affinity
            .as_ref()
            .and_then(|a| a.node_affinity.as_ref())
            .is_some_and(|n| {
                n.required_during_scheduling_ignored_during_execution
                    .is_some()
            });
    !selects
        || pernode_core::scheduling::pod_matches_node_selector_and_affinity(
            spec,
            &node.affinity_node(),
        )
}

// ---- leases ---------------------------------------------------------------------------------

/// A node's Lease as the node lifecycle controller reads it: its name and renewTime.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct LeaseOf {
    #[serde(default, deserialize_with = "meta_without_labels")]
    pub(crate) metadata: ObjectMeta,
    spec: Option<LeaseSpecPart>,
}

pernode_core::resource_like!(LeaseOf => Lease);

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LeaseSpecPart {
    renew_time: Option<MicroTime>,
}

impl LeaseOf {
    /// `spec.renewTime`.
    pub(crate) fn renew_time(&self) -> Option<k8s_openapi::jiff::Timestamp> {
        self.spec.as_ref()?.renew_time.as_ref().map(|t| t.0)
    }
}

// ---- what caches keep -----------------------------------------------------------------------

/// The typed object a cache keeps of a decoded one.
pub(crate) trait Keep {
    type Kept;
    fn keep(self) -> Self::Kept;
}

impl Keep for DaemonSet {
    type Kept = DaemonSet;
    fn keep(mut self) -> DaemonSet {
        self.metadata.managed_fields = None;
        self
    }
}

impl Keep for ControllerRevision {
    type Kept = ControllerRevision;
    fn keep(mut self) -> ControllerRevision {
        self.metadata.managed_fields = None;
        self
    }
}

// ---- shared strings -------------------------------------------------------------------------

/// One shared copy of strings that many cache entries repeat (namespaces, node names): an
/// `Arc<str>` costs a pointer per entry instead of a heap string. Strings no entry holds any
/// more are dropped as the set grows, so it stays bounded by what is in use.
#[derive(Debug)]
pub(crate) struct Interner {
    strings: HashSet<Arc<str>>,
    /// Size at which unused strings are dropped next (amortised: twice the size kept).
    prune_at: usize,
}

impl Default for Interner {
    fn default() -> Self {
        Interner {
            strings: HashSet::new(),
            prune_at: 64,
        }
    }
}

impl Interner {
    /// The shared copy of `s`.
    pub(crate) fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strings.get(s) {
            return a.clone();
        }
        if self.strings.len() >= self.prune_at {
            self.strings.retain(|a| Arc::strong_count(a) > 1);
            self.prune_at = (self.strings.len() * 2).max(64);
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.insert(a.clone());
        a
    }
}

/// Shares equal values that many cache entries hold (the tolerations of a DaemonSet's pods,
/// their resource requests): a value equal to one of the last few shared is replaced by that
/// one's `Arc`. Entries whose values differ from the recent ones simply keep their own.
#[derive(Debug)]
pub(crate) struct Recent<T: ?Sized> {
    values: VecDeque<Arc<T>>,
}

impl<T: ?Sized> Default for Recent<T> {
    fn default() -> Self {
        Recent {
            values: VecDeque::new(),
        }
    }
}

impl<T: ?Sized + PartialEq> Recent<T> {
    /// How many distinct values are remembered.
    const KEPT: usize = 8;

    /// The shared copy of `value`.
    pub(crate) fn share<V: Borrow<T> + Into<Arc<T>>>(&mut self, value: V) -> Arc<T> {
        if let Some(i) = self.values.iter().position(|v| **v == *value.borrow()) {
            let shared = self.values[i].clone();
            if i > 0 {
                self.values.remove(i);
                self.values.push_front(shared.clone());
            }
            return shared;
        }
        let shared: Arc<T> = value.into();
        self.values.push_front(shared.clone());
        self.values.truncate(Self::KEPT);
        shared
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DaemonSet;
    use kube::Resource;
    use serde_json::{Value, json};

    /// Metadata as the API server stores it: with managed fields, annotations and more.
    fn full_meta(name: &str) -> Value {
        json!({
            "name": name, "namespace": "default", "uid": format!("uid-{name}"),
            "resourceVersion": "42", "generation": 3, "generateName": "ds-",
            "creationTimestamp": "2024-01-01T00:00:00Z",
            "deletionTimestamp": "2024-01-01T00:01:00Z", "deletionGracePeriodSeconds": 30,
            "labels": {"app": "a", "controller-revision-hash": "h"},
            "annotations": {"note": "x"},
            "finalizers": ["f"],
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "d",
                "uid": "u", "controller": true, "blockOwnerDeletion": true}],
            "managedFields": [{"manager": "m", "operation": "Update", "apiVersion": "v1",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {"f:labels": {}}}}]
        })
    }

    fn full_pod() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": full_meta("p"),
            "spec": {
                "nodeName": "n", "schedulerName": "default-scheduler",
                "nodeSelector": {"disk": "ssd"},
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [
                        {"key": "metadata.name", "operator": "In", "values": ["n"]}]}]}}},
                "tolerations": [{"operator": "Exists"},
                    {"key": "k", "operator": "Equal", "value": "v", "effect": "NoExecute",
                     "tolerationSeconds": 30}],
                "containers": [{"name": "c", "image": "i", "command": ["sleep"],
                    "env": [{"name": "E", "value": "v"}],
                    "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "1Mi"}},
                    "ports": [{"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}]}],
                "initContainers": [{"name": "i", "image": "i", "restartPolicy": "Always",
                    "resources": {"requests": {"cpu": "1"}}}],
                "overhead": {"cpu": "10m"},
                "volumes": [{"name": "v", "emptyDir": {}}],
                "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"
            },
            "status": {
                "phase": "Running", "podIP": "10.0.0.1", "hostIP": "10.0.0.2",
                "conditions": [
                    {"type": "Ready", "status": "True",
                     "lastTransitionTime": "2024-01-01T00:00:05Z"},
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                     "message": "no", "lastTransitionTime": "2024-01-01T00:00:01Z"}],
                "containerStatuses": [{"name": "c", "image": "i", "imageID": "", "ready": true,
                    "restartCount": 0, "started": true, "state": {"running": {}}}]
            }
        })
    }

    fn full_node() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": full_meta("n"),
            "spec": {"taints": [{"key": "t", "effect": "NoSchedule"}], "unschedulable": true,
                "podCIDR": "10.0.0.0/24", "providerID": "sim://n"},
            "status": {
                "allocatable": {"cpu": "2", "pods": "110"}, "capacity": {"cpu": "2"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": "2024-01-01T00:00:09Z",
                    "lastTransitionTime": "2024-01-01T00:00:01Z"}],
                "addresses": [{"type": "InternalIP", "address": "10.0.0.2"}],
                "images": [{"names": ["i"], "sizeBytes": 1}],
                "nodeInfo": {"architecture": "amd64", "bootID": "", "containerRuntimeVersion": "",
                    "kernelVersion": "", "kubeProxyVersion": "", "kubeletVersion": "",
                    "machineID": "", "operatingSystem": "linux", "osImage": "", "systemUUID": ""}
            }
        })
    }

    fn decode<T: serde::de::DeserializeOwned>(v: Value) -> T {
        serde_json::from_value(v).expect("decodes")
    }

    /// The metadata every compact type keeps, from the full object's.
    fn kept_meta(full: &ObjectMeta, labels: bool) -> ObjectMeta {
        ObjectMeta {
            name: full.name.clone(),
            namespace: full.namespace.clone(),
            uid: full.uid.clone(),
            resource_version: full.resource_version.clone(),
            labels: if labels { full.labels.clone() } else { None },
            owner_references: full.owner_references.clone(),
            finalizers: full.finalizers.clone(),
            creation_timestamp: full.creation_timestamp.clone(),
            deletion_timestamp: full.deletion_timestamp.clone(),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn daemonset_controller_pod_keeps_placement_and_readiness() {
        use pernode_core::pod::{is_pod_available, is_pod_ready, is_pod_terminal};
        let full: Pod = decode(full_pod());
        let m = &full.metadata;
        let pod = decode::<ControllerPod>(full_pod()).keep();
        assert_eq!(
            (&*pod.name, &*pod.namespace, pod.uid.as_deref()),
            (
                m.name.as_deref().unwrap(),
                m.namespace.as_deref().unwrap(),
                m.uid.as_deref()
            )
        );
        assert_eq!(
            pod.resource_version.as_deref(),
            m.resource_version.as_deref()
        );
        assert_eq!(*pod.labels, Labels::from(m.labels.clone().unwrap()));
        assert_eq!(
            pod.controller.as_deref(),
            crate::daemonset::sync::controller_of(m)
        );
        assert_eq!(pod.created, m.creation_timestamp.as_ref().map(|t| t.0));
        assert!(pod.deleting && pod.bound);
        assert_eq!(
            pod.target_node.as_deref(),
            pernode_core::scheduling::target_node_name(full.spec.as_ref().unwrap())
        );
        assert_eq!(pod.phase.as_deref(), Some("Running"));
        assert!(matches!(pod.phase, Some(Cow::Borrowed(_))));
        assert_eq!(pod.is_terminal(), is_pod_terminal(&full));
        assert_eq!(pod.is_ready(), is_pod_ready(&full));
        assert!(pod.is_ready());
        assert_eq!(<ControllerPod as Resource>::plural(&()), "pods");

        // Readiness and availability as pernode-core judges the whole pod.
        let at: Timestamp = "2024-01-01T00:00:20Z".parse().unwrap();
        let conditions = [
            json!(null),
            json!([]),
            json!([{"type": "PodScheduled", "status": "True"}]),
            json!([{"type": "Ready", "status": "True"}]),
            json!([{"type": "Ready", "status": "False",
                "lastTransitionTime": "2024-01-01T00:00:05Z"}]),
            json!([{"type": "Ready", "status": "Unknown"}]),
            json!([{"type": "Ready", "status": "True",
                "lastTransitionTime": "2024-01-01T00:00:05Z"}]),
            json!([{"type": "Ready", "status": "True",
                "lastTransitionTime": "9999-12-01T00:00:00Z"}]),
            json!([{"type": "Ready", "status": "False"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:05Z"}]),
        ];
        for c in conditions {
            for phase in ["Running", "Succeeded", "Failed", "Pending"] {
                let mut v = full_pod();
                v["status"]["conditions"] = c.clone();
                v["status"]["phase"] = json!(phase);
                let whole: Pod = decode(v.clone());
                let kept = decode::<ControllerPod>(v).keep();
                assert_eq!(kept.is_ready(), is_pod_ready(&whole), "{c}");
                assert_eq!(kept.is_terminal(), is_pod_terminal(&whole), "{phase}");
                for min_ready in [0, 1, 14, 15, 16, i32::MAX] {
                    assert_eq!(
                        kept.is_available(min_ready, at),
                        is_pod_available(&whole, min_ready, at),
                        "{c} {min_ready}"
                    );
                }
            }
        }
    }

    #[test]
    fn daemonset_controller_pod_keeps_a_failing_waiting_reason_only() {
        let with = |statuses: Value, init: Value| {
            let mut v = full_pod();
            v["status"]["containerStatuses"] = statuses;
            v["status"]["initContainerStatuses"] = init;
            decode::<ControllerPod>(v).keep().waiting
        };
        let waiting = |r: &str| json!([{"name": "c", "state": {"waiting": {"reason": r}}}]);
        assert_eq!(decode::<ControllerPod>(full_pod()).keep().waiting, None);
        assert_eq!(
            with(waiting("ImagePullBackOff"), json!(null)),
            Some(PodFailure::ImagePullBackOff)
        );
        assert_eq!(with(waiting("ContainerCreating"), json!(null)), None);
        assert_eq!(
            with(json!(null), waiting("CrashLoopBackOff")),
            Some(PodFailure::CrashLoopBackOff)
        );
        // Escaped text decodes too; odd shapes are none.
        let escaped: ControllerPod = serde_json::from_str(
            r#"{"status": {"containerStatuses": [{"state": {"waiting": {"reason": "Err\u0049magePull"}}}]}}"#,
        )
        .expect("decodes");
        assert_eq!(escaped.keep().waiting, Some(PodFailure::ErrImagePull));
        for odd in [
            json!([{"state": {"waiting": {}}}]),
            json!([{"state": {"waiting": {"reason": null}}}]),
            json!([{"state": null}, {}]),
        ] {
            assert_eq!(with(odd.clone(), json!(null)), None, "{odd}");
        }
        assert!(std::mem::size_of::<Option<PodFailure>>() == 1);
    }

    #[test]
    fn daemonset_controller_node_keeps_its_ready_condition() {
        let node = decode::<DaemonNode>(full_node()).keep();
        assert_eq!(
            node.part,
            Some(NodeReadiness {
                ready: true,
                since: Some("2024-01-01T00:00:01Z".parse().unwrap())
            })
        );
        let mut v = full_node();
        v["status"]["conditions"] = json!([{"type": "Ready", "status": "Unknown"}]);
        let node = decode::<DaemonNode>(v).keep();
        assert_eq!(
            node.part,
            Some(NodeReadiness {
                ready: false,
                since: None
            })
        );
        let mut v = full_node();
        v.as_object_mut().unwrap().remove("status");
        assert_eq!(decode::<DaemonNode>(v).keep().part, None);
    }

    #[test]
    fn scheduler_pod_keeps_demand_fit_and_scheduling_status() {
        use crate::scheduler::fit::{is_ours, pod_demand};
        let mut pending_json = full_pod();
        pending_json["spec"]
            .as_object_mut()
            .unwrap()
            .remove("nodeName");
        pending_json["status"]["conditions"] = json!([
            {"type": "Initialized", "status": "True"},
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
             "message": "0/1 nodes are available", "lastTransitionTime": "2024-01-01T00:00:03Z"},
            {"type": "PodScheduled", "status": "True"}]);
        let full: Pod = decode(pending_json.clone());
        let pod = scheduling_pod(&decode::<ControllerPod>(pending_json));
        let m = &full.metadata;
        assert!(m.owner_references.is_some() && m.creation_timestamp.is_some());
        assert_eq!(
            pod.metadata,
            ObjectMeta {
                name: m.name.clone(),
                namespace: m.namespace.clone(),
                uid: m.uid.clone(),
                resource_version: m.resource_version.clone(),
                deletion_timestamp: m.deletion_timestamp.clone(),
                ..ObjectMeta::default()
            }
        );
        assert_eq!(pod_demand(&pod), pod_demand(&full));
        assert!(!pod_demand(&pod).host_ports.is_empty());
        let (spec, full_spec) = (pod.spec.clone().unwrap(), full.spec.clone().unwrap());
        assert_eq!(spec.node_name, None);
        assert_eq!(spec.node_selector, full_spec.node_selector);
        assert_eq!(spec.affinity, full_spec.affinity);
        assert!(full_spec.tolerations.is_some());
        assert_eq!(spec.tolerations, full_spec.tolerations);
        assert_eq!(spec.overhead, full_spec.overhead);
        assert!(is_ours(&spec));
        assert!(spec.volumes.is_none() && spec.containers[0].image.is_none());
        // The first PodScheduled condition, whole: what the scheduler reported last.
        let (status, full_status) = (pod.status.unwrap(), full.status.unwrap());
        let conditions = full_status.conditions.unwrap();
        assert_eq!(status.conditions, Some(vec![conditions[1].clone()]));
        assert_eq!(status.phase, full_status.phase);
    }

    #[test]
    fn a_bound_pod_places_the_demand_of_the_whole_pod() {
        use crate::scheduler::fit::{pod_demand, spec_demand};
        let full: Pod = decode(full_pod());
        let spec = demand_spec(&decode::<ControllerPod>(full_pod())).unwrap();
        assert_eq!(spec_demand(&spec), pod_demand(&full));
        assert!(!spec_demand(&spec).host_ports.is_empty());
    }

    #[test]
    fn shared_controller_pods_keep_node_tolerations_and_state() {
        let full: Pod = decode(full_pod());
        let full_spec = full.spec.clone().unwrap();
        let pod: ControllerPod = decode(full_pod());
        assert_eq!(pod.metadata, kept_meta(&full.metadata, true));
        let spec = pod.spec.clone().unwrap();
        assert_eq!(spec.node_name, full_spec.node_name);
        assert_eq!(spec.tolerations, full_spec.tolerations);
        let status = pod.status.clone().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert_eq!(status.ready.map(|c| c.status).as_deref(), Some("True"));
        assert_eq!(pod.ns_name(), ("default", "p"));
    }

    #[test]
    fn nodes_keep_what_each_controller_reads() {
        let full: Node = decode(full_node());
        fn common(r: &impl NodeView, full: &Node) {
            assert_eq!(r.name(), full.name());
            assert_eq!(r.label("app"), Some("a"));
            assert_eq!(r.label("none"), None);
            assert_eq!(r.taints(), full.taints());
            assert!(!r.taints().is_empty() && r.unschedulable());
            assert_eq!(r.unschedulable(), full.unschedulable());
            let view = r.affinity_node();
            assert_eq!(
                (&view.metadata.name, &view.metadata.labels),
                (&full.metadata.name, &full.metadata.labels)
            );
        }

        let placed = decode::<DaemonNode>(full_node()).keep();
        common(&placed, &full);
        let scheduled = decode::<SchedulingNode>(full_node()).keep();
        common(&scheduled, &full);
        for resource in ["cpu", "pods", "memory"] {
            assert_eq!(scheduled.allocatable(resource), full.allocatable(resource));
        }
        assert_eq!(scheduled.allocatable("cpu"), 2000);

        let watched = decode::<LifecycleNode>(full_node()).keep();
        common(&watched, &full);
        assert_eq!(
            watched.conditions().collect::<Vec<_>>(),
            full.conditions().collect::<Vec<_>>()
        );
        assert!(matches!(watched.part.conditions[0].type_, Cow::Borrowed(_)));
        assert_eq!(watched.created(), full.created());
        assert_eq!(watched.part.uid.as_deref(), full.metadata.uid.as_deref());
        assert_eq!(
            watched.part.resource_version.as_deref(),
            full.metadata.resource_version.as_deref()
        );
        assert_eq!(kept_as::<LifecycleNode>(&full), watched);
    }

    #[test]
    fn node_views_judge_selectors_as_pernode_core() {
        use k8s_openapi::api::core::v1::PodSpec;
        let full: Node = decode(full_node());
        let placed = decode::<DaemonNode>(full_node()).keep();
        let spec = |v: Value| -> PodSpec { decode(v) };
        for s in [
            spec(json!({"containers": []})),
            spec(json!({"containers": [], "nodeSelector": {"app": "a"}})),
            spec(json!({"containers": [], "nodeSelector": {"app": "b"}})),
            spec(json!({"containers": [], "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In",
                        "values": ["n"]}]}]}}}})),
            spec(json!({"containers": [], "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "app", "operator": "NotIn",
                        "values": ["a"]}]}]}}}})),
        ] {
            let want = pernode_core::scheduling::pod_matches_node_selector_and_affinity(&s, &full);
            assert_eq!(
                matches_node_selector_and_affinity(&s, &placed),
                want,
                "{s:?}"
            );
            assert_eq!(matches_node_selector_and_affinity(&s, &full), want);
        }
    }

    #[test]
    fn leases_and_metadata_only_objects_keep_identity() {
        let lease: LeaseOf = decode(json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": full_meta("n"),
            "spec": {"holderIdentity": "n", "leaseDurationSeconds": 40,
                "renewTime": "2024-01-01T00:00:09.000000Z"}
        }));
        let full: ObjectMeta = decode(full_meta("n"));
        assert_eq!(lease.metadata, kept_meta(&full, false));
        assert_eq!(
            lease.renew_time(),
            Some("2024-01-01T00:00:09Z".parse().unwrap())
        );

        // As the API server answers `as=PartialObjectMetadata`.
        let partial = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": full_meta("d")});
        let m: MetaOnly<DaemonSet> = decode(partial);
        assert_eq!(m.metadata, kept_meta(&decode(full_meta("d")), false));
        assert!(MetaOnly::<DaemonSet>::metadata_api());
        assert_eq!(MetaOnly::<DaemonSet>::plural(&()), "daemonsets");
    }

    #[test]
    fn the_first_ready_condition_is_kept() {
        let status = |conditions: Value| -> ReadyStatus {
            decode(json!({"phase": "Pending", "conditions": conditions}))
        };
        let ready = status(json!([
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "False", "reason": "r"},
            {"type": "Ready", "status": "True"}]))
        .ready
        .unwrap();
        assert_eq!(
            (ready.type_.as_str(), ready.status.as_str()),
            ("Ready", "False")
        );
        assert!(ready.reason.is_none());
        assert!(status(json!(null)).ready.is_none());
        assert!(
            status(json!([{"type": "PodScheduled", "status": "True"}]))
                .ready
                .is_none()
        );
        let none: ReadyStatus = decode(json!({}));
        assert!(none.ready.is_none() && none.phase.is_none());
    }

    #[test]
    fn pods_share_equal_labels_and_controllers() {
        let mut sharing = PodSharing::default();
        let a = sharing.share(decode::<ControllerPod>(full_pod()).keep());
        let mut v = full_pod();
        v["metadata"]["name"] = json!("q");
        let b = sharing.share(decode::<ControllerPod>(v.clone()).keep());
        assert!(Arc::ptr_eq(&a.labels, &b.labels));
        assert!(Arc::ptr_eq(
            a.controller.as_ref().unwrap(),
            b.controller.as_ref().unwrap()
        ));
        v["metadata"]["labels"]["controller-revision-hash"] = json!("other");
        let c = sharing.share(decode::<ControllerPod>(v).keep());
        assert!(!Arc::ptr_eq(&a.labels, &c.labels));
        assert_eq!(c.labels.get("controller-revision-hash"), Some("other"));
        assert!(Arc::ptr_eq(
            a.controller.as_ref().unwrap(),
            c.controller.as_ref().unwrap()
        ));
    }

    #[test]
    fn recent_equal_values_are_shared() {
        let mut r: Recent<[u8]> = Recent::default();
        let a = r.share(vec![1, 2]);
        let b = r.share(vec![1, 2]);
        assert!(Arc::ptr_eq(&a, &b));
        for n in 0..20 {
            r.share(vec![n]);
        }
        assert_eq!(r.values.len(), 8);
        assert!(
            !Arc::ptr_eq(&a, &r.share(vec![1, 2])),
            "forgotten, not wrong"
        );
    }

    #[test]
    fn interned_strings_are_shared_and_unused_ones_dropped() {
        let mut i = Interner::default();
        let a = i.intern("default");
        let b = i.intern("default");
        assert!(Arc::ptr_eq(&a, &b));
        for n in 0..200 {
            i.intern(&format!("gone-{n}"));
        }
        assert!(i.strings.len() < 200, "unused strings are pruned");
        assert!(Arc::ptr_eq(&a, &i.intern("default")));
    }
}
