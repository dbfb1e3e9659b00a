//! managedFields through the in-process router: the manager a write is recorded under (the
//! `fieldManager` option, else the User-Agent's prefix), per subresource; the 409 Status of a
//! conflicting apply with one `FieldManagerConflict` cause per field; `force` refused on other
//! patches; managedFields sent with an update replacing the stored ones; an apply's
//! configuration refused when it carries managedFields.

mod support;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use pernode_apiserver::ApiServer;
use serde_json::{Value, json};
use tower::ServiceExt;

const DSS: &str = "/apis/apps/v1/namespaces/default/daemonsets";
const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

/// A request with a User-Agent; the status and the answer.
async fn call(
    router: &Router,
    method: Method,
    path: &str,
    content_type: &str,
    agent: &str,
    body: Value,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::USER_AGENT, agent)
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("response");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn ds(image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": image}]}}}})
}

fn entries(object: &Value) -> Vec<(String, String, String)> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (text("manager"), text("operation"), text("subresource"))
        })
        .collect()
}

async fn router() -> Router {
    let server = ApiServer::new(support::memory_store())
        .await
        .expect("server");
    server.router()
}

#[tokio::test]
async fn writes_are_recorded_per_manager_and_subresource() {
    let r = router().await;
    let (code, created) = call(
        &r,
        Method::POST,
        DSS,
        JSON,
        "kubectl/v1.33.0 (linux)",
        ds("a"),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(
        entries(&created),
        [("kubectl".into(), "Update".into(), String::new())]
    );
    let time = created["metadata"]["managedFields"][0]["time"].clone();
    assert!(time.as_str().is_some_and(|t| t.ends_with('Z')), "{time}");

    // The option wins over the agent; a status write is its own entry.
    let patch =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "b"}]}}}});
    let (code, v) = call(
        &r,
        Method::PATCH,
        &format!("{DSS}/web?fieldManager=kubectl-set"),
        MERGE,
        "kubectl/v1",
        patch,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    let status = json!({"status": {"numberReady": 1, "currentNumberScheduled": 1,
        "desiredNumberScheduled": 1, "numberMisscheduled": 0}});
    let (code, v) = call(
        &r,
        Method::PATCH,
        &format!("{DSS}/web/status"),
        MERGE,
        "kube-controller-manager/v1.33.0",
        status,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    // Upstream's order: by operation, time (seconds), then manager.
    assert_eq!(
        entries(&v),
        [
            (
                "kube-controller-manager".into(),
                "Update".into(),
                "status".into()
            ),
            ("kubectl".into(), "Update".into(), String::new()),
            ("kubectl-set".into(), "Update".into(), String::new()),
        ]
    );
    // The image moved to kubectl-set: kubectl's entry no longer lists it.
    let kubectl = v["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["manager"] == "kubectl")
        .map(|e| e["fieldsV1"].to_string())
        .unwrap_or_default();
    assert!(!kubectl.contains("\"f:image\""), "{kubectl}");

    // A conflicting apply: 409 with upstream's message and one cause per field.
    let (code, v) = call(
        &r,
        Method::PATCH,
        &format!("{DSS}/web?fieldManager=ci"),
        APPLY,
        "x",
        ds("c"),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["reason"], "Conflict");
    assert_eq!(
        v["message"],
        r#"Apply failed with 1 conflict: conflict with "kubectl-set" using apps/v1: .spec.template.spec.containers[name="c"].image"#
    );
    assert_eq!(
        v["details"]["causes"],
        json!([{"reason": "FieldManagerConflict",
            "message": "conflict with \"kubectl-set\" using apps/v1",
            "field": ".spec.template.spec.containers[name=\"c\"].image"}])
    );
    // `force` belongs to applies.
    let (code, v) = call(
        &r,
        Method::PATCH,
        &format!("{DSS}/web?force=true"),
        MERGE,
        "x",
        json!({}),
    )
    .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap_or("")
            .contains("force: Forbidden: may not be specified for non-apply patch"),
        "{v}"
    );
    // An applied configuration may not carry managedFields.
    let mut config = ds("c");
    config["metadata"]["managedFields"] = json!([{"manager": "x"}]);
    let (code, v) = call(
        &r,
        Method::PATCH,
        &format!("{DSS}/web?fieldManager=ci"),
        APPLY,
        "x",
        config,
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");
}

#[tokio::test]
async fn managed_fields_sent_with_an_update_replace_the_stored_ones() {
    let r = router().await;
    let (_, created) = call(&r, Method::POST, DSS, JSON, "kubectl/v1", ds("a")).await;
    // Sent back as read: kept. Replaced by one entry: that entry (and nothing of kubectl's).
    let mine = json!([{"manager": "mine", "operation": "Update", "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:selector": {}}}}]);
    let patch = json!({"metadata": {"managedFields": mine}});
    let (code, v) = call(
        &r,
        Method::PATCH,
        &format!("{DSS}/web"),
        MERGE,
        "kubectl/v1",
        patch,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    assert_eq!(
        entries(&v),
        [("mine".into(), "Update".into(), String::new())]
    );
    assert_ne!(entries(&created), entries(&v));
}

/// The `fieldsV1` of `object`'s entry for `manager`.
fn fields_of(object: &Value, manager: &str) -> Value {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["manager"] == manager)
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn what_admission_and_allocation_add_to_a_create_belongs_to_no_manager() {
    let r = pernode_apiserver::in_memory_router().await.expect("router");
    let pods = "/api/v1/namespaces/default/pods";
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i"}]}});
    let (code, created) = call(&r, Method::POST, pods, JSON, "creator/v1", pod).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    // Stored: the service account, its token volume and mount, the priority, the default
    // tolerations.
    let spec = &created["spec"];
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["priority"], 0);
    assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(
        spec["tolerations"].as_array().map(Vec::len),
        Some(2),
        "{spec}"
    );
    let volume = spec["volumes"][0]["name"].as_str().unwrap_or("");
    assert!(volume.starts_with("kube-api-access-"), "{spec}");
    assert_eq!(spec["containers"][0]["volumeMounts"][0]["name"], volume);
    // Owned: what was sent, with its defaults (upstream records before mutating admission).
    let owned = fields_of(&created, "creator");
    let owned_spec = &owned["f:spec"];
    let container = &owned_spec["f:containers"]["k:{\"name\":\"c\"}"];
    assert!(container.get("f:image").is_some(), "{owned}");
    assert!(container.get("f:imagePullPolicy").is_some(), "{owned}");
    assert!(container.get("f:volumeMounts").is_none(), "{owned}");
    for added in [
        "f:volumes",
        "f:serviceAccountName",
        "f:serviceAccount",
        "f:priority",
    ] {
        assert!(owned_spec.get(added).is_none(), "{added} in {owned}");
    }

    // A field the client sent stays its own even where admission would have set it.
    let named = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q"},
        "spec": {"serviceAccountName": "default", "containers": [{"name": "c", "image": "i"}]}});
    let (code, created) = call(&r, Method::POST, pods, JSON, "creator/v1", named).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let owned = fields_of(&created, "creator");
    assert!(
        owned["f:spec"].get("f:serviceAccountName").is_some(),
        "{owned}"
    );

    let services = "/api/v1/namespaces/default/services";
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
        "spec": {"type": "NodePort", "selector": {"app": "s"},
            "ports": [{"port": 80, "protocol": "TCP"}]}});
    let (code, created) = call(&r, Method::POST, services, JSON, "creator/v1", svc).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert!(created["spec"]["clusterIP"].is_string(), "{created}");
    assert!(
        created["spec"]["ports"][0]["nodePort"].is_number(),
        "{created}"
    );
    let owned = fields_of(&created, "creator");
    let owned_spec = &owned["f:spec"];
    for allocated in [
        "f:clusterIP",
        "f:clusterIPs",
        "f:ipFamilies",
        "f:ipFamilyPolicy",
    ] {
        assert!(
            owned_spec.get(allocated).is_none(),
            "{allocated} in {owned}"
        );
    }
    let port = &owned_spec["f:ports"]["k:{\"port\":80,\"protocol\":\"TCP\"}"];
    assert!(port.get("f:port").is_some(), "{owned}");
    assert!(port.get("f:nodePort").is_none(), "{owned}");
}

/// A GET of `path` through `router` with `accept`, answered 200.
async fn get(router: &Router, path: &str, accept: &str) -> Body {
    let request = Request::builder()
        .uri(path)
        .header(header::ACCEPT, accept)
        .body(Body::empty())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    response.into_body()
}

async fn get_json(router: &Router, path: &str, accept: &str) -> Value {
    let bytes = get(router, path, accept)
        .await
        .collect()
        .await
        .expect("body")
        .to_bytes();
    serde_json::from_slice(&bytes).expect("JSON")
}

/// The first watch event of `path` through `router`.
async fn first_event(router: &Router, path: &str, accept: &str) -> Value {
    let mut body = get(router, path, accept).await;
    let mut line = Vec::new();
    while !line.contains(&b'\n') {
        let frame = body.frame().await.expect("an event").expect("a frame");
        line.extend_from_slice(frame.data_ref().expect("data"));
    }
    let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
    serde_json::from_slice(&line[..end]).expect("an event in JSON")
}

fn without_managed_fields(mut object: Value) -> Value {
    if let Some(meta) = object["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    object
}

#[tokio::test]
async fn control_loops_list_watch_and_write_objects_without_managed_fields() {
    use pernode_auth::user::{SYSTEM_PRIVILEGED_GROUP, UserInfo};
    let server = ApiServer::new(support::memory_store())
        .await
        .expect("server");
    let admin = server.router();
    let control_loop = server.router_for_control_loop(
        UserInfo::new("system:admin", [SYSTEM_PRIVILEGED_GROUP]),
        "kube-controller-manager/v1.33.0",
    );
    let (code, created) = call(&admin, Method::POST, DSS, JSON, "kubectl/v1", ds("a")).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_eq!(entries(&created).len(), 1);
    let metadata = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
    let metadata_list = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

    // Everyone else gets what is stored; a control loop the same object without them.
    let list = get_json(&admin, DSS, JSON).await;
    assert_eq!(list["items"][0], created);
    let list = get_json(&control_loop, DSS, JSON).await;
    assert_eq!(list["items"][0], without_managed_fields(created.clone()));
    let event = first_event(&control_loop, &format!("{DSS}?watch=1"), JSON).await;
    assert_eq!(event["type"], "ADDED");
    assert_eq!(event["object"], without_managed_fields(created.clone()));
    let event = first_event(&admin, &format!("{DSS}?watch=1"), JSON).await;
    assert_eq!(event["object"], created);

    // Metadata-only lists and watches (the garbage collector's) too.
    let list = get_json(&control_loop, DSS, metadata_list).await;
    assert_eq!(
        list["items"][0]["metadata"],
        without_managed_fields(created.clone())["metadata"]
    );
    let event = first_event(&control_loop, &format!("{DSS}?watch=1"), metadata).await;
    assert_eq!(
        event["object"]["metadata"],
        without_managed_fields(created.clone())["metadata"]
    );
    let event = first_event(&admin, &format!("{DSS}?watch=1"), metadata).await;
    assert_eq!(event["object"]["metadata"], created["metadata"]);

    // A loop's write of what it read keeps the stored entries, as one without managedFields
    // does upstream, and adds its own.
    let mut read = list_item(&control_loop).await;
    read["metadata"]["labels"] = json!({"team": "a"});
    let (code, updated) = call(
        &control_loop,
        Method::PUT,
        &format!("{DSS}/web"),
        JSON,
        "kube-controller-manager/v1.33.0",
        read,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{updated}");
    let stored = get_json(&admin, &format!("{DSS}/web"), JSON).await;
    // Its answer leaves them out too; the stored object has them.
    assert_eq!(updated, without_managed_fields(stored.clone()));
    let mut managers = entries(&stored);
    managers.sort();
    assert_eq!(
        managers,
        [
            (
                "kube-controller-manager".into(),
                "Update".into(),
                String::new()
            ),
            ("kubectl".into(), "Update".into(), String::new()),
        ]
    );
    assert_eq!(
        fields_of(&stored, "kubectl"),
        fields_of(&created, "kubectl")
    );
}

async fn list_item(router: &Router) -> Value {
    get_json(router, DSS, JSON).await["items"][0].clone()
}
