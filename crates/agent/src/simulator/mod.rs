//! The fleet simulator: one fake kubelet per Node annotated `pernode.io/simulated: "true"`,
//! all in one process.
//!
//! For each simulated node it posts capacity, allocatable, nodeInfo, addresses and its own
//! conditions (patched by type, so conditions set by others survive), and renews a Lease in
//! `kube-node-lease`; heartbeats are spread evenly over the interval. For each pod bound to such
//! a node it writes the status a kubelet would (Running and Ready after a short start delay, or
//! the failure the pod asks for, see [`status::requested_outcome`]) and finishes terminating
//! pods after their (scaled-down) grace period. Terminal pods are never revived.
//!
//! Scale: one watch of all Nodes and one of all Pods, no per-node watches; they decode into
//! compact types that declare only the fields the simulator reads, and it caches a compact
//! record per node and pod (about 1 KB for a daemon pod), not the object. Status writes go
//! through deduplicating work queues drained by a fixed number of workers.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), pernode_agent::simulator::Error> {
//! use pernode_agent::simulator::{self, SimulatorOptions};
//! simulator::create_nodes(client.clone(), 3, "node").await?; // node-1, node-2, node-3
//! simulator::run(client, SimulatorOptions::default()).await?;  // runs until an error
//! # Ok(()) }
//! ```

mod fleet;
mod objects;
/// The status logic, shared with the real agent (re-exported here for existing callers).
pub use crate::status;

use pernode_runtime::workqueue;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, PostParams};

pub use status::{NodeProfile, SIMULATE_EXIT_ANNOTATION, SIMULATED_ANNOTATION};

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed in a way retrying will not fix.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A background task of the simulator stopped unexpectedly.
    #[error("simulator task failed: {0}")]
    Task(String),
}

/// How the simulated kubelets behave.
#[derive(Clone, Debug)]
pub struct SimulatorOptions {
    /// Capacity (= allocatable) and nodeInfo the nodes report.
    pub profile: NodeProfile,
    /// Lease renewal interval per node (kubelet: 10 s). Renewals are spread over it.
    pub heartbeat_interval: Duration,
    /// `spec.leaseDurationSeconds` of the node leases (kubelet: 40).
    pub lease_duration_seconds: i32,
    /// How often a node re-posts its conditions' lastHeartbeatTime when nothing changed.
    pub node_status_interval: Duration,
    /// A bound pod turns Running after a random delay in this range.
    pub start_delay: (Duration, Duration),
    /// After ErrImagePull, the pod reports ImagePullBackOff after this delay.
    pub image_pull_backoff_delay: Duration,
    /// Grace periods are multiplied by this factor ...
    pub grace_period_scale: f64,
    /// ... and capped at this.
    pub max_grace_period: Duration,
    /// Concurrent pod status writers.
    pub pod_workers: usize,
    /// Concurrent node status / lease writers.
    pub node_workers: usize,
    /// Namespace of the node leases.
    pub lease_namespace: String,
    /// Node name → the capacity (= allocatable) that node reports instead of the profile's:
    /// `kubectl pernode whatif` gives each simulated copy its live node's allocatable.
    pub capacity_by_node: std::sync::Arc<BTreeMap<String, BTreeMap<String, String>>>,
}

impl Default for SimulatorOptions {
    fn default() -> Self {
        SimulatorOptions {
            profile: NodeProfile::default(),
            heartbeat_interval: Duration::from_secs(10),
            lease_duration_seconds: 40,
            node_status_interval: Duration::from_secs(60),
            start_delay: (Duration::ZERO, Duration::from_millis(200)),
            image_pull_backoff_delay: Duration::from_secs(2),
            grace_period_scale: 0.05,
            max_grace_period: Duration::from_secs(1),
            pod_workers: 32,
            node_workers: 16,
            lease_namespace: "kube-node-lease".to_string(),
            capacity_by_node: Default::default(),
        }
    }
}

/// Run the simulator until an unrecoverable error. Transient API errors are retried per
/// object with backoff; watches re-list and resume on their own.
pub async fn run(client: kube::Client, opts: SimulatorOptions) -> Result<(), Error> {
    fleet::Fleet::new(client, opts).run().await
}

/// The Node object [`create_nodes`] creates: labels `kubernetes.io/hostname`,
/// `kubernetes.io/os=linux`, `kubernetes.io/arch=amd64` and the simulated annotation.
pub fn simulated_node(name: &str) -> Node {
    let labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", name),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Node {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(labels),
            annotations: Some([(SIMULATED_ANNOTATION.to_string(), "true".to_string())].into()),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Create `n` simulated Nodes named `{prefix}-1` .. `{prefix}-{n}` (so prefix `node` gives
/// `node-1`..`node-N`). Nodes that already exist are left as they are.
pub async fn create_nodes(client: kube::Client, n: usize, prefix: &str) -> Result<(), Error> {
    let api: Api<Node> = Api::all(client);
    futures::stream::iter(1..=n)
        .map(|i| {
            let api = api.clone();
            let node = simulated_node(&format!("{prefix}-{i}"));
            async move {
                match api.create(&PostParams::default(), &node).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                    Err(e) => Err(Error::Kube(e)),
                }
            }
        })
        .buffer_unordered(64)
        .try_collect::<()>()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulated_nodes_carry_labels_and_annotation() {
        let n = simulated_node("node-7");
        assert!(status::is_simulated(&n.metadata));
        let labels = n.metadata.labels.unwrap_or_default();
        assert_eq!(
            labels.get("kubernetes.io/hostname").map(String::as_str),
            Some("node-7")
        );
        assert_eq!(
            labels.get("kubernetes.io/os").map(String::as_str),
            Some("linux")
        );
        assert_eq!(
            labels.get("kubernetes.io/arch").map(String::as_str),
            Some("amd64")
        );
    }
}
