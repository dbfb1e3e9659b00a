//! Admission plugins that read other objects, as kube-apiserver's (plugin/pkg/admission):
//! they run on a create after decoding and before the kind's own defaulting and validation
//! (`registry::admit`), may change the object, and refuse with a 403 Forbidden (404 for a
//! missing namespace).
//!
//! - namespace lifecycle and service accounts live with the rest of their logic
//!   ([`crate::namespace_lifecycle`], [`crate::service_account`]) and run first;
//! - [`node_restriction`]: what a node (a kubelet) may write, narrowed to its own objects; it
//!   also runs on updates, patches, deletes and evictions (`crate::handlers` calls it there);
//! - [`default_tolerations`]: DefaultTolerationSeconds, 300 s tolerations of failed nodes;
//! - [`priority`]: a pod's `spec.priority` from its PriorityClass; one global default class.
//! - [`node_critical`]: a node that joins while a node-critical DaemonSet would run on it is
//!   stored with `pernode.io/critical-daemons-not-ready:NoSchedule`.
//! - [`webhooks`]: the warning that webhook configurations are stored, not called;
//! - [`certificates`]: who may approve and sign CertificateSigningRequests, and no
//!   `system:masters` client certificates (validating admission: `crate::handlers` runs it
//!   after the kind's validation, on creates and updates).
//!
//! Services' cluster IPs and node ports are allocated here too (`crate::service_alloc`).
//! What they add is noted in an [`added::Added`]: the creator's managedFields leave it out,
//! as upstream's field manager runs before mutating admission.

pub mod added;
pub mod certificates;
pub mod default_tolerations;
pub mod node_critical;
pub mod node_restriction;
pub mod priority;
pub mod webhooks;

use pernode_auth::user::UserInfo;
use pernode_resources::ResourceInfo;
use pernode_store::Store;
use serde_json::Value;

use crate::error::ApiError;
use crate::target::Target;

/// The plugins of a create by `user`, in upstream's order: namespace lifecycle
/// ([`crate::namespace_lifecycle`]: the namespace exists and is not terminating), service
/// accounts ([`crate::service_account`]: a pod's account is set and exists), NodeRestriction,
/// DefaultTolerationSeconds, Priority, the node-critical gate's taint, the webhook-configuration
/// warning; then a Service's allocation. They run before the name is
/// generated and before decoding, defaulting and validation (`registry::admit`), as upstream's
/// mutating admission does. `Ok` holds warnings for the client; `added` what they added.
pub async fn admit_create(
    store: &Store,
    user: &UserInfo,
    target: &Target,
    obj: &mut Value,
    added: &mut added::Added,
) -> Result<Vec<String>, ApiError> {
    let info = target.info;
    let ns = target.namespace.as_deref().unwrap_or("");
    if let Some(custom) = &info.custom {
        refuse_if_definition_terminating(store, &custom.crd_name)?;
    }
    crate::namespace_lifecycle::admit_create(store, info, ns, obj)?;
    crate::service_account::admit_create(store, info, ns, obj, added).await?;
    node_restriction::admit_create(store, user, info, ns, obj)?;
    match (info.group, info.plural) {
        ("", "pods") => {
            default_tolerations::admit_pod(obj, added);
            priority::admit_pod(store, obj, added).map(|()| Vec::new())
        }
        ("", "nodes") => node_critical::admit_node(store, obj, added).map(|()| Vec::new()),
        ("scheduling.k8s.io", "priorityclasses") => {
            priority::admit_priority_class(store, obj).map(|()| Vec::new())
        }
        ("admissionregistration.k8s.io", _) => Ok(webhooks::warnings(info)),
        // Not admission upstream but the Service REST storage's allocation; it needs the
        // store as the plugins do, before validation sees the object.
        ("", "services") => {
            crate::service_alloc::allocate(store, info, obj, added).map(|()| Vec::new())
        }
        _ => Ok(Vec::new()),
    }
}

/// A custom object's create while its CRD is being deleted (its objects are being removed) is
/// a 405, as upstream's custom resource handler answers.
fn refuse_if_definition_terminating(store: &Store, crd_name: &str) -> Result<(), ApiError> {
    let Some(entry) = store.get(&format!("{}{crd_name}", crate::crd::PREFIX)) else {
        return Ok(());
    };
    if memchr::memmem::find(&entry.json, b"\"deletionTimestamp\"").is_none() {
        return Ok(());
    }
    Err(ApiError::method_not_allowed(
        "create not allowed while custom resource definition is terminating",
    ))
}

/// Upstream's `admission.NewForbidden`: `<resource> "<name>" is forbidden: <why>`.
pub(crate) fn forbidden(info: &ResourceInfo, obj: &Value, why: &str) -> ApiError {
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    ApiError::forbidden_object(info.group, info.plural, name, why)
}
