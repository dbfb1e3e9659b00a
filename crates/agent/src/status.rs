//! What a kubelet reports, shared by the fleet simulator and the real agent: the Node status it
//! posts (capacity, nodeInfo, addresses, its own conditions) and the Pod status it writes for
//! each pod it runs. The simulator derives container states from an [`Outcome`]; the agent from
//! real processes; both assemble the pod's conditions with [`assemble_pod_status`].
//!
//! Pure functions, so the behaviour (which outcome a pod gets, when a condition's
//! lastTransitionTime moves) is unit-tested without an API server. They read pods and nodes
//! through small views ([`PodFacts`], [`NodeFacts`]) that k8s-openapi's `Pod` and `Node` (the
//! agent) and the simulator's compact records both implement, so one piece of code decides for
//! both; what they write is k8s-openapi types or JSON.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, Node, NodeAddress, NodeCondition, NodeStatus, Pod, PodCondition,
    PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

pub use pernode_core::simulated::SIMULATED_ANNOTATION;
/// Annotation asking the simulator to make a pod's containers exit with the given code.
pub const SIMULATE_EXIT_ANNOTATION: &str = "pernode.io/simulate-exit";
/// Image tags ending in this suffix never pull.
pub const BAD_IMAGE_SUFFIX: &str = "-bad";
/// Prefix of container IDs, image IDs and the runtime version the simulator reports.
pub const RUNTIME_SCHEME: &str = "pernode-sim://";

/// The pod conditions the kubelet sets (and [`assemble_pod_status`] writes); a pod's other
/// conditions (DisruptionTarget, readiness gates, ...) belong to others and are kept as they are.
pub const KUBELET_POD_CONDITIONS: [&str; 5] = [
    "PodReadyToStartContainers",
    "Initialized",
    "Ready",
    "ContainersReady",
    "PodScheduled",
];

/// Whether a Node's metadata carries `pernode.io/simulated: "true"`.
pub fn is_simulated(meta: &ObjectMeta) -> bool {
    pernode_core::simulated::is_simulated(meta.annotations.as_ref())
}

// ---- views ------------------------------------------------------------------------------

/// A condition (of a pod or a node) as the status functions read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConditionFacts<'a> {
    /// `type`.
    pub type_: &'a str,
    /// `status`: True, False or Unknown.
    pub status: &'a str,
    /// `lastTransitionTime`.
    pub last_transition: Option<Timestamp>,
}

/// A container of a pod's spec as the status functions read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContainerFacts<'a> {
    /// `name`.
    pub name: &'a str,
    /// `image`.
    pub image: Option<&'a str>,
}

/// A container's current status as the status functions read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContainerStatusFacts<'a> {
    /// `ready`.
    pub ready: bool,
    /// `state.waiting.reason`.
    pub waiting_reason: Option<&'a str>,
    /// `state.running.startedAt`.
    pub running_since: Option<Timestamp>,
}

/// What the status functions read of a pod: implemented by k8s-openapi's [`Pod`] and by the
/// simulator's compact pod record, which keeps little more than this.
pub trait PodFacts {
    /// The view of its current status.
    type Status: PodStatusFacts;
    /// `metadata.uid` (empty if unset).
    fn uid(&self) -> &str;
    /// The value of the [`SIMULATE_EXIT_ANNOTATION`] annotation.
    fn simulate_exit(&self) -> Option<&str>;
    /// `spec.hostNetwork`.
    fn host_network(&self) -> bool;
    /// `spec.containers`.
    fn containers(&self) -> impl ExactSizeIterator<Item = ContainerFacts<'_>>;
    /// `spec.initContainers`, if the field is set.
    fn init_containers(&self) -> Option<impl Iterator<Item = ContainerFacts<'_>>>;
    /// `status`, if the pod has one.
    fn status(&self) -> Option<&Self::Status>;
}

/// What the status functions read of a pod's current status.
pub trait PodStatusFacts {
    /// `phase`.
    fn phase(&self) -> Option<&str>;
    /// `startTime`.
    fn start_time(&self) -> Option<Timestamp>;
    /// `podIP`.
    fn pod_ip(&self) -> Option<&str>;
    /// `qosClass`.
    fn qos_class(&self) -> Option<&str>;
    /// `containerStatuses`, in order.
    fn container_statuses(&self) -> impl ExactSizeIterator<Item = ContainerStatusFacts<'_>>;
    /// `conditions`, in order.
    fn conditions(&self) -> impl Iterator<Item = ConditionFacts<'_>>;
    /// The conditions whose type is not one of [`KUBELET_POD_CONDITIONS`], in full and in
    /// order.
    fn other_conditions(&self) -> impl Iterator<Item = &PodCondition>;
}

/// What the status functions read of a node: implemented by k8s-openapi's [`Node`] and by the
/// simulator's compact decoding of Nodes.
pub trait NodeFacts {
    /// The view of its current status.
    type Status: NodeStatusFacts;
    /// `metadata.name` (empty if unset).
    fn name(&self) -> &str;
    /// `metadata.uid` (empty if unset).
    fn uid(&self) -> &str;
    /// `status`, if the node has one.
    fn status(&self) -> Option<&Self::Status>;
}

/// What the status functions read of a node's current status.
pub trait NodeStatusFacts {
    /// `capacity`, if set.
    fn capacity(&self) -> Option<&BTreeMap<String, Quantity>>;
    /// `allocatable`, if set.
    fn allocatable(&self) -> Option<&BTreeMap<String, Quantity>>;
    /// `conditions`, in order (`None`: the field is not set).
    fn conditions(&self) -> Option<impl Iterator<Item = ConditionFacts<'_>>>;
    /// `addresses`, if set.
    fn addresses(&self) -> Option<&[NodeAddress]>;
    /// `nodeInfo.kubeletVersion` and `nodeInfo.containerRuntimeVersion`, if nodeInfo is set.
    fn versions(&self) -> Option<(&str, &str)>;
}

impl PodFacts for Pod {
    type Status = PodStatus;

    fn uid(&self) -> &str {
        self.metadata.uid.as_deref().unwrap_or("")
    }

    fn simulate_exit(&self) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()?
            .get(SIMULATE_EXIT_ANNOTATION)
            .map(String::as_str)
    }

    fn host_network(&self) -> bool {
        self.spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false)
    }

    fn containers(&self) -> impl ExactSizeIterator<Item = ContainerFacts<'_>> {
        let containers = self.spec.as_ref().map_or(&[][..], |s| &s.containers[..]);
        containers.iter().map(container_facts)
    }

    fn init_containers(&self) -> Option<impl Iterator<Item = ContainerFacts<'_>>> {
        let inits = self.spec.as_ref()?.init_containers.as_ref()?;
        Some(inits.iter().map(container_facts))
    }

    fn status(&self) -> Option<&PodStatus> {
        self.status.as_ref()
    }
}

fn container_facts(c: &k8s_openapi::api::core::v1::Container) -> ContainerFacts<'_> {
    ContainerFacts {
        name: &c.name,
        image: c.image.as_deref(),
    }
}

impl PodStatusFacts for PodStatus {
    fn phase(&self) -> Option<&str> {
        self.phase.as_deref()
    }

    fn start_time(&self) -> Option<Timestamp> {
        self.start_time.as_ref().map(|t| t.0)
    }

    fn pod_ip(&self) -> Option<&str> {
        self.pod_ip.as_deref()
    }

    fn qos_class(&self) -> Option<&str> {
        self.qos_class.as_deref()
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
                    .and_then(|r| r.started_at.as_ref())
                    .map(|t| t.0),
            }
        })
    }

    fn conditions(&self) -> impl Iterator<Item = ConditionFacts<'_>> {
        self.conditions.iter().flatten().map(|c| ConditionFacts {
            type_: &c.type_,
            status: &c.status,
            last_transition: c.last_transition_time.as_ref().map(|t| t.0),
        })
    }

    fn other_conditions(&self) -> impl Iterator<Item = &PodCondition> {
        self.conditions
            .iter()
            .flatten()
            .filter(|c| !KUBELET_POD_CONDITIONS.contains(&c.type_.as_str()))
    }
}

impl NodeFacts for Node {
    type Status = NodeStatus;

    fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or("")
    }

    fn uid(&self) -> &str {
        self.metadata.uid.as_deref().unwrap_or("")
    }

    fn status(&self) -> Option<&NodeStatus> {
        self.status.as_ref()
    }
}

impl NodeStatusFacts for NodeStatus {
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
            status: &c.status,
            last_transition: c.last_transition_time.as_ref().map(|t| t.0),
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

/// Capacity and identity the simulator reports for its nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeProfile {
    /// Resource name → quantity string, reported as both capacity and allocatable.
    pub capacity: BTreeMap<String, String>,
    /// `status.nodeInfo.kubeletVersion` (also kubeProxyVersion).
    pub kubelet_version: String,
    /// `status.nodeInfo.osImage`.
    pub os_image: String,
    /// `status.nodeInfo.kernelVersion`.
    pub kernel_version: String,
    /// `status.nodeInfo.containerRuntimeVersion`.
    pub container_runtime_version: String,
    /// `status.nodeInfo.architecture` (Go's GOARCH spelling).
    pub architecture: String,
    /// `status.daemonEndpoints.kubeletEndpoint.Port`: where the API server reaches the node's
    /// log endpoint.
    pub kubelet_port: i32,
}

impl Default for NodeProfile {
    fn default() -> Self {
        let capacity = [
            ("cpu", "4"),
            ("memory", "16Gi"),
            ("pods", "110"),
            ("ephemeral-storage", "100Gi"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        NodeProfile {
            capacity,
            kubelet_version: "v1.33.0".to_string(),
            os_image: "pernode simulated Linux".to_string(),
            kernel_version: "6.1.0-pernode-sim".to_string(),
            container_runtime_version: format!("{RUNTIME_SCHEME}{}", env!("CARGO_PKG_VERSION")),
            architecture: "amd64".to_string(),
            kubelet_port: 10250,
        }
    }
}

/// The InternalIP of the simulated node with index `idx` (0-based): 10.0.0.1, 10.0.0.2, ...
/// A /8 holds 16 million nodes, far more than one process simulates.
pub fn node_ip(idx: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0A00_0000u32 | ((idx + 1) & 0x00FF_FFFF))
}

/// A pod IP out of the CGNAT range 100.64.0.0/10, from a process-wide counter.
pub fn pod_ip(counter: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x6440_0000u32 | ((counter % 0x003F_FFFE) + 1))
}

/// The kubelet's own node conditions: (type, status, reason, message).
const OWN_CONDITIONS: [(&str, &str, &str, &str); 4] = [
    (
        "MemoryPressure",
        "False",
        "KubeletHasSufficientMemory",
        "kubelet has sufficient memory available",
    ),
    (
        "DiskPressure",
        "False",
        "KubeletHasNoDiskPressure",
        "kubelet has no disk pressure",
    ),
    (
        "PIDPressure",
        "False",
        "KubeletHasSufficientPID",
        "kubelet has sufficient PID available",
    ),
    (
        "Ready",
        "True",
        "KubeletReady",
        "kubelet is posting ready status",
    ),
];

fn time_string(t: Timestamp) -> Value {
    serde_json::to_value(Time(t)).unwrap_or(Value::Null)
}

/// When each of the kubelet's own node conditions last changed, for those that still have the
/// status the kubelet reports: all a node status post keeps from the node's current status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OwnConditionTimes([Option<Timestamp>; OWN_CONDITIONS.len()]);

impl OwnConditionTimes {
    /// The times `node` shows now.
    pub fn of(node: &impl NodeFacts) -> OwnConditionTimes {
        OwnConditionTimes(OWN_CONDITIONS.map(|(type_, status, _, _)| {
            node.status()
                .and_then(|s| s.conditions())
                .and_then(|mut cs| cs.find(|c| c.type_ == type_))
                .filter(|c| c.status == status)
                .and_then(|c| c.last_transition)
        }))
    }
}

/// The body of a strategic merge patch of `nodes/{name}/status` that posts the kubelet's view:
/// capacity, allocatable, nodeInfo, addresses and the four conditions the kubelet owns.
///
/// Conditions are merged by `type`, so conditions set by others (NetworkUnavailable from a
/// network plugin) survive. A condition keeps its lastTransitionTime while its status is
/// unchanged; lastHeartbeatTime is always `now`.
pub fn node_status_patch(
    node: &impl NodeFacts,
    profile: &NodeProfile,
    ip: Ipv4Addr,
    now: Timestamp,
) -> Value {
    let times = OwnConditionTimes::of(node);
    node_status_patch_for(node.name(), node.uid(), &times, profile, ip, now)
}

/// [`node_status_patch`] for the node named `name` with `uid`, whose own conditions show
/// `times`.
pub fn node_status_patch_for(
    name: &str,
    uid: &str,
    times: &OwnConditionTimes,
    profile: &NodeProfile,
    ip: Ipv4Addr,
    now: Timestamp,
) -> Value {
    let conditions: Vec<Value> = OWN_CONDITIONS
        .iter()
        .zip(times.0)
        .map(|((type_, status, reason, message), kept)| {
            let transition = kept.unwrap_or(now);
            json!({
                "type": type_, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": time_string(now),
                "lastTransitionTime": time_string(transition),
            })
        })
        .collect();
    json!({
        "status": {
            "capacity": profile.capacity,
            "allocatable": profile.capacity,
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": ip.to_string()},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": profile.kubelet_port}},
            "nodeInfo": {
                "machineID": uid.replace('-', ""),
                "systemUUID": uid,
                "bootID": uid,
                "kernelVersion": profile.kernel_version,
                "osImage": profile.os_image,
                "containerRuntimeVersion": profile.container_runtime_version,
                "kubeletVersion": profile.kubelet_version,
                "kubeProxyVersion": profile.kubelet_version,
                "operatingSystem": "linux",
                "architecture": profile.architecture,
            },
        }
    })
}

/// Whether the node already shows what [`node_status_patch`] would post (apart from heartbeat
/// times), so watch events caused by our own writes do not trigger another write.
pub fn node_status_current(node: &impl NodeFacts, profile: &NodeProfile, ip: Ipv4Addr) -> bool {
    let Some(status) = node.status() else {
        return false;
    };
    let capacity_ok = |m: Option<&BTreeMap<String, Quantity>>| {
        m.is_some_and(|m| {
            profile
                .capacity
                .iter()
                .all(|(k, v)| m.get(k).is_some_and(|q| q.0 == *v))
        })
    };
    let conditions_ok = OWN_CONDITIONS.iter().all(|(t, s, _, _)| {
        status
            .conditions()
            .is_some_and(|mut cs| cs.any(|c| c.type_ == *t && c.status == *s))
    });
    let ip = ip.to_string();
    let addr_ok = status
        .addresses()
        .is_some_and(|a| a.iter().any(|a| a.type_ == "InternalIP" && a.address == ip));
    let info_ok = status.versions().is_some_and(|(kubelet, runtime)| {
        kubelet == profile.kubelet_version && runtime == profile.container_runtime_version
    });
    capacity_ok(status.capacity())
        && capacity_ok(status.allocatable())
        && conditions_ok
        && addr_ok
        && info_ok
}

/// What the simulated kubelet does with a (non-terminal, non-terminating) pod bound to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every container starts and is ready.
    Run,
    /// A container's image never pulls: first `ErrImagePull`, then `ImagePullBackOff`.
    ImagePullFails {
        /// Whether the kubelet has moved on to back-off (the second report).
        backoff: bool,
    },
    /// The containers exit with this code: 0 → Succeeded, anything else → Failed.
    Exit(i32),
}

/// Whether an image reference has a tag ending in `-bad` (digests are never bad).
pub fn image_is_bad(image: &str) -> bool {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split_once(':')
        .is_some_and(|(_, tag)| tag.ends_with(BAD_IMAGE_SUFFIX))
}

/// The outcome the pod's spec and annotations ask for (with `backoff` false for image errors).
///
/// An unparsable `pernode.io/simulate-exit` value is treated as exit code 1: the user asked for
/// a failure, so we give one rather than silently running the pod.
pub fn requested_outcome(pod: &impl PodFacts) -> Outcome {
    let mut spec_images = pod
        .containers()
        .chain(pod.init_containers().into_iter().flatten())
        .filter_map(|c| c.image);
    if spec_images.any(image_is_bad) {
        return Outcome::ImagePullFails { backoff: false };
    }
    if let Some(code) = pod.simulate_exit() {
        return Outcome::Exit(code.trim().parse().unwrap_or(1));
    }
    Outcome::Run
}

/// Whether the pod's current status already reflects `outcome`, i.e. nothing to write.
pub fn status_reflects(pod: &impl PodFacts, outcome: &Outcome) -> bool {
    let Some(status) = pod.status() else {
        return false;
    };
    let phase = status.phase().unwrap_or("");
    let mut statuses = status.container_statuses();
    if statuses.len() != pod.containers().len() {
        return false;
    }
    match outcome {
        Outcome::Run => {
            phase == "Running"
                && statuses.all(|c| c.ready)
                && condition_status(status, "Ready") == Some("True")
                && status.pod_ip().is_some()
        }
        Outcome::ImagePullFails { backoff } => {
            let want = if *backoff {
                "ImagePullBackOff"
            } else {
                "ErrImagePull"
            };
            phase == "Pending" && statuses.any(|c| c.waiting_reason == Some(want))
        }
        Outcome::Exit(code) => {
            let want = if *code == 0 { "Succeeded" } else { "Failed" };
            phase == want
        }
    }
}

fn condition_status<'a>(status: &'a impl PodStatusFacts, type_: &str) -> Option<&'a str> {
    status
        .conditions()
        .find(|c| c.type_ == type_)
        .map(|c| c.status)
}

/// Network identity of a pod: its node's IP, and its own IP (the node's when hostNetwork).
#[derive(Clone, Copy, Debug)]
pub struct PodAddresses {
    /// The node's InternalIP.
    pub host_ip: Ipv4Addr,
    /// A fresh pod IP, used unless the pod shares the host network (or already has an IP).
    pub pod_ip: Ipv4Addr,
}

/// The full status the simulated kubelet writes for `pod` given `outcome`.
///
/// Conditions carry lastTransitionTime, preserved from the current status when a condition
/// keeps its status (availability via minReadySeconds depends on it, R159). Conditions of
/// other types (DisruptionTarget, readiness gates) are kept as they are.
pub fn pod_status(
    pod: &impl PodFacts,
    outcome: &Outcome,
    addrs: PodAddresses,
    now: Timestamp,
) -> PodStatus {
    let current = pod.status();
    let start_time = Time(current.and_then(|s| s.start_time()).unwrap_or(now));
    let container_ids = |name: &str| {
        let uid = pod.uid();
        format!("{RUNTIME_SCHEME}{uid}/{name}")
    };
    let image_id = |image: &str| format!("{RUNTIME_SCHEME}image/{image}");
    let started_at = Time(
        current
            .and_then(|s| s.container_statuses().next())
            .and_then(|c| c.running_since)
            .unwrap_or(now),
    );

    // One status per container: what varies by outcome is its state and whether it started;
    // a container that never pulled has neither an image ID nor a container ID.
    let container_status = |c: ContainerFacts<'_>, started: bool, state: ContainerState| {
        let image = c.image.unwrap_or_default().to_string();
        let pulled = state.waiting.is_none();
        ContainerStatus {
            name: c.name.to_string(),
            image_id: if pulled {
                image_id(&image)
            } else {
                String::new()
            },
            image,
            container_id: pulled.then(|| container_ids(c.name)),
            ready: started && state.running.is_some(),
            started: Some(started),
            restart_count: 0,
            state: Some(state),
            ..Default::default()
        }
    };
    let (phase, ready, mut containers) = match outcome {
        Outcome::Run => {
            let cs = pod
                .containers()
                .map(|c| {
                    let running = ContainerStateRunning {
                        started_at: Some(started_at.clone()),
                    };
                    container_status(
                        c,
                        true,
                        ContainerState {
                            running: Some(running),
                            ..Default::default()
                        },
                    )
                })
                .collect::<Vec<_>>();
            ("Running", true, cs)
        }
        Outcome::ImagePullFails { backoff } => {
            let cs = pod
                .containers()
                .map(|c| {
                    let image = c.image.unwrap_or_default();
                    let (reason, message) = if !image_is_bad(image) {
                        ("ContainerCreating", None)
                    } else if *backoff {
                        (
                            "ImagePullBackOff",
                            Some(format!("Back-off pulling image \"{image}\"")),
                        )
                    } else {
                        (
                            "ErrImagePull",
                            Some(format!(
                                "failed to pull and unpack image \"{image}\": not found"
                            )),
                        )
                    };
                    let waiting = ContainerStateWaiting {
                        reason: Some(reason.to_string()),
                        message,
                    };
                    container_status(
                        c,
                        false,
                        ContainerState {
                            waiting: Some(waiting),
                            ..Default::default()
                        },
                    )
                })
                .collect::<Vec<_>>();
            ("Pending", false, cs)
        }
        Outcome::Exit(code) => {
            let cs = pod
                .containers()
                .map(|c| {
                    let terminated = ContainerStateTerminated {
                        exit_code: *code,
                        reason: Some(if *code == 0 { "Completed" } else { "Error" }.to_string()),
                        started_at: Some(started_at.clone()),
                        finished_at: Some(Time(now)),
                        container_id: Some(container_ids(c.name)),
                        ..Default::default()
                    };
                    container_status(
                        c,
                        false,
                        ContainerState {
                            terminated: Some(terminated),
                            ..Default::default()
                        },
                    )
                })
                .collect::<Vec<_>>();
            (if *code == 0 { "Succeeded" } else { "Failed" }, false, cs)
        }
    };
    // Init containers ran to completion unless an image never pulled.
    let init_done = !matches!(outcome, Outcome::ImagePullFails { .. });
    let init_statuses = pod.init_containers().map(|inits| {
        inits
            .map(|c| ContainerStatus {
                name: c.name.to_string(),
                image: c.image.unwrap_or_default().to_string(),
                image_id: image_id(c.image.unwrap_or("")),
                container_id: init_done.then(|| container_ids(c.name)),
                ready: init_done,
                started: Some(false),
                restart_count: 0,
                state: Some(if init_done {
                    ContainerState {
                        terminated: Some(ContainerStateTerminated {
                            exit_code: 0,
                            reason: Some("Completed".to_string()),
                            started_at: Some(start_time.clone()),
                            finished_at: Some(start_time.clone()),
                            container_id: Some(container_ids(c.name)),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }
                } else {
                    ContainerState {
                        waiting: Some(ContainerStateWaiting {
                            reason: Some("PodInitializing".to_string()),
                            message: None,
                        }),
                        ..Default::default()
                    }
                }),
                ..Default::default()
            })
            .collect::<Vec<_>>()
    });

    containers.sort_by(|a, b| a.name.cmp(&b.name));
    let view = PodView {
        phase: phase.to_string(),
        ready,
        containers,
        init_containers: init_statuses,
        initialized: init_done,
        completed: matches!(outcome, Outcome::Exit(_)),
    };
    assemble_pod_status(pod, view, addrs, now)
}

/// The container side of a pod's status, as a runtime (simulated or real) sees it; the rest
/// (conditions, IPs, start time) follows in [`assemble_pod_status`].
#[derive(Clone, Debug, Default)]
pub struct PodView {
    /// `status.phase`.
    pub phase: String,
    /// Whether the pod is ready (every container ready, readiness gates aside).
    pub ready: bool,
    /// One status per container (any order; sorted by name as the kubelet does).
    pub containers: Vec<ContainerStatus>,
    /// Init container statuses, if the pod has init containers.
    pub init_containers: Option<Vec<ContainerStatus>>,
    /// Whether the init containers have completed.
    pub initialized: bool,
    /// Whether every container has terminated for good (Ready reason `PodCompleted`).
    pub completed: bool,
}

/// The full pod status from its containers' view: conditions with lastTransitionTime kept while
/// a condition keeps its status (R159), conditions owned by others (DisruptionTarget, readiness
/// gates) kept as they are, IPs and start time.
pub fn assemble_pod_status(
    pod: &impl PodFacts,
    view: PodView,
    addrs: PodAddresses,
    now: Timestamp,
) -> PodStatus {
    let current = pod.status();
    let start_time = Time(current.and_then(|s| s.start_time()).unwrap_or(now));
    let pod_ip = if pod.host_network() {
        addrs.host_ip.to_string()
    } else {
        current
            .and_then(|s| s.pod_ip())
            .map_or_else(|| addrs.pod_ip.to_string(), str::to_string)
    };
    let PodView {
        phase,
        ready,
        mut containers,
        init_containers: init_statuses,
        initialized: init_done,
        completed,
    } = view;
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    let not_ready: Vec<&str> = containers
        .iter()
        .filter(|c| !c.ready)
        .map(|c| c.name.as_str())
        .collect();
    let (not_ready_reason, not_ready_message) = if completed {
        ("PodCompleted".to_string(), None)
    } else {
        (
            "ContainersNotReady".to_string(),
            Some(format!(
                "containers with unready status: [{}]",
                not_ready.join(" ")
            )),
        )
    };
    let ready_status = if ready { "True" } else { "False" };
    let mut conditions: Vec<PodCondition> = Vec::new();
    let mut push = |type_: &str, status: &str, reason: Option<String>, message: Option<String>| {
        conditions.push(PodCondition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason,
            message,
            last_transition_time: Some(transition_time(current, type_, status, now)),
            ..Default::default()
        });
    };
    push(
        "PodReadyToStartContainers",
        if init_done || ready { "True" } else { "False" },
        None,
        None,
    );
    push(
        "Initialized",
        if init_done { "True" } else { "False" },
        None,
        None,
    );
    let (r, m) = if ready {
        (None, None)
    } else {
        (Some(not_ready_reason.clone()), not_ready_message.clone())
    };
    push("Ready", ready_status, r.clone(), m.clone());
    push("ContainersReady", ready_status, r, m);
    push("PodScheduled", "True", None, None);
    // Conditions others own (DisruptionTarget, readiness gates, ...) stay.
    for c in current.into_iter().flat_map(|s| s.other_conditions()) {
        if !conditions.iter().any(|o| o.type_ == c.type_) {
            conditions.push(c.clone());
        }
    }

    PodStatus {
        phase: Some(phase),
        conditions: Some(conditions),
        container_statuses: Some(containers),
        init_container_statuses: init_statuses,
        host_ip: Some(addrs.host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: addrs.host_ip.to_string(),
        }]),
        pod_ip: Some(pod_ip.clone()),
        pod_ips: Some(vec![PodIP { ip: pod_ip }]),
        start_time: Some(start_time),
        qos_class: current.and_then(|s| s.qos_class()).map(str::to_string),
        ..Default::default()
    }
}

/// The lastTransitionTime for a condition: unchanged while its status is unchanged.
fn transition_time(
    current: Option<&impl PodStatusFacts>,
    type_: &str,
    status: &str,
    now: Timestamp,
) -> Time {
    let kept = current
        .and_then(|s| {
            s.conditions()
                .find(|c| c.type_ == type_ && c.status == status)
        })
        .and_then(|c| c.last_transition);
    Time(kept.unwrap_or(now))
}

/// A node's Lease in `namespace` (kube-node-lease), renewed at `now`; owned by its Node, as
/// the kubelet makes it, so the garbage collector removes it with the node.
pub fn node_lease(
    node: &str,
    node_uid: &str,
    namespace: &str,
    duration_seconds: i32,
    now: Timestamp,
) -> Value {
    let renew = serde_json::to_value(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
        now,
    ))
    .unwrap_or(Value::Null);
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {
            "name": node,
            "namespace": namespace,
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid,
            }],
        },
        "spec": {
            "holderIdentity": node,
            "leaseDurationSeconds": duration_seconds,
            "renewTime": renew,
        }
    })
}

/// Node conditions this simulator owns (for tests and for callers that need to know which
/// conditions it will overwrite).
pub fn own_condition_types() -> impl Iterator<Item = &'static str> {
    OWN_CONDITIONS.iter().map(|c| c.0)
}

/// A node condition as it would read after [`node_status_patch`], for tests.
pub fn find_node_condition<'a>(node: &'a Node, type_: &str) -> Option<&'a NodeCondition> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, NodeStatus, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn ts(s: &str) -> Timestamp {
        s.parse().expect("timestamp literal")
    }

    fn pod(images: &[&str]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            spec: Some(PodSpec {
                containers: images
                    .iter()
                    .enumerate()
                    .map(|(i, im)| Container {
                        name: format!("c{i}"),
                        image: Some(im.to_string()),
                        ..Default::default()
                    })
                    .collect(),
                node_name: Some("node-1".into()),
                ..Default::default()
            }),
            status: Some(PodStatus {
                phase: Some("Pending".into()),
                ..Default::default()
            }),
        }
    }

    fn addrs() -> PodAddresses {
        PodAddresses {
            host_ip: node_ip(0),
            pod_ip: pod_ip(0),
        }
    }

    #[test]
    fn ips_are_distinct_and_in_range() {
        assert_eq!(node_ip(0).to_string(), "10.0.0.1");
        assert_eq!(node_ip(9_999).to_string(), "10.0.39.16");
        assert_eq!(pod_ip(0).to_string(), "100.64.0.1");
        assert_ne!(pod_ip(1), pod_ip(2));
    }

    #[test]
    fn bad_images_are_recognised_by_tag_only() {
        assert!(image_is_bad("nginx:1.27-bad"));
        assert!(image_is_bad("registry:5000/team/app:v2-bad"));
        assert!(!image_is_bad("registry:5000/team/app-bad"));
        assert!(!image_is_bad("nginx:1.27"));
        assert!(!image_is_bad("nginx@sha256:abc-bad"));
    }

    #[test]
    fn outcome_follows_images_then_annotation() {
        assert_eq!(requested_outcome(&pod(&["nginx:1"])), Outcome::Run);
        assert_eq!(
            requested_outcome(&pod(&["nginx:1", "x:2-bad"])),
            Outcome::ImagePullFails { backoff: false }
        );
        let mut p = pod(&["nginx:1"]);
        p.metadata.annotations =
            Some([(SIMULATE_EXIT_ANNOTATION.to_string(), "3".to_string())].into());
        assert_eq!(requested_outcome(&p), Outcome::Exit(3));
        p.metadata.annotations =
            Some([(SIMULATE_EXIT_ANNOTATION.to_string(), "nope".to_string())].into());
        assert_eq!(requested_outcome(&p), Outcome::Exit(1));
    }

    #[test]
    fn running_status_is_ready_with_all_conditions() {
        let now = ts("2025-01-01T00:00:00Z");
        let p = pod(&["nginx:1", "sidecar:2"]);
        let s = pod_status(&p, &Outcome::Run, addrs(), now);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("100.64.0.1"));
        assert_eq!(s.host_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(s.start_time, Some(Time(now)));
        let cs = s.container_statuses.as_ref().expect("container statuses");
        assert_eq!(cs.len(), 2);
        assert!(cs.iter().all(|c| c.ready && c.started == Some(true)));
        assert!(
            cs.iter()
                .all(|c| c.state.as_ref().and_then(|s| s.running.as_ref()).is_some())
        );
        for t in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
            let c = s
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == t)
                .expect(t);
            assert_eq!(c.status, "True", "{t}");
            assert_eq!(c.last_transition_time, Some(Time(now)));
        }
        let mut p2 = p.clone();
        p2.status = Some(s);
        assert!(status_reflects(&p2, &Outcome::Run));
    }

    #[test]
    fn host_network_pods_use_the_node_ip() {
        let mut p = pod(&["nginx:1"]);
        if let Some(spec) = p.spec.as_mut() {
            spec.host_network = Some(true);
        }
        let s = pod_status(&p, &Outcome::Run, addrs(), ts("2025-01-01T00:00:00Z"));
        assert_eq!(s.pod_ip.as_deref(), Some("10.0.0.1"));
    }

    #[test]
    fn transition_time_is_kept_while_status_is_unchanged() {
        let t0 = ts("2025-01-01T00:00:00Z");
        let t1 = ts("2025-01-01T00:05:00Z");
        let mut p = pod(&["nginx:1"]);
        p.status = Some(pod_status(&p, &Outcome::Run, addrs(), t0));
        let again = pod_status(&p, &Outcome::Run, addrs(), t1);
        let ready = again
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        assert_eq!(ready.last_transition_time, Some(Time(t0)));
        assert_eq!(again.start_time, Some(Time(t0)));
        // A change of status moves it.
        let failed = pod_status(&p, &Outcome::Exit(2), addrs(), t1);
        let ready = failed
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        assert_eq!(
            (ready.status.as_str(), ready.last_transition_time.clone()),
            ("False", Some(Time(t1)))
        );
    }

    #[test]
    fn bad_image_stays_pending_and_backs_off() {
        let now = ts("2025-01-01T00:00:00Z");
        let mut p = pod(&["nginx:1", "app:v2-bad"]);
        let s = pod_status(
            &p,
            &Outcome::ImagePullFails { backoff: false },
            addrs(),
            now,
        );
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        let bad = s
            .container_statuses
            .iter()
            .flatten()
            .find(|c| c.name == "c1")
            .expect("c1");
        assert_eq!(
            bad.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref()),
            Some("ErrImagePull")
        );
        assert!(!bad.ready);
        let ready = s
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(ready.reason.as_deref(), Some("ContainersNotReady"));
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [c0 c1]")
        );
        p.status = Some(s);
        assert!(status_reflects(
            &p,
            &Outcome::ImagePullFails { backoff: false }
        ));
        assert!(!status_reflects(
            &p,
            &Outcome::ImagePullFails { backoff: true }
        ));
        let s = pod_status(&p, &Outcome::ImagePullFails { backoff: true }, addrs(), now);
        let bad = s
            .container_statuses
            .iter()
            .flatten()
            .find(|c| c.name == "c1")
            .expect("c1");
        assert_eq!(
            bad.state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.as_deref()),
            Some("ImagePullBackOff")
        );
    }

    #[test]
    fn exit_code_fails_or_succeeds_the_pod() {
        let now = ts("2025-01-01T00:00:00Z");
        let p = pod(&["nginx:1"]);
        let s = pod_status(&p, &Outcome::Exit(137), addrs(), now);
        assert_eq!(s.phase.as_deref(), Some("Failed"));
        let term = s
            .container_statuses
            .as_ref()
            .and_then(|c| c[0].state.clone())
            .and_then(|s| s.terminated)
            .expect("terminated");
        assert_eq!(
            (term.exit_code, term.reason.as_deref()),
            (137, Some("Error"))
        );
        let s = pod_status(&p, &Outcome::Exit(0), addrs(), now);
        assert_eq!(s.phase.as_deref(), Some("Succeeded"));
    }

    #[test]
    fn kubelet_conditions_are_the_ones_written() {
        let p = pod(&["nginx:1"]);
        let s = pod_status(&p, &Outcome::Run, addrs(), ts("2025-01-01T00:00:00Z"));
        let written: Vec<&str> = s
            .conditions
            .iter()
            .flatten()
            .map(|c| c.type_.as_str())
            .collect();
        assert_eq!(written, KUBELET_POD_CONDITIONS);
    }

    #[test]
    fn conditions_owned_by_others_survive() {
        let now = ts("2025-01-01T00:00:00Z");
        let mut p = pod(&["nginx:1"]);
        p.status = Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "DisruptionTarget".into(),
                status: "True".into(),
                reason: Some("DeletionByTaintManager".into()),
                ..Default::default()
            }]),
            ..Default::default()
        });
        let s = pod_status(&p, &Outcome::Run, addrs(), now);
        assert!(
            s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "DisruptionTarget")
        );
    }

    #[test]
    fn node_patch_fills_status_and_keeps_transition_times() {
        let t0 = ts("2025-01-01T00:00:00Z");
        let t1 = ts("2025-01-01T00:01:00Z");
        let mut node = Node {
            metadata: ObjectMeta {
                name: Some("node-1".into()),
                uid: Some("ab-cd".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let profile = NodeProfile::default();
        assert!(!node_status_current(&node, &profile, node_ip(0)));
        let patch = node_status_patch(&node, &profile, node_ip(0), t0);
        assert_eq!(patch["status"]["capacity"]["cpu"], "4");
        assert_eq!(patch["status"]["allocatable"]["memory"], "16Gi");
        assert_eq!(patch["status"]["allocatable"]["pods"], "110");
        assert_eq!(patch["status"]["nodeInfo"]["kubeletVersion"], "v1.33.0");
        assert!(
            patch["status"]["nodeInfo"]["containerRuntimeVersion"]
                .as_str()
                .is_some_and(|v| v.starts_with("pernode-sim://"))
        );
        assert_eq!(patch["status"]["addresses"][0]["address"], "10.0.0.1");
        let status: NodeStatus =
            serde_json::from_value(patch["status"].clone()).expect("valid NodeStatus");
        node.status = Some(status);
        assert!(node_status_current(&node, &profile, node_ip(0)));
        assert_eq!(
            find_node_condition(&node, "Ready").map(|c| c.status.as_str()),
            Some("True")
        );
        // A later heartbeat keeps lastTransitionTime, moves lastHeartbeatTime, and never
        // mentions conditions it does not own.
        let later = node_status_patch(&node, &profile, node_ip(0), t1);
        let conds = later["status"]["conditions"]
            .as_array()
            .expect("conditions");
        assert_eq!(conds.len(), 4);
        assert!(
            conds
                .iter()
                .all(|c| c["lastTransitionTime"] == "2025-01-01T00:00:00Z")
        );
        assert!(
            conds
                .iter()
                .all(|c| c["lastHeartbeatTime"] == "2025-01-01T00:01:00Z")
        );
        assert!(own_condition_types().all(|t| t != "NetworkUnavailable"));
    }
}
