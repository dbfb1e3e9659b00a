//! `kubectl auth` against `pernode up`: `whoami` (SelfSubjectReview), `can-i`
//! (SelfSubjectAccessReview) and `can-i --list` (SelfSubjectRulesReview), as the admin and as a
//! user whose client certificate the cluster CA signed, and the 403 such a user gets.

mod support;

use support::Cluster;

/// A kubeconfig for jane (group `dev`), with a client certificate the cluster CA signed.
fn jane_kubeconfig(c: &Cluster) -> String {
    c.kubeconfig_with_certificate("jane.kubeconfig", "jane", "dev")
}

/// `kubectl auth can-i ...` with this kubeconfig: its stdout and exit code.
fn can_i(c: &Cluster, kubeconfig: &str, args: &[&str]) -> (String, Option<i32>) {
    let out = c
        .command()
        .args(["--kubeconfig", kubeconfig, "auth", "can-i"])
        .args(args)
        .output()
        .expect("run kubectl");
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        out.status.code(),
    )
}

const DS: &str = "apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: agent
        image: busybox
";

#[test]
fn kubectl_auth_answers_for_the_admin_and_a_viewer() {
    let c = Cluster::start("up", &["--nodes", "0"]);

    let whoami = c.ok(&["auth", "whoami"]);
    assert!(whoami.contains("system:admin"), "{whoami}");
    assert!(whoami.contains("system:masters"), "{whoami}");

    let jane = jane_kubeconfig(&c);
    let whoami = c.ok(&["--kubeconfig", &jane, "auth", "whoami"]);
    assert!(whoami.contains("jane"), "{whoami}");
    assert!(whoami.contains("system:authenticated"), "{whoami}");

    // Before any binding, jane may not list pods.
    assert_eq!(
        can_i(&c, &jane, &["list", "pods"]),
        ("no".to_string(), Some(1))
    );

    c.ok(&[
        "create",
        "clusterrolebinding",
        "jane-view",
        "--clusterrole=view",
        "--user=jane",
    ]);
    // `view` gets its rules from the aggregation controller: wait for them to reach jane.
    support::eventually(
        std::time::Duration::from_secs(20),
        "jane may list pods",
        || can_i(&c, &jane, &["list", "pods"]) == ("yes".to_string(), Some(0)),
    );
    assert_eq!(
        can_i(&c, &jane, &["create", "daemonsets"]),
        ("no".to_string(), Some(1))
    );

    let ds = c.write("ds.yaml", DS);
    let e = c.fails(&["--kubeconfig", &jane, "create", "-f", &ds]);
    assert!(
        e.contains(r#"daemonsets.apps is forbidden: User "jane" cannot create resource "daemonsets" in API group "apps" in the namespace "default""#),
        "{e}"
    );
    assert!(
        e.starts_with("Error from server (Forbidden): error when creating"),
        "{e}"
    );

    let list = c.ok(&["--kubeconfig", &jane, "auth", "can-i", "--list"]);
    assert!(
        list.lines().any(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            cols.first() == Some(&"pods") && l.contains("[get list watch]")
        }),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("selfsubjectaccessreviews.authorization.k8s.io")),
        "{list}"
    );

    // The admin may do anything.
    assert_eq!(
        can_i(
            &c,
            &c.kubeconfig().display().to_string(),
            &["create", "daemonsets"]
        ),
        ("yes".to_string(), Some(0))
    );
}

#[test]
fn kubectl_as_impersonates_whom_the_requester_may() {
    let c = Cluster::start("up", &["--nodes", "0"]);
    // The admin may impersonate anyone (cluster-admin has `impersonate` on everything).
    let whoami = c.ok(&["--as", "jane", "--as-group", "dev", "auth", "whoami"]);
    assert!(
        whoami.contains("jane") && whoami.contains("dev"),
        "{whoami}"
    );
    assert!(!whoami.contains("system:masters"), "{whoami}");
    let e = c.fails(&["--as", "jane", "get", "pods"]);
    assert!(
        e.contains(r#"Error from server (Forbidden): pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default""#),
        "{e}"
    );
    let (answer, code) = can_i(
        &c,
        &c.kubeconfig().display().to_string(),
        &[
            "create",
            "daemonsets",
            "--as",
            "system:serviceaccount:default:default",
        ],
    );
    assert_eq!((answer.as_str(), code), ("no", Some(1)));

    // jane may not impersonate until a role lets her, and then only whom it names.
    let jane = jane_kubeconfig(&c);
    let e = c.fails(&["--kubeconfig", &jane, "--as", "bob", "get", "pods"]);
    assert!(
        e.contains(r#"Error from server (Forbidden): users "bob" is forbidden: User "jane" cannot impersonate resource "users" in API group "" at the cluster scope"#),
        "{e}"
    );
    c.ok(&[
        "create",
        "clusterrole",
        "impersonate-bob",
        "--verb=impersonate",
        "--resource=users",
        "--resource-name=bob",
    ]);
    c.ok(&[
        "create",
        "clusterrolebinding",
        "jane-as-bob",
        "--clusterrole=impersonate-bob",
        "--user=jane",
    ]);
    let whoami = c.ok(&["--kubeconfig", &jane, "--as", "bob", "auth", "whoami"]);
    assert!(whoami.contains("bob"), "{whoami}");
    // (`auth whoami` prints any 403 as "not enabled or no permission": ask for pods.)
    let e = c.fails(&["--kubeconfig", &jane, "--as", "carol", "get", "pods"]);
    assert!(e.contains(r#"users "carol" is forbidden"#), "{e}");
    let e = c.fails(&[
        "--kubeconfig",
        &jane,
        "--as",
        "bob",
        "--as-group",
        "ops",
        "get",
        "pods",
    ]);
    assert!(
        e.contains(
            r#"groups "ops" is forbidden: User "jane" cannot impersonate resource "groups""#
        ),
        "{e}"
    );
}
