//! The audit log, as kube-apiserver's (`--audit-log-path`, `--audit-policy-file`).
//!
//! - [`policy`]: the `Policy` file and its checker (level and omitted stages of a request);
//! - [`event`]: the event and its JSON line.

pub mod event;
pub mod policy;
