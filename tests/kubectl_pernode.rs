//! `kubectl pernode`: the plugin installed with `pernode install-plugin`, run by the real
//! kubectl against `pernode up` with simulated nodes, and the rollout controls it writes
//! (`pernode.io/paused`, `pernode.io/partition`) as the DaemonSet controller obeys them.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::plugin::{
    annotation, condition, images, install_plugin, kubectl_pernode, simulated_node,
};
use support::{Cluster, eventually};

/// A DaemonSet `x` of `nginx:1.27` rolled one node at a time.
const DS: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: x
spec:
  selector:
    matchLabels: {app: x}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {maxUnavailable: 1}
  template:
    metadata:
      labels: {app: x}
    spec:
      containers:
      - name: c
        image: nginx:1.27
"#;

/// Whether every node `1..=n` runs exactly one pod, of the image the list gives for it, and
/// the status counts them all available.
fn settled(c: &Cluster, want: &[(&str, &str)]) -> bool {
    let Some(have) = images(c) else { return false };
    let want: BTreeMap<String, String> = want
        .iter()
        .map(|(n, i)| (n.to_string(), i.to_string()))
        .collect();
    let available = c
        .ok(&["get", "ds", "x", "-o", "jsonpath={.status.numberAvailable}"])
        .parse::<usize>()
        .unwrap_or(0);
    have == want && available == want.len()
}

/// The `rollout` line of a `why` report, its words single-spaced.
fn rollout_line(report: &str) -> String {
    report
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .find(|l| l.starts_with("rollout "))
        .unwrap_or_default()
}

fn fleet<'a>(nodes: &[&'a str], old: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    nodes
        .iter()
        .map(|n| {
            let image = if old.contains(n) {
                "nginx:1.27"
            } else {
                "nginx:1.28"
            };
            (*n, image)
        })
        .collect()
}

#[test]
fn the_plugin_pauses_and_resumes_through_kubectl() {
    let c = Cluster::start("up", &["--nodes", "1"]);
    let bin = install_plugin(&c);
    let link = bin.join("kubectl-pernode");
    assert!(
        std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()),
        "install-plugin makes a symlink"
    );
    // Installing again replaces the link.
    install_plugin(&c);
    c.ok_stdin(&["apply", "-f", "-"], DS);

    let run = kubectl_pernode(&c, &bin, &["pause", "ds/x"]);
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout, "daemonset.apps/x paused\n");
    assert_eq!(annotation(&c, "pernode.io/paused"), "true");
    let again = kubectl_pernode(&c, &bin, &["pause", "daemonset/x"]);
    assert_eq!(again.stdout, "daemonset.apps/x already paused\n");

    let run = kubectl_pernode(&c, &bin, &["resume", "ds/x", "-n", "default"]);
    assert_eq!(run.stdout, "daemonset.apps/x resumed\n", "{}", run.stderr);
    assert_eq!(annotation(&c, "pernode.io/paused"), "");

    let missing = kubectl_pernode(&c, &bin, &["pause", "ds/nope"]);
    assert!(!missing.ok);
    assert_eq!(
        missing.stderr.trim(),
        "Error from server (NotFound): daemonsets.apps \"nope\" not found"
    );
    let other = kubectl_pernode(&c, &bin, &["pause", "deploy/x"]);
    assert!(!other.ok);
    assert!(other.stderr.starts_with("error: "), "{}", other.stderr);

    // The same control from YAML: a value the controller could not read is refused, and
    // nothing changes.
    let err = c.fails(&["annotate", "ds/x", "pernode.io/partition=two"]);
    assert!(
        err.contains("metadata.annotations[pernode.io/partition]: Invalid value: \"two\""),
        "{err}"
    );
    assert_eq!(annotation(&c, "pernode.io/partition"), "");
}

#[test]
fn pause_and_partition_hold_a_rollout_and_resume_finishes_it() {
    let c = Cluster::start("up", &["--nodes", "5"]);
    let bin = install_plugin(&c);
    c.ok_stdin(&["apply", "-f", "-"], DS);
    let five = ["node-1", "node-2", "node-3", "node-4", "node-5"];
    eventually(Duration::from_secs(60), "5 pods of nginx:1.27", || {
        settled(&c, &fleet(&five, &five))
    });

    // Partition 4 of 5: only node-5 (the highest name) is rolled.
    c.ok(&["annotate", "ds/x", "pernode.io/partition=4"]);
    c.ok(&["set", "image", "ds/x", "c=nginx:1.28"]);
    let held = ["node-1", "node-2", "node-3", "node-4"];
    eventually(Duration::from_secs(60), "node-5 alone updated", || {
        settled(&c, &fleet(&five, &held))
    });

    // Paused, the partition gone: nothing more is replaced, and a node that joins gets the
    // revision most pods run (the old one).
    let run = kubectl_pernode(&c, &bin, &["pause", "ds/x"]);
    assert!(run.ok, "{}", run.stderr);
    c.ok(&["annotate", "ds/x", "pernode.io/partition-"]);
    // The controller says so: Deployment's paused condition, for `kubectl wait`.
    c.ok(&[
        "wait",
        "ds/x",
        "--for=condition=Progressing=Unknown",
        "--timeout=30s",
    ]);
    assert_eq!(
        condition(&c, "Progressing"),
        "RolloutPaused: DaemonSet \"x\" is paused (pernode.io/paused): 1 of 5 pods updated"
    );
    c.ok_stdin(&["apply", "-f", "-"], &simulated_node("node-6"));
    let six = ["node-1", "node-2", "node-3", "node-4", "node-5", "node-6"];
    let paused = ["node-1", "node-2", "node-3", "node-4", "node-6"];
    eventually(
        Duration::from_secs(60),
        "node-6 on the old revision",
        || settled(&c, &fleet(&six, &paused)),
    );
    let why = kubectl_pernode(&c, &bin, &["why", "ds/x", "node-1"]);
    assert!(
        rollout_line(&why.stdout).ends_with(": paused (pernode.io/paused)"),
        "{}",
        why.stdout
    );

    // Resumed under partition 2: exactly node-1 and node-2 stay old.
    c.ok(&["annotate", "ds/x", "pernode.io/partition=2"]);
    let run = kubectl_pernode(&c, &bin, &["resume", "ds/x"]);
    assert!(run.ok, "{}", run.stderr);
    eventually(
        Duration::from_secs(90),
        "all but node-1, node-2 updated",
        || settled(&c, &fleet(&six, &["node-1", "node-2"])),
    );
    let why = kubectl_pernode(&c, &bin, &["why", "ds/x", "node-2"]);
    assert!(
        rollout_line(&why.stdout).ends_with(": held by pernode.io/partition"),
        "{}",
        why.stdout
    );
    let why = kubectl_pernode(&c, &bin, &["why", "ds/x", "node-3"]);
    assert!(
        rollout_line(&why.stdout).starts_with("rollout pass updated (revision "),
        "{}",
        why.stdout
    );
    eventually(
        Duration::from_secs(30),
        "the partitioned rollout complete",
        || {
            condition(&c, "Progressing")
                == "RolloutComplete: DaemonSet \"x\" has successfully progressed; 2 held on the old revision by pernode.io/partition."
        },
    );

    // Lowering the partition rolls the rest.
    c.ok(&["annotate", "--overwrite", "ds/x", "pernode.io/partition=0"]);
    eventually(Duration::from_secs(60), "every node updated", || {
        settled(&c, &fleet(&six, &[]))
    });
    let status = c.ok(&["rollout", "status", "ds/x", "--timeout=30s"]);
    assert!(
        status.ends_with("daemon set \"x\" successfully rolled out\n"),
        "{status}"
    );
}

#[test]
fn conditions_say_why_nodes_are_excluded() {
    let c = Cluster::start("up", &["--nodes", "3"]);
    c.ok(&["label", "node", "node-1", "node-3", "daemon=need"]);
    c.ok(&["taint", "nodes", "node-3", "forbid=true:NoSchedule"]);
    let selective = DS.replace(
        "    spec:\n      containers:",
        "    spec:\n      nodeSelector: {daemon: need}\n      containers:",
    );
    c.ok_stdin(&["apply", "-f", "-"], &selective);
    c.ok(&[
        "wait",
        "ds/x",
        "--for=condition=NodesExcluded",
        "--timeout=30s",
    ]);
    assert_eq!(
        condition(&c, "NodesExcluded"),
        "ExcludedByPlacement: 2 nodes excluded: 1 by nodeSelector daemon=need, 1 by taint forbid=true:NoSchedule not tolerated"
    );
    // kubectl describe prints no conditions for a DaemonSet, but it prints events.
    eventually(Duration::from_secs(30), "the NodesExcluded event", || {
        c.ok(&["describe", "ds", "x"]).lines().any(|l| {
            l.contains("NodesExcluded")
                && l.ends_with("2 nodes excluded: 1 by nodeSelector daemon=need, 1 by taint forbid=true:NoSchedule not tolerated")
        })
    });
    eventually(Duration::from_secs(60), "the rollout complete", || {
        condition(&c, "Progressing")
            == "RolloutComplete: DaemonSet \"x\" has successfully progressed."
    });
    assert_eq!(
        condition(&c, "Available"),
        "MinimumPodsAvailable: DaemonSet has minimum availability: 1 of 1 pods available"
    );
    // The mislabelled node fixed, the taint removed: nothing excluded.
    c.ok(&["label", "node", "node-2", "daemon=need"]);
    c.ok(&["taint", "nodes", "node-3", "forbid=true:NoSchedule-"]);
    c.ok(&[
        "wait",
        "ds/x",
        "--for=condition=NodesExcluded=False",
        "--timeout=30s",
    ]);
    assert_eq!(
        condition(&c, "NodesExcluded"),
        "AllNodesEligible: 0 nodes excluded"
    );
    eventually(Duration::from_secs(60), "3 pods available", || {
        settled(
            &c,
            &[
                ("node-1", "nginx:1.27"),
                ("node-2", "nginx:1.27"),
                ("node-3", "nginx:1.27"),
            ],
        )
    });

    // An image that never pulls, with a 2 s progress deadline: the rollout stops at the first
    // node and Progressing says it timed out (as a Deployment's).
    c.ok(&["annotate", "ds/x", "pernode.io/progress-deadline-seconds=2"]);
    c.ok(&["set", "image", "ds/x", "c=nginx:1.28-bad"]);
    c.ok(&[
        "wait",
        "ds/x",
        "--for=condition=Progressing=False",
        "--timeout=60s",
    ]);
    assert_eq!(
        condition(&c, "Progressing"),
        "ProgressDeadlineExceeded: DaemonSet \"x\" has timed out progressing: 1 of 3 pods updated, 2 available"
    );
}

#[test]
fn why_explains_a_full_a_mislabelled_and_a_tainted_node() {
    let c = Cluster::start("up", &["--nodes", "3"]);
    let bin = install_plugin(&c);
    c.ok(&["label", "node", "node-1", "node-3", "daemon=need"]);
    c.ok(&["label", "node", "node-2", "daemon=other"]);
    c.ok(&["taint", "nodes", "node-3", "forbid=true:NoSchedule"]);
    // A thousand CPUs: more than any simulated node has, so node-1 is full.
    let demanding = DS.replace(
        "    spec:\n      containers:\n      - name: c\n        image: nginx:1.27\n",
        "    spec:\n      nodeSelector: {daemon: need}\n      containers:\n      - name: c\n        image: nginx:1.27\n        resources: {requests: {cpu: \"1000\"}}\n",
    );
    c.ok_stdin(&["apply", "-f", "-"], &demanding);
    let mut report = String::new();
    eventually(
        Duration::from_secs(60),
        "the scheduler's verdict on node-1",
        || {
            let run = kubectl_pernode(&c, &bin, &["why", "ds/x"]);
            report = run.stdout;
            report.contains("Insufficient cpu")
        },
    );
    let block = |node: &str| -> Vec<String> {
        let mut lines = report
            .lines()
            .skip_while(|l| !l.starts_with(&format!("{node}:")));
        let mut out: Vec<String> = lines
            .next()
            .map(|l| vec![l.to_string()])
            .unwrap_or_default();
        out.extend(
            lines
                .take_while(|l| l.starts_with("  "))
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")),
        );
        out
    };
    let full = block("node-1");
    assert!(full[0].starts_with("node-1: pod x-"), "{report}");
    assert_eq!(
        full[1..5],
        [
            "nodeName pass",
            "nodeSelector pass",
            "node affinity pass",
            "taints pass"
        ],
        "{report}"
    );
    assert!(
        full[5].starts_with("resources fail 0/3 nodes are available:"),
        "{report}"
    );
    assert!(full[5].contains("Insufficient cpu"), "{report}");
    assert_eq!(full[6], "node state pass Ready", "{report}");

    assert_eq!(
        block("node-2"),
        [
            "node-2: no pod: excluded by placement",
            "nodeName pass",
            "nodeSelector fail nodeSelector daemon=need",
            "node affinity pass",
            "taints pass",
            "resources - no pod",
            "node state pass Ready",
            "rollout - no pod",
        ],
        "{report}"
    );
    assert_eq!(
        block("node-3")[..5],
        [
            "node-3: no pod: excluded by placement",
            "nodeName pass",
            "nodeSelector pass",
            "node affinity pass",
            "taints fail taint forbid=true:NoSchedule not tolerated",
        ],
        "{report}"
    );

    // One node only; a node that does not exist is the server's NotFound.
    let one = kubectl_pernode(&c, &bin, &["why", "ds/x", "node-2"]);
    assert!(one.ok, "{}", one.stderr);
    assert!(
        one.stdout.starts_with("node-2: ") && !one.stdout.contains("node-1"),
        "{}",
        one.stdout
    );
    let missing = kubectl_pernode(&c, &bin, &["why", "ds/x", "node-9"]);
    assert_eq!(
        missing.stderr.trim(),
        "Error from server (NotFound): nodes \"node-9\" not found"
    );
}

/// `x` with rollout waves and a soak, as YAML carries them.
fn waved(waves: &str, soak: &str) -> String {
    DS.replacen(
        "metadata:\n  name: x\n",
        &format!(
            "metadata:\n  name: x\n  annotations:\n    pernode.io/rollout-waves: \"{waves}\"\n    pernode.io/wave-soak: \"{soak}\"\n"
        ),
        1,
    )
}

/// Seconds since the epoch of an RFC 3339 time the API server wrote.
fn seconds(time: &str) -> i64 {
    time.trim()
        .parse::<k8s_openapi::jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("{time:?}: {e}"))
        .as_second()
}

/// `(created, ready since)` in seconds of the live pod of `x` on `node`.
fn pod_times(c: &Cluster, node: &str) -> (i64, i64) {
    let out = c.ok(&[
        "get",
        "pods",
        "-l",
        "app=x",
        "--field-selector",
        &format!("spec.nodeName={node}"),
        "-o",
        "json",
    ]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("pod list");
    let pod = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["metadata"]["deletionTimestamp"].is_null())
        .unwrap_or_else(|| panic!("a live pod on {node}: {out}"));
    let ready = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
        .and_then(|c| c["lastTransitionTime"].as_str())
        .unwrap_or_else(|| panic!("a Ready condition on {node}'s pod"));
    (
        seconds(pod["metadata"]["creationTimestamp"].as_str().unwrap_or("")),
        seconds(ready),
    )
}

/// The line of a `why` report starting with `rule`, its words single-spaced.
fn why_line(report: &str, rule: &str) -> String {
    report
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .find(|l| l.starts_with(&format!("{rule} ")))
        .unwrap_or_default()
}

#[test]
fn waves_roll_canary_nodes_first_and_wait_for_the_soak() {
    let c = Cluster::start("up", &["--nodes", "5"]);
    let bin = install_plugin(&c);
    c.ok(&["label", "node", "node-1", "canary=true"]);
    c.ok(&[
        "label",
        "node",
        "node-2",
        "node-3",
        "topology.kubernetes.io/zone=a",
    ]);
    c.ok_stdin(
        &["apply", "-f", "-"],
        &waved("canary=true; topology.kubernetes.io/zone=a; *", "1h"),
    );
    let five = ["node-1", "node-2", "node-3", "node-4", "node-5"];
    eventually(Duration::from_secs(60), "5 pods of nginx:1.27", || {
        settled(&c, &fleet(&five, &five))
    });

    // The canary wave alone, then an hour's soak before zone a.
    c.ok(&["set", "image", "ds/x", "c=nginx:1.28"]);
    let not_canary = ["node-2", "node-3", "node-4", "node-5"];
    eventually(Duration::from_secs(60), "node-1 alone updated", || {
        settled(&c, &fleet(&five, &not_canary))
    });
    eventually(Duration::from_secs(30), "the soak in Progressing", || {
        let progressing = condition(&c, "Progressing");
        progressing.starts_with("WaveSoaking: DaemonSet \"x\" soaks (pernode.io/wave-soak) until ")
            && progressing.ends_with(
                " before wave 2/3 (topology.kubernetes.io/zone=a): 1 of 5 pods updated, 5 available",
            )
    });
    let why = kubectl_pernode(&c, &bin, &["why", "ds/x", "node-4"]);
    assert_eq!(
        why_line(&why.stdout, "wave"),
        "wave held wave 3/3 (*): after the current wave 2/3 (topology.kubernetes.io/zone=a)",
        "{}",
        why.stdout
    );
    assert!(
        rollout_line(&why.stdout).ends_with(": held by pernode.io/rollout-waves"),
        "{}",
        why.stdout
    );
    let why = kubectl_pernode(&c, &bin, &["why", "ds/x", "node-2"]);
    assert!(
        why_line(&why.stdout, "wave").starts_with(
            "wave held wave 2/3 (topology.kubernetes.io/zone=a): next, once the waves before it soak (pernode.io/wave-soak) until "
        ),
        "{}",
        why.stdout
    );

    // A 5 s soak: zone a rolls at once (the canary has been up longer), the rest 5 s after
    // zone a's last pod became ready.
    c.ok(&["annotate", "--overwrite", "ds/x", "pernode.io/wave-soak=5s"]);
    eventually(Duration::from_secs(90), "every node updated", || {
        settled(&c, &fleet(&five, &[]))
    });
    let zone_a_ready = ["node-2", "node-3"]
        .iter()
        .map(|n| pod_times(&c, n).1)
        .max()
        .unwrap_or_default();
    for rest in ["node-4", "node-5"] {
        let (created, _) = pod_times(&c, rest);
        assert!(
            created >= zone_a_ready + 5,
            "{rest}'s pod created at {created}, zone a ready at {zone_a_ready}"
        );
    }
    eventually(Duration::from_secs(30), "the rollout complete", || {
        condition(&c, "Progressing")
            == "RolloutComplete: DaemonSet \"x\" has successfully progressed."
    });
    let why = kubectl_pernode(&c, &bin, &["why", "ds/x", "node-1"]);
    assert_eq!(
        why_line(&why.stdout, "wave"),
        "wave pass wave 1/3 (canary=true): finished",
        "{}",
        why.stdout
    );
}

#[test]
fn invalid_waves_stop_the_rollout_and_nodes_in_no_wave_stay_old() {
    let c = Cluster::start("up", &["--nodes", "3"]);
    let bin = install_plugin(&c);
    c.ok(&["label", "node", "node-1", "canary=true"]);
    c.ok_stdin(&["apply", "-f", "-"], &waved("canary=true", "0s"));
    let three = ["node-1", "node-2", "node-3"];
    eventually(Duration::from_secs(60), "3 pods of nginx:1.27", || {
        settled(&c, &fleet(&three, &three))
    });

    // One wave, no `*`: the other nodes are never updated, and Progressing says so.
    c.ok(&["set", "image", "ds/x", "c=nginx:1.28"]);
    let rest = ["node-2", "node-3"];
    eventually(Duration::from_secs(60), "the canary alone updated", || {
        settled(&c, &fleet(&three, &rest))
    });
    eventually(Duration::from_secs(30), "the waves complete", || {
        condition(&c, "Progressing")
            == "RolloutComplete: DaemonSet \"x\" has successfully progressed; 2 nodes in no wave of pernode.io/rollout-waves not updated."
    });
    let why = kubectl_pernode(&c, &bin, &["why", "ds/x", "node-3"]);
    assert_eq!(
        why_line(&why.stdout, "wave"),
        "wave held in no wave of pernode.io/rollout-waves: not updated",
        "{}",
        why.stdout
    );

    // A wave list that does not parse is stored (annotations are free-form) and stops the
    // rollout: the sync that says so replaced nothing.
    c.ok(&[
        "annotate",
        "--overwrite",
        "ds/x",
        "pernode.io/rollout-waves=canary=true;zone in (a",
    ]);
    c.ok(&[
        "wait",
        "ds/x",
        "--for=condition=Progressing=False",
        "--timeout=30s",
    ]);
    let stopped = condition(&c, "Progressing");
    assert!(
        stopped.starts_with(
            "InvalidAnnotation: DaemonSet \"x\" is not rolled further: pernode.io/rollout-waves \"canary=true;zone in (a\": wave 2: "
        ),
        "{stopped}"
    );
    assert!(settled(&c, &fleet(&three, &rest)), "nothing replaced");
    eventually(
        Duration::from_secs(30),
        "the InvalidAnnotation event",
        || {
            c.ok(&["describe", "ds", "x"])
                .lines()
                .any(|l| l.contains("InvalidAnnotation") && l.contains("wave 2: "))
        },
    );
    let why = kubectl_pernode(&c, &bin, &["why", "ds/x", "node-2"]);
    assert!(
        why_line(&why.stdout, "wave").starts_with("wave fail pernode.io/rollout-waves "),
        "{}",
        why.stdout
    );

    // Fixed, with `*` for the rest: they roll.
    c.ok(&[
        "annotate",
        "--overwrite",
        "ds/x",
        "pernode.io/rollout-waves=canary=true;*",
    ]);
    eventually(Duration::from_secs(60), "every node updated", || {
        settled(&c, &fleet(&three, &[]))
    });
}
