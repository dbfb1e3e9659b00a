//! API servers on etcd (`--store etcd://...`), driven with the real kubectl: two servers on one
//! etcd see each other's writes in order; etcd lost, unreachable at start, and a request too
//! large for it. Each test runs its own 3-member etcd on loopback ports (needs the `etcd`
//! binary: without it these tests fail saying so).

#[path = "support/etcd.rs"]
mod etcd;
mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use etcd::{Etcd, server_url};
use serde_json::Value;
use support::{Cluster, eventually};

/// A watch of default's ConfigMaps on `server` from `rv`, as raw events, one per line.
fn watch_from(server: &Cluster, rv: &str) -> (std::process::Child, mpsc::Receiver<Value>) {
    let path = format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}");
    let mut child = server
        .command()
        .args(["get", "--raw", &path])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run kubectl");
    let stdout = child.stdout.take().expect("kubectl's stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Ok(event) = serde_json::from_str::<Value>(&line)
                && tx.send(event).is_err()
            {
                break;
            }
        }
    });
    (child, rx)
}

#[test]
fn a_write_on_one_server_is_seen_by_a_watch_on_another_in_order() {
    let etcd = Etcd::start();
    let one = etcd.server();
    let two = etcd.server();
    let rv = two.ok(&[
        "get",
        "configmaps",
        "-n",
        "default",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    let (mut watch, events) = watch_from(&two, rv.trim());
    for name in ["c1", "c2", "c3"] {
        one.ok(&["create", "configmap", name, "--from-literal=k=v"]);
    }
    one.ok(&["label", "configmap", "c1", "x=y"]);
    one.ok(&["delete", "configmap", "c2"]);
    let mut got = Vec::new();
    let mut last_rv = 0u64;
    for _ in 0..5 {
        let event = events
            .recv_timeout(Duration::from_secs(30))
            .expect("a watch event on the other server");
        let object = &event["object"];
        let rv: u64 = object["metadata"]["resourceVersion"]
            .as_str()
            .and_then(|rv| rv.parse().ok())
            .expect("a resourceVersion");
        assert!(rv > last_rv, "in revision order: {event}");
        last_rv = rv;
        got.push(format!(
            "{} {}",
            event["type"].as_str().unwrap_or_default(),
            object["metadata"]["name"].as_str().unwrap_or_default()
        ));
    }
    assert_eq!(
        got,
        [
            "ADDED c1",
            "ADDED c2",
            "ADDED c3",
            "MODIFIED c1",
            "DELETED c2"
        ]
    );
    let _ = watch.kill();
    let _ = watch.wait();
    // Reads on the second server include the first's writes.
    assert_eq!(
        two.ok(&[
            "get",
            "configmap",
            "c1",
            "-o",
            "jsonpath={.metadata.labels.x}"
        ]),
        "y"
    );
    // The same version on both: resourceVersion is etcd's revision.
    let version = |server: &Cluster| {
        server.ok(&[
            "get",
            "configmap",
            "c3",
            "-o",
            "jsonpath={.metadata.resourceVersion}",
        ])
    };
    assert_eq!(version(&one), version(&two));
}

#[test]
fn losing_etcd_fails_readiness_and_writes_keeps_reads_and_recovers() {
    let mut etcd = Etcd::start();
    let server = etcd.server();
    server.ok(&["create", "configmap", "before", "--from-literal=k=v"]);
    // Two members of three down: no quorum.
    etcd.cluster.stop_member(0);
    etcd.cluster.stop_member(1);
    eventually(Duration::from_secs(30), "/readyz reports etcd", || {
        let run = server.kubectl(&["get", "--raw", "/readyz"]);
        !run.ok && run.stderr.contains("[-]etcd failed: reason withheld")
    });
    let refused = server.fails(&["create", "configmap", "during", "--from-literal=k=v"]);
    // etcd's own timeout, passed on with no Status reason as kube-apiserver's.
    assert!(
        [
            "error: failed to create configmap: etcdserver: request timed out",
            "error: failed to create configmap: context deadline exceeded"
        ]
        .contains(&refused.trim_end()),
        "{refused}"
    );
    // Reads are served from the watch cache.
    assert_eq!(
        server.ok(&["get", "configmap", "before", "-o", "jsonpath={.data.k}"]),
        "v"
    );
    etcd.start_members(&[0, 1]);
    eventually(Duration::from_secs(30), "/readyz recovers", || {
        server.kubectl(&["get", "--raw", "/readyz"]).stdout == "ok"
    });
    eventually(Duration::from_secs(30), "writes resume", || {
        server
            .kubectl(&["create", "configmap", "after", "--from-literal=k=v"])
            .ok
    });
    assert_eq!(
        server.ok(&["get", "configmap", "after", "-o", "jsonpath={.data.k}"]),
        "v"
    );
}

/// A custom resource keeping anything in its spec: no validation limits its size below etcd's
/// (a ConfigMap's or Secret's own limit, 1 MiB, is lower).
const BLOB_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: blobs.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: blobs, singular: blob, kind: Blob}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

#[test]
fn an_object_too_large_for_etcd_is_refused_with_etcds_message() {
    let etcd = Etcd::start();
    let server = etcd.server();
    server.ok_stdin(&["create", "-f", "-"], BLOB_CRD);
    let blob = |name: &str, size: usize| {
        format!(
            "{{\"apiVersion\":\"example.com/v1\",\"kind\":\"Blob\",\"metadata\":{{\"name\":\"{name}\"}},\"spec\":{{\"data\":\"{}\"}}}}",
            "x".repeat(size)
        )
    };
    let small = server.write("small.json", &blob("small", 10));
    eventually(Duration::from_secs(30), "the Blob kind is served", || {
        server.kubectl(&["create", "-f", &small]).ok
    });
    // Over etcd's 1.5 MiB request limit, under the API server's 3 MiB body limit.
    let big = server.write("big.json", &blob("big", 1_700_000));
    let refused = server.fails(&["create", "-f", &big]);
    assert!(
        refused.starts_with("Error from server: error when creating")
            && refused.contains(": etcdserver: request is too large"),
        "{refused}"
    );
    server.fails(&["get", "blob", "big"]);
    server.ok(&["get", "blob", "small"]);
}

#[test]
fn an_unreachable_etcd_at_start_is_reported_and_retried() {
    let mut etcd = Etcd::start();
    for i in 0..3 {
        etcd.cluster.stop_member(i);
    }
    let server = Cluster::start_unready(
        "127.0.0.1:0",
        "apiserver",
        &["--store", &etcd.cluster.url()],
    );
    eventually(
        Duration::from_secs(30),
        "the server says it cannot reach etcd",
        || server.server_log().contains("cannot reach etcd"),
    );
    etcd.start_members(&[0, 1, 2]);
    server.wait_ready();
    server.ok(&["get", "namespaces"]);
}

/// `pernode apiserver --store` with a bad URL stops at once with a clear error.
#[test]
fn a_bad_store_url_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_pernode"))
        .args([
            "apiserver",
            "--listen",
            "127.0.0.1:0",
            "--store",
            "etcd://nohost",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .expect("run pernode");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"nohost\" in \"etcd://nohost\" is not host:port"),
        "{stderr}"
    );
}

/// The addresses of the `kubernetes` Endpoints and EndpointSlice, as `server` serves them.
fn kubernetes_endpoints(server: &Cluster) -> (String, String) {
    let endpoints = server
        .kubectl(&[
            "get",
            "endpoints",
            "kubernetes",
            "-o",
            "jsonpath={.subsets[*].addresses[*].ip}",
        ])
        .stdout;
    let slice = server
        .kubectl(&[
            "get",
            "endpointslice",
            "kubernetes",
            "-o",
            "jsonpath={.endpoints[*].addresses[*]}",
        ])
        .stdout;
    (endpoints, slice)
}

#[test]
fn the_kubernetes_endpoints_list_the_live_servers() {
    let etcd = Etcd::start();
    // Loopback addresses other than 127.0.0.1 are not in a generated certificate by default.
    let quick = ["--endpoint-lease-ttl", "2s", "--tls-san", "127.0.0.2"];
    let url = etcd.cluster.url();
    let one = Cluster::start(
        "apiserver",
        &["--store", &url, "--endpoint-lease-ttl", "2s"],
    );
    let mut two = etcd.another_server(&one, "127.0.0.2:0", &quick);
    let listed = |want: &str| {
        let want = (want.to_owned(), want.to_owned());
        move |server: &Cluster| kubernetes_endpoints(server) == want
    };
    eventually(Duration::from_secs(30), "both servers listed", || {
        listed("127.0.0.1 127.0.0.2")(&one)
    });
    // Killed: it drops out once its lease expires.
    two.kill9();
    eventually(Duration::from_secs(30), "the dead server dropped", || {
        listed("127.0.0.1")(&one)
    });
    // Stopped cleanly, a server with an hour-long lease removes itself.
    let mut three = etcd.another_server(
        &one,
        "127.0.0.3:0",
        &["--endpoint-lease-ttl", "1h", "--tls-san", "127.0.0.3"],
    );
    eventually(Duration::from_secs(30), "the third server listed", || {
        listed("127.0.0.1 127.0.0.3")(&one)
    });
    assert!(three.stop().success());
    eventually(
        Duration::from_secs(30),
        "the stopped server removed",
        || listed("127.0.0.1")(&one),
    );
}

#[test]
fn servers_given_one_ca_and_signing_key_accept_each_others_certificates_and_tokens() {
    let etcd = Etcd::start();
    let one = etcd.server();
    let two = etcd.second_server(&one);
    // The admin certificate of one's kubeconfig, on two.
    let on_two = one.write("one-on-two.kubeconfig", &{
        let text = std::fs::read_to_string(one.kubeconfig()).expect("kubeconfig");
        text.replace(&server_url(&one), &server_url(&two))
    });
    let whoami = |kubeconfig: &str| {
        one.kubectl(&[
            "--kubeconfig",
            kubeconfig,
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
        ])
    };
    let run = whoami(&on_two);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.stdout, "system:admin");
    // A token one issues authenticates on two.
    one.ok(&["create", "serviceaccount", "robot"]);
    let token = one.ok(&["create", "token", "robot"]);
    let robot = two.kubeconfig_as(
        "robot.kubeconfig",
        &format!("\n    token: {}", token.trim()),
    );
    let run = whoami(&robot);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(run.stdout, "system:serviceaccount:default:robot");
}

#[test]
fn an_agent_given_two_servers_keeps_renewing_its_lease_when_one_dies() {
    let etcd = Etcd::start();
    let mut one = etcd.server();
    let two = etcd.second_server(&one);
    let work = tempfile::tempdir().expect("tempdir");
    let _unmount = support::agent::UnmountOnDrop(work.path().to_path_buf());
    let kubeconfig = work.path().join("node.kubeconfig");
    one.node_kubeconfig(&kubeconfig, "n1", &server_url(&one));
    let args: Vec<String> = [
        "agent",
        "--kubeconfig",
        &kubeconfig.display().to_string(),
        "--server",
        &server_url(&one),
        "--server",
        &server_url(&two),
        "--node-name",
        "n1",
        "--node-ip",
        "127.0.0.1",
        "--address",
        "127.0.0.1",
        "--port",
        "0",
        "--root-dir",
        &work.path().join("agent").display().to_string(),
        "--lease-interval",
        "500ms",
        "--node-status-interval",
        "1s",
        "--cgroup-parent",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut agent = support::agent::Agent::new(args, None, work.path().join("agent.log"));
    agent.spawn();
    let renewed = |server: &Cluster| {
        server
            .kubectl(&[
                "get",
                "lease",
                "-n",
                "kube-node-lease",
                "n1",
                "-o",
                "jsonpath={.spec.renewTime}",
            ])
            .stdout
    };
    eventually(
        Duration::from_secs(60),
        "the agent renews its lease",
        || !renewed(&two).is_empty(),
    );
    one.kill9();
    // Renewals after the first server died: three different renew times, through the second.
    let mut seen = std::collections::BTreeSet::new();
    eventually(
        Duration::from_secs(60),
        "the lease renewed through the other server",
        || {
            let time = renewed(&two);
            if !time.is_empty() {
                seen.insert(time);
            }
            seen.len() >= 3
        },
    );
    assert!(
        two.ok(&[
            "get",
            "node",
            "n1",
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"
        ]) == "True",
        "{}",
        agent.log_text()
    );
}
