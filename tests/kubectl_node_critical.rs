//! The node-critical gate (`pernode.io/node-critical: "true"`), driven by the real kubectl
//! against `pernode up` with simulated nodes: a node that joins is registered with
//! `pernode.io/critical-daemons-not-ready:NoSchedule`, which only the critical DaemonSet's pods
//! tolerate, and loses it once the critical daemon pod on it is Ready; ordinary pods (a plain
//! pod through the scheduler, a non-critical DaemonSet's) land only then.

mod support;

use std::time::Duration;

use support::plugin::{install_plugin, kubectl_pernode, simulated_node};
use support::{Cluster, eventually};

const TAINT: &str = "pernode.io/critical-daemons-not-ready";

/// A node-critical DaemonSet `cni` whose image never pulls (`-bad`): its pods never get Ready
/// until the image is fixed.
const CNI: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: cni
  annotations: {pernode.io/node-critical: "true"}
spec:
  selector:
    matchLabels: {app: cni}
  template:
    metadata:
      labels: {app: cni}
    spec:
      containers:
      - name: c
        image: cni:1.0-bad
"#;

/// An ordinary DaemonSet `x`.
const DS: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: x
spec:
  selector:
    matchLabels: {app: x}
  template:
    metadata:
      labels: {app: x}
    spec:
      containers:
      - name: c
        image: nginx:1.27
"#;

/// A plain pod the scheduler must place on node-2.
const WEB: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  nodeSelector: {kubernetes.io/hostname: node-2}
  containers:
  - name: c
    image: nginx:1.27
"#;

fn taint_keys(c: &Cluster, node: &str) -> String {
    c.ok(&["get", "node", node, "-o", "jsonpath={.spec.taints[*].key}"])
}

/// The nodes the live pods labelled `selector` are bound to, sorted, space-separated.
fn nodes_of(c: &Cluster, selector: &str) -> String {
    let out = c.ok(&["get", "pods", "-l", selector, "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("pod list");
    let mut nodes: Vec<String> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["spec"]["nodeName"].as_str().map(str::to_owned))
        .collect();
    nodes.sort();
    nodes.join(" ")
}

#[test]
fn a_joining_node_takes_ordinary_pods_only_once_its_critical_daemons_are_ready() {
    let c = Cluster::start("up", &["--nodes", "1"]);
    c.ok_stdin(&["apply", "-f", "-"], DS);
    c.ok_stdin(&["apply", "-f", "-"], CNI);
    eventually(Duration::from_secs(60), "x and cni on node-1", || {
        nodes_of(&c, "app=x") == "node-1" && nodes_of(&c, "app=cni") == "node-1"
    });
    // node-1 was registered before any critical DaemonSet existed: never gated.
    assert_eq!(taint_keys(&c, "node-1"), "");

    // node-2 joins: the create itself stores the taint (no window for the scheduler).
    c.ok_stdin(&["apply", "-f", "-"], &simulated_node("node-2"));
    assert_eq!(taint_keys(&c, "node-2"), TAINT);
    // The critical daemon tolerates it; its pod is bound but never Ready (bad image).
    eventually(Duration::from_secs(60), "cni on node-2", || {
        nodes_of(&c, "app=cni") == "node-1 node-2"
    });
    // A plain pod for node-2 is not bound: the scheduler reports the taint.
    c.ok_stdin(&["apply", "-f", "-"], WEB);
    c.ok(&[
        "wait",
        "pod/web",
        "--for=condition=PodScheduled=False",
        "--timeout=60s",
    ]);
    let why = c.ok(&[
        "get",
        "pod",
        "web",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"PodScheduled\")].message}",
    ]);
    assert!(
        why.contains(&format!("untolerated taint {{{TAINT}: }}")),
        "{why}"
    );
    // The ordinary DaemonSet does not tolerate it either, and `why` says so.
    let bin = install_plugin(&c);
    let why = kubectl_pernode(&c, &bin, &["why", "ds/x", "node-2"]);
    let taints = why
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .find(|l| l.starts_with("taints "));
    assert_eq!(
        taints.as_deref(),
        Some(format!("taints fail taint {TAINT}:NoSchedule not tolerated").as_str()),
        "{}{}",
        why.stdout,
        why.stderr
    );
    assert_eq!(nodes_of(&c, "app=x"), "node-1");
    assert_eq!(taint_keys(&c, "node-2"), TAINT);
    assert_eq!(
        c.ok(&["get", "pod", "web", "-o", "jsonpath={.spec.nodeName}"]),
        ""
    );

    // The critical daemon fixed and Ready: the taint goes, and the ordinary pods land.
    c.ok(&["set", "image", "ds/cni", "c=cni:1.1"]);
    c.ok(&["rollout", "status", "ds/cni", "--timeout=60s"]);
    eventually(Duration::from_secs(30), "node-2 untainted", || {
        taint_keys(&c, "node-2").is_empty()
    });
    eventually(Duration::from_secs(30), "web on node-2", || {
        c.ok(&["get", "pod", "web", "-o", "jsonpath={.spec.nodeName}"]) == "node-2"
    });
    eventually(Duration::from_secs(30), "x on node-2", || {
        nodes_of(&c, "app=x") == "node-1 node-2"
    });
    // The ordinary DaemonSet's pods never tolerate the gate; the critical one's do.
    let tolerated = |ds: &str| {
        c.ok(&[
            "get",
            "pods",
            "-l",
            &format!("app={ds}"),
            "-o",
            "jsonpath={.items[*].spec.tolerations[*].key}",
        ])
        .contains(TAINT)
    };
    assert!(tolerated("cni"));
    assert!(!tolerated("x"));

    // A node the critical daemon may not run on (a taint it does not tolerate) is tainted at
    // registration, where only labels are judged, and released by the controller at once.
    let forbidden = format!(
        "{}spec: {{taints: [{{key: forbid, value: \"true\", effect: NoSchedule}}]}}\n",
        simulated_node("node-4")
    );
    c.ok_stdin(&["apply", "-f", "-"], &forbidden);
    eventually(Duration::from_secs(30), "node-4 released", || {
        taint_keys(&c, "node-4") == "forbid"
    });

    // A node that joins once no critical DaemonSet is left is not gated.
    c.ok(&["delete", "ds/cni"]);
    c.ok_stdin(&["apply", "-f", "-"], &simulated_node("node-3"));
    assert_eq!(taint_keys(&c, "node-3"), "");
}
