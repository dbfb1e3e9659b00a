//! The control loops of pernode, each an ordinary Kubernetes API client (kube-rs): they work
//! against pernode's own API server (in-process or over TCP) or any other that speaks Kubernetes.
//!
//! Module per controller, as upstream's pkg/controller: `daemonset` (sync, rolling update,
//! history), `scheduler` (binds pending pods), `garbage_collector` (ownerReferences),
//! `pod_gc` (pods of vanished nodes), `node_lifecycle` (heartbeats to taints, eviction),
//! `clusterrole_aggregation` (the rules of aggregated ClusterRoles such as `admin`/`edit`/`view`).
//! `disruption` (PodDisruptionBudget status).
//! `node_critical` (removes `pernode.io/critical-daemons-not-ready` from a joining node once its
//! node-critical daemons are Ready).
//! `namespace` (empties and releases terminating namespaces), `service_account` (a `default`
//! ServiceAccount in every active namespace), `root_ca_publisher` (the `kube-root-ca.crt`
//! ConfigMap in every active namespace), `bootstrap` (signs `kube-public/cluster-info` with
//! bootstrap tokens, deletes expired ones), and the certificate controllers: `csr_approving`
//! (node client requests approved after a SubjectAccessReview), `csr_signing` (approved
//! requests signed with the cluster CA), `csr_cleaner` (finished requests deleted), on the
//! shared machinery of `csr`.

mod active_namespaces;
pub mod bootstrap;
pub mod clusterrole_aggregation;
pub mod csr;
pub mod csr_approving;
pub mod csr_cleaner;
pub mod csr_signing;
pub mod daemonset;
pub mod disruption;
pub mod garbage_collector;
pub mod namespace;
pub mod node_critical;
pub mod node_lifecycle;
pub mod pod_gc;
pub mod pod_watch;
pub mod root_ca_publisher;
pub mod scheduler;
pub mod service_account;

/// client-go's workqueue metrics of every named controller queue, for a `/metrics` page.
pub use pernode_runtime::workqueue_metrics;

mod trim;

/// The deduplicating, rate-limited work queue the scheduler, GC and pod GC share.
pub(crate) use pernode_runtime::workqueue;
