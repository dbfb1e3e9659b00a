//! The API server driven by the real kubectl: every command a DaemonSet user runs that does not
//! need a controller, with upstream's output and error messages.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use support::{Cluster, eventually};

const DS: &str = r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: fluentd
  labels: {app: fluentd}
spec:
  selector:
    matchLabels: {name: fluentd}
  template:
    metadata:
      labels: {name: fluentd}
    spec:
      nodeSelector: {disk: ssd}
      containers:
      - name: fluentd
        image: fluentd:v1.16
"#;

const NODE: &str = r#"apiVersion: v1
kind: Node
metadata:
  name: n1
  labels: {kubernetes.io/hostname: n1}
"#;

fn api_server() -> Cluster {
    Cluster::start("apiserver", &[])
}

#[test]
fn create_then_get_in_every_output_format() {
    let c = api_server();
    let file = c.write("ds.yaml", DS);
    assert_eq!(
        c.ok(&["create", "-f", &file]).trim(),
        "daemonset.apps/fluentd created"
    );
    let table = c.ok(&["get", "ds"]);
    assert!(
        table.contains(
            "NAME      DESIRED   CURRENT   READY   UP-TO-DATE   AVAILABLE   NODE SELECTOR   AGE"
        ),
        "{table}"
    );
    assert!(
        table.contains("fluentd   0         0         0       0            0           disk=ssd"),
        "{table}"
    );
    let wide = c.ok(&["get", "ds", "-o", "wide"]);
    for col in [
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
        "fluentd:v1.16",
        "name=fluentd",
    ] {
        assert!(wide.contains(col), "{col} missing in\n{wide}");
    }
    let yaml = c.ok(&["get", "ds", "fluentd", "-o", "yaml"]);
    assert!(
        yaml.contains("maxUnavailable: 1"),
        "defaults applied:\n{yaml}"
    );
    assert!(yaml.contains("revisionHistoryLimit: 10"), "{yaml}");
    assert!(yaml.contains("uid: "), "{yaml}");
    let json: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "ds", "fluentd", "-o", "json"])).unwrap();
    assert_eq!(json["metadata"]["generation"], 1);
    assert_eq!(json["spec"]["template"]["spec"]["restartPolicy"], "Always");
    assert_eq!(
        c.ok(&[
            "get",
            "ds",
            "fluentd",
            "-o",
            "jsonpath={.spec.updateStrategy.type}"
        ]),
        "RollingUpdate"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "ds",
            "fluentd",
            "-o",
            "go-template={{.metadata.name}}"
        ]),
        "fluentd"
    );
    let cc = c.ok(&[
        "get",
        "ds",
        "-o",
        "custom-columns=NAME:.metadata.name,IMAGE:.spec.template.spec.containers[0].image",
    ]);
    assert!(cc.contains("fluentd   fluentd:v1.16"), "{cc}");
    let again = c.kubectl(&["create", "-f", &file]);
    assert!(
        again.stderr.contains("Error from server (AlreadyExists)"),
        "{}",
        again.stderr
    );
    assert!(
        again
            .stderr
            .contains("daemonsets.apps \"fluentd\" already exists"),
        "{}",
        again.stderr
    );
    let missing = c.fails(&["get", "ds", "nope"]);
    assert!(
        missing.contains("Error from server (NotFound): daemonsets.apps \"nope\" not found"),
        "{missing}"
    );
    assert!(
        c.kubectl(&["get", "pods"])
            .stderr
            .contains("No resources found in default namespace.")
    );
}

#[test]
fn apply_creates_configures_and_leaves_unchanged() {
    let c = api_server();
    let file = c.write("ds.yaml", DS);
    assert_eq!(
        c.ok(&["apply", "-f", &file]).trim(),
        "daemonset.apps/fluentd created"
    );
    assert_eq!(
        c.ok(&["apply", "-f", &file]).trim(),
        "daemonset.apps/fluentd unchanged"
    );
    c.write(
        "ds.yaml",
        &DS.replace("fluentd:v1.16", "fluentd:v1.17")
            .replace("{disk: ssd}", "{disk: hdd}"),
    );
    assert_eq!(
        c.ok(&["apply", "-f", &file]).trim(),
        "daemonset.apps/fluentd configured"
    );
    let ds: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "ds", "fluentd", "-o", "json"])).unwrap();
    assert_eq!(
        ds["spec"]["template"]["spec"]["containers"][0]["image"],
        "fluentd:v1.17"
    );
    assert_eq!(
        ds["spec"]["template"]["spec"]["nodeSelector"]["disk"],
        "hdd"
    );
    assert_eq!(
        ds["metadata"]["generation"], 2,
        "a spec change bumps generation once"
    );
    assert_eq!(
        ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"],
        "2"
    );
    // Metadata-only change: generation stays.
    c.ok(&["label", "ds", "fluentd", "tier=logging"]);
    assert_eq!(
        c.ok(&[
            "get",
            "ds",
            "fluentd",
            "-o",
            "jsonpath={.metadata.generation}"
        ]),
        "2"
    );
    // Server-side apply creates and updates too.
    let ssa = c.write(
        "ssa.yaml",
        &DS.replace("name: fluentd\n  labels", "name: ssa\n  labels"),
    );
    assert_eq!(
        c.ok(&["apply", "--server-side", "-f", &ssa]).trim(),
        "daemonset.apps/ssa serverside-applied"
    );
    assert_eq!(
        c.ok(&["get", "ds", "ssa", "-o", "jsonpath={.metadata.name}"]),
        "ssa"
    );
}

#[test]
fn server_dry_runs_and_server_side_diff_change_nothing() {
    let c = api_server();
    let file = c.write("ds.yaml", DS);
    c.ok(&["apply", "--server-side", "-f", &file]);
    let state = || {
        c.ok(&[
            "get",
            "ds",
            "fluentd",
            "-o",
            "jsonpath={.metadata.resourceVersion} {.metadata.generation} {.spec.template.spec.containers[0].image}",
        ])
    };
    let before = state();
    c.write("ds.yaml", &DS.replace("fluentd:v1.16", "fluentd:v1.17"));
    assert_eq!(
        c.ok(&["apply", "--server-side", "--dry-run=server", "-f", &file])
            .trim(),
        "daemonset.apps/fluentd serverside-applied (server dry run)"
    );
    assert_eq!(
        state(),
        before,
        "apply --server-side --dry-run=server changed the object"
    );
    // kubectl diff exits 1 when there are differences.
    let diff = c.kubectl(&["diff", "--server-side", "-f", &file]);
    assert!(
        !diff.ok && diff.stdout.contains("+      - image: fluentd:v1.17"),
        "{}{}",
        diff.stdout,
        diff.stderr
    );
    assert_eq!(state(), before, "diff --server-side changed the object");
    let fresh = c.write(
        "fresh.yaml",
        &DS.replace("name: fluentd\n  labels", "name: fresh\n  labels"),
    );
    c.ok(&["apply", "--server-side", "--dry-run=server", "-f", &fresh]);
    c.ok(&["create", "--dry-run=server", "-f", &fresh]);
    let e = c.fails(&["get", "ds", "fresh"]);
    assert!(e.contains("\"fresh\" not found"), "{e}");
    c.ok(&["delete", "ds", "fluentd", "--dry-run=server"]);
    assert_eq!(state(), before, "delete --dry-run=server deleted");
}

#[test]
fn nodes_are_labeled_annotated_tainted_and_cordoned() {
    let c = api_server();
    c.ok_stdin(&["apply", "-f", "-"], NODE);
    assert_eq!(
        c.ok(&["label", "node", "n1", "daemon=need"]).trim(),
        "node/n1 labeled"
    );
    let err = c.fails(&["label", "node", "n1", "daemon=yes"]);
    assert!(
        err.contains("'daemon' already has a value (need), and --overwrite is false"),
        "{err}"
    );
    assert_eq!(
        c.ok(&["label", "node", "n1", "daemon=no", "--overwrite"])
            .trim(),
        "node/n1 labeled"
    );
    let listed = c.ok(&["get", "node", "-l", "daemon=no", "-L", "daemon"]);
    assert!(
        listed.contains("DAEMON") && listed.contains("n1"),
        "{listed}"
    );
    assert_eq!(
        c.ok(&["label", "node", "n1", "daemon-"]).trim(),
        "node/n1 unlabeled"
    );
    assert_eq!(
        c.ok(&["annotate", "node", "n1", "note=hello"]).trim(),
        "node/n1 annotated"
    );
    assert_eq!(
        c.ok(&["taint", "nodes", "n1", "forbid=true:NoSchedule"])
            .trim(),
        "node/n1 tainted"
    );
    let taints = c.ok(&[
        "get",
        "nodes",
        "-o",
        "custom-columns=NODE:.metadata.name,TAINTS:.spec.taints",
    ]);
    assert!(
        taints.contains("map[effect:NoSchedule key:forbid value:true]"),
        "{taints}"
    );
    let again = c.fails(&["taint", "nodes", "n1", "forbid=true:NoSchedule"]);
    assert!(
        again.contains("already has forbid taint(s) with same effect(s)"),
        "{again}"
    );
    assert_eq!(
        c.ok(&["taint", "nodes", "n1", "forbid-"]).trim(),
        "node/n1 untainted"
    );
    assert_eq!(c.ok(&["cordon", "n1"]).trim(), "node/n1 cordoned");
    assert!(c.ok(&["get", "nodes"]).contains("SchedulingDisabled"));
    assert_eq!(c.ok(&["cordon", "n1"]).trim(), "node/n1 already cordoned");
    assert_eq!(c.ok(&["uncordon", "n1"]).trim(), "node/n1 uncordoned");
}

#[test]
fn patches_of_every_type_apply_and_no_ops_change_nothing() {
    let c = api_server();
    c.ok_stdin(&["create", "-f", "-"], DS);
    let rv = c.ok(&[
        "get",
        "ds",
        "fluentd",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    assert_eq!(
        c.ok(&["patch", "ds", "fluentd", "-p", r#"{"spec":{"template":{"spec":{"containers":[{"name":"fluentd","image":"fluentd:v2"}]}}}}"#]).trim(),
        "daemonset.apps/fluentd patched"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "ds",
            "fluentd",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}"
        ]),
        "fluentd:v2"
    );
    c.ok(&[
        "patch",
        "ds",
        "fluentd",
        "--type=merge",
        "-p",
        r#"{"spec":{"minReadySeconds":5}}"#,
    ]);
    assert_eq!(
        c.ok(&[
            "get",
            "ds",
            "fluentd",
            "-o",
            "jsonpath={.spec.minReadySeconds}"
        ]),
        "5"
    );
    c.ok(&[
        "patch",
        "ds",
        "fluentd",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/minReadySeconds","value":7}]"#,
    ]);
    assert_eq!(
        c.ok(&[
            "get",
            "ds",
            "fluentd",
            "-o",
            "jsonpath={.spec.minReadySeconds}"
        ]),
        "7"
    );
    let before = c.ok(&[
        "get",
        "ds",
        "fluentd",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    assert_ne!(before, rv);
    assert_eq!(
        c.ok(&[
            "patch",
            "ds",
            "fluentd",
            "--type=merge",
            "-p",
            r#"{"spec":{"minReadySeconds":7}}"#
        ])
        .trim(),
        "daemonset.apps/fluentd patched (no change)"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "ds",
            "fluentd",
            "-o",
            "jsonpath={.metadata.resourceVersion}"
        ]),
        before
    );
    assert_eq!(
        c.ok(&["set", "image", "ds/fluentd", "fluentd=fluentd:v3"])
            .trim(),
        "daemonset.apps/fluentd image updated"
    );
    let err = c.fails(&["set", "image", "ds/fluentd", "nope=x"]);
    assert!(
        err.contains("unable to find container named \"nope\""),
        "{err}"
    );
    let bad = c.fails(&[
        "patch",
        "ds",
        "fluentd",
        "--type=json",
        "-p",
        r#"[{"op":"test","path":"/spec/minReadySeconds","value":99}]"#,
    ]);
    assert!(
        bad.contains("the server rejected our request"),
        "a failing JSON patch is a 422 as upstream: {bad}"
    );
    let status_patch = c.ok(&[
        "patch",
        "ds",
        "fluentd",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"numberReady":3}}"#,
    ]);
    assert!(status_patch.contains("patched"), "{status_patch}");
    let ds: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "ds", "fluentd", "-o", "json"])).unwrap();
    assert_eq!(ds["status"]["numberReady"], 3);
    assert_eq!(ds["spec"]["minReadySeconds"], 7);
}

#[test]
fn invalid_daemon_sets_are_refused_with_upstream_messages() {
    let c = api_server();
    let out = c.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: bad-selector}\nspec:\n  selector: {matchLabels: {app: one}}\n  template:\n    metadata: {labels: {app: two}}\n    spec: {containers: [{name: c, image: busybox}]}\n",
    );
    assert!(
        out.stderr
            .contains("The DaemonSet \"bad-selector\" is invalid"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("spec.template.metadata.labels"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("does not match template"),
        "{}",
        out.stderr
    );
    let out = c.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: bad-restart}\nspec:\n  selector: {matchLabels: {app: r}}\n  template:\n    metadata: {labels: {app: r}}\n    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}\n",
    );
    assert!(
        out.stderr.contains("spec.template.spec.restartPolicy"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Unsupported value: \"Never\""),
        "{}",
        out.stderr
    );
    let out = c.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Node\nmetadata: {name: Bad_Name}\n",
    );
    assert!(out.stderr.contains("is invalid"), "{}", out.stderr);
    let out = c.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec:\n  bogus: 1\n",
    );
    assert!(
        out.stderr.contains("unknown field"),
        "strict field validation: {}",
        out.stderr
    );
    assert_eq!(
        c.ok(&["get", "ds", "-o", "name"]),
        "",
        "nothing was created"
    );
    let unknown = c.fails(&["get", "widgets"]);
    assert!(
        unknown.contains("the server doesn't have a resource type \"widgets\""),
        "{unknown}"
    );
}

#[test]
fn delete_records_each_cascade_mode() {
    let c = api_server();
    for name in ["bg", "orphan", "fg"] {
        c.ok_stdin(
            &["create", "-f", "-"],
            &DS.replace(
                "name: fluentd\n  labels",
                &format!("name: {name}\n  labels"),
            ),
        );
    }
    assert_eq!(
        c.ok(&["delete", "ds", "bg"]).trim(),
        "daemonset.apps \"bg\" deleted"
    );
    assert!(c.fails(&["get", "ds", "bg"]).contains("NotFound"));
    c.ok(&["delete", "ds", "orphan", "--cascade=orphan", "--wait=false"]);
    assert_eq!(
        c.ok(&[
            "get",
            "ds",
            "orphan",
            "-o",
            "jsonpath={.metadata.finalizers}"
        ]),
        r#"["orphan"]"#
    );
    c.ok(&["delete", "ds", "fg", "--cascade=foreground", "--wait=false"]);
    assert_eq!(
        c.ok(&["get", "ds", "fg", "-o", "jsonpath={.metadata.finalizers}"]),
        r#"["foregroundDeletion"]"#
    );
    assert!(
        !c.ok(&[
            "get",
            "ds",
            "fg",
            "-o",
            "jsonpath={.metadata.deletionTimestamp}"
        ])
        .is_empty()
    );
    // Removing the last finalizer completes the deletion.
    c.ok(&[
        "patch",
        "ds",
        "fg",
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    assert!(c.fails(&["get", "ds", "fg"]).contains("NotFound"));
    let missing = c.fails(&["delete", "ds", "nope"]);
    assert!(
        missing.contains("Error from server (NotFound): daemonsets.apps \"nope\" not found"),
        "{missing}"
    );
}

#[test]
fn pods_delete_gracefully_only_when_bound() {
    let c = api_server();
    c.ok_stdin(&["apply", "-f", "-"], NODE);
    // No controllers run here: the service account controller's `default` account, which
    // ServiceAccount admission requires of a pod.
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default}\n",
    );
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app: p}}\nspec: {containers: [{name: c, image: busybox}]}\n";
    c.ok_stdin(&["create", "-f", "-"], pod);
    c.ok(&["delete", "pod", "p", "--wait=false"]);
    assert!(
        c.fails(&["get", "pod", "p"]).contains("NotFound"),
        "an unbound pod goes at once"
    );
    c.ok_stdin(
        &["create", "-f", "-"],
        &pod.replace("spec: {", "spec: {nodeName: n1, "),
    );
    c.ok(&["delete", "pod", "p", "--wait=false"]);
    let status = c.ok(&["get", "pod", "p"]);
    assert!(
        status.contains("Terminating"),
        "a bound pod waits for its node:\n{status}"
    );
    c.ok(&["delete", "pod", "p", "--grace-period=0", "--force"]);
    assert!(c.fails(&["get", "pod", "p"]).contains("NotFound"));
}

#[test]
fn get_watch_streams_changes() {
    let c = api_server();
    c.ok_stdin(&["apply", "-f", "-"], NODE);
    let mut watch = c
        .command()
        .args(["get", "nodes", "-w", "--show-labels"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let stdout = watch.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(20)).expect("header");
    assert!(first.starts_with("NAME"), "{first}");
    let row = rx.recv_timeout(Duration::from_secs(20)).expect("the node");
    assert!(row.starts_with("n1"), "{row}");
    c.ok(&["label", "node", "n1", "watched=yes"]);
    let changed = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the change is streamed");
    assert!(changed.contains("watched=yes"), "{changed}");
    let _ = watch.kill();
    let _ = watch.wait();
}

#[test]
fn discovery_version_and_explain_work() {
    let c = api_server();
    let resources = c.ok(&["api-resources"]);
    for line in [
        "daemonsets",
        "ds",
        "apps/v1",
        "pods",
        "po",
        "nodes",
        "no",
        "namespaces",
        "ns",
        "events",
        "ev",
        "controllerrevisions",
        "leases",
    ] {
        assert!(resources.contains(line), "{line} missing from\n{resources}");
    }
    let version = c.ok(&["version"]);
    assert!(version.contains("Server Version: v1."), "{version}");
    let explain = c.ok(&["explain", "daemonset.spec.updateStrategy"]);
    assert!(explain.contains("DaemonSetUpdateStrategy"), "{explain}");
    let ns = c.ok(&["get", "ns"]);
    for n in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(ns.contains(n), "{ns}");
    }
    assert!(
        c.fails(&["delete", "ns", "default"])
            .contains("this namespace may not be deleted")
    );
}

#[test]
fn objects_survive_restart_and_sigterm_exits_cleanly() {
    let mut c = Cluster::start("up", &["--nodes", "2"]);
    eventually(Duration::from_secs(20), "two nodes", || {
        c.ok(&["get", "nodes", "-o", "name"]).lines().count() == 2
    });
    c.ok_stdin(&["create", "-f", "-"], DS);
    let uid = c.ok(&["get", "ds", "fluentd", "-o", "jsonpath={.metadata.uid}"]);
    assert!(c.stop().success(), "clean exit on SIGTERM");
    c.restart();
    assert_eq!(
        c.ok(&["get", "ds", "fluentd", "-o", "jsonpath={.metadata.uid}"]),
        uid
    );
    assert_eq!(
        c.ok(&["get", "nodes", "-o", "name"]).lines().count(),
        2,
        "no duplicate nodes on restart"
    );
    // An acknowledged write survives kill -9.
    c.ok(&["label", "ds", "fluentd", "durable=yes"]);
    c.kill9();
    c.restart();
    assert_eq!(
        c.ok(&[
            "get",
            "ds",
            "fluentd",
            "-o",
            "jsonpath={.metadata.labels.durable}"
        ]),
        "yes"
    );
}

#[test]
fn drain_evicts_bare_pods_and_cordons() {
    let c = Cluster::start("up", &["--nodes", "1"]);
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: bare}\nspec: {nodeName: node-1, containers: [{name: c, image: busybox}]}\n";
    c.ok_stdin(&["create", "-f", "-"], pod);
    eventually(
        Duration::from_secs(20),
        "the simulated node runs the pod",
        || c.ok(&["get", "pod", "bare", "-o", "jsonpath={.status.phase}"]) == "Running",
    );
    let blocked = c.fails(&["drain", "node-1", "--timeout=20s"]);
    assert!(
        blocked.contains("cannot delete Pods that declare no controller"),
        "{blocked}"
    );
    let run = c.kubectl(&[
        "drain",
        "node-1",
        "--ignore-daemonsets",
        "--force",
        "--timeout=60s",
    ]);
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("evicting pod default/bare")
            || run.stderr.contains("evicting pod default/bare"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(run.stdout.contains("node/node-1 drained"), "{}", run.stdout);
    assert!(c.fails(&["get", "pod", "bare"]).contains("NotFound"));
    assert_eq!(
        c.ok(&[
            "get",
            "node",
            "node-1",
            "-o",
            "jsonpath={.spec.unschedulable}"
        ]),
        "true"
    );
}

/// mimalloc asks for transparent huge pages, and zeroing fresh 2 MiB pages cost a tenth of the
/// CPU of a large converge: the control plane runs with THP disabled (see `src/main.rs`).
#[test]
fn the_control_plane_runs_without_transparent_huge_pages() {
    let cluster = api_server();
    let pid = cluster.child.as_ref().expect("running").id();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let thp = status
        .lines()
        .find_map(|l| l.strip_prefix("THP_enabled:"))
        .expect("the kernel reports THP_enabled (Linux 5.0 and later)");
    assert_eq!(thp.trim(), "0", "{status}");
}

/// The control plane raises its soft limit of open files to the hard limit (every connection
/// and watch holds one).
#[test]
fn the_control_plane_raises_its_open_file_limit() {
    let dir = tempfile::tempdir().expect("dir");
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -S -n 256 && exec \"$0\" apiserver --listen 127.0.0.1:0 --data-dir \"$1\" --kubeconfig \"$2\"")
        .arg(env!("CARGO_BIN_EXE_pernode"))
        .arg(dir.path().join("data"))
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pernode");
    eventually(
        Duration::from_secs(60),
        "the server writes its kubeconfig",
        || kubeconfig.exists(),
    );
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).expect("limits");
    let _ = child.kill();
    let _ = child.wait();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a line for open files")
        .split_whitespace()
        .collect();
    // `Max open files <soft> <hard> files`
    assert_eq!(open_files[3], open_files[4], "{limits}");
    assert_ne!(open_files[3], "256", "{limits}");
}
