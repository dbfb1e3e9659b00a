//! The namespace conditions the deleter maintains while a namespace terminates, as upstream's
//! `namespaceConditionUpdater` (pkg/controller/namespace/deletion/status_condition_utils.go):
//! each of the five types is `True` with what went wrong, or `False` with its "ok" reason and
//! message; a condition changes only when its status, reason or message does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NamespaceCondition, NamespaceStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

pub const DISCOVERY_FAILURE: &str = "NamespaceDeletionDiscoveryFailure";
pub const GV_PARSING_FAILURE: &str = "NamespaceDeletionGroupVersionParsingFailure";
pub const CONTENT_FAILURE: &str = "NamespaceDeletionContentFailure";
pub const CONTENT_REMAINING: &str = "NamespaceContentRemaining";
pub const FINALIZERS_REMAINING: &str = "NamespaceFinalizersRemaining";

/// The condition types the deleter maintains, in upstream's order.
pub const TYPES: [&str; 5] = [
    DISCOVERY_FAILURE,
    GV_PARSING_FAILURE,
    CONTENT_FAILURE,
    CONTENT_REMAINING,
    FINALIZERS_REMAINING,
];

/// The reason and message of a type's "ok" (`False`) condition.
fn ok(type_: &str) -> (&'static str, &'static str) {
    match type_ {
        DISCOVERY_FAILURE => (
            "ResourcesDiscovered",
            "All resources successfully discovered",
        ),
        GV_PARSING_FAILURE => (
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
        CONTENT_FAILURE => (
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
        ),
        _ => ("ContentRemoved", "All content successfully removed"),
    }
}

/// What is left of one resource after a deletion pass: `resource.group` (as upstream prints
/// it: `pods.` for the core group) → items left, and finalizer → items holding it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Remaining {
    pub by_resource: BTreeMap<String, usize>,
    pub by_finalizer: BTreeMap<String, usize>,
}

/// The problems of one deletion pass, turned into conditions.
#[derive(Debug, Default)]
pub struct ConditionUpdater {
    new: Vec<NamespaceCondition>,
    content_errors: Vec<String>,
}

fn failing(type_: &str, reason: &str, message: String, now: &Time) -> NamespaceCondition {
    NamespaceCondition {
        type_: type_.to_string(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_transition_time: Some(now.clone()),
    }
}

impl ConditionUpdater {
    /// Discovery failed (what was discovered is still deleted).
    pub fn discovery_failed(&mut self, message: String, now: &Time) {
        self.new
            .push(failing(DISCOVERY_FAILURE, "DiscoveryFailed", message, now));
    }

    /// Deleting the content of one resource failed.
    pub fn content_failed(&mut self, message: String) {
        self.content_errors.push(message);
    }

    /// What remains after the pass.
    pub fn content_totals(&mut self, remaining: &Remaining, now: &Time) {
        let by_resource: Vec<String> = remaining
            .by_resource
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(r, n)| format!("{r} has {n} resource instances"))
            .collect();
        if !by_resource.is_empty() {
            let mut by_resource = by_resource;
            by_resource.sort();
            self.new.push(failing(
                CONTENT_REMAINING,
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", by_resource.join(", ")),
                now,
            ));
        }
        let mut by_finalizer: Vec<String> = remaining
            .by_finalizer
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        if !by_finalizer.is_empty() {
            by_finalizer.sort();
            self.new.push(failing(
                FINALIZERS_REMAINING,
                "SomeFinalizerRemain",
                format!("Some finalizers are remaining: {}", by_finalizer.join(", ")),
                now,
            ));
        }
    }

    /// Writes the pass's conditions into `status`; whether anything changed.
    pub fn update(mut self, status: &mut NamespaceStatus, now: &Time) -> bool {
        if !self.content_errors.is_empty() && !self.new.iter().any(|c| c.type_ == CONTENT_FAILURE) {
            let mut msgs = std::mem::take(&mut self.content_errors);
            msgs.sort();
            self.new.push(failing(
                CONTENT_FAILURE,
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    msgs.len(),
                    msgs.join(", ")
                ),
                now,
            ));
        }
        update_conditions(status, &self.new, now)
    }
}

/// Upstream's `updateConditions`: each maintained type takes its new condition, or its "ok"
/// one; the transition time moves only when the status does.
pub fn update_conditions(
    status: &mut NamespaceStatus,
    new: &[NamespaceCondition],
    now: &Time,
) -> bool {
    let mut changed = false;
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    for type_ in TYPES {
        let wanted = new
            .iter()
            .find(|c| c.type_ == type_)
            .cloned()
            .unwrap_or_else(|| {
                let (reason, message) = ok(type_);
                NamespaceCondition {
                    type_: type_.to_string(),
                    status: "False".into(),
                    reason: Some(reason.into()),
                    message: Some(message.into()),
                    last_transition_time: Some(now.clone()),
                }
            });
        match conditions.iter_mut().find(|c| c.type_ == type_) {
            None => {
                conditions.push(wanted);
                changed = true;
            }
            Some(old)
                if old.status != wanted.status
                    || old.message != wanted.message
                    || old.reason != wanted.reason =>
            {
                if old.status != wanted.status {
                    old.last_transition_time = Some(now.clone());
                }
                old.status = wanted.status;
                old.reason = wanted.reason;
                old.message = wanted.message;
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap())
    }

    fn find<'a>(status: &'a NamespaceStatus, type_: &str) -> &'a NamespaceCondition {
        status
            .conditions
            .as_ref()
            .and_then(|c| c.iter().find(|c| c.type_ == type_))
            .expect("condition")
    }

    #[test]
    fn a_clean_pass_sets_every_ok_condition_once() {
        let mut status = NamespaceStatus::default();
        assert!(ConditionUpdater::default().update(&mut status, &now()));
        assert_eq!(status.conditions.as_ref().map(Vec::len), Some(5));
        let c = find(&status, CONTENT_FAILURE);
        assert_eq!(c.status, "False");
        assert_eq!(c.reason.as_deref(), Some("ContentDeleted"));
        assert_eq!(
            c.message.as_deref(),
            Some("All content successfully deleted, may be waiting on finalization")
        );
        assert!(!ConditionUpdater::default().update(&mut status, &now()));
    }

    #[test]
    fn remaining_content_and_failures_are_reported_as_upstream() {
        let mut status = NamespaceStatus::default();
        let mut u = ConditionUpdater::default();
        u.discovery_failed("boom".into(), &now());
        u.content_failed(
            "unexpected items still remain in namespace: x for gvr: /v1, Resource=pods".into(),
        );
        let remaining = Remaining {
            by_resource: [("pods.".to_string(), 2), ("daemonsets.apps".to_string(), 1)].into(),
            by_finalizer: [("example.com/hold".to_string(), 1)].into(),
        };
        u.content_totals(&remaining, &now());
        assert!(u.update(&mut status, &now()));
        assert_eq!(
            find(&status, DISCOVERY_FAILURE).reason.as_deref(),
            Some("DiscoveryFailed")
        );
        assert_eq!(
            find(&status, CONTENT_REMAINING).message.as_deref(),
            Some(
                "Some resources are remaining: daemonsets.apps has 1 resource instances, pods. has 2 resource instances"
            )
        );
        assert_eq!(
            find(&status, FINALIZERS_REMAINING).message.as_deref(),
            Some("Some finalizers are remaining: example.com/hold in 1 resource instances")
        );
        let failure = find(&status, CONTENT_FAILURE);
        assert_eq!(failure.status, "True");
        assert_eq!(
            failure.message.as_deref(),
            Some(
                "Failed to delete all resource types, 1 remaining: unexpected items still remain in namespace: x for gvr: /v1, Resource=pods"
            )
        );
        // Back to clean: every condition flips to its ok variant.
        assert!(ConditionUpdater::default().update(&mut status, &now()));
        assert!(
            status
                .conditions
                .iter()
                .flatten()
                .all(|c| c.status == "False")
        );
    }
}
