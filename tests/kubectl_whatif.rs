//! `kubectl pernode whatif -f new.yaml` against `pernode up` with 200 simulated nodes: the
//! prediction (nodes changed, the waves' order, the new revision) is compared with the real
//! rollout that follows, and the live cluster is left untouched by the what-if.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use support::plugin::{install_plugin, kubectl_pernode};
use support::{Cluster, eventually};

const NODES: usize = 200;

fn daemon_set(image: &str, annotations: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: x
  annotations: {{{annotations}}}
spec:
  selector:
    matchLabels: {{app: x}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {{maxUnavailable: 10}}
  template:
    metadata:
      labels: {{app: x}}
    spec:
      containers:
      - name: c
        image: {image}
"#
    )
}

/// `kind/name=resourceVersion` of the DaemonSet, its pods and revisions, and the node names.
fn snapshot(c: &Cluster) -> String {
    let objects = c.ok(&[
        "get",
        "ds,pods,controllerrevisions",
        "-o",
        "jsonpath={range .items[*]}{.kind}/{.metadata.name}={.metadata.resourceVersion} {end}",
    ]);
    let nodes = c.ok(&["get", "nodes", "-o", "name"]);
    format!("{objects}\n{nodes}")
}

/// Node → controller-revision-hash of its Ready, live pod of `x`.
fn ready_hashes(c: &Cluster) -> BTreeMap<String, String> {
    let out = c.ok(&["get", "pods", "-l", "app=x", "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("pod list");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .filter(|p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True")
        })
        .filter_map(|p| {
            Some((
                p["spec"]["nodeName"].as_str()?.to_owned(),
                p["metadata"]["labels"]["controller-revision-hash"]
                    .as_str()?
                    .to_owned(),
            ))
        })
        .collect()
}

fn wave_of(node: &str) -> usize {
    let i: usize = node.trim_start_matches("node-").parse().expect("node-N");
    match i {
        1..=5 => 1,
        6..=50 => 2,
        _ => 3,
    }
}

#[test]
fn whatif_predicts_the_rollout_a_real_run_then_takes_and_writes_nothing() {
    let c = Cluster::start("up", &["--nodes", &NODES.to_string()]);
    let bin = install_plugin(&c);
    c.ok_stdin(&["apply", "-f", "-"], &daemon_set("nginx:1.27", ""));
    let canary: Vec<String> = (1..=5).map(|i| format!("node-{i}")).collect();
    let zone: Vec<String> = (6..=50).map(|i| format!("node-{i}")).collect();
    let mut label = vec!["label", "node"];
    label.extend(canary.iter().map(String::as_str));
    label.push("canary=true");
    c.ok(&label);
    let mut label = vec!["label", "node"];
    label.extend(zone.iter().map(String::as_str));
    label.push("topology.kubernetes.io/zone=a");
    c.ok(&label);
    eventually(Duration::from_secs(120), "200 pods available", || {
        ready_hashes(&c).len() == NODES
    });
    let old_hash = ready_hashes(&c).values().next().cloned().expect("a pod");
    let before = snapshot(&c);

    let waves = r#"pernode.io/rollout-waves: "canary=true;topology.kubernetes.io/zone=a;*", pernode.io/wave-soak: 2s"#;
    let new = c.write("new.yaml", &daemon_set("nginx:1.28", waves));
    let started = Instant::now();
    let run = kubectl_pernode(
        &c,
        &bin,
        &[
            "whatif",
            "-f",
            &new,
            "--json",
            "--pod-start=1s",
            "--time-scale=10",
        ],
    );
    assert!(run.ok, "{}{}", run.stdout, run.stderr);
    let whatif_took = started.elapsed();
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON report");
    assert_eq!(report["outcome"], "complete", "{report}");
    assert_eq!(report["revisionBefore"], old_hash.as_str(), "{report}");
    let new_hash = report["revisionAfter"]
        .as_str()
        .expect("revisionAfter")
        .to_owned();
    assert_ne!(new_hash, old_hash);
    let changed = report["changed"].as_array().expect("changed");
    let predicted: BTreeSet<String> = changed
        .iter()
        .map(|c| c["node"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(predicted.len(), NODES, "{report}");
    assert!(changed.iter().all(|c| c["to"] == new_hash.as_str()));
    assert!(report["blocked"].as_array().is_some_and(Vec::is_empty));
    // The waves in order, each finished before the next starts.
    let timeline = report["waves"].as_array().expect("waves");
    let counts: Vec<u64> = timeline
        .iter()
        .map(|w| w["nodes"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(counts, [5, 45, 150], "{report}");
    for pair in timeline.windows(2) {
        let finished = pair[0]["finishedSeconds"].as_f64().unwrap_or(f64::MAX);
        let started = pair[1]["startedSeconds"].as_f64().unwrap_or(0.0);
        // The next wave's first node changes after the last of this one (and the soak).
        assert!(started > finished, "{report}");
    }
    for c in changed {
        let node = c["node"].as_str().unwrap_or("");
        assert_eq!(c["wave"].as_u64(), Some(wave_of(node) as u64), "{c}");
    }
    assert!(
        report["peakUnavailable"].as_i64().unwrap_or(0) <= 10,
        "{report}"
    );
    let predicted_time = report["timeToCompleteSeconds"].as_f64().unwrap_or(0.0);
    // The table form of the same run says the same.
    let table = kubectl_pernode(
        &c,
        &bin,
        &["whatif", "-f", &new, "--pod-start=1s", "--time-scale=10"],
    );
    assert!(
        table.stdout.contains("nodes changed     200"),
        "{}",
        table.stdout
    );
    assert!(table.stdout.contains("WAVE  SELECTOR"), "{}", table.stdout);

    // Nothing was written to the live cluster.
    assert_eq!(snapshot(&c), before);

    // The real rollout: the same nodes, the same revision, the waves in the same order.
    let real_started = Instant::now();
    c.ok(&["apply", "-f", &new]);
    let mut first_updated: BTreeMap<String, usize> = BTreeMap::new();
    let mut round = 0;
    eventually(
        Duration::from_secs(240),
        "the real rollout finished",
        || {
            round += 1;
            for (node, hash) in ready_hashes(&c) {
                if hash == new_hash {
                    first_updated.entry(node).or_insert(round);
                }
            }
            first_updated.len() == NODES
        },
    );
    let real_took = real_started.elapsed();
    let real: BTreeSet<String> = first_updated.keys().cloned().collect();
    assert_eq!(real, predicted);
    for wave in 1..3 {
        let last_of_wave = first_updated
            .iter()
            .filter(|(n, _)| wave_of(n) == wave)
            .map(|(_, r)| *r)
            .max();
        let first_of_next = first_updated
            .iter()
            .filter(|(n, _)| wave_of(n) == wave + 1)
            .map(|(_, r)| *r)
            .min();
        assert!(
            last_of_wave <= first_of_next,
            "wave {wave}: {first_updated:?}"
        );
    }
    eprintln!(
        "whatif: {NODES} nodes changed in waves {counts:?}, predicted {predicted_time:.1}s simulated \
         (run took {whatif_took:?}); real rollout: {} nodes changed in the same wave order in {real_took:?}",
        real.len()
    );
}

#[test]
fn whatif_refuses_bad_files_and_invalid_changes_without_writing() {
    let c = Cluster::start("up", &["--nodes", "3"]);
    let bin = install_plugin(&c);
    c.ok_stdin(&["apply", "-f", "-"], &daemon_set("nginx:1.27", ""));
    eventually(Duration::from_secs(60), "3 pods available", || {
        ready_hashes(&c).len() == 3
    });
    let before = snapshot(&c);

    let cm = c.write(
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
    );
    let run = kubectl_pernode(&c, &bin, &["whatif", "-f", &cm]);
    assert!(!run.ok);
    assert!(
        run.stderr.starts_with("error: ")
            && run
                .stderr
                .contains("expected one apps/v1 DaemonSet, found \"v1\" \"ConfigMap\""),
        "{}",
        run.stderr
    );
    let broken = c.write("broken.yaml", "kind: [DaemonSet\n");
    let run = kubectl_pernode(&c, &bin, &["whatif", "-f", &broken]);
    assert!(
        !run.ok && run.stderr.contains("not YAML or JSON"),
        "{}",
        run.stderr
    );

    // A value the API server refuses is its Status error, as kubectl apply would print it.
    let invalid = c.write(
        "invalid.yaml",
        &daemon_set("nginx:1.28", "pernode.io/partition: two"),
    );
    let run = kubectl_pernode(&c, &bin, &["whatif", "-f", &invalid]);
    assert!(!run.ok);
    assert!(
        run.stderr.starts_with("Error from server (Invalid): ")
            && run.stderr.contains("pernode.io/partition"),
        "{}",
        run.stderr
    );

    // The same verb as `pernode whatif --kubeconfig K`.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pernode"))
        .args(["whatif", "--kubeconfig"])
        .arg(c.kubeconfig())
        .args(["-f", &cm])
        .output()
        .expect("run pernode whatif");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("expected one apps/v1 DaemonSet"),
        "{out:?}"
    );
    let valid = c.write("valid.yaml", &daemon_set("nginx:1.28", ""));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_pernode"))
        .args(["whatif", "--kubeconfig"])
        .arg(c.kubeconfig())
        .args(["-f", &valid, "--pod-start=1s", "--json"])
        .output()
        .expect("run pernode whatif");
    assert!(out.status.success(), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(report["outcome"], "complete", "{report}");
    assert_eq!(report["changed"].as_array().map(Vec::len), Some(3));

    // Every node's new pods fail: the rollout stalls on the first (maxUnavailable 10 lets
    // all three go at once), and each node is blocked, saying why.
    let run = kubectl_pernode(
        &c,
        &bin,
        &[
            "whatif",
            "-f",
            &valid,
            "--json",
            "--pod-start=1s",
            "--failure-rate=1",
            "--seed=3",
        ],
    );
    assert!(run.ok, "{}", run.stderr);
    let report: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(report["outcome"], "stalled", "{report}");
    assert!(report["timeToCompleteSeconds"].is_null());
    let blocked = report["blocked"].as_array().expect("blocked");
    assert_eq!(blocked.len(), 3, "{report}");
    assert!(
        blocked
            .iter()
            .all(|b| b["reasons"][0] == "pods of the new revision fail (--failure-rate)"),
        "{report}"
    );
    assert_eq!(report["peakUnavailable"], 3, "{report}");
    assert_eq!(snapshot(&c), before);
}
