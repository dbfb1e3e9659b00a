//! The NodeRestriction admission plugin (plugin/pkg/admission/noderestriction): what the Node
//! authorizer lets a node write at all, narrowed to what is its own. It acts only on requests
//! whose user is a node (`system:node:<name>` in `system:nodes`); a node user with an empty name
//! is refused everything (`could not determine node from user "system:node:"`). Every refusal
//! is upstream's `admission.NewForbidden`: `nodes "web-2" is forbidden: node "web-1" is not
//! allowed to modify node "web-2"`.
//!
//! - Pods: a node creates only mirror pods bound to itself, owned (controller, no
//!   blockOwnerDeletion) by its own Node (its uid checked), naming no service account and
//!   referencing no secret, configmap, cluster trust bundle or claim; it deletes, and evicts,
//!   only pods bound to it; it updates the status of pods bound to it only, without changing
//!   their labels or resource claim statuses; any other pod write is refused.
//! - Nodes: it creates, updates, patches and deletes its own Node only; it may not set a
//!   `configSource`, change its taints, or set, change or remove labels under
//!   `node-restriction.kubernetes.io/` or any `kubernetes.io`/`k8s.io` label the kubelet does
//!   not own (hostname, zone, region, instance type, OS, arch, `[*.]kubelet.kubernetes.io/`,
//!   `[*.]node.kubernetes.io/`).
//! - Leases: only its own, in `kube-node-lease` (the name of a create, which the authorizer
//!   cannot see, is checked here). CSINodes: only its own.
//! - PersistentVolumeClaims: status updates only, changing nothing but the status' capacity,
//!   conditions and allocated resources (unreachable here: claims are served read-only).
//!
//! It runs on every write path: creates (after the namespace lifecycle and service account
//! plugins, as upstream orders them), updates and patches on the object as sent or patched,
//! before the strategy (so a pod status written as an edit of the stored pod is checked too),
//! deletes and evictions.
//!
//! Left out: TokenRequests (`serviceaccounts/token` is not served), CSRs, ResourceSlices.

use pernode_auth::user::UserInfo;
use pernode_resources::ResourceInfo;
use pernode_store::{Attrs, Store};
use serde_json::Value;

use crate::error::ApiError;
use crate::kinds::POD_NODE_NAME;
use crate::namespace_lifecycle::admission_name;
use crate::node_graph::PodRefs;
use crate::service_account::MIRROR_POD_ANNOTATION;
use crate::target::Target;

/// The namespace of the nodes' Leases.
const NODE_LEASE_NAMESPACE: &str = pernode_auth::node::NODE_LEASE_NAMESPACE;

/// The label namespace kubelets may never set on their Node.
const NODE_RESTRICTION_LABELS: &str = "node-restriction.kubernetes.io";

/// `kubernetes.io` and `k8s.io` labels a kubelet may set on its own Node.
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];

/// Label namespaces (and their subdomains) a kubelet may set on its own Node.
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

/// The node a request is from: `Ok(None)` for other users, a refusal for a node user without a
/// name.
fn node_of<'u>(
    user: &'u UserInfo,
    info: &ResourceInfo,
    name: &str,
) -> Result<Option<&'u str>, ApiError> {
    match user.node_identity() {
        None => Ok(None),
        Some("") => Err(forbidden(
            info,
            name,
            &format!("could not determine node from user {:?}", user.name),
        )),
        Some(node) => Ok(Some(node)),
    }
}

fn forbidden(info: &ResourceInfo, name: &str, why: &str) -> ApiError {
    ApiError::forbidden_object(info.group, info.plural, name, why)
}

fn is(info: &ResourceInfo, group: &str, plural: &str) -> bool {
    info.custom.is_none() && info.group == group && info.plural == plural
}

fn text<'v>(obj: &'v Value, pointer: &str) -> &'v str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A create of `obj` (a `info` object) in namespace `ns`.
pub fn admit_create(
    store: &Store,
    user: &UserInfo,
    info: &ResourceInfo,
    ns: &str,
    obj: &Value,
) -> Result<(), ApiError> {
    let name = admission_name(obj);
    let Some(node) = node_of(user, info, name)? else {
        return Ok(());
    };
    let refuse = |why: String| Err(forbidden(info, name, &why));
    if is(info, "", "pods") {
        return admit_pod_create(store, node, info, obj);
    }
    if is(info, "", "nodes") {
        let requested = text(obj, "/metadata/name");
        if requested != node {
            return refuse(format!(
                "node {node:?} is not allowed to modify node {requested:?}"
            ));
        }
        if obj
            .pointer("/spec/configSource")
            .is_some_and(|c| !c.is_null())
        {
            // Upstream's wording.
            return refuse(format!(
                "node {node:?} is not allowed to create pods with a non-nil configSource"
            ));
        }
        let forbidden_labels = forbidden_labels(labels(obj), &serde_json::Map::new());
        if !forbidden_labels.is_empty() {
            return refuse(format!(
                "node {node:?} is not allowed to set the following labels: {}",
                forbidden_labels.join(", ")
            ));
        }
        return Ok(());
    }
    if is(info, "", "persistentvolumeclaims") {
        return refuse("may only update PVC status".into());
    }
    if is(info, "coordination.k8s.io", "leases") {
        return own_lease(node, ns, text(obj, "/metadata/name"))
            .map_err(|why| forbidden(info, name, why));
    }
    if is(info, "storage.k8s.io", "csinodes") && text(obj, "/metadata/name") != node {
        return refuse("can only access CSINode with the same name as the requesting node".into());
    }
    Ok(())
}

/// Upstream's `admitPodCreate`: a mirror pod of this node, referencing nothing.
fn admit_pod_create(
    store: &Store,
    node: &str,
    info: &ResourceInfo,
    pod: &Value,
) -> Result<(), ApiError> {
    let name = admission_name(pod);
    let refuse = |why: String| Err(forbidden(info, name, &why));
    let mirror = pod
        .pointer("/metadata/annotations")
        .and_then(Value::as_object)
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION));
    if !mirror {
        return refuse(format!(
            "pod does not have {MIRROR_POD_ANNOTATION:?} annotation, node {node:?} can only create mirror pods"
        ));
    }
    if text(pod, "/spec/nodeName") != node {
        return refuse(format!(
            "node {node:?} can only create pods with spec.nodeName set to itself"
        ));
    }
    let owners = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let owner = match owners {
        [] => {
            return refuse(format!(
                "node {node:?} can only create pods with an owner reference set to itself"
            ));
        }
        [owner] => owner,
        _ => {
            return refuse(format!(
                "node {node:?} can only create pods with a single owner reference set to itself"
            ));
        }
    };
    if text(owner, "/apiVersion") != "v1"
        || text(owner, "/kind") != "Node"
        || text(owner, "/name") != node
    {
        return refuse(format!(
            "node {node:?} can only create pods with an owner reference set to itself"
        ));
    }
    if owner.get("controller").and_then(Value::as_bool) != Some(true) {
        return refuse(format!(
            "node {node:?} can only create pods with a controller owner reference set to itself"
        ));
    }
    if owner.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
        return refuse(format!(
            "node {node:?} must not set blockOwnerDeletion on an owner reference"
        ));
    }
    let Some(stored) = store.get(&format!("nodes/{node}")) else {
        return Err(ApiError::not_found("", "nodes", node));
    };
    let stored = crate::handlers::parse_entry(&stored)?;
    let (expected, got) = (text(owner, "/uid"), text(&stored, "/metadata/uid"));
    if expected != got {
        return refuse(format!(
            "node {node} UID mismatch: expected {expected} got {got}"
        ));
    }
    let refs = PodRefs::of(pod).map_err(|e| {
        ApiError::bad_request(format!(
            "Pod in version \"v1\" cannot be handled as a Pod: {e}"
        ))
    })?;
    if !refs.service_account().is_empty() {
        return refuse(format!(
            "node {node:?} can not create pods that reference a service account"
        ));
    }
    if !refs.secrets().is_empty() {
        return refuse(format!(
            "node {node:?} can not create pods that reference secrets"
        ));
    }
    if !refs.config_maps().is_empty() {
        return refuse(format!(
            "node {node:?} can not create pods that reference configmaps"
        ));
    }
    if refs.has_cluster_trust_bundle() {
        return refuse(format!(
            "node {node:?} can not create pods that reference clustertrustbundles"
        ));
    }
    if refs.has_claim_volume() {
        return refuse(format!(
            "node {node:?} can not create pods that reference persistentvolumeclaims"
        ));
    }
    Ok(())
}

/// An update or patch of `target` from `old` (as stored) to `new` (as sent or patched, before
/// the strategy).
pub fn admit_update(
    user: &UserInfo,
    target: &Target,
    old: &Value,
    new: &Value,
) -> Result<(), ApiError> {
    let info = target.info;
    let name = target.name.as_deref().unwrap_or("");
    let Some(node) = node_of(user, info, name)? else {
        return Ok(());
    };
    let refuse = |why: String| Err(forbidden(info, name, &why));
    let sub = target.subresource.as_deref().unwrap_or("");
    if is(info, "", "pods") {
        return match sub {
            "" => refuse(unexpected_pod_update(node)),
            "status" => pod_status(
                node,
                text(old, "/spec/nodeName"),
                labels(old) == labels(new),
                old.pointer("/status/resourceClaimStatuses"),
                new.pointer("/status/resourceClaimStatuses"),
            )
            .map_err(|why| forbidden(info, name, &why)),
            other => refuse(unexpected_pod_subresource(other)),
        };
    }
    if is(info, "", "nodes") {
        if name != node {
            return refuse(format!(
                "node {node:?} is not allowed to modify node {name:?}"
            ));
        }
        let config_source = new.pointer("/spec/configSource").filter(|c| !c.is_null());
        if config_source.is_some_and(|c| Some(c) != old.pointer("/spec/configSource")) {
            return refuse(format!(
                "node {node:?} is not allowed to update configSource to a new non-nil configSource"
            ));
        }
        if list(old, "/spec/taints") != list(new, "/spec/taints") {
            return refuse(format!("node {node:?} is not allowed to modify taints"));
        }
        let forbidden_labels = forbidden_labels(labels(new), labels(old));
        if !forbidden_labels.is_empty() {
            // Upstream's wording, without the node.
            return refuse(format!(
                "is not allowed to modify labels: {}",
                forbidden_labels.join(", ")
            ));
        }
        return Ok(());
    }
    if is(info, "", "persistentvolumeclaims") {
        if sub != "status" {
            return refuse("may only update PVC status".into());
        }
        if claim_without_status(old) != claim_without_status(new) {
            return refuse(format!(
                "node {node:?} is not allowed to update fields other than status.capacity and status.conditions"
            ));
        }
        return Ok(());
    }
    if is(info, "coordination.k8s.io", "leases") {
        let ns = target.namespace.as_deref().unwrap_or("");
        return own_lease(node, ns, name).map_err(|why| forbidden(info, name, why));
    }
    if is(info, "storage.k8s.io", "csinodes") && name != node {
        return refuse("can only access CSINode with the same name as the requesting node".into());
    }
    Ok(())
}

/// A status change made as an edit of the stored pod (only `status` changes, so its labels
/// stay): [`admit_update`]'s pod status checks on what the edit has.
pub fn admit_pod_status_edit(
    user: &UserInfo,
    target: &Target,
    old_attrs: &Attrs,
    old_status: Option<&Value>,
    new_status: Option<&Value>,
) -> Result<(), ApiError> {
    let info = target.info;
    let name = target.name.as_deref().unwrap_or("");
    let Some(node) = node_of(user, info, name)? else {
        return Ok(());
    };
    fn claims(status: Option<&Value>) -> Option<&Value> {
        status?.get("resourceClaimStatuses")
    }
    pod_status(
        node,
        old_attrs.field(POD_NODE_NAME).unwrap_or(""),
        true,
        claims(old_status),
        claims(new_status),
    )
    .map_err(|why| forbidden(info, name, &why))
}

/// A delete of `target`'s object.
pub fn admit_delete(store: &Store, user: &UserInfo, target: &Target) -> Result<(), ApiError> {
    let info = target.info;
    let name = target.name.as_deref().unwrap_or("");
    let Some(node) = node_of(user, info, name)? else {
        return Ok(());
    };
    let refuse = |why: String| Err(forbidden(info, name, &why));
    if is(info, "", "pods") {
        if bound_node(store, target)? != node {
            return refuse(format!(
                "node {node:?} can only delete pods with spec.nodeName set to itself"
            ));
        }
        return Ok(());
    }
    if is(info, "", "nodes") && name != node {
        return refuse(format!(
            "node {node:?} is not allowed to modify node {name:?}"
        ));
    }
    if is(info, "", "persistentvolumeclaims") {
        return refuse("may only update PVC status".into());
    }
    if is(info, "coordination.k8s.io", "leases") {
        let ns = target.namespace.as_deref().unwrap_or("");
        return own_lease(node, ns, name).map_err(|why| forbidden(info, name, why));
    }
    if is(info, "storage.k8s.io", "csinodes") && name != node {
        return refuse("can only access CSINode with the same name as the requesting node".into());
    }
    Ok(())
}

/// An eviction of `target`'s pod (`pods/<name>/eviction`).
pub fn admit_eviction(store: &Store, user: &UserInfo, target: &Target) -> Result<(), ApiError> {
    let info = target.info;
    let name = target.name.as_deref().unwrap_or("");
    let Some(node) = node_of(user, info, name)? else {
        return Ok(());
    };
    if bound_node(store, target)? != node {
        return Err(forbidden(
            info,
            name,
            &format!("node {node} can only evict pods with spec.nodeName set to itself"),
        ));
    }
    Ok(())
}

/// The node the stored pod `target` names is bound to (a 404 when there is none).
fn bound_node(store: &Store, target: &Target) -> Result<String, ApiError> {
    let name = target.name.as_deref().unwrap_or("");
    let key = target.key().ok_or_else(ApiError::no_route)?;
    let pod = store
        .get(&key)
        .ok_or_else(|| ApiError::not_found("", "pods", name))?;
    Ok(pod.attrs.field(POD_NODE_NAME).unwrap_or("").to_string())
}

/// A pod write other than a create or delete (upstream's operation `UPDATE`).
fn unexpected_pod_update(node: &str) -> String {
    format!("unexpected operation \"UPDATE\", node {node:?} can only create and delete mirror pods")
}

fn unexpected_pod_subresource(sub: &str) -> String {
    format!("unexpected pod subresource {sub:?}, only 'status' and 'eviction' are allowed")
}

/// Upstream's `admitPodStatus` on what it compares.
fn pod_status(
    node: &str,
    old_node: &str,
    same_labels: bool,
    old_claims: Option<&Value>,
    new_claims: Option<&Value>,
) -> Result<(), String> {
    if old_node != node {
        return Err(format!(
            "node {node:?} can only update pod status for pods with spec.nodeName set to itself"
        ));
    }
    if !same_labels {
        return Err(format!(
            "node {node:?} cannot update labels through pod status"
        ));
    }
    if !claim_statuses_equal(old_claims, new_claims) {
        // Upstream's spelling.
        return Err(format!(
            "node {node:?} cannot update resource claim statues"
        ));
    }
    Ok(())
}

/// `resourceClaimStatusesEqual`: the same names and claim names, in order.
fn claim_statuses_equal(a: Option<&Value>, b: Option<&Value>) -> bool {
    let items = |v: Option<&Value>| -> Vec<(String, Option<String>)> {
        v.and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|s| {
                let name = s.get("name").and_then(Value::as_str).unwrap_or("");
                let claim = s.get("resourceClaimName").and_then(Value::as_str);
                (name.to_string(), claim.map(str::to_string))
            })
            .collect()
    };
    items(a) == items(b)
}

/// `admitLease`: the node's own Lease in `kube-node-lease`.
fn own_lease(node: &str, ns: &str, name: &str) -> Result<(), &'static str> {
    if ns != NODE_LEASE_NAMESPACE {
        return Err(r#"can only access leases in the "kube-node-lease" system namespace"#);
    }
    if name != node {
        return Err("can only access node lease with the same name as the requesting node");
    }
    Ok(())
}

fn labels(obj: &Value) -> &serde_json::Map<String, Value> {
    static EMPTY: std::sync::OnceLock<serde_json::Map<String, Value>> = std::sync::OnceLock::new();
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .unwrap_or_else(|| EMPTY.get_or_init(serde_json::Map::new))
}

/// A list member, absent, `null` and `[]` alike (Go's semantic equality of a nil and an empty
/// slice).
fn list<'v>(obj: &'v Value, pointer: &str) -> &'v [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The label keys added, removed or changed from `old` to `new` that a node may not touch,
/// sorted (`getModifiedLabels` then `getForbiddenLabels`).
fn forbidden_labels(
    new: &serde_json::Map<String, Value>,
    old: &serde_json::Map<String, Value>,
) -> Vec<String> {
    let modified = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(v))
        .chain(old.iter().filter(|(k, v)| new.get(*k) != Some(v)))
        .map(|(k, _)| k.as_str());
    let mut out: Vec<String> = modified
        .filter(|k| forbidden_label(k))
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out
}

fn label_namespace(key: &str) -> &str {
    key.split_once('/').map_or("", |(ns, _)| ns)
}

fn in_namespace(ns: &str, domain: &str) -> bool {
    ns == domain
        || ns
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Whether a node may not set, change or remove the label `key` on itself.
fn forbidden_label(key: &str) -> bool {
    let ns = label_namespace(key);
    if in_namespace(ns, NODE_RESTRICTION_LABELS) {
        return true;
    }
    let kubernetes = in_namespace(ns, "kubernetes.io") || in_namespace(ns, "k8s.io");
    let kubelet = KUBELET_LABELS.contains(&key)
        || KUBELET_LABEL_NAMESPACES
            .iter()
            .any(|allowed| in_namespace(ns, allowed));
    kubernetes && !kubelet
}

/// A claim without what a node may change of it (`admitPVCStatus`): its resourceVersion and
/// managed fields, its status' capacity, conditions and allocated resources.
fn claim_without_status(claim: &Value) -> Value {
    let mut claim = claim.clone();
    if let Some(meta) = claim.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    if let Some(status) = claim.get_mut("status").and_then(Value::as_object_mut) {
        for field in [
            "capacity",
            "conditions",
            "allocatedResourceStatuses",
            "allocatedResources",
        ] {
            status.remove(field);
        }
    }
    claim
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_labels_as_upstream_restricts_them() {
        for allowed in [
            "kubernetes.io/hostname",
            "kubernetes.io/os",
            "topology.kubernetes.io/zone",
            "node.kubernetes.io/instance-type",
            "node.kubernetes.io/anything",
            "sub.node.kubernetes.io/x",
            "kubelet.kubernetes.io/x",
            "example.com/role",
            "plain",
            "notkubernetes.io/x",
        ] {
            assert!(!forbidden_label(allowed), "{allowed}");
        }
        for refused in [
            "node-restriction.kubernetes.io/pool",
            "a.node-restriction.kubernetes.io/pool",
            "node-role.kubernetes.io/control-plane",
            "kubernetes.io/role",
            "k8s.io/x",
            "x.k8s.io/y",
            "topology.kubernetes.io/rack",
        ] {
            assert!(forbidden_label(refused), "{refused}");
        }
        let old = serde_json::json!({"kubernetes.io/role": "a", "keep": "x", "z.k8s.io/gone": "1"});
        let new = serde_json::json!({"kubernetes.io/role": "b", "keep": "x", "node-restriction.kubernetes.io/p": "1"});
        assert_eq!(
            forbidden_labels(new.as_object().unwrap(), old.as_object().unwrap()),
            [
                "kubernetes.io/role",
                "node-restriction.kubernetes.io/p",
                "z.k8s.io/gone"
            ]
        );
    }

    #[test]
    fn pod_status_checks_as_upstream() {
        assert_eq!(pod_status("web-1", "web-1", true, None, None), Ok(()));
        assert_eq!(
            pod_status("web-1", "web-2", true, None, None),
            Err(r#"node "web-1" can only update pod status for pods with spec.nodeName set to itself"#.into())
        );
        assert_eq!(
            pod_status("web-1", "web-1", false, None, None),
            Err(r#"node "web-1" cannot update labels through pod status"#.into())
        );
        let claims = serde_json::json!([{"name": "gpu", "resourceClaimName": "c"}]);
        let empty = serde_json::json!([]);
        assert_eq!(
            pod_status("web-1", "web-1", true, None, Some(&empty)),
            Ok(())
        );
        assert_eq!(
            pod_status("web-1", "web-1", true, None, Some(&claims)),
            Err(r#"node "web-1" cannot update resource claim statues"#.into())
        );
        let unnamed = serde_json::json!([{"name": "gpu"}]);
        assert!(!claim_statuses_equal(Some(&claims), Some(&unnamed)));
        assert!(claim_statuses_equal(Some(&claims), Some(&claims.clone())));
    }

    #[test]
    fn leases_and_messages() {
        assert_eq!(own_lease("web-1", "kube-node-lease", "web-1"), Ok(()));
        assert_eq!(
            own_lease("web-1", "default", "web-1"),
            Err(r#"can only access leases in the "kube-node-lease" system namespace"#)
        );
        assert_eq!(
            own_lease("web-1", "kube-node-lease", "web-2"),
            Err("can only access node lease with the same name as the requesting node")
        );
        assert_eq!(
            unexpected_pod_update("web-1"),
            r#"unexpected operation "UPDATE", node "web-1" can only create and delete mirror pods"#
        );
        assert_eq!(
            unexpected_pod_subresource("binding"),
            r#"unexpected pod subresource "binding", only 'status' and 'eviction' are allowed"#
        );
    }

    #[test]
    fn claims_compare_without_what_a_node_may_change() {
        let old = serde_json::json!({
            "metadata": {"name": "c", "resourceVersion": "1"},
            "spec": {"resources": {}},
            "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}},
        });
        let grown = serde_json::json!({
            "metadata": {"name": "c", "resourceVersion": "2"},
            "spec": {"resources": {}},
            "status": {"phase": "Bound", "capacity": {"storage": "2Gi"}, "conditions": []},
        });
        assert_eq!(claim_without_status(&old), claim_without_status(&grown));
        let relabelled = serde_json::json!({
            "metadata": {"name": "c", "labels": {"a": "b"}},
            "spec": {"resources": {}},
            "status": {"phase": "Bound"},
        });
        assert_ne!(
            claim_without_status(&old),
            claim_without_status(&relabelled)
        );
    }
}
