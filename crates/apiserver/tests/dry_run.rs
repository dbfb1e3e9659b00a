//! Dry runs: every write with `dryRun=All` answers as the real write would and leaves the
//! store as it was (no object, no version consumed, so no watch event); a dry-run value other
//! than `All` is refused with upstream's 422 before anything is written.

mod support;

use axum::Router;
use axum::http::{Method, StatusCode};
use pernode_apiserver::ApiServer;
use serde_json::{Value, json};

const DSS: &str = "/apis/apps/v1/namespaces/default/daemonsets";
const PODS: &str = "/api/v1/namespaces/default/pods";

async fn call(
    router: &Router,
    method: Method,
    path: &str,
    content_type: &str,
    body: &str,
) -> (StatusCode, Value) {
    support::send(router, method, path, content_type, body.to_string()).await
}

/// Every key with its version, and the store's version: what a dry run must leave alone.
fn snapshot(server: &ApiServer) -> (u64, Vec<(String, u64)>) {
    let store = server.store();
    let (_, entries) = store.list("", |_| true);
    (
        store.current_rv(),
        entries.iter().map(|e| (e.key.to_string(), e.rv)).collect(),
    )
}

fn ds(name: &str, image: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": image}]}}}})
}

async fn fixture() -> (ApiServer, Router) {
    let server = ApiServer::new(support::memory_store())
        .await
        .expect("server");
    pernode_apiserver::seed_default_service_accounts(server.store())
        .await
        .expect("service accounts");
    let router = server.router();
    let json = "application/json";
    for (path, body) in [
        (DSS.to_string(), ds("web", "nginx:1.26")),
        (
            PODS.to_string(),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bound"},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx"}]}}),
        ),
        (
            PODS.to_string(),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "unbound"},
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
        ),
    ] {
        let (code, v) = call(&router, Method::POST, &path, json, &body.to_string()).await;
        assert_eq!(code, StatusCode::CREATED, "{v}");
    }
    (server, router)
}

#[tokio::test]
async fn every_dry_run_write_answers_and_stores_nothing() {
    let (server, r) = fixture().await;
    let before = snapshot(&server);
    let json = "application/json";
    let merge = "application/merge-patch+json";
    let apply = "application/apply-patch+yaml";
    let web = format!("{DSS}/web");
    let stored_web = call(&r, Method::GET, &web, json, "").await.1;
    let mut updated = stored_web.clone();
    updated["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    let cases: Vec<(Method, String, &str, String, StatusCode)> =
        vec![
        (Method::POST, DSS.into(), json, ds("new", "x:1").to_string(), StatusCode::CREATED),
        (Method::PUT, web.clone(), json, updated.to_string(), StatusCode::OK),
        (
            Method::PATCH,
            web.clone(),
            merge,
            json!({"metadata": {"labels": {"a": "b"}}}).to_string(),
            StatusCode::OK,
        ),
        // Server-side apply of an existing object (forced: the image is its creator's) and
        // of a missing one.
        (
            Method::PATCH,
            format!("{web}?fieldManager=kubectl&force=true"),
            apply,
            ds("web", "nginx:1.28").to_string(),
            StatusCode::OK,
        ),
        (
            Method::PATCH,
            format!("{DSS}/fresh?fieldManager=kubectl"),
            apply,
            ds("fresh", "nginx:1.28").to_string(),
            StatusCode::CREATED,
        ),
        (
            Method::PATCH,
            format!("{PODS}/bound/status"),
            merge,
            json!({"status": {"phase": "Running"}}).to_string(),
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("{PODS}/unbound/binding"),
            json,
            json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "unbound"},
                "target": {"kind": "Node", "name": "n1"}})
            .to_string(),
            StatusCode::CREATED,
        ),
        (
            Method::POST,
            format!("{PODS}/bound/eviction"),
            json,
            json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "bound"}})
                .to_string(),
            StatusCode::CREATED,
        ),
        (Method::DELETE, web.clone(), json, String::new(), StatusCode::OK),
        (Method::DELETE, format!("{PODS}/bound"), json, String::new(), StatusCode::OK),
        (Method::DELETE, PODS.into(), json, String::new(), StatusCode::OK),
    ];
    for (method, path, content_type, body, want) in cases {
        let sep = if path.contains('?') { '&' } else { '?' };
        let path = format!("{path}{sep}dryRun=All");
        let (code, answer) = call(&r, method.clone(), &path, content_type, &body).await;
        assert_eq!(code, want, "{method} {path}: {answer}");
        assert_eq!(
            snapshot(&server),
            before,
            "{method} {path} changed the store"
        );
    }
    // The answer is the object the write would make.
    let (_, answer) = call(
        &r,
        Method::PATCH,
        &format!("{web}?fieldManager=kubectl&force=true&dryRun=All"),
        apply,
        &ds("web", "nginx:1.28").to_string(),
    )
    .await;
    assert_eq!(
        answer["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.28"
    );
    // DeleteOptions in the body.
    let (code, _) = call(
        &r,
        Method::DELETE,
        &web,
        json,
        &json!({"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]}).to_string(),
    )
    .await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(snapshot(&server), before, "a body dry run deleted");
}

#[tokio::test]
async fn a_dry_run_value_other_than_all_is_refused_and_changes_nothing() {
    let (server, r) = fixture().await;
    let before = snapshot(&server);
    let json = "application/json";
    let web = format!("{DSS}/web");
    for (method, path, body, kind, value) in [
        (
            Method::DELETE,
            format!("{web}?dryRun=all"),
            String::new(),
            "DeleteOptions",
            "all",
        ),
        (
            Method::DELETE,
            format!("{PODS}?dryRun=all"),
            String::new(),
            "DeleteOptions",
            "all",
        ),
        (
            Method::POST,
            format!("{DSS}?dryRun=Bogus"),
            ds("new", "x:1").to_string(),
            "CreateOptions",
            "Bogus",
        ),
        (
            Method::PATCH,
            format!("{web}?dryRun=true"),
            "{}".to_string(),
            "PatchOptions",
            "true",
        ),
        (
            Method::DELETE,
            web.clone(),
            json!({"dryRun": ["all"]}).to_string(),
            "DeleteOptions",
            "all",
        ),
    ] {
        let content_type = if method == Method::PATCH {
            "application/merge-patch+json"
        } else {
            json
        };
        let (code, status) = call(&r, method.clone(), &path, content_type, &body).await;
        assert_eq!(
            code,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{method} {path}: {status}"
        );
        assert_eq!(
            status["message"],
            format!(
                "{kind}.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{{\"{value}\"}}: supported values: \"All\""
            )
        );
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(
            snapshot(&server),
            before,
            "{method} {path} changed the store"
        );
    }
}
