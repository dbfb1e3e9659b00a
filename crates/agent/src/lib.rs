//! The node side of pernode.
//!
//! [`simulator`] is a fleet of fake kubelets: it runs every Node annotated
//! `pernode.io/simulated: "true"` (heartbeats, status, leases) and the pods bound to those
//! nodes, so the control plane can be exercised with thousands of nodes in one process.
//! The real node agent (host processes as containers) comes later and will share the
//! pod-status logic of [`simulator::status`].

pub mod simulator;
