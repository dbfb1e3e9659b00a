//! apps/v1 validation: DaemonSet (spec, update, status) and
//! ControllerRevision, as `pkg/apis/apps/validation` and the daemonset
//! registry strategy run it.

use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, DaemonSetSpec, DaemonSetStatus, DaemonSetUpdateStrategy,
    RollingUpdateDaemonSet,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use pernode_core::names;
use serde_json::Value;

use super::meta::{name_is_dns_subdomain, object_meta, object_meta_update};
use super::pod::pod_template_spec;
use super::{immutable, nonnegative};
use crate::FieldError;
use crate::error::{go_opt_string_map, go_quote};

/// The annotation apps/v1 keeps the internal `spec.templateGeneration` in.
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// `ValidateDaemonSet` as the strategy's `Validate` runs it on create.
pub fn daemon_set_create(ds: &DaemonSet) -> Vec<FieldError> {
    let mut errs = object_meta(&ds.metadata, true, name_is_dns_subdomain);
    let empty = DaemonSetSpec::default();
    errs.extend(spec(ds.spec.as_ref().unwrap_or(&empty)));
    errs.extend(template_generation(ds));
    errs.extend(rollout_annotations(ds));
    errs
}

/// pernode's rollout annotations (`pernode_core::rollout`) parse: a control the controller
/// could not read is refused rather than stored.
fn rollout_annotations(ds: &DaemonSet) -> Vec<FieldError> {
    pernode_core::rollout::validate(ds.metadata.annotations.as_ref())
        .into_iter()
        .map(|(key, value, why)| {
            FieldError::invalid(
                &format!("metadata.annotations[{key}]"),
                value,
                &why.to_string(),
            )
        })
        .collect()
}

/// `spec.templateGeneration` ≥ 0, read from its annotation (an unparsable
/// annotation fails conversion upstream, before validation; the API server
/// reports that itself).
fn template_generation(ds: &DaemonSet) -> Vec<FieldError> {
    ds.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TEMPLATE_GENERATION_ANNOTATION))
        .and_then(|v| v.parse::<i64>().ok())
        .map(|g| nonnegative(g, "spec.templateGeneration"))
        .unwrap_or_default()
}

/// The strategy's `ValidateUpdate`: `ValidateDaemonSet` on the new object,
/// then `ValidateDaemonSetUpdate` (metadata update rules and the spec
/// again; duplicates collapse in the message, as upstream's aggregate
/// does), then the apps/v1 rule that `spec.selector` is immutable.
pub fn daemon_set_update(new: &DaemonSet, old: &DaemonSet) -> Vec<FieldError> {
    let empty = DaemonSetSpec::default();
    let ns = new.spec.as_ref().unwrap_or(&empty);
    let os = old.spec.as_ref().unwrap_or(&empty);
    let mut errs = object_meta(&new.metadata, true, name_is_dns_subdomain);
    errs.extend(spec(ns));
    errs.extend(template_generation(new));
    errs.extend(rollout_annotations(new));
    errs.extend(object_meta_update(&new.metadata, &old.metadata));
    errs.extend(spec(ns));
    errs.extend(template_generation(new));
    if ns.selector != os.selector {
        errs.push(FieldError::invalid_go(
            "spec.selector",
            serde_json::to_value(&ns.selector).unwrap_or(Value::Null),
            go_selector(&ns.selector),
            "field is immutable",
        ));
    }
    errs
}

/// `ValidateDaemonSetStatusUpdate`: metadata update rules, counters and
/// observedGeneration non-negative, collisionCount non-negative and never
/// decremented.
pub fn daemon_set_status_update(new: &DaemonSet, old: &DaemonSet) -> Vec<FieldError> {
    let mut errs = object_meta_update(&new.metadata, &old.metadata);
    let empty = DaemonSetStatus::default();
    let st = new.status.as_ref().unwrap_or(&empty);
    for (n, v) in [
        ("currentNumberScheduled", st.current_number_scheduled),
        ("numberMisscheduled", st.number_misscheduled),
        ("desiredNumberScheduled", st.desired_number_scheduled),
        ("numberReady", st.number_ready),
    ] {
        errs.extend(nonnegative(i64::from(v), &format!("status.{n}")));
    }
    errs.extend(nonnegative(
        st.observed_generation.unwrap_or(0),
        "status.observedGeneration",
    ));
    for (n, v) in [
        ("updatedNumberScheduled", st.updated_number_scheduled),
        ("numberAvailable", st.number_available),
        ("numberUnavailable", st.number_unavailable),
    ] {
        errs.extend(nonnegative(
            i64::from(v.unwrap_or(0)),
            &format!("status.{n}"),
        ));
    }
    if let Some(c) = st.collision_count {
        errs.extend(nonnegative(i64::from(c), "status.collisionCount"));
    }
    // `IsDecremented`: only a set old value can be decremented; a nil new
    // value counts as 0.
    let old_cc = old.status.as_ref().and_then(|s| s.collision_count);
    if let Some(o) = old_cc {
        let n = st.collision_count.unwrap_or(0);
        if st.collision_count.is_none() || n < o {
            errs.push(FieldError::invalid(
                "status.collisionCount",
                n,
                "cannot be decremented",
            ));
        }
    }
    errs
}

/// `ValidateDaemonSetSpec` at `spec`.
fn spec(spec: &DaemonSetSpec) -> Vec<FieldError> {
    let mut errs = label_selector(&spec.selector, "spec.selector");
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref());
    // `LabelSelectorAsSelector` failing (a malformed selector, reported
    // above) skips the match check, as upstream.
    if let Ok(sel) = pernode_core::labels::from_k8s(&spec.selector) {
        let empty = Default::default();
        if !sel.matches(template_labels.unwrap_or(&empty)) {
            errs.push(FieldError::invalid_go(
                "spec.template.metadata.labels",
                serde_json::to_value(template_labels).unwrap_or(Value::Null),
                go_opt_string_map(template_labels),
                "`selector` does not match template `labels`",
            ));
        }
    }
    let n_labels = spec.selector.match_labels.as_ref().map_or(0, |m| m.len());
    let n_exprs = spec
        .selector
        .match_expressions
        .as_ref()
        .map_or(0, |m| m.len());
    if n_labels + n_exprs == 0 {
        errs.push(FieldError::invalid_go(
            "spec.selector",
            serde_json::to_value(&spec.selector).unwrap_or(Value::Null),
            go_selector(&spec.selector),
            "empty selector is invalid for daemonset",
        ));
    }
    errs.extend(pod_template_spec(&spec.template, "spec.template"));
    let pod = spec.template.spec.as_ref();
    let rp = pod.and_then(|p| p.restart_policy.as_deref()).unwrap_or("");
    if rp != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            rp,
            &["Always"],
        ));
    }
    if pod.and_then(|p| p.active_deadline_seconds).is_some() {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    errs.extend(nonnegative(
        i64::from(spec.min_ready_seconds.unwrap_or(0)),
        "spec.minReadySeconds",
    ));
    let empty_strategy = DaemonSetUpdateStrategy::default();
    errs.extend(update_strategy(
        spec.update_strategy.as_ref().unwrap_or(&empty_strategy),
        "spec.updateStrategy",
    ));
    if let Some(r) = spec.revision_history_limit {
        // Zero is a valid revisionHistoryLimit.
        errs.extend(nonnegative(i64::from(r), "spec.revisionHistoryLimit"));
    }
    errs
}

/// `ValidateDaemonSetUpdateStrategy`.
fn update_strategy(s: &DaemonSetUpdateStrategy, path: &str) -> Vec<FieldError> {
    match s.type_.as_deref().unwrap_or("") {
        "OnDelete" => vec![],
        "RollingUpdate" => match s.rolling_update.as_ref() {
            None => vec![FieldError::required(&format!("{path}.rollingUpdate"), "")],
            Some(ru) => rolling_update(ru, &format!("{path}.rollingUpdate")),
        },
        _ => {
            let mut e = FieldError::not_supported(
                path,
                serde_json::to_value(s).unwrap_or(Value::Null),
                &["RollingUpdate", "OnDelete"],
            );
            e.go_value = Some(go_strategy(s));
            vec![e]
        }
    }
}

/// `ValidateRollingUpdateDaemonSet`.
fn rolling_update(ru: &RollingUpdateDaemonSet, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    // The internal type's fields are values, not pointers: nil is 0.
    let zero = IntOrString::Int(0);
    let mu = ru.max_unavailable.as_ref().unwrap_or(&zero);
    let ms = ru.max_surge.as_ref().unwrap_or(&zero);
    let mu_path = format!("{path}.maxUnavailable");
    let ms_path = format!("{path}.maxSurge");
    errs.extend(positive_int_or_percent(mu, &mu_path));
    errs.extend(positive_int_or_percent(ms, &ms_path));
    errs.extend(not_more_than_100_percent(mu, &mu_path));
    errs.extend(not_more_than_100_percent(ms, &ms_path));
    let has_unavailable = int_or_percent_value(mu) != 0;
    let has_surge = int_or_percent_value(ms) != 0;
    if has_unavailable && has_surge {
        errs.push(int_or_string_invalid(
            &ms_path,
            ms,
            "may not be set when maxUnavailable is non-zero",
        ));
    } else if !has_unavailable && !has_surge {
        errs.push(FieldError::required(
            &mu_path,
            "cannot be 0 when maxSurge is 0",
        ));
    }
    errs
}

/// `ValidatePositiveIntOrPercent`.
pub(crate) fn positive_int_or_percent(v: &IntOrString, path: &str) -> Vec<FieldError> {
    match v {
        IntOrString::String(s) => names::is_valid_percent(s)
            .into_iter()
            .map(|m| int_or_string_invalid(path, v, &m))
            .collect(),
        IntOrString::Int(i) => nonnegative(i64::from(*i), path),
    }
}

/// `getPercentValue`: the number of a valid percent string.
fn percent_value(v: &IntOrString) -> Option<i64> {
    match v {
        IntOrString::String(s) if names::is_valid_percent(s).is_empty() => {
            // Go's Atoi fails (giving 0) past int64; saturate instead of panicking.
            Some(s.trim_end_matches('%').parse::<i64>().unwrap_or(i64::MAX))
        }
        _ => None,
    }
}

/// `getIntOrPercentValue`: percent number, integer, or `IntValue()` of a
/// non-percent string (its Atoi, 0 when it does not parse).
fn int_or_percent_value(v: &IntOrString) -> i64 {
    if let Some(p) = percent_value(v) {
        return p;
    }
    match v {
        IntOrString::Int(i) => i64::from(*i),
        IntOrString::String(s) => s.parse::<i64>().unwrap_or(0),
    }
}

/// `IsNotMoreThan100Percent`.
pub(crate) fn not_more_than_100_percent(v: &IntOrString, path: &str) -> Vec<FieldError> {
    match percent_value(v) {
        Some(p) if p > 100 => vec![int_or_string_invalid(
            path,
            v,
            "must not be greater than 100%",
        )],
        _ => vec![],
    }
}

/// `field.Invalid` with an `intstr.IntOrString` value, which upstream
/// prints with `%#v` (the type has no value-receiver `String()`).
fn int_or_string_invalid(path: &str, v: &IntOrString, detail: &str) -> FieldError {
    FieldError::invalid_go(
        path,
        serde_json::to_value(v).unwrap_or(Value::Null),
        go_int_or_string(v),
        detail,
    )
}

/// `%#v` of an `intstr.IntOrString`.
pub(crate) fn go_int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => format!("intstr.IntOrString{{Type:0, IntVal:{i}, StrVal:\"\"}}"),
        IntOrString::String(s) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            go_quote(s)
        ),
    }
}

/// `%#v` of a `v1.LabelSelector` (upstream passes a pointer; ErrorBody
/// dereferences it).
pub(crate) fn go_selector(s: &LabelSelector) -> String {
    let exprs = match s.match_expressions.as_ref() {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(es) => {
            let items: Vec<String> = es
                .iter()
                .map(|e| {
                    let values = match e.values.as_ref() {
                        None => "[]string(nil)".to_string(),
                        Some(vs) => format!(
                            "[]string{{{}}}",
                            vs.iter()
                                .map(|v| go_quote(v))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(&e.key),
                        go_quote(&e.operator),
                        values
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        go_opt_string_map(s.match_labels.as_ref()),
        exprs
    )
}

/// `%#v` of the internal `apps.DaemonSetUpdateStrategy` (a pointer inside
/// prints as an address upstream; a fixed placeholder stands in).
fn go_strategy(s: &DaemonSetUpdateStrategy) -> String {
    let ru = if s.rolling_update.is_some() {
        "(*apps.RollingUpdateDaemonSet)(0xc000000000)"
    } else {
        "(*apps.RollingUpdateDaemonSet)(nil)"
    };
    format!(
        "apps.DaemonSetUpdateStrategy{{Type:{}, RollingUpdate:{ru}}}",
        go_quote(s.type_.as_deref().unwrap_or(""))
    )
}

/// `ValidateLabelSelector` (strict: label values must be valid).
pub(crate) fn label_selector(s: &LabelSelector, path: &str) -> Vec<FieldError> {
    label_selector_with(s, path, false)
}

/// `ValidateLabelSelector` with `AllowInvalidLabelValueInSelector`: when set, the values of
/// match expressions are not checked (matchLabels always are).
pub(crate) fn label_selector_with(
    s: &LabelSelector,
    path: &str,
    allow_invalid_values: bool,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, r) in s.match_expressions.iter().flatten().enumerate() {
        let p = format!("{path}.matchExpressions[{i}]");
        let n_values = r.values.as_ref().map_or(0, |v| v.len());
        match r.operator.as_str() {
            "In" | "NotIn" => {
                if n_values == 0 {
                    errs.push(FieldError::required(
                        &format!("{p}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if n_values > 0 {
                    errs.push(FieldError::forbidden(
                        &format!("{p}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                &format!("{p}.operator"),
                other,
                "not a valid selector operator",
            )),
        }
        for msg in names::is_qualified_name(&r.key) {
            errs.push(FieldError::invalid(
                &format!("{p}.key"),
                r.key.as_str(),
                &msg,
            ));
        }
        for (j, v) in r.values.iter().flatten().enumerate() {
            if allow_invalid_values {
                break;
            }
            for msg in names::is_valid_label_value(v) {
                errs.push(FieldError::invalid(
                    &format!("{p}.values[{j}]"),
                    v.as_str(),
                    &msg,
                ));
            }
        }
    }
    errs.extend(super::meta::labels(
        s.match_labels.as_ref(),
        &format!("{path}.matchLabels"),
    ));
    errs
}

/// `ValidateControllerRevision`: metadata, `data` required, `revision` ≥ 0.
pub fn controller_revision_create(cr: &ControllerRevision) -> Vec<FieldError> {
    let mut errs = object_meta(&cr.metadata, true, name_is_dns_subdomain);
    if cr.data.is_none() {
        errs.push(FieldError::required("data", "data is mandatory"));
    }
    errs.extend(nonnegative(cr.revision, "revision"));
    errs
}

/// `ValidateControllerRevisionUpdate`: metadata update rules, the create
/// rules, and `data` immutable.
pub fn controller_revision_update(
    new: &ControllerRevision,
    old: &ControllerRevision,
) -> Vec<FieldError> {
    let mut errs = object_meta_update(&new.metadata, &old.metadata);
    errs.extend(controller_revision_create(new));
    errs.extend(immutable(&new.data, &old.data, "data"));
    errs
}
