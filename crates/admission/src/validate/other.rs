//! Node, Namespace, Event and Lease validation.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Node};
use pernode_core::names;

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

/// core/v1 `ValidateEventCreate` (legacy rules): metadata, and the
/// involved object's namespace agreeing with the event's.
pub fn event(e: &Event) -> Vec<FieldError> {
    let mut errs = object_meta(&e.metadata, true, name_is_dns_subdomain);
    let ev_ns = e.metadata.namespace.as_deref().unwrap_or("");
    let obj_ns = e.involved_object.namespace.as_deref().unwrap_or("");
    let mismatch = if obj_ns.is_empty() {
        // Cluster-scoped objects: events live in "" or, for old clients, "default".
        !ev_ns.is_empty() && ev_ns != "default"
    } else {
        ev_ns != obj_ns
    };
    if mismatch {
        errs.push(FieldError::invalid(
            "involvedObject.namespace",
            obj_ns,
            "does not match event.namespace",
        ));
    }
    if let Some(t) = e.type_.as_deref()
        && !t.is_empty()
        && t != "Normal"
        && t != "Warning"
        && e.reporting_component
            .as_deref()
            .is_some_and(|c| !c.is_empty())
    {
        errs.push(FieldError::not_supported("type", t, &["Normal", "Warning"]));
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
