//! rbac.authorization.k8s.io/v1: Role, RoleBinding, ClusterRole, ClusterRoleBinding
//! (pkg/registry/rbac). Their strategies prepare nothing beyond the generic metadata (the
//! kinds have no status); admission is the v1 defaulting of bindings and upstream's
//! validation. The escalation checks of upstream's `policybased` storage need the request's
//! user and the authorizer: `handlers` runs them (`crate::rbac_escalation`) before these.

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use pernode_admission::validate;

use super::Kind;
use crate::registry::admit_typed;

const RBAC: &str = validate::RBAC_GROUP;

pub static ROLES: Kind = Kind::new(RBAC, "roles", |info, op, obj, v| {
    admit_typed::<Role>(info, op, obj, v, true, |r, old| match old {
        None => validate::role(r),
        Some(old) => validate::role_update(r, old),
    })
});

pub static ROLE_BINDINGS: Kind = Kind::new(RBAC, "rolebindings", |info, op, obj, v| {
    admit_typed::<RoleBinding>(info, op, obj, v, true, |b, old| {
        validate::default_binding(&mut b.role_ref, &mut b.subjects);
        match old {
            None => validate::role_binding(b),
            Some(old) => validate::role_binding_update(b, &defaulted(old)),
        }
    })
});

pub static CLUSTER_ROLES: Kind = Kind::new(RBAC, "clusterroles", |info, op, obj, v| {
    admit_typed::<ClusterRole>(info, op, obj, v, true, |r, old| match old {
        None => validate::cluster_role(r),
        Some(old) => validate::cluster_role_update(r, old),
    })
});

pub static CLUSTER_ROLE_BINDINGS: Kind =
    Kind::new(RBAC, "clusterrolebindings", |info, op, obj, v| {
        admit_typed::<ClusterRoleBinding>(info, op, obj, v, true, |b, old| {
            validate::default_binding(&mut b.role_ref, &mut b.subjects);
            match old {
                None => validate::cluster_role_binding(b),
                Some(old) => validate::cluster_role_binding_update(b, &old_defaulted(old)),
            }
        })
    });

/// The stored binding as its decoding defaults it (one stored before the defaulting existed
/// may lack the groups), so that an unchanged roleRef compares equal.
fn defaulted(old: &RoleBinding) -> RoleBinding {
    let mut old = old.clone();
    validate::default_binding(&mut old.role_ref, &mut old.subjects);
    old
}

/// [`defaulted`] for a ClusterRoleBinding.
fn old_defaulted(old: &ClusterRoleBinding) -> ClusterRoleBinding {
    let mut old = old.clone();
    validate::default_binding(&mut old.role_ref, &mut old.subjects);
    old
}
