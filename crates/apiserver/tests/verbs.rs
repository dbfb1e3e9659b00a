//! The verbs' upstream semantics, in-process: selectors on lists and watches, paging, watch
//! start points and timeouts, status/spec separation, generation, subresources, collection and
//! namespace deletion.

mod support;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(
    router: &Router,
    method: Method,
    path: &str,
    content_type: &str,
    body: Value,
) -> (StatusCode, Value) {
    support::send_json(router, method, path, content_type, body).await
}

async fn get(router: &Router, path: &str) -> Value {
    let (code, v) = call(router, Method::GET, path, "application/json", Value::Null).await;
    assert_eq!(code, StatusCode::OK, "GET {path}: {v}");
    v
}

async fn post(router: &Router, path: &str, body: Value) -> Value {
    let (code, v) = call(router, Method::POST, path, "application/json", body).await;
    assert!(code.is_success(), "POST {path}: {code} {v}");
    v
}

async fn patch(router: &Router, path: &str, body: Value) -> Value {
    let (code, v) = call(
        router,
        Method::PATCH,
        path,
        "application/merge-patch+json",
        body,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "PATCH {path}: {v}");
    v
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|i| i["metadata"]["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

const PODS: &str = "/api/v1/namespaces/default/pods";

fn pod(name: &str, labels: Value, node: Option<&str>) -> Value {
    let mut p = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}});
    if let Some(node) = node {
        p["spec"]["nodeName"] = json!(node);
    }
    p
}

async fn server() -> Router {
    pernode_apiserver::in_memory_router().await.expect("server")
}

#[tokio::test]
async fn label_and_field_selectors_filter_lists() {
    let r = server().await;
    post(
        &r,
        PODS,
        pod("a", json!({"app": "x", "tier": "web"}), Some("n1")),
    )
    .await;
    post(&r, PODS, pod("b", json!({"app": "y"}), Some("n2"))).await;
    post(&r, PODS, pod("c", json!({"app": "x"}), None)).await;
    let q = |s: &str| format!("{PODS}?labelSelector={s}");
    assert_eq!(names(&get(&r, &q("app%3Dx")).await), ["a", "c"]);
    assert_eq!(names(&get(&r, &q("app%3D%3Dx")).await), ["a", "c"]);
    assert_eq!(names(&get(&r, &q("app%21%3Dx")).await), ["b"]);
    assert_eq!(
        names(&get(&r, &q("app%20in%20(x,y)")).await),
        ["a", "b", "c"]
    );
    assert_eq!(names(&get(&r, &q("app%20notin%20(x)")).await), ["b"]);
    assert_eq!(names(&get(&r, &q("tier")).await), ["a"]);
    assert_eq!(names(&get(&r, &q("!tier")).await), ["b", "c"]);
    let f = |s: &str| format!("{PODS}?fieldSelector={s}");
    assert_eq!(names(&get(&r, &f("spec.nodeName%3Dn1")).await), ["a"]);
    assert_eq!(
        names(&get(&r, &f("spec.nodeName%3D")).await),
        ["c"],
        "key= matches the empty field"
    );
    assert_eq!(names(&get(&r, &f("metadata.name%3Db")).await), ["b"]);
    assert_eq!(
        names(
            &get(
                &r,
                &f("status.phase%21%3DSucceeded,status.phase%21%3DFailed")
            )
            .await
        ),
        ["a", "b", "c"]
    );
    let all = get(
        &r,
        "/api/v1/pods?fieldSelector=metadata.namespace%3Ddefault",
    )
    .await;
    assert_eq!(names(&all).len(), 3);
    let (code, v) = call(
        &r,
        Method::GET,
        &f("spec.bogus%3Dx"),
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn events_select_by_involved_object_with_an_empty_namespace() {
    let r = server().await;
    let event = |name: &str, ns: &str| {
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
            "involvedObject": {"kind": "Node", "name": "n1", "namespace": ns, "uid": "n1"},
            "reason": "Test", "message": "m", "type": "Normal"})
    };
    post(&r, "/api/v1/namespaces/default/events", event("e1", "")).await;
    post(
        &r,
        "/api/v1/namespaces/default/events",
        event("e2", "default"),
    )
    .await;
    let list = get(&r, "/api/v1/events?fieldSelector=involvedObject.namespace%3D,involvedObject.kind%3DNode,involvedObject.name%3Dn1").await;
    assert_eq!(names(&list), ["e1"]);
}

#[tokio::test]
async fn limit_and_continue_page_through_a_list() {
    let r = server().await;
    for n in 0..5 {
        post(&r, PODS, pod(&format!("p{n}"), json!({}), None)).await;
    }
    let first = get(&r, &format!("{PODS}?limit=2")).await;
    assert_eq!(names(&first), ["p0", "p1"]);
    // How many items the later pages hold, as upstream counts them for an unfiltered list.
    assert_eq!(first["metadata"]["remainingItemCount"], 3);
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("continue token")
        .to_string();
    let second = get(&r, &format!("{PODS}?limit=2&continue={token}")).await;
    assert_eq!(names(&second), ["p2", "p3"]);
    assert_eq!(second["metadata"]["remainingItemCount"], 1);
    let token = second["metadata"]["continue"]
        .as_str()
        .expect("continue token")
        .to_string();
    let last = get(&r, &format!("{PODS}?limit=2&continue={token}")).await;
    assert_eq!(names(&last), ["p4"]);
    assert!(last["metadata"].get("continue").is_none());
    assert!(last["metadata"].get("remainingItemCount").is_none());
    // A selector's page does not count the rest (upstream leaves it unset).
    let selected = get(
        &r,
        &format!("{PODS}?limit=2&fieldSelector=spec.nodeName%3D"),
    )
    .await;
    assert!(selected["metadata"]["continue"].is_string());
    assert!(selected["metadata"].get("remainingItemCount").is_none());
}

/// What a paged informer does: list page by page, then watch from the last page's version.
/// A change to an object on an already-listed page, made between pages, must still reach the
/// watch (it did not when later pages reported the then-current version).
#[tokio::test]
async fn a_change_between_pages_reaches_the_watch_that_follows() {
    let r = server().await;
    for n in 0..4 {
        post(&r, PODS, pod(&format!("p{n}"), json!({}), None)).await;
    }
    let first = get(&r, &format!("{PODS}?limit=2")).await;
    assert_eq!(names(&first), ["p0", "p1"]);
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("continue token")
        .to_string();
    // p0 (already listed) changes before the second page is read.
    patch(
        &r,
        &format!("{PODS}/p0"),
        json!({"metadata": {"labels": {"changed": "yes"}}}),
    )
    .await;
    let second = get(&r, &format!("{PODS}?limit=2&continue={token}")).await;
    assert_eq!(names(&second), ["p2", "p3"]);
    let rv = second["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    assert_eq!(
        rv,
        first["metadata"]["resourceVersion"].as_str().expect("rv"),
        "pages report the first page's version"
    );
    let mut watch = WatchStream::open(&r, &format!("{PODS}?watch=true&resourceVersion={rv}")).await;
    let event = watch
        .next(WAIT)
        .await
        .expect("the change made between pages");
    assert_eq!(event["type"], "MODIFIED");
    assert_eq!(event["object"]["metadata"]["labels"]["changed"], "yes");
}

/// An open watch stream, read event by event.
struct WatchStream {
    body: Body,
    buf: Vec<u8>,
}

impl WatchStream {
    async fn open(r: &Router, path: &str) -> WatchStream {
        WatchStream::open_as(r, path, "application/json").await
    }

    async fn open_as(r: &Router, path: &str, accept: &str) -> WatchStream {
        let request = Request::builder()
            .uri(path)
            .header("accept", accept)
            .body(Body::empty())
            .expect("request");
        let response = r.clone().oneshot(request).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        WatchStream {
            body: response.into_body(),
            buf: Vec::new(),
        }
    }

    /// The next event, or `None` if the stream ended or nothing came within `within`.
    async fn next(&mut self, within: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=pos).collect();
                return Some(serde_json::from_slice(&line).expect("event JSON"));
            }
            match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                _ => return None,
            }
        }
    }
}

fn summary(event: &Value) -> (String, String) {
    (
        event["type"].as_str().unwrap_or("").into(),
        event["object"]["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .into(),
    )
}

const WAIT: Duration = Duration::from_secs(5);

#[tokio::test]
async fn watches_start_where_asked_and_follow_selectors() {
    let r = server().await;
    post(&r, PODS, pod("a", json!({"app": "x"}), None)).await;
    let list = get(&r, PODS).await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("list rv")
        .to_string();
    // resourceVersion=0: a synthetic ADDED for what exists, then changes.
    let mut watch = WatchStream::open(
        &r,
        &format!("{PODS}?watch=true&resourceVersion=0&labelSelector=app%3Dx"),
    )
    .await;
    assert_eq!(
        watch.next(WAIT).await.map(|e| summary(&e)),
        Some(("ADDED".into(), "a".into()))
    );
    // Starts matching: ADDED; stops matching: DELETED (for this watcher).
    post(&r, PODS, pod("b", json!({"app": "y"}), None)).await;
    patch(
        &r,
        &format!("{PODS}/b"),
        json!({"metadata": {"labels": {"app": "x"}}}),
    )
    .await;
    patch(
        &r,
        &format!("{PODS}/a"),
        json!({"metadata": {"labels": {"app": "z"}}}),
    )
    .await;
    assert_eq!(
        watch.next(WAIT).await.map(|e| summary(&e)),
        Some(("ADDED".into(), "b".into()))
    );
    let deleted = watch.next(WAIT).await.expect("DELETED for a");
    assert_eq!(summary(&deleted), ("DELETED".into(), "a".into()));
    // As kube-apiserver: the object as it last matched, at the version of the change.
    assert_eq!(deleted["object"]["metadata"]["labels"]["app"], "x");
    let current = get(&r, &format!("{PODS}/a")).await;
    assert_eq!(
        deleted["object"]["metadata"]["resourceVersion"],
        current["metadata"]["resourceVersion"]
    );
    // From the list's version: only later changes, no synthetic events.
    let mut from_rv =
        WatchStream::open(&r, &format!("{PODS}?watch=true&resourceVersion={rv}")).await;
    let mut kinds = Vec::new();
    for _ in 0..3 {
        kinds.push(from_rv.next(WAIT).await.map(|e| summary(&e)));
    }
    assert_eq!(
        kinds,
        [
            Some(("ADDED".into(), "b".into())),
            Some(("MODIFIED".into(), "b".into())),
            Some(("MODIFIED".into(), "a".into()))
        ]
    );
}

#[tokio::test]
async fn timeout_seconds_ends_a_watch() {
    let r = server().await;
    let started = tokio::time::Instant::now();
    let mut watch = WatchStream::open(&r, &format!("{PODS}?watch=true&timeoutSeconds=1")).await;
    assert!(
        watch.next(Duration::from_secs(10)).await.is_none(),
        "no events, then the end of the stream"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the stream closed at its timeout, not at our deadline"
    );
}

#[tokio::test]
async fn status_and_spec_are_written_separately_and_generation_follows_spec() {
    let r = server().await;
    let ds_path = "/apis/apps/v1/namespaces/default/daemonsets";
    let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "d"},
        "spec": {"selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
    let created = post(&r, ds_path, ds).await;
    assert_eq!(created["metadata"]["generation"], 1);
    assert_eq!(created["status"]["desiredNumberScheduled"], 0);
    // A status write ignores spec changes.
    let status = patch(
        &r,
        &format!("{ds_path}/d/status"),
        json!({"spec": {"minReadySeconds": 9}, "status": {"numberReady": 2}}),
    )
    .await;
    assert_eq!(status["status"]["numberReady"], 2);
    assert!(status["spec"].get("minReadySeconds").is_none());
    assert_eq!(status["metadata"]["generation"], 1);
    // A main-resource write ignores status and bumps generation on spec changes only.
    let spec = patch(
        &r,
        &format!("{ds_path}/d"),
        json!({"spec": {"minReadySeconds": 3}, "status": {"numberReady": 7}}),
    )
    .await;
    assert_eq!(spec["status"]["numberReady"], 2);
    assert_eq!(spec["metadata"]["generation"], 2);
    assert_eq!(
        spec["metadata"]["annotations"]["deprecated.daemonset.template.generation"], "1",
        "template unchanged"
    );
    let meta = patch(
        &r,
        &format!("{ds_path}/d"),
        json!({"metadata": {"labels": {"x": "y"}}}),
    )
    .await;
    assert_eq!(meta["metadata"]["generation"], 2);
    let template = patch(
        &r,
        &format!("{ds_path}/d"),
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i2"}]}}}}),
    )
    .await;
    assert_eq!(template["metadata"]["generation"], 3);
    assert_eq!(
        template["metadata"]["annotations"]["deprecated.daemonset.template.generation"],
        "2"
    );
    // Selector is immutable.
    let (code, v) = call(&r, Method::PATCH, &format!("{ds_path}/d"), "application/merge-patch+json",
        json!({"spec": {"selector": {"matchLabels": {"a": "c"}}, "template": {"metadata": {"labels": {"a": "c"}}}}})).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

#[tokio::test]
async fn a_pod_status_write_decodes_and_normalizes_its_status_only() {
    let r = server().await;
    let created = post(&r, PODS, pod("p", json!({"app": "a"}), Some("n1"))).await;
    let status_path = format!("{PODS}/p/status");
    let strategic = "application/strategic-merge-patch+json";

    // Unknown fields of the status are named from the pod's root.
    let (code, v) = call(
        &r,
        Method::PATCH,
        &format!("{status_path}?fieldValidation=Strict"),
        strategic,
        json!({"status": {"phase": "Running", "bogus": 1, "containerStatuses": [{"name": "c", "nope": 2}]}}),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(
        v["message"],
        r#"strict decoding error: unknown field "status.bogus", unknown field "status.containerStatuses[0].nope""#
    );
    // A status of the wrong type is refused as the pod's decoding refuses it.
    let (code, v) = call(
        &r,
        Method::PATCH,
        &status_path,
        strategic,
        json!({"status": {"phase": 5}}),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Pod in body is invalid: invalid type")),
        "{v}"
    );

    // Stored as decoded: nulls and Go-omitempty values go, unknown fields are dropped (the
    // default validation only warns), and the rest of the pod is as it was.
    let written = patch(
        &r,
        &status_path,
        json!({"status": {"phase": "Running", "bogus": 1, "podIPs": [], "message": "",
               "conditions": [{"type": "Ready", "status": "True", "lastProbeTime": null,
                               "lastTransitionTime": "2026-01-02T03:04:05Z"}]}}),
    )
    .await;
    let status = &written["status"];
    assert_eq!(status["phase"], "Running");
    for dropped in ["bogus", "podIPs", "message"] {
        assert!(status.get(dropped).is_none(), "{dropped}: {status}");
    }
    assert_eq!(
        status["conditions"],
        json!([{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-02T03:04:05Z"}])
    );
    assert_eq!(written["spec"], created["spec"]);
    assert_eq!(written["metadata"]["labels"], json!({"app": "a"}));
    assert_eq!(
        (written["kind"].clone(), written["apiVersion"].clone()),
        (json!("Pod"), json!("v1"))
    );
}

#[tokio::test]
async fn a_status_patch_of_status_alone_writes_what_the_general_path_writes() {
    let r = server().await;
    // A patch that names `status` alone is made as an edit of the stored pod; the same patch
    // with another (empty) member goes the general way.
    for name in ["edited", "general"] {
        post(&r, PODS, pod(name, json!({"app": "a"}), Some("n1"))).await;
    }
    let strategic = "application/strategic-merge-patch+json";
    let write = |name: &'static str, status: Value| {
        let r = r.clone();
        async move {
            let body = match name {
                "edited" => json!({ "status": status }),
                _ => json!({ "metadata": {}, "status": status }),
            };
            let path = format!("{PODS}/{name}/status");
            let (code, v) = call(&r, Method::PATCH, &path, strategic, body).await;
            assert_eq!(code, StatusCode::OK, "{name}: {v}");
            v
        }
    };
    let comparable = |mut pod: Value| {
        // managedFields too: the edit leaves them as stored (the kubelet's Update entry is
        // not recorded on this hot path), the general path records the writer's.
        for generated in [
            "name",
            "uid",
            "creationTimestamp",
            "resourceVersion",
            "managedFields",
        ] {
            pod["metadata"].as_object_mut().map(|m| m.remove(generated));
        }
        // The API credentials volume's name ends in a generated suffix.
        let text = pod["spec"].to_string();
        let token_volume = token_volume_name(&text);
        pod["spec"] =
            serde_json::from_str(&text.replace(&token_volume, "kube-api-access-x")).expect("spec");
        pod
    };
    let patches = [
        json!({"phase": "Running", "podIP": "10.0.0.5", "hostIP": "192.168.0.1",
               "conditions": [
                   {"type": "PodScheduled", "status": "True", "lastProbeTime": null},
                   {"type": "Ready", "status": "True", "message": "<ok> & ready"}],
               "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0,
                   "image": "busybox", "imageID": "", "state": {"running": {}}}]}),
        // Conditions merge by type; a null drops a field.
        json!({"conditions": [{"type": "Ready", "status": "False"}], "podIP": null}),
        json!(null),
    ];
    for (i, status) in patches.into_iter().enumerate() {
        let edited = write("edited", status.clone()).await;
        let general = write("general", status).await;
        assert_eq!(comparable(edited), comparable(general), "patch {i}");
        if i == 0 {
            // Indexed as written: both are found by their new phase.
            let running = get(&r, &format!("{PODS}?fieldSelector=status.phase%3DRunning")).await;
            assert_eq!(names(&running), ["edited", "general"]);
        }
    }
    // A patch that changes nothing keeps the stored version.
    let status = json!({"phase": "Running"});
    let first = write("edited", status.clone()).await;
    let again = write("edited", status).await;
    assert_eq!(
        first["metadata"]["resourceVersion"],
        again["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn binding_and_eviction_subresources() {
    let r = server().await;
    post(&r, PODS, pod("p", json!({}), None)).await;
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}});
    let (code, _) = call(
        &r,
        Method::POST,
        &format!("{PODS}/p/binding"),
        "application/json",
        binding.clone(),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    let bound = get(&r, &format!("{PODS}/p")).await;
    assert_eq!(bound["spec"]["nodeName"], "n1");
    assert_eq!(bound["status"]["conditions"][0]["type"], "PodScheduled");
    // The pod is found by its new node (the binding indexes what it changed).
    for (node, found) in [("n1", 1), ("", 0)] {
        let listed = get(&r, &format!("{PODS}?fieldSelector=spec.nodeName%3D{node}")).await;
        let items = listed["items"].as_array().map_or(0, Vec::len);
        assert_eq!(items, found, "pods on node {node:?}: {listed}");
    }
    let (code, v) = call(
        &r,
        Method::POST,
        &format!("{PODS}/p/binding"),
        "application/json",
        binding,
    )
    .await;
    assert_eq!(
        code,
        StatusCode::CONFLICT,
        "a bound pod cannot be bound again: {v}"
    );
    let eviction = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p"}, "deleteOptions": {"gracePeriodSeconds": 0}});
    let (code, v) = call(
        &r,
        Method::POST,
        &format!("{PODS}/p/eviction"),
        "application/json",
        eviction,
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{v}");
    let (code, _) = call(
        &r,
        Method::GET,
        &format!("{PODS}/p"),
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

/// The `default` ServiceAccount the service account controller would create (none runs here).
async fn default_account(r: &Router, ns: &str) {
    post(
        r,
        &format!("/api/v1/namespaces/{ns}/serviceaccounts"),
        json!({"metadata": {"name": "default"}}),
    )
    .await;
}

#[tokio::test]
async fn deletecollection_honours_selectors_and_namespaces_terminate_until_finalized() {
    let r = server().await;
    let created = post(
        &r,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "team"}}),
    )
    .await;
    assert_eq!(created["spec"]["finalizers"], json!(["kubernetes"]));
    assert_eq!(created["status"]["phase"], "Active");
    default_account(&r, "team").await;
    let team_pods = "/api/v1/namespaces/team/pods";
    post(&r, team_pods, pod("keep", json!({"app": "keep"}), None)).await;
    post(&r, team_pods, pod("drop1", json!({"app": "drop"}), None)).await;
    post(&r, team_pods, pod("drop2", json!({"app": "drop"}), None)).await;
    let (code, v) = call(
        &r,
        Method::DELETE,
        &format!("{team_pods}?labelSelector=app%3Ddrop"),
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(names(&get(&r, team_pods).await), ["keep"]);
    // A main-resource write keeps spec.finalizers as stored.
    let mut ns = get(&r, "/api/v1/namespaces/team").await;
    ns["spec"]["finalizers"] = json!([]);
    let (code, v) = call(
        &r,
        Method::PUT,
        "/api/v1/namespaces/team",
        "application/json",
        ns,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["spec"]["finalizers"], json!(["kubernetes"]));
    // Delete marks it: Terminating, content still there for the namespace controller.
    let (code, v) = call(
        &r,
        Method::DELETE,
        "/api/v1/namespaces/team",
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["status"]["phase"], "Terminating");
    assert!(v["metadata"]["deletionTimestamp"].is_string(), "{v}");
    assert_eq!(names(&get(&r, team_pods).await), ["keep"]);
    // Writes other than creates still go, status writes included (they do not remove it).
    let mut status = get(&r, "/api/v1/namespaces/team").await;
    status["status"]["conditions"] = json!([{"type": "NamespaceContentRemaining", "status": "True",
        "reason": "SomeResourcesRemain", "message": "Some resources are remaining: pods. has 1 resource instances"}]);
    let (code, v) = call(
        &r,
        Method::PUT,
        "/api/v1/namespaces/team/status",
        "application/json",
        status,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["status"]["phase"], "Terminating");
    patch(
        &r,
        &format!("{team_pods}/keep"),
        json!({"metadata": {"labels": {"b": "c"}}}),
    )
    .await;
    let (code, _) = call(
        &r,
        Method::DELETE,
        &format!("{team_pods}/keep"),
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    // A second delete waits for the finalizers.
    let (code, v) = call(
        &r,
        Method::DELETE,
        "/api/v1/namespaces/team",
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["status"]["phase"], "Terminating");
    // finalize changes spec.finalizers alone; without any left the namespace goes.
    let mut body = get(&r, "/api/v1/namespaces/team").await;
    body["spec"]["finalizers"] = json!([]);
    body["metadata"]["labels"] = json!({"changed": "no"});
    let (code, v) = call(
        &r,
        Method::PUT,
        "/api/v1/namespaces/team/finalize",
        "application/json",
        body,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let (code, _) = call(
        &r,
        Method::GET,
        "/api/v1/namespaces/team",
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "the namespace is gone");
    let (code, v) = call(
        &r,
        Method::POST,
        team_pods,
        "application/json",
        pod("late", json!({}), None),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(v["message"], "namespaces \"team\" not found");
    // A namespace finalized before its delete goes at once; the immortal ones never.
    post(
        &r,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "bare"}}),
    )
    .await;
    let mut bare = get(&r, "/api/v1/namespaces/bare").await;
    bare["spec"]["finalizers"] = json!([]);
    let (code, v) = call(
        &r,
        Method::PUT,
        "/api/v1/namespaces/bare/finalize",
        "application/json",
        bare,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(v["status"]["phase"], "Active");
    let (code, v) = call(
        &r,
        Method::DELETE,
        "/api/v1/namespaces/bare",
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let (code, _) = call(
        &r,
        Method::GET,
        "/api/v1/namespaces/bare",
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (code, v) = call(
        &r,
        Method::DELETE,
        "/api/v1/namespaces/kube-system",
        "application/json",
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(
        v["message"],
        "namespaces \"kube-system\" is forbidden: this namespace may not be deleted"
    );
}

/// ServiceAccount admission: `default` when none is named; a missing account is refused;
/// mirror pods are left alone.
#[tokio::test]
async fn pods_are_admitted_with_an_existing_service_account() {
    let r = server().await;
    let created = post(&r, PODS, pod("plain", json!({}), None)).await;
    assert_eq!(created["spec"]["serviceAccountName"], "default");
    assert_eq!(created["spec"]["serviceAccount"], "default");
    let mut named = pod("named", json!({}), None);
    named["spec"]["serviceAccountName"] = json!("reader");
    let (code, v) = call(&r, Method::POST, PODS, "application/json", named.clone()).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(
        v["message"],
        "pods \"named\" is forbidden: error looking up service account default/reader: serviceaccount \"reader\" not found"
    );
    post(
        &r,
        "/api/v1/namespaces/default/serviceaccounts",
        json!({"metadata": {"name": "reader"}, "imagePullSecrets": [{"name": "regcred"}]}),
    )
    .await;
    let created = post(&r, PODS, named).await;
    assert_eq!(created["spec"]["serviceAccountName"], "reader");
    assert_eq!(
        created["spec"]["imagePullSecrets"],
        json!([{"name": "regcred"}])
    );
    let mut mirror = pod("static-n1", json!({}), Some("n1"));
    mirror["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "hash"});
    let created = post(&r, PODS, mirror).await;
    assert!(
        created["spec"].get("serviceAccountName").is_none(),
        "{created}"
    );
}

/// NamespaceLifecycle: nothing new in a namespace being deleted (a finalizer holds it here).
#[tokio::test]
async fn a_terminating_namespace_takes_no_new_content() {
    let r = server().await;
    post(
        &r,
        "/api/v1/namespaces",
        json!({"metadata": {"name": "leaving", "finalizers": ["example.com/hold"]}}),
    )
    .await;
    default_account(&r, "leaving").await;
    let leaving_pods = "/api/v1/namespaces/leaving/pods";
    post(&r, leaving_pods, pod("before", json!({}), None)).await;
    let (code, v) = call(
        &r,
        Method::DELETE,
        "/api/v1/namespaces/leaving",
        "application/json",
        Value::Null,
    )
    .await;
    assert!(code.is_success(), "{code} {v}");
    let ns = get(&r, "/api/v1/namespaces/leaving").await;
    assert!(ns["metadata"]["deletionTimestamp"].is_string(), "{ns}");
    let (code, v) = call(
        &r,
        Method::POST,
        leaving_pods,
        "application/json",
        pod("late", json!({}), None),
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(
        v["message"],
        "pods \"late\" is forbidden: unable to create new content in namespace leaving because it is being terminated"
    );
    assert_eq!(
        v["details"]["causes"][0]["reason"], "NamespaceTerminating",
        "{v}"
    );
    assert_eq!(ns["status"]["phase"], "Terminating");
    // A namespace that is not terminating takes new content.
    post(
        &r,
        "/api/v1/namespaces/default/pods",
        pod("fine", json!({}), None),
    )
    .await;
}

#[tokio::test]
async fn delete_preconditions_and_no_op_updates() {
    let r = server().await;
    let created = post(&r, PODS, pod("p", json!({}), None)).await;
    let rv = created["metadata"]["resourceVersion"].clone();
    let same = patch(
        &r,
        &format!("{PODS}/p"),
        json!({"metadata": {"labels": null}}),
    )
    .await;
    assert_eq!(
        same["metadata"]["resourceVersion"], rv,
        "a no-op patch keeps the version"
    );
    let (code, v) = call(
        &r,
        Method::DELETE,
        &format!("{PODS}/p"),
        "application/json",
        json!({"preconditions": {"uid": "wrong"}}),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{v}");
    let uid = created["metadata"]["uid"].clone();
    let (code, v) = call(
        &r,
        Method::DELETE,
        &format!("{PODS}/p"),
        "application/json",
        json!({"preconditions": {"uid": uid}}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
}

const META: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const META_LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

/// GET with an Accept header: the content type and the JSON body.
async fn get_as(router: &Router, path: &str, accept: &str) -> (String, Value) {
    let request = Request::builder()
        .uri(path)
        .header("accept", accept)
        .body(Body::empty())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .expect("content type")
        .to_string();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (content_type, serde_json::from_slice(&bytes).expect("JSON"))
}

/// A PartialObjectMetadata: the kind, the object's whole metadata, nothing else.
fn assert_partial(object: &Value, name: &str) {
    assert_eq!(object["kind"], "PartialObjectMetadata", "{object}");
    assert_eq!(object["apiVersion"], "meta.k8s.io/v1", "{object}");
    assert_eq!(object["metadata"]["name"], name, "{object}");
    assert!(object["metadata"]["uid"].is_string(), "{object}");
    assert!(
        object["metadata"]["resourceVersion"].is_string(),
        "{object}"
    );
    let keys: Vec<&String> = object.as_object().expect("object").keys().collect();
    assert_eq!(
        keys.len(),
        3,
        "only kind, apiVersion and metadata: {object}"
    );
}

#[tokio::test]
async fn metadata_only_lists_gets_and_watches_as_kube_apiserver() {
    let r = server().await;
    post(&r, PODS, pod("a", json!({"app": "x"}), None)).await;
    post(&r, PODS, pod("b", json!({"app": "y"}), None)).await;

    let (content_type, list) = get_as(&r, PODS, META_LIST).await;
    assert_eq!(content_type, META_LIST);
    assert_eq!(list["kind"], "PartialObjectMetadataList");
    assert_eq!(list["apiVersion"], "meta.k8s.io/v1");
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("list rv")
        .to_string();
    assert_eq!(names(&list), ["a", "b"]);
    assert_partial(&list["items"][0], "a");
    assert_eq!(list["items"][0]["metadata"]["labels"]["app"], "x");
    // Selectors and paging work as for full lists.
    let (_, page) = get_as(&r, &format!("{PODS}?limit=1"), META_LIST).await;
    assert_eq!(names(&page), ["a"]);
    let token = page["metadata"]["continue"].as_str().expect("continue");
    let (_, rest) = get_as(&r, &format!("{PODS}?limit=1&continue={token}"), META_LIST).await;
    assert_eq!(names(&rest), ["b"]);
    let (_, selected) = get_as(&r, &format!("{PODS}?labelSelector=app%3Dy"), META_LIST).await;
    assert_eq!(names(&selected), ["b"]);

    let (content_type, one) = get_as(&r, &format!("{PODS}/a"), META).await;
    assert_eq!(content_type, META);
    assert_partial(&one, "a");

    let mut watch = WatchStream::open_as(
        &r,
        &format!("{PODS}?watch=true&resourceVersion={rv}&labelSelector=app%3Dx"),
        META,
    )
    .await;
    patch(
        &r,
        &format!("{PODS}/a"),
        json!({"metadata": {"annotations": {"n": "1"}}}),
    )
    .await;
    patch(
        &r,
        &format!("{PODS}/a"),
        json!({"metadata": {"labels": {"app": "z"}}}),
    )
    .await;
    let modified = watch.next(WAIT).await.expect("MODIFIED");
    assert_eq!(summary(&modified), ("MODIFIED".into(), "a".into()));
    assert_partial(&modified["object"], "a");
    assert_eq!(modified["object"]["metadata"]["annotations"]["n"], "1");
    let deleted = watch.next(WAIT).await.expect("DELETED");
    assert_eq!(summary(&deleted), ("DELETED".into(), "a".into()));
    assert_partial(&deleted["object"], "a");
    assert_eq!(deleted["object"]["metadata"]["labels"]["app"], "x");
}

/// As upstream's GuaranteedUpdate, a patch that pins no version retries a lost race until it
/// applies: 64 writers patching one object all succeed, and every change is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_unpinned_patches_all_apply() {
    let r = server().await;
    post(&r, PODS, pod("hot", json!({}), Some("n1"))).await;
    const WRITERS: usize = 64;
    const EACH: usize = 10;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let r = r.clone();
            tokio::spawn(async move {
                for i in 0..EACH {
                    let (code, v) = call(
                        &r,
                        Method::PATCH,
                        &format!("{PODS}/hot"),
                        "application/merge-patch+json",
                        json!({"metadata": {"annotations": {format!("w{w}-{i}"): "1"}}}),
                    )
                    .await;
                    assert_eq!(code, StatusCode::OK, "writer {w}, patch {i}: {v}");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
    let hot = get(&r, &format!("{PODS}/hot")).await;
    let annotations = hot["metadata"]["annotations"]
        .as_object()
        .map_or(0, |a| a.len());
    assert_eq!(annotations, WRITERS * EACH);
}

/// The `kube-api-access-xxxxx` volume name in `text`.
fn token_volume_name(text: &str) -> String {
    let start = text.find("kube-api-access-").expect("a token volume");
    text[start..start + "kube-api-access-".len() + 5].to_string()
}
