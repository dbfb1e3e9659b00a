//! Escalation prevention on writes of the four RBAC kinds, as upstream's `policybased`
//! storage of roles, clusterroles, rolebindings and clusterrolebindings
//! (pkg/registry/rbac/*/policybased, `escalation_check.go`): a user may grant only what they
//! hold.
//!
//! [`check`] runs on every create and every update of those kinds (an update, a patch, a
//! server-side apply, each retry of one), after admission plugins and before the kind's
//! defaulting and validation (`registry::admit`), where upstream's storage wrapper runs, on
//! the body decoded as `admit` decodes it (a body that does not decode is `admit`'s 400). A
//! write passes when the user:
//!
//! - is in `system:masters`;
//! - for a Role or ClusterRole: may `escalate` it (asked of the server's authorizer chain),
//!   or holds every rule it grants (`ConfirmNoEscalation` in the request's namespace; a
//!   ClusterRole with an aggregation rule, before or after the write, needs `*` on
//!   everything);
//! - for a binding: may `bind` the role it refers to, or holds every rule of that role;
//! - for an update: changes nothing but finalizers and ownerReferences (what the garbage
//!   collector writes).
//!
//! Otherwise the write is upstream's 403, `roles.rbac.authorization.k8s.io "x" is forbidden:
//! user "jane" (groups=[...]) is attempting to grant RBAC permissions not currently held:
//! ...`; a binding to a role that does not exist is the registry's 404 for that role.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use pernode_auth::authorizer::{Attributes, Decision};
use pernode_auth::rbac::{RBAC_GROUP, RoleRefError, full_authority};
use pernode_auth::user::{SYSTEM_PRIVILEGED_GROUP, UserInfo};
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;
use crate::handlers::Request;
use crate::registry::decode_typed;

/// Checks a write of `obj` (the new object; `old` the stored one for an update) by the
/// request's user, when the request is on one of the RBAC kinds.
pub fn check(
    state: &AppState,
    req: &Request,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let info = req.target.info;
    if info.group != RBAC_GROUP || info.custom.is_some() {
        return Ok(());
    }
    let user = &*req.user;
    // `EscalationAllowed`: the privileged group may write anything.
    if user.groups.iter().any(|g| g == SYSTEM_PRIVILEGED_GROUP) {
        return Ok(());
    }
    let write = Write {
        state,
        user,
        plural: info.plural,
        namespace: req.target.namespace.as_deref().unwrap_or(""),
        request_name: req.target.name.as_deref().unwrap_or(""),
        old,
    };
    // A body that does not decode is the 400 admission would answer, never a skipped check.
    match info.plural {
        "roles" => {
            let role: Role = decode_typed(info, obj)?;
            write.role(&role.metadata, role.rules.as_deref(), false, obj)
        }
        "clusterroles" => {
            let role: ClusterRole = decode_typed(info, obj)?;
            let aggregates = has_aggregation_rule(&role)
                || old
                    .and_then(|old| decode_typed::<ClusterRole>(info, old).ok())
                    .is_some_and(|old| has_aggregation_rule(&old));
            write.role(&role.metadata, role.rules.as_deref(), aggregates, obj)
        }
        "rolebindings" => {
            let b: RoleBinding = decode_typed(info, obj)?;
            write.binding(&b.metadata, b.role_ref, obj)
        }
        "clusterrolebindings" => {
            let b: ClusterRoleBinding = decode_typed(info, obj)?;
            write.binding(&b.metadata, b.role_ref, obj)
        }
        _ => Ok(()),
    }
}

fn has_aggregation_rule(role: &ClusterRole) -> bool {
    role.aggregation_rule
        .as_ref()
        .and_then(|a| a.cluster_role_selectors.as_ref())
        .is_some_and(|s| !s.is_empty())
}

/// One write being checked.
struct Write<'a> {
    state: &'a AppState,
    user: &'a UserInfo,
    plural: &'static str,
    /// The request's namespace (empty for the cluster-scoped kinds).
    namespace: &'a str,
    /// The name in the request's path (none for a create).
    request_name: &'a str,
    old: Option<&'a Value>,
}

impl Write<'_> {
    /// Whether the server's authorizer chain allows `verb` on `resource` named `name`.
    fn authorized(&self, verb: &str, group: &str, resource: &str, name: &str) -> bool {
        let attrs = Attributes::resource(
            self.user,
            verb,
            self.namespace,
            group,
            "*",
            resource,
            "",
            name,
        );
        self.state.authorizer.authorize(&attrs) == Decision::Allow
    }

    /// Upstream's 403 for this write.
    fn forbidden(&self, meta: &ObjectMeta, why: &str) -> ApiError {
        let name = meta.name.as_deref().unwrap_or("");
        ApiError::forbidden_object(RBAC_GROUP, self.plural, name, why)
    }

    /// `IsOnlyMutatingGCFields`: an update that changes only finalizers and ownerReferences.
    fn only_gc_fields_change(&self, obj: &Value) -> bool {
        let Some(old) = self.old else {
            return false;
        };
        let mut new = obj.clone();
        if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in ["ownerReferences", "finalizers", "selfLink"] {
                match old.pointer(&format!("/metadata/{field}")) {
                    Some(v) => meta.insert(field.into(), v.clone()),
                    None => meta.remove(field),
                };
            }
        }
        semantic(&new) == semantic(old)
    }

    /// Checks a Role or ClusterRole granting `rules`.
    fn role(
        &self,
        meta: &ObjectMeta,
        rules: Option<&[PolicyRule]>,
        aggregates: bool,
        obj: &Value,
    ) -> Result<(), ApiError> {
        // `RoleEscalationAuthorized`: the request's own resource and name.
        if self.authorized("escalate", RBAC_GROUP, self.plural, self.request_name) {
            return Ok(());
        }
        if self.only_gc_fields_change(obj) {
            return Ok(());
        }
        let snapshot = self.state.rbac.snapshot();
        snapshot
            .confirm_no_escalation(self.user, rules.unwrap_or(&[]), self.namespace)
            .map_err(|why| self.forbidden(meta, &why))?;
        // An aggregation rule can gather anything (and keeps its role from being narrowed).
        if aggregates
            && snapshot
                .confirm_no_escalation(self.user, &full_authority(), self.namespace)
                .is_err()
        {
            return Err(self.forbidden(
                meta,
                "must have cluster-admin privileges to use the aggregationRule",
            ));
        }
        Ok(())
    }

    /// Checks a binding (in the request's namespace; none for a ClusterRoleBinding) to
    /// `role_ref`.
    fn binding(
        &self,
        meta: &ObjectMeta,
        mut role_ref: RoleRef,
        obj: &Value,
    ) -> Result<(), ApiError> {
        if self.only_gc_fields_change(obj) {
            return Ok(());
        }
        // The roleRef as decoding defaults it.
        pernode_admission::validate::default_binding(&mut role_ref, &mut None);
        // `BindingAuthorized`: `bind` on the role, in the binding's namespace.
        let resource = match role_ref.kind.as_str() {
            "ClusterRole" => Some("clusterroles"),
            "Role" => Some("roles"),
            _ => None,
        };
        if let Some(resource) = resource
            && self.authorized("bind", &role_ref.api_group, resource, &role_ref.name)
        {
            return Ok(());
        }
        let snapshot = self.state.rbac.snapshot();
        let rules = snapshot
            .role_reference_rules(&role_ref, self.namespace)
            .map_err(|e| registry_error(&e))?;
        snapshot
            .confirm_no_escalation(self.user, &rules, self.namespace)
            .map_err(|why| self.forbidden(meta, &why))
    }
}

/// What upstream's registry answers for a role a binding refers to and it cannot get.
fn registry_error(e: &RoleRefError) -> ApiError {
    match e {
        RoleRefError::NotFound {
            cluster_role,
            namespace,
            name,
        } => {
            if !cluster_role && namespace.is_empty() {
                return ApiError::bad_request(e.registry_message());
            }
            let plural = if *cluster_role {
                "clusterroles"
            } else {
                "roles"
            };
            ApiError::not_found(RBAC_GROUP, plural, name)
        }
        // A plain error from the storage layer: upstream's 500 without a reason.
        RoleRefError::UnsupportedKind(_) => ApiError::unknown(e.registry_message()),
    }
}

/// An object compared as apimachinery's semantic equality does: absent, null and empty
/// lists and maps alike; the resourceVersion (a precondition, not content) left out.
fn semantic(v: &Value) -> Value {
    fn strip(v: &Value) -> Option<Value> {
        match v {
            Value::Null => None,
            Value::Array(items) if items.is_empty() => None,
            Value::Array(items) => Some(Value::Array(items.iter().filter_map(strip).collect())),
            Value::Object(members) => {
                let kept: serde_json::Map<String, Value> = members
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), strip(v)?)))
                    .collect();
                (!kept.is_empty()).then_some(Value::Object(kept))
            }
            other => Some(other.clone()),
        }
    }
    let mut v = strip(v).unwrap_or(Value::Null);
    if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn semantic_equality_ignores_empty_and_the_version() {
        let a = json!({"metadata": {"name": "r", "resourceVersion": "1", "labels": {}},
            "rules": []});
        let b = json!({"metadata": {"name": "r", "resourceVersion": "2"}, "rules": null});
        assert_eq!(semantic(&a), semantic(&b));
        let c = json!({"metadata": {"name": "r"}, "rules": [{"verbs": ["get"]}]});
        assert_ne!(semantic(&a), semantic(&c));
    }

    #[test]
    fn missing_roles_are_the_registrys_errors() {
        let not_found = |cluster_role, namespace: &str| RoleRefError::NotFound {
            cluster_role,
            namespace: namespace.into(),
            name: "x".into(),
        };
        let e = registry_error(&not_found(true, ""));
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                404,
                r#"clusterroles.rbac.authorization.k8s.io "x" not found"#
            )
        );
        let e = registry_error(&not_found(false, "team-a"));
        assert_eq!(
            (e.code, e.message.as_str()),
            (404, r#"roles.rbac.authorization.k8s.io "x" not found"#)
        );
        let e = registry_error(&not_found(false, ""));
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "Namespace parameter required.")
        );
        let e = registry_error(&RoleRefError::UnsupportedKind("Policy".into()));
        assert_eq!(
            (e.code, e.message.as_str()),
            (500, r#"unsupported role reference kind: "Policy""#)
        );
    }
}
