//! The health gate (`pernode.io/max-failed-nodes`, `pernode.io/auto-rollback`) with the real
//! kubectl against `pernode up`: the simulator fails images whose tag ends in `-bad`
//! (ErrImagePull, then ImagePullBackOff), and the DaemonSet controller stops or rolls back.

mod support;

use std::time::Duration;

use support::plugin::{annotation, condition, images, install_plugin, kubectl_pernode};
use support::{Cluster, eventually};

/// A DaemonSet `x` of `nginx:1.27`, rolled one node at a time, gated at one failed node.
fn gated_ds(extra_annotations: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: x
  annotations:
    pernode.io/max-failed-nodes: "1"
{extra_annotations}spec:
  selector:
    matchLabels: {{app: x}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {{maxUnavailable: 1}}
  template:
    metadata:
      labels: {{app: x}}
    spec:
      tolerations: [{{operator: Exists}}]
      containers:
      - name: c
        image: nginx:1.27
"#
    )
}

/// The nodes whose pod runs `image`.
fn nodes_on(c: &Cluster, image: &str) -> Vec<String> {
    images(c)
        .unwrap_or_default()
        .into_iter()
        .filter(|(_, i)| i == image)
        .map(|(n, _)| n)
        .collect()
}

fn ds_field(c: &Cluster, path: &str) -> String {
    c.ok(&["get", "ds", "x", "-o", &format!("jsonpath={{{path}}}")])
}

/// Every one of `nodes` nodes runs one pod of `image`, and the status counts them available.
fn settled_on(c: &Cluster, nodes: usize, image: &str) -> bool {
    nodes_on(c, image).len() == nodes
        && images(c).is_some_and(|i| i.len() == nodes)
        && ds_field(c, ".status.numberAvailable") == nodes.to_string()
}

/// `type reason: message` of the DaemonSet's events with `reason`.
fn events(c: &Cluster, reason: &str) -> String {
    c.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name=x,reason={reason}"),
        "-o",
        "jsonpath={range .items[*]}{.type} {.reason}: {.message}{\"\\n\"}{end}",
    ])
}

/// The current revision's hash, as its pods are labelled.
fn current_hash(c: &Cluster) -> String {
    let revs = c.ok(&[
        "get",
        "controllerrevisions",
        "-o",
        "jsonpath={range .items[*]}{.revision} {.metadata.labels.controller-revision-hash}{\"\\n\"}{end}",
    ]);
    revs.lines()
        .filter_map(|l| l.split_once(' '))
        .max_by_key(|(n, _)| n.parse::<i64>().unwrap_or(0))
        .map(|(_, h)| h.to_string())
        .unwrap_or_default()
}

/// Waits until the controller has synced the DaemonSet's current generation.
fn observed(c: &Cluster) {
    eventually(Duration::from_secs(30), "generation observed", || {
        ds_field(c, ".metadata.generation") == ds_field(c, ".status.observedGeneration")
    });
}

#[test]
fn a_bad_image_stops_the_rollout_after_one_node_until_resumed() {
    let c = Cluster::start("up", &["--nodes", "5"]);
    let bin = install_plugin(&c);
    c.ok_stdin(&["apply", "-f", "-"], &gated_ds(""));
    eventually(Duration::from_secs(60), "5 pods of nginx:1.27", || {
        settled_on(&c, 5, "nginx:1.27")
    });
    // A gate the controller could not read is refused, and nothing changes.
    let err = c.fails(&[
        "annotate",
        "--overwrite",
        "ds/x",
        "pernode.io/max-failed-nodes=0",
    ]);
    assert!(
        err.contains("metadata.annotations[pernode.io/max-failed-nodes]: Invalid value: \"0\": must be a positive integer or percentage"),
        "{err}"
    );
    assert_eq!(annotation(&c, "pernode.io/max-failed-nodes"), "1");

    c.ok(&["set", "image", "ds/x", "c=nginx:1.28-bad"]);
    c.ok(&[
        "wait",
        "ds/x",
        "--for=condition=Progressing=False",
        "--timeout=60s",
    ]);
    let bad = nodes_on(&c, "nginx:1.28-bad");
    assert_eq!(bad.len(), 1, "stopped after one node: {:?}", images(&c));
    let node = &bad[0];
    let hash = current_hash(&c);
    assert_eq!(annotation(&c, "pernode.io/health-gate-tripped"), hash);
    let said = condition(&c, "Progressing");
    let expected = format!(
        "HealthGateTripped: DaemonSet \"x\" stopped by its health gate at revision {hash} (pernode.io/max-failed-nodes: 1): 1 node failed: {node} ("
    );
    assert!(said.starts_with(&expected), "{said}");
    assert!(
        said.ends_with("ImagePullBackOff); kubectl pernode resume to go on")
            || said.ends_with("ErrImagePull); kubectl pernode resume to go on"),
        "{said}"
    );
    eventually(Duration::from_secs(30), "the Warning event", || {
        events(&c, "HealthGateTripped").contains(&format!(
            "Warning HealthGateTripped: DaemonSet \"x\" stopped by its health gate at revision {hash} (pernode.io/max-failed-nodes: 1): 1 node failed: {node} ("
        ))
    });
    let why = kubectl_pernode(&c, &bin, &["why", "ds/x", node]);
    assert!(why.ok, "{}", why.stderr);
    assert!(
        why.stdout
            .contains("counted by pernode.io/max-failed-nodes"),
        "{}",
        why.stdout
    );
    let other = images(&c)
        .unwrap_or_default()
        .into_keys()
        .find(|n| n != node)
        .unwrap_or_default();
    let why = kubectl_pernode(&c, &bin, &["why", "ds/x", &other]);
    assert!(
        why.stdout.contains(&format!(
            "stopped by the health gate (pernode.io/health-gate-tripped: {hash}); kubectl pernode resume clears it"
        )),
        "{}",
        why.stdout
    );

    // Sticky: a looser gate and more room to roll do not resume it by themselves.
    c.ok(&[
        "annotate",
        "--overwrite",
        "ds/x",
        "pernode.io/max-failed-nodes=2",
    ]);
    c.ok(&[
        "patch",
        "ds/x",
        "--type=merge",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"maxUnavailable":2}}}}"#,
    ]);
    observed(&c);
    assert!(
        condition(&c, "Progressing").starts_with("HealthGateTripped: "),
        "{}",
        condition(&c, "Progressing")
    );
    assert_eq!(nodes_on(&c, "nginx:1.28-bad"), bad);

    // Resumed: the gate counts again, and stops at its new bound of two nodes.
    let run = kubectl_pernode(&c, &bin, &["resume", "ds/x"]);
    assert!(run.ok, "{}", run.stderr);
    assert_eq!(
        run.stdout,
        format!("daemonset.apps/x resumed; health gate cleared (it had stopped revision {hash})\n")
    );
    eventually(
        Duration::from_secs(60),
        "stopped again at two nodes",
        || {
            condition(&c, "Progressing")
                .contains("(pernode.io/max-failed-nodes: 2): 2 nodes failed: ")
        },
    );
    assert_eq!(nodes_on(&c, "nginx:1.28-bad").len(), 2);
    assert_eq!(annotation(&c, "pernode.io/health-gate-tripped"), hash);
}

#[test]
fn auto_rollback_returns_the_fleet_to_the_old_image_and_does_not_retry_it() {
    let c = Cluster::start("up", &["--nodes", "5"]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &gated_ds("    pernode.io/auto-rollback: \"true\"\n"),
    );
    eventually(Duration::from_secs(60), "5 pods of nginx:1.27", || {
        settled_on(&c, 5, "nginx:1.27")
    });
    c.ok(&["set", "image", "ds/x", "c=nginx:1.28-bad"]);
    eventually(Duration::from_secs(60), "the rollback event", || {
        events(&c, "HealthGateRolledBack")
            .contains("Warning HealthGateRolledBack: Rolled back to revision 1: revision ")
    });
    let said = events(&c, "HealthGateRolledBack");
    assert!(
        said.contains(
            "failed the health gate (pernode.io/max-failed-nodes: 1): 1 node failed: node-"
        ),
        "{said}"
    );
    assert_eq!(
        ds_field(&c, ".spec.template.spec.containers[0].image"),
        "nginx:1.27"
    );
    let bad_hash = annotation(&c, "pernode.io/health-gate-tripped");
    assert!(!bad_hash.is_empty());
    eventually(
        Duration::from_secs(60),
        "every node back on nginx:1.27, Ready",
        || settled_on(&c, 5, "nginx:1.27"),
    );
    eventually(Duration::from_secs(30), "the rollback complete", || {
        condition(&c, "Progressing").starts_with("RolloutComplete: ")
    });

    // The bad template again (a GitOps tool re-applying it): stopped at once, not retried.
    c.ok(&["set", "image", "ds/x", "c=nginx:1.28-bad"]);
    observed(&c);
    eventually(Duration::from_secs(30), "stopped as tripped", || {
        condition(&c, "Progressing").starts_with(&format!(
            "HealthGateTripped: DaemonSet \"x\" stopped by its health gate at revision {bad_hash} "
        ))
    });
    assert_eq!(current_hash(&c), bad_hash);
    assert!(settled_on(&c, 5, "nginx:1.27"), "{:?}", images(&c));
}

/// A node that is NotReady before it gets the DaemonSet's pod is not the revision's fault:
/// its pod never becomes Ready, and the gate does not count it.
#[test]
fn a_node_not_ready_before_the_rollout_does_not_count() {
    let c = Cluster::start("up", &["--nodes", "3"]);
    let bin = install_plugin(&c);
    // node-down: no kubelet (not simulated), NotReady since a minute ago.
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-down\n  labels: {kubernetes.io/hostname: node-down}\n",
    );
    let since = k8s_openapi::jiff::Timestamp::now()
        .checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(60))
        .expect("a minute ago")
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let status = format!(
        r#"{{"status":{{"allocatable":{{"cpu":"4","memory":"8Gi","pods":"110"}},"capacity":{{"cpu":"4","memory":"8Gi","pods":"110"}},"conditions":[{{"type":"Ready","status":"False","reason":"KubeletNotReady","message":"down","lastHeartbeatTime":"{since}","lastTransitionTime":"{since}"}}]}}}}"#
    );
    c.ok(&[
        "patch",
        "node",
        "node-down",
        "--subresource=status",
        "--type=merge",
        "-p",
        &status,
    ]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &gated_ds("    pernode.io/progress-deadline-seconds: \"3\"\n"),
    );
    // The three live nodes come up; node-down's pod never does. The rollout then makes no
    // progress for its deadline, which is past node-down's pod's own: the gate has judged it.
    eventually(Duration::from_secs(60), "three pods available", || {
        ds_field(&c, ".status.numberAvailable") == "3"
    });
    c.ok(&[
        "wait",
        "ds/x",
        "--for=condition=Progressing=False",
        "--timeout=60s",
    ]);
    let said = condition(&c, "Progressing");
    assert!(said.starts_with("ProgressDeadlineExceeded: "), "{said}");
    assert_eq!(annotation(&c, "pernode.io/health-gate-tripped"), "");
    assert_eq!(events(&c, "HealthGateTripped"), "");
    let why = kubectl_pernode(&c, &bin, &["why", "ds/x", "node-down"]);
    assert!(
        why.stdout
            .contains("node NotReady before it got the pod: not counted"),
        "{}",
        why.stdout
    );
}
