//! rbac.authorization.k8s.io RoleBinding and ClusterRoleBinding rows: ports of upstream's
//! `printRoleBinding` and `printClusterRoleBinding` (with `rbac.SubjectsStrings`). Roles and
//! ClusterRoles have no printer upstream and get the default Table.

use k8s_openapi::jiff::Timestamp;
use serde::Deserialize;

use crate::model::{Head, Meta, RenderError, Row, lean_object, s};
use pernode_core::duration::age_since;

lean_object! {
    /// Both binding kinds: their printers are the same function upstream.
    struct Binding<'a> {
        #[serde(default)]
        role_ref: Option<RoleRef>,
        #[serde(default)]
        subjects: Option<Vec<Subject>>,
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct RoleRef {
    kind: Option<String>,
    name: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct Subject {
    kind: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
}

pub(crate) fn render_binding(bytes: &[u8], now: Timestamp) -> Result<(Head<'_>, Row), RenderError> {
    let binding: Binding<'_> = serde_json::from_slice(bytes)?;
    let head = binding.head();
    let meta = Meta::parse(head.metadata)?;
    let role_ref = binding.role_ref.unwrap_or_default();

    // Subjects of another kind are left out of every column.
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for subject in binding.subjects.as_deref().unwrap_or_default() {
        match s(&subject.kind) {
            "ServiceAccount" => sas.push(format!("{}/{}", s(&subject.namespace), s(&subject.name))),
            "User" => users.push(s(&subject.name).to_owned()),
            "Group" => groups.push(s(&subject.name).to_owned()),
            _ => {}
        }
    }

    let row = Row {
        cells: vec![
            meta.name().into(),
            format!("{}/{}", s(&role_ref.kind), s(&role_ref.name)).into(),
            age_since(meta.creation_timestamp.as_ref(), now).into(),
            users.join(", ").into(),
            groups.join(", ").into(),
            sas.join(", ").into(),
        ],
        conditions: None,
    };
    Ok((head, row))
}
