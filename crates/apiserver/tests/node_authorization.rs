//! A kubelet's identity (`system:node:web-1` in `system:nodes`) through the router: what the
//! Node authorizer and NodeRestriction allow it, and upstream's exact refusals. Everything a
//! node is allowed here is decided by the Node authorizer itself (it holds upstream's static
//! node rules), so these hold whatever RBAC adds behind it; the refusals' reasons are the Node
//! authorizer's or NodeRestriction's, which RBAC's empty reason leaves as they are.

mod support;

use axum::Router;
use axum::http::{Method, StatusCode};
use pernode_apiserver::ApiServer;
use pernode_auth::user::UserInfo;
use serde_json::{Value, json};

const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";

fn node_router(server: &ApiServer, node: &str) -> Router {
    server.router_as(UserInfo::new(
        format!("system:node:{node}"),
        ["system:nodes"],
    ))
}

async fn call(
    router: &Router,
    method: Method,
    path: &str,
    content_type: &str,
    body: Value,
) -> (StatusCode, Value) {
    support::send_json(router, method, path, content_type, body).await
}

/// A request that must succeed; its body.
async fn ok(router: &Router, method: Method, path: &str, content_type: &str, body: Value) -> Value {
    let (code, v) = call(router, method.clone(), path, content_type, body).await;
    assert!(code.is_success(), "{method} {path}: {code} {v}");
    v
}

/// A request that must be refused with a 403; its message.
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

/// A server with nodes `web-1` and `web-2`, each running one pod in `default` (`pod-1`
/// references secret `tls` and configmap `conf`; `pod-2` references `other`).
async fn cluster() -> ApiServer {
    let server = support::server_with_accounts().await;
    let admin = server.router();
    for node in ["web-1", "web-2"] {
        ok(
            &admin,
            Method::POST,
            "/api/v1/nodes",
            JSON,
            json!({"metadata": {"name": node, "labels": {"kubernetes.io/hostname": node}}}),
        )
        .await;
    }
    for (kind, name) in [
        ("secrets", "tls"),
        ("secrets", "unrelated"),
        ("secrets", "other"),
        ("configmaps", "conf"),
        ("configmaps", "other-conf"),
    ] {
        ok(
            &admin,
            Method::POST,
            &format!("/api/v1/namespaces/default/{kind}"),
            JSON,
            json!({"metadata": {"name": name}, "data": {}}),
        )
        .await;
    }
    let pod = |name: &str, node: &str, volumes: Value| {
        json!({
            "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {
                "nodeName": node,
                "containers": [{"name": "c", "image": "nginx"}],
                "volumes": volumes,
            },
        })
    };
    ok(
        &admin,
        Method::POST,
        "/api/v1/namespaces/default/pods",
        JSON,
        pod(
            "pod-1",
            "web-1",
            json!([
                {"name": "t", "secret": {"secretName": "tls"}},
                {"name": "c", "configMap": {"name": "conf"}},
            ]),
        ),
    )
    .await;
    ok(
        &admin,
        Method::POST,
        "/api/v1/namespaces/default/pods",
        JSON,
        pod(
            "pod-2",
            "web-2",
            json!([{"name": "t", "secret": {"secretName": "other"}}]),
        ),
    )
    .await;
    server
}

#[tokio::test]
async fn a_node_reads_secrets_and_configmaps_of_its_pods_only() {
    let server = cluster().await;
    let node = node_router(&server, "web-1");
    let secret = ok(
        &node,
        Method::GET,
        "/api/v1/namespaces/default/secrets/tls",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(secret["metadata"]["name"], "tls");
    ok(
        &node,
        Method::GET,
        "/api/v1/namespaces/default/configmaps/conf",
        JSON,
        Value::Null,
    )
    .await;
    // The kubelet's watch of one object: a list by an exact metadata.name selector.
    let list = ok(
        &node,
        Method::GET,
        "/api/v1/namespaces/default/secrets?fieldSelector=metadata.name%3Dtls",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(list["items"][0]["metadata"]["name"], "tls");

    assert_eq!(
        forbidden(
            &node,
            Method::GET,
            "/api/v1/namespaces/default/secrets/unrelated",
            JSON,
            Value::Null
        )
        .await,
        r#"secrets "unrelated" is forbidden: User "system:node:web-1" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'web-1' and this object"#
    );
    // Another node's pod's secret is as unrelated.
    assert_eq!(
        forbidden(
            &node,
            Method::GET,
            "/api/v1/namespaces/default/secrets/other",
            JSON,
            Value::Null
        )
        .await,
        r#"secrets "other" is forbidden: User "system:node:web-1" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'web-1' and this object"#
    );
    assert_eq!(
        forbidden(
            &node,
            Method::GET,
            "/api/v1/namespaces/default/configmaps/other-conf",
            JSON,
            Value::Null
        )
        .await,
        r#"configmaps "other-conf" is forbidden: User "system:node:web-1" cannot get resource "configmaps" in API group "" in the namespace "default": no relationship found between node 'web-1' and this object"#
    );
    assert_eq!(
        forbidden(
            &node,
            Method::GET,
            "/api/v1/namespaces/default/secrets",
            JSON,
            Value::Null
        )
        .await,
        r#"secrets is forbidden: User "system:node:web-1" cannot list resource "secrets" in API group "" in the namespace "default": No Object name found"#
    );
    assert_eq!(
        forbidden(
            &node,
            Method::DELETE,
            "/api/v1/namespaces/default/secrets/tls",
            JSON,
            Value::Null
        )
        .await,
        r#"secrets "tls" is forbidden: User "system:node:web-1" cannot delete resource "secrets" in API group "" in the namespace "default": can only read resources of this type"#
    );
    // web-2 reads its own pod's secret, not web-1's.
    let other = node_router(&server, "web-2");
    ok(
        &other,
        Method::GET,
        "/api/v1/namespaces/default/secrets/other",
        JSON,
        Value::Null,
    )
    .await;
    forbidden(
        &other,
        Method::GET,
        "/api/v1/namespaces/default/secrets/tls",
        JSON,
        Value::Null,
    )
    .await;
    // Once its pod is gone, so is the node's access.
    ok(
        &server.router(),
        Method::DELETE,
        "/api/v1/namespaces/default/pods/pod-1?gracePeriodSeconds=0",
        JSON,
        Value::Null,
    )
    .await;
    forbidden(
        &node,
        Method::GET,
        "/api/v1/namespaces/default/secrets/tls",
        JSON,
        Value::Null,
    )
    .await;
}

#[tokio::test]
async fn a_node_cannot_patch_another_node() {
    let server = cluster().await;
    let node = node_router(&server, "web-1");
    // The PATCH itself is allowed by the Node authorizer and refused by NodeRestriction.
    assert_eq!(
        forbidden(
            &node,
            Method::PATCH,
            "/api/v1/nodes/web-2",
            STRATEGIC,
            json!({"metadata": {"labels": {"team": "a"}}})
        )
        .await,
        r#"nodes "web-2" is forbidden: node "web-1" is not allowed to modify node "web-2""#
    );
    assert_eq!(
        forbidden(
            &node,
            Method::PATCH,
            "/api/v1/nodes/web-2/status",
            STRATEGIC,
            json!({"status": {"phase": "Running"}})
        )
        .await,
        r#"nodes "web-2" is forbidden: node "web-1" is not allowed to modify node "web-2""#
    );
    // `kubectl patch node web-2` reads the node first: that GET is what it reports.
    assert_eq!(
        forbidden(&node, Method::GET, "/api/v1/nodes/web-2", JSON, Value::Null).await,
        r#"nodes "web-2" is forbidden: User "system:node:web-1" cannot get resource "nodes" in API group "" at the cluster scope: node 'web-1' cannot read 'web-2', only its own Node object"#
    );
    assert_eq!(
        forbidden(&node, Method::GET, "/api/v1/nodes", JSON, Value::Null).await,
        r#"nodes is forbidden: User "system:node:web-1" cannot list resource "nodes" in API group "" at the cluster scope: node 'web-1' cannot read all nodes, only its own Node object"#
    );
    assert_eq!(
        forbidden(
            &node,
            Method::DELETE,
            "/api/v1/nodes/web-1",
            JSON,
            Value::Null
        )
        .await,
        r#"nodes "web-1" is forbidden: User "system:node:web-1" cannot delete resource "nodes" in API group "" at the cluster scope"#
    );
    // web-2 is untouched.
    let web2 = ok(
        &server.router(),
        Method::GET,
        "/api/v1/nodes/web-2",
        JSON,
        Value::Null,
    )
    .await;
    assert!(web2["metadata"]["labels"].get("team").is_none());
}

#[tokio::test]
async fn a_node_patches_its_own_node_and_status() {
    let server = cluster().await;
    let node = node_router(&server, "web-1");
    let own = ok(&node, Method::GET, "/api/v1/nodes/web-1", JSON, Value::Null).await;
    assert_eq!(own["metadata"]["name"], "web-1");
    // A watch of its own Node by name.
    ok(
        &node,
        Method::GET,
        "/api/v1/nodes?fieldSelector=metadata.name%3Dweb-1",
        JSON,
        Value::Null,
    )
    .await;
    let patched = ok(
        &node,
        Method::PATCH,
        "/api/v1/nodes/web-1/status",
        STRATEGIC,
        json!({"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}]}}),
    )
    .await;
    assert_eq!(patched["status"]["conditions"][0]["type"], "Ready");
    // Labels it owns, yes; others, no; taints, never.
    ok(
        &node,
        Method::PATCH,
        "/api/v1/nodes/web-1",
        MERGE,
        json!({"metadata": {"labels": {"topology.kubernetes.io/zone": "z1", "team": "a"}}}),
    )
    .await;
    assert_eq!(
        forbidden(
            &node,
            Method::PATCH,
            "/api/v1/nodes/web-1",
            MERGE,
            json!({"metadata": {"labels": {"node-role.kubernetes.io/control-plane": "", "node-restriction.kubernetes.io/pool": "a"}}})
        )
        .await,
        r#"nodes "web-1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/pool, node-role.kubernetes.io/control-plane"#
    );
    assert_eq!(
        forbidden(
            &node,
            Method::PATCH,
            "/api/v1/nodes/web-1",
            MERGE,
            json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}})
        )
        .await,
        r#"nodes "web-1" is forbidden: node "web-1" is not allowed to modify taints"#
    );
}

#[tokio::test]
async fn a_node_registers_itself_only() {
    let server = cluster().await;
    let node = node_router(&server, "web-3");
    // A kubelet looks for its Node before registering it.
    let (code, _) = call(&node, Method::GET, "/api/v1/nodes/web-3", JSON, Value::Null).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(
        forbidden(
            &node,
            Method::POST,
            "/api/v1/nodes",
            JSON,
            json!({"metadata": {"name": "web-4"}})
        )
        .await,
        r#"nodes "web-4" is forbidden: node "web-3" is not allowed to modify node "web-4""#
    );
    assert_eq!(
        forbidden(
            &node,
            Method::POST,
            "/api/v1/nodes",
            JSON,
            json!({"metadata": {"name": "web-3", "labels": {"node-restriction.kubernetes.io/pool": "a"}}})
        )
        .await,
        r#"nodes "web-3" is forbidden: node "web-3" is not allowed to set the following labels: node-restriction.kubernetes.io/pool"#
    );
    ok(
        &node,
        Method::POST,
        "/api/v1/nodes",
        JSON,
        json!({"metadata": {"name": "web-3", "labels": {"kubernetes.io/hostname": "web-3", "node.kubernetes.io/instance-type": "small"}}}),
    )
    .await;
}

#[tokio::test]
async fn a_node_updates_the_status_of_its_own_pods_only() {
    let server = cluster().await;
    let node = node_router(&server, "web-1");
    // The kubelet's status patch (the status alone: an edit of the stored pod).
    let patched = ok(
        &node,
        Method::PATCH,
        "/api/v1/namespaces/default/pods/pod-1/status",
        STRATEGIC,
        json!({"status": {"phase": "Running"}}),
    )
    .await;
    assert_eq!(patched["status"]["phase"], "Running");
    let refused = r#"pods "pod-2" is forbidden: node "web-1" can only update pod status for pods with spec.nodeName set to itself"#;
    assert_eq!(
        forbidden(
            &node,
            Method::PATCH,
            "/api/v1/namespaces/default/pods/pod-2/status",
            STRATEGIC,
            json!({"status": {"phase": "Running"}})
        )
        .await,
        refused
    );
    // The general way: a JSON patch, and a PUT of the whole pod.
    assert_eq!(
        forbidden(
            &node,
            Method::PATCH,
            "/api/v1/namespaces/default/pods/pod-2/status",
            "application/json-patch+json",
            json!([{"op": "add", "path": "/status/phase", "value": "Running"}])
        )
        .await,
        refused
    );
    let mut pod2 = ok(
        &server.router(),
        Method::GET,
        "/api/v1/namespaces/default/pods/pod-2",
        JSON,
        Value::Null,
    )
    .await;
    pod2["status"]["phase"] = json!("Running");
    assert_eq!(
        forbidden(
            &node,
            Method::PUT,
            "/api/v1/namespaces/default/pods/pod-2/status",
            JSON,
            pod2
        )
        .await,
        refused
    );
    // Labels do not change through the status.
    assert_eq!(
        forbidden(
            &node,
            Method::PATCH,
            "/api/v1/namespaces/default/pods/pod-1/status",
            MERGE,
            json!({"metadata": {"labels": {"app": "other"}}, "status": {"phase": "Running"}})
        )
        .await,
        r#"pods "pod-1" is forbidden: node "web-1" cannot update labels through pod status"#
    );
    // The pod itself is not the node's to update.
    assert_eq!(
        forbidden(
            &node,
            Method::PATCH,
            "/api/v1/namespaces/default/pods/pod-1",
            MERGE,
            json!({"metadata": {"labels": {"app": "other"}}})
        )
        .await,
        r#"pods "pod-1" is forbidden: User "system:node:web-1" cannot patch resource "pods" in API group "" in the namespace "default""#
    );
}

#[tokio::test]
async fn a_node_reads_its_own_pods() {
    let server = cluster().await;
    let node = node_router(&server, "web-1");
    ok(
        &node,
        Method::GET,
        "/api/v1/namespaces/default/pods/pod-1",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(
        forbidden(
            &node,
            Method::GET,
            "/api/v1/namespaces/default/pods/pod-2",
            JSON,
            Value::Null
        )
        .await,
        r#"pods "pod-2" is forbidden: User "system:node:web-1" cannot get resource "pods" in API group "" in the namespace "default": no relationship found between node 'web-1' and this object"#
    );
    let list = ok(
        &node,
        Method::GET,
        "/api/v1/pods?fieldSelector=spec.nodeName%3Dweb-1",
        JSON,
        Value::Null,
    )
    .await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["pod-1"]);
    assert_eq!(
        forbidden(&node, Method::GET, "/api/v1/pods", JSON, Value::Null).await,
        r#"pods is forbidden: User "system:node:web-1" cannot list resource "pods" in API group "" at the cluster scope: can only list/watch pods with spec.nodeName field selector"#
    );
    assert_eq!(
        forbidden(
            &node,
            Method::GET,
            "/api/v1/pods?fieldSelector=spec.nodeName%3Dweb-2",
            JSON,
            Value::Null
        )
        .await,
        r#"pods is forbidden: User "system:node:web-1" cannot list resource "pods" in API group "" at the cluster scope: can only list/watch pods with spec.nodeName field selector"#
    );
}

#[tokio::test]
async fn a_node_creates_only_mirror_pods_of_its_own() {
    let server = cluster().await;
    let node = node_router(&server, "web-1");
    let uid = ok(
        &server.router(),
        Method::GET,
        "/api/v1/nodes/web-1",
        JSON,
        Value::Null,
    )
    .await["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mirror = |name: &str, node_name: &str, owner_uid: &str, volumes: Value| {
        json!({
            "metadata": {
                "name": name,
                "annotations": {"kubernetes.io/config.mirror": "hash"},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "web-1", "uid": owner_uid, "controller": true}],
            },
            "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "etcd"}], "volumes": volumes},
        })
    };
    let pods = "/api/v1/namespaces/default/pods";
    assert_eq!(
        forbidden(
            &node,
            Method::POST,
            pods,
            JSON,
            json!({"metadata": {"name": "plain"}, "spec": {"nodeName": "web-1", "containers": [{"name": "c", "image": "nginx"}]}})
        )
        .await,
        r#"pods "plain" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "web-1" can only create mirror pods"#
    );
    assert_eq!(
        forbidden(
            &node,
            Method::POST,
            pods,
            JSON,
            mirror("m", "web-2", &uid, json!([]))
        )
        .await,
        r#"pods "m" is forbidden: node "web-1" can only create pods with spec.nodeName set to itself"#
    );
    assert_eq!(
        forbidden(
            &node,
            Method::POST,
            pods,
            JSON,
            mirror("m", "web-1", "wrong", json!([]))
        )
        .await,
        format!(r#"pods "m" is forbidden: node web-1 UID mismatch: expected wrong got {uid}"#)
    );
    assert_eq!(
        forbidden(
            &node,
            Method::POST,
            pods,
            JSON,
            mirror(
                "m",
                "web-1",
                &uid,
                json!([{"name": "c", "configMap": {"name": "conf"}}])
            )
        )
        .await,
        r#"pods "m" is forbidden: node "web-1" can not create pods that reference configmaps"#
    );
    let created = ok(
        &node,
        Method::POST,
        pods,
        JSON,
        mirror("m", "web-1", &uid, json!([])),
    )
    .await;
    assert_eq!(created["metadata"]["name"], "m");
}

#[tokio::test]
async fn a_node_deletes_and_evicts_only_its_own_pods() {
    let server = cluster().await;
    let node = node_router(&server, "web-1");
    assert_eq!(
        forbidden(
            &node,
            Method::DELETE,
            "/api/v1/namespaces/default/pods/pod-2",
            JSON,
            Value::Null
        )
        .await,
        r#"pods "pod-2" is forbidden: node "web-1" can only delete pods with spec.nodeName set to itself"#
    );
    let eviction = |name: &str| json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": "default"}});
    assert_eq!(
        forbidden(
            &node,
            Method::POST,
            "/api/v1/namespaces/default/pods/pod-2/eviction",
            JSON,
            eviction("pod-2")
        )
        .await,
        r#"pods "pod-2" is forbidden: node web-1 can only evict pods with spec.nodeName set to itself"#
    );
    let (code, missing) = call(
        &node,
        Method::DELETE,
        "/api/v1/namespaces/default/pods/missing",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{missing}");
    ok(
        &node,
        Method::POST,
        "/api/v1/namespaces/default/pods/pod-1/eviction",
        JSON,
        eviction("pod-1"),
    )
    .await;
    ok(
        &node,
        Method::DELETE,
        "/api/v1/namespaces/default/pods/pod-1",
        JSON,
        Value::Null,
    )
    .await;
}

#[tokio::test]
async fn a_node_renews_its_own_lease_only() {
    let server = cluster().await;
    let node = node_router(&server, "web-1");
    let leases = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
    let lease = |name: &str| {
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40},
        })
    };
    ok(&node, Method::POST, leases, JSON, lease("web-1")).await;
    ok(&server.router(), Method::POST, leases, JSON, lease("web-2")).await;
    assert_eq!(
        forbidden(&node, Method::POST, leases, JSON, lease("web-3")).await,
        r#"leases.coordination.k8s.io "web-3" is forbidden: can only access node lease with the same name as the requesting node"#
    );
    let mut own = ok(
        &node,
        Method::GET,
        &format!("{leases}/web-1"),
        JSON,
        Value::Null,
    )
    .await;
    own["spec"]["leaseDurationSeconds"] = json!(41);
    let renewed = ok(&node, Method::PUT, &format!("{leases}/web-1"), JSON, own).await;
    assert_eq!(renewed["spec"]["leaseDurationSeconds"], 41);
    ok(
        &node,
        Method::PATCH,
        &format!("{leases}/web-1"),
        MERGE,
        json!({"spec": {"leaseDurationSeconds": 42}}),
    )
    .await;
    assert_eq!(
        forbidden(
            &node,
            Method::PUT,
            &format!("{leases}/web-2"),
            JSON,
            lease("web-2")
        )
        .await,
        r#"leases.coordination.k8s.io "web-2" is forbidden: User "system:node:web-1" cannot update resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease": can only access node lease with the same name as the requesting node"#
    );
    assert_eq!(
        forbidden(
            &node,
            Method::PATCH,
            &format!("{leases}/web-2"),
            MERGE,
            json!({"spec": {"leaseDurationSeconds": 1}})
        )
        .await,
        r#"leases.coordination.k8s.io "web-2" is forbidden: User "system:node:web-1" cannot patch resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease": can only access node lease with the same name as the requesting node"#
    );
    assert_eq!(
        forbidden(
            &node,
            Method::GET,
            "/apis/coordination.k8s.io/v1/namespaces/default/leases/web-1",
            JSON,
            Value::Null
        )
        .await,
        r#"leases.coordination.k8s.io "web-1" is forbidden: User "system:node:web-1" cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "default": can only access leases in the "kube-node-lease" system namespace"#
    );
}

#[tokio::test]
async fn a_node_records_events_and_nothing_else_by_the_static_rules() {
    let server = cluster().await;
    let node = node_router(&server, "web-1");
    ok(
        &node,
        Method::POST,
        "/api/v1/namespaces/default/events",
        JSON,
        json!({
            "metadata": {"name": "pod-1.started"},
            "involvedObject": {"kind": "Pod", "namespace": "default", "name": "pod-1"},
            "reason": "Started",
            "message": "Started container c",
            "type": "Normal",
            "source": {"component": "kubelet", "host": "web-1"},
        }),
    )
    .await;
    ok(
        &node,
        Method::GET,
        "/api/v1/namespaces/default/services/kubernetes",
        JSON,
        Value::Null,
    )
    .await;
    assert_eq!(
        forbidden(
            &node,
            Method::POST,
            "/api/v1/namespaces/default/configmaps",
            JSON,
            json!({"metadata": {"name": "x"}})
        )
        .await,
        r#"configmaps is forbidden: User "system:node:web-1" cannot create resource "configmaps" in API group "" in the namespace "default": can only read resources of this type"#
    );
    assert_eq!(
        forbidden(
            &node,
            Method::GET,
            "/apis/apps/v1/namespaces/default/daemonsets",
            JSON,
            Value::Null
        )
        .await,
        r#"daemonsets.apps is forbidden: User "system:node:web-1" cannot list resource "daemonsets" in API group "apps" in the namespace "default""#
    );
}

#[tokio::test]
async fn a_node_user_without_a_name_is_refused() {
    let server = cluster().await;
    let nameless = server.router_as(UserInfo::new("system:node:", ["system:nodes"]));
    assert_eq!(
        forbidden(
            &nameless,
            Method::GET,
            "/api/v1/nodes/web-1",
            JSON,
            Value::Null
        )
        .await,
        r#"nodes "web-1" is forbidden: User "system:node:" cannot get resource "nodes" in API group "" at the cluster scope: unknown node for user "system:node:""#
    );
}
