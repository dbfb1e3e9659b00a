//! The node lifecycle controller and taint-based eviction, as upstream's
//! `pkg/controller/nodelifecycle` and `pkg/controller/tainteviction`.
//!
//! - **Health** ([`monitor`]): a node is alive while its Lease in `kube-node-lease` is renewed
//!   or its Ready condition's lastHeartbeatTime changes. Silent for longer than
//!   [`NodeLifecycleOptions::node_monitor_grace_period`] (a node that never reported: counted
//!   from its creation), its Ready, MemoryPressure, DiskPressure and PIDPressure conditions
//!   become Unknown (`NodeStatusUnknown`, "Kubelet stopped posting node status."), written
//!   through the status subresource.
//! - **Taints** ([`taints`]): the NoSchedule pass keeps `not-ready`, `unreachable`,
//!   `memory-pressure`, `disk-pressure`, `pid-pressure`, `network-unavailable` and
//!   `unschedulable` NoSchedule taints in step with the conditions and `spec.unschedulable`.
//!   Ready=False or Unknown adds the `not-ready` or `unreachable` NoExecute taint (with
//!   timeAdded), paced per zone by a token bucket (upstream: 0.1 node/s, burst 1) and held back
//!   when a zone is largely down (partial disruption in a zone of at most 50 nodes) or every
//!   node of the cluster is (full disruption: NoExecute taints are then removed); Ready=True
//!   removes them.
//! - **Eviction** ([`eviction`]): pods on a node with NoExecute taints are deleted at once if
//!   a taint is not tolerated, after the smallest tolerationSeconds of the tolerations used
//!   otherwise, never if none has tolerationSeconds. Before the delete the pod gets
//!   `DisruptionTarget=True` (`DeletionByTaintManager`); `TaintManagerEviction` events mark
//!   and cancel deletions. Pods on a node that stops being Ready are marked not Ready.
//!
//! Watch-driven (Nodes, Leases, Pods) with one work queue and per-key backoff for every API
//! write; a periodic health pass (`node_monitor_period`) finds nodes that went silent.
//!
//! Differences from upstream: one grace period serves for nodes that never reported unless
//! [`NodeLifecycleOptions::node_startup_grace_period`] is set (upstream: a separate 60 s); the
//! eviction timer starts at the taint's timeAdded when it has one (upstream: when observed);
//! the `RegisteredNode`/`RemovingNode` events are not emitted.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), pernode_controllers::node_lifecycle::Error> {
//! use std::time::Duration;
//! use pernode_controllers::node_lifecycle::{self, NodeLifecycleOptions};
//! let opts = NodeLifecycleOptions {
//!     node_monitor_grace_period: Duration::from_secs(40),
//!     ..Default::default()
//! };
//! node_lifecycle::run(client, opts).await
//! # }
//! ```

mod controller;
pub mod eviction;
pub mod monitor;
pub mod taints;

use std::time::Duration;

use crate::pod_watch::{PodEvents, PodWatch};

/// Errors of the node lifecycle controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed in a way retrying will not fix.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A background task stopped unexpectedly.
    #[error("node lifecycle task failed: {0}")]
    Task(String),
}

/// How the node lifecycle controller runs; `Default` is upstream's defaults.
#[derive(Clone, Debug)]
pub struct NodeLifecycleOptions {
    /// How long a node may be silent before it is marked Unknown (upstream: 40 s up to 1.31).
    pub node_monitor_grace_period: Duration,
    /// Grace for a node that never posted a Ready condition, counted from its creation;
    /// `None` uses `node_monitor_grace_period`.
    pub node_startup_grace_period: Option<Duration>,
    /// How often every node's health is checked (upstream: 5 s).
    pub node_monitor_period: Duration,
    /// Nodes per second that get a NoExecute taint, per zone (upstream: 0.1).
    pub eviction_limiter_qps: f64,
    /// The same in a large zone in partial disruption (upstream: 0.01).
    pub secondary_eviction_limiter_qps: f64,
    /// Zones with more nodes than this are large (upstream: 50).
    pub large_cluster_size_threshold: usize,
    /// Fraction of not-ready nodes (at least 3) that makes a partial disruption (upstream 0.55).
    pub unhealthy_zone_threshold: f32,
    /// Namespace of the node leases.
    pub lease_namespace: String,
    /// Concurrent workers writing to the API.
    pub workers: usize,
}

impl Default for NodeLifecycleOptions {
    fn default() -> Self {
        NodeLifecycleOptions {
            node_monitor_grace_period: Duration::from_secs(40),
            node_startup_grace_period: None,
            node_monitor_period: Duration::from_secs(5),
            eviction_limiter_qps: 0.1,
            secondary_eviction_limiter_qps: 0.01,
            large_cluster_size_threshold: 50,
            unhealthy_zone_threshold: 0.55,
            lease_namespace: "kube-node-lease".to_string(),
            workers: 4,
        }
    }
}

/// Run the node lifecycle controller until an unrecoverable error.
pub async fn run(client: kube::Client, opts: NodeLifecycleOptions) -> Result<(), Error> {
    PodWatch::all(&client)
        .feed(|pods| controller::run(client, opts, pods))
        .await
}

/// [`run`] reading pods from a shared [`PodWatch`] of all namespaces.
pub async fn run_with_pods(
    client: kube::Client,
    opts: NodeLifecycleOptions,
    pods: PodEvents,
) -> Result<(), Error> {
    controller::run(client, opts, pods).await
}
