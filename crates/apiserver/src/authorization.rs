//! Every request's decision: who it is from (the [`UserInfo`] the listener authenticated, or
//! the in-process caller's), what it asks (upstream's `RequestInfo` as authorizer
//! [`Attributes`]), and the server's authorizer chain's answer, as kube-apiserver's
//! `WithAuthentication` and `WithAuthorization` filters.
//!
//! Anonymous requests reach only the public health and version paths (upstream's
//! `system:public-info-viewer` with anonymous authentication limited to them) and kubeadm's
//! `kube-public/cluster-info` ConfigMap (which RBAC then grants, as kubeadm's
//! `kubeadm:bootstrap-signer-clusterinfo` Role: joining nodes read it before they have
//! credentials); anything else is a 401 before it is looked at. A denied request is a 403 with upstream's message, before
//! its body is read.

use std::sync::Arc;

use axum::http::Method;
use pernode_auth::authorizer::{
    Attributes, Authorizer, Decision, PrivilegedGroups, Union, forbidden_message,
};
use pernode_auth::node::{NodeAuthorizer, NodeGraph};
use pernode_auth::user::UserInfo;

use crate::audit::Recorder;
use crate::error::ApiError;
use crate::params::Query;
use crate::target::Target;

/// Paths anonymous requests may reach.
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version"];

/// The identity a request carries into the router (a request extension). The TCP listener
/// sets it from the client's certificate or token; [`crate::ApiServer::router_as`] for
/// in-process callers. A request without one is anonymous.
#[derive(Clone, Debug)]
pub struct Identity(pub Arc<UserInfo>);

impl Identity {
    pub fn of(user: UserInfo) -> Identity {
        Identity(Arc::new(user))
    }
}

/// Whether an anonymous request may reach `path` (a 401 otherwise); the authorizer still
/// decides on it.
pub fn anonymous_may_reach(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    PUBLIC_PATHS.contains(&path)
        || path == pernode_auth::discovery::PATH
        || crate::ui::is_ui_path(path)
        || PUBLIC_PATHS.iter().any(|p| {
            path.strip_prefix(p)
                .is_some_and(|rest| rest.starts_with('/'))
        })
}

/// The API verb of a resource request, as upstream's `RequestInfoFactory`: reads by name are
/// `get` (or `watch` with `watch=true`), collection reads `list`/`watch`, and so on.
pub fn resource_verb(method: &Method, target: &Target, query: &Query) -> &'static str {
    let named = target.name.is_some();
    match *method {
        Method::GET | Method::HEAD if query.watch() => "watch",
        Method::GET | Method::HEAD if named => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "",
    }
}

/// The verb of a non-resource request: the lowercase method.
pub fn non_resource_verb(method: &Method) -> String {
    method.as_str().to_ascii_lowercase()
}

/// The authorizer attributes of a resource request (what upstream's `RequestInfo` gives the
/// authorizers, and the audit log's verb and object reference).
pub fn resource_attributes<'a>(
    user: &'a UserInfo,
    method: &Method,
    target: &'a Target,
    query: &Query,
) -> Attributes<'a> {
    // Upstream's RequestInfoFactory reads `/api/v1/namespaces/<name>[/status|/finalize]` as
    // namespace `<name>`: a RoleBinding in a namespace may grant reading that namespace.
    let namespace = match (&target.namespace, target.info.group, target.info.plural) {
        (Some(ns), _, _) => ns.as_str(),
        (None, "", "namespaces") => target.name.as_deref().unwrap_or(""),
        (None, _, _) => "",
    };
    Attributes::resource(
        user,
        resource_verb(method, target, query),
        namespace,
        target.info.group,
        target.info.version,
        target.info.plural,
        target.subresource.as_deref().unwrap_or(""),
        target.name.as_deref().unwrap_or(""),
    )
}

/// Authorizes a resource request; a denial is upstream's 403. `audit` (present when the
/// request is audited) gets the decision.
pub fn authorize_resource(
    authorizer: &dyn Authorizer,
    user: &UserInfo,
    method: &Method,
    target: &Target,
    query: &Query,
    audit: Option<&Recorder>,
) -> Result<(), ApiError> {
    let attrs = resource_attributes(user, method, target, query);
    // Upstream's RequestInfo: a collection request carries its field selector (unparsable: no
    // requirements; the handler answers it with a 400), and a list or watch of one object by
    // an exact `metadata.name` selector names that object.
    let collection = matches!(attrs.verb, "list" | "watch" | "deletecollection");
    let selector = if collection {
        query.field_selector().ok().flatten()
    } else {
        None
    };
    let name = match (target.name.as_deref(), &selector) {
        (Some(name), _) => name,
        (None, Some(selector)) if attrs.verb != "deletecollection" => selector
            .requires_exact_match("metadata.name")
            .filter(|n| valid_path_segment(n))
            .unwrap_or(""),
        (None, _) => "",
    };
    let attrs = Attributes { name, ..attrs }
        .with_field_selector(selector.as_ref().map_or(&[], |s| s.requirements()));
    decide(authorizer, &attrs, audit)
}

/// `path.IsValidPathSegmentName`: a name that can stand in a URL path.
fn valid_path_segment(name: &str) -> bool {
    name != "." && name != ".." && !name.contains('/') && !name.contains('%')
}

/// Authorizes a non-resource request (discovery, OpenAPI, health, version).
pub fn authorize_path(
    authorizer: &dyn Authorizer,
    user: &UserInfo,
    method: &Method,
    path: &str,
    audit: Option<&Recorder>,
) -> Result<(), ApiError> {
    let verb = non_resource_verb(method);
    decide(
        authorizer,
        &Attributes::non_resource(user, &verb, path),
        audit,
    )
}

/// Runs `authorizer` on `attrs`: Allow passes, anything else is the 403 upstream's
/// `responsewriters.Forbidden` writes. The decision and its reason go to `audit`, as
/// upstream's `authorization.k8s.io/decision` and `authorization.k8s.io/reason` annotations.
pub fn decide(
    authorizer: &dyn Authorizer,
    attrs: &Attributes<'_>,
    audit: Option<&Recorder>,
) -> Result<(), ApiError> {
    let (allowed, reason) = match authorizer.authorize(attrs) {
        Decision::Allow => (true, String::new()),
        Decision::Deny(reason) | Decision::NoOpinion(reason) => (false, reason),
    };
    if let Some(audit) = audit {
        audit.authorized(allowed, &reason);
    }
    if allowed {
        return Ok(());
    }
    Err(forbidden(attrs, &reason))
}

/// Upstream's 403 for a request the authorizers did not allow.
pub fn forbidden(attrs: &Attributes<'_>, reason: &str) -> ApiError {
    let message = forbidden_message(attrs);
    let why = if reason.is_empty() {
        message
    } else {
        format!("{message}: {reason}")
    };
    if !attrs.resource_request || attrs.resource.is_empty() {
        return ApiError::forbidden(format!("forbidden: {why}"));
    }
    ApiError::forbidden_object(attrs.api_group, attrs.resource, attrs.name, &why)
}

/// Upstream's 401 (`responsewriters.Unauthorized`): kubectl prints `error: You must be logged
/// in to the server (Unauthorized)`.
pub fn unauthorized() -> ApiError {
    ApiError::from_parts(401, "Unauthorized", "Unauthorized".to_string())
}

/// The server's authorizer chain, as kube-apiserver's with `--authorization-mode=Node,RBAC`:
/// the privileged group (`system:masters`) first, then the Node authorizer over `graph`, then
/// RBAC (`rbac`, kept current by [`crate::rbac_authorizer`]). A node's requests are decided by
/// the Node authorizer alone (it holds the static `system:node` rules; upstream binds that
/// ClusterRole to no one), so RBAC only ever adds what a cluster's own bindings grant.
pub fn chain(graph: Arc<dyn NodeGraph>, rbac: Arc<pernode_auth::rbac::RbacAuthorizer>) -> Union {
    let authorizers: Vec<Box<dyn Authorizer>> = vec![
        Box::new(PrivilegedGroups),
        Box::new(NodeAuthorizer::new(graph)),
        Box::new(rbac),
    ];
    Union(authorizers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_reaches_only_public_paths() {
        for path in [
            "/healthz",
            "/readyz/",
            "/livez/ping",
            "/version",
            "/api/v1/namespaces/kube-public/configmaps/cluster-info",
        ] {
            assert!(anonymous_may_reach(path), "{path}");
        }
        for path in [
            "/api",
            "/apis/apps/v1",
            "/healthzx",
            "/openapi/v2",
            "/",
            "/api/v1/namespaces/kube-public/configmaps",
            "/api/v1/namespaces/kube-public/configmaps/cluster-info2",
            "/api/v1/namespaces/kube-system/configmaps/cluster-info",
        ] {
            assert!(!anonymous_may_reach(path), "{path}");
        }
    }

    #[test]
    fn a_denied_request_is_upstreams_403() {
        let jane = UserInfo::new("jane", ["dev"]);
        let attrs = Attributes::resource(
            &jane,
            "create",
            "default",
            "apps",
            "v1",
            "daemonsets",
            "",
            "",
        );
        let e = decide(&PrivilegedGroups, &attrs, None).unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            r#"daemonsets.apps is forbidden: User "jane" cannot create resource "daemonsets" in API group "apps" in the namespace "default""#
        );
        let path = Attributes::non_resource(&jane, "get", "/metrics");
        let e = decide(&PrivilegedGroups, &path, None).unwrap_err();
        assert_eq!(
            e.message,
            r#"forbidden: User "jane" cannot get path "/metrics""#
        );
        // The reason follows the sentence (here the Node authorizer's); NodeRestriction's
        // refusals are admission's, without it (`admission_plugins::node_restriction`).
        let node = UserInfo::new("system:node:web-1", ["system:nodes"]);
        let get = Attributes::resource(&node, "get", "", "", "v1", "nodes", "", "web-2");
        let e = forbidden(
            &get,
            "node 'web-1' cannot read 'web-2', only its own Node object",
        );
        assert_eq!(
            e.message,
            r#"nodes "web-2" is forbidden: User "system:node:web-1" cannot get resource "nodes" in API group "" at the cluster scope: node 'web-1' cannot read 'web-2', only its own Node object"#
        );
    }

    /// A graph where node `web-1` runs pod `default/p`, which references secret `tls`.
    struct OnePod;

    impl NodeGraph for OnePod {
        fn related(
            &self,
            node: &str,
            vertex: pernode_auth::node::Vertex,
            namespace: &str,
            name: &str,
        ) -> bool {
            use pernode_auth::node::Vertex;
            node == "web-1"
                && namespace == "default"
                && matches!((vertex, name), (Vertex::Pod, "p") | (Vertex::Secret, "tls"))
        }
    }

    fn target(plural: &str, namespace: Option<&str>, name: Option<&str>) -> Target {
        let view = pernode_resources::Catalog::new().view();
        let path = match (namespace, name) {
            (Some(ns), Some(n)) => format!("/api/v1/namespaces/{ns}/{plural}/{n}"),
            (Some(ns), None) => format!("/api/v1/namespaces/{ns}/{plural}"),
            (None, Some(n)) => format!("/api/v1/{plural}/{n}"),
            (None, None) => format!("/api/v1/{plural}"),
        };
        crate::target::parse(&view, &path)
            .ok()
            .flatten()
            .expect("a resource path")
    }

    #[test]
    fn the_chain_puts_masters_first_then_the_node_authorizer() {
        let chain = chain(
            Arc::new(OnePod),
            crate::rbac_authorizer::Controller::new().authorizer(),
        );
        let node = UserInfo::new("system:node:web-1", ["system:nodes"]);
        let admin = UserInfo::new("system:admin", ["system:masters"]);
        let jane = UserInfo::new("jane", ["dev"]);
        let secret = target("secrets", Some("default"), Some("other"));
        let none = Query::parse(None);
        assert!(authorize_resource(&chain, &admin, &Method::GET, &secret, &none, None).is_ok());
        let e = authorize_resource(&chain, &node, &Method::GET, &secret, &none, None).unwrap_err();
        assert!(
            e.message
                .ends_with("no relationship found between node 'web-1' and this object"),
            "{}",
            e.message
        );
        let e = authorize_resource(&chain, &jane, &Method::GET, &secret, &none, None).unwrap_err();
        assert_eq!(
            e.message,
            r#"secrets "other" is forbidden: User "jane" cannot get resource "secrets" in API group "" in the namespace "default""#
        );
    }

    #[test]
    fn collection_reads_carry_their_field_selector_and_a_name_it_pins() {
        let chain = chain(
            Arc::new(OnePod),
            crate::rbac_authorizer::Controller::new().authorizer(),
        );
        let node = UserInfo::new("system:node:web-1", ["system:nodes"]);
        let secrets = target("secrets", Some("default"), None);
        let pods = target("pods", None, None);
        let allowed = |t: &Target, q: &str| {
            authorize_resource(&chain, &node, &Method::GET, t, &Query::parse(Some(q)), None).is_ok()
        };
        // A watch of one secret by name, as the kubelet's.
        assert!(allowed(
            &secrets,
            "watch=1&fieldSelector=metadata.name%3Dtls"
        ));
        assert!(allowed(&secrets, "fieldSelector=metadata.name%3D%3Dtls"));
        assert!(!allowed(&secrets, "fieldSelector=metadata.name%3Dother"));
        assert!(!allowed(&secrets, "fieldSelector=metadata.name%21%3Dtls"));
        assert!(!allowed(&secrets, "fieldSelector=metadata.name%3D..%2Ftls"));
        assert!(!allowed(&secrets, ""));
        // The node's own pods, by spec.nodeName.
        assert!(allowed(&pods, "fieldSelector=spec.nodeName%3Dweb-1"));
        assert!(allowed(
            &pods,
            "watch=true&fieldSelector=spec.nodeName%3Dweb-1"
        ));
        assert!(!allowed(&pods, "fieldSelector=spec.nodeName%3Dweb-2"));
        // An unparsable selector has no requirements (the list would be a 400).
        assert!(!allowed(
            &pods,
            "fieldSelector=spec.nodeName%3Dweb-1%2Cphase"
        ));
        assert!(valid_path_segment("tls"));
        for bad in [".", "..", "a/b", "a%2f"] {
            assert!(!valid_path_segment(bad), "{bad}");
        }
    }
}
