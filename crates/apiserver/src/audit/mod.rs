//! The audit log, as kube-apiserver's (`--audit-log-path`, `--audit-policy-file`).
//!
//! - [`policy`]: the `Policy` file and its checker (level and omitted stages of a request);
//! - [`event`]: the event and its JSON line;
//! - [`sink`]: the bounded queue and the writer thread that append lines to the file.

pub mod event;
pub mod policy;
pub mod sink;
