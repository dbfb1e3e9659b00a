//! Every request's decision: who it is from (the [`UserInfo`] the listener authenticated, or
//! the in-process caller's), what it asks (upstream's `RequestInfo` as authorizer
//! [`Attributes`]), and the server's authorizer chain's answer, as kube-apiserver's
//! `WithAuthentication` and `WithAuthorization` filters.
//!
//! Anonymous requests reach only the public health and version paths (upstream's
//! `system:public-info-viewer` with anonymous authentication limited to them); anything else
//! is a 401 before it is looked at. A denied request is a 403 with upstream's message, before
//! its body is read.

use std::sync::Arc;

use axum::http::Method;
use pernode_auth::authorizer::{Attributes, Authorizer, Decision, forbidden_message};
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

/// Whether an anonymous request may reach `path` (a 401 otherwise).
pub fn anonymous_may_reach(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    PUBLIC_PATHS.contains(&path)
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
    Attributes::resource(
        user,
        resource_verb(method, target, query),
        target.namespace.as_deref().unwrap_or(""),
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
    decide(
        authorizer,
        &resource_attributes(user, method, target, query),
        audit,
    )
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

/// The server's authorizer chain (kube-apiserver's `--authorization-mode`): the privileged
/// group first.
pub fn chain() -> pernode_auth::authorizer::Union {
    pernode_auth::authorizer::Union(vec![Box::new(pernode_auth::authorizer::PrivilegedGroups)])
}

#[cfg(test)]
mod tests {
    use super::*;
    use pernode_auth::authorizer::PrivilegedGroups;

    #[test]
    fn anonymous_reaches_only_public_paths() {
        for path in ["/healthz", "/readyz/", "/livez/ping", "/version"] {
            assert!(anonymous_may_reach(path), "{path}");
        }
        for path in ["/api", "/apis/apps/v1", "/healthzx", "/openapi/v2", "/"] {
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
        let node = UserInfo::new("system:node:web-1", ["system:nodes"]);
        let patch = Attributes::resource(&node, "patch", "", "", "v1", "nodes", "", "web-2");
        let e = forbidden(
            &patch,
            r#"node "web-1" is not allowed to modify node "web-2""#,
        );
        assert_eq!(
            e.message,
            r#"nodes "web-2" is forbidden: User "system:node:web-1" cannot patch resource "nodes" in API group "" at the cluster scope: node "web-1" is not allowed to modify node "web-2""#
        );
    }
}
