//! Node, Namespace, Event and Lease validation.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Node};
use pernode_core::names;

use super::immutable;
use super::meta::{
    finalizers, name_is_dns_label, name_is_dns_subdomain, object_meta, object_meta_update,
};
use crate::FieldError;

/// `ValidateNode`: metadata (cluster-scoped, DNS subdomain), taints,
/// capacity/allocatable quantities.
pub fn node(n: &Node) -> Vec<FieldError> {
    let mut errs = object_meta(&n.metadata, false, name_is_dns_subdomain);
    errs.extend(node_common(n));
    errs
}

/// `ValidateNodeUpdate`: metadata update rules and the node rules.
pub fn node_update(new: &Node, old: &Node) -> Vec<FieldError> {
    let mut errs = object_meta_update(&new.metadata, &old.metadata);
    errs.extend(node_common(new));
    errs
}

fn node_common(n: &Node) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let taints = n
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[]);
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (i, t) in taints.iter().enumerate() {
        let p = format!("spec.taints[{i}]");
        for msg in names::is_qualified_name(&t.key) {
            errs.push(FieldError::invalid(
                &format!("{p}.key"),
                t.key.as_str(),
                &msg,
            ));
        }
        let v = t.value.as_deref().unwrap_or("");
        for msg in names::is_valid_label_value(v) {
            errs.push(FieldError::invalid(&format!("{p}.value"), v, &msg));
        }
        match t.effect.as_str() {
            "NoSchedule" | "PreferNoSchedule" | "NoExecute" => {}
            "" => errs.push(FieldError::required(&format!("{p}.effect"), "")),
            other => errs.push(FieldError::not_supported(
                &format!("{p}.effect"),
                other,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            )),
        }
        // Upstream reports a repeated key/effect pair as a Duplicate of the
        // whole taint at its index.
        if seen.contains(&(t.key.as_str(), t.effect.as_str())) {
            let mut e = FieldError::duplicate(&p, serde_json::to_value(t).unwrap_or_default());
            e.detail = "taints must be unique by key and effect pair".to_string();
            errs.push(e);
        } else {
            seen.push((t.key.as_str(), t.effect.as_str()));
        }
    }
    if let Some(st) = n.status.as_ref() {
        for (field, list) in [("capacity", &st.capacity), ("allocatable", &st.allocatable)] {
            for (k, q) in list.iter().flatten() {
                let p = format!("status.{field}[{k}]");
                match crate::quantity::parse(&q.0) {
                    Err(_) => errs.push(FieldError::invalid(
                        &p,
                        q.0.as_str(),
                        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                    )),
                    Ok(v) if crate::quantity::is_negative(&v) => errs.push(FieldError::invalid(
                        &p,
                        crate::quantity::canonical(&v, &q.0),
                        "must be greater than or equal to 0",
                    )),
                    Ok(_) => {}
                }
            }
        }
    }
    errs
}

/// `ValidateNamespace`: metadata (cluster-scoped, DNS label) and the
/// finalizer names of `spec.finalizers`.
pub fn namespace(ns: &Namespace) -> Vec<FieldError> {
    let mut errs = object_meta(&ns.metadata, false, name_is_dns_label);
    let fins = ns
        .spec
        .as_ref()
        .and_then(|s| s.finalizers.as_deref())
        .unwrap_or(&[]);
    errs.extend(finalizers(fins, "spec.finalizers"));
    errs
}

/// `ValidateNamespaceUpdate`: metadata update rules (spec and status are
/// handled by the strategy, which keeps them from the stored object).
pub fn namespace_update(new: &Namespace, old: &Namespace) -> Vec<FieldError> {
    object_meta_update(&new.metadata, &old.metadata)
}

/// core/v1 `ValidateEventCreate` and `ValidateEventUpdate` (both the legacy rules alone for
/// the core group version), after the object metadata.
pub fn event(e: &Event) -> Vec<FieldError> {
    let mut errs = object_meta(&e.metadata, true, name_is_dns_subdomain);
    errs.extend(event_legacy(e));
    errs
}

/// `ValidateEventCreate` for events.k8s.io/v1 (on the stored, core form of the event): the
/// legacy rules, then the strict ones (metadata, series, eventTime, type, and none of the
/// deprecated fields). The field paths are upstream's, in the core names.
pub fn event_v1_create(e: &Event) -> Vec<FieldError> {
    let mut errs = event_legacy(e);
    errs.extend(object_meta(&e.metadata, true, name_is_dns_subdomain));
    errs.extend(event_v1_series(e));
    if e.event_time.is_none() {
        errs.push(FieldError::required("eventTime", ""));
    }
    let type_ = e.type_.as_deref().unwrap_or("");
    if type_ != "Normal" && type_ != "Warning" {
        errs.push(FieldError::invalid(
            "type",
            "",
            &format!("has invalid value: {type_}"),
        ));
    }
    let unset = |set: bool, path: &str, errs: &mut Vec<FieldError>| {
        if set {
            errs.push(FieldError::invalid(path, "", "needs to be unset"));
        }
    };
    unset(e.first_timestamp.is_some(), "firstTimestamp", &mut errs);
    unset(e.last_timestamp.is_some(), "lastTimestamp", &mut errs);
    unset(e.count.is_some_and(|c| c != 0), "count", &mut errs);
    let source = e.source.as_ref();
    unset(
        source.is_some_and(|s| {
            s.component.as_deref().is_some_and(|c| !c.is_empty())
                || s.host.as_deref().is_some_and(|h| !h.is_empty())
        }),
        "source",
        &mut errs,
    );
    errs
}

/// `ValidateEventUpdate` for events.k8s.io/v1: the legacy rules, the metadata update rules,
/// the series when it changed, and every other field immutable.
pub fn event_v1_update(new: &Event, old: &Event) -> Vec<FieldError> {
    let mut errs = event_legacy(new);
    errs.extend(object_meta_update(&new.metadata, &old.metadata));
    if new.series != old.series {
        errs.extend(event_v1_series(new));
    }
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    errs.extend(immutable(
        &new.involved_object,
        &old.involved_object,
        "involvedObject",
    ));
    errs.extend(immutable(&s(&new.reason), &s(&old.reason), "reason"));
    errs.extend(immutable(&s(&new.message), &s(&old.message), "message"));
    errs.extend(immutable(
        &new.source.clone().unwrap_or_default(),
        &old.source.clone().unwrap_or_default(),
        "source",
    ));
    errs.extend(immutable(
        &new.first_timestamp,
        &old.first_timestamp,
        "firstTimestamp",
    ));
    errs.extend(immutable(
        &new.last_timestamp,
        &old.last_timestamp,
        "lastTimestamp",
    ));
    errs.extend(immutable(
        &new.count.unwrap_or(0),
        &old.count.unwrap_or(0),
        "count",
    ));
    // Upstream checks the reason twice.
    errs.extend(immutable(&s(&new.reason), &s(&old.reason), "reason"));
    errs.extend(immutable(&s(&new.type_), &s(&old.type_), "type"));
    errs.extend(immutable(&new.event_time, &old.event_time, "eventTime"));
    errs.extend(immutable(&s(&new.action), &s(&old.action), "action"));
    errs.extend(immutable(&new.related, &old.related, "related"));
    errs.extend(immutable(
        &s(&new.reporting_component),
        &s(&old.reporting_component),
        "reportingController",
    ));
    errs.extend(immutable(
        &s(&new.reporting_instance),
        &s(&old.reporting_instance),
        "reportingInstance",
    ));
    errs
}

/// `validateV1EventSeries`.
fn event_v1_series(e: &Event) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(series) = &e.series {
        if series.count.unwrap_or(0) < 2 {
            errs.push(FieldError::invalid(
                "series.count",
                "",
                "should be at least 2",
            ));
        }
        if series.last_observed_time.is_none() {
            errs.push(FieldError::required("series.lastObservedTime", ""));
        }
    }
    errs
}

/// Upstream's `legacyValidateEvent`: an event without eventTime names an object in its own
/// namespace (or, for a cluster-scoped object, lives in `default` or no namespace); one with
/// eventTime names its reporting controller and instance, action and reason, within their
/// lengths.
pub fn event_legacy(e: &Event) -> Vec<FieldError> {
    const REPORTING_INSTANCE_LENGTH_LIMIT: usize = 128;
    const ACTION_LENGTH_LIMIT: usize = 128;
    const REASON_LENGTH_LIMIT: usize = 128;
    const NOTE_LENGTH_LIMIT: usize = 1024;
    let mut errs = Vec::new();
    let ev_ns = e.metadata.namespace.as_deref().unwrap_or("");
    let obj_ns = e.involved_object.namespace.as_deref().unwrap_or("");
    let mismatch = || {
        FieldError::invalid(
            "involvedObject.namespace",
            obj_ns,
            "does not match event.namespace",
        )
    };
    if e.event_time.is_none() {
        let matches = if obj_ns.is_empty() {
            ev_ns.is_empty() || ev_ns == "default"
        } else {
            ev_ns == obj_ns
        };
        if !matches {
            errs.push(mismatch());
        }
    } else {
        if obj_ns.is_empty() && ev_ns != "default" && ev_ns != "kube-system" {
            errs.push(mismatch());
        }
        let controller = e.reporting_component.as_deref().unwrap_or("");
        if controller.is_empty() {
            errs.push(FieldError::required("reportingController", ""));
        }
        for msg in names::is_qualified_name(controller) {
            errs.push(FieldError::invalid("reportingController", controller, &msg));
        }
        let instance = e.reporting_instance.as_deref().unwrap_or("");
        if instance.is_empty() {
            errs.push(FieldError::required("reportingInstance", ""));
        }
        let too_long = |path: &str, limit: usize| {
            FieldError::invalid(path, "", &format!("can have at most {limit} characters"))
        };
        if instance.len() > REPORTING_INSTANCE_LENGTH_LIMIT {
            errs.push(too_long(
                "reportingInstance",
                REPORTING_INSTANCE_LENGTH_LIMIT,
            ));
        }
        let action = e.action.as_deref().unwrap_or("");
        if action.is_empty() {
            errs.push(FieldError::required("action", ""));
        }
        if action.len() > ACTION_LENGTH_LIMIT {
            errs.push(too_long("action", ACTION_LENGTH_LIMIT));
        }
        let reason = e.reason.as_deref().unwrap_or("");
        if reason.is_empty() {
            errs.push(FieldError::required("reason", ""));
        }
        if reason.len() > REASON_LENGTH_LIMIT {
            errs.push(too_long("reason", REASON_LENGTH_LIMIT));
        }
        if e.message.as_deref().unwrap_or("").len() > NOTE_LENGTH_LIMIT {
            errs.push(too_long("message", NOTE_LENGTH_LIMIT));
        }
    }
    for msg in names::is_dns1123_subdomain(ev_ns) {
        errs.push(FieldError::invalid("namespace", ev_ns, &msg));
    }
    errs
}

/// `ValidateLease`: metadata, leaseDurationSeconds > 0, leaseTransitions ≥ 0.
pub fn lease(l: &Lease) -> Vec<FieldError> {
    let mut errs = object_meta(&l.metadata, true, name_is_dns_subdomain);
    if let Some(s) = l.spec.as_ref() {
        if let Some(d) = s.lease_duration_seconds
            && d <= 0
        {
            errs.push(FieldError::invalid(
                "spec.leaseDurationSeconds",
                d,
                "must be greater than 0",
            ));
        }
        if let Some(t) = s.lease_transitions
            && t < 0
        {
            errs.push(FieldError::invalid(
                "spec.leaseTransitions",
                t,
                "must be greater than or equal to 0",
            ));
        }
    }
    errs
}
