//! The Node authorizer, as upstream's `plugin/pkg/auth/authorizer/node` in v1.33 (with
//! `AuthorizeNodeWithSelectors` on, its default since v1.32): what a kubelet, user
//! `system:node:<name>` in group `system:nodes`, may do.
//!
//! - Requests from anyone else: NoOpinion, no reason (the rest of the chain decides).
//! - A node user whose name after `system:node:` is empty: NoOpinion, `unknown node for user
//!   "system:node:"`.
//! - Secrets and configmaps: `get`, `list` and `watch` of one named object (a kubelet watches
//!   one object through a `metadata.name` field selector) related to the node; PVCs, PVs and
//!   VolumeAttachments: `get` of a related object; PVC status: `update`/`patch` of a related
//!   one; ServiceAccounts: `create` of the `token` subresource of a related account.
//!   "Related" is the [`NodeGraph`]'s answer: the object is referenced by a pod bound to the
//!   node (`spec.nodeName`), as upstream's graph (`node <- pod <- secret`, `<- configmap`,
//!   `<- pvc <- pv`, `<- serviceaccount`, `node <- volumeattachment`).
//! - Leases: `get`, `create`, `update`, `patch`, `delete` in `kube-node-lease`, of the lease
//!   named as the node (a create's name is NodeRestriction's to check).
//! - CSINodes: the same verbs, of the CSINode named as the node, no subresource.
//! - Nodes: `create`, `update`, `patch` (and `update`/`patch` of `status`) of any node, which
//!   NodeRestriction narrows to its own; `get`, `list`, `watch` of its own Node by name only.
//! - Pods: `get` of a pod bound to it; `list`/`watch` only with the field selector
//!   `spec.nodeName=<node>` (or of one related pod by name); `create`/`delete` (mirror pods),
//!   `update`/`patch` of `status` and `create` of `eviction`, which NodeRestriction narrows to
//!   pods bound to the node.
//! - Anything else: upstream's static `NodeRules()` ([`NODE_RULES`], the rules of the
//!   `system:node` ClusterRole), matched as RBAC matches a rule; Allow or NoOpinion.
//!
//! A refusal is a NoOpinion with upstream's reason (`no relationship found between node 'web-1'
//! and this object`, ...), never a Deny: a later authorizer (RBAC) may still allow the request.
//!
//! Left out: DRA (ResourceClaims, ResourceSlices), PodCertificateRequests and CSRs' node
//! checks, which pernode does not serve, and the graph's PV → secret edges (PVs are always
//! empty here).

use pernode_core::fields::FieldOp;

use crate::authorizer::{Attributes, Authorizer, Decision};

/// The namespace of the nodes' Leases.
pub const NODE_LEASE_NAMESPACE: &str = "kube-node-lease";

/// A kind of object a node may be related to (upstream's vertex types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Vertex {
    Pod,
    Secret,
    ConfigMap,
    PersistentVolumeClaim,
    PersistentVolume,
    ServiceAccount,
    VolumeAttachment,
}

/// Which objects a node is related to: what the authorizer asks of the API server's state.
pub trait NodeGraph: Send + Sync {
    /// Whether the object `namespace`/`name` (namespace empty for PVs and VolumeAttachments) is
    /// related to `node`: a pod bound to the node (`Pod`), an object such a pod references
    /// (`Secret`, `ConfigMap`, `PersistentVolumeClaim`, `ServiceAccount`: the pod's own
    /// namespace; mirror pods reference nothing), a PV bound to such a claim, a
    /// VolumeAttachment naming the node.
    fn related(&self, node: &str, vertex: Vertex, namespace: &str, name: &str) -> bool;
}

impl<G: NodeGraph + ?Sized> NodeGraph for std::sync::Arc<G> {
    fn related(&self, node: &str, vertex: Vertex, namespace: &str, name: &str) -> bool {
        (**self).related(node, vertex, namespace, name)
    }
}

/// One static rule: RBAC's `PolicyRule` without resource names or URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub verbs: &'static [&'static str],
    pub api_groups: &'static [&'static str],
    /// `resource` or `resource/subresource`; `*` for all.
    pub resources: &'static [&'static str],
}

const fn rule(
    verbs: &'static [&'static str],
    api_groups: &'static [&'static str],
    resources: &'static [&'static str],
) -> Rule {
    Rule {
        verbs,
        api_groups,
        resources,
    }
}

const READ: &[&str] = &["get", "list", "watch"];
const LEGACY: &[&str] = &[""];

/// Upstream's `bootstrappolicy.NodeRules()`: what the authorizer allows a node beyond the
/// objects it decides itself, and the rules of the bootstrap `system:node` ClusterRole.
pub const NODE_RULES: &[Rule] = &[
    rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
    rule(
        &["create"],
        &["authorization.k8s.io"],
        &["subjectaccessreviews", "localsubjectaccessreviews"],
    ),
    rule(READ, LEGACY, &["services"]),
    rule(&["create", "get", "list", "watch"], LEGACY, &["nodes"]),
    rule(&["update", "patch"], LEGACY, &["nodes/status"]),
    rule(&["update", "patch"], LEGACY, &["nodes"]),
    rule(&["create", "update", "patch"], LEGACY, &["events"]),
    rule(READ, LEGACY, &["pods"]),
    rule(&["create", "delete"], LEGACY, &["pods"]),
    rule(&["update", "patch"], LEGACY, &["pods/status"]),
    rule(&["create"], LEGACY, &["pods/eviction"]),
    rule(READ, LEGACY, &["secrets", "configmaps"]),
    rule(
        &["get"],
        LEGACY,
        &["persistentvolumeclaims", "persistentvolumes"],
    ),
    rule(&["get"], LEGACY, &["endpoints"]),
    rule(
        &["create", "get", "list", "watch"],
        &["certificates.k8s.io"],
        &["certificatesigningrequests"],
    ),
    rule(
        &["get", "create", "update", "patch", "delete"],
        &["coordination.k8s.io"],
        &["leases"],
    ),
    rule(&["get"], &["storage.k8s.io"], &["volumeattachments"]),
    rule(&["create"], LEGACY, &["serviceaccounts/token"]),
    rule(
        &["get", "update", "patch"],
        LEGACY,
        &["persistentvolumeclaims/status"],
    ),
    rule(READ, &["storage.k8s.io"], &["csidrivers"]),
    rule(
        &["get", "create", "update", "patch", "delete"],
        &["storage.k8s.io"],
        &["csinodes"],
    ),
    rule(READ, &["node.k8s.io"], &["runtimeclasses"]),
];

impl Rule {
    /// Whether the rule allows a resource request, as RBAC's `RuleAllows` (verb, group, then
    /// `resource` or `resource/subresource`, with `*` and `*/subresource`). A rule without
    /// URLs allows no non-resource request.
    pub fn allows(&self, attrs: &Attributes<'_>) -> bool {
        if !attrs.resource_request {
            return false;
        }
        let any = |list: &[&str], v: &str| list.iter().any(|x| *x == "*" || *x == v);
        any(self.verbs, attrs.verb)
            && any(self.api_groups, attrs.api_group)
            && self.resources.iter().any(|r| {
                if *r == "*" {
                    return true;
                }
                match r.split_once('/') {
                    None => attrs.subresource.is_empty() && *r == attrs.resource,
                    Some((resource, sub)) => {
                        !attrs.subresource.is_empty()
                            && sub == attrs.subresource
                            && (resource == "*" || resource == attrs.resource)
                    }
                }
            })
    }
}

/// The Node authorizer over a [`NodeGraph`].
pub struct NodeAuthorizer<G> {
    graph: G,
}

impl<G: NodeGraph> NodeAuthorizer<G> {
    pub fn new(graph: G) -> NodeAuthorizer<G> {
        NodeAuthorizer { graph }
    }
}

fn no_opinion(reason: impl Into<String>) -> Decision {
    Decision::NoOpinion(reason.into())
}

fn no_relationship(node: &str) -> Decision {
    no_opinion(format!(
        "no relationship found between node '{node}' and this object"
    ))
}

impl<G: NodeGraph> Authorizer for NodeAuthorizer<G> {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        let Some(node) = attrs.user.node_identity() else {
            return no_opinion("");
        };
        if node.is_empty() {
            return no_opinion(format!("unknown node for user {:?}", attrs.user.name));
        }
        if attrs.resource_request {
            match (attrs.api_group, attrs.resource) {
                ("", "secrets") => return self.read_namespaced(node, Vertex::Secret, attrs),
                ("", "configmaps") => return self.read_namespaced(node, Vertex::ConfigMap, attrs),
                ("", "persistentvolumeclaims") if attrs.subresource == "status" => {
                    return self.status_update(node, Vertex::PersistentVolumeClaim, attrs);
                }
                ("", "persistentvolumeclaims") => {
                    return self.get(node, Vertex::PersistentVolumeClaim, attrs);
                }
                ("", "persistentvolumes") => {
                    return self.get(node, Vertex::PersistentVolume, attrs);
                }
                ("storage.k8s.io", "volumeattachments") => {
                    return self.get(node, Vertex::VolumeAttachment, attrs);
                }
                ("", "serviceaccounts") => return self.create_token(node, attrs),
                ("coordination.k8s.io", "leases") => return lease(node, attrs),
                ("storage.k8s.io", "csinodes") => return csi_node(node, attrs),
                ("", "nodes") => return node_object(node, attrs),
                ("", "pods") => return self.pod(node, attrs),
                _ => {}
            }
        }
        if NODE_RULES.iter().any(|r| r.allows(attrs)) {
            Decision::Allow
        } else {
            no_opinion("")
        }
    }
}

impl<G: NodeGraph> NodeAuthorizer<G> {
    /// `authorizeReadNamespacedObject`: get, list or watch of one named, namespaced object.
    fn read_namespaced(&self, node: &str, vertex: Vertex, attrs: &Attributes<'_>) -> Decision {
        if !matches!(attrs.verb, "get" | "list" | "watch") {
            return no_opinion("can only read resources of this type");
        }
        if !attrs.subresource.is_empty() {
            return no_opinion("cannot read subresource");
        }
        if attrs.namespace.is_empty() {
            return no_opinion("can only read namespaced object of this type");
        }
        self.related(node, vertex, attrs)
    }

    /// `authorizeGet`: get of one object, no subresource.
    fn get(&self, node: &str, vertex: Vertex, attrs: &Attributes<'_>) -> Decision {
        if attrs.verb != "get" {
            return no_opinion("can only get individual resources of this type");
        }
        if !attrs.subresource.is_empty() {
            return no_opinion("cannot get subresource");
        }
        self.related(node, vertex, attrs)
    }

    /// `authorizeStatusUpdate`: update or patch of a related object's status.
    fn status_update(&self, node: &str, vertex: Vertex, attrs: &Attributes<'_>) -> Decision {
        if !matches!(attrs.verb, "update" | "patch") {
            return no_opinion("can only get/update/patch this type");
        }
        if attrs.subresource != "status" {
            return no_opinion("can only update status subresource");
        }
        self.related(node, vertex, attrs)
    }

    /// `authorizeCreateToken`: a token of a service account a pod on the node runs as.
    fn create_token(&self, node: &str, attrs: &Attributes<'_>) -> Decision {
        if attrs.verb != "create" || attrs.name.is_empty() {
            return no_opinion("can only create tokens for individual service accounts");
        }
        if attrs.subresource != "token" {
            return no_opinion("can only create token subresource of serviceaccount");
        }
        if self
            .graph
            .related(node, Vertex::ServiceAccount, attrs.namespace, attrs.name)
        {
            Decision::Allow
        } else {
            no_relationship(node)
        }
    }

    /// `authorizePod`.
    fn pod(&self, node: &str, attrs: &Attributes<'_>) -> Decision {
        match (attrs.subresource, attrs.verb) {
            ("", "get") => self.get(node, Vertex::Pod, attrs),
            ("", "list" | "watch") => {
                let scoped = attrs.field_selector.iter().any(|r| {
                    r.field == "spec.nodeName" && r.op == FieldOp::Equals && r.value == node
                });
                if scoped {
                    Decision::Allow
                } else if !attrs.name.is_empty() {
                    self.related(node, Vertex::Pod, attrs)
                } else {
                    no_opinion("can only list/watch pods with spec.nodeName field selector")
                }
            }
            // Mirror pods, status reports and evictions: NodeRestriction limits them to pods
            // bound to the node.
            ("", "create" | "delete") | ("status", "update" | "patch") | ("eviction", "create") => {
                Decision::Allow
            }
            _ => no_opinion(""),
        }
    }

    /// `authorize`: a named object related to the node.
    fn related(&self, node: &str, vertex: Vertex, attrs: &Attributes<'_>) -> Decision {
        if attrs.name.is_empty() {
            return no_opinion("No Object name found");
        }
        if self
            .graph
            .related(node, vertex, attrs.namespace, attrs.name)
        {
            Decision::Allow
        } else {
            no_relationship(node)
        }
    }
}

/// `authorizeLease`: the node's own Lease in `kube-node-lease`.
fn lease(node: &str, attrs: &Attributes<'_>) -> Decision {
    if !matches!(attrs.verb, "get" | "create" | "update" | "patch" | "delete") {
        return no_opinion("can only get, create, update, patch, or delete a node lease");
    }
    if attrs.namespace != NODE_LEASE_NAMESPACE {
        return no_opinion(format!(
            "can only access leases in the {NODE_LEASE_NAMESPACE:?} system namespace"
        ));
    }
    // A create names no object here; NodeRestriction checks the name of the Lease created.
    if attrs.verb != "create" && attrs.name != node {
        return no_opinion("can only access node lease with the same name as the requesting node");
    }
    Decision::Allow
}

/// `authorizeCSINode`: the node's own CSINode.
fn csi_node(node: &str, attrs: &Attributes<'_>) -> Decision {
    if !matches!(attrs.verb, "get" | "create" | "update" | "patch" | "delete") {
        return no_opinion("can only get, create, update, patch, or delete a CSINode");
    }
    if !attrs.subresource.is_empty() {
        return no_opinion("cannot authorize CSINode subresources");
    }
    if attrs.verb != "create" && attrs.name != node {
        return no_opinion("can only access CSINode with the same name as the requesting node");
    }
    Decision::Allow
}

/// `authorizeNode`: writes of any Node (NodeRestriction keeps a node to its own), reads of its
/// own by name (so a kubelet may look for its Node before registering it).
fn node_object(node: &str, attrs: &Attributes<'_>) -> Decision {
    match (attrs.subresource, attrs.verb) {
        ("", "create" | "update" | "patch") | ("status", "update" | "patch") => Decision::Allow,
        ("", "get" | "list" | "watch") => {
            if attrs.name == node {
                Decision::Allow
            } else if attrs.name.is_empty() {
                no_opinion(format!(
                    "node '{node}' cannot read all nodes, only its own Node object"
                ))
            } else {
                no_opinion(format!(
                    "node '{node}' cannot read '{}', only its own Node object",
                    attrs.name
                ))
            }
        }
        _ => no_opinion(""),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use pernode_core::fields::FieldSelector;

    use super::*;
    use crate::user::UserInfo;

    /// Node `web-1` runs pod `default/web-1-pod`, which references secret `tls`, configmap
    /// `conf`, claim `data` (bound to PV `pv-1`) and runs as account `app`; VolumeAttachment
    /// `va-1` names it.
    struct Fake(HashSet<(Vertex, &'static str, &'static str)>);

    impl Fake {
        fn new() -> Fake {
            Fake(HashSet::from([
                (Vertex::Pod, "default", "web-1-pod"),
                (Vertex::Secret, "default", "tls"),
                (Vertex::ConfigMap, "default", "conf"),
                (Vertex::PersistentVolumeClaim, "default", "data"),
                (Vertex::PersistentVolume, "", "pv-1"),
                (Vertex::ServiceAccount, "default", "app"),
                (Vertex::VolumeAttachment, "", "va-1"),
            ]))
        }
    }

    impl NodeGraph for Fake {
        fn related(&self, node: &str, vertex: Vertex, namespace: &str, name: &str) -> bool {
            node == "web-1" && self.0.contains(&(vertex, namespace, name))
        }
    }

    fn node() -> UserInfo {
        UserInfo::new(
            "system:node:web-1",
            ["system:nodes", "system:authenticated"],
        )
    }

    fn decide(
        user: &UserInfo,
        verb: &str,
        ns: &str,
        group: &str,
        resource: &str,
        sub: &str,
        name: &str,
    ) -> Decision {
        let attrs = Attributes::resource(user, verb, ns, group, "v1", resource, sub, name);
        NodeAuthorizer::new(Fake::new()).authorize(&attrs)
    }

    fn no(reason: &str) -> Decision {
        Decision::NoOpinion(reason.to_string())
    }

    const NO_RELATION: &str = "no relationship found between node 'web-1' and this object";

    #[test]
    fn other_users_get_no_opinion() {
        for user in [
            UserInfo::new("jane", ["dev"]),
            UserInfo::new("system:node:web-1", ["dev"]),
            UserInfo::new("web-1", ["system:nodes"]),
        ] {
            assert_eq!(
                decide(&user, "get", "default", "", "secrets", "", "tls"),
                no("")
            );
        }
    }

    #[test]
    fn an_unidentifiable_node_is_refused_with_upstreams_reason() {
        let user = UserInfo::new("system:node:", ["system:nodes"]);
        assert_eq!(
            decide(&user, "get", "", "", "nodes", "", "web-1"),
            no(r#"unknown node for user "system:node:""#)
        );
    }

    #[test]
    fn secrets_and_configmaps_of_its_pods_only() {
        let n = node();
        for (resource, name) in [("secrets", "tls"), ("configmaps", "conf")] {
            for verb in ["get", "list", "watch"] {
                assert_eq!(
                    decide(&n, verb, "default", "", resource, "", name),
                    Decision::Allow,
                    "{verb} {resource}"
                );
            }
            assert_eq!(
                decide(&n, "get", "default", "", resource, "", "other"),
                no(NO_RELATION)
            );
            assert_eq!(
                decide(&n, "get", "kube-system", "", resource, "", name),
                no(NO_RELATION)
            );
            assert_eq!(
                decide(&n, "list", "default", "", resource, "", ""),
                no("No Object name found")
            );
            assert_eq!(
                decide(&n, "update", "default", "", resource, "", name),
                no("can only read resources of this type")
            );
            assert_eq!(
                decide(&n, "get", "default", "", resource, "x", name),
                no("cannot read subresource")
            );
            assert_eq!(
                decide(&n, "list", "", "", resource, "", ""),
                no("can only read namespaced object of this type")
            );
        }
        // Another node is related to none of them.
        let other = UserInfo::new("system:node:web-2", ["system:nodes"]);
        assert_eq!(
            decide(&other, "get", "default", "", "secrets", "", "tls"),
            no("no relationship found between node 'web-2' and this object")
        );
    }

    #[test]
    fn claims_volumes_and_attachments_by_get() {
        let n = node();
        let cases = [
            ("", "persistentvolumeclaims", "default", "data"),
            ("", "persistentvolumes", "", "pv-1"),
            ("storage.k8s.io", "volumeattachments", "", "va-1"),
        ];
        for (group, resource, ns, name) in cases {
            assert_eq!(
                decide(&n, "get", ns, group, resource, "", name),
                Decision::Allow
            );
            assert_eq!(
                decide(&n, "get", ns, group, resource, "", "other"),
                no(NO_RELATION)
            );
            assert_eq!(
                decide(&n, "list", ns, group, resource, "", ""),
                no("can only get individual resources of this type")
            );
        }
        assert_eq!(
            decide(&n, "get", "", "", "persistentvolumes", "status", "pv-1"),
            no("cannot get subresource")
        );
        assert_eq!(
            decide(
                &n,
                "patch",
                "default",
                "",
                "persistentvolumeclaims",
                "status",
                "data"
            ),
            Decision::Allow
        );
        assert_eq!(
            decide(
                &n,
                "get",
                "default",
                "",
                "persistentvolumeclaims",
                "status",
                "data"
            ),
            no("can only get/update/patch this type")
        );
        assert_eq!(
            decide(
                &n,
                "update",
                "default",
                "",
                "persistentvolumeclaims",
                "status",
                "other"
            ),
            no(NO_RELATION)
        );
    }

    #[test]
    fn tokens_only_for_accounts_of_its_pods() {
        let n = node();
        let sa = |verb, sub, name| decide(&n, verb, "default", "", "serviceaccounts", sub, name);
        assert_eq!(sa("create", "token", "app"), Decision::Allow);
        assert_eq!(sa("create", "token", "default"), no(NO_RELATION));
        assert_eq!(
            sa("get", "", "app"),
            no("can only create tokens for individual service accounts")
        );
        assert_eq!(
            sa("create", "token", ""),
            no("can only create tokens for individual service accounts")
        );
        assert_eq!(
            sa("create", "", "app"),
            no("can only create token subresource of serviceaccount")
        );
    }

    #[test]
    fn its_own_lease_in_the_lease_namespace() {
        let n = node();
        let lease =
            |verb, ns, name| decide(&n, verb, ns, "coordination.k8s.io", "leases", "", name);
        for verb in ["get", "update", "patch", "delete"] {
            assert_eq!(lease(verb, NODE_LEASE_NAMESPACE, "web-1"), Decision::Allow);
            assert_eq!(
                lease(verb, NODE_LEASE_NAMESPACE, "web-2"),
                no("can only access node lease with the same name as the requesting node")
            );
        }
        // A create names nothing: NodeRestriction checks the body's name.
        assert_eq!(lease("create", NODE_LEASE_NAMESPACE, ""), Decision::Allow);
        assert_eq!(
            lease("get", "default", "web-1"),
            no(r#"can only access leases in the "kube-node-lease" system namespace"#)
        );
        assert_eq!(
            lease("list", NODE_LEASE_NAMESPACE, ""),
            no("can only get, create, update, patch, or delete a node lease")
        );
    }

    #[test]
    fn its_own_csinode() {
        let n = node();
        let csi = |verb, sub, name| decide(&n, verb, "", "storage.k8s.io", "csinodes", sub, name);
        assert_eq!(csi("get", "", "web-1"), Decision::Allow);
        assert_eq!(csi("create", "", ""), Decision::Allow);
        assert_eq!(
            csi("delete", "", "web-2"),
            no("can only access CSINode with the same name as the requesting node")
        );
        assert_eq!(
            csi("get", "status", "web-1"),
            no("cannot authorize CSINode subresources")
        );
        assert_eq!(
            csi("watch", "", "web-1"),
            no("can only get, create, update, patch, or delete a CSINode")
        );
    }

    #[test]
    fn node_objects_written_freely_read_only_its_own() {
        let n = node();
        let nodes = |verb, sub, name| decide(&n, verb, "", "", "nodes", sub, name);
        // Writes to any node: NodeRestriction refuses other nodes'.
        for verb in ["create", "update", "patch"] {
            assert_eq!(nodes(verb, "", "web-2"), Decision::Allow);
        }
        assert_eq!(nodes("patch", "status", "web-2"), Decision::Allow);
        assert_eq!(nodes("get", "", "web-1"), Decision::Allow);
        assert_eq!(nodes("watch", "", "web-1"), Decision::Allow);
        assert_eq!(
            nodes("get", "", "web-2"),
            no("node 'web-1' cannot read 'web-2', only its own Node object")
        );
        assert_eq!(
            nodes("list", "", ""),
            no("node 'web-1' cannot read all nodes, only its own Node object")
        );
        assert_eq!(nodes("delete", "", "web-1"), no(""));
        assert_eq!(nodes("get", "status", "web-1"), no(""));
        assert_eq!(nodes("get", "proxy", "web-1"), no(""));
    }

    #[test]
    fn pods_bound_to_it_and_lists_scoped_to_it() {
        let n = node();
        let pods = |verb, sub, name| decide(&n, verb, "default", "", "pods", sub, name);
        assert_eq!(pods("get", "", "web-1-pod"), Decision::Allow);
        assert_eq!(pods("get", "", "elsewhere"), no(NO_RELATION));
        assert_eq!(
            pods("list", "", ""),
            no("can only list/watch pods with spec.nodeName field selector")
        );
        // A watch of one pod by name (a metadata.name field selector).
        assert_eq!(pods("watch", "", "web-1-pod"), Decision::Allow);
        for sub_verb in [
            ("", "create"),
            ("", "delete"),
            ("status", "update"),
            ("status", "patch"),
            ("eviction", "create"),
        ] {
            assert_eq!(pods(sub_verb.1, sub_verb.0, "any"), Decision::Allow);
        }
        assert_eq!(pods("update", "", "web-1-pod"), no(""));
        assert_eq!(pods("create", "binding", "web-1-pod"), no(""));
        assert_eq!(pods("get", "log", "web-1-pod"), no(""));

        let scoped = |selector: &str, verb| {
            let requirements = FieldSelector::parse(selector).unwrap();
            let attrs = Attributes::resource(&n, verb, "", "", "v1", "pods", "", "")
                .with_field_selector(requirements.requirements());
            NodeAuthorizer::new(Fake::new()).authorize(&attrs)
        };
        assert_eq!(scoped("spec.nodeName=web-1", "list"), Decision::Allow);
        assert_eq!(
            scoped("status.phase!=Failed,spec.nodeName==web-1", "watch"),
            Decision::Allow
        );
        let refused = no("can only list/watch pods with spec.nodeName field selector");
        assert_eq!(scoped("spec.nodeName=web-2", "list"), refused);
        assert_eq!(scoped("spec.nodeName!=web-1", "list"), refused);
    }

    #[test]
    fn everything_else_by_the_static_node_rules() {
        let n = node();
        let allowed = [
            ("create", "", "", "events", ""),
            ("patch", "default", "", "events", ""),
            ("get", "default", "", "services", ""),
            ("list", "", "", "services", ""),
            ("get", "default", "", "endpoints", ""),
            ("create", "", "authentication.k8s.io", "tokenreviews", ""),
            (
                "create",
                "",
                "authorization.k8s.io",
                "subjectaccessreviews",
                "",
            ),
            ("watch", "", "storage.k8s.io", "csidrivers", ""),
            ("get", "", "node.k8s.io", "runtimeclasses", ""),
            (
                "create",
                "",
                "certificates.k8s.io",
                "certificatesigningrequests",
                "",
            ),
        ];
        for (verb, ns, group, resource, sub) in allowed {
            assert_eq!(
                decide(&n, verb, ns, group, resource, sub, ""),
                Decision::Allow,
                "{verb} {group}/{resource}"
            );
        }
        let refused = [
            ("delete", "default", "", "events", ""),
            ("create", "default", "events.k8s.io", "events", ""),
            ("create", "default", "", "configmaps", ""),
            ("list", "", "", "namespaces", ""),
            ("get", "", "apps", "daemonsets", ""),
            ("delete", "default", "", "services", ""),
            ("get", "default", "", "services", "proxy"),
        ];
        for (verb, ns, group, resource, sub) in refused {
            assert!(
                matches!(
                    decide(&n, verb, ns, group, resource, sub, "x"),
                    Decision::NoOpinion(_)
                ),
                "{verb} {group}/{resource}"
            );
        }
        // No URL rules: non-resource paths are left to the rest of the chain.
        let path = Attributes::non_resource(&n, "get", "/api");
        assert_eq!(NodeAuthorizer::new(Fake::new()).authorize(&path), no(""));
    }

    #[test]
    fn rules_match_as_rbac_does() {
        let n = node();
        let attrs =
            |resource, sub| Attributes::resource(&n, "get", "", "g", "v1", resource, sub, "");
        let exact = rule(&["get"], &["g"], &["things"]);
        assert!(exact.allows(&attrs("things", "")));
        assert!(!exact.allows(&attrs("things", "status")));
        let sub = rule(&["get"], &["g"], &["things/status"]);
        assert!(sub.allows(&attrs("things", "status")));
        assert!(!sub.allows(&attrs("things", "")));
        assert!(!sub.allows(&attrs("others", "status")));
        let any_sub = rule(&["get"], &["g"], &["*/status"]);
        assert!(any_sub.allows(&attrs("others", "status")));
        assert!(!any_sub.allows(&attrs("others", "")));
        let all = rule(&["*"], &["*"], &["*"]);
        assert!(all.allows(&attrs("anything", "sub")));
        assert!(!rule(&["list"], &["g"], &["things"]).allows(&attrs("things", "")));
        assert!(!rule(&["get"], &["h"], &["things"]).allows(&attrs("things", "")));
    }
}
