//! The decision on a request, as upstream's `authorizer.Authorizer`: [`Attributes`] say who
//! asks to do what, an [`Authorizer`] answers Allow, Deny or NoOpinion, and a [`Union`] asks
//! each in turn until one has an opinion (kube-apiserver's `--authorization-mode` chain).

use pernode_core::fields::FieldRequirement;

use crate::user::{SYSTEM_PRIVILEGED_GROUP, UserInfo};

/// What a request asks to do (upstream's `AttributesRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes<'a> {
    pub user: &'a UserInfo,
    /// The API verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`, or a special verb as `escalate`, `bind`, `impersonate`) for a resource
    /// request; the lowercase HTTP method (`get`, `post`, ...) for a non-resource request.
    pub verb: &'a str,
    /// True for `/api/...` and `/apis/...` requests naming a resource.
    pub resource_request: bool,
    /// The request path (non-resource requests are authorized by it).
    pub path: &'a str,
    pub namespace: &'a str,
    pub api_group: &'a str,
    pub api_version: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub name: &'a str,
    /// The requirements of a list's, watch's or deletecollection's `fieldSelector` (upstream's
    /// `GetFieldSelector`, with AuthorizeWithSelectors on); empty when it has none or it does
    /// not parse.
    pub field_selector: &'a [FieldRequirement],
}

impl<'a> Attributes<'a> {
    /// A resource request.
    #[allow(clippy::too_many_arguments)]
    pub fn resource(
        user: &'a UserInfo,
        verb: &'a str,
        namespace: &'a str,
        api_group: &'a str,
        api_version: &'a str,
        resource: &'a str,
        subresource: &'a str,
        name: &'a str,
    ) -> Attributes<'a> {
        Attributes {
            user,
            verb,
            resource_request: true,
            path: "",
            namespace,
            api_group,
            api_version,
            resource,
            subresource,
            name,
            field_selector: &[],
        }
    }

    /// These attributes with the requirements of the request's field selector.
    pub fn with_field_selector(self, field_selector: &'a [FieldRequirement]) -> Attributes<'a> {
        Attributes {
            field_selector,
            ..self
        }
    }

    /// A non-resource request (`/healthz`, `/version`, `/apis`, `/openapi/v2`, ...).
    pub fn non_resource(user: &'a UserInfo, verb: &'a str, path: &'a str) -> Attributes<'a> {
        Attributes {
            user,
            verb,
            resource_request: false,
            path,
            namespace: "",
            api_group: "",
            api_version: "",
            resource: "",
            subresource: "",
            name: "",
            field_selector: &[],
        }
    }
}

/// An authorizer's answer. The string is the reason, shown after the forbidden message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
    NoOpinion(String),
}

/// Decides on requests.
pub trait Authorizer: Send + Sync {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision;
}

/// A shared authorizer (the server keeps its RBAC authorizer to replace its policy and to
/// resolve rules, and puts the same one in its chain).
impl<A: Authorizer + ?Sized> Authorizer for std::sync::Arc<A> {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        (**self).authorize(attrs)
    }
}

/// Members of `system:masters` may do anything, as upstream's privileged-group authorizer that
/// kube-apiserver puts first in the chain.
pub struct PrivilegedGroups;

impl Authorizer for PrivilegedGroups {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        if attrs
            .user
            .groups
            .iter()
            .any(|g| g == SYSTEM_PRIVILEGED_GROUP)
        {
            Decision::Allow
        } else {
            Decision::NoOpinion(String::new())
        }
    }
}

/// Asks each authorizer in order; the first Allow or Deny decides. With none, NoOpinion with
/// the non-empty reasons joined by `, ` (upstream's union authorizer).
pub struct Union(pub Vec<Box<dyn Authorizer>>);

impl Authorizer for Union {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        let mut reasons = Vec::new();
        for authorizer in &self.0 {
            match authorizer.authorize(attrs) {
                Decision::NoOpinion(reason) => {
                    if !reason.is_empty() {
                        reasons.push(reason);
                    }
                }
                decided => return decided,
            }
        }
        Decision::NoOpinion(reasons.join(", "))
    }
}

/// The sentence a 403 starts with, as upstream's `responsewriters.forbiddenMessage`:
/// `User "jane" cannot create resource "daemonsets" in API group "apps" in the namespace "default"`.
pub fn forbidden_message(attrs: &Attributes<'_>) -> String {
    let user = &attrs.user.name;
    if !attrs.resource_request {
        return format!("User {user:?} cannot {} path {:?}", attrs.verb, attrs.path);
    }
    let resource = if attrs.subresource.is_empty() {
        attrs.resource.to_string()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    if attrs.namespace.is_empty() {
        format!(
            "User {user:?} cannot {} resource {resource:?} in API group {:?} at the cluster scope",
            attrs.verb, attrs.api_group
        )
    } else {
        format!(
            "User {user:?} cannot {} resource {resource:?} in API group {:?} in the namespace {:?}",
            attrs.verb, attrs.api_group, attrs.namespace
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Decision);
    impl Authorizer for Fixed {
        fn authorize(&self, _: &Attributes<'_>) -> Decision {
            self.0.clone()
        }
    }

    #[test]
    fn union_takes_the_first_opinion() {
        let user = UserInfo::new("jane", ["dev"]);
        let attrs = Attributes::resource(&user, "get", "default", "", "v1", "pods", "", "p");
        let chain = Union(vec![
            Box::new(Fixed(Decision::NoOpinion("no rbac".into()))),
            Box::new(Fixed(Decision::Deny("denied".into()))),
            Box::new(Fixed(Decision::Allow)),
        ]);
        assert_eq!(chain.authorize(&attrs), Decision::Deny("denied".into()));
        let none = Union(vec![
            Box::new(Fixed(Decision::NoOpinion("a".into()))),
            Box::new(Fixed(Decision::NoOpinion(String::new()))),
            Box::new(Fixed(Decision::NoOpinion("b".into()))),
        ]);
        assert_eq!(none.authorize(&attrs), Decision::NoOpinion("a, b".into()));
    }

    #[test]
    fn forbidden_messages_read_as_upstream() {
        let user = UserInfo::new("jane", ["dev"]);
        let create = Attributes::resource(
            &user,
            "create",
            "default",
            "apps",
            "v1",
            "daemonsets",
            "",
            "",
        );
        assert_eq!(
            forbidden_message(&create),
            r#"User "jane" cannot create resource "daemonsets" in API group "apps" in the namespace "default""#
        );
        let node = UserInfo::new("system:node:web-1", ["system:nodes"]);
        let patch = Attributes::resource(&node, "patch", "", "", "v1", "nodes", "status", "web-2");
        assert_eq!(
            forbidden_message(&patch),
            r#"User "system:node:web-1" cannot patch resource "nodes/status" in API group "" at the cluster scope"#
        );
        let path = Attributes::non_resource(&user, "get", "/metrics");
        assert_eq!(
            forbidden_message(&path),
            r#"User "jane" cannot get path "/metrics""#
        );
    }

    #[test]
    fn masters_may_do_anything() {
        let admin = UserInfo::new("system:admin", [SYSTEM_PRIVILEGED_GROUP]);
        let jane = UserInfo::new("jane", ["dev"]);
        let attrs = |u| Attributes::resource(u, "delete", "", "", "v1", "nodes", "", "n");
        assert_eq!(PrivilegedGroups.authorize(&attrs(&admin)), Decision::Allow);
        assert_eq!(
            PrivilegedGroups.authorize(&attrs(&jane)),
            Decision::NoOpinion(String::new())
        );
    }
}
