//! PodDisruptionBudget validation (pkg/apis/policy/validation, and the strategies of
//! pkg/registry/policy/poddisruptionbudget), with apimachinery's `ValidateConditions` for its
//! `metav1.Condition`s.

use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pernode_core::names;

use super::apps::{label_selector_with, not_more_than_100_percent, positive_int_or_percent};
use super::meta::{object_meta, object_meta_update};
use super::nonnegative;
use crate::FieldError;

/// `spec.unhealthyPodEvictionPolicy` values, sorted as upstream lists them.
pub const UNHEALTHY_POD_EVICTION_POLICIES: [&str; 2] = ["AlwaysAllow", "IfHealthyBudget"];

/// `path.ValidatePathSegmentName`: the name check the generic registry applies to kinds whose
/// strategy checks no name format of its own (PodDisruptionBudget's does not).
pub fn name_is_path_segment(name: &str, prefix: bool) -> Vec<String> {
    if !prefix {
        for bad in [".", ".."] {
            if name == bad {
                return vec![format!("may not be '{bad}'")];
            }
        }
    }
    ["/", "%"]
        .iter()
        .filter(|c| name.contains(*c))
        .map(|c| format!("may not contain '{c}'"))
        .collect()
}

/// What a PodDisruptionBudget create is checked for: `ValidatePodDisruptionBudget` (the
/// strategy), and only when that passes the generic metadata checks (`rest.BeforeCreate`
/// runs them second, in a second 422).
pub fn pod_disruption_budget_create(pdb: &PodDisruptionBudget) -> Vec<FieldError> {
    let errs = pod_disruption_budget_spec(&pdb.spec.clone().unwrap_or_default(), false, "spec");
    if !errs.is_empty() {
        return errs;
    }
    object_meta(&pdb.metadata, true, name_is_path_segment)
}

/// An update of the main resource: the generic metadata update checks, then
/// `ValidatePodDisruptionBudget` with invalid selector values allowed when the stored selector
/// has some (`hasInvalidLabelValueInLabelSelector`).
pub fn pod_disruption_budget_update(
    new: &PodDisruptionBudget,
    old: &PodDisruptionBudget,
) -> Vec<FieldError> {
    let mut errs = object_meta_update(&new.metadata, &old.metadata);
    errs.extend(object_meta(&new.metadata, true, name_is_path_segment));
    let allow_invalid = old
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .is_some_and(has_invalid_label_value);
    errs.extend(pod_disruption_budget_spec(
        &new.spec.clone().unwrap_or_default(),
        allow_invalid,
        "spec",
    ));
    errs
}

/// A `/status` write: the generic metadata update checks, then
/// `ValidatePodDisruptionBudgetStatusUpdate` for policy/v1 (conditions, non-negative counts).
pub fn pod_disruption_budget_status_update(
    new: &PodDisruptionBudget,
    old: &PodDisruptionBudget,
) -> Vec<FieldError> {
    let mut errs = object_meta_update(&new.metadata, &old.metadata);
    errs.extend(object_meta(&new.metadata, true, name_is_path_segment));
    let status = new.status.clone().unwrap_or_default();
    errs.extend(conditions(
        status.conditions.as_deref().unwrap_or(&[]),
        "status.conditions",
    ));
    for (v, field) in [
        (status.disruptions_allowed, "disruptionsAllowed"),
        (status.current_healthy, "currentHealthy"),
        (status.desired_healthy, "desiredHealthy"),
        (status.expected_pods, "expectedPods"),
    ] {
        errs.extend(nonnegative(i64::from(v), &format!("status.{field}")));
    }
    errs
}

/// `ValidatePodDisruptionBudgetSpec` at `path`.
pub fn pod_disruption_budget_spec(
    spec: &PodDisruptionBudgetSpec,
    allow_invalid_label_values: bool,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.min_available.is_some() && spec.max_unavailable.is_some() {
        errs.push(FieldError::invalid_go(
            path,
            serde_json::to_value(spec).unwrap_or_default(),
            go_spec(spec),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for (v, field) in [
        (&spec.min_available, "minAvailable"),
        (&spec.max_unavailable, "maxUnavailable"),
    ] {
        if let Some(v) = v {
            let p = format!("{path}.{field}");
            errs.extend(positive_int_or_percent(v, &p));
            errs.extend(not_more_than_100_percent(v, &p));
        }
    }
    if let Some(selector) = &spec.selector {
        errs.extend(label_selector_with(
            selector,
            &format!("{path}.selector"),
            allow_invalid_label_values,
        ));
    }
    if let Some(policy) = spec.unhealthy_pod_eviction_policy.as_deref()
        && !UNHEALTHY_POD_EVICTION_POLICIES.contains(&policy)
    {
        errs.push(FieldError::not_supported(
            &format!("{path}.unhealthyPodEvictionPolicy"),
            policy,
            &UNHEALTHY_POD_EVICTION_POLICIES,
        ));
    }
    errs
}

/// `hasInvalidLabelValueInLabelSelector`: a match expression value that is no label value.
fn has_invalid_label_value(selector: &LabelSelector) -> bool {
    selector
        .match_expressions
        .iter()
        .flatten()
        .flat_map(|e| e.values.iter().flatten())
        .any(|v| !names::is_valid_label_value(v).is_empty())
}

/// `%#v` of the internal `policy.PodDisruptionBudgetSpec`: its fields are pointers, which Go
/// prints as addresses; a fixed placeholder stands in for a set one.
fn go_spec(spec: &PodDisruptionBudgetSpec) -> String {
    fn ptr(ty: &str, set: bool) -> String {
        let at = if set { "0xc000000000" } else { "nil" };
        format!("(*{ty})({at})")
    }
    let int_or_string = |v: &Option<IntOrString>| ptr("intstr.IntOrString", v.is_some());
    format!(
        "policy.PodDisruptionBudgetSpec{{MinAvailable:{}, Selector:{}, MaxUnavailable:{}, UnhealthyPodEvictionPolicy:{}}}",
        int_or_string(&spec.min_available),
        ptr("v1.LabelSelector", spec.selector.is_some()),
        int_or_string(&spec.max_unavailable),
        ptr(
            "policy.UnhealthyPodEvictionPolicyType",
            spec.unhealthy_pod_eviction_policy.is_some()
        ),
    )
}

const CONDITION_REASON_FMT: &str = "[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?";
const CONDITION_REASON_ERR_MSG: &str = "a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_'";
const MAX_REASON_LEN: usize = 1024;
const MAX_MESSAGE_LEN: usize = 32 * 1024;

/// apimachinery's `ValidateConditions` (metav1.Condition) at `path`.
pub fn conditions(conds: &[Condition], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, c) in conds.iter().enumerate() {
        let at = format!("{path}[{i}]");
        if !seen.insert(c.type_.as_str()) {
            errs.push(FieldError::duplicate(
                &format!("{at}.type"),
                c.type_.as_str(),
            ));
        }
        errs.extend(condition(c, &at));
    }
    errs
}

/// `ValidateCondition`. `lastTransitionTime` cannot be missing here: the typed decoding
/// requires it.
fn condition(c: &Condition, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for msg in names::is_qualified_name(&c.type_) {
        errs.push(FieldError::invalid(
            &format!("{path}.type"),
            c.type_.as_str(),
            &msg,
        ));
    }
    if !["False", "True", "Unknown"].contains(&c.status.as_str()) {
        errs.push(FieldError::not_supported(
            &format!("{path}.status"),
            c.status.as_str(),
            &["False", "True", "Unknown"],
        ));
    }
    if let Some(g) = c.observed_generation
        && g < 0
    {
        errs.push(FieldError::invalid(
            &format!("{path}.observedGeneration"),
            g,
            "must be greater than or equal to zero",
        ));
    }
    if c.reason.is_empty() {
        errs.push(FieldError::required(
            &format!("{path}.reason"),
            "must be set",
        ));
    } else {
        if !is_condition_reason(&c.reason) {
            errs.push(FieldError::invalid(
                &format!("{path}.reason"),
                c.reason.as_str(),
                &names::regex_error(
                    CONDITION_REASON_ERR_MSG,
                    CONDITION_REASON_FMT,
                    &[
                        "my_name",
                        "MY_NAME",
                        "MyName",
                        "ReasonA,ReasonB",
                        "ReasonA:ReasonB",
                    ],
                ),
            ));
        }
        if c.reason.len() > MAX_REASON_LEN {
            errs.push(FieldError::too_long(
                &format!("{path}.reason"),
                MAX_REASON_LEN as i64,
            ));
        }
    }
    if c.message.len() > MAX_MESSAGE_LEN {
        errs.push(FieldError::too_long(
            &format!("{path}.message"),
            MAX_MESSAGE_LEN as i64,
        ));
    }
    errs
}

/// Whether `r` matches [`CONDITION_REASON_FMT`].
fn is_condition_reason(r: &str) -> bool {
    let b = r.as_bytes();
    let inner = |c: &u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b',' | b':');
    let last = |c: &u8| c.is_ascii_alphanumeric() || *c == b'_';
    match b {
        [] => false,
        [first] => first.is_ascii_alphabetic(),
        [first, mid @ .., end] => first.is_ascii_alphabetic() && mid.iter().all(inner) && last(end),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::policy::v1::PodDisruptionBudgetStatus;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        LabelSelectorRequirement, ObjectMeta, Time,
    };

    fn pdb(spec: serde_json::Value) -> PodDisruptionBudget {
        PodDisruptionBudget {
            metadata: ObjectMeta {
                name: Some("budget".into()),
                namespace: Some("default".into()),
                resource_version: Some("1".into()),
                ..Default::default()
            },
            spec: Some(serde_json::from_value(spec).expect("spec")),
            status: None,
        }
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn min_available_and_max_unavailable_exclude_each_other() {
        let both = pdb(serde_json::json!({
            "minAvailable": 1, "maxUnavailable": "10%",
            "selector": {"matchLabels": {"app": "a"}},
        }));
        assert_eq!(
            messages(&pod_disruption_budget_create(&both)),
            [
                "spec: Invalid value: policy.PodDisruptionBudgetSpec{MinAvailable:(*intstr.IntOrString)(0xc000000000), Selector:(*v1.LabelSelector)(0xc000000000), MaxUnavailable:(*intstr.IntOrString)(0xc000000000), UnhealthyPodEvictionPolicy:(*policy.UnhealthyPodEvictionPolicyType)(nil)}: minAvailable and maxUnavailable cannot be both set"
            ]
        );
        assert!(
            pod_disruption_budget_create(&pdb(serde_json::json!({"minAvailable": 2}))).is_empty()
        );
        assert!(
            pod_disruption_budget_create(&pdb(serde_json::json!({"maxUnavailable": "100%"})))
                .is_empty()
        );
    }

    #[test]
    fn int_or_percent_values() {
        let bad = pdb(serde_json::json!({"minAvailable": -1}));
        assert_eq!(
            messages(&pod_disruption_budget_create(&bad)),
            ["spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"]
        );
        let bad = pdb(serde_json::json!({"maxUnavailable": "120%"}));
        assert_eq!(
            messages(&pod_disruption_budget_create(&bad)),
            [
                "spec.maxUnavailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"120%\"}: must not be greater than 100%"
            ]
        );
        let bad = pdb(serde_json::json!({"minAvailable": "half"}));
        assert_eq!(
            messages(&pod_disruption_budget_create(&bad)),
            [
                "spec.minAvailable: Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:\"half\"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"
            ]
        );
    }

    #[test]
    fn selector_and_eviction_policy() {
        let bad = pdb(serde_json::json!({
            "minAvailable": 1,
            "selector": {"matchExpressions": [{"key": "app", "operator": "Near"}]},
            "unhealthyPodEvictionPolicy": "Sometimes",
        }));
        assert_eq!(
            messages(&pod_disruption_budget_create(&bad)),
            [
                "spec.selector.matchExpressions[0].operator: Invalid value: \"Near\": not a valid selector operator",
                "spec.unhealthyPodEvictionPolicy: Unsupported value: \"Sometimes\": supported values: \"AlwaysAllow\", \"IfHealthyBudget\"",
            ]
        );
        for ok in ["AlwaysAllow", "IfHealthyBudget"] {
            let p = pdb(serde_json::json!({"minAvailable": 1, "unhealthyPodEvictionPolicy": ok}));
            assert!(pod_disruption_budget_create(&p).is_empty(), "{ok}");
        }
    }

    #[test]
    fn invalid_selector_values_stay_allowed_on_update_once_stored() {
        let mut old = pdb(serde_json::json!({"minAvailable": 1}));
        old.spec.as_mut().unwrap().selector = Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "app".into(),
                operator: "In".into(),
                values: Some(vec!["no good".into()]),
            }]),
            ..Default::default()
        });
        assert_eq!(pod_disruption_budget_create(&old).len(), 1);
        assert!(pod_disruption_budget_update(&old, &old).is_empty());
        let fresh = pdb(serde_json::json!({"minAvailable": 1}));
        let errs = pod_disruption_budget_update(&old, &fresh);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].to_string().starts_with(
                "spec.selector.matchExpressions[0].values[0]: Invalid value: \"no good\""
            ),
            "{errs:?}"
        );
    }

    #[test]
    fn metadata_is_checked_after_the_spec_with_path_segment_names() {
        let mut p = pdb(serde_json::json!({"minAvailable": 1}));
        p.metadata.name = Some("Mixed_Case".into());
        assert!(pod_disruption_budget_create(&p).is_empty());
        p.metadata.name = Some("..".into());
        assert_eq!(
            messages(&pod_disruption_budget_create(&p)),
            ["metadata.name: Invalid value: \"..\": may not be '..'"]
        );
        // A spec error is reported alone, as BeforeCreate returns it before the metadata's.
        p.spec = Some(serde_json::from_value(serde_json::json!({"minAvailable": -1})).unwrap());
        assert_eq!(pod_disruption_budget_create(&p).len(), 1);
    }

    #[test]
    fn status_counts_and_conditions() {
        let old = pdb(serde_json::json!({"minAvailable": 1}));
        let mut new = old.clone();
        new.status = Some(PodDisruptionBudgetStatus {
            disruptions_allowed: -1,
            current_healthy: 2,
            conditions: Some(vec![
                Condition {
                    type_: "DisruptionAllowed".into(),
                    status: "Maybe".into(),
                    reason: "9lives".into(),
                    message: String::new(),
                    observed_generation: Some(-1),
                    last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
                },
                Condition {
                    type_: "DisruptionAllowed".into(),
                    status: "True".into(),
                    reason: String::new(),
                    message: String::new(),
                    observed_generation: None,
                    last_transition_time: Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH),
                },
            ]),
            ..Default::default()
        });
        assert_eq!(
            messages(&pod_disruption_budget_status_update(&new, &old)),
            [
                "status.conditions[0].status: Unsupported value: \"Maybe\": supported values: \"False\", \"True\", \"Unknown\"",
                "status.conditions[0].observedGeneration: Invalid value: -1: must be greater than or equal to zero",
                "status.conditions[0].reason: Invalid value: \"9lives\": a condition reason must start with alphabetic character, optionally followed by a string of alphanumeric characters or '_,:', and must end with an alphanumeric character or '_' (e.g. 'my_name',  or 'MY_NAME',  or 'MyName',  or 'ReasonA,ReasonB',  or 'ReasonA:ReasonB', regex used for validation is '[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?')",
                "status.conditions[1].type: Duplicate value: \"DisruptionAllowed\"",
                "status.conditions[1].reason: Required value: must be set",
                "status.disruptionsAllowed: Invalid value: -1: must be greater than or equal to 0",
            ]
        );
    }

    #[test]
    fn condition_reasons() {
        for ok in ["A", "SufficientPods", "a_b", "A:B,C", "x_"] {
            assert!(is_condition_reason(ok), "{ok}");
        }
        for bad in ["", "1a", "a:", "a-b", "_a"] {
            assert!(!is_condition_reason(bad), "{bad}");
        }
    }
}
