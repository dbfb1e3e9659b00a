//! Admission plugins that read other objects, as kube-apiserver's (plugin/pkg/admission):
//! they run on a create or update after decoding and before the kind's own defaulting and
//! validation (`registry::admit`), may change the object, and refuse with a 403 Forbidden.
//!
//! - [`priority`]: a pod's `spec.priority` from its PriorityClass; one global default class.
//! - [`webhooks`]: the warning that webhook configurations are stored, not called.
//!
//! Services' cluster IPs and node ports are allocated here too (`crate::service_alloc`).

pub mod priority;
pub mod webhooks;

use pernode_resources::ResourceInfo;
use pernode_store::Store;
use serde_json::Value;

use crate::error::ApiError;

/// The plugins' verdict on a write: `Ok` with warnings for the client, or the refusal.
pub fn admit(
    store: &Store,
    info: &ResourceInfo,
    create: bool,
    obj: &mut Value,
) -> Result<Vec<String>, ApiError> {
    match (info.group, info.plural) {
        ("", "pods") if create => priority::admit_pod(store, obj).map(|()| Vec::new()),
        ("scheduling.k8s.io", "priorityclasses") => {
            priority::admit_priority_class(store, obj).map(|()| Vec::new())
        }
        ("admissionregistration.k8s.io", _) if create => Ok(webhooks::warnings(info)),
        // Not admission upstream but the Service REST storage's allocation; it needs the
        // store as the plugins do, before validation sees the object.
        ("", "services") if create => {
            crate::service_alloc::allocate(store, info, obj).map(|()| Vec::new())
        }
        _ => Ok(Vec::new()),
    }
}

/// Upstream's `admission.NewForbidden` message: `<resource> "<name>" is forbidden: <why>`.
pub(crate) fn forbidden(info: &ResourceInfo, obj: &Value, why: &str) -> ApiError {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    ApiError::forbidden(format!(
        "{} \"{name}\" is forbidden: {why}",
        info.group_resource()
    ))
}
