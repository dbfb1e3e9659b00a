//! The DaemonSet controller: one daemon pod on every node that should run one.
//!
//! Split as upstream's `pkg/controller/daemon`, so each rule of
//! `daemonset-semantics.md` has one obvious home:
//!
//! | module | rules | what |
//! |---|---|---|
//! | [`placement`] | R1-R11 | `shouldRun` / `shouldContinueRunning` of a (DaemonSet, node) |
//! | [`pods`] | R15-R21 | the pod created for a node; target node and order of pods |
//! | [`history`] | R83-R93 | ControllerRevisions: data bytes, hash, reuse, cleanup |
//! | [`status`] | R41-R50 | the seven counters and when to write them |
//! | [`conditions`] | — | pernode's typed conditions (upstream writes none) |
//! | [`update`] | R59-R74 | rolling update in unavailable and surge modes |
//! | [`rollout`] | — | pernode's pause and partition (not upstream's) |
//! | [`waves`] | — | pernode's rollout waves and their soak (not upstream's) |
//! | [`health_gate`] | — | pernode's health gate: stop or roll back on failed nodes (not upstream's) |
//! | [`expectations`] | R122 | creates/deletes in flight per DaemonSet |
//! | [`backoff`] | R119 | failed-pod deletion backoff per (DaemonSet, generation, node) |
//! | [`sync`] | R27-R40, R108-R113 | one reconciliation: claim, plan, act |
//! | [`controller`] | R123-R127, R163-R168 | watches, work queue, workers, events |
//!
//! The planning functions are pure (k8s-openapi types in, decisions out) so every rule is unit
//! tested without an API server; [`controller::run`] wires them to a `kube::Client`.
//!
//! Start the controller with [`run`]:
//! ```no_run
//! # async fn f(client: kube::Client) -> Result<(), pernode_controllers::daemonset::Error> {
//! use pernode_controllers::daemonset::{run, DaemonSetControllerOptions};
//! run(client, DaemonSetControllerOptions::default()).await
//! # }
//! ```

pub mod backoff;
pub mod conditions;
pub mod controller;
pub mod expectations;
mod gojson;
pub mod health_gate;
pub mod history;
pub mod placement;
pub mod pods;
pub mod rollout;
pub mod status;
pub mod sync;
#[cfg(test)]
pub(crate) mod testutil;
pub mod update;
pub mod waves;

pub use controller::{DaemonSetControllerOptions, run, run_with_pods};

/// Pod and revision label carrying the hash of the revision a pod was made from.
pub const CONTROLLER_REVISION_HASH_LABEL: &str = "controller-revision-hash";
/// Pod label carrying the template generation a pod was made from (legacy updatedness, R16).
pub const POD_TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
/// DaemonSet annotation holding the server-managed template generation (R143).
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";
/// Source component of the events the controller emits (R52).
pub const EVENT_SOURCE_COMPONENT: &str = "daemonset-controller";

/// Errors of the DaemonSet controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("{0}")]
    Kube(#[from] kube::Error),
    /// An object could not be serialized or parsed.
    #[error("serialization: {0}")]
    Json(#[from] serde_json::Error),
    /// The DaemonSet's label selector is malformed.
    #[error("invalid label selector: {0}")]
    InvalidSelector(String),
    /// A percentage in the update strategy does not parse (R62).
    #[error("invalid value for IntOrString: invalid value {0:?}")]
    InvalidIntOrPercent(String),
    /// A revision name is taken by a revision of another template (R91).
    #[error("{0}")]
    HashCollision(String),
    /// Adoption refused: the DaemonSet changed under us (R109).
    #[error("{0}")]
    CannotAdopt(String),
    /// An object lacks a field the controller needs (name, namespace, uid).
    #[error("object is missing {0}")]
    Missing(&'static str),
    /// Several errors of one sync (creates, deletes, claims), reported together.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join(", "))]
    Aggregate(Vec<Error>),
}

impl Error {
    /// Folds a list of errors into one, or none.
    pub fn aggregate(mut errors: Vec<Error>) -> Result<(), Error> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(Error::Aggregate(errors)),
        }
    }
}
