//! The node side of pernode.
//!
//! [`simulator`] is a fleet of fake kubelets: it runs every Node annotated
//! `pernode.io/simulated: "true"` (heartbeats, status, leases) and the pods bound to those
//! nodes, so the control plane can be exercised with thousands of nodes in one process.
//! [`agent`] is the real node agent: it registers its host as a Node and runs the pods bound
//! to it as host processes. Both report status through [`status`]. [`join`] gives a real
//! agent its credentials from a bootstrap token (kubeadm's discovery and the kubelet's TLS
//! bootstrap) and keeps its client certificate fresh.

pub mod agent;
pub mod join;
pub mod simulator;
pub mod status;
