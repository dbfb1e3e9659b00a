//! rbac.authorization.k8s.io/v1: Role, RoleBinding, ClusterRole, ClusterRoleBinding
//! (pkg/registry/rbac).

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};

use super::Kind;
use crate::registry::admit_meta;

const RBAC: &str = "rbac.authorization.k8s.io";

pub static ROLES: Kind = Kind::new(RBAC, "roles", |info, op, obj, v| {
    admit_meta::<Role>(info, op, obj, v)
});

pub static ROLE_BINDINGS: Kind = Kind::new(RBAC, "rolebindings", |info, op, obj, v| {
    admit_meta::<RoleBinding>(info, op, obj, v)
});

pub static CLUSTER_ROLES: Kind = Kind::new(RBAC, "clusterroles", |info, op, obj, v| {
    admit_meta::<ClusterRole>(info, op, obj, v)
});

pub static CLUSTER_ROLE_BINDINGS: Kind =
    Kind::new(RBAC, "clusterrolebindings", |info, op, obj, v| {
        admit_meta::<ClusterRoleBinding>(info, op, obj, v)
    });
