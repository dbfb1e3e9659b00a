//! PodDisruptionBudget helpers shared by the eviction subresource and the disruption
//! controller (upstream's k8s.io/component-helpers/apps/poddisruptionbudget and apimachinery's
//! `meta.SetStatusCondition`), and which pods a budget covers.

use std::collections::BTreeMap;

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::labels;

/// The condition type the controller and the eviction subresource keep.
pub const DISRUPTION_ALLOWED: &str = "DisruptionAllowed";
/// Its reason when disruptions are allowed.
pub const SUFFICIENT_PODS: &str = "SufficientPods";
/// Its reason when they are not.
pub const INSUFFICIENT_PODS: &str = "InsufficientPods";
/// Its reason when the controller could not compute the status (`failSafe`).
pub const SYNC_FAILED: &str = "SyncFailed";

/// `meta.SetStatusCondition`: adds `new` (its lastTransitionTime `now`) or updates the one of
/// its type, whose lastTransitionTime changes only with its status. Returns whether anything
/// changed.
pub fn set_status_condition(conditions: &mut Vec<Condition>, new: Condition, now: Time) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        None => {
            conditions.push(Condition {
                last_transition_time: now,
                ..new
            });
            true
        }
        Some(existing) => {
            let mut changed = false;
            if existing.status != new.status {
                existing.status = new.status;
                existing.last_transition_time = now;
                changed = true;
            }
            if existing.reason != new.reason {
                existing.reason = new.reason;
                changed = true;
            }
            if existing.message != new.message {
                existing.message = new.message;
                changed = true;
            }
            if existing.observed_generation != new.observed_generation {
                existing.observed_generation = new.observed_generation;
                changed = true;
            }
            changed
        }
    }
}

/// A `DisruptionAllowed` condition to set (its lastTransitionTime is set by
/// [`set_status_condition`]).
pub fn disruption_allowed_condition(
    status: &str,
    reason: &str,
    message: String,
    observed_generation: i64,
) -> Condition {
    Condition {
        type_: DISRUPTION_ALLOWED.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        // metav1.Condition's observedGeneration is omitempty: 0 is not written.
        observed_generation: (observed_generation != 0).then_some(observed_generation),
        last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
    }
}

/// `UpdateDisruptionAllowedCondition`: `DisruptionAllowed` True (`SufficientPods`) when
/// disruptions are allowed, else False (`InsufficientPods`).
pub fn update_disruption_allowed_condition(status: &mut PodDisruptionBudgetStatus, now: Time) {
    let (s, reason) = if status.disruptions_allowed > 0 {
        ("True", SUFFICIENT_PODS)
    } else {
        ("False", INSUFFICIENT_PODS)
    };
    let cond = disruption_allowed_condition(
        s,
        reason,
        String::new(),
        status.observed_generation.unwrap_or(0),
    );
    set_status_condition(status.conditions.get_or_insert_with(Vec::new), cond, now);
}

/// `ConditionsAreUpToDate`: the status was computed for the current generation and its
/// `DisruptionAllowed` condition says what `disruptionsAllowed` does.
pub fn conditions_are_up_to_date(pdb: &PodDisruptionBudget) -> bool {
    let Some(status) = pdb.status.as_ref() else {
        return false;
    };
    let Some(cond) = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == DISRUPTION_ALLOWED)
    else {
        return false;
    };
    if status.observed_generation.unwrap_or(0) != pdb.metadata.generation.unwrap_or(0) {
        return false;
    }
    if status.disruptions_allowed > 0 {
        cond.status == "True" && cond.reason == SUFFICIENT_PODS
    } else {
        cond.status == "False" && cond.reason == INSUFFICIENT_PODS
    }
}

/// Whether a budget covers a pod of its namespace with these labels, as the eviction
/// subresource decides it: an invalid selector matches nothing, and so does a nil or empty
/// one ("If a PDB with a nil or empty selector creeps in, it should match nothing").
pub fn budget_selects_for_eviction(
    pdb: &PodDisruptionBudget,
    pod_labels: &BTreeMap<String, String>,
) -> bool {
    let Some(sel) = pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    match labels::from_k8s(sel) {
        Ok(s) => !s.is_empty() && s.matches(pod_labels),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;

    fn at(secs: i64) -> Time {
        Time(Timestamp::from_second(secs).unwrap())
    }

    #[test]
    fn the_transition_time_moves_with_the_status_only() {
        let mut status = PodDisruptionBudgetStatus {
            disruptions_allowed: 1,
            observed_generation: Some(1),
            ..Default::default()
        };
        update_disruption_allowed_condition(&mut status, at(10));
        let c = &status.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (
                c.status.as_str(),
                c.reason.as_str(),
                c.last_transition_time.0.as_second()
            ),
            ("True", SUFFICIENT_PODS, 10)
        );
        status.observed_generation = Some(2);
        update_disruption_allowed_condition(&mut status, at(20));
        let c = &status.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.observed_generation, c.last_transition_time.0.as_second()),
            (Some(2), 10)
        );
        status.disruptions_allowed = 0;
        update_disruption_allowed_condition(&mut status, at(30));
        let c = &status.conditions.as_ref().unwrap()[0];
        assert_eq!(
            (
                c.status.as_str(),
                c.reason.as_str(),
                c.last_transition_time.0.as_second()
            ),
            ("False", INSUFFICIENT_PODS, 30)
        );
        assert_eq!(status.conditions.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn empty_and_invalid_selectors_cover_no_pod() {
        let pdb = |sel: serde_json::Value| -> PodDisruptionBudget {
            serde_json::from_value(
                serde_json::json!({"metadata": {"name": "b"}, "spec": {"selector": sel}}),
            )
            .unwrap()
        };
        let labels: BTreeMap<String, String> = [("app".to_string(), "a".to_string())].into();
        assert!(budget_selects_for_eviction(
            &pdb(serde_json::json!({"matchLabels": {"app": "a"}})),
            &labels
        ));
        assert!(!budget_selects_for_eviction(
            &pdb(serde_json::json!({"matchLabels": {"app": "b"}})),
            &labels
        ));
        assert!(!budget_selects_for_eviction(
            &pdb(serde_json::json!({})),
            &labels
        ));
        assert!(!budget_selects_for_eviction(
            &pdb(serde_json::Value::Null),
            &labels
        ));
        assert!(!budget_selects_for_eviction(
            &pdb(serde_json::json!({"matchExpressions": [{"key": "app", "operator": "Near"}]})),
            &labels
        ));
    }
}
