//! Rows of the non-core kinds against upstream's printers: EndpointSlice, NetworkPolicy,
//! RoleBinding, ClusterRoleBinding, PriorityClass, PodDisruptionBudget, CSIDriver, CSINode,
//! the webhook configurations and CertificateSigningRequest.

mod common;

use common::{ago, cols, columns, named};
use serde_json::{Value, json};

fn meta(name: &str, namespace: Option<&str>, age_secs: i64) -> Value {
    let mut m = json!({"name": name, "uid": "0b7c9d1e-0000-4000-8000-000000000002",
        "resourceVersion": "4242", "creationTimestamp": ago(age_secs)});
    if let Some(ns) = namespace {
        m["namespace"] = json!(ns);
    }
    m
}

#[test]
fn columns_match_upstream() {
    let age = ("Age", "string", 0);
    let name = ("Name", "string", 0);
    assert_eq!(
        columns("endpointslices"),
        cols(&[
            name,
            ("AddressType", "string", 0),
            ("Ports", "string", 0),
            ("Endpoints", "string", 0),
            age
        ])
    );
    assert_eq!(
        columns("networkpolicies"),
        cols(&[name, ("Pod-Selector", "string", 0), age])
    );
    for r in ["rolebindings", "clusterrolebindings"] {
        assert_eq!(
            columns(r),
            cols(&[
                name,
                ("Role", "string", 0),
                age,
                ("Users", "string", 1),
                ("Groups", "string", 1),
                ("ServiceAccounts", "string", 1)
            ]),
            "{r}"
        );
    }
    // No wide column: upstream declares PreemptionPolicy at priority 0.
    assert_eq!(
        columns("priorityclasses"),
        cols(&[
            name,
            ("Value", "integer", 0),
            ("Global-Default", "boolean", 0),
            age,
            ("PreemptionPolicy", "string", 0)
        ])
    );
    assert_eq!(
        columns("poddisruptionbudgets"),
        cols(&[
            name,
            ("Min Available", "string", 0),
            ("Max Unavailable", "string", 0),
            ("Allowed Disruptions", "integer", 0),
            age
        ])
    );
    assert_eq!(
        columns("csidrivers"),
        cols(&[
            name,
            ("AttachRequired", "boolean", 0),
            ("PodInfoOnMount", "boolean", 0),
            ("StorageCapacity", "boolean", 0),
            ("TokenRequests", "string", 0),
            ("RequiresRepublish", "boolean", 0),
            ("Modes", "string", 0),
            age
        ])
    );
    assert_eq!(
        columns("csinodes"),
        cols(&[name, ("Drivers", "integer", 0), age])
    );
    assert_eq!(
        columns("certificatesigningrequests"),
        cols(&[
            name,
            age,
            ("SignerName", "string", 0),
            ("Requestor", "string", 0),
            ("RequestedDuration", "string", 0),
            ("Condition", "string", 0)
        ])
    );
    for r in [
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    ] {
        assert_eq!(
            columns(r),
            cols(&[name, ("Webhooks", "integer", 0), age]),
            "{r}"
        );
    }
}

fn slice(ports: Value, endpoints: Value) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "web-7xk2p", "generateName": "web-", "namespace": "default",
            "labels": {"endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
                       "kubernetes.io/service-name": "web"},
            "creationTimestamp": ago(120)},
        "addressType": "IPv4", "ports": ports, "endpoints": endpoints,
    })
}

fn endpoint(addresses: &[&str]) -> Value {
    json!({"addresses": addresses, "conditions": {"ready": true, "serving": true, "terminating": false},
           "nodeName": "n1", "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "default"}})
}

#[test]
fn endpoint_slice_ports_and_endpoints() {
    let c = named(
        "endpointslices",
        &slice(
            json!([{"name": "http", "port": 8080, "protocol": "TCP"}]),
            json!([endpoint(&["10.244.1.5"]), endpoint(&["10.244.2.7"])]),
        ),
    );
    assert_eq!(c["Name"], "web-7xk2p");
    assert_eq!(c["AddressType"], "IPv4");
    assert_eq!(c["Ports"], "8080");
    assert_eq!(c["Endpoints"], "10.244.1.5,10.244.2.7");
    assert_eq!(c["Age"], "2m");

    // A port without a number prints its name, without either `*`; past three, `+ N more...`
    // over every entry (every address of every endpoint).
    let c = named(
        "endpointslices",
        &slice(
            json!([{"port": 80}, {"name": "grpc"}, {}, {"port": 9090}, {"port": 9091}]),
            json!([
                endpoint(&["10.0.0.1", "10.0.0.2"]),
                endpoint(&["10.0.0.3"]),
                endpoint(&["10.0.0.4"])
            ]),
        ),
    );
    assert_eq!(c["Ports"], "80,grpc,* + 2 more...");
    assert_eq!(c["Endpoints"], "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...");

    // Nothing: `<unset>` (not `<none>`). The controller writes `ports: null` for a
    // Service without ports, and `endpoints` may be empty.
    let c = named("endpointslices", &slice(Value::Null, json!([])));
    assert_eq!(c["Ports"], "<unset>");
    assert_eq!(c["Endpoints"], "<unset>");
}

fn netpol(spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
           "metadata": meta("deny-all", Some("prod"), 3600 * 5), "spec": spec})
}

#[test]
fn network_policy_pod_selector() {
    // `podSelector: {}` selects every pod: `<none>`, as `metav1.FormatLabelSelector`.
    let c = named(
        "networkpolicies",
        &netpol(json!({"podSelector": {}, "policyTypes": ["Ingress"]})),
    );
    assert_eq!(c["Name"], "deny-all");
    assert_eq!(c["Pod-Selector"], "<none>");
    assert_eq!(c["Age"], "5h");
    assert_eq!(
        named("networkpolicies", &netpol(json!({})))["Pod-Selector"],
        "<none>"
    );

    let c = named(
        "networkpolicies",
        &netpol(json!({"podSelector": {
            "matchLabels": {"app": "api", "tier": "backend"},
            "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "canary"]},
                                 {"key": "legacy", "operator": "DoesNotExist"}]},
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}],
                         "ports": [{"protocol": "TCP", "port": 8080}]}],
            "policyTypes": ["Ingress"]})),
    );
    // Requirements sorted by key, values sorted, as `labels.Selector.String()`.
    assert_eq!(
        c["Pod-Selector"],
        "app=api,env in (canary,prod),!legacy,tier=backend"
    );
}

#[test]
fn role_bindings() {
    let rb = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": meta("pod-readers", Some("dev"), 86400 * 40),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [
            {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"},
            {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
            {"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "devs"},
            {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "joe"},
            {"kind": "ServiceAccount", "name": "default", "namespace": "dev"},
        ],
    });
    let c = named("rolebindings", &rb);
    assert_eq!(c["Name"], "pod-readers");
    assert_eq!(c["Role"], "Role/pod-reader");
    assert_eq!(c["Age"], "40d");
    assert_eq!(c["Users"], "jane, joe");
    assert_eq!(c["Groups"], "devs");
    assert_eq!(c["ServiceAccounts"], "tools/ci, dev/default");

    // No subjects: empty cells, not `<none>`.
    let crb = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": meta("system:basic-user", None, 600),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:basic-user"},
    });
    let c = named("clusterrolebindings", &crb);
    assert_eq!(c["Role"], "ClusterRole/system:basic-user");
    assert_eq!(c["Users"], "");
    assert_eq!(c["Groups"], "");
    assert_eq!(c["ServiceAccounts"], "");
    let mut crb = crb;
    crb["subjects"] = json!([{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": "system:authenticated"}]);
    assert_eq!(
        named("clusterrolebindings", &crb)["Groups"],
        "system:authenticated"
    );
}

#[test]
fn priority_classes() {
    let pc = json!({
        "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": meta("system-node-critical", None, 86400 * 2),
        "value": 2000001000, "globalDefault": false, "preemptionPolicy": "PreemptLowerPriority",
        "description": "Used for system critical pods that must not be moved from their current node.",
    });
    let c = named("priorityclasses", &pc);
    assert_eq!(c["Name"], "system-node-critical");
    assert_eq!(c["Value"], 2000001000);
    assert_eq!(c["Global-Default"], false);
    assert_eq!(c["Age"], "2d");
    assert_eq!(c["PreemptionPolicy"], "PreemptLowerPriority");

    let pc = json!({"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
        "metadata": meta("low", None, 30), "value": -10, "globalDefault": true});
    let c = named("priorityclasses", &pc);
    assert_eq!(c["Value"], -10);
    assert_eq!(c["Global-Default"], true);
    assert_eq!(c["PreemptionPolicy"], "");
}

fn pdb(spec: Value, allowed: i64) -> Value {
    json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": meta("web", Some("default"), 900), "spec": spec,
        "status": {"currentHealthy": 3, "desiredHealthy": 2, "disruptionsAllowed": allowed,
                   "expectedPods": 3, "observedGeneration": 1},
    })
}

#[test]
fn pod_disruption_budgets() {
    let c = named(
        "poddisruptionbudgets",
        &pdb(
            json!({"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}),
            1,
        ),
    );
    assert_eq!(c["Min Available"], "2");
    assert_eq!(c["Max Unavailable"], "N/A");
    assert_eq!(c["Allowed Disruptions"], 1);
    assert_eq!(c["Age"], "15m");

    let c = named(
        "poddisruptionbudgets",
        &pdb(
            json!({"maxUnavailable": "25%", "unhealthyPodEvictionPolicy": "AlwaysAllow"}),
            0,
        ),
    );
    assert_eq!(c["Min Available"], "N/A");
    assert_eq!(c["Max Unavailable"], "25%");
    assert_eq!(c["Allowed Disruptions"], 0);

    let mut bare = pdb(json!({}), 0);
    bare.as_object_mut().expect("object").remove("status");
    let c = named("poddisruptionbudgets", &bare);
    assert_eq!(c["Min Available"], "N/A");
    assert_eq!(c["Max Unavailable"], "N/A");
    assert_eq!(c["Allowed Disruptions"], 0);
}

#[test]
fn csi_drivers() {
    // As defaulting leaves one created with only a name.
    let d = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
        "metadata": meta("ebs.csi.aws.com", None, 3600),
        "spec": {"attachRequired": true, "fsGroupPolicy": "ReadWriteOnceWithFSType",
                 "podInfoOnMount": false, "requiresRepublish": false, "seLinuxMount": false,
                 "storageCapacity": false, "volumeLifecycleModes": ["Persistent"]},
    });
    let c = named("csidrivers", &d);
    assert_eq!(c["Name"], "ebs.csi.aws.com");
    assert_eq!(c["AttachRequired"], true);
    assert_eq!(c["PodInfoOnMount"], false);
    assert_eq!(c["StorageCapacity"], false);
    assert_eq!(c["TokenRequests"], "<unset>");
    assert_eq!(c["RequiresRepublish"], false);
    assert_eq!(c["Modes"], "Persistent");
    assert_eq!(c["Age"], "60m");

    let d = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
        "metadata": meta("secrets-store.csi.k8s.io", None, 60),
        "spec": {"attachRequired": false, "podInfoOnMount": true, "storageCapacity": true,
                 "requiresRepublish": true,
                 "tokenRequests": [{"audience": "api://AzureADTokenExchange", "expirationSeconds": 3600}, {"audience": ""}],
                 "volumeLifecycleModes": ["Persistent", "Ephemeral"]},
    });
    let c = named("csidrivers", &d);
    assert_eq!(c["AttachRequired"], false);
    assert_eq!(c["PodInfoOnMount"], true);
    assert_eq!(c["StorageCapacity"], true);
    assert_eq!(c["TokenRequests"], "api://AzureADTokenExchange,");
    assert_eq!(c["RequiresRepublish"], true);
    assert_eq!(c["Modes"], "Persistent,Ephemeral");

    // Unset fields read as upstream's defaults: attach required, the rest false.
    let d = json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": meta("x", None, 5), "spec": {}});
    let c = named("csidrivers", &d);
    assert_eq!(c["AttachRequired"], true);
    assert_eq!(c["PodInfoOnMount"], false);
    assert_eq!(c["Modes"], "<none>");
}

#[test]
fn csi_nodes_and_webhook_configurations() {
    let n = json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
        "metadata": {"name": "node-1", "creationTimestamp": ago(7200),
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": "u"}]},
        "spec": {"drivers": [
            {"name": "ebs.csi.aws.com", "nodeID": "i-0abc", "allocatable": {"count": 25},
             "topologyKeys": ["topology.ebs.csi.aws.com/zone"]},
            {"name": "efs.csi.aws.com", "nodeID": "i-0abc"},
        ]},
    });
    let c = named("csinodes", &n);
    assert_eq!(c["Name"], "node-1");
    assert_eq!(c["Drivers"], 2);
    assert_eq!(c["Age"], "120m");
    let n = json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
        "metadata": meta("node-2", None, 5), "spec": {"drivers": null}});
    assert_eq!(named("csinodes", &n)["Drivers"], 0);

    let hook = json!({"name": "pod-policy.example.com", "admissionReviewVersions": ["v1"],
        "clientConfig": {"service": {"name": "webhook", "namespace": "default", "port": 443}},
        "sideEffects": "None", "failurePolicy": "Fail", "matchPolicy": "Equivalent",
        "timeoutSeconds": 10, "rules": [{"apiGroups": [""], "apiVersions": ["v1"],
            "operations": ["CREATE"], "resources": ["pods"], "scope": "*"}]});
    for (resource, kind) in [
        (
            "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration",
        ),
        (
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
        ),
    ] {
        let cfg = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": meta("pod-policy", None, 600), "webhooks": [hook, hook]});
        let c = named(resource, &cfg);
        assert_eq!(c["Name"], "pod-policy");
        assert_eq!(c["Webhooks"], 2, "{resource}");
        assert_eq!(c["Age"], "10m");
        let empty = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
            "metadata": meta("empty", None, 600)});
        assert_eq!(named(resource, &empty)["Webhooks"], 0, "{resource}");
    }
}

fn csr(spec: Value, status: Value) -> Value {
    json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
           "metadata": meta("node-csr-x", None, 90), "spec": spec, "status": status})
}

#[test]
fn certificate_signing_request_condition_and_duration() {
    let spec = json!({"request": "LS0t", "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
        "username": "system:bootstrap:abcdef", "usages": ["client auth"]});
    let c = named("certificatesigningrequests", &csr(spec.clone(), json!({})));
    assert_eq!(c["Name"], "node-csr-x");
    assert_eq!(c["Age"], "90s");
    assert_eq!(
        c["SignerName"],
        "kubernetes.io/kube-apiserver-client-kubelet"
    );
    assert_eq!(c["Requestor"], "system:bootstrap:abcdef");
    assert_eq!(c["RequestedDuration"], "<none>");
    assert_eq!(c["Condition"], "Pending");

    // Denied wins over Approved; Failed and Issued are appended.
    let condition = |types: &[&str], certificate: &str| {
        let conditions: Vec<Value> = types
            .iter()
            .map(|t| json!({"type": t, "status": "True"}))
            .collect();
        let status = json!({"conditions": conditions, "certificate": certificate});
        named("certificatesigningrequests", &csr(spec.clone(), status))["Condition"].clone()
    };
    assert_eq!(condition(&["Approved"], ""), "Approved");
    assert_eq!(condition(&["Approved"], "LS0t"), "Approved,Issued");
    assert_eq!(condition(&["Approved", "Failed"], ""), "Approved,Failed");
    assert_eq!(condition(&["Approved", "Denied"], ""), "Denied");
    assert_eq!(condition(&["Failed"], ""), "Pending,Failed");

    let mut with_duration = spec.clone();
    with_duration["expirationSeconds"] = json!(86400);
    with_duration["signerName"] = json!("");
    let c = named("certificatesigningrequests", &csr(with_duration, json!({})));
    assert_eq!(c["RequestedDuration"], "24h");
    assert_eq!(c["SignerName"], "<none>");
}
