//! Catalogue entries that CustomResourceDefinitions define while the server runs.
//!
//! Every layer names a resource by `&'static ResourceInfo`, so a served CRD version becomes
//! one: [`intern`] leaks one entry per distinct definition and hands the same entry back for
//! the same definition. The leak is bounded by the number of distinct definitions the process
//! ever serves (each changed CRD write that alters a served version adds one entry the size of
//! its schema; re-applying an unchanged CRD, restarting watches or rebuilding the served set
//! adds nothing), which is small next to the objects themselves.

use std::sync::Mutex;

use serde_json::Value;

use crate::catalog::{ResourceInfo, SubresourceInfo};

/// Discovery's verbs for a custom resource, in upstream's order.
pub const CUSTOM_VERBS: &[&str] = &[
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "create",
    "update",
    "watch",
];

/// What serving a custom resource needs beyond its names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomInfo {
    /// The objects' `apiVersion` in this version (`example.com/v1`).
    pub api_version: String,
    /// `WidgetList`.
    pub list_kind: String,
    /// The CRD's name (`widgets.example.com`).
    pub crd_name: String,
    /// The version objects are stored in (objects of every served version share one store
    /// prefix; upstream's `None` conversion only rewrites `apiVersion`).
    pub storage_version: String,
    /// The version's `openAPIV3Schema`, if any (structural: the CRD's validation held it so).
    pub schema: Option<Value>,
    /// `additionalPrinterColumns`.
    pub printer_columns: Vec<PrinterColumn>,
    /// Whether the status subresource is enabled.
    pub status: bool,
    /// The scale subresource's paths, if enabled.
    pub scale: Option<ScalePaths>,
    /// Shown as a warning to clients of a deprecated version.
    pub deprecation_warning: Option<String>,
}

/// One `additionalPrinterColumns` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterColumn {
    pub name: String,
    pub ty: String,
    pub format: String,
    pub description: String,
    pub priority: i32,
    pub json_path: String,
}

/// `subresources.scale`: JSON paths (`.spec.replicas`) of the replica counts and selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// One served version of a CRD, owned: what [`intern`] turns into a catalogue entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomDefinition {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub info: CustomInfo,
}

fn leak(s: &str) -> &'static str {
    s.to_owned().leak()
}

const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// The catalogue entry of `def`: the same `&'static` entry for the same definition.
pub fn intern(def: CustomDefinition) -> &'static ResourceInfo {
    static INTERNED: Mutex<Vec<(CustomDefinition, &'static ResourceInfo)>> = Mutex::new(Vec::new());
    let mut interned = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, info)) = interned.iter().find(|(d, _)| *d == def) {
        return info;
    }
    let group = leak(&def.group);
    let version = leak(&def.version);
    let kind = leak(&def.kind);
    let mut subresources = Vec::new();
    if def.info.status {
        subresources.push(SubresourceInfo {
            name: "status",
            group,
            version,
            kind,
            verbs: STATUS_VERBS,
        });
    }
    if def.info.scale.is_some() {
        subresources.push(SubresourceInfo {
            name: "scale",
            group: "autoscaling",
            version: "v1",
            kind: "Scale",
            verbs: STATUS_VERBS,
        });
    }
    let info: &'static ResourceInfo = Box::leak(Box::new(ResourceInfo {
        group,
        version,
        plural: leak(&def.plural),
        singular: leak(&def.singular),
        kind,
        namespaced: def.namespaced,
        short_names: def
            .short_names
            .iter()
            .map(|s| leak(s))
            .collect::<Vec<_>>()
            .leak(),
        categories: def
            .categories
            .iter()
            .map(|s| leak(s))
            .collect::<Vec<_>>()
            .leak(),
        verbs: CUSTOM_VERBS,
        subresources: subresources.leak(),
        custom: Some(Box::leak(Box::new(def.info.clone()))),
    }));
    interned.push((def, info));
    info
}

/// Kubernetes' version order (`k8s.io/apimachinery/pkg/version.CompareKubeAwareVersionStrings`):
/// GA before beta before alpha, higher numbers first, then versions of no such shape
/// alphabetically. Sorting with this puts the preferred version first.
pub fn kube_version_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u64 = rest.get(..digits)?.parse().ok()?;
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        let (level, minor) = if let Some(m) = tail.strip_prefix("beta") {
            (1, m)
        } else if let Some(m) = tail.strip_prefix("alpha") {
            (0, m)
        } else {
            return None;
        };
        if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((major, level, minor.parse().ok()?))
    }
    match (parse(a), parse(b)) {
        (Some((ma, la, na)), Some((mb, lb, nb))) => lb.cmp(&la).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(version: &str) -> CustomDefinition {
        CustomDefinition {
            group: "example.com".into(),
            version: version.into(),
            plural: "widgets".into(),
            singular: "widget".into(),
            kind: "Widget".into(),
            namespaced: true,
            short_names: vec!["wd".into()],
            categories: vec![],
            info: CustomInfo {
                api_version: format!("example.com/{version}"),
                list_kind: "WidgetList".into(),
                crd_name: "widgets.example.com".into(),
                storage_version: "v1".into(),
                schema: None,
                printer_columns: vec![],
                status: true,
                scale: None,
                deprecation_warning: None,
            },
        }
    }

    #[test]
    fn the_same_definition_is_one_entry() {
        let a = intern(def("v1"));
        let b = intern(def("v1"));
        assert!(std::ptr::eq(a, b));
        let c = intern(def("v2"));
        assert!(!std::ptr::eq(a, c));
        assert_eq!(a.api_version(), "example.com/v1");
        assert_eq!(a.subresource("status").map(|s| s.kind), Some("Widget"));
        assert_eq!(a.short_names, ["wd"]);
    }

    #[test]
    fn versions_sort_as_kubernetes_sorts_them() {
        let mut v = vec![
            "v11alpha2",
            "foo10",
            "v10",
            "v12alpha1",
            "v3beta1",
            "foo1",
            "v2",
            "v10beta3",
            "v1",
        ];
        v.sort_by(|a, b| kube_version_order(a, b));
        assert_eq!(
            v,
            [
                "v10",
                "v2",
                "v1",
                "v10beta3",
                "v3beta1",
                "v12alpha1",
                "v11alpha2",
                "foo1",
                "foo10"
            ]
        );
    }
}

#[cfg(test)]
mod served_tests {
    use super::*;
    use crate::catalog::{Catalog, View};
    use serde_json::json;

    fn gadgets(version: &str) -> &'static ResourceInfo {
        intern(CustomDefinition {
            group: "served.example.com".into(),
            version: version.into(),
            plural: "gadgets".into(),
            singular: "gadget".into(),
            kind: "Gadget".into(),
            namespaced: false,
            short_names: vec![],
            categories: vec!["all".into()],
            info: CustomInfo {
                api_version: format!("served.example.com/{version}"),
                list_kind: "GadgetList".into(),
                crd_name: "gadgets.served.example.com".into(),
                storage_version: "v1".into(),
                schema: Some(json!({"type": "object", "properties": {
                    "spec": {"type": "object", "description": "What the gadget does.",
                             "properties": {"size": {"type": "integer"}}}}})),
                printer_columns: vec![],
                status: false,
                scale: Some(ScalePaths {
                    spec_replicas: ".spec.size".into(),
                    status_replicas: ".status.size".into(),
                    label_selector: None,
                }),
                deprecation_warning: None,
            },
        })
    }

    #[test]
    fn a_served_set_is_in_lookups_discovery_and_openapi() {
        let catalog = Catalog::new();
        let before = catalog.openapi().index();
        assert!(catalog.set_custom(vec![gadgets("v1beta1"), gadgets("v1")]));
        assert!(!catalog.set_custom(vec![gadgets("v1"), gadgets("v1beta1")]));
        let view = catalog.view();
        assert_eq!(
            view.find("served.example.com", "v1", "gadgets")
                .map(|r| r.kind),
            Some("Gadget")
        );
        assert!(crate::find("served.example.com", "v1", "gadgets").is_none());
        // Preferred version first.
        let gvs: Vec<_> = view
            .group_versions()
            .into_iter()
            .filter(|(g, _)| *g == "served.example.com")
            .collect();
        assert_eq!(
            gvs,
            [
                ("served.example.com", "v1"),
                ("served.example.com", "v1beta1")
            ]
        );
        let groups = crate::api_group_list(&view);
        let last = groups["groups"]
            .as_array()
            .and_then(|g| g.last())
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            last["preferredVersion"]["groupVersion"],
            "served.example.com/v1"
        );
        let list = crate::api_resource_list(&view, "served.example.com", "v1").expect("served");
        assert_eq!(list["resources"][0]["name"], "gadgets");
        assert_eq!(list["resources"][1]["name"], "gadgets/scale");
        assert_eq!(list["resources"][1]["group"], "autoscaling");

        let openapi = catalog.openapi();
        let index = openapi.index();
        assert_ne!(index, before);
        let doc = openapi
            .document("apis/served.example.com/v1")
            .expect("document");
        let doc: serde_json::Value = serde_json::from_slice(doc.bytes()).expect("JSON");
        let schema = &doc["components"]["schemas"]["com.example.served.v1.Gadget"];
        assert_eq!(
            schema["properties"]["spec"]["description"],
            "What the gadget does."
        );
        assert_eq!(
            schema["x-kubernetes-group-version-kind"],
            json!([{"group": "served.example.com", "kind": "Gadget", "version": "v1"}])
        );
        assert!(doc["paths"]["/apis/served.example.com/v1/gadgets/{name}/scale"].is_object());
        let v2 = openapi.v2_for("application/json").expect("v2");
        let v2: serde_json::Value = serde_json::from_slice(v2.body()).expect("JSON");
        assert!(v2["definitions"]["com.example.served.v1.Gadget"].is_object());

        assert!(catalog.set_custom(Vec::new()));
        assert_eq!(catalog.openapi().index(), before);
        assert!(
            View::builtin()
                .find("served.example.com", "v1", "gadgets")
                .is_none()
        );
    }
}
