//! What a custom object goes through on every write, against its version's
//! `openAPIV3Schema`, in upstream's order: pruning of unknown fields
//! (apiserver/schema/pruning), defaulting (apiserver/schema/defaulting), then validation
//! (apiserver/validation, kube-openapi's validator) with upstream's messages.
//!
//! Schemas are JSON (`JSONSchemaProps` as the CRD stores them); the CRD's validation
//! ([`super::validation`]) admitted only structural ones, so every node says its type and
//! objects list their fields in `properties` or their values in `additionalProperties`.

use pernode_admission::FieldError;
use serde_json::{Map, Value};

fn flag(s: &Value, name: &str) -> bool {
    s.get(name).and_then(Value::as_bool) == Some(true)
}

fn child_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Removes the fields `schema` does not specify from `value` (the whole object at the root:
/// `apiVersion`, `kind` and `metadata` are kept there, and in embedded resources), unless a
/// node preserves unknown fields. Returns the pruned paths (`spec.bogus`), sorted.
pub fn prune(value: &mut Value, schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    prune_at(value, schema, "", true, &mut out);
    out.sort();
    out
}

fn prune_at(value: &mut Value, schema: &Value, path: &str, root: bool, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
            let embedded = root || flag(schema, "x-kubernetes-embedded-resource");
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties");
            let mut removed = Vec::new();
            for (key, child) in map.iter_mut() {
                let child_schema = props.and_then(|p| p.get(key)).or(match additional {
                    Some(a @ Value::Object(_)) => Some(a),
                    _ => None,
                });
                let here = child_path(path, key);
                match child_schema {
                    Some(s) => prune_at(child, s, &here, false, out),
                    None if embedded
                        && ["apiVersion", "kind", "metadata"].contains(&key.as_str()) => {}
                    None if preserve || additional == Some(&Value::Bool(true)) => {}
                    None => removed.push(key.clone()),
                }
            }
            for key in removed {
                map.remove(&key);
                out.push(child_path(path, &key));
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune_at(item, item_schema, &format!("{path}[{i}]"), false, out);
                }
            }
        }
        _ => {}
    }
}

/// Applies the schema's `default`s to missing fields (and to `null` in fields that are not
/// `nullable`; a `null` there without a default is dropped), at every level, as upstream's
/// structural defaulting does after pruning.
pub fn default(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (key, prop) in props {
                    let nullable = flag(prop, "nullable");
                    match (map.get(key), prop.get("default")) {
                        (None, Some(d)) => {
                            map.insert(key.clone(), d.clone());
                        }
                        (Some(Value::Null), Some(d)) if !nullable => {
                            map.insert(key.clone(), d.clone());
                        }
                        (Some(Value::Null), None) if !nullable => {
                            map.remove(key);
                        }
                        _ => {}
                    }
                }
                for (key, child) in map.iter_mut() {
                    if let Some(prop) = props.get(key) {
                        default(child, prop);
                    }
                }
            } else if let Some(additional @ Value::Object(_)) = schema.get("additionalProperties") {
                for child in map.values_mut() {
                    default(child, additional);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    default(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

/// The type name kube-openapi reports for a value (`"string"`, `"integer"`, ...).
fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn matches_type(v: &Value, ty: &str) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        "number" => v.is_number(),
        _ => true,
    }
}

/// Go's `%v` of a float64 schema bound (`10`, `2.5`).
fn number_text(v: &Value) -> String {
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 1e21 => format!("{}", f as i64),
        Some(f) => f.to_string(),
        None => v.to_string(),
    }
}

/// The field errors of `value` against `schema`, worded as upstream's
/// `validation.ValidateCustomResource` (kube-openapi's messages, `in body`).
pub fn validate(value: &Value, schema: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    validate_at(value, schema, "", &mut errs);
    errs
}

fn validate_at(value: &Value, schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if value.is_null() && flag(schema, "nullable") {
        return;
    }
    let int_or_string = flag(schema, "x-kubernetes-int-or-string");
    if int_or_string {
        if !(value.is_string() || matches_type(value, "integer")) {
            // kube-openapi checks the anyOf upstream requires alongside; its wording.
            errs.push(FieldError::invalid(
                path,
                type_name(value),
                &format!(
                    "{path} in body must be of type integer,string: {:?}",
                    type_name(value)
                ),
            ));
            return;
        }
    } else if let Some(ty) = schema.get("type").and_then(Value::as_str)
        && !matches_type(value, ty)
    {
        errs.push(FieldError::invalid(
            path,
            type_name(value),
            &format!(
                "{path} in body must be of type {ty}: {:?}",
                type_name(value)
            ),
        ));
        return;
    }
    if let Some(Value::Array(allowed)) = schema.get("enum")
        && !allowed.contains(value)
    {
        let names: Vec<String> = allowed
            .iter()
            .map(|a| match a {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        errs.push(FieldError::not_supported(path, value.clone(), &names));
    }
    match value {
        Value::Number(_) => validate_number(value, schema, path, errs),
        Value::String(s) => validate_string(s, schema, path, errs),
        Value::Array(items) => {
            let n = items.len() as i64;
            if let Some(max) = schema.get("maxItems").and_then(Value::as_i64)
                && n > max
            {
                errs.push(FieldError::too_many(path, n, max));
            }
            if let Some(min) = schema.get("minItems").and_then(Value::as_i64)
                && n < min
            {
                errs.push(FieldError::invalid(
                    path,
                    value.clone(),
                    &format!("{path} in body should have at least {min} items"),
                ));
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    validate_at(item, item_schema, &format!("{path}[{i}]"), errs);
                }
            }
        }
        Value::Object(map) => validate_object(map, schema, path, errs),
        _ => {}
    }
    for (i, sub) in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let _ = i;
        validate_at(value, sub, path, errs);
    }
    for (key, wording) in [
        ("anyOf", "must validate at least one schema (anyOf)"),
        ("oneOf", "must validate one and only one schema (oneOf)"),
    ] {
        if let Some(Value::Array(subs)) = schema.get(key) {
            let passing = subs
                .iter()
                .filter(|sub| {
                    let mut e = Vec::new();
                    validate_at(value, sub, path, &mut e);
                    e.is_empty()
                })
                .count();
            let ok = if key == "anyOf" {
                passing > 0
            } else {
                passing == 1
            };
            if !(ok || (int_or_string && key == "anyOf")) {
                errs.push(FieldError::invalid(
                    path,
                    value.clone(),
                    &format!("{path} in body {wording}"),
                ));
            }
        }
    }
    if let Some(not) = schema.get("not") {
        let mut e = Vec::new();
        validate_at(value, not, path, &mut e);
        if e.is_empty() {
            errs.push(FieldError::invalid(
                path,
                value.clone(),
                &format!("{path} in body must not validate the schema (not)"),
            ));
        }
    }
}

fn validate_number(value: &Value, schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Some(n) = value.as_f64() else { return };
    if let Some(max) = schema.get("maximum") {
        let exclusive = flag(schema, "exclusiveMaximum");
        let bound = max.as_f64().unwrap_or(f64::INFINITY);
        if (exclusive && n >= bound) || (!exclusive && n > bound) {
            let relation = if exclusive {
                "less than"
            } else {
                "less than or equal to"
            };
            errs.push(FieldError::invalid(
                path,
                value.clone(),
                &format!("{path} in body should be {relation} {}", number_text(max)),
            ));
        }
    }
    if let Some(min) = schema.get("minimum") {
        let exclusive = flag(schema, "exclusiveMinimum");
        let bound = min.as_f64().unwrap_or(f64::NEG_INFINITY);
        if (exclusive && n <= bound) || (!exclusive && n < bound) {
            let relation = if exclusive {
                "greater than"
            } else {
                "greater than or equal to"
            };
            errs.push(FieldError::invalid(
                path,
                value.clone(),
                &format!("{path} in body should be {relation} {}", number_text(min)),
            ));
        }
    }
    if let Some(m) = schema.get("multipleOf").and_then(Value::as_f64)
        && m > 0.0
        && (n / m).fract() != 0.0
    {
        errs.push(FieldError::invalid(
            path,
            value.clone(),
            &format!(
                "{path} in body should be a multiple of {}",
                number_text(&schema["multipleOf"])
            ),
        ));
    }
}

fn validate_string(s: &str, schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let chars = s.chars().count() as i64;
    if let Some(max) = schema.get("maxLength").and_then(Value::as_i64)
        && chars > max
    {
        errs.push(FieldError::too_long(path, max));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_i64)
        && chars < min
    {
        errs.push(FieldError::invalid(
            path,
            s,
            &format!("{path} in body should be at least {min} chars long"),
        ));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        // An unparsable pattern was refused with the CRD.
        if regex::Regex::new(pattern).is_ok_and(|re| !re.is_match(s)) {
            errs.push(FieldError::invalid(
                path,
                s,
                &format!("{path} in body should match '{pattern}'"),
            ));
        }
    }
    if let Some(format) = schema.get("format").and_then(Value::as_str)
        && super::formats::check(format, s) == Some(false)
    {
        errs.push(FieldError::invalid(
            path,
            s,
            &format!(
                "{path} in body must be of type {format}: {}",
                pernode_admission::go_quote(s)
            ),
        ));
    }
}

fn validate_object(
    map: &Map<String, Value>,
    schema: &Value,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if let Some(Value::Array(required)) = schema.get("required") {
        for key in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(key) {
                errs.push(FieldError::required(&child_path(path, key), ""));
            }
        }
    }
    let n = map.len() as i64;
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_i64)
        && n > max
    {
        errs.push(FieldError::too_many(path, n, max));
    }
    if let Some(min) = schema.get("minProperties").and_then(Value::as_i64)
        && n < min
    {
        errs.push(FieldError::invalid(
            path,
            Value::Object(map.clone()),
            &format!("{path} in body should have at least {min} properties"),
        ));
    }
    if flag(schema, "x-kubernetes-embedded-resource") {
        for key in ["apiVersion", "kind"] {
            if map
                .get(key)
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
            {
                errs.push(FieldError::required(
                    &child_path(path, key),
                    "must not be empty",
                ));
            }
        }
    }
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    for (key, child) in map {
        // The root's metadata is ObjectMeta's business (validated typed).
        if path.is_empty() && key == "metadata" {
            continue;
        }
        let child_schema = props.and_then(|p| p.get(key)).or(match additional {
            Some(a @ Value::Object(_)) => Some(a),
            _ => None,
        });
        if let Some(s) = child_schema {
            validate_at(child, s, &child_path(path, key), errs);
        }
    }
}

/// Upstream's `listtype.ValidateListSetsAndMaps`: in a list marked
/// `x-kubernetes-list-type: set` every element is unique, and in one marked `map` every
/// element is an object (or null) whose `x-kubernetes-list-map-keys` values are unique. Each
/// duplicate is reported once, at its first repeat, as `Duplicate value` (the element of a
/// set, the key fields of a map).
pub fn validate_list_sets_and_maps(value: &Value, schema: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    lists_in_object(value, schema, "", &mut errs);
    errs
}

fn lists_in_object(value: &Value, schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Value::Object(map) = value else { return };
    if let Some(additional @ Value::Object(_)) = schema.get("additionalProperties") {
        for (k, v) in map {
            lists_at(v, additional, &format!("{path}[{k}]"), errs);
        }
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (k, v) in map {
            if let Some(sub) = props.get(k) {
                lists_at(v, sub, &child_path(path, k), errs);
            }
        }
    }
}

fn lists_at(value: &Value, schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let Value::Array(items) = value else {
        return lists_in_object(value, schema, path, errs);
    };
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            for i in first_repeats(items) {
                errs.push(duplicate(&format!("{path}[{i}]"), &items[i]));
            }
        }
        Some("map") => list_map(items, schema, path, errs),
        _ => {}
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            lists_at(item, item_schema, &format!("{path}[{i}]"), errs);
        }
    }
}

fn list_map(items: &[Value], schema: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let Some((i, x)) = items
        .iter()
        .enumerate()
        .find(|(_, x)| !(x.is_null() || x.is_object()))
    {
        errs.push(FieldError::invalid(
            &format!("{path}[{i}]"),
            x.clone(),
            "must be an object for an array of list-type map",
        ));
        return;
    }
    let key_fields: Vec<&str> = schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // The key fields present in each element; a missing field stays out of the tuple, so
    // two elements without it collide.
    let keys: Vec<Value> = items
        .iter()
        .map(|x| {
            let mut key = Map::new();
            for f in &key_fields {
                if let Some(v) = x.get(*f) {
                    key.insert((*f).to_string(), v.clone());
                }
            }
            Value::Object(key)
        })
        .collect();
    for i in first_repeats(&keys) {
        errs.push(duplicate(&format!("{path}[{i}]"), &keys[i]));
    }
}

/// The index of each value's second appearance, in order.
fn first_repeats(items: &[Value]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, x) in items.iter().enumerate() {
        let before = items[..i].iter().filter(|y| *y == x).count();
        if before == 1 {
            out.push(i);
        }
    }
    out
}

fn duplicate(path: &str, v: &Value) -> FieldError {
    let mut e = FieldError::duplicate(path, v.clone());
    if v.is_object() || v.is_array() {
        e.go_value = Some(go_interface(v));
    }
    e
}

/// Go's `%#v` of a decoded JSON value held in an `interface{}`.
fn go_interface(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => pernode_admission::go_quote(s),
        Value::Array(a) => format!(
            "[]interface {{}}{{{}}}",
            a.iter().map(go_interface).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => format!(
            "map[string]interface {{}}{{{}}}",
            m.iter()
                .map(|(k, v)| format!("{}:{}", pernode_admission::go_quote(k), go_interface(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["size"],
                    "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
                        "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
                        "name": {"type": "string", "maxLength": 5, "minLength": 2, "pattern": "^[a-z]+$"},
                        "port": {"x-kubernetes-int-or-string": true},
                        "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                 "properties": {"known": {"type": "object", "properties": {"a": {"type": "string"}}}}},
                        "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string", "default": "x"}}}},
                        "maybe": {"type": "string", "nullable": true},
                        "gone": {"type": "string"},
                        "cidr": {"type": "string", "format": "cidr"},
                        "count": {"type": "integer", "format": "int32"},
                        "odd": {"type": "string", "format": "no-such-format"}
                    }
                },
                "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
            }
        })
    }

    #[test]
    fn pruning_drops_unknown_fields_and_reports_their_paths() {
        let mut obj = json!({
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
            "bogus": 1,
            "spec": {"size": 2, "extra": true, "labels": {"a": "b"},
                     "free": {"anything": 1, "known": {"a": "x", "b": "y"}},
                     "items": [{"a": "q", "z": 1}]},
        });
        let pruned = prune(&mut obj, &schema());
        assert_eq!(
            pruned,
            [
                "bogus",
                "spec.extra",
                "spec.free.known.b",
                "spec.items[0].z"
            ]
        );
        assert_eq!(
            obj,
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                   "spec": {"size": 2, "labels": {"a": "b"},
                            "free": {"anything": 1, "known": {"a": "x"}},
                            "items": [{"a": "q"}]}})
        );
    }

    #[test]
    fn defaulting_fills_missing_fields_and_non_nullable_nulls() {
        let mut obj = json!({"spec": {"color": null, "gone": null, "maybe": null, "items": [{}]}});
        default(&mut obj, &schema());
        assert_eq!(
            obj,
            json!({"spec": {"size": 1, "color": "red", "maybe": null, "items": [{"a": "x"}]}})
        );
    }

    fn messages(obj: Value) -> Vec<String> {
        validate(&obj, &schema())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn list_sets_and_maps_are_unique() {
        // Calico's GlobalNetworkPolicy `types` is a set; a list-type map keyed on `name`.
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "types": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "ports": {"type": "array", "x-kubernetes-list-type": "map",
                      "x-kubernetes-list-map-keys": ["name", "protocol"],
                      "items": {"type": "object", "properties": {
                          "name": {"type": "string"}, "protocol": {"type": "string"}}}},
            "byName": {"type": "object", "additionalProperties": {
                "type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"}}},
        }}}});
        let m = |obj: Value| -> Vec<String> {
            validate_list_sets_and_maps(&obj, &schema)
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert!(
            m(json!({"spec": {"types": ["Ingress", "Egress"], "ports": [
                {"name": "a", "protocol": "TCP"}, {"name": "a", "protocol": "UDP"}]}}))
            .is_empty()
        );
        assert_eq!(
            m(json!({"spec": {"types": ["Ingress", "Ingress", "Ingress"]}})),
            [r#"spec.types[1]: Duplicate value: "Ingress""#]
        );
        assert_eq!(
            m(
                json!({"spec": {"ports": [{"name": "a", "protocol": "TCP"}, {"protocol": "TCP", "name": "a"}]}})
            ),
            [
                r#"spec.ports[1]: Duplicate value: map[string]interface {}{"name":"a", "protocol":"TCP"}"#
            ]
        );
        assert_eq!(
            m(json!({"spec": {"ports": [{"name": "a"}, "b"]}})),
            [
                r#"spec.ports[1]: Invalid value: "b": must be an object for an array of list-type map"#
            ]
        );
        assert_eq!(
            m(json!({"spec": {"byName": {"x": [1, 2, 1]}}})),
            ["spec.byName[x][2]: Duplicate value: 1"]
        );
    }

    #[test]
    fn validation_messages_are_upstreams() {
        assert_eq!(
            messages(json!({"spec": {"size": "big"}})),
            [
                r#"spec.size: Invalid value: "string": spec.size in body must be of type integer: "string""#
            ]
        );
        assert_eq!(messages(json!({"spec": {}})), ["spec.size: Required value"]);
        assert_eq!(
            messages(json!({"spec": {"size": 11, "color": "pink"}})),
            [
                r#"spec.color: Unsupported value: "pink": supported values: "red", "blue""#,
                "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
            ]
        );
        assert_eq!(
            messages(json!({"spec": {"size": 0}})),
            ["spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"]
        );
        assert_eq!(
            messages(json!({"spec": {"size": 1, "name": "ABCDEFG"}})),
            [
                "spec.name: Too long: may not be more than 5 bytes",
                r#"spec.name: Invalid value: "ABCDEFG": spec.name in body should match '^[a-z]+$'"#,
            ]
        );
        assert_eq!(
            messages(json!({"spec": {"size": 1, "name": "a"}})),
            [r#"spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long"#]
        );
        assert_eq!(
            messages(json!({"spec": {"size": 1, "tags": ["a", "b", "c"]}})),
            ["spec.tags: Too many: 3: must have at most 2 items"]
        );
        assert!(messages(json!({"spec": {"size": 1, "port": 80}})).is_empty());
        assert!(messages(json!({"spec": {"size": 1, "port": "http"}})).is_empty());
        assert_eq!(
            messages(json!({"spec": {"size": 1, "port": true}})).len(),
            1
        );
        assert_eq!(
            messages(json!({"spec": {"size": 1, "labels": {"a": 1}}})),
            [
                r#"spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer""#
            ]
        );
        assert!(messages(json!({"spec": {"size": 1, "maybe": null}})).is_empty());
        // Calico's IPPool: `cidr` is `format: cidr`.
        assert_eq!(
            messages(json!({"spec": {"size": 1, "cidr": "192.168.0.0"}})),
            [
                r#"spec.cidr: Invalid value: "192.168.0.0": spec.cidr in body must be of type cidr: "192.168.0.0""#
            ]
        );
        assert!(messages(json!({"spec": {"size": 1, "cidr": "192.168.0.0/16"}})).is_empty());
        // Number formats and unknown ones are not checked.
        assert!(messages(json!({"spec": {"size": 1, "count": 5, "odd": "x"}})).is_empty());
    }
}
