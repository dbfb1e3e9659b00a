//! Kubernetes semantics shared by every pernode crate.
//!
//! Each module ports one piece of upstream apimachinery / component-helpers behaviour, with
//! upstream's error texts, so that the API server, admission, printers, controllers and the
//! node simulator all agree on what a selector, a toleration or a quantity means:
//!
//! - [`labels`]: label selectors (string syntax and `metav1.LabelSelector`), label formatting.
//! - [`fields`]: field selectors (`metadata.name=x,spec.nodeName!=y`).
//! - [`json`]: a JSON object's members as slices, to read or edit a few fields of a large one.
//! - [`names`]: name, label key and label value syntax with upstream's messages.
//! - [`quantity`]: resource quantities (`100m`, `2Gi`, `1e3`).
//! - [`scheduling`]: taints/tolerations, node selectors and required node affinity.
//! - [`pod`]: pod readiness, availability and terminal phases.
//! - [`disruption`]: PodDisruptionBudget conditions and which pods a budget covers.
//! - [`simulated`]: simulated nodes: their annotation and the logs their kubelet stands for.
//! - [`duration`]: the human durations of the AGE column.
//! - [`rollout`]: pernode's rollout annotations on a DaemonSet (pause, partition, health gate).
//! - [`health_gate`]: what the health gate counts as a node failed with an updated pod.
//! - [`node_critical`]: the node-critical gate's annotation, taint and toleration.
//! - [`resource`]: [`resource_like!`], compact watch types that kube treats as the type they
//!   stand for.

pub mod disruption;
pub mod duration;
pub mod fields;
pub mod go_duration;
pub mod health_gate;
pub mod json;
pub mod labels;
pub mod microtime;
pub mod names;
pub mod node_critical;
pub mod pod;
pub mod quantity;
pub mod resource;
pub mod rollout;
pub mod scheduling;
pub mod simulated;
pub mod waves;

pub mod goquote;

pub use fields::FieldSelector;
pub use labels::{LabelSelector, SelectorError};
pub use quantity::{Quantity, QuantityError, parse_quantity};
