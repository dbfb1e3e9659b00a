//! RBAC through the router, as a user who is not `system:masters` (`router_as`): what the
//! bootstrap policy and bindings written by the admin (`router()`) allow, upstream's 403s
//! word for word, and the escalation checks on writes of roles and bindings.

mod support;

use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{Method, StatusCode};
use pernode_apiserver::ApiServer;
use pernode_auth::user::UserInfo;
use serde_json::{Value, json};

const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";
const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";
const APPLY: &str = "application/apply-patch+yaml";

/// The message jane's escalation errors carry after the object's name.
const JANE_GRANTS: &str = r#"user "jane" (groups=["dev" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:"#;

async fn call(
    router: &Router,
    method: Method,
    path: &str,
    content_type: &str,
    body: Value,
) -> (StatusCode, Value) {
    support::send_json(router, method, path, content_type, body).await
}

/// A request that must succeed; its answer.
async fn ok(router: &Router, method: Method, path: &str, body: Value) -> Value {
    let content_type = if method == Method::PATCH { MERGE } else { JSON };
    let (code, v) = call(router, method.clone(), path, content_type, body).await;
    assert!(code.is_success(), "{method} {path}: {code} {v}");
    v
}

/// A request that must be a 403; its message.
async fn forbidden(
    router: &Router,
    method: Method,
    path: &str,
    content_type: &str,
    body: Value,
) -> String {
    let (code, v) = call(router, method.clone(), path, content_type, body).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{method} {path}: {v}");
    assert_eq!(v["reason"], "Forbidden", "{v}");
    v["message"].as_str().unwrap_or_default().to_string()
}

async fn get_status(router: &Router, path: &str) -> StatusCode {
    call(router, Method::GET, path, JSON, Value::Null).await.0
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": name}, "rules": rules})
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": name}, "rules": rules})
}

/// A RoleBinding (`namespaced`) or ClusterRoleBinding to the `role_kind` named `role`.
fn binding(namespaced: bool, name: &str, role_kind: &str, role: &str, subjects: Value) -> Value {
    let kind = if namespaced {
        "RoleBinding"
    } else {
        "ClusterRoleBinding"
    };
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
        "metadata": {"name": name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": subjects})
}

fn user(name: &str) -> Value {
    json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": name}])
}

fn rbac(plural: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) => format!("{RBAC}/namespaces/{ns}/{plural}"),
        None => format!("{RBAC}/{plural}"),
    }
}

async fn server() -> ApiServer {
    support::server_with_accounts().await
}

async fn namespace(admin: &Router, name: &str) {
    ok(
        admin,
        Method::POST,
        "/api/v1/namespaces",
        json!({"metadata": {"name": name}}),
    )
    .await;
}

/// Fills `view`'s rules from the roles labelled to aggregate into it, as the clusterrole
/// aggregation controller (pernode-controllers) does in a running cluster; these servers run
/// without controllers.
async fn aggregate_view(admin: &Router) {
    let selected = ok(
        admin,
        Method::GET,
        &format!(
            "{}?labelSelector=rbac.authorization.k8s.io/aggregate-to-view%3Dtrue",
            rbac("clusterroles", None)
        ),
        Value::Null,
    )
    .await;
    let rules: Vec<Value> = selected["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["rules"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(!rules.is_empty(), "no role aggregates into view");
    let path = format!("{}/view", rbac("clusterroles", None));
    ok(admin, Method::PATCH, &path, json!({"rules": rules})).await;
}

/// Polls `check` until it holds or `timeout` passes (then fails).
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn view_lets_a_user_read_but_not_create() {
    let server = server().await;
    let admin = server.router();
    let jane = server.router_as(UserInfo::new("jane", ["dev"]));
    let message = forbidden(
        &jane,
        Method::GET,
        "/api/v1/namespaces/default/pods",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(
        message,
        r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default""#
    );

    aggregate_view(&admin).await;
    let crb = binding(false, "jane-views", "ClusterRole", "view", user("jane"));
    ok(
        &admin,
        Method::POST,
        &rbac("clusterrolebindings", None),
        crb,
    )
    .await;
    // The binding's create answered once the policy had it: the very next request sees it.
    for path in [
        "/api/v1/namespaces/default/pods",
        "/api/v1/namespaces/kube-system/pods",
        "/api/v1/pods",
        "/apis/apps/v1/namespaces/default/daemonsets",
        "/api/v1/namespaces/default/configmaps",
    ] {
        assert_eq!(get_status(&jane, path).await, StatusCode::OK, "{path}");
    }
    // `view` reads no secrets, and writes nothing.
    let message = forbidden(
        &jane,
        Method::GET,
        "/api/v1/namespaces/default/secrets",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(
        message,
        r#"secrets is forbidden: User "jane" cannot list resource "secrets" in API group "" in the namespace "default""#
    );
    let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "ds"}});
    let message = forbidden(
        &jane,
        Method::POST,
        "/apis/apps/v1/namespaces/default/daemonsets",
        JSON,
        ds,
    )
    .await;
    assert_eq!(
        message,
        r#"daemonsets.apps is forbidden: User "jane" cannot create resource "daemonsets" in API group "apps" in the namespace "default""#
    );
    let message = forbidden(&jane, Method::DELETE, "/api/v1/nodes/n1", JSON, Value::Null).await;
    assert_eq!(
        message,
        r#"nodes "n1" is forbidden: User "jane" cannot delete resource "nodes" in API group "" at the cluster scope"#
    );

    // Deleting the binding takes the permission away, again by the next request.
    ok(
        &admin,
        Method::DELETE,
        &format!("{}/jane-views", rbac("clusterrolebindings", None)),
        Value::Null,
    )
    .await;
    assert_eq!(
        get_status(&jane, "/api/v1/namespaces/default/pods").await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_role_binding_grants_in_its_namespace_only() {
    let server = server().await;
    let admin = server.router();
    let jane = server.router_as(UserInfo::new("jane", ["dev"]));
    namespace(&admin, "team-a").await;
    let reader = role(
        "pod-reader",
        json!([rule(&[""], &["pods"], &["get", "list", "watch"])]),
    );
    ok(&admin, Method::POST, &rbac("roles", Some("team-a")), reader).await;
    let b = binding(true, "jane-reads", "Role", "pod-reader", user("jane"));
    ok(
        &admin,
        Method::POST,
        &rbac("rolebindings", Some("team-a")),
        b,
    )
    .await;

    assert_eq!(
        get_status(&jane, "/api/v1/namespaces/team-a/pods").await,
        StatusCode::OK
    );
    assert_eq!(
        get_status(
            &jane,
            "/api/v1/namespaces/team-a/pods?watch=true&timeoutSeconds=1"
        )
        .await,
        StatusCode::OK
    );
    assert_eq!(
        get_status(&jane, "/api/v1/namespaces/default/pods").await,
        StatusCode::FORBIDDEN
    );
    let message = forbidden(&jane, Method::GET, "/api/v1/pods", JSON, Value::Null).await;
    assert_eq!(
        message,
        r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" at the cluster scope"#
    );
    // A subresource is its own resource: `pods` grants no `pods/log`.
    let message = forbidden(
        &jane,
        Method::GET,
        "/api/v1/namespaces/team-a/pods/p/log",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(
        message,
        r#"pods "p" is forbidden: User "jane" cannot get resource "pods/log" in API group "" in the namespace "team-a""#
    );

    // A RoleBinding to a ClusterRole grants the ClusterRole's rules in the namespace only.
    let cm_reader = cluster_role(
        "cm-reader",
        json!([rule(&[""], &["configmaps"], &["list"])]),
    );
    ok(&admin, Method::POST, &rbac("clusterroles", None), cm_reader).await;
    let b = binding(
        true,
        "jane-reads-cms",
        "ClusterRole",
        "cm-reader",
        user("jane"),
    );
    ok(
        &admin,
        Method::POST,
        &rbac("rolebindings", Some("team-a")),
        b,
    )
    .await;
    assert_eq!(
        get_status(&jane, "/api/v1/namespaces/team-a/configmaps").await,
        StatusCode::OK
    );
    assert_eq!(
        get_status(&jane, "/api/v1/namespaces/default/configmaps").await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get_status(&jane, "/api/v1/configmaps").await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_namespace_is_in_its_own_namespace() {
    // Upstream's RequestInfo: `/api/v1/namespaces/<name>` is in namespace `<name>`, so a
    // RoleBinding there may grant reading the namespace itself.
    let server = server().await;
    let admin = server.router();
    let jane = server.router_as(UserInfo::new("jane", ["dev"]));
    namespace(&admin, "team-b").await;
    let reader = role("ns-reader", json!([rule(&[""], &["namespaces"], &["get"])]));
    ok(&admin, Method::POST, &rbac("roles", Some("team-b")), reader).await;
    let b = binding(true, "jane-reads-ns", "Role", "ns-reader", user("jane"));
    ok(
        &admin,
        Method::POST,
        &rbac("rolebindings", Some("team-b")),
        b,
    )
    .await;
    assert_eq!(
        get_status(&jane, "/api/v1/namespaces/team-b").await,
        StatusCode::OK
    );
    let message = forbidden(
        &jane,
        Method::GET,
        "/api/v1/namespaces/default",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(
        message,
        r#"namespaces "default" is forbidden: User "jane" cannot get resource "namespaces" in API group "" in the namespace "default""#
    );
}

#[tokio::test]
async fn groups_service_accounts_and_authenticated_users() {
    let server = server().await;
    let admin = server.router();
    namespace(&admin, "team-a").await;
    let lister = cluster_role(
        "cm-lister",
        json!([rule(&[""], &["configmaps"], &["list"])]),
    );
    ok(&admin, Method::POST, &rbac("clusterroles", None), lister).await;
    let subjects = json!([
        {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "dev"},
        // No namespace: the binding's own.
        {"kind": "ServiceAccount", "name": "robot"},
        {"kind": "ServiceAccount", "name": "deployer", "namespace": "kube-system"},
    ]);
    let b = binding(true, "listers", "ClusterRole", "cm-lister", subjects);
    ok(
        &admin,
        Method::POST,
        &rbac("rolebindings", Some("team-a")),
        b,
    )
    .await;

    let path = "/api/v1/namespaces/team-a/configmaps";
    let as_user =
        |name: &str, groups: &[&str]| server.router_as(UserInfo::new(name, groups.iter().copied()));
    let sa_groups = ["system:serviceaccounts"];
    for (name, groups, want) in [
        ("jane", &["dev"][..], StatusCode::OK),
        ("bob", &["ops"][..], StatusCode::FORBIDDEN),
        (
            "system:serviceaccount:team-a:robot",
            &sa_groups[..],
            StatusCode::OK,
        ),
        (
            "system:serviceaccount:default:robot",
            &sa_groups[..],
            StatusCode::FORBIDDEN,
        ),
        (
            "system:serviceaccount:kube-system:deployer",
            &sa_groups[..],
            StatusCode::OK,
        ),
        (
            "system:serviceaccount:team-a:deployer",
            &sa_groups[..],
            StatusCode::FORBIDDEN,
        ),
    ] {
        assert_eq!(
            get_status(&as_user(name, groups), path).await,
            want,
            "{name}"
        );
    }

    // `router_as` adds `system:authenticated`: a binding to it reaches everybody.
    let everyone = json!([{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:authenticated"}]);
    let b = binding(
        false,
        "everyone-lists",
        "ClusterRole",
        "cm-lister",
        everyone,
    );
    ok(&admin, Method::POST, &rbac("clusterrolebindings", None), b).await;
    assert_eq!(
        get_status(&as_user("bob", &["ops"]), "/api/v1/configmaps").await,
        StatusCode::OK
    );
    assert_eq!(
        get_status(&as_user("carol", &[]), "/api/v1/configmaps").await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn non_resource_urls_follow_the_discovery_roles() {
    let server = server().await;
    let jane = server.router_as(UserInfo::new("jane", ["dev"]));
    // `system:discovery` and `system:public-info-viewer`, bound to `system:authenticated`.
    for path in [
        "/api",
        "/apis",
        "/api/v1",
        "/apis/apps/v1",
        "/openapi/v2",
        "/openapi/v3",
        "/version",
        "/healthz",
    ] {
        assert_eq!(get_status(&jane, path).await, StatusCode::OK, "{path}");
    }
    let message = forbidden(&jane, Method::GET, "/metrics", JSON, Value::Null).await;
    assert_eq!(
        message,
        r#"forbidden: User "jane" cannot get path "/metrics""#
    );
    // Only `get` is granted on the discovery paths.
    let message = forbidden(&jane, Method::POST, "/api", JSON, json!({})).await;
    assert_eq!(message, r#"forbidden: User "jane" cannot post path "/api""#);

    // A URL rule with a trailing `*` grants what it prefixes.
    let admin = server.router();
    let metrics = cluster_role(
        "metrics",
        json!([{"nonResourceURLs": ["/metr*"], "verbs": ["get"]}]),
    );
    ok(&admin, Method::POST, &rbac("clusterroles", None), metrics).await;
    let b = binding(
        false,
        "jane-metrics",
        "ClusterRole",
        "metrics",
        user("jane"),
    );
    ok(&admin, Method::POST, &rbac("clusterrolebindings", None), b).await;
    // Allowed now.
    assert_eq!(get_status(&jane, "/metrics").await, StatusCode::OK);
}

#[tokio::test]
async fn resource_names_limit_a_rule_to_named_objects() {
    let server = server().await;
    let admin = server.router();
    let jane = server.router_as(UserInfo::new("jane", ["dev"]));
    namespace(&admin, "team-a").await;
    for name in ["allowed", "other"] {
        let cm = json!({"metadata": {"name": name}, "data": {"k": "v"}});
        ok(
            &admin,
            Method::POST,
            "/api/v1/namespaces/team-a/configmaps",
            cm,
        )
        .await;
    }
    let named = role(
        "one-cm",
        json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["allowed"],
            "verbs": ["get", "list", "patch"]}]),
    );
    ok(&admin, Method::POST, &rbac("roles", Some("team-a")), named).await;
    let b = binding(true, "jane-one-cm", "Role", "one-cm", user("jane"));
    ok(
        &admin,
        Method::POST,
        &rbac("rolebindings", Some("team-a")),
        b,
    )
    .await;

    let base = "/api/v1/namespaces/team-a/configmaps";
    assert_eq!(
        get_status(&jane, &format!("{base}/allowed")).await,
        StatusCode::OK
    );
    ok(
        &jane,
        Method::PATCH,
        &format!("{base}/allowed"),
        json!({"data": {"k": "w"}}),
    )
    .await;
    let message = forbidden(
        &jane,
        Method::GET,
        &format!("{base}/other"),
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(
        message,
        r#"configmaps "other" is forbidden: User "jane" cannot get resource "configmaps" in API group "" in the namespace "team-a""#
    );
    // A list names no object, so a named rule never allows it.
    assert_eq!(get_status(&jane, base).await, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_missing_role_is_named_in_the_denial() {
    let server = server().await;
    let admin = server.router();
    let jane = server.router_as(UserInfo::new("jane", ["dev"]));
    let b = binding(false, "jane-ghost", "ClusterRole", "ghost", user("jane"));
    ok(&admin, Method::POST, &rbac("clusterrolebindings", None), b).await;
    let message = forbidden(
        &jane,
        Method::GET,
        "/api/v1/namespaces/default/pods",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(
        message,
        r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default": RBAC: clusterrole.rbac.authorization.k8s.io "ghost" not found"#
    );
    // The role appearing later completes the binding.
    let ghost = cluster_role("ghost", json!([rule(&[""], &["pods"], &["list"])]));
    ok(&admin, Method::POST, &rbac("clusterroles", None), ghost).await;
    assert_eq!(
        get_status(&jane, "/api/v1/namespaces/default/pods").await,
        StatusCode::OK
    );
}

/// Objects written straight to the store (not through the API, so nothing waits for the
/// policy) are picked up by the follower within its short lag.
#[tokio::test]
async fn the_policy_follows_writes_that_bypass_the_api() {
    let server = server().await;
    let jane = server.router_as(UserInfo::new("jane", ["dev"]));
    let store = server.store();
    let reader = cluster_role("direct-reader", json!([rule(&[""], &["pods"], &["list"])]));
    store
        .create("clusterroles/direct-reader", reader)
        .await
        .expect("role");
    let b = binding(
        false,
        "direct",
        "ClusterRole",
        "direct-reader",
        user("jane"),
    );
    store
        .create("clusterrolebindings/direct", b)
        .await
        .expect("binding");
    eventually("the direct binding", Duration::from_secs(10), || async {
        get_status(&jane, "/api/v1/pods").await == StatusCode::OK
    })
    .await;

    // A second server over the same store starts with the stored policy.
    let again = ApiServer::new(store.clone()).await.expect("server");
    let jane = again.router_as(UserInfo::new("jane", ["dev"]));
    assert_eq!(get_status(&jane, "/api/v1/pods").await, StatusCode::OK);
}

/// Jane may write roles in team-a and holds `get`/`list` on pods there.
async fn role_writer(server: &ApiServer) -> (Router, Router) {
    let admin = server.router();
    let jane = server.router_as(UserInfo::new("jane", ["dev"]));
    namespace(&admin, "team-a").await;
    let manager = role(
        "role-manager",
        json!([
            rule(
                &["rbac.authorization.k8s.io"],
                &["roles"],
                &["create", "get", "update", "patch"]
            ),
            rule(&[""], &["pods"], &["get", "list"]),
        ]),
    );
    ok(
        &admin,
        Method::POST,
        &rbac("roles", Some("team-a")),
        manager,
    )
    .await;
    let b = binding(true, "jane-manages", "Role", "role-manager", user("jane"));
    ok(
        &admin,
        Method::POST,
        &rbac("rolebindings", Some("team-a")),
        b,
    )
    .await;
    (admin, jane)
}

#[tokio::test]
async fn a_role_may_grant_only_what_its_writer_holds() {
    let server = server().await;
    let (admin, jane) = role_writer(&server).await;
    let roles = rbac("roles", Some("team-a"));

    let reader = role("reader", json!([rule(&[""], &["pods"], &["get"])]));
    ok(&jane, Method::POST, &roles, reader).await;

    let creates_ds = json!([rule(&["apps"], &["daemonsets"], &["create"])]);
    let want = |name: &str| {
        format!(
            "roles.rbac.authorization.k8s.io \"{name}\" is forbidden: {JANE_GRANTS}\n{{APIGroups:[\"apps\"], Resources:[\"daemonsets\"], Verbs:[\"create\"]}}"
        )
    };
    let writer = role("writer", creates_ds.clone());
    let message = forbidden(&jane, Method::POST, &roles, JSON, writer.clone()).await;
    assert_eq!(message, want("writer"));
    // A dry run is checked as the write.
    let message = forbidden(
        &jane,
        Method::POST,
        &format!("{roles}?dryRun=All"),
        JSON,
        writer.clone(),
    )
    .await;
    assert_eq!(message, want("writer"));
    // A generated name is not there yet when the check runs, as upstream.
    let generated = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"generateName": "w-"}, "rules": creates_ds.clone()});
    let message = forbidden(&jane, Method::POST, &roles, JSON, generated).await;
    assert_eq!(
        message,
        format!(
            "roles.rbac.authorization.k8s.io is forbidden: {JANE_GRANTS}\n{{APIGroups:[\"apps\"], Resources:[\"daemonsets\"], Verbs:[\"create\"]}}"
        )
    );

    // A body that does not decode is the 400 it is for anyone, never a write let through.
    let garbled = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "garbled"}, "rules": "all of them"});
    let (code, v) = call(&jane, Method::POST, &roles, JSON, garbled).await;
    assert_eq!(code, StatusCode::BAD_REQUEST, "{v}");

    // Every way of updating: PUT, a merge patch, server-side apply (of a new and an existing
    // object).
    let path = format!("{roles}/reader");
    let mut put = ok(&jane, Method::GET, &path, Value::Null).await;
    put["rules"] = creates_ds.clone();
    assert_eq!(
        forbidden(&jane, Method::PUT, &path, JSON, put).await,
        want("reader")
    );
    let patch = json!({"rules": creates_ds.clone()});
    assert_eq!(
        forbidden(&jane, Method::PATCH, &path, MERGE, patch).await,
        want("reader")
    );
    let applied = role("reader", creates_ds.clone());
    // Forced: the rules are their creator's, and a conflict would be refused first.
    let apply_path = format!("{path}?fieldManager=jane&force=true");
    assert_eq!(
        forbidden(&jane, Method::PATCH, &apply_path, APPLY, applied).await,
        want("reader")
    );
    let new_path = format!("{roles}/applied?fieldManager=jane");
    let applied = role("applied", creates_ds.clone());
    assert_eq!(
        forbidden(&jane, Method::PATCH, &new_path, APPLY, applied).await,
        want("applied")
    );
    // Changes within what she holds pass.
    let narrower = json!({"rules": [rule(&[""], &["pods"], &["list"])]});
    ok(&jane, Method::PATCH, &path, narrower).await;

    // A role she may not escalate: she may still write what the garbage collector writes.
    let big = role("big", creates_ds.clone());
    ok(&admin, Method::POST, &roles, big).await;
    let big_path = format!("{roles}/big");
    ok(
        &jane,
        Method::PATCH,
        &big_path,
        json!({"metadata": {"finalizers": ["example.com/keep"]}}),
    )
    .await;
    let labels = json!({"metadata": {"labels": {"a": "b"}}});
    assert_eq!(
        forbidden(&jane, Method::PATCH, &big_path, MERGE, labels).await,
        want("big")
    );

    // With `escalate` on roles she may grant anything.
    let escalator = role(
        "escalator",
        json!([rule(
            &["rbac.authorization.k8s.io"],
            &["roles"],
            &["escalate"]
        )]),
    );
    ok(&admin, Method::POST, &roles, escalator).await;
    let b = binding(true, "jane-escalates", "Role", "escalator", user("jane"));
    ok(
        &admin,
        Method::POST,
        &rbac("rolebindings", Some("team-a")),
        b,
    )
    .await;
    ok(&jane, Method::POST, &roles, writer).await;
    ok(
        &jane,
        Method::PATCH,
        &big_path,
        json!({"metadata": {"labels": {"a": "b"}}}),
    )
    .await;
}

#[tokio::test]
async fn a_cluster_role_is_checked_against_cluster_wide_rules() {
    let server = server().await;
    let (admin, jane) = role_writer(&server).await;
    let manager = cluster_role(
        "cr-manager",
        json!([rule(
            &["rbac.authorization.k8s.io"],
            &["clusterroles"],
            &["create"]
        )]),
    );
    ok(&admin, Method::POST, &rbac("clusterroles", None), manager).await;
    let b = binding(
        false,
        "jane-manages-crs",
        "ClusterRole",
        "cr-manager",
        user("jane"),
    );
    ok(&admin, Method::POST, &rbac("clusterrolebindings", None), b).await;

    // She lists pods in team-a only: a ClusterRole granting it is beyond her.
    let pods = cluster_role("pod-lister", json!([rule(&[""], &["pods"], &["list"])]));
    let message = forbidden(&jane, Method::POST, &rbac("clusterroles", None), JSON, pods).await;
    assert_eq!(
        message,
        format!(
            "clusterroles.rbac.authorization.k8s.io \"pod-lister\" is forbidden: {JANE_GRANTS}\n{{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"list\"]}}"
        )
    );
    // What she holds cluster-wide she may grant; an aggregation rule needs everything.
    let mine = cluster_role(
        "cr-creator",
        json!([rule(
            &["rbac.authorization.k8s.io"],
            &["clusterroles"],
            &["create"]
        )]),
    );
    ok(&jane, Method::POST, &rbac("clusterroles", None), mine).await;
    let aggregating = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "gatherer"},
        "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}});
    let message = forbidden(
        &jane,
        Method::POST,
        &rbac("clusterroles", None),
        JSON,
        aggregating,
    )
    .await;
    assert_eq!(
        message,
        r#"clusterroles.rbac.authorization.k8s.io "gatherer" is forbidden: must have cluster-admin privileges to use the aggregationRule"#
    );
}

#[tokio::test]
async fn a_binding_needs_bind_or_the_roles_permissions() {
    let server = server().await;
    let admin = server.router();
    let jane = server.router_as(UserInfo::new("jane", ["dev"]));
    namespace(&admin, "team-a").await;
    let binder = role(
        "binder",
        json!([
            rule(
                &["rbac.authorization.k8s.io"],
                &["rolebindings"],
                &["create"]
            ),
            rule(&[""], &["pods"], &["get"]),
        ]),
    );
    ok(&admin, Method::POST, &rbac("roles", Some("team-a")), binder).await;
    let b = binding(true, "jane-binds", "Role", "binder", user("jane"));
    ok(
        &admin,
        Method::POST,
        &rbac("rolebindings", Some("team-a")),
        b,
    )
    .await;
    for (name, rules) in [
        (
            "ds-manager",
            json!([rule(&["apps"], &["daemonsets"], &["create", "list"])]),
        ),
        ("pod-getter", json!([rule(&[""], &["pods"], &["get"])])),
    ] {
        ok(
            &admin,
            Method::POST,
            &rbac("clusterroles", None),
            cluster_role(name, rules),
        )
        .await;
    }
    let bindings = rbac("rolebindings", Some("team-a"));

    // Bob may be given what jane holds in team-a, and not more.
    let mine = binding(
        true,
        "bob-gets-pods",
        "ClusterRole",
        "pod-getter",
        user("bob"),
    );
    ok(&jane, Method::POST, &bindings, mine).await;
    let more = binding(
        true,
        "bob-manages-ds",
        "ClusterRole",
        "ds-manager",
        user("bob"),
    );
    let message = forbidden(&jane, Method::POST, &bindings, JSON, more.clone()).await;
    assert_eq!(
        message,
        format!(
            "rolebindings.rbac.authorization.k8s.io \"bob-manages-ds\" is forbidden: {JANE_GRANTS}\n{{APIGroups:[\"apps\"], Resources:[\"daemonsets\"], Verbs:[\"create\" \"list\"]}}"
        )
    );
    // A role that does not exist is the registry's 404.
    let dangling = binding(true, "bob-nothing", "ClusterRole", "nope", user("bob"));
    let (code, v) = call(&jane, Method::POST, &bindings, JSON, dangling).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(
        v["message"],
        r#"clusterroles.rbac.authorization.k8s.io "nope" not found"#
    );

    // `bind` on that one role, in team-a, lets her bind it there.
    let may_bind = role(
        "may-bind-ds",
        json!([{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"],
            "resourceNames": ["ds-manager"], "verbs": ["bind"]}]),
    );
    ok(
        &admin,
        Method::POST,
        &rbac("roles", Some("team-a")),
        may_bind,
    )
    .await;
    let b = binding(true, "jane-may-bind", "Role", "may-bind-ds", user("jane"));
    ok(&admin, Method::POST, &bindings, b).await;
    ok(&jane, Method::POST, &bindings, more).await;
    let bob = server.router_as(UserInfo::new("bob", ["ops"]));
    assert_eq!(
        get_status(&bob, "/apis/apps/v1/namespaces/team-a/daemonsets").await,
        StatusCode::OK
    );
    assert_eq!(
        get_status(&bob, "/apis/apps/v1/namespaces/default/daemonsets").await,
        StatusCode::FORBIDDEN
    );

    // Her `bind` is namespaced: a ClusterRoleBinding of the same role is beyond her.
    let crb_creator = cluster_role(
        "crb-creator",
        json!([rule(
            &["rbac.authorization.k8s.io"],
            &["clusterrolebindings"],
            &["create"]
        )]),
    );
    ok(
        &admin,
        Method::POST,
        &rbac("clusterroles", None),
        crb_creator,
    )
    .await;
    let b = binding(
        false,
        "jane-creates-crbs",
        "ClusterRole",
        "crb-creator",
        user("jane"),
    );
    ok(&admin, Method::POST, &rbac("clusterrolebindings", None), b).await;
    let everywhere = binding(
        false,
        "bob-ds-everywhere",
        "ClusterRole",
        "ds-manager",
        user("bob"),
    );
    let message = forbidden(
        &jane,
        Method::POST,
        &rbac("clusterrolebindings", None),
        JSON,
        everywhere,
    )
    .await;
    assert_eq!(
        message,
        format!(
            "clusterrolebindings.rbac.authorization.k8s.io \"bob-ds-everywhere\" is forbidden: {JANE_GRANTS}\n{{APIGroups:[\"apps\"], Resources:[\"daemonsets\"], Verbs:[\"create\" \"list\"]}}"
        )
    );
}
