//! The fleet simulator: fake kubelets for every simulated Node.

pub mod status;
