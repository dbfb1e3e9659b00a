//! The kinds around a DaemonSet through the router, as a bundle's objects reach them: what
//! the server allocates and defaults, the objects it starts with, and what it refuses.

mod support;

use axum::http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use support::{send, server_with_accounts};
use tower::ServiceExt;

const JSON: &str = "application/json";

async fn router() -> axum::Router {
    server_with_accounts().await.router()
}

#[tokio::test]
async fn services_get_addresses_defaults_and_keep_them_on_replace() {
    let r = router().await;
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"port": 80}]}});
    let (status, created) = send(
        &r,
        Method::POST,
        "/api/v1/namespaces/default/services",
        JSON,
        svc.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let ip = created["spec"]["clusterIP"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(ip.starts_with("10."), "{created}");
    assert_eq!(created["spec"]["ports"][0]["protocol"], "TCP");
    assert_eq!(created["spec"]["ports"][0]["targetPort"], 80);
    assert_eq!(created["spec"]["sessionAffinity"], "None");
    let node_port = created["spec"]["ports"][0]["nodePort"].clone();
    assert!(
        node_port
            .as_i64()
            .is_some_and(|p| (30000..=32767).contains(&p))
    );
    // A replace without the allocated values (kubectl replace of the original file) keeps them.
    let mut replace = svc.clone();
    replace["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"].clone();
    let (status, replaced) = send(
        &r,
        Method::PUT,
        "/api/v1/namespaces/default/services/web",
        JSON,
        replace.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    assert_eq!(replaced["spec"]["clusterIP"], json!(ip));
    assert_eq!(replaced["spec"]["ports"][0]["nodePort"], node_port);
    // Changing the address is refused, and changes nothing.
    let mut moved = replaced.clone();
    moved["spec"]["clusterIP"] = json!("10.96.0.99");
    moved["spec"]["clusterIPs"] = json!(["10.96.0.99"]);
    let (status, err) = send(
        &r,
        Method::PUT,
        "/api/v1/namespaces/default/services/web",
        JSON,
        moved.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{err}");
    assert!(
        err["message"].as_str().unwrap_or_default().contains(
            "spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.99\"}: may not change once set"
        ),
        "{err}"
    );
    let (_, now) = send(
        &r,
        Method::GET,
        "/api/v1/namespaces/default/services/web",
        JSON,
        "",
    )
    .await;
    assert_eq!(now["spec"]["clusterIP"], json!(ip));
}

#[tokio::test]
async fn the_cluster_starts_with_the_kubernetes_service_and_system_priority_classes() {
    let r = router().await;
    let (status, svc) = send(
        &r,
        Method::GET,
        "/api/v1/namespaces/default/services/kubernetes",
        JSON,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(svc["spec"]["clusterIP"], "10.96.0.1");
    assert_eq!(svc["spec"]["ports"][0]["port"], 443);
    for (name, value) in [
        ("system-node-critical", 2_000_001_000),
        ("system-cluster-critical", 2_000_000_000),
    ] {
        let (status, pc) = send(
            &r,
            Method::GET,
            &format!("/apis/scheduling.k8s.io/v1/priorityclasses/{name}"),
            JSON,
            "",
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_eq!(pc["value"], value);
    }
}

#[tokio::test]
async fn pods_get_their_priority_class_value_or_are_refused() {
    let r = router().await;
    let pod = |class: &str| {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("p-{class}")},
               "spec": {"priorityClassName": class, "containers": [{"name": "c", "image": "i"}]}})
        .to_string()
    };
    let (status, created) = send(
        &r,
        Method::POST,
        "/api/v1/namespaces/default/pods",
        JSON,
        pod("system-node-critical"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["spec"]["priority"], 2_000_001_000);
    assert_eq!(created["spec"]["preemptionPolicy"], "PreemptLowerPriority");
    let (status, err) = send(
        &r,
        Method::POST,
        "/api/v1/namespaces/default/pods",
        JSON,
        pod("missing"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        err["message"],
        "pods \"p-missing\" is forbidden: no PriorityClass with name missing was found"
    );
    let (status, _) = send(
        &r,
        Method::GET,
        "/api/v1/namespaces/default/pods/p-missing",
        JSON,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn secrets_fold_string_data_and_config_maps_refuse_bad_keys() {
    let r = router().await;
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"a": "eA=="}, "stringData": {"a": "hi", "b": "yo"}});
    let (status, created) = send(
        &r,
        Method::POST,
        "/api/v1/namespaces/default/secrets",
        JSON,
        secret.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["data"], json!({"a": "aGk=", "b": "eW8="}));
    assert_eq!(created["type"], "Opaque");
    assert!(created.get("stringData").is_none());
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"no/slash": "x"}});
    let (status, err) = send(
        &r,
        Method::POST,
        "/api/v1/namespaces/default/configmaps",
        JSON,
        cm.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        err["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("ConfigMap \"c\" is invalid: data[no/slash]: Invalid value: \"no/slash\": a valid config key"),
        "{err}"
    );
}

#[tokio::test]
async fn webhook_configurations_are_stored_with_a_warning_that_they_are_not_called() {
    let r = router().await;
    let config = json!({"apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration", "metadata": {"name": "v"},
        "webhooks": [{"name": "check.example.com", "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {"service": {"name": "s", "namespace": "default"}}}]});
    let request = axum::http::Request::builder()
        .method(Method::POST)
        .uri("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations")
        .header("content-type", JSON)
        .body(axum::body::Body::from(config.to_string()))
        .expect("request");
    let response = r.clone().oneshot(request).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::CREATED);
    let warning = response
        .headers()
        .get("warning")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        warning.contains(
            "validatingwebhookconfigurations.admissionregistration.k8s.io are stored but not called"
        ),
        "{warning}"
    );
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let created: Value = serde_json::from_slice(&body).expect("json");
    let hook = &created["webhooks"][0];
    assert_eq!(hook["failurePolicy"], "Fail");
    assert_eq!(hook["timeoutSeconds"], 10);
    assert_eq!(hook["clientConfig"]["service"]["port"], 443);
}

#[tokio::test]
async fn a_terminating_definition_refuses_new_objects() {
    // The CRD controller runs as long as its server: kept alive here.
    let server = server_with_accounts().await;
    let r = server.router();
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]}});
    let (status, body) = send(
        &r,
        Method::POST,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        JSON,
        crd.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let widgets = "/apis/example.com/v1/namespaces/default/widgets";
    let widget = |name: &str| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
               "metadata": {"name": name, "finalizers": ["example.com/hold"]}})
        .to_string()
    };
    let (status, body) = send(&r, Method::POST, widgets, JSON, widget("held")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The held object keeps the definition terminating.
    let (status, body) = send(
        &r,
        Method::DELETE,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
        JSON,
        "",
    )
    .await;
    assert!(status.is_success(), "{body}");
    let (status, body) = send(&r, Method::POST, widgets, JSON, widget("late")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(
        body["message"],
        "create not allowed while custom resource definition is terminating"
    );
    // Once the held object lets go, the definition's cleanup finishes and it is gone.
    let (status, body) = send(
        &r,
        Method::PATCH,
        &format!("{widgets}/held"),
        "application/merge-patch+json",
        r#"{"metadata":{"finalizers":null}}"#,
    )
    .await;
    assert!(status.is_success(), "{body}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (status, _) = send(
            &r,
            Method::GET,
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com",
            JSON,
            "",
        )
        .await;
        if status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the CRD is still there"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn custom_objects_are_stored_in_the_storage_version_and_answered_in_the_requested_one() {
    let server = server_with_accounts().await;
    let r = server.router();
    let version = |name: &str, storage: bool| {
        json!({"name": name, "served": true, "storage": storage,
               "schema": {"openAPIV3Schema": {"type": "object",
                   "x-kubernetes-preserve-unknown-fields": true}}})
    };
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
            "versions": [version("v1", true), version("v1beta1", false)]}});
    let (status, body) = send(
        &r,
        Method::POST,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        JSON,
        crd.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let gadget = json!({"apiVersion": "example.com/v1beta1", "kind": "Gadget",
                        "metadata": {"name": "g"}, "spec": {"size": 1}});
    let (status, created) = send(
        &r,
        Method::POST,
        "/apis/example.com/v1beta1/namespaces/default/gadgets",
        JSON,
        gadget.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["apiVersion"], "example.com/v1beta1");
    let stored = server
        .store()
        .get("gadgets.example.com/default/g")
        .expect("stored");
    let stored: Value = serde_json::from_slice(&stored.json).expect("json");
    assert_eq!(stored["apiVersion"], "example.com/v1");
    let (_, through_v1) = send(
        &r,
        Method::GET,
        "/apis/example.com/v1/namespaces/default/gadgets/g",
        JSON,
        "",
    )
    .await;
    assert_eq!(through_v1["apiVersion"], "example.com/v1");
    let (status, patched) = send(
        &r,
        Method::PATCH,
        "/apis/example.com/v1beta1/namespaces/default/gadgets/g",
        "application/merge-patch+json",
        r#"{"spec":{"size":2}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["apiVersion"], "example.com/v1beta1");
    assert_eq!(patched["spec"]["size"], 2);
}

#[tokio::test]
async fn custom_objects_take_no_strategic_merge_patch_and_only_their_subresources() {
    let server = server_with_accounts().await;
    let r = server.router();
    let version = |name: &str, subresources: Value| {
        json!({"name": name, "served": true, "storage": name == "v1",
               "subresources": subresources,
               "schema": {"openAPIV3Schema": {"type": "object",
                   "x-kubernetes-preserve-unknown-fields": true}}})
    };
    // v1 has no subresources; v2 a scale subresource.
    let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gizmos.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "gizmos", "singular": "gizmo", "kind": "Gizmo"},
            "versions": [version("v1", json!({})), version("v2", json!({"scale": {
                "specReplicasPath": ".spec.replicas",
                "statusReplicasPath": ".status.replicas"}}))]}});
    let (status, body) = send(
        &r,
        Method::POST,
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        JSON,
        crd.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let gizmo = json!({"apiVersion": "example.com/v1", "kind": "Gizmo",
                       "metadata": {"name": "g"}, "spec": {"replicas": 1}});
    let (status, body) = send(
        &r,
        Method::POST,
        "/apis/example.com/v1/namespaces/default/gizmos",
        JSON,
        gizmo.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // A strategic merge patch is a 415 listing what custom resources take (apiextensions'
    // crdHandler), on the object and on its scale alike; nothing changes.
    let unsupported = "the body of the request was in an unknown format - accepted media types include: \
        application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";
    for path in [
        "/apis/example.com/v1/namespaces/default/gizmos/g",
        "/apis/example.com/v2/namespaces/default/gizmos/g/scale",
    ] {
        let (status, body) = send(
            &r,
            Method::PATCH,
            path,
            "application/strategic-merge-patch+json",
            r#"{"spec":{"replicas":3}}"#,
        )
        .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path}: {body}");
        assert_eq!(body["reason"], "UnsupportedMediaType");
        assert_eq!(body["message"], unsupported, "{path}");
    }
    let (_, stored) = send(
        &r,
        Method::GET,
        "/apis/example.com/v1/namespaces/default/gizmos/g",
        JSON,
        "",
    )
    .await;
    assert_eq!(stored["spec"]["replicas"], 1, "{stored}");
    // The scale subresource takes a merge patch.
    let (status, body) = send(
        &r,
        Method::PATCH,
        "/apis/example.com/v2/namespaces/default/gizmos/g/scale",
        "application/merge-patch+json",
        r#"{"spec":{"replicas":2}}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["spec"]["replicas"], 2);

    // A subresource the version does not enable: the object is not found (upstream's
    // crdHandler), as the Python and JavaScript clients' get…Status report it.
    for sub in ["status", "scale"] {
        let (status, body) = send(
            &r,
            Method::GET,
            &format!("/apis/example.com/v1/namespaces/default/gizmos/g/{sub}"),
            JSON,
            "",
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{sub}: {body}");
        assert_eq!(
            body["message"], "gizmos.example.com \"g\" not found",
            "{sub}"
        );
        assert_eq!(
            body["details"],
            json!({"name": "g", "group": "example.com", "kind": "gizmos"})
        );
    }
    // A built-in's unknown subresource has no route.
    let (status, body) = send(
        &r,
        Method::GET,
        "/api/v1/namespaces/default/configmaps/kube-root-ca.crt/status",
        JSON,
        "",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        body["message"],
        "the server could not find the requested resource"
    );
}
