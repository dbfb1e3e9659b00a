//! `pernode up --audit-log-path`: the real kubectl's requests land in the audit log as
//! kube-apiserver's, with the client certificate's user, the verb, the object, the code, the
//! client's address and agent; a request with a bad token is logged without a user.

mod support;

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use support::{Cluster, eventually};

/// The lines of the audit log at `path` (none while it does not exist).
fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// The first line `wanted` accepts, waiting up to 30 s for the writer.
fn line(path: &Path, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let mut found = None;
    eventually(Duration::from_secs(30), what, || {
        found = lines(path).into_iter().find(&wanted);
        found.is_some()
    });
    found.expect("found")
}

/// The API server's address, from the kubeconfig `pernode up` wrote.
fn server_url(c: &Cluster) -> String {
    let kubeconfig = std::fs::read_to_string(c.kubeconfig()).expect("kubeconfig");
    kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server:"))
        .expect("a server in the kubeconfig")
        .trim()
        .to_string()
}

#[test]
fn kubectl_requests_are_audited() {
    let logs = tempfile::tempdir().expect("temp dir");
    let log = logs.path().join("audit.log");
    let log_arg = log.display().to_string();
    let c = Cluster::start("up", &["--nodes", "0", "--audit-log-path", &log_arg]);

    c.ok(&["get", "namespace", "default"]);
    let get = line(&log, "kubectl's get of the default namespace", |l| {
        l["verb"] == "get"
            && l["objectRef"]["resource"] == "namespaces"
            && l["objectRef"]["name"] == "default"
            && l["userAgent"].as_str().unwrap_or("").starts_with("kubectl")
    });
    assert_eq!(get["kind"], "Event");
    assert_eq!(get["level"], "Metadata");
    assert_eq!(get["stage"], "ResponseComplete");
    assert_eq!(get["user"]["username"], "system:admin");
    assert_eq!(get["responseStatus"]["code"], 200);
    assert_eq!(get["sourceIPs"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(get["annotations"]["authorization.k8s.io/decision"], "allow");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).expect("log").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the audit log is owner-only");

    // No client certificate, a token nobody issued: a 401, logged without a user.
    let empty = c.write("empty-kubeconfig", "apiVersion: v1\nkind: Config\n");
    let run = c
        .command()
        .env("KUBECONFIG", &empty)
        .args([
            "--server",
            &server_url(&c),
            "--insecure-skip-tls-verify",
            "--token",
            "not-a-token",
            "get",
            "--raw",
            "/api/v1/namespaces/default/pods",
        ])
        .output()
        .expect("run kubectl");
    assert!(!run.status.success(), "a bad token is refused");
    let refused = line(&log, "the refused request", |l| {
        l["requestURI"] == "/api/v1/namespaces/default/pods" && l["responseStatus"]["code"] == 401
    });
    assert_eq!(refused["user"], serde_json::json!({}));
    assert_eq!(refused["verb"], "list");
    assert_eq!(refused["stage"], "ResponseStarted");
    assert_eq!(
        refused["responseStatus"]["message"],
        "Authentication failed, attempted: bearer"
    );
}
