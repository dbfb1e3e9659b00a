//! Helpers shared by the per-group printer tests: a fixed clock, stored objects in, named
//! cells out.

#![allow(dead_code)]

use k8s_openapi::jiff::Timestamp;
use pernode_printers::{IncludeObject, column_definitions, row, table};
use serde_json::Value;

pub const NOW: &str = "2025-01-01T12:00:00Z";

pub fn now() -> Timestamp {
    NOW.parse().expect("valid test timestamp")
}

/// `NOW` minus `secs` seconds, as a Kubernetes timestamp string.
pub fn ago(secs: i64) -> String {
    Timestamp::from_second(now().as_second() - secs)
        .expect("in range")
        .to_string()
}

/// The cells of `obj`'s row, keyed by column name (every column, wide ones too).
pub fn named(resource: &str, obj: &Value) -> Value {
    let names: Vec<String> = column_definitions(resource)
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_owned())
        .collect();
    let bytes = serde_json::to_vec(obj).expect("serializable");
    let r = row(resource, &bytes, IncludeObject::None, now()).expect("row renders");
    let cells = r["cells"].as_array().expect("cells array").clone();
    assert_eq!(
        names.len(),
        cells.len(),
        "one cell per column for {resource}"
    );
    Value::Object(names.into_iter().zip(cells).collect())
}

/// The `(name, type, priority)` of each column of `resource`.
pub fn columns(resource: &str) -> Vec<(String, String, i64)> {
    column_definitions(resource)
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_owned(),
                c["type"].as_str().expect("type").to_owned(),
                c["priority"].as_i64().expect("priority"),
            )
        })
        .collect()
}

/// Shorthand for an expected column list.
pub fn cols(v: &[(&str, &str, i64)]) -> Vec<(String, String, i64)> {
    v.iter()
        .map(|(n, t, p)| (n.to_string(), t.to_string(), *p))
        .collect()
}

/// A one-row Table of `obj`, parsed.
pub fn one_row_table(resource: &str, obj: &Value, include: IncludeObject) -> Value {
    let bytes = serde_json::to_vec(obj).expect("serializable");
    let out = table(resource, &[&bytes], include, now(), "7", None).expect("table renders");
    serde_json::from_slice(&out).expect("valid JSON")
}
