//! `kubectl drain` under `pernode up` honours a PodDisruptionBudget: the disruption
//! controller's status as `kubectl get pdb` reads it, a drain whose eviction would break the
//! budget retrying on the 429 until its timeout, and the same drain going through once the
//! budget allows the disruption. (The in-process test `crates/controllers/tests/disruption.rs`
//! covers DaemonSet pods and the status in detail.)

mod support;

use std::time::Duration;

use support::{Cluster, eventually};

const WEB: &str = r#"apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  nodeName: node-1
  containers:
  - name: web
    image: nginx:1.27
"#;

const PDB: &str = r#"apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: web
spec:
  minAvailable: 1
  selector:
    matchLabels: {app: web}
"#;

/// `currentHealthy,desiredHealthy,disruptionsAllowed,expectedPods,observedGeneration`.
fn counts(c: &Cluster) -> String {
    c.kubectl(&[
        "get",
        "pdb",
        "web",
        "-o",
        "jsonpath={.status.currentHealthy},{.status.desiredHealthy},{.status.disruptionsAllowed},{.status.expectedPods},{.status.observedGeneration}",
    ])
    .stdout
}

#[test]
fn kubectl_drain_waits_for_the_disruption_budget() {
    let c = Cluster::start("up", &["--nodes", "2"]);
    c.ok_stdin(&["apply", "-f", "-"], WEB);
    // (`kubectl create poddisruptionbudget` sends protobuf, which pernode does not decode.)
    c.ok_stdin(&["apply", "-f", "-"], PDB);
    eventually(
        Duration::from_secs(60),
        "the budget's status: one healthy pod, no disruption allowed",
        || counts(&c) == "1,1,0,1,1",
    );

    let e = c.fails(&[
        "drain",
        "node-1",
        "--ignore-daemonsets",
        "--force",
        "--timeout=7s",
    ]);
    assert!(
        e.contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{e}"
    );
    assert!(c.kubectl(&["get", "pod", "web"]).ok, "the pod stays");

    // Once the budget allows it, the same drain evicts the pod.
    c.ok(&[
        "patch",
        "pdb",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"minAvailable":0}}"#,
    ]);
    eventually(
        Duration::from_secs(60),
        "the budget observed at generation 2",
        || counts(&c) == "1,0,1,1,2",
    );
    let out = c.ok(&[
        "drain",
        "node-1",
        "--ignore-daemonsets",
        "--force",
        "--timeout=60s",
    ]);
    assert!(out.contains("pod/web evicted"), "{out}");
    eventually(Duration::from_secs(60), "the pod gone", || {
        !c.kubectl(&["get", "pod", "web"]).ok
    });
}
