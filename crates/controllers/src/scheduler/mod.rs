//! The scheduler: binds pending pods to nodes after upstream's fit checks.
//!
//! [`fit`] holds the checks and upstream's reason texts.

pub mod fit;

#[allow(dead_code)]
#[path = "../workqueue.rs"]
mod workqueue;
