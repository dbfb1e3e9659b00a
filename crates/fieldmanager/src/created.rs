//! The managedFields of created objects, memoised by shape.
//!
//! A create's managedFields name one manager, who owns every field of the new object (less
//! identity metadata and what the endpoint ignores). Which fields those are depends only on
//! the object's shape ([`ShapeHash`]: its field paths and which leaves are null), not on its
//! scalar values; a DaemonSet's pods, for one, share a shape but for their names and nodes.
//! The memo keeps the encoded entries per shape, manager, version and endpoint, so that a
//! controller creating ten thousand pods from one template pays the typed walk and encoding
//! once. Only the write's time differs between hits.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use serde_json::Value;

use crate::managers::Write;
use crate::typed::ShapeHash;
use crate::updater::Updater;

/// Shapes kept at once; past it the memo starts over (a cluster has few templates).
const CAPACITY: usize = 512;

static MEMO: LazyLock<Mutex<HashMap<u128, Value>>> = LazyLock::new(Default::default);

/// The memo's key for a create of `new` through `updater` by `write`, or `None` for an object
/// the schema cannot type (the field manager's own path answers it).
pub(crate) fn key(updater: &Updater, write: &Write<'_>, new: &Value) -> Option<u128> {
    let schema = format!("{:?}", updater.schema);
    let mut hash = ShapeHash::new(&[
        &schema,
        write.manager,
        write.api_version,
        write.subresource.unwrap_or(""),
    ]);
    hash.add_set(&updater.ignored);
    hash.add_object(updater.schema, new).ok()?;
    Some(hash.finish())
}

/// The managedFields memoised for `key`, stamped with the write's time.
pub(crate) fn get(key: u128, now: &str) -> Option<Value> {
    let mut entries = MEMO
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)?
        .clone();
    for entry in entries.as_array_mut()? {
        if let Some(time) = entry.get_mut("time") {
            *time = Value::String(now.to_string());
        }
    }
    Some(entries)
}

/// Keeps the managedFields a create was given.
pub(crate) fn put(key: u128, managed_fields: &Value) {
    let mut memo = MEMO.lock().unwrap_or_else(|e| e.into_inner());
    if memo.len() >= CAPACITY {
        memo.clear();
    }
    memo.insert(key, managed_fields.clone());
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::managers::FieldManager;
    use crate::path::PathElement;
    use crate::schema::Schema;
    use crate::set::Set;

    fn pod(node: &str, image: &str, extra_label: Option<&str>) -> Value {
        let mut labels = json!({"app": "fluent", "controller-revision-hash": "abc"});
        if let Some(l) = extra_label {
            labels[l] = json!("x");
        }
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "fluent-", "name": format!("fluent-{node}"),
                         "namespace": "default", "labels": labels},
            "spec": {
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [
                        {"key": "metadata.name", "operator": "In", "values": [node]}]}]}}},
                "containers": [{"name": "fluent", "image": image,
                                "ports": [{"containerPort": 2020, "protocol": "TCP"}]}],
                "tolerations": [{"operator": "Exists"}],
                "priority": 0,
            },
        })
    }

    fn manager() -> FieldManager {
        let status = Set::of(&[&[PathElement::Field("status".into())]]);
        FieldManager::new(Updater::new(Schema::BuiltIn, status))
    }

    fn write<'a>(now: &'a str, manager: &'a str) -> Write<'a> {
        Write {
            manager,
            api_version: "v1",
            subresource: None,
            now,
        }
    }

    /// What the field manager's own path writes, memo aside.
    fn uncached(object: &Value, w: &Write<'_>) -> Value {
        let mut out = object.clone();
        manager().update_uncached(None, &mut out, w);
        out
    }

    #[test]
    fn a_memoised_create_matches_the_computed_one() {
        let fm = manager();
        let first = write("2026-12-07T10:00:00Z", "memo-test-a");
        let mut a = pod("node-1", "fluent:1", None);
        fm.update(None, &mut a, &first);
        assert_eq!(a, uncached(&pod("node-1", "fluent:1", None), &first));
        let key = key(&fm.updater, &first, &pod("node-2", "fluent:2", None));
        assert!(
            key.is_some_and(|k| get(k, "t").is_some()),
            "same shape is a hit"
        );

        // Other node, image and time: a hit, stamped with its own time.
        let second = write("2026-12-07T10:00:05Z", "memo-test-a");
        let mut b = pod("node-2", "fluent:2", None);
        fm.update(None, &mut b, &second);
        assert_eq!(b, uncached(&pod("node-2", "fluent:2", None), &second));
        assert_eq!(
            b["metadata"]["managedFields"][0]["time"],
            "2026-12-07T10:00:05Z"
        );
        assert!(
            b["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:labels"]
                .get("f:controller-revision-hash")
                .is_some()
        );
    }

    #[test]
    fn another_shape_or_manager_is_computed_afresh() {
        let fm = manager();
        let w = write("2026-12-07T10:00:00Z", "memo-test-b");
        fm.update(None, &mut pod("node-1", "fluent:1", None), &w);

        let mut labelled = pod("node-1", "fluent:1", Some("extra"));
        fm.update(None, &mut labelled, &w);
        assert_eq!(
            labelled,
            uncached(&pod("node-1", "fluent:1", Some("extra")), &w)
        );
        let labels =
            &labelled["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:labels"];
        assert!(labels.get("f:extra").is_some());

        // A null where the first had a value changes nothing from an empty pod there.
        let mut nulled = pod("node-1", "fluent:1", None);
        nulled["spec"]["priority"] = Value::Null;
        let expected = uncached(&nulled, &w);
        fm.update(None, &mut nulled, &w);
        assert_eq!(nulled, expected);

        let other = write("2026-12-07T10:00:00Z", "memo-test-c");
        let mut by_other = pod("node-1", "fluent:1", None);
        fm.update(None, &mut by_other, &other);
        assert_eq!(
            by_other["metadata"]["managedFields"][0]["manager"],
            "memo-test-c"
        );
    }
}
