//! The reviews `kubectl auth` sends, through the router: SelfSubjectAccessReview,
//! SubjectAccessReview, LocalSubjectAccessReview, SelfSubjectRulesReview and
//! SelfSubjectReview, answered with a 201 and never stored, with upstream's validation.

mod support;

use axum::Router;
use axum::http::{Method, StatusCode};
use pernode_apiserver::ApiServer;
use pernode_auth::user::UserInfo;
use serde_json::{Value, json};

const AUTHZ: &str = "/apis/authorization.k8s.io/v1";
const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";
const JSON: &str = "application/json";

async fn call(router: &Router, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    support::send_json(router, method, path, JSON, body).await
}

/// A POST that must be answered with a 201; the answer.
async fn created(router: &Router, path: &str, body: Value) -> Value {
    let (code, v) = call(router, Method::POST, path, body).await;
    assert_eq!(code, StatusCode::CREATED, "POST {path}: {v}");
    v
}

/// A POST that must fail with `code`; its message.
async fn refused(router: &Router, path: &str, body: Value, code: StatusCode) -> String {
    let (got, v) = call(router, Method::POST, path, body).await;
    assert_eq!(got, code, "POST {path}: {v}");
    v["message"].as_str().unwrap_or_default().to_string()
}

/// Fills `view` from the roles that aggregate into it (the aggregation controller's work,
/// which these servers run without), then binds `subjects` to it cluster-wide.
async fn bind_view(admin: &Router, subjects: Value) {
    let (code, selected) = call(
        admin,
        Method::GET,
        &format!(
            "{RBAC}/clusterroles?labelSelector=rbac.authorization.k8s.io/aggregate-to-view%3Dtrue"
        ),
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{selected}");
    let rules: Vec<Value> = selected["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["rules"].as_array().cloned().unwrap_or_default())
        .collect();
    assert!(!rules.is_empty(), "no role aggregates into view");
    let (code, v) = support::send_json(
        admin,
        Method::PATCH,
        &format!("{RBAC}/clusterroles/view"),
        "application/merge-patch+json",
        json!({"rules": rules}),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{v}");
    created(
        admin,
        &format!("{RBAC}/clusterrolebindings"),
        json!({"metadata": {"name": "jane-view"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                "name": "view"},
            "subjects": subjects}),
    )
    .await;
}

fn jane_subject() -> Value {
    json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"}])
}

async fn server_with_jane_viewing() -> (ApiServer, Router, Router) {
    let server = support::server_with_accounts().await;
    let admin = server.router();
    bind_view(&admin, jane_subject()).await;
    let jane = server.router_as(UserInfo::new("jane", ["dev"]));
    (server, admin, jane)
}

fn ssar(attrs: Value) -> Value {
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "metadata": {"creationTimestamp": null}, "spec": {"resourceAttributes": attrs}})
}

#[tokio::test]
async fn a_self_subject_access_review_answers_for_the_requester() {
    let (server, admin, jane) = server_with_jane_viewing().await;
    let path = format!("{AUTHZ}/selfsubjectaccessreviews");
    let list = ssar(json!({"namespace": "default", "verb": "list", "resource": "pods"}));
    let answer = created(&jane, &path, list.clone()).await;
    assert_eq!(answer["kind"], "SelfSubjectAccessReview");
    assert_eq!(answer["apiVersion"], "authorization.k8s.io/v1");
    assert_eq!(answer["spec"], list["spec"]);
    assert_eq!(answer["status"], json!({"allowed": true}));

    let create = ssar(
        json!({"namespace": "default", "verb": "create", "group": "apps",
        "resource": "daemonsets"}),
    );
    let answer = created(&jane, &path, create).await;
    assert_eq!(answer["status"], json!({"allowed": false}));

    // Non-resource URLs: discovery is for every authenticated user, /metrics is not.
    let path_review =
        |verb: &str, p: &str| json!({"spec": {"nonResourceAttributes": {"verb": verb, "path": p}}});
    let answer = created(&jane, &path, path_review("get", "/apis")).await;
    assert_eq!(answer["status"]["allowed"], true);
    let answer = created(&jane, &path, path_review("get", "/metrics")).await;
    assert_eq!(answer["status"]["allowed"], false);

    // A node's refusal carries the Node authorizer's reason.
    let node = server.router_as(UserInfo::new("system:node:web-1", ["system:nodes"]));
    let answer = created(
        &node,
        &path,
        ssar(json!({"verb": "get", "resource": "nodes", "name": "web-2"})),
    )
    .await;
    assert_eq!(answer["status"]["allowed"], false);
    assert_eq!(
        answer["status"]["reason"],
        "node 'web-1' cannot read 'web-2', only its own Node object"
    );

    // Nothing is stored, so nothing is listed or read.
    let (code, _) = call(&admin, Method::GET, &path, Value::Null).await;
    assert_eq!(code, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn invalid_reviews_are_upstreams_422s() {
    let server = support::server_with_accounts().await;
    let admin = server.router();
    let jane = server.router_as(UserInfo::new("jane", ["dev"]));
    let self_path = format!("{AUTHZ}/selfsubjectaccessreviews");
    assert_eq!(
        refused(
            &jane,
            &self_path,
            json!({"spec": {}}),
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        r#".authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified"#
    );
    assert_eq!(
        refused(
            &jane,
            &self_path,
            json!({"spec": {"resourceAttributes": {"verb": "get"},
                "nonResourceAttributes": {"verb": "get", "path": "/x"}}}),
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        r#".authorization.k8s.io "" is invalid: spec.nonResourceAttributes: Invalid value: "{\"path\":\"/x\",\"verb\":\"get\"}": cannot be specified in combination with resourceAttributes"#
    );
    assert_eq!(
        refused(
            &jane,
            &self_path,
            json!({"metadata": {"name": "mine"}, "spec": {"resourceAttributes": {"verb": "get"}}}),
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        r#".authorization.k8s.io "" is invalid: metadata: Invalid value: "{\"name\":\"mine\"}": must be empty"#
    );
    assert_eq!(
        refused(
            &admin,
            &format!("{AUTHZ}/subjectaccessreviews"),
            json!({"spec": {}}),
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        r#".authorization.k8s.io "" is invalid: [spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified, spec.user: Invalid value: "": at least one of user or group must be specified]"#
    );
    assert_eq!(
        refused(
            &jane,
            &format!("{AUTHZ}/selfsubjectrulesreviews"),
            json!({"spec": {}}),
            StatusCode::BAD_REQUEST
        )
        .await,
        "no namespace on request"
    );
    // The kind must be the resource's.
    let (code, _) = call(
        &jane,
        Method::POST,
        &self_path,
        json!({"kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
            "spec": {"resourceAttributes": {"verb": "get"}}}),
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_subject_access_review_asks_about_another_user() {
    let (_server, admin, jane) = server_with_jane_viewing().await;
    let path = format!("{AUTHZ}/subjectaccessreviews");
    let review = |user: &str, groups: Value| {
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": groups, "uid": "u-1", "extra": {"scopes": ["a"]},
                "resourceAttributes": {"namespace": "default", "verb": "list",
                    "resource": "pods"}}})
    };
    let answer = created(&admin, &path, review("jane", json!([]))).await;
    assert_eq!(answer["status"], json!({"allowed": true}));
    assert_eq!(answer["spec"]["user"], "jane");
    let answer = created(&admin, &path, review("bob", json!(["dev"]))).await;
    assert_eq!(answer["status"], json!({"allowed": false}));
    // Groups count: the privileged group may do anything.
    let answer = created(&admin, &path, review("bob", json!(["system:masters"]))).await;
    assert_eq!(answer["status"]["allowed"], true);
    // A group alone is a subject.
    let answer = created(&admin, &path, review("", json!(["system:masters"]))).await;
    assert_eq!(answer["status"]["allowed"], true);
    // Asking about others is not every user's to do.
    assert_eq!(
        refused(
            &jane,
            &path,
            review("bob", json!([])),
            StatusCode::FORBIDDEN
        )
        .await,
        r#"subjectaccessreviews.authorization.k8s.io is forbidden: User "jane" cannot create resource "subjectaccessreviews" in API group "authorization.k8s.io" at the cluster scope"#
    );
}

#[tokio::test]
async fn a_local_subject_access_review_stays_in_its_namespace() {
    let (_server, admin, _jane) = server_with_jane_viewing().await;
    let path = format!("{AUTHZ}/namespaces/default/localsubjectaccessreviews");
    let review = |namespace: &str| {
        json!({"spec": {"user": "jane",
            "resourceAttributes": {"namespace": namespace, "verb": "get", "resource": "pods"}}})
    };
    let answer = created(&admin, &path, review("default")).await;
    assert_eq!(answer["status"]["allowed"], true);
    assert_eq!(answer["kind"], "LocalSubjectAccessReview");
    assert_eq!(answer["metadata"]["namespace"], "default");
    assert_eq!(
        refused(
            &admin,
            &path,
            review("kube-system"),
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        r#".authorization.k8s.io "" is invalid: spec.resourceAttributes.namespace: Invalid value: "kube-system": must match metadata.namespace"#
    );
    assert_eq!(
        refused(
            &admin,
            &path,
            json!({"metadata": {"namespace": "kube-system"}, "spec": {"user": "jane",
                "resourceAttributes": {"namespace": "kube-system", "verb": "get"}}}),
            StatusCode::BAD_REQUEST
        )
        .await,
        "the namespace of the provided object does not match the namespace sent on the request"
    );
    assert_eq!(
        refused(
            &admin,
            &path,
            json!({"spec": {"user": "jane", "nonResourceAttributes": {"verb": "get", "path": "/api"}}}),
            StatusCode::UNPROCESSABLE_ENTITY
        )
        .await,
        r#".authorization.k8s.io "" is invalid: spec.nonResourceAttributes: Invalid value: "{\"path\":\"/api\",\"verb\":\"get\"}": disallowed on this kind of request"#
    );
}

fn rules_review(namespace: &str) -> Value {
    json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
        "spec": {"namespace": namespace}})
}

#[tokio::test]
async fn a_self_subject_rules_review_lists_the_requesters_rules() {
    let (server, admin, jane) = server_with_jane_viewing().await;
    let path = format!("{AUTHZ}/selfsubjectrulesreviews");
    let answer = created(&jane, &path, rules_review("default")).await;
    assert_eq!(answer["kind"], "SelfSubjectRulesReview");
    let status = &answer["status"];
    assert_eq!(status["incomplete"], false);
    assert!(status.get("evaluationError").is_none(), "{status}");
    let rules = status["resourceRules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        rules.iter().any(|r| r["apiGroups"] == json!([""])
            && r["resources"]
                .as_array()
                .is_some_and(|rs| rs.contains(&json!("pods")))
            && r["verbs"] == json!(["get", "list", "watch"])),
        "{status}"
    );
    // From system:basic-user, bound to every authenticated user.
    assert!(
        rules
            .iter()
            .any(|r| r["resources"]
                == json!(["selfsubjectaccessreviews", "selfsubjectrulesreviews"])),
        "{status}"
    );
    let urls = status["nonResourceRules"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        urls.iter().any(|r| r["nonResourceURLs"]
            .as_array()
            .is_some_and(|u| u.contains(&json!("/api")))),
        "{status}"
    );

    // The admin holds `*` through the bootstrap cluster-admin binding.
    let answer = created(&admin, &path, rules_review("default")).await;
    assert!(
        answer["status"]["resourceRules"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|r| r == &json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]})),
        "{answer}"
    );

    // A node's rules are the Node authorizer's to decide, and cannot be listed.
    let node = server.router_as(UserInfo::new("system:node:web-1", ["system:nodes"]));
    let answer = created(&node, &path, rules_review("default")).await;
    assert_eq!(answer["status"]["incomplete"], true);
    assert_eq!(
        answer["status"]["evaluationError"],
        "node authorizer does not support user rule resolution"
    );

    // A binding to a role that does not exist is named.
    created(
        &admin,
        &format!("{RBAC}/namespaces/default/rolebindings"),
        json!({"metadata": {"name": "ghost"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                "name": "ghost"},
            "subjects": jane_subject()}),
    )
    .await;
    let answer = created(&jane, &path, rules_review("default")).await;
    assert_eq!(answer["status"]["incomplete"], false);
    assert_eq!(
        answer["status"]["evaluationError"],
        r#"role.rbac.authorization.k8s.io "ghost" not found"#
    );
}

#[tokio::test]
async fn a_self_subject_review_names_the_requester() {
    let server = support::server_with_accounts().await;
    let jane = server.router_as(UserInfo::new("jane", ["dev"]));
    let answer = created(
        &jane,
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
    )
    .await;
    assert_eq!(answer["kind"], "SelfSubjectReview");
    assert_eq!(
        answer["status"]["userInfo"],
        json!({"username": "jane", "groups": ["dev", "system:authenticated"]})
    );
    assert!(
        answer["metadata"]["creationTimestamp"].is_string(),
        "{answer}"
    );
    let admin = server.router();
    let answer = created(
        &admin,
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json!({}),
    )
    .await;
    assert_eq!(answer["status"]["userInfo"]["username"], "system:admin");
}
