//! Strategic merge patch, applied the way kube-apiserver applies it.
//!
//! A port of the server side of upstream's `k8s.io/apimachinery/pkg/util/strategicpatch`
//! (`StrategicMergeMapPatch`: `mergeMap`, `mergeSlice`, `mergePatchIntoOriginal`,
//! `applyRetainKeysDirective`, `normalizeElementOrder`), with the merge keys of the types taken
//! from [`crate::fields`] instead of Go reflection.
//!
//! Upstream decodes the merged map into the Go type afterwards, which silently drops directive
//! keys and `null`s that landed in places the merge did not look at (a value added whole, a
//! replaced map). pernode keeps untyped JSON, so every value taken from the patch is itself
//! merged into nothing ([`fresh`]): that runs its directives and drops its `null`s, and no
//! directive key survives into the result.
//!
//! Deliberate differences from upstream, each more lenient than a 500 from the Go code:
//! - `$patch: delete` on a map removes the field (upstream leaves `{}` before decoding);
//! - `$patch: merge` is accepted and means "merge as usual" (upstream rejects it);
//! - `$deleteFromPrimitiveList/<f>` removes the items from `<f>` whatever `<f>`'s strategy, and
//!   does nothing when `<f>` is absent (upstream would store the deletion list as the value);
//! - list items without the merge key on the *server* side are kept in place instead of failing
//!   the whole patch.

use serde_json::{Map, Value};

use crate::PatchError;
use crate::fields::{FieldPath, ListStrategy, list_strategy};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

// Upstream's mergepatch sentinel errors; kube-apiserver answers 400 for these.
const ERR_PRIMITIVE_LIST: &str = "invalid patch format of primitive list";
const ERR_RETAIN_KEYS: &str = "invalid patch format of retainKeys";
const ERR_SET_ELEMENT_ORDER: &str = "invalid patch format of setElementOrder list";
// ... and 422 for this one.
const ERR_LIST_OF_LISTS: &str = "lists of lists are not supported";

type Path<'a> = Option<&'a FieldPath<'a>>;

/// Applies a strategic merge patch to `original` (see the crate docs for the rules). The patch
/// is taken by value: the merge moves its parts into the result.
pub fn strategic_merge(original: &Value, patch: Value) -> Result<Value, PatchError> {
    let Value::Object(original) = original else {
        // Stored objects are always JSON objects; anything else is our bug, not the client's.
        return Err(PatchError::StrategicPatchFailed(
            "invalid JSON document".to_string(),
        ));
    };
    let patch = match patch {
        // Go unmarshals `null` into an empty map: a no-op patch.
        Value::Null => return Ok(Value::Object(original.clone())),
        Value::Object(p) => p,
        other => {
            return Err(PatchError::Malformed(format!(
                "json: cannot unmarshal {} into Go value of type map[string]interface {{}}",
                go_json_kind(&other)
            )));
        }
    };
    // A top-level `$patch: delete` leaves an empty object, as upstream.
    let merged = merge_map(original.clone(), patch, None)?.unwrap_or_default();
    Ok(Value::Object(merged))
}

/// Merges `patch` into `original`. `None` means the map was deleted (`$patch: delete`).
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    path: Path<'_>,
) -> Result<Option<Map<String, Value>>, PatchError> {
    if let Some(directive) = take_key(&mut patch, DIRECTIVE) {
        match directive.as_str() {
            // Replace: the patch is the new value; merging it into nothing runs its own
            // directives and drops its nulls.
            Some("replace") => return merge_map(Map::new(), patch, path),
            Some("delete") => return Ok(None),
            Some("merge") => {}
            _ => {
                patch.insert(DIRECTIVE.to_string(), directive.clone());
                return Err(PatchError::StrategicPatchFailed(format!(
                    "unknown patch type: {} in map: {}",
                    go_fmt(&directive),
                    go_fmt_map(&patch)
                )));
            }
        }
    }

    apply_retain_keys(&mut original, &mut patch)?;
    apply_set_element_order(&mut original, &mut patch, path)?;

    // Deletions from primitive lists run after everything else so that an addition and a
    // deletion for the same list do not depend on key order (Go iterates maps randomly).
    let mut deletions: Vec<(String, Value)> = Vec::new();
    for (key, patch_value) in patch {
        if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            let field = extract_key(&key, DELETE_FROM_PRIMITIVE_LIST, ERR_PRIMITIVE_LIST)?;
            deletions.push((field.to_string(), patch_value));
            continue;
        }
        if patch_value.is_null() {
            take_key(&mut original, &key);
            continue;
        }
        let child = FieldPath::child(path, &key);
        let merged = match original.get_mut(&key) {
            Some(Value::Object(o)) if patch_value.is_object() => {
                let o = std::mem::take(o);
                match patch_value {
                    Value::Object(p) => merge_map(o, p, Some(&child))?.map(Value::Object),
                    _ => None, // unreachable: checked by the guard
                }
            }
            Some(Value::Array(o)) if patch_value.is_array() => {
                let o = std::mem::take(o);
                match patch_value {
                    Value::Array(p) => Some(Value::Array(merge_list(o, p, Some(&child))?)),
                    _ => None, // unreachable: checked by the guard
                }
            }
            // Absent, a scalar, or a change of type: the patch value replaces the original.
            _ => fresh(patch_value, Some(&child))?,
        };
        match merged {
            Some(v) => {
                if let Some(slot) = original.get_mut(&key) {
                    *slot = v;
                } else {
                    original.insert(key, v);
                }
            }
            None => {
                take_key(&mut original, &key);
            }
        }
    }

    for (field, to_delete) in deletions {
        match to_delete {
            Value::Null => {
                take_key(&mut original, &field);
            }
            Value::Array(to_delete) => {
                if let Some(Value::Array(list)) = original.get_mut(&field) {
                    list.retain(|item| !to_delete.iter().any(|d| json_eq(d, item)));
                }
            }
            _ => {
                return Err(PatchError::BadStrategicPatch(
                    ERR_PRIMITIVE_LIST.to_string(),
                ));
            }
        }
    }
    Ok(Some(original))
}

/// A patch value that has nothing to merge with, made ready to store: maps and lists are merged
/// into empty ones so their directives run and their nulls go. `None`: it deleted itself.
fn fresh(value: Value, path: Path<'_>) -> Result<Option<Value>, PatchError> {
    Ok(match value {
        // Without directives the keys of a map do not interact: merging it into nothing keeps
        // every key but the null ones, each value made fresh in turn. Doing that in place
        // spares rebuilding the map, which is most of a status patch's merge.
        Value::Object(mut m) if !m.keys().any(|k| k.starts_with('$')) => {
            m.retain(|_, v| !v.is_null());
            let mut gone = Vec::new();
            for (key, slot) in m.iter_mut() {
                let child = FieldPath::child(path, key);
                match fresh(std::mem::take(slot), Some(&child))? {
                    Some(v) => *slot = v,
                    None => gone.push(key.clone()),
                }
            }
            for key in gone {
                m.remove(&key);
            }
            Some(Value::Object(m))
        }
        Value::Object(m) => merge_map(Map::new(), m, path)?.map(Value::Object),
        Value::Array(a) => Some(Value::Array(merge_list(Vec::new(), a, path)?)),
        Value::Null => None,
        scalar => Some(scalar),
    })
}

/// `$retainKeys`: the listed keys are the only ones the result keeps; every non-null key of the
/// patch must be among them.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = take_key(patch, RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(PatchError::BadStrategicPatch(ERR_RETAIN_KEYS.to_string()));
    };
    let kept = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !kept(k) {
            return Err(PatchError::BadStrategicPatch(ERR_RETAIN_KEYS.to_string()));
        }
    }
    original.retain(|k, _| kept(k));
    Ok(())
}

/// `$setElementOrder/<field>`: merges `<field>` and then orders it as the directive says, with
/// items the directive does not name (server-only ones) kept where they were relative to the
/// others. Consumes both the directive and the patch's `<field>`.
fn apply_set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    path: Path<'_>,
) -> Result<(), PatchError> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in directives {
        let Some(order) = take_key(patch, &key) else {
            continue;
        };
        let field = extract_key(&key, SET_ELEMENT_ORDER, ERR_SET_ELEMENT_ORDER)?.to_string();
        let Value::Array(order) = order else {
            return Err(PatchError::BadStrategicPatch(
                ERR_SET_ELEMENT_ORDER.to_string(),
            ));
        };
        // Only lists can be ordered; anything else is left to the ordinary merge.
        let original_list = match original.get(&field) {
            Some(Value::Array(a)) => Some(a.clone()),
            Some(_) => continue,
            None => None,
        };
        let patch_list = match patch.get(&field) {
            Some(Value::Array(_)) => match take_key(patch, &field) {
                Some(Value::Array(a)) => Some(a),
                _ => None,
            },
            Some(_) => continue,
            None => None,
        };
        let child = FieldPath::child(path, &field);
        let strategy = list_strategy(Some(&child));
        let merge_key = match strategy {
            ListStrategy::MergeKey(k) => Some(k),
            _ => None,
        };
        if let Some(p) = &patch_list {
            validate_set_element_order(p, &order, merge_key)?;
        }
        let merged = match (original_list.clone(), patch_list) {
            (Some(o), None) => o,
            (None, Some(p)) => merge_list(Vec::new(), p, Some(&child))?,
            (Some(o), Some(p)) => merge_list(o, p, Some(&child))?,
            (None, None) => continue,
        };
        let (in_order, server_only): (Vec<Value>, Vec<Value>) = merged
            .into_iter()
            .partition(|item| position(&order, identity(item, merge_key), merge_key).is_some());
        let server_order = original_list.unwrap_or_default();
        let ordered =
            normalize_element_order(in_order, server_only, &order, &server_order, merge_key);
        original.insert(field, Value::Array(ordered));
    }
    Ok(())
}

/// Upstream's `validatePatchWithSetOrderList`: the patch's items (less deletions and other
/// directive items) must appear in the `$setElementOrder` list, in the same relative order.
fn validate_set_element_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    if order.is_empty() || patch_list.is_empty() {
        return Ok(());
    }
    let items: Vec<&Value> = patch_list
        .iter()
        .filter(|v| v.get(DIRECTIVE).is_none())
        .collect();
    let (mut p, mut o) = (0, 0);
    while p < items.len() && o < order.len() {
        let (item, ordered) = (items[p], &order[o]);
        let equal = match merge_key {
            Some(key) => {
                let a = merge_key_value(item, key)?;
                let b = merge_key_value(ordered, key)?;
                json_eq(a, b)
            }
            None => json_eq(item, ordered),
        };
        if equal {
            p += 1;
        }
        o += 1;
    }
    if p < items.len() {
        return Err(PatchError::StrategicPatchFailed(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            go_fmt(&Value::Array(patch_list.to_vec())),
            go_fmt(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

/// Merges two lists by the strategy of the field at `path`.
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    path: Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    let merge_key = match list_strategy(path) {
        ListStrategy::Replace => return replace_list(patch, path),
        ListStrategy::MergeKey(k) => Some(k),
        ListStrategy::MergePrimitive => None,
    };
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    // As upstream's mergeSlice, the items (not the tag) decide between a union of scalars and a
    // keyed merge of maps.
    let mut maps = false;
    let mut scalars = false;
    for item in original.iter().chain(patch.iter()) {
        match item {
            Value::Array(_) => {
                return Err(PatchError::UnprocessableStrategicPatch(
                    ERR_LIST_OF_LISTS.to_string(),
                ));
            }
            Value::Object(_) => maps = true,
            _ => scalars = true,
        }
    }
    if maps && scalars {
        return Err(PatchError::StrategicPatchFailed(format!(
            "list element types are not identical: [{} {}]",
            go_fmt(&Value::Array(original)),
            go_fmt(&Value::Array(patch))
        )));
    }
    if !maps {
        return Ok(merge_scalars(original, patch));
    }
    match merge_key {
        Some(key) => merge_keyed(original, patch, key, path),
        None => Err(PatchError::StrategicPatchFailed(
            "cannot merge lists without merge key for type map".to_string(),
        )),
    }
}

/// A list without a merge strategy: the patch's list is the new value.
fn replace_list(patch: Vec<Value>, path: Path<'_>) -> Result<Vec<Value>, PatchError> {
    let mut out = Vec::with_capacity(patch.len());
    for item in patch {
        if let Some(v) = fresh(item, path)? {
            out.push(v);
        }
    }
    Ok(out)
}

/// Set union of two lists of scalars, patch items ordered as in the patch.
fn merge_scalars(original: Vec<Value>, patch: Vec<Value>) -> Vec<Value> {
    let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for item in original.iter().chain(patch.iter()) {
        if !merged.iter().any(|m| json_eq(m, item)) {
            merged.push(item.clone());
        }
    }
    let (in_patch, server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|item| patch.iter().any(|p| json_eq(p, item)));
    normalize_element_order(in_patch, server_only, &patch, &original, None)
}

/// Merges two lists of maps by `key`: patch items update the original item with the same key
/// (recursively), new ones are added; `{"$patch":"delete", key: v}` removes the item with that
/// key and `{"$patch":"replace"}` makes the patch's other items the whole list.
fn merge_keyed(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    path: Path<'_>,
) -> Result<Vec<Value>, PatchError> {
    let mut items: Vec<Map<String, Value>> = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Value::Object(item) = item else {
            continue; // merge_list checked that every item is a map
        };
        match item.get(DIRECTIVE) {
            None => items.push(item),
            Some(directive) => match directive.as_str() {
                Some("delete") => {
                    let value = merge_key_value_in(&item, key)?.clone();
                    original.retain(|o| !o.get(key).is_some_and(|v| json_eq(v, &value)));
                }
                Some("replace") => replace = true,
                // merge_map strips the marker and merges the item as usual.
                Some("merge") => items.push(item),
                _ => {
                    return Err(PatchError::StrategicPatchFailed(format!(
                        "unknown patch type: {} in map: {}",
                        go_fmt(directive),
                        go_fmt_map(&item)
                    )));
                }
            },
        }
    }
    if replace {
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            if let Some(m) = merge_map(Map::new(), item, path)? {
                out.push(Value::Object(m));
            }
        }
        return Ok(out);
    }

    // Only the items' merge keys order them: keep those rather than a copy of every item.
    let server_order: Vec<Value> = original.iter().map(|o| key_only(o, key)).collect();
    let mut patch_keys: Vec<Value> = Vec::with_capacity(items.len());
    for item in items {
        let value = merge_key_value_in(&item, key)?.clone();
        let found = original
            .iter()
            .position(|o| o.get(key).is_some_and(|v| json_eq(v, &value)));
        match found {
            Some(i) => {
                let current = match &mut original[i] {
                    Value::Object(m) => std::mem::take(m),
                    _ => Map::new(),
                };
                match merge_map(current, item, path)? {
                    Some(m) => original[i] = Value::Object(m),
                    None => {
                        original.remove(i);
                    }
                }
            }
            None => {
                if let Some(m) = merge_map(Map::new(), item, path)? {
                    original.push(Value::Object(m));
                }
            }
        }
        patch_keys.push(value);
    }

    let (in_patch, server_only): (Vec<Value>, Vec<Value>) =
        original.into_iter().partition(|item| {
            item.get(key)
                .is_some_and(|v| patch_keys.iter().any(|p| json_eq(p, v)))
        });
    let patch_order: Vec<Value> = patch_keys
        .into_iter()
        .map(|v| {
            let mut m = Map::new();
            m.insert(key.to_string(), v);
            Value::Object(m)
        })
        .collect();
    Ok(normalize_element_order(
        in_patch,
        server_only,
        &patch_order,
        &server_order,
        Some(key),
    ))
}

/// `{key: item[key]}`, or `{}` when the item has no such key: what ordering reads of an item.
fn key_only(item: &Value, key: &str) -> Value {
    let mut m = Map::new();
    if let Some(v) = item.get(key) {
        m.insert(key.to_string(), v.clone());
    }
    Value::Object(m)
}

/// Upstream's `normalizeElementOrder`: sorts the patch's items by `patch_order` and the
/// server-only items by `server_order`, then interleaves them (`mergeSortedSlice`): a
/// server-only item goes first only when both are in `server_order` and it comes earlier there.
/// So patch items that are new to the list come before the server-only items that follow them,
/// as upstream does (the new container in `kubectl patch` lands first).
fn normalize_element_order(
    mut patch_items: Vec<Value>,
    mut server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: Option<&str>,
) -> Vec<Value> {
    // Stable sorts; items missing from the order list keep their place after the others.
    patch_items.sort_by_key(|v| {
        position(patch_order, identity(v, merge_key), merge_key).unwrap_or(usize::MAX)
    });
    server_only.sort_by_key(|v| {
        position(server_order, identity(v, merge_key), merge_key).unwrap_or(usize::MAX)
    });

    let mut out = Vec::with_capacity(patch_items.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patch_items.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(l), Some(r)) => {
                let li = position(server_order, identity(l, merge_key), merge_key);
                let ri = position(server_order, identity(r, merge_key), merge_key);
                matches!((li, ri), (Some(li), Some(ri)) if li < ri)
            }
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some(v) = next {
            out.push(v);
        }
    }
    out
}

/// What identifies a list item: its merge key's value, or the item itself for scalars.
fn identity<'v>(item: &'v Value, merge_key: Option<&str>) -> Option<&'v Value> {
    match merge_key {
        Some(k) => item.get(k),
        None => Some(item),
    }
}

/// Index of the first item of `list` with identity `id`.
fn position(list: &[Value], id: Option<&Value>, merge_key: Option<&str>) -> Option<usize> {
    let id = id?;
    list.iter()
        .position(|v| identity(v, merge_key).is_some_and(|x| json_eq(x, id)))
}

fn merge_key_value<'v>(item: &'v Value, key: &str) -> Result<&'v Value, PatchError> {
    match item {
        Value::Object(m) => merge_key_value_in(m, key),
        other => Err(PatchError::StrategicPatchFailed(format!(
            "expected a map, but received a {}",
            go_kind(other)
        ))),
    }
}

fn merge_key_value_in<'v>(
    item: &'v Map<String, Value>,
    key: &str,
) -> Result<&'v Value, PatchError> {
    item.get(key).ok_or_else(|| {
        PatchError::StrategicPatchFailed(format!(
            "map: {} does not contain declared merge key: {key}",
            go_fmt_map(item)
        ))
    })
}

/// `<prefix>/<field>` → `<field>`; a key that only starts like the prefix is malformed.
fn extract_key<'k>(key: &'k str, prefix: &str, err: &str) -> Result<&'k str, PatchError> {
    match key.split_once('/') {
        Some((p, field)) if p == prefix => Ok(field),
        _ => Err(PatchError::BadStrategicPatch(err.to_string())),
    }
}

/// Removes `key` from `map` keeping the other keys in place: with serde_json's
/// `preserve_order` (which another crate of the workspace may switch on) `Map::remove` would
/// move the last key into the hole and reorder the object.
fn take_key(map: &mut Map<String, Value>, key: &str) -> Option<Value> {
    let value = map.get_mut(key).map(std::mem::take)?;
    map.retain(|k, _| k != key);
    Some(value)
}

/// Go compares decoded JSON numbers as float64: `80` and `80.0` are the same merge key.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The Go type name `encoding/json` uses in "cannot unmarshal X" messages.
fn go_json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The reflect.Kind name of a decoded JSON value.
fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "invalid",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

/// A value as Go's `%v` prints a decoded JSON value, so error messages read like upstream's.
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_fmt).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => go_fmt_map(m),
    }
}

fn go_fmt_map(m: &Map<String, Value>) -> String {
    // Go prints map keys sorted.
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let parts: Vec<String> = entries
        .into_iter()
        .map(|(k, v)| format!("{k}:{}", go_fmt(v)))
        .collect();
    format!("map[{}]", parts.join(" "))
}
