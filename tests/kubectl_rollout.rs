//! Rollouts, history, undo, restart, describe and cascading deletes driven by the real kubectl
//! against `pernode up` (controllers and 3 simulated nodes), with upstream's output
//! (`kubectl-wire-contract.md` §3.5, §3.10, §3.11; rules R53, R94-R97, R107).

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::{Cluster, eventually};

fn ds_yaml(name: &str, extra_spec: &str, annotations: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: {name}
  annotations: {{{annotations}}}
spec:
  selector:
    matchLabels: {{app: {name}}}
{extra_spec}  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: c
        image: nginx:1.27
"#
    )
}

fn up() -> Cluster {
    Cluster::start("up", &["--nodes", "3"])
}

/// `kubectl rollout status` until done; returns its output.
fn rolled_out(c: &Cluster, name: &str) -> String {
    let out = c.ok(&["rollout", "status", &format!("ds/{name}"), "--timeout=60s"]);
    let last = out.lines().last().unwrap_or("");
    assert_eq!(
        last,
        format!("daemon set \"{name}\" successfully rolled out"),
        "{out}"
    );
    out
}

/// Names of the pods of `app=<name>` that are not terminating, with their images.
fn pods(c: &Cluster, name: &str) -> BTreeSet<(String, String)> {
    let out = c.ok(&["get", "pods", "-l", &format!("app={name}"), "-o", "json"]);
    let list: serde_json::Value = serde_json::from_str(&out).expect("pod list");
    list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap_or("").to_string(),
                p["spec"]["containers"][0]["image"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect()
}

/// Waits until `name` runs exactly 3 live pods, all with `image`; returns their names.
fn settled(c: &Cluster, name: &str, image: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    eventually(
        Duration::from_secs(30),
        &format!("3 pods of {name} on {image}"),
        || {
            let p = pods(c, name);
            names = p.iter().map(|(n, _)| n.clone()).collect();
            p.len() == 3 && p.iter().all(|(_, i)| i == image)
        },
    );
    names
}

#[test]
fn set_image_then_rollout_status_reports_success() {
    let c = up();
    c.ok_stdin(&["apply", "-f", "-"], &ds_yaml("x", "", ""));
    rolled_out(&c, "x");
    settled(&c, "x", "nginx:1.27");
    assert_eq!(
        c.ok(&["set", "image", "ds/x", "c=nginx:1.28"]).trim(),
        "daemonset.apps/x image updated"
    );
    let out = rolled_out(&c, "x");
    for line in out.lines() {
        assert!(
            line.starts_with("Waiting for daemon set") || line.ends_with("successfully rolled out"),
            "unexpected line {line:?} in\n{out}"
        );
    }
    settled(&c, "x", "nginx:1.28");
    let table = c.ok(&["get", "ds", "x"]);
    assert!(
        table.contains("x      3         3         3       3            3           <none>"),
        "{table}"
    );
    // --watch=false prints one line and exits.
    assert_eq!(
        c.ok(&["rollout", "status", "ds/x", "--watch=false"]).trim(),
        "daemon set \"x\" successfully rolled out"
    );
}

#[test]
fn rollout_status_on_on_delete_prints_the_upstream_error() {
    let c = up();
    c.ok_stdin(
        &["apply", "-f", "-"],
        &ds_yaml("x", "  updateStrategy: {type: OnDelete}\n", ""),
    );
    let err = c.fails(&["rollout", "status", "ds/x", "--timeout=20s"]);
    assert_eq!(
        err.trim(),
        "error: rollout status is only available for RollingUpdate strategy type"
    );
}

#[test]
fn rollout_history_shows_change_causes_and_revisions() {
    let c = up();
    c.ok_stdin(
        &["apply", "-f", "-"],
        &ds_yaml("x", "", "kubernetes.io/change-cause: first"),
    );
    rolled_out(&c, "x");
    c.ok(&[
        "annotate",
        "ds/x",
        "--overwrite",
        "kubernetes.io/change-cause=to 1.28",
    ]);
    c.ok(&["set", "image", "ds/x", "c=nginx:1.28"]);
    rolled_out(&c, "x");
    let history = c.ok(&["rollout", "history", "ds/x"]);
    let lines: Vec<&str> = history.lines().map(str::trim_end).collect();
    assert_eq!(
        lines,
        vec![
            "daemonset.apps/x",
            "REVISION  CHANGE-CAUSE",
            "1         first",
            "2         to 1.28",
            "",
        ],
        "{history}"
    );
    let rev = c.ok(&["rollout", "history", "ds/x", "--revision=1"]);
    assert!(
        rev.starts_with("daemonset.apps/x with revision #1\nPod Template:\n"),
        "{rev}"
    );
    assert!(
        rev.lines()
            .any(|l| l.split_whitespace().eq(["Image:", "nginx:1.27"])),
        "{rev}"
    );
    let rev2 = c.ok(&["rollout", "history", "ds/x", "--revision=2"]);
    assert!(rev2.contains("nginx:1.28"), "{rev2}");
    let err = c.fails(&["rollout", "history", "ds/x", "--revision=9"]);
    assert_eq!(err.trim(), "error: unable to find the specified revision");
}

#[test]
fn rollout_undo_and_undo_to_revision() {
    let c = up();
    c.ok_stdin(&["apply", "-f", "-"], &ds_yaml("x", "", ""));
    rolled_out(&c, "x");
    assert_eq!(
        c.fails(&["rollout", "undo", "ds/x"]).trim(),
        "error: no last revision to roll back to"
    );
    c.ok(&["set", "image", "ds/x", "c=nginx:1.28"]);
    rolled_out(&c, "x");
    settled(&c, "x", "nginx:1.28");

    assert_eq!(
        c.ok(&["rollout", "undo", "ds/x"]).trim(),
        "daemonset.apps/x rolled back"
    );
    rolled_out(&c, "x");
    settled(&c, "x", "nginx:1.27");
    // Revision 1 was reused as 3 (R88).
    let revisions = |c: &Cluster| {
        c.ok(&["rollout", "history", "ds/x"])
            .lines()
            .skip(2)
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect::<Vec<_>>()
    };
    assert_eq!(revisions(&c), vec!["2", "3"]);

    assert_eq!(
        c.ok(&["rollout", "undo", "ds/x", "--to-revision=2"]).trim(),
        "daemonset.apps/x rolled back"
    );
    rolled_out(&c, "x");
    let names = settled(&c, "x", "nginx:1.28");
    eventually(Duration::from_secs(10), "revisions 3 and 4", || {
        revisions(&c) == vec!["3", "4"]
    });

    // Undo to the current template: no write (R95, R100).
    assert_eq!(
        c.ok(&["rollout", "undo", "ds/x", "--to-revision=4"]).trim(),
        "daemonset.apps/x skipped rollback (current template already matches revision 4)"
    );
    assert_eq!(
        c.ok(&["get", "ds", "x", "-o", "jsonpath={.metadata.generation}"]),
        "4",
        "no write"
    );
    assert_eq!(settled(&c, "x", "nginx:1.28"), names, "no pod restarted");
    assert_eq!(
        c.fails(&["rollout", "undo", "ds/x", "--to-revision=99"])
            .trim(),
        "error: unable to find specified revision 99 in history"
    );
}

#[test]
fn rollout_restart_rolls_every_pod() {
    let c = up();
    c.ok_stdin(&["apply", "-f", "-"], &ds_yaml("x", "", ""));
    rolled_out(&c, "x");
    let before = settled(&c, "x", "nginx:1.27");
    assert_eq!(
        c.ok(&["rollout", "restart", "ds/x"]).trim(),
        "daemonset.apps/x restarted"
    );
    rolled_out(&c, "x");
    let after = settled(&c, "x", "nginx:1.27");
    assert!(
        before.is_disjoint(&after),
        "every pod replaced: {before:?} -> {after:?}"
    );
    let stamp = c.ok(&[
        "get",
        "ds",
        "x",
        "-o",
        r#"jsonpath={.spec.template.metadata.annotations.kubectl\.kubernetes\.io/restartedAt}"#,
    ]);
    assert!(!stamp.is_empty(), "restartedAt set on the template");
    for name in &after {
        let on_pod = c.ok(&[
            "get",
            "pod",
            name,
            "-o",
            r#"jsonpath={.metadata.annotations.kubectl\.kubernetes\.io/restartedAt}"#,
        ]);
        assert_eq!(on_pod, stamp, "{name}");
    }
    let history = c.ok(&["rollout", "history", "ds/x"]);
    assert!(history.contains("\n2  "), "{history}");
}

#[test]
fn describe_ds_shows_pods_status_and_events() {
    let c = up();
    c.ok_stdin(&["apply", "-f", "-"], &ds_yaml("x", "", ""));
    rolled_out(&c, "x");
    let mut out = String::new();
    eventually(Duration::from_secs(20), "3 running pods described", || {
        out = c.ok(&["describe", "ds", "x"]);
        out.lines().any(|l| {
            l.starts_with("Pods Status:")
                && l.ends_with(" 3 Running / 0 Waiting / 0 Succeeded / 0 Failed")
        })
    });
    for want in [
        "Name:           x",
        "Selector:       app=x",
        "Desired Number of Nodes Scheduled: 3",
        "Current Number of Nodes Scheduled: 3",
        "Number of Nodes Scheduled with Up-to-date Pods: 3",
        "Number of Nodes Scheduled with Available Pods: 3",
        "Number of Nodes Misscheduled: 0",
        "Events:",
        "Normal  SuccessfulCreate",
        "daemonset-controller",
        "Created pod: x-",
    ] {
        assert!(out.contains(want), "{want:?} missing in\n{out}");
    }
    let header = out
        .lines()
        .find(|l| l.trim_start().starts_with("Type"))
        .unwrap_or("");
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        vec!["Type", "Reason", "Age", "From", "Message"],
        "{out}"
    );
}

#[test]
fn delete_ds_with_each_cascade_mode() {
    let c = up();
    for name in ["bg", "fg", "orph"] {
        c.ok_stdin(&["apply", "-f", "-"], &ds_yaml(name, "", ""));
    }
    for name in ["bg", "fg", "orph"] {
        rolled_out(&c, name);
        settled(&c, name, "nginx:1.27");
    }
    let orphans = settled(&c, "orph", "nginx:1.27");

    assert_eq!(
        c.ok(&["delete", "ds", "bg", "--timeout=60s"]).trim(),
        "daemonset.apps \"bg\" deleted"
    );
    assert!(c.fails(&["get", "ds", "bg"]).contains("NotFound"));
    eventually(Duration::from_secs(30), "bg's pods collected", || {
        c.ok(&["get", "pods", "-l", "app=bg", "-o", "name"])
            .is_empty()
    });

    // Foreground: kubectl waits until the GC has removed the pods, then the DaemonSet.
    assert_eq!(
        c.ok(&[
            "delete",
            "ds",
            "fg",
            "--cascade=foreground",
            "--timeout=60s"
        ])
        .trim(),
        "daemonset.apps \"fg\" deleted"
    );
    assert!(c.fails(&["get", "ds", "fg"]).contains("NotFound"));
    assert_eq!(
        c.ok(&["get", "pods", "-l", "app=fg", "-o", "name"]),
        "",
        "pods gone before their owner"
    );

    // Orphan: the DaemonSet goes, the pods stay, running and unowned.
    assert_eq!(
        c.ok(&["delete", "ds", "orph", "--cascade=orphan", "--timeout=60s"])
            .trim(),
        "daemonset.apps \"orph\" deleted"
    );
    assert!(c.fails(&["get", "ds", "orph"]).contains("NotFound"));
    let left = c.ok(&[
        "get",
        "pods",
        "-l",
        "app=orph",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.name} {.status.phase} {.metadata.ownerReferences}{"\n"}{end}"#,
    ]);
    let names: BTreeSet<String> = left
        .lines()
        .map(|l| {
            let mut parts = l.split(' ');
            let name = parts.next().unwrap_or("").to_string();
            assert_eq!(parts.next(), Some("Running"), "{left}");
            assert_eq!(parts.next(), Some(""), "no owner left: {left}");
            name
        })
        .collect();
    assert_eq!(names, orphans);
}
