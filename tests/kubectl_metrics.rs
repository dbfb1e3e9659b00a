//! `/metrics` through the real kubectl: readable by the admin and the `system:monitoring`
//! group only; kubectl's requests move upstream's counters by exactly their number; `pernode
//! up` serves its controllers' work queues on the same page, and a separate `pernode
//! controllers` on its own `--metrics-bind-address`.

mod support;

use std::time::Duration;

use pernode_apiserver::metrics::Samples;
use support::component::Component;
use support::{AGENT_DS, Cluster, eventually};

fn scrape(c: &Cluster, kubeconfig: Option<&str>) -> Samples {
    let mut args = vec!["get", "--raw", "/metrics"];
    if let Some(file) = kubeconfig {
        args.extend(["--kubeconfig", file]);
    }
    Samples::parse(&c.ok(&args))
}

/// `apiserver_request_total`'s labels of a request for a namespaced object of the core group.
fn configmap_request(verb: &str, code: &str) -> Vec<(&'static str, String)> {
    [
        ("verb", verb),
        ("dry_run", ""),
        ("group", ""),
        ("version", "v1"),
        ("resource", "configmaps"),
        ("subresource", ""),
        ("scope", "resource"),
        ("component", "apiserver"),
        ("code", code),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_string()))
    .collect()
}

fn total(samples: &Samples, labels: &[(&'static str, String)]) -> f64 {
    let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
    samples.get("apiserver_request_total", &labels)
}

#[test]
fn metrics_are_for_the_monitoring_group_and_count_kubectls_requests() {
    let c = Cluster::start("apiserver", &[]);
    let monitoring = c.kubeconfig_with_certificate("prom.kubeconfig", "prom", "system:monitoring");
    let other = c.kubeconfig_with_certificate("jane.kubeconfig", "jane", "dev");

    let denied = c.kubectl(&["--kubeconfig", &other, "get", "--raw", "/metrics"]);
    assert!(!denied.ok);
    assert!(
        denied.stderr.contains(
            r#"Error from server (Forbidden): forbidden: User "jane" cannot get path "/metrics""#
        ),
        "{}",
        denied.stderr
    );
    let before = scrape(&c, Some(&monitoring));
    assert!(before.has("apiserver_request_duration_seconds_bucket"));
    assert!(before.has("etcd_disk_backend_commit_duration_seconds_bucket"));

    c.ok(&["create", "configmap", "m1", "--from-literal=k=v"]);
    c.ok(&["create", "configmap", "m2", "--from-literal=k=v"]);
    c.ok(&["get", "configmap", "m1"]);
    assert!(!c.kubectl(&["get", "configmap", "absent"]).ok);
    c.ok(&["delete", "configmap", "m2", "--wait=false"]);

    let after = scrape(&c, None);
    let moved =
        |labels: Vec<(&'static str, String)>| total(&after, &labels) - total(&before, &labels);
    assert_eq!(moved(configmap_request("POST", "201")), 2.0);
    assert_eq!(moved(configmap_request("GET", "200")), 1.0);
    assert_eq!(moved(configmap_request("GET", "404")), 1.0);
    assert_eq!(moved(configmap_request("DELETE", "200")), 1.0);
    let stored = |s: &Samples| s.get("apiserver_storage_objects", &[("resource", "configmaps")]);
    assert_eq!(stored(&after) - stored(&before), 1.0, "m1 stays");
}

#[test]
fn up_serves_its_controllers_work_queue_metrics() {
    let c = Cluster::start("up", &["--nodes", "3"]);
    c.ok_stdin(&["apply", "-f", "-"], AGENT_DS);
    c.ok(&["rollout", "status", "ds/agent", "--timeout=120s"]);
    let daemonset = [("name", "daemonset")];
    eventually(
        Duration::from_secs(30),
        "the DaemonSet controller's queue is drained",
        || {
            let s = scrape(&c, None);
            s.get("workqueue_adds_total", &daemonset) >= 1.0
                && s.get("workqueue_depth", &daemonset) == 0.0
                && s.get("workqueue_queue_duration_seconds_count", &daemonset)
                    == s.get("workqueue_adds_total", &daemonset)
                && s.get("workqueue_work_duration_seconds_count", &daemonset) >= 1.0
        },
    );
    let text = c.ok(&["get", "--raw", "/metrics"]);
    let s = Samples::parse(&text);
    assert!(s.has("workqueue_retries_total"));
    // Every namespace went through these controllers' queues.
    for queue in ["serviceaccount", "root_ca_cert_publisher"] {
        assert!(
            s.get("workqueue_adds_total", &[("name", queue)]) >= 4.0,
            "{queue}"
        );
    }
    // Every controller's queue is on the page from its start, by upstream's name.
    for queue in [
        "garbage_collector_attempt_to_delete",
        "namespace",
        "orphaned_pods_nodes",
        "node_lifecycle_controller",
        "ClusterRoleAggregator",
        "disruption",
        "certificate",
    ] {
        let series = format!("workqueue_depth{{name=\"{queue}\"}} ");
        assert!(text.contains(&series), "{queue}:\n{text}");
    }
}

/// A plain GET of `http://{address}/metrics`: the status line and the body.
fn get_metrics(address: &str) -> (String, String) {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect(address) else {
        return (String::new(), String::new());
    };
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    if conn.write_all(request.as_bytes()).is_err() || conn.read_to_string(&mut response).is_err() {
        return (String::new(), String::new());
    }
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.lines().next().unwrap_or_default().to_string();
    (status, body.to_string())
}

#[test]
fn separate_controllers_serve_their_work_queue_metrics() {
    let c = Cluster::start("apiserver", &[]);
    let _sim = Component::start(&c, "sim", &["sim", "--nodes", "2"]);
    let controllers = Component::start(
        &c,
        "controllers",
        &[
            "controllers",
            "--leader-elect=false",
            "--metrics-bind-address",
            "127.0.0.1:0",
        ],
    );
    let mut address = String::new();
    eventually(
        Duration::from_secs(30),
        "the metrics address is logged",
        || {
            let log = controllers.log_text();
            let Some((_, rest)) = log.split_once("serving /metrics on http://") else {
                return false;
            };
            address = rest.split('/').next().unwrap_or_default().to_string();
            !address.is_empty()
        },
    );
    c.ok_stdin(&["apply", "-f", "-"], AGENT_DS);
    c.ok(&["rollout", "status", "ds/agent", "--timeout=120s"]);
    let daemonset = [("name", "daemonset")];
    eventually(
        Duration::from_secs(30),
        "the DaemonSet controller's queue is drained",
        || {
            let (status, body) = get_metrics(&address);
            let s = Samples::parse(&body);
            status.contains(" 200 ")
                && s.get("workqueue_adds_total", &daemonset) >= 1.0
                && s.get("workqueue_depth", &daemonset) == 0.0
                && s.get("workqueue_work_duration_seconds_count", &daemonset) >= 1.0
        },
    );
    // The API server's own page does not carry another process's queues.
    let text = c.ok(&["get", "--raw", "/metrics"]);
    assert!(!text.contains("workqueue_adds_total{name=\"daemonset\"}"));
}
