//! events.k8s.io/v1 Events over the core Event storage: one stored event through both APIs,
//! converted; events.k8s.io's field selectors, watches, validation and patches; and the
//! refusal of MicroTime values without six fractional digits, as upstream's decoder.

mod support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

const V1: &str = "/apis/events.k8s.io/v1/namespaces/default/events";
const CORE: &str = "/api/v1/namespaces/default/events";

async fn server() -> Router {
    pernode_apiserver::in_memory_router().await.expect("server")
}

async fn call(
    r: &Router,
    method: Method,
    path: &str,
    ct: &str,
    body: Value,
) -> (StatusCode, Value) {
    support::send_json(r, method, path, ct, body).await
}

async fn get(r: &Router, path: &str) -> Value {
    let (code, v) = call(r, Method::GET, path, "application/json", Value::Null).await;
    assert_eq!(code, StatusCode::OK, "GET {path}: {v}");
    v
}

async fn post(r: &Router, path: &str, body: Value) -> (StatusCode, Value) {
    call(r, Method::POST, path, "application/json", body).await
}

fn v1_event(name: &str, pod: &str) -> Value {
    json!({"apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": name, "namespace": "default"},
        "regarding": {"apiVersion": "v1", "kind": "Pod", "name": pod, "namespace": "default"},
        "eventTime": "2024-01-02T03:04:05.123456Z", "reportingController": "example.com/ctl",
        "reportingInstance": "ctl-1", "action": "Check", "reason": "Checked", "note": "all good",
        "type": "Normal"})
}

fn names(list: &Value) -> Vec<&str> {
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect()
}

#[tokio::test]
async fn an_event_written_through_one_api_reads_through_both() {
    let r = server().await;
    let (code, created) = post(&r, V1, v1_event("e1", "p1")).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(created["apiVersion"], "events.k8s.io/v1");
    assert_eq!(created["regarding"]["name"], "p1");
    assert_eq!(created["note"], "all good");
    assert_eq!(created["deprecatedSource"], json!({}));

    let core = get(&r, &format!("{CORE}/e1")).await;
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["involvedObject"]["name"], "p1");
    assert_eq!(core["message"], "all good");
    assert_eq!(core["reportingComponent"], "example.com/ctl");
    assert_eq!(core["eventTime"], "2024-01-02T03:04:05.123456Z");
    assert_eq!(core["metadata"]["uid"], created["metadata"]["uid"]);
    assert!(core.get("regarding").is_none() && core.get("note").is_none());

    // And back: a core event (the DaemonSet controller's kind) through events.k8s.io.
    let (code, v) = post(
        &r,
        CORE,
        json!({"metadata": {"name": "e2"}, "involvedObject": {"kind": "DaemonSet",
            "name": "ds", "namespace": "default"}, "reason": "SuccessfulCreate",
            "message": "Created pod: ds-x", "type": "Normal",
            "source": {"component": "daemonset-controller"},
            "firstTimestamp": "2024-01-02T03:04:05Z", "lastTimestamp": "2024-01-02T03:04:05Z",
            "count": 1}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let v1 = get(&r, &format!("{V1}/e2")).await;
    assert_eq!(v1["kind"], "Event");
    assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
    assert_eq!(v1["regarding"]["name"], "ds");
    assert_eq!(v1["note"], "Created pod: ds-x");
    assert_eq!(v1["deprecatedSource"]["component"], "daemonset-controller");
    assert_eq!(v1["deprecatedCount"], 1);
    assert_eq!(v1["deprecatedFirstTimestamp"], "2024-01-02T03:04:05Z");

    let list = get(&r, V1).await;
    assert_eq!(list["kind"], "EventList");
    assert_eq!(list["apiVersion"], "events.k8s.io/v1");
    assert_eq!(names(&list), ["e1", "e2"]);
    assert_eq!(list["items"][1]["note"], "Created pod: ds-x");
    assert_eq!(names(&get(&r, "/api/v1/events").await), ["e1", "e2"]);

    // A Table: the same columns as core's.
    let request = Request::builder()
        .uri("/apis/events.k8s.io/v1/events?includeObject=Object")
        .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .body(Body::empty())
        .expect("request");
    let response = r.clone().oneshot(request).await.expect("infallible");
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let table: Value = serde_json::from_slice(&bytes).expect("table");
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["columnDefinitions"][0]["name"], "Last Seen");
    assert_eq!(table["rows"][1]["cells"][3], "daemonset/ds");
    assert_eq!(table["rows"][1]["object"]["note"], "Created pod: ds-x");
}

#[tokio::test]
async fn events_k8s_io_selects_by_its_field_labels() {
    let r = server().await;
    for (name, pod) in [("a", "p1"), ("b", "p2")] {
        let (code, v) = post(&r, V1, v1_event(name, pod)).await;
        assert_eq!(code, StatusCode::CREATED, "{v}");
    }
    let selected = get(&r, &format!("{V1}?fieldSelector=regarding.name%3Dp2")).await;
    assert_eq!(names(&selected), ["b"]);
    let selected = get(
        &r,
        "/apis/events.k8s.io/v1/events?fieldSelector=reportingController%3Dexample.com/ctl,regarding.kind%3DPod,source%3Dexample.com/ctl",
    )
    .await;
    assert_eq!(names(&selected), ["a", "b"]);
    // Core's names are core's.
    let selected = get(
        &r,
        &format!(
            "{CORE}?fieldSelector=involvedObject.name%3Dp1,reportingComponent%3Dexample.com/ctl"
        ),
    )
    .await;
    assert_eq!(names(&selected), ["a"]);
    let (code, v) = call(
        &r,
        Method::GET,
        &format!("{V1}?fieldSelector=involvedObject.name%3Dp1"),
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(
        v["message"],
        "field label not supported: involvedObject.name"
    );
}

/// Reads one watch event within a deadline.
async fn next_event(body: &mut Body, buf: &mut Vec<u8>) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pos) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=pos).collect();
            return serde_json::from_slice(&line).expect("event JSON");
        }
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => buf.extend_from_slice(&frame.into_data().unwrap_or_default()),
            other => panic!("no watch event: {:?}", other.is_err()),
        }
    }
}

#[tokio::test]
async fn events_k8s_io_watches_see_core_writes_converted() {
    let r = server().await;
    let request = Request::builder()
        .uri(format!("{V1}?watch=true&fieldSelector=regarding.name%3Dp1"))
        .body(Body::empty())
        .expect("request");
    let response = r.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let mut buf = Vec::new();
    post(
        &r,
        CORE,
        json!({"metadata": {"name": "other"},
        "involvedObject": {"kind": "Pod", "name": "p2", "namespace": "default"}}),
    )
    .await;
    let (code, v) = post(
        &r,
        CORE,
        json!({"metadata": {"name": "mine"},
        "involvedObject": {"kind": "Pod", "name": "p1", "namespace": "default"},
        "message": "hello"}),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let event = next_event(&mut body, &mut buf).await;
    assert_eq!(event["type"], "ADDED");
    assert_eq!(event["object"]["metadata"]["name"], "mine");
    assert_eq!(event["object"]["apiVersion"], "events.k8s.io/v1");
    assert_eq!(event["object"]["note"], "hello");
}

#[tokio::test]
async fn events_k8s_io_writes_are_validated_with_its_rules() {
    let r = server().await;
    let mut bad = v1_event("bad", "p");
    for field in ["eventTime", "reportingInstance", "action"] {
        bad.as_object_mut().expect("object").remove(field);
    }
    bad["deprecatedCount"] = json!(2);
    let (code, v) = post(&r, V1, bad).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        v["message"],
        r#"Event.events.k8s.io "bad" is invalid: [eventTime: Required value, count: Invalid value: "": needs to be unset]"#
    );
    // Through core the legacy rules alone hold: an event with eventTime names its reporter.
    let (code, v) = post(
        &r,
        CORE,
        json!({"metadata": {"name": "c"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "eventTime": "2024-01-02T03:04:05.000000Z", "reason": "R", "action": "A",
        "reportingComponent": "ctl"}),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        v["message"],
        r#"Event "c" is invalid: reportingInstance: Required value"#
    );

    // Updates and patches: the series may change, the note may not.
    post(&r, V1, v1_event("e", "p")).await;
    let (code, v) = call(
        &r,
        Method::PATCH,
        &format!("{V1}/e"),
        "application/merge-patch+json",
        json!({"series": {"count": 2, "lastObservedTime": "2024-01-02T03:05:05.000000Z"}}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["series"]["count"], 2);
    assert_eq!(v["note"], "all good");
    let core = get(&r, &format!("{CORE}/e")).await;
    assert_eq!(core["series"]["count"], 2);
    let (code, v) = call(
        &r,
        Method::PATCH,
        &format!("{V1}/e"),
        "application/strategic-merge-patch+json",
        json!({"note": "changed"}),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        v["message"],
        r#"Event.events.k8s.io "e" is invalid: message: Invalid value: "changed": field is immutable"#
    );
    let mut put = get(&r, &format!("{V1}/e")).await;
    put["metadata"]["labels"] = json!({"seen": "yes"});
    let (code, v) = call(&r, Method::PUT, &format!("{V1}/e"), "application/json", put).await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["metadata"]["labels"]["seen"], "yes");
    assert_eq!(v["apiVersion"], "events.k8s.io/v1");
    let (code, v) = call(
        &r,
        Method::DELETE,
        &format!("{V1}/e"),
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let (code, _) = call(
        &r,
        Method::GET,
        &format!("{CORE}/e"),
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

const LAYOUT: &str = r#""2006-01-02T15:04:05.000000Z07:00""#;

#[tokio::test]
async fn micro_times_need_six_fractional_digits() {
    let r = server().await;
    let leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
    let lease = |renew: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "l"}, "spec": {"holderIdentity": "n1", "renewTime": renew}})
    };
    let (code, v) = post(&r, leases, lease("2024-01-02T03:04:05Z")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["reason"], "BadRequest");
    assert_eq!(
        v["message"],
        format!(
            r#"Lease in version "v1" cannot be handled as a Lease: parsing time "2024-01-02T03:04:05Z" as {LAYOUT}: cannot parse "Z" as ".000000""#
        )
    );
    let (code, v) = post(&r, leases, lease("2024-01-02T03:04:05.000000Z")).await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    // An update carries the same decoding.
    let mut put = v.clone();
    put["spec"]["acquireTime"] = json!("2024-01-02T03:04:05.1Z");
    let (code, v) = call(
        &r,
        Method::PUT,
        &format!("{leases}/l"),
        "application/json",
        put,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        v["message"],
        format!(
            r#"Lease in version "v1" cannot be handled as a Lease: parsing time "2024-01-02T03:04:05.1Z" as {LAYOUT}: cannot parse ".1Z" as ".000000""#
        )
    );
    // A patch whose result does not decode is upstream's patcher's 422.
    let (code, v) = call(
        &r,
        Method::PATCH,
        &format!("{leases}/l"),
        "application/strategic-merge-patch+json",
        json!({"spec": {"renewTime": "2024-01-02T03:04:06Z"}}),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(
        v["message"],
        format!(
            r#" "" is invalid: patch: Invalid value: "map[spec:map[renewTime:2024-01-02T03:04:06Z]]": parsing time "2024-01-02T03:04:06Z" as {LAYOUT}: cannot parse "Z" as ".000000""#
        )
    );
    // Events, through both APIs.
    let (code, v) = post(
        &r,
        CORE,
        json!({"metadata": {"name": "c"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "series": {"count": 2, "lastObservedTime": "2024-01-02T03:04:05.1234567Z"}}),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        v["message"],
        format!(
            r#"Event in version "v1" cannot be handled as a Event: parsing time "2024-01-02T03:04:05.1234567Z" as {LAYOUT}: cannot parse "7Z" as "Z07:00""#
        )
    );
    let mut e = v1_event("v", "p");
    e["eventTime"] = json!(1_700_000_000);
    let (code, v) = post(&r, V1, e).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        v["message"],
        r#"Event in version "v1" cannot be handled as a Event: json: cannot unmarshal number into Go value of type string"#
    );
}
