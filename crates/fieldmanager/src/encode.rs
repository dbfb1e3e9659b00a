//! The `FieldsV1` encoding of a [`Set`] (structured-merge-diff's `serialize.go` and
//! `serialize-pe.go`): a JSON object per level whose members are path elements written
//! `f:<field>`, `k:<key fields as a JSON object>`, `v:<JSON value>` or `i:<index>`; an element
//! that is a member alone maps to `{}`, one with children maps to its children's object, which
//! holds `".": {}` when the element is also a member itself.

use serde_json::{Map, Value};

use crate::path::PathElement;
use crate::set::Set;

/// Why a `fieldsV1` value cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("expected an object, got {0}")]
    NotAnObject(String),
    #[error("unknown path element {0:?}")]
    Element(String),
}

/// The text of one path element as a `fieldsV1` member name.
pub fn element_text(element: &PathElement) -> String {
    match element {
        PathElement::Field(name) => format!("f:{name}"),
        PathElement::Key(fields) => {
            // Written by hand so the key fields keep their (sorted) order whatever the map
            // type's ordering is.
            let parts: Vec<String> = fields
                .iter()
                .map(|(n, v)| format!("{}:{}", Value::String(n.clone()), v))
                .collect();
            format!("k:{{{}}}", parts.join(","))
        }
        PathElement::Value(v) => format!("v:{v}"),
        PathElement::Index(i) => format!("i:{i}"),
    }
}

/// Reads one `fieldsV1` member name.
pub fn parse_element(text: &str) -> Result<PathElement, DecodeError> {
    let bad = || DecodeError::Element(text.to_string());
    let (kind, rest) = text.split_at_checked(2).ok_or_else(bad)?;
    match kind {
        "f:" => Ok(PathElement::Field(rest.to_string())),
        "k:" => {
            let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(rest) else {
                return Err(bad());
            };
            let mut fields: Vec<(String, Value)> = fields.into_iter().collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
        "v:" => serde_json::from_str(rest)
            .map(PathElement::Value)
            .map_err(|_| bad()),
        "i:" => rest.parse().map(PathElement::Index).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// The set as a `fieldsV1` JSON value.
pub fn to_fields_v1(set: &Set) -> Value {
    Value::Object(level(set, false))
}

fn level(set: &Set, is_member: bool) -> Map<String, Value> {
    let mut out = Map::new();
    if is_member {
        out.insert(".".into(), Value::Object(Map::new()));
    }
    // Members and children merged in element order, as upstream writes them.
    let mut members = set.members.iter().peekable();
    let mut children = set.children.iter().peekable();
    loop {
        let take_member = match (members.peek(), children.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(m), Some((c, _))) => *m < *c,
        };
        if take_member {
            if let Some(m) = members.next() {
                out.insert(element_text(m), Value::Object(Map::new()));
            }
            continue;
        }
        if let Some((element, child)) = children.next() {
            let also_member = members.peek() == Some(&element);
            if also_member {
                members.next();
            }
            out.insert(
                element_text(element),
                Value::Object(level(child, also_member)),
            );
        }
    }
    out
}

/// Reads a `fieldsV1` value.
pub fn from_fields_v1(value: &Value) -> Result<Set, DecodeError> {
    let Value::Object(members) = value else {
        return Err(DecodeError::NotAnObject(value.to_string()));
    };
    let mut set = Set::new();
    read_level(members, &mut set)?;
    Ok(set)
}

fn read_level(members: &Map<String, Value>, set: &mut Set) -> Result<(), DecodeError> {
    for (name, value) in members {
        if name == "." {
            continue;
        }
        let element = parse_element(name)?;
        let Value::Object(inner) = value else {
            return Err(DecodeError::NotAnObject(value.to_string()));
        };
        if inner.is_empty() || inner.contains_key(".") {
            set.members.insert(element.clone());
        }
        if inner.keys().any(|k| k != ".") {
            let mut child = Set::new();
            read_level(inner, &mut child)?;
            if !child.is_empty() {
                set.children.insert(element, child);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A DaemonSet's set as upstream's kubectl-client-side-apply entry writes it.
    #[test]
    fn round_trips_upstream_fields_v1() {
        let v1 = json!({
            "f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}},
            "f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {},
                    "f:ports": {".": {}, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}
            }}}},
            "f:metadata2": {"f:finalizers": {"v:\"a\"": {}}, "f:list": {"i:0": {}}}
        });
        let set = from_fields_v1(&v1).unwrap();
        assert!(set.has(&[
            PathElement::Field("metadata".into()),
            PathElement::Field("annotations".into())
        ]));
        assert_eq!(to_fields_v1(&set), v1);
        assert_eq!(
            element_text(&PathElement::Key(vec![
                ("containerPort".into(), json!(80)),
                ("protocol".into(), json!("TCP"))
            ])),
            r#"k:{"containerPort":80,"protocol":"TCP"}"#
        );
    }

    #[test]
    fn rejects_unknown_elements() {
        assert!(from_fields_v1(&json!({"x:y": {}})).is_err());
        assert!(from_fields_v1(&json!({"f:y": 1})).is_err());
        assert!(from_fields_v1(&json!([])).is_err());
    }
}
