//! The managedFields of created objects, memoised by shape.
//!
//! A create's managedFields name one manager, who owns every field of the new object (less
//! identity metadata and what the endpoint ignores). Which fields those are depends only on
//! the object's shape ([`ShapeHash`]: its field paths, with list items by position rather than
//! by key, and which leaves are null), and on the keys of its list items. A DaemonSet's pods
//! share a shape but for their names and nodes (the API server leaves what admission adds,
//! such as the `kube-api-access-` volume with its random suffix, out of a create's fields, as
//! upstream's). The memo keeps the encoded entry per shape, manager, version and endpoint,
//! with the keyed items' paths; a hit renames the items whose keys differ (objects created
//! with generated item names, `k:{"name":"cache-x1y2z"}`) in a copy. So a controller creating
//! ten thousand pods from one template pays the typed walk, the comparison and the encoding
//! once.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use serde_json::Value;

use crate::encode::element_text;
use crate::managers::Write;
use crate::path::PathElement;
use crate::schema::Schema;
use crate::typed::ShapeHash;
use crate::updater::Updater;

/// Shapes kept at once; past it the memo starts over (a cluster has few templates).
const CAPACITY: usize = 512;

/// A create's managedFields (one entry) and the paths of the keyed list items it was
/// computed from.
struct Memo {
    entries: Value,
    keyed: Vec<Vec<PathElement>>,
}

static MEMO: LazyLock<Mutex<HashMap<u128, Memo>>> = LazyLock::new(Default::default);

/// A create's shape: the memo's key, and the object's keyed items.
pub(crate) struct Shape {
    key: u128,
    keyed: Vec<Vec<PathElement>>,
}

/// The shape of a create of `new` through `updater` by `write`, or `None` for an object with
/// none (the field manager's own path answers it).
pub(crate) fn shape(updater: &Updater, write: &Write<'_>, new: &Value) -> Option<Shape> {
    let schema = match updater.schema {
        Schema::BuiltIn => "built-in",
        Schema::Custom => "custom",
    };
    let mut hash = ShapeHash::new(&[
        schema,
        write.manager,
        write.api_version,
        write.subresource.unwrap_or(""),
    ]);
    hash.add_set(&updater.ignored);
    hash.add_object(updater.schema, new)?;
    Some(Shape {
        key: hash.finish(),
        keyed: hash.keyed(),
    })
}

/// The managedFields memoised for `shape`, with its items' keys and the write's time.
pub(crate) fn get(shape: &Shape, now: &str) -> Option<Value> {
    let (mut entries, renames) = {
        let memo = MEMO.lock().unwrap_or_else(|e| e.into_inner());
        let hit = memo.get(&shape.key)?;
        if hit.keyed.len() != shape.keyed.len() {
            return None;
        }
        let renames: Vec<(Vec<PathElement>, PathElement)> = hit
            .keyed
            .iter()
            .zip(&shape.keyed)
            // Items below a renamed one keep their own keys: only differing last elements.
            .filter(|(was, is)| was.last() != is.last())
            .filter_map(|(was, is)| Some((was.clone(), is.last()?.clone())))
            .collect();
        (hit.entries.clone(), renames)
    };
    let [entry] = entries.as_array_mut()?.as_mut_slice() else {
        return None;
    };
    let fields = entry.get_mut("fieldsV1")?;
    // Walk order puts an item's own items first, so each path's parents still carry the keys
    // they were memoised with when it is renamed.
    for (was, is) in renames {
        rename(fields, &was, &is)?;
    }
    entry["time"] = Value::String(now.to_string());
    Some(entries)
}

/// Renames the item at `path` in `fields` to `to`. `Some(())` also when the item is not there
/// (the endpoint ignores it); `None` when its new name is taken (two items swapped keys).
fn rename(fields: &mut Value, path: &[PathElement], to: &PathElement) -> Option<()> {
    let (last, parents) = path.split_last()?;
    let mut node = fields;
    for pe in parents {
        match node.get_mut(element_text(pe)) {
            Some(next) => node = next,
            None => return Some(()),
        }
    }
    let map = node.as_object_mut()?;
    let to = element_text(to);
    if map.contains_key(&to) {
        return None;
    }
    if let Some(item) = map.remove(&element_text(last)) {
        map.insert(to, item);
    }
    Some(())
}

/// Keeps the managedFields a create of `shape` was given.
pub(crate) fn put(shape: Shape, managed_fields: &Value) {
    if managed_fields.as_array().is_none_or(|a| a.len() != 1) {
        return;
    }
    let mut memo = MEMO.lock().unwrap_or_else(|e| e.into_inner());
    if memo.len() >= CAPACITY {
        memo.clear();
    }
    memo.insert(
        shape.key,
        Memo {
            entries: managed_fields.clone(),
            keyed: shape.keyed,
        },
    );
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::managers::FieldManager;
    use crate::set::Set;

    /// A daemon pod as the DaemonSet controller and admission make it: `node` in its affinity,
    /// `token` in its service-account volume's name, `container` the name of its container
    /// (a keyed item with keyed items of its own).
    fn pod(node: &str, token: &str, container: &str) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "fluent-", "name": format!("fluent-{node}"),
                         "namespace": "default",
                         "labels": {"app": "fluent", "controller-revision-hash": "abc"}},
            "spec": {
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchFields": [
                        {"key": "metadata.name", "operator": "In", "values": [node]}]}]}}},
                "containers": [{"name": container, "image": "fluent:1",
                                "ports": [{"containerPort": 2020, "protocol": "TCP"}],
                                "volumeMounts": [{"name": token, "mountPath": "/var/run/secrets"}]}],
                "volumes": [{"name": "varlog", "hostPath": {"path": "/var/log"}},
                            {"name": token, "projected": {"sources": []}}],
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

    fn is_hit(object: &Value, w: &Write<'_>) -> bool {
        shape(&manager().updater, w, object).is_some_and(|s| get(&s, w.now).is_some())
    }

    #[test]
    fn a_memoised_create_matches_the_computed_one() {
        let fm = manager();
        let first = write("2026-12-07T10:00:00Z", "memo-test-a");
        let mut a = pod("node-1", "kube-api-access-aaaaa", "fluent");
        fm.update(None, &mut a, &first);
        assert_eq!(
            a,
            uncached(&pod("node-1", "kube-api-access-aaaaa", "fluent"), &first)
        );

        // Another node, volume name, container name and time: a hit, renamed and restamped.
        let second = write("2026-12-07T10:00:05Z", "memo-test-a");
        let other = pod("node-2", "kube-api-access-zzzzz", "bit");
        assert!(is_hit(&other, &second));
        let mut b = other.clone();
        fm.update(None, &mut b, &second);
        assert_eq!(b, uncached(&other, &second));
        let fields = &b["metadata"]["managedFields"][0]["fieldsV1"];
        assert!(
            fields["f:spec"]["f:volumes"]
                .get(r#"k:{"name":"kube-api-access-zzzzz"}"#)
                .is_some()
        );
        assert!(
            fields["f:spec"]["f:containers"][r#"k:{"name":"bit"}"#]["f:volumeMounts"]
                .get(r#"k:{"mountPath":"/var/run/secrets"}"#)
                .is_some()
        );
        assert_eq!(
            b["metadata"]["managedFields"][0]["time"],
            "2026-12-07T10:00:05Z"
        );
    }

    #[test]
    fn another_shape_or_manager_is_computed_afresh() {
        let fm = manager();
        let w = write("2026-12-07T10:00:00Z", "memo-test-b");
        fm.update(
            None,
            &mut pod("node-1", "kube-api-access-aaaaa", "fluent"),
            &w,
        );

        let mut labelled = pod("node-1", "kube-api-access-aaaaa", "fluent");
        labelled["metadata"]["labels"]["extra"] = json!("x");
        assert!(!is_hit(&labelled, &w));
        let expected = uncached(&labelled, &w);
        fm.update(None, &mut labelled, &w);
        assert_eq!(labelled, expected);

        // A null where the first had a value changes nothing from an empty pod there.
        let mut nulled = pod("node-1", "kube-api-access-aaaaa", "fluent");
        nulled["spec"]["priority"] = Value::Null;
        assert!(!is_hit(&nulled, &w));
        let expected = uncached(&nulled, &w);
        fm.update(None, &mut nulled, &w);
        assert_eq!(nulled, expected);

        let other = write("2026-12-07T10:00:00Z", "memo-test-c");
        let mut by_other = pod("node-1", "kube-api-access-aaaaa", "fluent");
        assert!(!is_hit(&by_other, &other));
        fm.update(None, &mut by_other, &other);
        assert_eq!(
            by_other["metadata"]["managedFields"][0]["manager"],
            "memo-test-c"
        );
    }

    #[test]
    fn swapped_keys_and_duplicates_are_computed_afresh() {
        let fm = manager();
        let w = write("2026-12-07T10:00:00Z", "memo-test-d");
        // Volumes "varlog" and "varlib": memoised, then the same with the names swapped.
        let mut first = pod("node-1", "varlib", "fluent");
        fm.update(None, &mut first, &w);
        let mut swapped = pod("node-1", "varlib", "fluent");
        swapped["spec"]["volumes"][0]["name"] = json!("varlib");
        swapped["spec"]["volumes"][1]["name"] = json!("varlog");
        assert!(
            !is_hit(&swapped, &w),
            "a rename onto a taken name falls back"
        );
        let expected = uncached(&swapped, &w);
        fm.update(None, &mut swapped, &w);
        assert_eq!(swapped, expected);

        // Two volumes of one name: no shape, as which items are duplicates depends on keys.
        let twice = pod("node-1", "varlog", "fluent");
        assert!(shape(&fm.updater, &w, &twice).is_none());
        let mut written = twice.clone();
        fm.update(None, &mut written, &w);
        assert_eq!(written, uncached(&twice, &w));
    }
}
