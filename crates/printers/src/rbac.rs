//! Role, ClusterRole, RoleBinding and ClusterRoleBinding rows: ports of upstream's `printRole`,
//! `printClusterRole`, `printRoleBinding` and `printClusterRoleBinding`.

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use crate::model::{Head, Meta, RenderError, Row, lean_object};
use pernode_core::duration::age_since;

lean_object! {
    struct RoleObject<'a> {}
}

/// Roles and cluster roles: the name and the creation time as RFC 3339 in UTC (the `Created
/// At` column is a `date`, not an age).
pub(crate) fn render_role(bytes: &[u8], _now: Timestamp) -> Result<(Head<'_>, Row), RenderError> {
    let role: RoleObject<'_> = serde_json::from_slice(bytes)?;
    let head = role.head();
    let meta = Meta::parse(head.metadata)?;
    // Go's zero time for an object without one, as `metav1.Time{}` formats.
    let created = meta.creation_timestamp.as_ref().map_or_else(
        || "0001-01-01T00:00:00Z".to_string(),
        |t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    let row = Row {
        cells: vec![meta.name().into(), created.into()],
        conditions: None,
    };
    Ok((head, row))
}

lean_object! {
    struct Binding<'a> {
        #[serde(default)]
        role_ref: RoleRef,
        #[serde(default)]
        subjects: Option<Vec<Subject>>,
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RoleRef {
    kind: String,
    name: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

/// Bindings: name, `Kind/name` of the role, age, and (wide) the users, groups and service
/// accounts (`namespace/name`) bound, as `rbac.SubjectsStrings` sorts them.
pub(crate) fn render_binding(bytes: &[u8], now: Timestamp) -> Result<(Head<'_>, Row), RenderError> {
    let b: Binding<'_> = serde_json::from_slice(bytes)?;
    let head = b.head();
    let meta = Meta::parse(head.metadata)?;
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in b.subjects.iter().flatten() {
        match s.kind.as_str() {
            "ServiceAccount" => sas.push(format!("{}/{}", s.namespace, s.name)),
            "User" => users.push(s.name.clone()),
            "Group" => groups.push(s.name.clone()),
            _ => {}
        }
    }
    let row = Row {
        cells: vec![
            meta.name().into(),
            format!("{}/{}", b.role_ref.kind, b.role_ref.name).into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
            users.join(", ").into(),
            groups.join(", ").into(),
            sas.join(", ").into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}
