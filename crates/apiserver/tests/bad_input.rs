//! Malformed and hostile requests get a Kubernetes Status with upstream's code, change nothing,
//! and leave the server serving.

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use support::send;
use tower::ServiceExt;

fn assert_status(reply: &(StatusCode, Value), code: u16, reason: &str) {
    assert_eq!(reply.0.as_u16(), code, "{}", reply.1);
    assert_eq!(reply.1["kind"], "Status", "{}", reply.1);
    assert_eq!(reply.1["status"], "Failure");
    assert_eq!(reply.1["reason"], reason, "{}", reply.1);
    assert_eq!(reply.1["code"], code);
}

const PODS: &str = "/api/v1/namespaces/default/pods";

fn pod(name: &str) -> String {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}).to_string()
}

#[tokio::test]
async fn malformed_bodies_are_400_and_change_nothing() {
    let router = pernode_apiserver::in_memory_router().await.expect("server");
    assert_status(
        &send(&router, Method::POST, PODS, "application/json", "{not json").await,
        400,
        "BadRequest",
    );
    assert_status(
        &send(
            &router,
            Method::POST,
            PODS,
            "application/yaml",
            "a: [unclosed",
        )
        .await,
        400,
        "BadRequest",
    );
    assert_status(
        &send(&router, Method::POST, PODS, "application/json", "[1,2]").await,
        400,
        "BadRequest",
    );
    assert_status(&send(&router, Method::POST, PODS, "application/json", r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p"},"spec":{"containers":"nope"}}"#).await, 400, "BadRequest");
    let (_, list) = send(&router, Method::GET, PODS, "application/json", "").await;
    assert_eq!(list["items"], json!([]), "nothing was created");
}

#[tokio::test]
async fn unknown_routes_kinds_and_methods_get_their_codes() {
    let router = pernode_apiserver::in_memory_router().await.expect("server");
    assert_status(
        &send(
            &router,
            Method::GET,
            "/api/v1/widgets",
            "application/json",
            "",
        )
        .await,
        404,
        "NotFound",
    );
    assert_status(
        &send(
            &router,
            Method::GET,
            "/apis/apps/v9/daemonsets",
            "application/json",
            "",
        )
        .await,
        404,
        "NotFound",
    );
    assert_status(
        &send(&router, Method::GET, "/nonsense", "application/json", "").await,
        404,
        "NotFound",
    );
    assert_status(
        &send(&router, Method::PUT, PODS, "application/json", "{}").await,
        405,
        "MethodNotAllowed",
    );
    let wrong_kind =
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "p"}})
            .to_string();
    assert_status(
        &send(&router, Method::POST, PODS, "application/json", wrong_kind).await,
        400,
        "BadRequest",
    );
    assert_status(
        &send(&router, Method::POST, PODS, "text/plain", pod("p")).await,
        415,
        "UnsupportedMediaType",
    );
    assert_status(
        &send(
            &router,
            Method::GET,
            "/api/v1/namespaces/nope/pods/x",
            "application/json",
            "",
        )
        .await,
        404,
        "NotFound",
    );
    assert_status(
        &send(
            &router,
            Method::POST,
            "/api/v1/namespaces/nope/pods",
            "application/json",
            pod("p"),
        )
        .await,
        404,
        "NotFound",
    );
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let router = pernode_apiserver::in_memory_router().await.expect("server");
    let huge = format!(
        r#"{{"metadata":{{"name":"p","annotations":{{"a":"{}"}}}}}}"#,
        "x".repeat(4 * 1024 * 1024)
    );
    assert_status(
        &send(&router, Method::POST, PODS, "application/json", huge).await,
        413,
        "RequestEntityTooLarge",
    );
}

#[tokio::test]
async fn conflicts_and_invalid_objects() {
    let router = pernode_apiserver::in_memory_router().await.expect("server");
    let (code, created) = send(&router, Method::POST, PODS, "application/json", pod("p")).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    assert_status(
        &send(&router, Method::POST, PODS, "application/json", pod("p")).await,
        409,
        "AlreadyExists",
    );
    // A stale resourceVersion on update is a 409 Conflict.
    let mut stale = created.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    stale["metadata"]["labels"] = json!({"a": "b"});
    let reply = send(
        &router,
        Method::PUT,
        &format!("{PODS}/p"),
        "application/json",
        stale.to_string(),
    )
    .await;
    assert_status(&reply, 409, "Conflict");
    assert!(
        reply.1["message"]
            .as_str()
            .unwrap_or("")
            .contains("the object has been modified")
    );
    // Bad names and labels are 422 Invalid with causes.
    let reply = send(
        &router,
        Method::POST,
        PODS,
        "application/json",
        pod("Bad_Name"),
    )
    .await;
    assert_status(&reply, 422, "Invalid");
    assert_eq!(reply.1["details"]["causes"][0]["field"], "metadata.name");
    let bad_label = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "q", "labels": {"-x": "y"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
    assert_status(
        &send(
            &router,
            Method::POST,
            PODS,
            "application/json",
            bad_label.to_string(),
        )
        .await,
        422,
        "Invalid",
    );
    // A patch that does not apply.
    let reply = send(
        &router,
        Method::PATCH,
        &format!("{PODS}/p"),
        "application/json-patch+json",
        r#"[{"op":"remove","path":"/spec/nope"}]"#,
    )
    .await;
    assert_status(&reply, 422, "Invalid");
    assert_status(
        &send(
            &router,
            Method::PATCH,
            &format!("{PODS}/p"),
            "application/merge-patch+json",
            "{oops",
        )
        .await,
        400,
        "BadRequest",
    );
    assert_status(
        &send(
            &router,
            Method::PATCH,
            &format!("{PODS}/p"),
            "application/x-unknown",
            "{}",
        )
        .await,
        415,
        "UnsupportedMediaType",
    );
    // The pod is unchanged and the server still serves.
    let (code, after) = send(
        &router,
        Method::GET,
        &format!("{PODS}/p"),
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        after["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn unparsable_resource_versions_are_400() {
    let router = pernode_apiserver::in_memory_router().await.expect("server");
    let request = Request::builder()
        .uri(format!("{PODS}?watch=true&resourceVersion=abc"))
        .body(Body::empty())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn watch_from_a_version_outside_the_event_window_gets_410_expired() {
    let options = pernode_store::StoreOptions {
        ring_capacity: 2,
        ..Default::default()
    };
    let store = pernode_store::Store::in_memory(pernode_apiserver::registry::indexer(), options);
    let server = pernode_apiserver::ApiServer::new(store)
        .await
        .expect("server");
    // Pods are admitted with an existing ServiceAccount (no controller runs here).
    pernode_apiserver::seed_default_service_accounts(server.store())
        .await
        .expect("service accounts");
    let router = server.router();
    for n in 0..5 {
        let (code, _) = send(
            &router,
            Method::POST,
            PODS,
            "application/json",
            pod(&format!("p{n}")),
        )
        .await;
        assert_eq!(code, StatusCode::CREATED);
    }
    let request = Request::builder()
        .uri(format!("{PODS}?watch=true&resourceVersion=1"))
        .body(Body::empty())
        .expect("request");
    let response = router.clone().oneshot(request).await.expect("infallible");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "upstream reports expiry as a watch event"
    );
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("stream ends after the error")
        .to_bytes();
    let event: Value =
        serde_json::from_slice(bytes.split(|b| *b == b'\n').next().unwrap_or_default())
            .expect("event");
    assert_eq!(event["type"], "ERROR");
    assert_eq!(event["object"]["code"], 410);
    assert_eq!(event["object"]["reason"], "Expired");
}

/// Every served resource, every verb, a set of hostile bodies and content types: each request
/// gets an answer below 500, and the server still serves afterwards.
#[tokio::test]
async fn hostile_requests_never_get_a_server_error() {
    let router = pernode_apiserver::in_memory_router().await.expect("server");
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies: Vec<String> = vec![
        String::new(),
        "null".into(),
        "42".into(),
        "\"string\"".into(),
        "{".into(),
        deep,
        r#"{"metadata":"x"}"#.into(),
        r#"{"metadata":{"name":5}}"#.into(),
        r#"{"metadata":{"name":"é"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#.into(),
        r#"{"metadata":{"name":"x","labels":{"a":5}}}"#.into(),
        r#"{"kind":"Pod","apiVersion":"v1","metadata":{"name":"x"},"spec":{"containers":[{"name":"c","image":"i","resources":{"limits":{"cpu":"lots"}}}]}}"#.into(),
        r#"[{"op":"move","from":"/a","path":"/b"}]"#.into(),
        r#"{"$patch":"delete"}"#.into(),
        r#"{"spec":{"$setElementOrder/containers":"x"}}"#.into(),
    ];
    let content_types = [
        "application/json",
        "application/yaml",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/json-patch+json",
        "application/apply-patch+yaml",
        "application/vnd.kubernetes.protobuf",
    ];
    let paths = [
        "/api/v1/namespaces/default/pods",
        "/api/v1/namespaces/default/pods/x",
        "/api/v1/namespaces/default/pods/x/status",
        "/api/v1/namespaces/default/pods/x/binding",
        "/api/v1/namespaces/default/pods/x/eviction",
        "/api/v1/nodes",
        "/api/v1/nodes/x",
        "/api/v1/namespaces",
        "/api/v1/namespaces/x",
        "/api/v1/namespaces/default/events",
        "/apis/apps/v1/namespaces/default/daemonsets",
        "/apis/apps/v1/namespaces/default/daemonsets/x",
        "/apis/apps/v1/namespaces/default/daemonsets/x/status",
        "/apis/apps/v1/namespaces/default/controllerrevisions/x",
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/x",
    ];
    // A pod named x exists, so item verbs reach the patch and update paths.
    let (code, _) = send(&router, Method::POST, PODS, "application/json", pod("x")).await;
    assert_eq!(code, StatusCode::CREATED);
    for path in paths {
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            for content_type in content_types {
                for body in &bodies {
                    let (code, reply) =
                        send(&router, method.clone(), path, content_type, body.clone()).await;
                    assert!(
                        code.as_u16() < 500,
                        "{method} {path} ({content_type}) {body:.60}: {code} {reply}"
                    );
                }
            }
        }
    }
    let (code, _) = send(
        &router,
        Method::GET,
        "/api/v1/namespaces/default/pods",
        "application/json",
        "",
    )
    .await;
    assert_eq!(code, StatusCode::OK, "still serving");
}

/// `metadata`, `spec` or `status` of the wrong JSON type is a 400 on every write, never a
/// value dropped (which wiped a node's labels) or indexed into (which panicked an apply).
#[tokio::test]
async fn members_of_the_wrong_json_type_are_400_and_change_nothing() {
    let router = pernode_apiserver::in_memory_router().await.expect("server");
    let node = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "n1", "labels": {"disk": "ssd"}}});
    let created = send(
        &router,
        Method::POST,
        "/api/v1/nodes",
        "application/json",
        node.to_string(),
    )
    .await;
    assert_eq!(created.0, StatusCode::CREATED, "{}", created.1);
    let stored = || async {
        send(
            &router,
            Method::GET,
            "/api/v1/nodes/n1",
            "application/json",
            "",
        )
        .await
        .1
    };
    let before = stored().await;
    let json = "application/json";
    let merge = "application/merge-patch+json";
    let apply = "application/apply-patch+yaml";
    for (method, path, content_type, body, message) in [
        (
            Method::PUT,
            "/api/v1/nodes/n1",
            json,
            r#"{"apiVersion":"v1","kind":"Node","metadata":"x"}"#,
            "Node in version \"v1\" cannot be handled as a Node: json: cannot unmarshal string into Go struct field Node.metadata of type v1.ObjectMeta",
        ),
        (
            Method::PUT,
            "/api/v1/nodes/n1/status",
            json,
            r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"},"status":"x"}"#,
            "Node in version \"v1\" cannot be handled as a Node: json: cannot unmarshal string into Go struct field Node.status of type v1.NodeStatus",
        ),
        (
            Method::PATCH,
            "/api/v1/nodes/n1",
            merge,
            r#"{"spec":5}"#,
            "Node in version \"v1\" cannot be handled as a Node: json: cannot unmarshal number into Go struct field Node.spec of type v1.NodeSpec",
        ),
        (
            Method::PATCH,
            "/api/v1/nodes/n1/status",
            merge,
            r#"{"status":[1]}"#,
            "Node in version \"v1\" cannot be handled as a Node: json: cannot unmarshal array into Go struct field Node.status of type v1.NodeStatus",
        ),
        (
            Method::PATCH,
            "/api/v1/nodes/n1?fieldManager=m",
            apply,
            r#"{"apiVersion":"v1","kind":"Node","metadata":"x"}"#,
            "Node in version \"v1\" cannot be handled as a Node: json: cannot unmarshal string into Go struct field Node.metadata of type v1.ObjectMeta",
        ),
        (
            Method::PATCH,
            "/api/v1/nodes/n2?fieldManager=m",
            apply,
            r#"{"apiVersion":"v1","kind":"Node","metadata":true}"#,
            "Node in version \"v1\" cannot be handled as a Node: json: cannot unmarshal bool into Go struct field Node.metadata of type v1.ObjectMeta",
        ),
        (
            Method::POST,
            "/api/v1/nodes",
            json,
            r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n3"},"spec":"x"}"#,
            "Node in version \"v1\" cannot be handled as a Node: json: cannot unmarshal string into Go struct field Node.spec of type v1.NodeSpec",
        ),
    ] {
        let reply = send(&router, method.clone(), path, content_type, body).await;
        assert_status(&reply, 400, "BadRequest");
        assert_eq!(reply.1["message"], message, "{method} {path}");
        assert_eq!(stored().await, before, "{method} {path} changed the node");
    }
    for name in ["n2", "n3"] {
        let reply = send(
            &router,
            Method::GET,
            &format!("/api/v1/nodes/{name}"),
            json,
            "",
        )
        .await;
        assert_eq!(reply.0, StatusCode::NOT_FOUND, "{name} was created");
    }
}

/// Query parameters that do not parse or name no upstream value are refused, never ignored.
#[tokio::test]
async fn malformed_query_parameters_are_refused() {
    let router = pernode_apiserver::in_memory_router().await.expect("server");
    let get = |path: String| {
        let router = router.clone();
        async move { send(&router, Method::GET, &path, "application/json", "").await }
    };
    let reply = get(format!("{PODS}?limit=abc")).await;
    assert_status(&reply, 400, "BadRequest");
    assert_eq!(
        reply.1["message"],
        "strconv.ParseInt: parsing \"abc\": invalid syntax"
    );
    assert_status(
        &get(format!("{PODS}?watch=true&timeoutSeconds=soon")).await,
        400,
        "BadRequest",
    );
    let reply = get(format!(
        "{PODS}?resourceVersion=1&resourceVersionMatch=Bogus"
    ))
    .await;
    assert_status(&reply, 422, "Invalid");
    assert_eq!(
        reply.1["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"Bogus\": supported values: \"Exact\", \"NotOlderThan\", \"\""
    );
    assert_status(
        &get(format!("{PODS}?labelSelector=a%20in%20(b")).await,
        400,
        "BadRequest",
    );
    // Upstream's parser reads `()` as the set holding the empty value: not an error.
    assert_eq!(
        get(format!("{PODS}?labelSelector=a%20notin%20()")).await.0,
        StatusCode::OK
    );
    let reply = send(
        &router,
        Method::POST,
        &format!("{PODS}?fieldValidation=Bogus"),
        "application/json",
        pod("p"),
    )
    .await;
    assert_status(&reply, 422, "Invalid");
    assert_eq!(
        reply.1["message"],
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"Bogus\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
    );
    assert_eq!(
        get(format!("{PODS}/p")).await.0,
        StatusCode::NOT_FOUND,
        "the refused create wrote nothing"
    );
    // Valid values still pass.
    assert_eq!(
        get(format!(
            "{PODS}?limit=5&resourceVersion=0&resourceVersionMatch=NotOlderThan"
        ))
        .await
        .0,
        StatusCode::OK
    );
}
