//! The audit log end to end: requests through the router (in process and over TCP) and the
//! lines they leave in the file, one per request, at the policy's level.

mod support;

use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use pernode_apiserver::audit::Auditor;
use pernode_apiserver::audit::policy::Policy;
use pernode_apiserver::audit::sink::Sink;
use pernode_apiserver::{ApiServer, ApiServerOptions};
use pernode_auth::user::UserInfo;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

/// A server auditing to `<dir>/audit.log` with `policy` (`None`: the default policy).
async fn audited(dir: &Path, policy: Option<&str>) -> ApiServer {
    let policy = match policy {
        Some(text) => Policy::parse(text).expect("policy"),
        None => Policy::metadata_for_everything(),
    };
    let sink = Sink::open(&dir.join("audit.log")).expect("audit log");
    let options = ApiServerOptions {
        audit: Some(Auditor::new(policy, sink)),
        ..ApiServerOptions::default()
    };
    ApiServer::with_options(support::memory_store(), options)
        .await
        .expect("server")
}

/// Every line written so far, parsed.
async fn lines(server: &ApiServer, dir: &Path) -> Vec<Value> {
    assert!(server.flush_audit(Duration::from_secs(10)).await, "flushed");
    std::fs::read_to_string(dir.join("audit.log"))
        .expect("audit log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// The lines of requests to `uri`.
fn of<'a>(lines: &'a [Value], uri: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["requestURI"] == uri).collect()
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"k": "v"}})
}

const POLICY_HEAD: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";

#[tokio::test]
async fn each_request_is_one_line_with_who_what_and_how_it_ended() {
    let dir = tempfile::tempdir().unwrap();
    let server = audited(dir.path(), None).await;
    let router = server.router();
    let (code, _) = support::send_json(
        &router,
        Method::POST,
        CONFIGMAPS,
        "application/json",
        configmap("settings"),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    let named = format!("{CONFIGMAPS}/settings");
    let missing = format!("{CONFIGMAPS}/missing");
    for path in [named.as_str(), missing.as_str(), CONFIGMAPS, "/version"] {
        support::send(&router, Method::GET, path, "", Body::empty()).await;
    }
    let lines = lines(&server, dir.path()).await;
    assert_eq!(lines.len(), 5, "{lines:#?}");
    for line in &lines {
        assert_eq!(line["kind"], "Event");
        assert_eq!(line["apiVersion"], "audit.k8s.io/v1");
        assert_eq!(line["level"], "Metadata");
        assert_eq!(line["stage"], "ResponseComplete");
        assert_eq!(
            line["user"],
            json!({"username": "system:admin", "groups": ["system:masters", "system:authenticated"]})
        );
        assert_eq!(
            line["annotations"],
            json!({"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""})
        );
        assert!(
            line.get("requestObject").is_none(),
            "Metadata logs no bodies"
        );
        assert!(line.get("responseObject").is_none());
        assert!(
            line.get("sourceIPs").is_none(),
            "in-process requests have no address"
        );
        let id = line["auditID"].as_str().unwrap();
        assert_eq!(id.len(), 36, "a UUID: {id}");
        assert!(
            line["stageTimestamp"].as_str().unwrap()
                >= line["requestReceivedTimestamp"].as_str().unwrap()
        );
    }
    let create = of(&lines, CONFIGMAPS)
        .into_iter()
        .find(|l| l["verb"] == "create")
        .unwrap();
    // The created object's name completes the reference, as upstream's LogRequestObject does.
    assert_eq!(
        create["objectRef"],
        json!({"resource": "configmaps", "namespace": "default", "name": "settings", "apiVersion": "v1"})
    );
    assert_eq!(
        create["responseStatus"],
        json!({"metadata": {}, "code": 201})
    );
    let get = of(&lines, &named)[0];
    assert_eq!(get["verb"], "get");
    assert_eq!(get["objectRef"]["name"], "settings");
    assert_eq!(get["responseStatus"]["code"], 200);
    let not_found = of(&lines, &missing)[0];
    assert_eq!(not_found["responseStatus"]["code"], 404);
    assert_eq!(not_found["responseStatus"]["status"], "Failure");
    assert_eq!(not_found["responseStatus"]["reason"], "NotFound");
    assert_eq!(
        not_found["responseStatus"]["message"],
        r#"configmaps "missing" not found"#
    );
    let list = of(&lines, CONFIGMAPS)
        .into_iter()
        .find(|l| l["verb"] == "list")
        .unwrap();
    assert_eq!(
        list["objectRef"],
        json!({"resource": "configmaps", "namespace": "default", "apiVersion": "v1"})
    );
    let version = of(&lines, "/version")[0];
    assert_eq!(version["verb"], "get");
    assert!(version.get("objectRef").is_none());
}

#[tokio::test]
async fn request_level_logs_the_request_object_and_request_response_the_response() {
    let dir = tempfile::tempdir().unwrap();
    let policy = format!(
        "{POLICY_HEAD}omitManagedFields: true\nrules:\n\
         - level: RequestResponse\n  verbs: [get]\n  resources: [{{group: \"\", resources: [configmaps]}}]\n\
         - level: Request\n  resources: [{{group: \"\", resources: [configmaps]}}]\n"
    );
    let server = audited(dir.path(), Some(&policy)).await;
    let router = server.router();
    let mut object = configmap("settings");
    object["metadata"]["managedFields"] = json!([{"manager": "test", "operation": "Update"}]);
    support::send_json(
        &router,
        Method::POST,
        CONFIGMAPS,
        "application/json",
        object,
    )
    .await;
    let named = format!("{CONFIGMAPS}/settings");
    support::send_json(
        &router,
        Method::PATCH,
        &named,
        "application/merge-patch+json",
        json!({"data": {"k": "w"}}),
    )
    .await;
    support::send(&router, Method::GET, &named, "", Body::empty()).await;
    let lines = lines(&server, dir.path()).await;
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let create = &lines[0];
    assert_eq!(create["level"], "Request");
    assert_eq!(create["requestObject"]["data"], json!({"k": "v"}));
    assert_eq!(create["requestObject"]["kind"], "ConfigMap");
    assert!(
        create["requestObject"]["metadata"]
            .get("managedFields")
            .is_none(),
        "omitManagedFields"
    );
    assert!(create.get("responseObject").is_none());
    let patch = &lines[1];
    assert_eq!(patch["verb"], "patch");
    assert_eq!(patch["requestObject"], json!({"data": {"k": "w"}}));
    let get = &lines[2];
    assert_eq!(get["level"], "RequestResponse");
    assert!(get.get("requestObject").is_none(), "a get has no body");
    assert_eq!(get["responseObject"]["kind"], "ConfigMap");
    assert_eq!(get["responseObject"]["data"], json!({"k": "w"}));
    assert_eq!(get["responseStatus"], json!({"metadata": {}, "code": 200}));
}

#[tokio::test]
async fn a_none_rule_drops_the_lines_of_its_users() {
    let dir = tempfile::tempdir().unwrap();
    let policy = format!(
        "{POLICY_HEAD}rules:\n\
         - level: None\n  users: [\"system:kube-scheduler\"]\n\
         - level: None\n  userGroups: [\"system:nodes\"]\n  verbs: [get, list]\n\
         - level: Metadata\n"
    );
    let server = audited(dir.path(), Some(&policy)).await;
    let scheduler = server.router_as(UserInfo::new("system:kube-scheduler", ["system:masters"]));
    let node = server.router_as(UserInfo::new(
        "system:node:n1",
        ["system:nodes", "system:masters"],
    ));
    let admin = server.router();
    for router in [&scheduler, &node, &admin] {
        support::send(router, Method::GET, CONFIGMAPS, "", Body::empty()).await;
    }
    // A node's write is not a get or list: logged.
    support::send_json(
        &node,
        Method::POST,
        CONFIGMAPS,
        "application/json",
        configmap("from-node"),
    )
    .await;
    let lines = lines(&server, dir.path()).await;
    let who: Vec<(&str, &str)> = lines
        .iter()
        .map(|l| {
            (
                l["user"]["username"].as_str().unwrap(),
                l["verb"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        who,
        [("system:admin", "list"), ("system:node:n1", "create")]
    );
}

#[tokio::test]
async fn a_refused_request_is_logged_as_forbidden() {
    let dir = tempfile::tempdir().unwrap();
    let server = audited(dir.path(), None).await;
    let jane = server.router_as(UserInfo::new("jane", ["dev"]));
    let (code, _) = support::send(&jane, Method::DELETE, CONFIGMAPS, "", Body::empty()).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let lines = lines(&server, dir.path()).await;
    assert_eq!(lines.len(), 1);
    let line = &lines[0];
    assert_eq!(line["verb"], "deletecollection");
    assert_eq!(
        line["annotations"],
        json!({"authorization.k8s.io/decision": "forbid", "authorization.k8s.io/reason": ""})
    );
    assert_eq!(line["responseStatus"]["code"], 403);
    assert_eq!(line["responseStatus"]["reason"], "Forbidden");
    assert_eq!(
        line["user"],
        json!({"username": "jane", "groups": ["dev", "system:authenticated"]})
    );
}

#[tokio::test]
async fn an_impersonating_request_names_both_users() {
    let dir = tempfile::tempdir().unwrap();
    let server = audited(dir.path(), None).await;
    let admin = server.router();
    let request = Request::get(CONFIGMAPS)
        .header("Impersonate-User", "jane")
        .header("Impersonate-Group", "dev")
        .body(Body::empty())
        .unwrap();
    let response = admin.clone().oneshot(request).await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::FORBIDDEN,
        "jane may not list"
    );
    // The line is written once the body is done.
    let _ = response.into_body().collect().await;
    let (code, _) = support::send(&admin, Method::GET, CONFIGMAPS, "", Body::empty()).await;
    assert_eq!(code, StatusCode::OK);
    let lines = lines(&server, dir.path()).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0]["user"]["username"], "system:admin");
    assert_eq!(
        lines[0]["impersonatedUser"],
        json!({"username": "jane", "groups": ["dev", "system:authenticated"]})
    );
    assert_eq!(lines[0]["responseStatus"]["code"], 403);
    assert!(lines[1].get("impersonatedUser").is_none(), "{}", lines[1]);
}

#[tokio::test]
async fn a_failed_authentication_is_one_response_started_line_without_a_user() {
    let dir = tempfile::tempdir().unwrap();
    let server = audited(dir.path(), None).await;
    let mut request = Request::get(format!("{CONFIGMAPS}/x"))
        .header("authorization", "Bearer not-a-token")
        .body(Body::empty())
        .unwrap();
    // What the listener marks a request whose credentials are not valid with.
    request
        .extensions_mut()
        .insert(pernode_apiserver::authentication::Unauthenticated {
            why: "unknown bearer token".into(),
            certificate: false,
        });
    let response = server.router().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let lines = lines(&server, dir.path()).await;
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    assert_eq!(line["stage"], "ResponseStarted");
    assert_eq!(line["user"], json!({}));
    assert_eq!(line["verb"], "get");
    assert_eq!(line["objectRef"]["name"], "x");
    assert!(line.get("annotations").is_none(), "never authorized");
    assert_eq!(
        line["responseStatus"],
        json!({"metadata": {}, "message": "Authentication failed, attempted: bearer", "code": 401})
    );
}

/// Sends a request and keeps its response (and so its body) open.
async fn open(router: &Router, path: &str) -> axum::response::Response {
    let request = Request::get(path).body(Body::empty()).unwrap();
    router.clone().oneshot(request).await.unwrap()
}

#[tokio::test]
async fn a_watch_is_logged_when_it_starts_and_when_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let server = audited(dir.path(), None).await;
    let router = server.router();
    let path = format!("{CONFIGMAPS}?watch=true");
    let watch = open(&router, &path).await;
    assert_eq!(watch.status(), StatusCode::OK);
    let started = lines(&server, dir.path()).await;
    assert_eq!(started.len(), 1, "{started:#?}");
    assert_eq!(started[0]["stage"], "ResponseStarted");
    assert_eq!(started[0]["verb"], "watch");
    assert_eq!(started[0]["responseStatus"]["code"], 200);
    drop(watch);
    let ended = lines(&server, dir.path()).await;
    assert_eq!(ended.len(), 2);
    assert_eq!(ended[1]["stage"], "ResponseComplete");
    assert_eq!(ended[1]["auditID"], started[0]["auditID"]);
}

#[tokio::test]
async fn omitted_stages_are_not_logged() {
    let dir = tempfile::tempdir().unwrap();
    let policy = format!(
        "{POLICY_HEAD}omitStages: [ResponseStarted]\nrules:\n\
         - level: Metadata\n  verbs: [list]\n  omitStages: [ResponseComplete]\n\
         - level: Metadata\n"
    );
    let server = audited(dir.path(), Some(&policy)).await;
    let router = server.router();
    support::send(&router, Method::GET, CONFIGMAPS, "", Body::empty()).await;
    drop(open(&router, &format!("{CONFIGMAPS}?watch=true")).await);
    let lines = lines(&server, dir.path()).await;
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["verb"], "watch");
    assert_eq!(lines[0]["stage"], "ResponseComplete");
}

#[tokio::test]
async fn the_audit_id_is_the_clients_or_a_new_one_and_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let server = audited(dir.path(), None).await;
    let request = Request::get("/version")
        .header("audit-id", "my-request-1")
        .body(Body::empty())
        .unwrap();
    let response = server.router().oneshot(request).await.unwrap();
    assert_eq!(response.headers()["audit-id"], "my-request-1");
    // Its line is written once its body is done with.
    drop(response);
    let response = open(&server.router(), "/version").await;
    let generated = response.headers()["audit-id"].to_str().unwrap().to_string();
    drop(response);
    let lines = lines(&server, dir.path()).await;
    assert_eq!(lines[0]["auditID"], "my-request-1");
    assert_eq!(lines[1]["auditID"], generated);
}

#[tokio::test]
async fn requests_over_tcp_carry_their_source_addresses_and_user_agent() {
    let dir = tempfile::tempdir().unwrap();
    let server = audited(dir.path(), None).await;
    let tcp = support::serve_tcp(server, Default::default()).await;
    let mut stream = tokio::net::TcpStream::connect(tcp.addr).await.unwrap();
    let request = "GET /api/v1/namespaces/default HTTP/1.1\r\nHost: x\r\n\
                   User-Agent: audit-test/1.0\r\nX-Forwarded-For: 203.0.113.7\r\n\
                   Connection: close\r\n\r\n";
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"));
    // The body is sent before the connection closes; its event follows at once.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let line = loop {
        let lines = lines(&tcp.server, dir.path()).await;
        if let Some(line) = lines
            .into_iter()
            .find(|l| l["requestURI"] == "/api/v1/namespaces/default")
        {
            break line;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no line for the request"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(line["sourceIPs"], json!(["203.0.113.7", "127.0.0.1"]));
    assert_eq!(line["userAgent"], "audit-test/1.0");
    assert_eq!(line["verb"], "get");
    assert_eq!(
        line["objectRef"],
        // Upstream's RequestInfo puts a namespace in itself.
        json!({"resource": "namespaces", "namespace": "default", "name": "default", "apiVersion": "v1"})
    );
    tcp.serving.stop(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_server_without_an_audit_log_adds_nothing() {
    let server = ApiServer::new(support::memory_store()).await.unwrap();
    let response = open(&server.router(), "/version").await;
    assert!(response.headers().get("audit-id").is_none());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(!body.is_empty());
    assert!(server.flush_audit(Duration::from_secs(1)).await);
}
