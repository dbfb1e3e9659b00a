//! The official Kubernetes Python client (`kubernetes`, pinned in
//! `tests/python/requirements.txt`) against `pernode up`, with the kubeconfig as pernode writes
//! it (HTTPS, the cluster CA, the admin's client certificate). `tests/python/client.py` loads it
//! with `config.load_kube_config()`, goes through the generated typed APIs, a `Watch`, a
//! server-side apply and a DaemonSet on simulated nodes, and prints each step's result as JSON,
//! checked here.
//!
//! Needs python3 with venv (`.ci/run` installs python3-venv); the client is installed into
//! `tests/python/.venv` with pip when the pinned version is not there yet, so the package index
//! must be reachable on a fresh clone.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use support::Cluster;
use support::client_script::{self, Steps};

/// How long the script may run: its own waits (the DaemonSet, 90 s) end well before.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(240);

/// The simulated nodes the script creates.
const NODES: [&str; 2] = ["py-node-1", "py-node-2"];

fn python_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

/// The client version `requirements.txt` pins.
fn pinned_client(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("requirements.txt"))
        .expect("tests/python/requirements.txt");
    text.lines()
        .find_map(|line| line.trim().strip_prefix("kubernetes=="))
        .expect("requirements.txt pins kubernetes==VERSION")
        .to_string()
}

/// The virtual environment's interpreter.
fn venv_python(dir: &Path) -> PathBuf {
    dir.join(".venv/bin/python")
}

/// The client version installed in the virtual environment, if any.
fn installed_client(dir: &Path) -> Option<String> {
    let out = Command::new(venv_python(dir))
        .args(["-c", "import kubernetes; print(kubernetes.__version__)"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Runs `program` with `args` in `dir`; fails the test with its output when it fails.
fn run(program: &Path, args: &[&str], dir: &Path, what: &str) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A virtual environment with the pinned client, unless there is one already.
fn install_client(dir: &Path) {
    let pinned = pinned_client(dir);
    if installed_client(dir).as_deref() == Some(pinned.as_str()) {
        return;
    }
    run(
        Path::new("python3"),
        &["-m", "venv", ".venv"],
        dir,
        "python3 -m venv (install python3 and python3-venv; .ci/run does)",
    );
    run(
        &venv_python(dir),
        &[
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            "requirements.txt",
        ],
        dir,
        "pip install -r requirements.txt (is the package index reachable?)",
    );
    assert_eq!(installed_client(dir), Some(pinned), "pip installed the pin");
}

/// Runs `client.py` against the cluster; its JSON results.
fn run_script(cluster: &Cluster, dir: &Path) -> Value {
    client_script::run(
        cluster,
        &venv_python(dir),
        "client.py",
        dir,
        &[("PY_NODES", NODES.join(","))],
        SCRIPT_DEADLINE,
    )
}

#[test]
fn the_official_python_client_works_with_the_kubeconfig_as_written() {
    let dir = python_dir();
    install_client(&dir);
    let cluster = Cluster::start("up", &["--nodes", "0"]);
    let steps = Steps(run_script(&cluster, &dir));

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

    // The watch from the create's resourceVersion saw the merge patch.
    assert_eq!(
        steps.ok("watchPatch"),
        &json!({"type": "MODIFIED", "data": {"level": "debug"}})
    );

    // Server-side apply: the applied data, and the manager recorded beside the earlier writers.
    let applied = steps.ok("serverSideApply");
    assert_eq!(applied["data"], json!({"level": "warn", "format": "json"}));
    let managers = applied["managers"].as_array().expect("managers");
    assert!(
        managers.contains(&json!(["py-client", "Apply"])),
        "{applied}"
    );

    // The DaemonSet, defaulted, and available on both simulated nodes.
    assert_eq!(
        steps.ok("createDaemonSet"),
        &json!({"generation": 1, "updateStrategy": "RollingUpdate"})
    );
    assert_eq!(
        steps.ok("availableEverywhere"),
        &json!({"desired": 2, "available": 2})
    );
    assert_eq!(steps.ok("podsOnNodes"), &json!(NODES));

    // Deleted, then a 404 Status.
    assert_eq!(steps.ok("deleteConfigMap"), "Success");
    let gone = steps.failed("readDeletedConfigMap");
    assert_eq!(gone["code"], 404, "{gone}");
    assert_eq!(gone["body"]["reason"], "NotFound");
}
