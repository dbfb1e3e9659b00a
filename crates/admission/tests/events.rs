//! Event rules: upstream's legacy validation (both group versions) and the strict rules of
//! events.k8s.io/v1 creates and updates, with upstream's messages.

use k8s_openapi::api::core::v1::Event;
use pernode_admission::{FieldError, validate};
use serde_json::{Value, json};

fn msgs(errs: &[FieldError]) -> Vec<String> {
    errs.iter().map(|e| e.to_string()).collect()
}

fn event(v: Value) -> Event {
    serde_json::from_value(v).expect("event")
}

/// A valid event as events.k8s.io/v1 writes it, in its stored (core) form.
fn v1_event() -> Value {
    json!({"metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "eventTime": "2024-01-02T03:04:05.000000Z", "reportingComponent": "example.com/ctl",
        "reportingInstance": "ctl-1", "action": "Act", "reason": "Why", "type": "Normal"})
}

#[test]
fn legacy_rules_without_event_time() {
    let e = event(json!({"metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "other"}}));
    assert_eq!(
        msgs(&validate::event(&e)),
        vec![r#"involvedObject.namespace: Invalid value: "other": does not match event.namespace"#]
    );
    // A cluster-scoped object's events live in "default" (or no namespace).
    let e = event(json!({"metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": "n"}}));
    assert!(validate::event(&e).is_empty());
}

#[test]
fn legacy_rules_with_event_time() {
    let e = event(json!({"metadata": {"name": "e", "namespace": "ns"},
        "involvedObject": {"kind": "Node", "name": "n"},
        "eventTime": "2024-01-02T03:04:05.000000Z", "reportingComponent": "bad name!",
        "reportingInstance": "i".repeat(129), "message": "m".repeat(1025)}));
    assert_eq!(
        msgs(&validate::event_legacy(&e)),
        vec![
            r#"involvedObject.namespace: Invalid value: "": does not match event.namespace"#,
            r#"reportingController: Invalid value: "bad name!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#,
            r#"reportingInstance: Invalid value: "": can have at most 128 characters"#,
            "action: Required value",
            "reason: Required value",
            r#"message: Invalid value: "": can have at most 1024 characters"#,
        ]
    );
}

#[test]
fn v1_creates_need_the_new_fields_and_none_of_the_deprecated() {
    assert!(validate::event_v1_create(&event(v1_event())).is_empty());
    let e = event(json!({"metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "type": "Odd", "firstTimestamp": "2024-01-02T03:04:05Z",
        "lastTimestamp": "2024-01-02T03:04:05Z", "count": 3,
        "source": {"component": "kubelet"}, "series": {"count": 1}}));
    assert_eq!(
        msgs(&validate::event_v1_create(&e)),
        vec![
            r#"series.count: Invalid value: "": should be at least 2"#,
            "series.lastObservedTime: Required value",
            "eventTime: Required value",
            r#"type: Invalid value: "": has invalid value: Odd"#,
            r#"firstTimestamp: Invalid value: "": needs to be unset"#,
            r#"lastTimestamp: Invalid value: "": needs to be unset"#,
            r#"count: Invalid value: "": needs to be unset"#,
            r#"source: Invalid value: "": needs to be unset"#,
        ]
    );
    let mut missing = v1_event();
    for field in [
        "reportingComponent",
        "reportingInstance",
        "action",
        "reason",
    ] {
        missing.as_object_mut().expect("object").remove(field);
    }
    assert_eq!(
        msgs(&validate::event_v1_create(&event(missing))),
        vec![
            "reportingController: Required value",
            r#"reportingController: Invalid value: "": name part must be non-empty"#,
            r#"reportingController: Invalid value: "": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"#,
            "reportingInstance: Required value",
            "action: Required value",
            "reason: Required value",
        ]
    );
}

#[test]
fn v1_updates_keep_everything_but_the_series() {
    let mut new = v1_event();
    new["metadata"]["resourceVersion"] = json!("7");
    let old = event(new.clone());
    new["series"] = json!({"count": 2, "lastObservedTime": "2024-01-02T03:04:06.000000Z"});
    assert_eq!(
        msgs(&validate::event_v1_update(&event(new.clone()), &old)),
        Vec::<String>::new()
    );
    new["reason"] = json!("Other");
    new["action"] = json!("Other");
    assert_eq!(
        msgs(&validate::event_v1_update(&event(new), &old)),
        vec![
            r#"reason: Invalid value: "Other": field is immutable"#,
            r#"reason: Invalid value: "Other": field is immutable"#,
            r#"action: Invalid value: "Other": field is immutable"#,
        ]
    );
}
