//! Tables of custom resources: a Name column, then the version's `additionalPrinterColumns`
//! (or upstream's default `Age`), each cell found with the column's JSONPath and typed as
//! upstream's tableconvertor types it (`date` cells are ages; a missing value is `null`,
//! which kubectl prints as `<none>`).

use k8s_openapi::jiff::Timestamp;
use pernode_printers::IncludeObject;
use pernode_resources::{PrinterColumn, ResourceInfo};
use serde_json::{Map, Value, json};

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// One step of a JSONPath.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    /// `[?(@.a.b == "x")]` (or `!=`); `None` literal: the field exists.
    Filter(Vec<String>, bool, Option<Value>),
}

/// The JSONPath subset printer columns use: `.a.b`, `['a.b']`, `[0]`, `[-1]`, `[*]`,
/// `[?(@.type=="Ready")]`, optionally wrapped in `{}`.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath(Vec<Step>);

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let mut s = text.trim();
        if let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
            s = inner.trim();
        }
        let s = s.strip_prefix('$').unwrap_or(s);
        let chars: Vec<char> = s.chars().collect();
        let mut steps = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    i += 1;
                    let mut name = String::new();
                    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                        if chars[i] == '\\' && i + 1 < chars.len() {
                            i += 1;
                        }
                        name.push(chars[i]);
                        i += 1;
                    }
                    if name.is_empty() {
                        return Err(format!("empty field name in {text:?}"));
                    }
                    if name == "*" {
                        steps.push(Step::All);
                    } else {
                        steps.push(Step::Field(name));
                    }
                }
                '[' => {
                    let close = chars[i..]
                        .iter()
                        .position(|c| *c == ']')
                        .ok_or_else(|| format!("unterminated [ in {text:?}"))?;
                    let inner: String = chars[i + 1..i + close].iter().collect();
                    steps.push(
                        bracket(inner.trim())
                            .ok_or_else(|| format!("unsupported [{inner}] in {text:?}"))?,
                    );
                    i += close + 1;
                }
                c => return Err(format!("unexpected {c:?} in {text:?}")),
            }
        }
        if steps.is_empty() {
            return Err(format!("empty path {text:?}"));
        }
        Ok(JsonPath(steps))
    }

    /// The values the path selects in `root`, in order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        let mut current = vec![root];
        for step in &self.0 {
            let mut next = Vec::new();
            for v in current {
                match step {
                    Step::Field(name) => next.extend(v.get(name)),
                    Step::Index(i) => {
                        if let Some(items) = v.as_array() {
                            let idx = if *i < 0 { items.len() as i64 + i } else { *i };
                            next.extend(usize::try_from(idx).ok().and_then(|i| items.get(i)));
                        }
                    }
                    Step::All => match v {
                        Value::Array(items) => next.extend(items.iter()),
                        Value::Object(m) => next.extend(m.values()),
                        _ => {}
                    },
                    Step::Filter(path, equal, literal) => {
                        for item in v.as_array().into_iter().flatten() {
                            let found = path.iter().try_fold(item, |x, k| x.get(k));
                            let keep = match (found, literal) {
                                (Some(f), Some(lit)) => (f == lit) == *equal,
                                (None, Some(_)) => !*equal,
                                (f, None) => f.is_some(),
                            };
                            if keep {
                                next.push(item);
                            }
                        }
                    }
                }
            }
            current = next;
        }
        current
    }
}

fn bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::All);
    }
    if let Ok(i) = inner.parse::<i64>() {
        return Some(Step::Index(i));
    }
    if let Some(q) = inner
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .or_else(|| inner.strip_prefix('"').and_then(|r| r.strip_suffix('"')))
    {
        return Some(Step::Field(q.to_string()));
    }
    let expr = inner.strip_prefix("?(")?.strip_suffix(')')?.trim();
    let (lhs, equal, rhs) = if let Some((l, r)) = expr.split_once("==") {
        (l, true, Some(r))
    } else if let Some((l, r)) = expr.split_once("!=") {
        (l, false, Some(r))
    } else {
        (expr, true, None)
    };
    let path: Vec<String> = lhs
        .trim()
        .strip_prefix('@')?
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let literal = match rhs.map(str::trim) {
        None => None,
        Some(r) => Some(
            r.strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .or_else(|| r.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                .map(|s| Value::String(s.to_string()))
                .or_else(|| serde_json::from_str(r).ok())?,
        ),
    };
    Some(Step::Filter(path, equal, literal))
}

/// The columns of a custom resource's Table (upstream's `serveDefaultColumnsIfEmpty`).
fn columns(info: &ResourceInfo) -> Vec<PrinterColumn> {
    let declared = info
        .custom
        .map(|c| c.printer_columns.clone())
        .unwrap_or_default();
    if !declared.is_empty() {
        return declared;
    }
    vec![PrinterColumn {
        name: "Age".into(),
        ty: "date".into(),
        format: String::new(),
        description: AGE_DESCRIPTION.into(),
        priority: 0,
        json_path: ".metadata.creationTimestamp".into(),
    }]
}

/// A cell as upstream's `cellForJSONValue` (and jsonpath's printing for `string` columns).
fn cell(ty: &str, value: &Value, now: Timestamp) -> Value {
    match (ty, value) {
        (_, Value::Null) => Value::Null,
        ("integer", Value::Number(n)) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_f64().map(|f| Value::from(f as i64)))
            .unwrap_or(Value::Null),
        ("number", Value::Number(n)) => n.as_f64().map(Value::from).unwrap_or(Value::Null),
        ("boolean", Value::Bool(b)) => Value::Bool(*b),
        ("date", Value::String(s)) => match s.parse::<Timestamp>() {
            Ok(t) => Value::String(pernode_core::duration::human_signed_duration(
                now.duration_since(t),
            )),
            Err(_) => Value::String("<invalid>".into()),
        },
        ("string", Value::String(s)) => Value::String(s.clone()),
        ("string", other) => Value::String(other.to_string()),
        _ => Value::Null,
    }
}

/// One row of `object`.
fn row(
    info: &ResourceInfo,
    cols: &[(PrinterColumn, Option<JsonPath>)],
    object: &Value,
    include: IncludeObject,
    now: Timestamp,
) -> Value {
    let mut cells = vec![
        object
            .pointer("/metadata/name")
            .cloned()
            .unwrap_or_else(|| json!("")),
    ];
    for (col, path) in cols {
        let found = path
            .as_ref()
            .and_then(|p| p.find(object).into_iter().next());
        cells.push(found.map_or(Value::Null, |v| cell(&col.ty, v, now)));
    }
    let mut r = Map::new();
    r.insert("cells".into(), Value::Array(cells));
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            r.insert(
                "object".into(),
                json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
                }),
            );
        }
        IncludeObject::Object => {
            let mut o = object.clone();
            if o.get("kind").is_none() {
                o["kind"] = json!(info.kind);
            }
            if o.get("apiVersion").is_none() {
                o["apiVersion"] = json!(info.api_version());
            }
            r.insert("object".into(), o);
        }
    }
    Value::Object(r)
}

/// A `meta.k8s.io/v1` Table of custom objects (stored JSON each).
pub fn table(
    info: &ResourceInfo,
    objects: &[&[u8]],
    include: IncludeObject,
    now: Timestamp,
    resource_version: &str,
    continue_token: Option<&str>,
) -> Result<Vec<u8>, serde_json::Error> {
    let cols: Vec<(PrinterColumn, Option<JsonPath>)> = columns(info)
        .into_iter()
        .map(|c| {
            let p = JsonPath::parse(&c.json_path).ok();
            (c, p)
        })
        .collect();
    let mut definitions = vec![json!({
        "name": "Name", "type": "string", "format": "name",
        "description": NAME_DESCRIPTION, "priority": 0,
    })];
    for (c, _) in &cols {
        let description = if c.description.is_empty() {
            format!(
                "Custom resource definition column (in JSONPath format): {}",
                c.json_path
            )
        } else {
            c.description.clone()
        };
        definitions.push(json!({
            "name": c.name, "type": c.ty, "format": c.format,
            "description": description, "priority": c.priority,
        }));
    }
    let mut rows = Vec::with_capacity(objects.len());
    for bytes in objects {
        let object: Value = serde_json::from_slice(bytes)?;
        rows.push(row(info, &cols, &object, include, now));
    }
    let mut metadata = Map::new();
    if !resource_version.is_empty() {
        metadata.insert("resourceVersion".into(), json!(resource_version));
    }
    if let Some(token) = continue_token.filter(|t| !t.is_empty()) {
        metadata.insert("continue".into(), json!(token));
    }
    serde_json::to_vec(&json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": definitions,
        "rows": rows,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let obj = json!({"spec": {"replicas": 3, "a.b": "dotted"},
            "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        let one = |p: &str| {
            JsonPath::parse(p)
                .expect(p)
                .find(&obj)
                .first()
                .map(|v| (*v).clone())
        };
        assert_eq!(one(".spec.replicas"), Some(json!(3)));
        assert_eq!(one("{.spec.replicas}"), Some(json!(3)));
        assert_eq!(one(".spec['a.b']"), Some(json!("dotted")));
        assert_eq!(one(r".spec.a\.b"), Some(json!("dotted")));
        assert_eq!(one(".status.conditions[-1].type"), Some(json!("Ready")));
        assert_eq!(
            one(r#".status.conditions[?(@.type=="Ready")].status"#),
            Some(json!("True"))
        );
        assert_eq!(one(".spec.missing"), None);
        assert!(JsonPath::parse("spec").is_err());
        assert!(JsonPath::parse(".spec[").is_err());
    }

    #[test]
    fn cells_are_typed_as_upstream() {
        let now: Timestamp = "2024-01-01T00:10:00Z".parse().expect("time");
        assert_eq!(cell("integer", &json!(2.7), now), json!(2));
        assert_eq!(cell("number", &json!(2), now), json!(2.0));
        assert_eq!(cell("boolean", &json!("x"), now), Value::Null);
        assert_eq!(
            cell("date", &json!("2024-01-01T00:00:00Z"), now),
            json!("10m")
        );
        assert_eq!(cell("date", &json!("yesterday"), now), json!("<invalid>"));
        assert_eq!(cell("string", &json!({"a": 1}), now), json!("{\"a\":1}"));
    }
}
