//! The garbage collector: ownerReferences drive cascading deletion (Background, Foreground,
//! Orphan), as upstream's `pkg/controller/garbagecollector`.
//!
//! [`graph`] holds the dependency graph and the decisions.

pub mod graph;
