//! Upstream's default Table (`DefaultTableConvertor`) for every resource without a printer:
//! Roles and ClusterRoles, and any resource pernode has no printer for (custom resources).

mod common;

use common::{ago, cols, columns, named, one_row_table};
use pernode_printers::{IncludeObject, column_definitions};
use serde_json::json;

#[test]
fn default_columns() {
    for r in ["roles", "clusterroles", "widgets", "deployments"] {
        assert_eq!(
            columns(r),
            cols(&[("Name", "string", 0), ("Created At", "date", 0)]),
            "{r}"
        );
    }
    let defs = column_definitions("roles");
    assert_eq!(defs[0]["format"], "name");
    assert_eq!(defs[1]["format"], "");
    assert_eq!(
        defs[0]["description"],
        column_definitions("pods")[0]["description"]
    );
    // The creationTimestamp doc, as the Age columns.
    assert_eq!(
        defs[1]["description"],
        column_definitions("pods")[4]["description"]
    );
}

#[test]
fn default_cells_are_name_and_rfc3339_creation() {
    let role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "pod-reader", "namespace": "dev", "uid": "u1", "resourceVersion": "9",
                     "creationTimestamp": "2024-11-05T08:09:10Z"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
    });
    let c = named("roles", &role);
    assert_eq!(c["Name"], "pod-reader");
    // Not an age: the timestamp itself, which kubectl prints as is.
    assert_eq!(c["Created At"], "2024-11-05T08:09:10Z");

    let cr = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "view", "creationTimestamp": ago(60)},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]}});
    assert_eq!(
        named("clusterroles", &cr)["Created At"],
        "2025-01-01T11:59:00Z"
    );

    // Go's zero time when unset, as `metav1.Time{}.UTC().Format(time.RFC3339)`.
    let bare = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
    assert_eq!(
        named("widgets", &bare)["Created At"],
        "0001-01-01T00:00:00Z"
    );
    let nameless = json!({"apiVersion": "example.com/v1", "kind": "Widget"});
    let c = named("widgets", &nameless);
    assert_eq!(c["Name"], "");
    assert_eq!(c["Created At"], "0001-01-01T00:00:00Z");
}

#[test]
fn default_table_row_objects() {
    let widget = json!({
        "apiVersion": "example.com/v1alpha1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default", "labels": {"team": "a"},
                     "creationTimestamp": "2025-01-01T00:00:00Z"},
        "spec": {"size": 3},
    });
    let t = one_row_table("widgets", &widget, IncludeObject::Metadata);
    assert_eq!(t["kind"], "Table");
    assert_eq!(t["metadata"], json!({"resourceVersion": "7"}));
    assert_eq!(t["columnDefinitions"], json!(column_definitions("widgets")));
    let row = &t["rows"][0];
    assert_eq!(row["cells"], json!(["w1", "2025-01-01T00:00:00Z"]));
    assert_eq!(
        row["object"],
        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": widget["metadata"]})
    );

    // includeObject=Object: the stored object, which carries its own kind and apiVersion.
    let t = one_row_table("widgets", &widget, IncludeObject::Object);
    assert_eq!(t["rows"][0]["object"], widget);
    let t = one_row_table("widgets", &widget, IncludeObject::None);
    assert!(t["rows"][0].get("object").is_none());
}
