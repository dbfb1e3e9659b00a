//! The official Kubernetes JavaScript client (`@kubernetes/client-node`, pinned in
//! `tests/js/package-lock.json`) against `pernode up`, with the kubeconfig as pernode writes it
//! (HTTPS, the cluster CA, the admin's ECDSA client certificate). `tests/js/client.mjs` loads
//! it with `KubeConfig.loadFromDefault()`, goes through the typed APIs, a `Watch`, an informer,
//! `Log`, `Exec` and `CustomObjectsApi`, and prints each step's result as JSON, checked here.
//!
//! Needs Node.js (18 or later) and npm on the PATH (`.ci/run` installs them); `npm ci` runs
//! first when `tests/js/node_modules` lacks the pinned client, so the registry must be
//! reachable on a fresh clone.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::client_script::{self, Steps};
use support::{Cluster, eventually};

/// How long the script may run: its own waits (the rollout, 90 s) end well before.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(240);

/// The simulated nodes the script creates.
const NODES: [&str; 2] = ["js-node-1", "js-node-2"];

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// `program --version` succeeds, or the test fails saying what to install.
fn require(program: &str) {
    let found = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    assert!(
        found.is_ok_and(|s| s.success()),
        "this test runs the official JavaScript client: `{program}` was not found on the PATH \
         (install Node.js and npm; `.ci/run` does)"
    );
}

/// The client version `package.json` pins.
fn pinned_client(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("package.json")).expect("tests/js/package.json");
    let manifest: Value = serde_json::from_str(&text).expect("package.json is JSON");
    manifest["dependencies"]["@kubernetes/client-node"]
        .as_str()
        .expect("package.json pins @kubernetes/client-node")
        .to_string()
}

/// The client version installed under `node_modules`, if any.
fn installed_client(dir: &Path) -> Option<String> {
    let path = dir.join("node_modules/@kubernetes/client-node/package.json");
    let text = std::fs::read_to_string(path).ok()?;
    let manifest: Value = serde_json::from_str(&text).ok()?;
    manifest["version"].as_str().map(str::to_string)
}

/// `npm ci` unless the pinned client is installed already.
fn install_client(dir: &Path) {
    let pinned = pinned_client(dir);
    if installed_client(dir).as_deref() == Some(pinned.as_str()) {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .output()
        .expect("run npm ci");
    assert!(
        out.status.success(),
        "`npm ci` in {} failed (is the npm registry reachable?):\n{}\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        installed_client(dir),
        Some(pinned),
        "npm ci installed the pinned client"
    );
}

/// Runs `client.mjs` against the cluster; its JSON results.
fn run_script(cluster: &Cluster, dir: &Path) -> Value {
    client_script::run(
        cluster,
        Path::new("node"),
        "client.mjs",
        dir,
        &[("JS_NODES", NODES.join(","))],
        SCRIPT_DEADLINE,
    )
}

#[test]
fn the_official_javascript_client_works_with_the_kubeconfig_as_written() {
    require("node");
    require("npm");
    let dir = js_dir();
    install_client(&dir);
    let cluster = Cluster::start("up", &["--nodes", "0"]);
    let steps = Steps(run_script(&cluster, &dir));

    // Reads and writes through the typed APIs.
    assert!(
        steps
            .ok("version")
            .as_str()
            .is_some_and(|v| v.starts_with("v1.")),
        "{}",
        steps.0["version"]
    );
    let namespaces = steps.ok("listNamespaces");
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(
            namespaces
                .as_array()
                .is_some_and(|a| a.contains(&json!(ns))),
            "{namespaces}"
        );
    }
    assert_eq!(steps.ok("createNamespace"), "Active");
    assert_eq!(steps.ok("createNodes"), &json!(NODES));
    assert_eq!(steps.ok("defaultServiceAccount"), "default");
    let created = steps.ok("createConfigMap");
    let read = steps.ok("readConfigMap");
    assert_eq!(read["uid"], created["uid"]);
    assert_eq!(read["data"], json!({"level": "info"}));

    // Bad input is the server's Status, which the client hands over as it came.
    let invalid = steps.failed("createInvalidConfigMap");
    assert_eq!(invalid["code"], 422, "{invalid}");
    assert_eq!(invalid["body"]["kind"], "Status");
    assert_eq!(invalid["body"]["reason"], "Invalid");
    assert_eq!(
        invalid["body"]["details"]["causes"][0]["field"],
        "metadata.name"
    );

    // The DaemonSet, defaulted, read back and patched: a strategic merge patch merges the
    // container by name (its env stays) and starts template generation 2.
    assert_eq!(
        steps.ok("createDaemonSet"),
        &json!({"generation": 1, "createdIsDate": true, "updateStrategy": "RollingUpdate"})
    );
    assert_eq!(
        steps.ok("readDaemonSet"),
        &json!({"name": "js-agent", "image": "busybox:1.36", "revisionHistoryLimit": 10})
    );
    assert_eq!(steps.ok("listDaemonSets"), &json!(["js-agent"]));
    assert_eq!(
        steps.ok("patchDaemonSet"),
        &json!({"generation": 2, "image": "busybox:1.37", "env": ["LEVEL"],
                "labels": {"app": "js-agent", "tier": "node"}})
    );
    assert_eq!(steps.ok("jsonPatchConfigMap"), &json!({"level": "debug"}));
    assert_eq!(
        steps.ok("mergePatchConfigMap"),
        &json!({"format": "json", "level": "debug"})
    );
    // The informer (list, then watch from the list's version) saw each change once, in order.
    assert_eq!(
        steps.ok("informer"),
        &json!([
            r#"add:js-settings:{"level":"info"}"#,
            r#"update:js-settings:{"level":"debug"}"#,
            r#"update:js-settings:{"format":"json","level":"debug"}"#,
        ])
    );

    // The Watch saw the rollout: new pods running on both simulated nodes, old ones deleted.
    let rollout = steps.ok("watchRollout");
    assert_eq!(rollout["nodes"], json!(NODES), "{rollout}");
    for kind in ["ADDED", "MODIFIED", "DELETED"] {
        assert!(
            rollout["types"][kind].as_u64().is_some_and(|n| n > 0),
            "{rollout}"
        );
    }
    assert_eq!(
        steps.ok("daemonSetStatus"),
        &json!({"desiredNumberScheduled": 2, "updatedNumberScheduled": 2,
                "numberAvailable": 2, "observedGeneration": 2})
    );
    let pods = steps.ok("listPods").as_array().expect("pods");
    let mut on: Vec<&str> = pods.iter().filter_map(|p| p["node"].as_str()).collect();
    on.sort_unstable();
    assert_eq!(on, NODES, "{pods:?}");

    // Log reads what the API server writes for a simulated pod; exec is refused before the
    // WebSocket upgrade (a 400 naming the node as simulated), which the client reports.
    assert_eq!(steps.ok("log"), "pernode simulator: image busybox:1.37\n");
    let exec = steps.failed("exec");
    assert!(
        exec["message"].as_str().is_some_and(|m| m.contains("400")),
        "{exec}"
    );

    // Custom objects through CustomObjectsApi, as apiextensions serves them.
    assert_eq!(
        steps.ok("createCustomResourceDefinition"),
        "jswidgets.example.com"
    );
    assert_eq!(steps.ok("createCustomObject"), &json!({"size": 1}));
    assert_eq!(steps.ok("mergePatchCustomObject"), &json!({"size": 2}));
    let strategic = steps.failed("strategicPatchCustomObject");
    assert_eq!(strategic["code"], 415, "{strategic}");
    assert_eq!(
        strategic["body"]["message"],
        "the body of the request was in an unknown format - accepted media types include: \
         application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
    );
    let status = steps.failed("customObjectStatus");
    assert_eq!(status["code"], 404, "{status}");
    assert_eq!(
        status["body"]["message"],
        "jswidgets.example.com \"w1\" not found"
    );
    assert_eq!(steps.ok("listCustomObjects"), &json!([["w1", 2]]));
    assert_eq!(
        steps.ok("deleteCustomResourceDefinition"),
        "CustomResourceDefinition"
    );

    // No credentials, or a token that is not one: 401, for requests and watches alike.
    for step in ["noCredentials", "badToken", "noCredentialsWatch"] {
        assert_eq!(steps.failed(step)["code"], 401, "{step}: {}", steps.0[step]);
    }

    // It deleted what it created.
    assert_eq!(steps.ok("deleteDaemonSet"), "Status");
    assert_eq!(steps.failed("readDeletedDaemonSet")["code"], 404);
    assert_eq!(steps.ok("podsGone"), true);
    assert_eq!(steps.ok("deleteConfigMap"), "Status");
    assert_eq!(steps.ok("deleteNamespace"), "Namespace");
    assert_eq!(steps.ok("deleteNodes"), &json!(["Status", "Status"]));
    assert_eq!(cluster.ok(&["get", "nodes", "-o", "name"]), "");
    eventually(
        Duration::from_secs(30),
        "the script's namespace is gone",
        || {
            let run = cluster.kubectl(&["get", "namespace", "js-client"]);
            !run.ok && run.stderr.contains("NotFound")
        },
    );
}
