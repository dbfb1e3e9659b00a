//! R156 under `pernode up`: a deleted node's daemon pod stays for pod GC's 40 s quarantine (it
//! is still there at 30 s, gone by 45 s), a node re-created within the quarantine keeps its
//! pod, and the DaemonSet's next sync counts only the nodes that exist.

mod support;

use std::time::{Duration, Instant};

use support::{AGENT_DS as DS, Cluster, eventually};

/// A simulated node as `pernode up` makes them.
fn simulated_node(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{kubernetes.io/hostname: {name}}}\n  annotations: {{pernode.io/simulated: \"true\"}}\n"
    )
}

fn pod_on(c: &Cluster, node: &str) -> String {
    c.kubectl(&[
        "get",
        "pods",
        "-l",
        "app=agent",
        "--field-selector",
        &format!("spec.nodeName={node}"),
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ])
    .stdout
}

fn desired(c: &Cluster) -> String {
    c.kubectl(&[
        "get",
        "ds",
        "agent",
        "-o",
        "jsonpath={.status.desiredNumberScheduled}",
    ])
    .stdout
}

#[test]
fn pods_of_a_deleted_node_outlive_the_quarantine_only_if_it_stays_gone() {
    let c = Cluster::start("up", &["--nodes", "3"]);
    c.ok_stdin(&["apply", "-f", "-"], DS);
    let mut pods = Vec::new();
    eventually(Duration::from_secs(60), "a pod on each node", || {
        pods = (1..=3).map(|i| pod_on(&c, &format!("node-{i}"))).collect();
        pods.iter().all(|p| !p.is_empty() && !p.contains(' '))
    });

    let deleted = Instant::now();
    c.ok(&["delete", "node", "node-2", "node-3"]);
    // node-2 comes back within the quarantine: its pod is kept. Its return (R157) syncs the
    // DaemonSet, whose desired count then leaves out node-3 at once.
    c.ok_stdin(&["apply", "-f", "-"], &simulated_node("node-2"));
    eventually(Duration::from_secs(10), "desired is 2", || {
        desired(&c) == "2"
    });

    let at_30s = deleted + Duration::from_secs(30);
    std::thread::sleep(at_30s.saturating_duration_since(Instant::now()));
    assert_eq!(
        pod_on(&c, "node-3"),
        pods[2],
        "the pod of node-3 is still there 30 s after its node went"
    );
    let deadline = deleted + Duration::from_secs(45);
    eventually(
        deadline.saturating_duration_since(Instant::now()),
        "the pod of node-3 is gone 45 s after its node",
        || pod_on(&c, "node-3").is_empty(),
    );
    assert_eq!(
        pod_on(&c, "node-2"),
        pods[1],
        "node-2 came back within the quarantine and kept its pod"
    );
    assert_eq!(pod_on(&c, "node-1"), pods[0]);
    assert_eq!(desired(&c), "2");
}
