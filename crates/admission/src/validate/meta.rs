//! ObjectMeta, label and annotation validation (apimachinery's
//! `ValidateObjectMeta`, `ValidateObjectMetaUpdate`, `ValidateLabels`,
//! `ValidateAnnotations`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use pernode_core::names;
use serde_json::Value;

use super::{immutable, nonnegative};
use crate::FieldError;

/// A name validator: `(name, prefix) -> messages`. `prefix` is true for
/// `generateName`, where a trailing dash is allowed.
pub type NameFn = fn(&str, bool) -> Vec<String>;

/// Upstream's total limit on annotation keys and values, in bytes.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// `maskTrailingDash`: a generateName prefix may end in `-`.
fn mask_trailing_dash(name: &str, prefix: bool) -> String {
    if prefix && name.len() > 1 && name.ends_with('-') {
        format!("{}a", &name[..name.len() - 1])
    } else {
        name.to_string()
    }
}

/// `NameIsDNSSubdomain` (most kinds, DaemonSet included).
pub fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    names::is_dns1123_subdomain(&mask_trailing_dash(name, prefix))
}

/// `NameIsDNSLabel` (namespaces).
pub fn name_is_dns_label(name: &str, prefix: bool) -> Vec<String> {
    names::is_dns1123_label(&mask_trailing_dash(name, prefix))
}

/// `ValidateObjectMeta` at `metadata`.
pub fn object_meta(meta: &ObjectMeta, namespaced: bool, name_fn: NameFn) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let generate_name = meta.generate_name.as_deref().unwrap_or("");
    if !generate_name.is_empty() {
        for msg in name_fn(generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                generate_name,
                &msg,
            ));
        }
    }
    let name = meta.name.as_deref().unwrap_or("");
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for msg in name_fn(name, false) {
            errs.push(FieldError::invalid("metadata.name", name, &msg));
        }
    }
    let ns = meta.namespace.as_deref().unwrap_or("");
    if namespaced {
        if ns.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for msg in name_is_dns_label(ns, false) {
                errs.push(FieldError::invalid("metadata.namespace", ns, &msg));
            }
        }
    } else if !ns.is_empty() {
        errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    errs.extend(nonnegative(
        meta.generation.unwrap_or(0),
        "metadata.generation",
    ));
    errs.extend(labels(meta.labels.as_ref(), "metadata.labels"));
    errs.extend(annotations(
        meta.annotations.as_ref(),
        "metadata.annotations",
    ));
    errs.extend(owner_references(
        meta.owner_references.as_deref().unwrap_or(&[]),
        "metadata.ownerReferences",
    ));
    errs.extend(finalizers(
        meta.finalizers.as_deref().unwrap_or(&[]),
        "metadata.finalizers",
    ));
    errs
}

/// `ValidateObjectMetaUpdate` at `metadata`. The caller fills
/// `resourceVersion` from the stored object for unconditional updates, as
/// the generic registry does, before calling this.
pub fn object_meta_update(new: &ObjectMeta, old: &ObjectMeta) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if old.deletion_timestamp.is_some() {
        let old_f = old.finalizers.as_deref().unwrap_or(&[]);
        let extra: Vec<&String> = new
            .finalizers
            .iter()
            .flatten()
            .filter(|f| !old_f.contains(f))
            .collect();
        if !extra.is_empty() {
            errs.push(FieldError::forbidden(
                "metadata.finalizers",
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers {}",
                    crate::error::go_render(&serde_json::json!(extra))
                ),
            ));
        }
    }
    let rv = new.resource_version.as_deref().unwrap_or("");
    if rv.is_empty() {
        errs.push(FieldError::invalid(
            "metadata.resourceVersion",
            rv,
            "must be specified for an update",
        ));
    }
    if new.generation.unwrap_or(0) < old.generation.unwrap_or(0) {
        errs.push(FieldError::invalid(
            "metadata.generation",
            new.generation.unwrap_or(0),
            "must not be decremented",
        ));
    }
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    errs.extend(immutable(&s(&new.name), &s(&old.name), "metadata.name"));
    errs.extend(immutable(
        &s(&new.namespace),
        &s(&old.namespace),
        "metadata.namespace",
    ));
    errs.extend(immutable(&s(&new.uid), &s(&old.uid), "metadata.uid"));
    errs.extend(immutable(
        &new.creation_timestamp,
        &old.creation_timestamp,
        "metadata.creationTimestamp",
    ));
    errs.extend(immutable(
        &new.deletion_timestamp,
        &old.deletion_timestamp,
        "metadata.deletionTimestamp",
    ));
    errs.extend(immutable(
        &new.deletion_grace_period_seconds,
        &old.deletion_grace_period_seconds,
        "metadata.deletionGracePeriodSeconds",
    ));
    errs.extend(labels(new.labels.as_ref(), "metadata.labels"));
    errs.extend(annotations(
        new.annotations.as_ref(),
        "metadata.annotations",
    ));
    errs.extend(owner_references(
        new.owner_references.as_deref().unwrap_or(&[]),
        "metadata.ownerReferences",
    ));
    errs
}

/// `ValidateLabels`: keys are qualified names, values label values.
pub fn labels(m: Option<&BTreeMap<String, String>>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in m.into_iter().flatten() {
        for msg in names::is_qualified_name(k) {
            errs.push(FieldError::invalid(path, k.as_str(), &msg));
        }
        for msg in names::is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v.as_str(), &msg));
        }
    }
    errs
}

/// `ValidateAnnotations`: keys are qualified names (case-insensitive), and
/// keys plus values total at most 256 KiB.
pub fn annotations(m: Option<&BTreeMap<String, String>>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total = 0usize;
    for (k, v) in m.into_iter().flatten() {
        for msg in names::is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), &msg));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(
            path,
            TOTAL_ANNOTATION_SIZE_LIMIT as i64,
        ));
    }
    errs
}

/// `ValidateOwnerReferences`: each needs apiVersion, kind, name and uid, and
/// at most one may be the controller.
fn owner_references(refs: &[OwnerReference], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut controllers = Vec::new();
    for r in refs {
        // `schema.FromAPIVersionAndKind`: the version is after the last '/'.
        let version = r.api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{path}.apiVersion"),
                r.api_version.as_str(),
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{path}.kind"),
                r.kind.as_str(),
                "kind must not be empty",
            ));
        }
        if r.name.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{path}.name"),
                r.name.as_str(),
                "name must not be empty",
            ));
        }
        if r.uid.is_empty() {
            errs.push(FieldError::invalid(
                &format!("{path}.uid"),
                r.uid.as_str(),
                "uid must not be empty",
            ));
        }
        if r.controller == Some(true) {
            controllers.push(format!("{}/{}", r.kind, r.name));
        }
    }
    if controllers.len() > 1 {
        errs.push(FieldError::invalid(
            path,
            serde_json::to_value(refs).unwrap_or(Value::Null),
            &format!(
                "Only one reference can have Controller set to true. Found \"true\" in references for {}",
                controllers.join(" and ")
            ),
        ));
    }
    errs
}

/// `ValidateFinalizers` with core's `validateFinalizerName`: qualified names,
/// unqualified ones only from the standard set, not both orphan and
/// foregroundDeletion.
pub(crate) fn finalizers(fins: &[String], path: &str) -> Vec<FieldError> {
    const STANDARD: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];
    let mut errs = Vec::new();
    for f in fins {
        let msgs = names::is_qualified_name(f);
        if !msgs.is_empty() {
            for msg in msgs {
                errs.push(FieldError::invalid(path, f.as_str(), &msg));
            }
        } else if !f.contains('/') && !STANDARD.contains(&f.as_str()) {
            errs.push(FieldError::invalid(
                path,
                f.as_str(),
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    if fins.iter().any(|f| f == "orphan") && fins.iter().any(|f| f == "foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            serde_json::json!(fins),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}
