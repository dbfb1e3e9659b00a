//! core/v1 ConfigMap, Secret, ServiceAccount, Service and Endpoints rows against upstream's
//! `printConfigMap`, `printSecret`, `printServiceAccount`, `printService` and
//! `printEndpoints`.

mod common;

use common::{ago, cols, columns, named};
use serde_json::{Value, json};

fn meta(name: &str, age_secs: i64) -> Value {
    json!({
        "name": name, "namespace": "default", "uid": "6f1c2a9e-0000-4000-8000-000000000001",
        "resourceVersion": "812", "creationTimestamp": ago(age_secs),
    })
}

#[test]
fn core_columns_match_upstream() {
    assert_eq!(
        columns("configmaps"),
        cols(&[
            ("Name", "string", 0),
            ("Data", "string", 0),
            ("Age", "string", 0)
        ])
    );
    assert_eq!(
        columns("secrets"),
        cols(&[
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Data", "string", 0),
            ("Age", "string", 0)
        ])
    );
    assert_eq!(
        columns("serviceaccounts"),
        cols(&[
            ("Name", "string", 0),
            ("Secrets", "string", 0),
            ("Age", "string", 0)
        ])
    );
    assert_eq!(
        columns("services"),
        cols(&[
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            ("Age", "string", 0),
            ("Selector", "string", 1)
        ])
    );
    assert_eq!(
        columns("endpoints"),
        cols(&[
            ("Name", "string", 0),
            ("Endpoints", "string", 0),
            ("Age", "string", 0)
        ])
    );
}

#[test]
fn config_map_counts_data_and_binary_data() {
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("kube-root-ca.crt", 300),
        "data": {"ca.crt": "-----BEGIN CERTIFICATE-----\n...", "extra": "x"},
        "binaryData": {"blob": "AAEC"},
    });
    let c = named("configmaps", &cm);
    assert_eq!(c["Name"], "kube-root-ca.crt");
    // Declared `string`, sent as an integer, as upstream.
    assert_eq!(c["Data"], 3);
    assert_eq!(c["Age"], "5m");

    let empty = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("empty", 90)});
    assert_eq!(named("configmaps", &empty)["Data"], 0);
}

#[test]
fn secret_type_and_data_count() {
    let token = json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": meta("builder-token", 7200),
        "type": "kubernetes.io/service-account-token",
        "data": {"ca.crt": "Y2E=", "namespace": "ZGVmYXVsdA==", "token": "dA=="},
    });
    let c = named("secrets", &token);
    assert_eq!(c["Type"], "kubernetes.io/service-account-token");
    assert_eq!(c["Data"], 3);
    assert_eq!(c["Age"], "120m");

    let opaque =
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("o", 10), "type": "Opaque"});
    let c = named("secrets", &opaque);
    assert_eq!(c["Type"], "Opaque");
    assert_eq!(c["Data"], 0);
}

#[test]
fn service_account_counts_secrets() {
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("default", 86400 * 3)});
    let c = named("serviceaccounts", &sa);
    assert_eq!(c["Secrets"], 0);
    assert_eq!(c["Age"], "3d");
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("ci", 60),
        "secrets": [{"name": "ci-token"}, {"name": "ci-dockercfg"}]});
    assert_eq!(named("serviceaccounts", &sa)["Secrets"], 2);
}

fn service(spec: Value, status: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("web", 600), "spec": spec, "status": status})
}

#[test]
fn service_cluster_ip() {
    // The `kubernetes` Service as kube-apiserver creates it.
    let svc = service(
        json!({"type": "ClusterIP", "clusterIP": "10.96.0.1", "clusterIPs": ["10.96.0.1"],
               "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", "sessionAffinity": "None",
               "internalTrafficPolicy": "Cluster",
               "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}]}),
        json!({"loadBalancer": {}}),
    );
    let c = named("services", &svc);
    assert_eq!(c["Name"], "web");
    assert_eq!(c["Type"], "ClusterIP");
    assert_eq!(c["Cluster-IP"], "10.96.0.1");
    assert_eq!(c["External-IP"], "<none>");
    assert_eq!(c["Port(s)"], "443/TCP");
    assert_eq!(c["Age"], "10m");
    assert_eq!(c["Selector"], "<none>");

    // Dual-stack: the first cluster IP; external IPs joined.
    let svc = service(
        json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10", "fd00::a"],
               "externalIPs": ["203.0.113.7", "203.0.113.8"], "selector": {"k8s-app": "kube-dns"},
               "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]}),
        json!({}),
    );
    let c = named("services", &svc);
    assert_eq!(c["Cluster-IP"], "10.96.0.10");
    assert_eq!(c["External-IP"], "203.0.113.7,203.0.113.8");
    assert_eq!(c["Port(s)"], "53/UDP,53/TCP");
    assert_eq!(c["Selector"], "k8s-app=kube-dns");

    // Headless.
    let svc = service(
        json!({"type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"], "selector": {"app": "db"}}),
        json!({}),
    );
    let c = named("services", &svc);
    assert_eq!(c["Cluster-IP"], "None");
    assert_eq!(c["Port(s)"], "<none>");
}

#[test]
fn service_node_port() {
    let svc = service(
        json!({"type": "NodePort", "clusterIP": "10.96.12.34", "clusterIPs": ["10.96.12.34"],
               "externalTrafficPolicy": "Cluster", "selector": {"tier": "front", "app": "web"},
               "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080, "nodePort": 30080},
                         {"name": "metrics", "port": 9100, "protocol": "TCP", "targetPort": 9100}]}),
        json!({"loadBalancer": {}}),
    );
    let c = named("services", &svc);
    assert_eq!(c["Type"], "NodePort");
    assert_eq!(c["External-IP"], "<none>");
    assert_eq!(c["Port(s)"], "80:30080/TCP,9100/TCP");
    assert_eq!(c["Selector"], "app=web,tier=front");
}

#[test]
fn service_load_balancer() {
    let spec = json!({"type": "LoadBalancer", "clusterIP": "10.96.0.50", "clusterIPs": ["10.96.0.50"],
        "ports": [{"port": 443, "protocol": "TCP", "targetPort": 8443, "nodePort": 31443}]});
    let c = named(
        "services",
        &service(spec.clone(), json!({"loadBalancer": {}})),
    );
    assert_eq!(c["External-IP"], "<pending>");
    assert_eq!(c["Port(s)"], "443:31443/TCP");

    // Sorted and de-duplicated; the IP wins over the hostname of one ingress point; never
    // clipped to 16 characters (a kube-apiserver prints wide).
    let status = json!({"loadBalancer": {"ingress": [
        {"hostname": "a1b2c3-123456789.eu-west-1.elb.amazonaws.com"},
        {"ip": "198.51.100.20", "hostname": "ignored.example"},
        {"ip": "198.51.100.20"},
    ]}});
    let c = named("services", &service(spec.clone(), status.clone()));
    assert_eq!(
        c["External-IP"],
        "198.51.100.20,a1b2c3-123456789.eu-west-1.elb.amazonaws.com"
    );

    // Load balancer addresses first, then the external IPs.
    let mut with_external = spec;
    with_external["externalIPs"] = json!(["203.0.113.9"]);
    let c = named("services", &service(with_external.clone(), status));
    assert_eq!(
        c["External-IP"],
        "198.51.100.20,a1b2c3-123456789.eu-west-1.elb.amazonaws.com,203.0.113.9"
    );
    let c = named("services", &service(with_external, json!({})));
    assert_eq!(c["External-IP"], "203.0.113.9");
}

#[test]
fn service_external_name_and_unknown_type() {
    let svc = service(
        json!({"type": "ExternalName", "externalName": "db.example.com", "sessionAffinity": "None"}),
        json!({}),
    );
    let c = named("services", &svc);
    assert_eq!(c["Type"], "ExternalName");
    assert_eq!(c["Cluster-IP"], "<none>");
    assert_eq!(c["External-IP"], "db.example.com");
    assert_eq!(c["Port(s)"], "<none>");

    let c = named("services", &service(json!({}), json!({})));
    assert_eq!(c["Type"], "");
    assert_eq!(c["External-IP"], "<unknown>");
}

fn endpoints(subsets: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": meta("web", 45), "subsets": subsets})
}

fn ep_cell(subsets: Value) -> Value {
    named("endpoints", &endpoints(subsets))["Endpoints"].clone()
}

#[test]
fn endpoints_pairs_and_more() {
    let c = named(
        "endpoints",
        &json!({"apiVersion": "v1", "kind": "Endpoints", "metadata": meta("none", 45)}),
    );
    assert_eq!(c["Endpoints"], "<none>");
    assert_eq!(c["Age"], "45s");

    let two = json!([{"ip": "10.244.1.5", "nodeName": "n1", "targetRef": {"kind": "Pod", "name": "web-1", "namespace": "default"}},
                     {"ip": "10.244.2.7", "nodeName": "n2"}]);
    assert_eq!(
        ep_cell(
            json!([{"addresses": two, "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]}])
        ),
        "10.244.1.5:8080,10.244.2.7:8080"
    );
    // Every address for each port in turn; the count is of every pair.
    assert_eq!(
        ep_cell(
            json!([{"addresses": two, "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}])
        ),
        "10.244.1.5:80,10.244.2.7:80,10.244.1.5:443 + 1 more..."
    );
    // Across subsets; exactly three is not "more".
    assert_eq!(
        ep_cell(json!([
            {"addresses": two, "ports": [{"port": 80}]},
            {"addresses": [{"ip": "10.244.3.9"}], "ports": [{"port": 81}]},
        ])),
        "10.244.1.5:80,10.244.2.7:80,10.244.3.9:81"
    );
    assert_eq!(
        ep_cell(json!([
            {"addresses": two, "ports": [{"port": 80}]},
            {"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "10.0.0.3"}], "ports": [{"port": 81}]},
        ])),
        "10.244.1.5:80,10.244.2.7:80,10.0.0.1:81 + 2 more..."
    );
}

#[test]
fn endpoints_headless_ipv6_and_not_ready() {
    // No ports: bare IPs.
    assert_eq!(
        ep_cell(
            json!([{"addresses": [{"ip": "10.1.0.1"}, {"ip": "10.1.0.2"}, {"ip": "10.1.0.3"}, {"ip": "10.1.0.4"}]}])
        ),
        "10.1.0.1,10.1.0.2,10.1.0.3 + 1 more..."
    );
    // Go's net.JoinHostPort brackets IPv6.
    assert_eq!(
        ep_cell(
            json!([{"addresses": [{"ip": "fd00:10:244::5"}], "ports": [{"port": 53, "protocol": "UDP"}]}])
        ),
        "[fd00:10:244::5]:53"
    );
    // Only not-ready addresses: subsets exist, so not `<none>`, but nothing to show.
    assert_eq!(
        ep_cell(json!([{"notReadyAddresses": [{"ip": "10.244.1.5"}], "ports": [{"port": 80}]}])),
        ""
    );
}
