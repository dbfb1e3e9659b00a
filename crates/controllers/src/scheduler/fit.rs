//! The scheduler's fit checks, free of I/O: which nodes a pending pod may be bound to and, when
//! none, the reasons, in upstream's words.
//!
//! Follows upstream's default Filter plugins in their order, stopping at the first that rejects
//! a node (as the framework does): NodeUnschedulable, TaintToleration, NodeAffinity, NodePorts,
//! NodeResourcesFit. Volume and inter-pod plugins are out of scope (no volumes to bind, pod
//! affinity is not used by daemon pods).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodSpec, Taint};
use pernode_core::quantity::parse_quantity;
use pernode_core::scheduling::{
    TAINT_EFFECT_NO_EXECUTE, TAINT_EFFECT_NO_SCHEDULE, find_untolerated_taint,
    tolerations_tolerate_taint,
};

use crate::trim::{AllocatableView, matches_node_selector_and_affinity};

/// NodeUnschedulable's reason.
pub const REASON_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// NodeAffinity's reason.
pub const REASON_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
/// NodePorts' reason.
pub const REASON_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
/// NodeResourcesFit's reason for the pod count.
pub const REASON_TOO_MANY_PODS: &str = "Too many pods";
/// The message when the cluster has no node at all.
pub const NO_NODES_MESSAGE: &str = "no nodes available to schedule pods";
/// The taint a cordoned node carries; tolerating it lets a pod onto the node (R158).
pub const UNSCHEDULABLE_TAINT_KEY: &str = "node.kubernetes.io/unschedulable";

/// One host port a pod uses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// TCP, UDP or SCTP.
    pub protocol: String,
    /// The host IP ("0.0.0.0" when unset).
    pub ip: String,
    /// The port.
    pub port: i32,
}

impl HostPort {
    /// Upstream's `HostPortInfo.CheckConflict`: same protocol and port, and either side binds
    /// every address or both bind the same one.
    pub fn conflicts(&self, other: &HostPort) -> bool {
        self.protocol == other.protocol
            && self.port == other.port
            && (self.ip == other.ip || self.ip == "0.0.0.0" || other.ip == "0.0.0.0")
    }
}

/// What a pod asks of a node: resource requests (milli-units, so cpu "100m" is 100 and memory
/// "1Ki" is 1024000) and host ports.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodDemand {
    /// Resource name → requested amount in milli-units.
    pub requests: BTreeMap<String, i128>,
    /// Host ports.
    pub host_ports: Vec<HostPort>,
}

fn add_requests(
    into: &mut BTreeMap<String, i128>,
    resources: Option<&k8s_openapi::api::core::v1::ResourceRequirements>,
) {
    let Some(r) = resources else { return };
    // A limit without a request means request = limit (upstream's defaulting does this at
    // admission; doing it here keeps the check right whoever created the pod).
    let mut merged: BTreeMap<&String, &k8s_openapi::apimachinery::pkg::api::resource::Quantity> =
        BTreeMap::new();
    for (k, v) in r.limits.iter().flatten() {
        merged.insert(k, v);
    }
    for (k, v) in r.requests.iter().flatten() {
        merged.insert(k, v);
    }
    for (k, v) in merged {
        if let Ok(q) = parse_quantity(&v.0) {
            *into.entry(k.clone()).or_insert(0) += q.milli_value();
        }
    }
}

/// Upstream's `resource.PodRequests`: the sum over containers (and restartable init containers,
/// i.e. sidecars), at least the largest single init container (plus the sidecars started before
/// it), plus the pod overhead.
pub fn pod_requests(spec: &PodSpec) -> BTreeMap<String, i128> {
    let mut sum = BTreeMap::new();
    for c in &spec.containers {
        add_requests(&mut sum, c.resources.as_ref());
    }
    let mut sidecars: BTreeMap<String, i128> = BTreeMap::new();
    let mut init_max: BTreeMap<String, i128> = BTreeMap::new();
    for c in spec.init_containers.iter().flatten() {
        let mut one = BTreeMap::new();
        add_requests(&mut one, c.resources.as_ref());
        if c.restart_policy.as_deref() == Some("Always") {
            for (k, v) in one {
                *sidecars.entry(k.clone()).or_insert(0) += v;
                *sum.entry(k).or_insert(0) += v;
            }
        } else {
            for (k, v) in one {
                let with_sidecars = v + sidecars.get(&k).copied().unwrap_or(0);
                let e = init_max.entry(k).or_insert(0);
                *e = (*e).max(with_sidecars);
            }
        }
    }
    for (k, v) in init_max {
        let e = sum.entry(k).or_insert(0);
        *e = (*e).max(v);
    }
    for (k, v) in spec.overhead.iter().flatten() {
        if let Ok(q) = parse_quantity(&v.0) {
            *sum.entry(k.clone()).or_insert(0) += q.milli_value();
        }
    }
    sum
}

/// The host ports of a pod's containers (and init containers), as upstream's NodePorts plugin
/// collects them.
pub fn pod_host_ports(spec: &PodSpec) -> Vec<HostPort> {
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .flat_map(|c| c.ports.iter().flatten())
        .filter(|p| p.host_port.unwrap_or(0) > 0)
        .map(|p| HostPort {
            protocol: p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
            ip: p
                .host_ip
                .clone()
                .filter(|ip| !ip.is_empty())
                .unwrap_or_else(|| "0.0.0.0".to_string()),
            port: p.host_port.unwrap_or(0),
        })
        .collect()
}

/// The demand of a pod.
pub fn pod_demand(pod: &Pod) -> PodDemand {
    pod.spec.as_ref().map(spec_demand).unwrap_or_default()
}

/// The demand of a pod's spec.
pub fn spec_demand(spec: &PodSpec) -> PodDemand {
    PodDemand {
        requests: pod_requests(spec),
        host_ports: pod_host_ports(spec),
    }
}

/// What is already placed on a node: its pods (keyed by UID) and their summed requests. Every
/// node has one, most with a pod or two: small lists rather than maps (a map's first
/// allocation is several times one entry), and demands are `Arc`s so that pods asking the same
/// (a DaemonSet's) share one.
#[derive(Clone, Debug, Default)]
pub struct NodeUsage {
    pods: Vec<(Box<str>, Arc<PodDemand>)>,
    /// Resource → summed request, sorted by resource.
    requested: Vec<(Box<str>, i128)>,
}

impl NodeUsage {
    /// Account for a pod (replacing an earlier entry with the same UID).
    pub fn add(&mut self, uid: &str, demand: impl Into<Arc<PodDemand>>) {
        let demand = demand.into();
        self.remove(uid);
        for (k, v) in &demand.requests {
            match self.requested_index(k) {
                Ok(i) => self.requested[i].1 += v,
                Err(i) => self.requested.insert(i, (k.as_str().into(), *v)),
            }
        }
        self.pods.push((uid.into(), demand));
    }

    /// Stop accounting for a pod.
    pub fn remove(&mut self, uid: &str) {
        let Some(i) = self.pods.iter().position(|(u, _)| **u == *uid) else {
            return;
        };
        let (_, old) = self.pods.swap_remove(i);
        for (k, v) in &old.requests {
            if let Ok(i) = self.requested_index(k) {
                self.requested[i].1 -= v;
            }
        }
    }

    fn requested_index(&self, resource: &str) -> Result<usize, usize> {
        self.requested
            .binary_search_by(|(r, _)| (**r).cmp(resource))
    }

    /// Number of pods.
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// The demand accounted for the pod with this UID.
    pub fn demand(&self, uid: &str) -> Option<&PodDemand> {
        self.pods
            .iter()
            .find(|(u, _)| **u == *uid)
            .map(|(_, d)| &**d)
    }

    /// Whether the pod with this UID is accounted for.
    pub fn contains(&self, uid: &str) -> bool {
        self.pods.iter().any(|(u, _)| **u == *uid)
    }

    /// Summed request of one resource, in milli-units.
    pub fn requested(&self, resource: &str) -> i128 {
        self.requested_index(resource)
            .map_or(0, |i| self.requested[i].1)
    }

    fn ports(&self) -> impl Iterator<Item = &HostPort> {
        self.pods.iter().flat_map(|(_, d)| d.host_ports.iter())
    }
}

fn untolerated_taint_reason(taint: &Taint) -> String {
    format!(
        "node(s) had untolerated taint {{{}: {}}}",
        taint.key,
        taint.value.as_deref().unwrap_or("")
    )
}

/// Run the filters for `pod` on `node`: `Ok(())` when it fits, else the reasons of the first
/// filter that rejects it (NodeResourcesFit may give several). The node is a whole `Node` or
/// the scheduler's cached record.
pub fn fits(
    spec: &PodSpec,
    demand: &PodDemand,
    node: &impl AllocatableView,
    usage: &NodeUsage,
) -> Result<(), Vec<String>> {
    let tolerations = spec.tolerations.as_deref().unwrap_or(&[]);

    // NodeUnschedulable.
    if node.unschedulable() {
        let cordon = Taint {
            key: UNSCHEDULABLE_TAINT_KEY.to_string(),
            effect: TAINT_EFFECT_NO_SCHEDULE.to_string(),
            ..Default::default()
        };
        if !tolerations_tolerate_taint(tolerations, &cordon) {
            return Err(vec![REASON_UNSCHEDULABLE.to_string()]);
        }
    }

    // TaintToleration.
    let taints = node.taints();
    if let Some(t) = find_untolerated_taint(taints, tolerations, |t| {
        t.effect == TAINT_EFFECT_NO_SCHEDULE || t.effect == TAINT_EFFECT_NO_EXECUTE
    }) {
        return Err(vec![untolerated_taint_reason(t)]);
    }

    // NodeAffinity (nodeSelector and required node affinity).
    if !matches_node_selector_and_affinity(spec, node) {
        return Err(vec![REASON_AFFINITY.to_string()]);
    }

    // NodePorts.
    if demand
        .host_ports
        .iter()
        .any(|want| usage.ports().any(|used| used.conflicts(want)))
    {
        return Err(vec![REASON_PORTS.to_string()]);
    }

    // NodeResourcesFit.
    let mut reasons = Vec::new();
    let allowed_pods = node.allocatable("pods") / 1000;
    if usage.pod_count() as i128 + 1 > allowed_pods {
        reasons.push(REASON_TOO_MANY_PODS.to_string());
    }
    let order = ["cpu", "memory", "ephemeral-storage"];
    let named = order
        .iter()
        .map(|r| (*r, demand.requests.get(*r).copied().unwrap_or(0)));
    let others = demand
        .requests
        .iter()
        .filter(|(k, _)| !order.contains(&k.as_str()) && *k != "pods")
        .map(|(k, v)| (k.as_str(), *v));
    for (resource, want) in named.chain(others) {
        if want > 0 && want > node.allocatable(resource) - usage.requested(resource) {
            reasons.push(format!("Insufficient {resource}"));
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// Upstream's FitError message: "0/N nodes are available: " and the count of nodes per reason,
/// sorted as strings, then ".".
pub fn fit_error_message(total_nodes: usize, reasons_per_node: &[Vec<String>]) -> String {
    if total_nodes == 0 {
        return NO_NODES_MESSAGE.to_string();
    }
    let mut histogram: BTreeMap<&str, usize> = BTreeMap::new();
    for reasons in reasons_per_node {
        for r in reasons {
            *histogram.entry(r.as_str()).or_insert(0) += 1;
        }
    }
    let mut parts: Vec<String> = histogram.iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    let mut msg = format!("0/{total_nodes} nodes are available:");
    if !parts.is_empty() {
        msg.push_str(&format!(" {}.", parts.join(", ")));
    }
    msg
}

/// Whether this scheduler is responsible for the pod (schedulerName default-scheduler or
/// empty).
pub fn is_ours(spec: &PodSpec) -> bool {
    matches!(
        spec.scheduler_name.as_deref(),
        None | Some("") | Some("default-scheduler")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trim::{SchedulingNode, kept_as};
    use k8s_openapi::api::core::v1::{
        Affinity, Container, ContainerPort, Node, NodeAffinity, NodeSelector,
        NodeSelectorRequirement, NodeSelectorTerm, NodeSpec, NodeStatus, ResourceRequirements,
        Toleration,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn node(name: &str, cpu: &str, memory: &str, pods: &str) -> Node {
        let alloc: BTreeMap<String, Quantity> = [("cpu", cpu), ("memory", memory), ("pods", pods)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect();
        Node {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some([("kubernetes.io/hostname".to_string(), name.to_string())].into()),
                ..Default::default()
            },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                allocatable: Some(alloc),
                ..Default::default()
            }),
        }
    }

    fn daemon_spec(target: &str, cpu: &str, memory: &str) -> PodSpec {
        let requests: BTreeMap<String, Quantity> = [("cpu", cpu), ("memory", memory)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect();
        PodSpec {
            containers: vec![Container {
                name: "c".into(),
                resources: Some(ResourceRequirements {
                    requests: Some(requests),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            affinity: Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: vec![NodeSelectorTerm {
                            match_fields: Some(vec![NodeSelectorRequirement {
                                key: "metadata.name".into(),
                                operator: "In".into(),
                                values: Some(vec![target.into()]),
                            }]),
                            ..Default::default()
                        }],
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            tolerations: Some(vec![Toleration {
                key: Some(UNSCHEDULABLE_TAINT_KEY.into()),
                operator: Some("Exists".into()),
                effect: Some("NoSchedule".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }
    }

    /// The verdict on a whole node, which the scheduler's cached record of it must share.
    fn check(spec: &PodSpec, node: &Node, usage: &NodeUsage) -> Result<(), Vec<String>> {
        let demand = PodDemand {
            requests: pod_requests(spec),
            host_ports: pod_host_ports(spec),
        };
        let verdict = fits(spec, &demand, node, usage);
        let record = kept_as::<SchedulingNode>(node);
        assert_eq!(fits(spec, &demand, &record, usage), verdict, "{node:?}");
        verdict
    }

    #[test]
    fn a_daemon_pod_fits_its_node_only() {
        let spec = daemon_spec("n1", "100m", "200Mi");
        let usage = NodeUsage::default();
        assert_eq!(
            check(&spec, &node("n1", "4", "16Gi", "110"), &usage),
            Ok(())
        );
        assert_eq!(
            check(&spec, &node("n2", "4", "16Gi", "110"), &usage),
            Err(vec![REASON_AFFINITY.to_string()])
        );
    }

    #[test]
    fn resources_count_what_bound_pods_request() {
        let spec = daemon_spec("n1", "500m", "1Gi");
        let n = node("n1", "1", "2Gi", "110");
        let mut usage = NodeUsage::default();
        usage.add(
            "a",
            PodDemand {
                requests: [("cpu".to_string(), 600)].into(),
                host_ports: vec![],
            },
        );
        assert_eq!(
            check(&spec, &n, &usage),
            Err(vec!["Insufficient cpu".to_string()])
        );
        usage.add(
            "b",
            PodDemand {
                requests: [("memory".to_string(), 1_500 * 1024 * 1024 * 1000)].into(),
                host_ports: vec![],
            },
        );
        assert_eq!(
            check(&spec, &n, &usage),
            Err(vec![
                "Insufficient cpu".to_string(),
                "Insufficient memory".to_string()
            ])
        );
        usage.remove("a");
        usage.remove("b");
        assert_eq!(check(&spec, &n, &usage), Ok(()));
    }

    #[test]
    fn usage_sums_replaces_and_forgets_pods() {
        let demand = |cpu: i128, memory: i128| PodDemand {
            requests: [("memory".to_string(), memory), ("cpu".to_string(), cpu)].into(),
            host_ports: vec![],
        };
        let mut usage = NodeUsage::default();
        usage.add("a", demand(100, 10));
        usage.add(
            "b",
            PodDemand {
                requests: [("example.com/gpu".to_string(), 1000)].into(),
                host_ports: vec![],
            },
        );
        usage.add("c", Arc::new(demand(50, 5)));
        assert_eq!(
            (usage.requested("cpu"), usage.requested("memory")),
            (150, 15)
        );
        assert_eq!(usage.requested("example.com/gpu"), 1000);
        assert_eq!(usage.requested("pods"), 0);
        // The same UID again replaces its demand.
        usage.add("a", demand(200, 20));
        assert_eq!((usage.pod_count(), usage.requested("cpu")), (3, 250));
        usage.remove("zz");
        usage.remove("b");
        assert!(!usage.contains("b") && usage.contains("a") && usage.contains("c"));
        assert_eq!(
            (usage.pod_count(), usage.requested("example.com/gpu")),
            (2, 0)
        );
        usage.remove("a");
        usage.remove("c");
        assert_eq!((usage.pod_count(), usage.requested("cpu")), (0, 0));
    }

    #[test]
    fn pod_count_and_empty_allocatable() {
        let spec = daemon_spec("n1", "0", "0");
        let mut usage = NodeUsage::default();
        usage.add("a", PodDemand::default());
        assert_eq!(
            check(&spec, &node("n1", "4", "16Gi", "1"), &usage),
            Err(vec![REASON_TOO_MANY_PODS.to_string()])
        );
        // A node whose kubelet has not reported yet has nothing allocatable.
        let mut bare = node("n1", "4", "16Gi", "110");
        bare.status = None;
        let spec = daemon_spec("n1", "100m", "0");
        assert_eq!(
            check(&spec, &bare, &NodeUsage::default()),
            Err(vec![
                REASON_TOO_MANY_PODS.to_string(),
                "Insufficient cpu".to_string()
            ])
        );
    }

    #[test]
    fn taints_and_cordons() {
        let mut spec = daemon_spec("n1", "0", "0");
        let mut n = node("n1", "4", "16Gi", "110");
        n.spec = Some(NodeSpec {
            taints: Some(vec![Taint {
                key: "node-role.kubernetes.io/master".into(),
                effect: "NoSchedule".into(),
                ..Default::default()
            }]),
            ..Default::default()
        });
        assert_eq!(
            check(&spec, &n, &NodeUsage::default()),
            Err(vec![
                "node(s) had untolerated taint {node-role.kubernetes.io/master: }".to_string()
            ])
        );
        if let Some(t) = spec.tolerations.as_mut() {
            t.push(Toleration {
                key: Some("node-role.kubernetes.io/master".into()),
                effect: Some("NoSchedule".into()),
                ..Default::default()
            });
        }
        assert_eq!(check(&spec, &n, &NodeUsage::default()), Ok(()));
        // PreferNoSchedule never blocks.
        n.spec = Some(NodeSpec {
            taints: Some(vec![Taint {
                key: "x".into(),
                value: Some("y".into()),
                effect: "PreferNoSchedule".into(),
                ..Default::default()
            }]),
            unschedulable: Some(true),
            ..Default::default()
        });
        assert_eq!(
            check(&spec, &n, &NodeUsage::default()),
            Ok(()),
            "the daemon pod tolerates the cordon"
        );
        spec.tolerations = None;
        assert_eq!(
            check(&spec, &n, &NodeUsage::default()),
            Err(vec![REASON_UNSCHEDULABLE.to_string()])
        );
    }

    #[test]
    fn host_ports_conflict_by_protocol_and_address() {
        let mut spec = daemon_spec("n1", "0", "0");
        spec.containers[0].ports = Some(vec![ContainerPort {
            container_port: 9100,
            host_port: Some(9100),
            ..Default::default()
        }]);
        let n = node("n1", "4", "16Gi", "110");
        let mut usage = NodeUsage::default();
        usage.add(
            "udp",
            PodDemand {
                requests: BTreeMap::new(),
                host_ports: vec![HostPort {
                    protocol: "UDP".into(),
                    ip: "0.0.0.0".into(),
                    port: 9100,
                }],
            },
        );
        assert_eq!(check(&spec, &n, &usage), Ok(()));
        usage.add(
            "tcp",
            PodDemand {
                requests: BTreeMap::new(),
                host_ports: vec![HostPort {
                    protocol: "TCP".into(),
                    ip: "10.0.0.1".into(),
                    port: 9100,
                }],
            },
        );
        assert_eq!(
            check(&spec, &n, &usage),
            Err(vec![REASON_PORTS.to_string()])
        );
    }

    #[test]
    fn requests_include_init_containers_sidecars_and_limits() {
        let q = |cpu: &str| {
            Some(ResourceRequirements {
                requests: Some([("cpu".to_string(), Quantity(cpu.to_string()))].into()),
                ..Default::default()
            })
        };
        let spec = PodSpec {
            containers: vec![
                Container {
                    name: "a".into(),
                    resources: q("100m"),
                    ..Default::default()
                },
                Container {
                    name: "b".into(),
                    resources: Some(ResourceRequirements {
                        limits: Some([("memory".to_string(), Quantity("1Ki".into()))].into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ],
            init_containers: Some(vec![
                Container {
                    name: "side".into(),
                    resources: q("50m"),
                    restart_policy: Some("Always".into()),
                    ..Default::default()
                },
                Container {
                    name: "init".into(),
                    resources: q("1"),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let r = pod_requests(&spec);
        assert_eq!(r.get("cpu"), Some(&1050));
        assert_eq!(r.get("memory"), Some(&1_024_000));
    }

    #[test]
    fn fit_error_message_is_upstreams() {
        let per_node = vec![
            vec!["Insufficient cpu".to_string()],
            vec![REASON_AFFINITY.to_string()],
            vec![REASON_AFFINITY.to_string()],
        ];
        assert_eq!(
            fit_error_message(3, &per_node),
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector."
        );
        assert_eq!(fit_error_message(0, &[]), NO_NODES_MESSAGE);
    }

    #[test]
    fn only_default_scheduler_pods_are_ours() {
        let mut spec = PodSpec::default();
        assert!(is_ours(&spec));
        spec.scheduler_name = Some("default-scheduler".into());
        assert!(is_ours(&spec));
        spec.scheduler_name = Some("other".into());
        assert!(!is_ours(&spec));
    }
}
