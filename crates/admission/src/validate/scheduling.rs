//! PriorityClass validation (pkg/apis/scheduling/validation) and the built-in system classes
//! (pkg/apis/scheduling: `SystemPriorityClasses`).

use k8s_openapi::api::scheduling::v1::PriorityClass;

use super::immutable;
use super::meta::{name_is_dns_subdomain, object_meta, object_meta_update};
use crate::FieldError;

/// The highest priority a user-defined class may have.
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i32 = 1_000_000_000;
/// `system-cluster-critical`'s value.
pub const SYSTEM_CRITICAL_PRIORITY: i32 = 2 * HIGHEST_USER_DEFINABLE_PRIORITY;
/// Names starting with this are reserved for the built-in classes.
pub const SYSTEM_PRIORITY_CLASS_PREFIX: &str = "system-";

/// The built-in classes: name, value, description. Neither is the global default.
pub const SYSTEM_PRIORITY_CLASSES: [(&str, i32, &str); 2] = [
    (
        "system-node-critical",
        SYSTEM_CRITICAL_PRIORITY + 1000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        SYSTEM_CRITICAL_PRIORITY,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

/// `IsKnownSystemPriorityClass`: why a `system-` class is not one of the built-in ones.
fn system_class_error(name: &str, value: i32, global_default: bool) -> Option<String> {
    match SYSTEM_PRIORITY_CLASSES.iter().find(|(n, ..)| *n == name) {
        None => Some(format!("{name} is not a known system priority class")),
        Some((_, want, _)) if *want != value => {
            Some(format!("value of {name} PriorityClass must be {want}"))
        }
        Some(_) if global_default => Some(format!(
            "globalDefault of {name} PriorityClass must be false"
        )),
        Some(_) => None,
    }
}

/// `ValidatePriorityClass`: metadata, the reserved `system-` prefix, the user maximum, and
/// the preemption policy.
pub fn priority_class(pc: &PriorityClass) -> Vec<FieldError> {
    let mut errs = object_meta(&pc.metadata, false, name_is_dns_subdomain);
    let name = pc.metadata.name.as_deref().unwrap_or("");
    if name.starts_with(SYSTEM_PRIORITY_CLASS_PREFIX) {
        if let Some(why) = system_class_error(name, pc.value, pc.global_default.unwrap_or(false)) {
            errs.push(FieldError::forbidden(
                "metadata.name",
                &format!(
                    "priority class names with '{SYSTEM_PRIORITY_CLASS_PREFIX}' prefix are reserved for system use only. error: {why}"
                ),
            ));
        }
    } else if pc.value > HIGHEST_USER_DEFINABLE_PRIORITY {
        errs.push(FieldError::forbidden(
            "value",
            &format!(
                "maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"
            ),
        ));
    }
    if let Some(policy) = pc.preemption_policy.as_deref() {
        errs.extend(preemption_policy(Some(policy), "preemptionPolicy"));
    }
    errs
}

/// `ValidatePriorityClassUpdate`: the value and the preemption policy never change.
pub fn priority_class_update(new: &PriorityClass, old: &PriorityClass) -> Vec<FieldError> {
    let mut errs = object_meta_update(&new.metadata, &old.metadata);
    if new.value != old.value {
        errs.push(FieldError::forbidden(
            "value",
            "may not be changed in an update.",
        ));
    }
    errs.extend(immutable(
        &new.preemption_policy,
        &old.preemption_policy,
        "preemptionPolicy",
    ));
    errs
}

/// `ValidatePreemptionPolicy`.
pub fn preemption_policy(policy: Option<&str>, path: &str) -> Vec<FieldError> {
    match policy {
        None => vec![FieldError::required(path, "")],
        Some("Never" | "PreemptLowerPriority") => vec![],
        Some(other) => vec![FieldError::not_supported(
            path,
            other,
            &["Never", "PreemptLowerPriority"],
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pc(name: &str, value: i32) -> PriorityClass {
        PriorityClass {
            metadata: ObjectMeta {
                name: Some(name.into()),
                resource_version: Some("1".into()),
                ..Default::default()
            },
            value,
            preemption_policy: Some("PreemptLowerPriority".into()),
            ..Default::default()
        }
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn system_prefix_is_reserved() {
        assert_eq!(
            messages(&priority_class(&pc("system-mine", 5))),
            [
                "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"
            ]
        );
        assert_eq!(
            messages(&priority_class(&pc("system-node-critical", 7))),
            [
                "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: value of system-node-critical PriorityClass must be 2000001000"
            ]
        );
        assert!(priority_class(&pc("system-node-critical", 2_000_001_000)).is_empty());
    }

    #[test]
    fn user_classes_are_bounded_and_fixed() {
        assert_eq!(
            messages(&priority_class(&pc("high", 1_000_000_001))),
            ["value: Forbidden: maximum allowed value of a user defined priority is 1000000000"]
        );
        let mut bad = pc("p", 1);
        bad.preemption_policy = Some("Sometimes".into());
        assert_eq!(
            messages(&priority_class(&bad)),
            [
                "preemptionPolicy: Unsupported value: \"Sometimes\": supported values: \"Never\", \"PreemptLowerPriority\""
            ]
        );
        assert_eq!(
            messages(&priority_class_update(&pc("p", 2), &pc("p", 1))),
            ["value: Forbidden: may not be changed in an update."]
        );
    }
}
