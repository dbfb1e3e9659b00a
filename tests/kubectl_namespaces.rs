//! Namespaces terminate as upstream's and pods are admitted by their ServiceAccount, through
//! the real kubectl against `pernode up` with simulated nodes: a namespace holding a DaemonSet
//! is `Terminating`, refuses new content with upstream's 403, and then goes with everything in
//! it (no pod re-created, no event left); every namespace gets its `default` ServiceAccount;
//! a DaemonSet naming a missing ServiceAccount records `FailedCreate` and gets its pods once
//! the account exists.

mod support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::{Cluster, eventually};

/// The DaemonSet `agent` of the support module, with a short grace period (the namespace
/// controller waits half of it for terminating pods) and optionally a service account.
fn agent_ds(namespace: &str, service_account: Option<&str>) -> String {
    let account = service_account
        .map(|sa| format!("      serviceAccountName: {sa}\n"))
        .unwrap_or_default();
    format!(
        r#"apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: {namespace}
spec:
  selector:
    matchLabels: {{app: agent}}
  template:
    metadata:
      labels: {{app: agent}}
    spec:
      terminationGracePeriodSeconds: 2
{account}      containers:
      - name: agent
        image: busybox:1.36
"#
    )
}

fn running_pods(c: &Cluster, ns: &str) -> usize {
    c.kubectl(&[
        "get",
        "pods",
        "-n",
        ns,
        "--field-selector",
        "status.phase=Running",
        "-o",
        "name",
    ])
    .stdout
    .lines()
    .count()
}

/// The watch events kubectl printed (`--output-watch-events -o json`): (type, pod name).
fn watch_events(printed: &str) -> Vec<(String, String)> {
    serde_json::Deserializer::from_str(printed)
        .into_iter::<Value>()
        .map_while(Result::ok)
        .map(|ev| {
            let name = ev["object"]["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            (ev["type"].as_str().unwrap_or("").to_string(), name)
        })
        .collect()
}

#[test]
fn a_namespace_with_a_daemon_set_terminates_and_leaves_nothing() {
    let c = Cluster::start("up", &["--nodes", "2"]);
    // The service account controller gives every namespace its `default` account.
    eventually(Duration::from_secs(30), "default/default", || {
        c.kubectl(&[
            "get",
            "serviceaccount",
            "default",
            "-n",
            "default",
            "-o",
            "name",
        ])
        .ok
    });
    // `kubectl create namespace` sends protobuf, which pernode does not read yet.
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n",
    );
    eventually(Duration::from_secs(30), "team/default", || {
        c.kubectl(&[
            "get",
            "serviceaccount",
            "default",
            "-n",
            "team",
            "-o",
            "name",
        ])
        .ok
    });
    c.ok_stdin(&["apply", "-f", "-"], &agent_ds("team", None));
    eventually(Duration::from_secs(60), "two running daemon pods", || {
        running_pods(&c, "team") == 2
    });

    // Watch the namespace's pods from before the delete.
    let printed = c.path("pod-watch.json");
    let mut watch = c
        .command()
        .args([
            "get",
            "pods",
            "-n",
            "team",
            "--watch",
            "--output-watch-events",
            "-o",
            "json",
        ])
        .stdout(std::fs::File::create(&printed).expect("watch output"))
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl watch");
    eventually(Duration::from_secs(30), "the watch lists the pods", || {
        let events = watch_events(&std::fs::read_to_string(&printed).unwrap_or_default());
        events.iter().filter(|(t, _)| t == "ADDED").count() == 2
    });
    let before: Vec<String> = watch_events(&std::fs::read_to_string(&printed).unwrap_or_default())
        .into_iter()
        .map(|(_, name)| name)
        .collect();

    let out = c.ok(&["delete", "namespace", "team", "--wait=false"]);
    assert_eq!(out.trim(), "namespace \"team\" deleted");
    let row = c.ok(&["get", "namespace", "team", "--no-headers"]);
    assert!(row.contains("Terminating"), "{row}");
    let refused = c.kubectl_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\n  namespace: team\n",
    );
    assert!(!refused.ok, "{}", refused.stdout);
    let refused = refused.stderr;
    assert!(
        refused.starts_with("Error from server (Forbidden)")
            && refused.contains(
                "configmaps \"late\" is forbidden: unable to create new content in namespace team because it is being terminated"
            ),
        "{refused}"
    );

    eventually(Duration::from_secs(90), "the namespace is gone", || {
        let run = c.kubectl(&["get", "namespace", "team"]);
        !run.ok && run.stderr.contains("namespaces \"team\" not found")
    });
    let _ = watch.kill();
    let _ = watch.wait();
    let events = watch_events(&std::fs::read_to_string(&printed).unwrap_or_default());
    let added: Vec<&String> = events
        .iter()
        .filter(|(t, _)| t == "ADDED")
        .map(|(_, name)| name)
        .collect();
    assert_eq!(
        added.len(),
        2,
        "no pod may appear after the delete; watched {events:?} (before: {before:?})"
    );
    assert!(
        events
            .iter()
            .any(|(t, name)| t == "DELETED" && before.contains(name)),
        "{events:?}"
    );
    for kind in [
        "pods",
        "events",
        "daemonsets",
        "controllerrevisions",
        "serviceaccounts",
        "configmaps",
    ] {
        let left = c.ok(&["get", kind, "-n", "team", "-o", "name"]);
        assert_eq!(left, "", "{kind} left in the deleted namespace");
    }
    // Events about the namespace's objects were not recorded elsewhere either.
    let elsewhere = c.ok(&[
        "get",
        "events",
        "-A",
        "--field-selector",
        "involvedObject.namespace=team",
        "-o",
        "name",
    ]);
    assert_eq!(elsewhere, "");
    // The immortal namespaces stay.
    let refused = c.fails(&["delete", "namespace", "default"]);
    assert!(
        refused.contains("namespaces \"default\" is forbidden: this namespace may not be deleted"),
        "{refused}"
    );
}

#[test]
fn a_daemon_set_naming_a_missing_service_account_gets_its_pods_once_it_exists() {
    let c = Cluster::start("up", &["--nodes", "2"]);
    c.ok_stdin(&["apply", "-f", "-"], &agent_ds("default", Some("reader")));
    let want = "Error creating: pods \"agent-\" is forbidden: error looking up service account default/reader: serviceaccount \"reader\" not found";
    eventually(Duration::from_secs(60), "a FailedCreate event", || {
        let events = c
            .kubectl(&[
                "get",
                "events",
                "--field-selector",
                "reason=FailedCreate,involvedObject.kind=DaemonSet",
                "-o",
                "jsonpath={.items[*].message}",
            ])
            .stdout;
        events.contains(want)
    });
    assert_eq!(running_pods(&c, "default"), 0);
    c.ok_stdin(
        &["apply", "-f", "-"],
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: reader\n",
    );
    eventually(
        Duration::from_secs(90),
        "the daemon pods once the account exists",
        || running_pods(&c, "default") == 2,
    );
    let account = c.ok(&[
        "get",
        "pods",
        "-l",
        "app=agent",
        "-o",
        "jsonpath={.items[*].spec.serviceAccountName}",
    ]);
    assert_eq!(account, "reader reader");
}
