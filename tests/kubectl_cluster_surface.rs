//! The cluster-wide kubectl commands a new user runs first, against `pernode up`:
//! `cluster-info`, `api-resources`, `get all`, and `apply --prune -l` with kubectl's default
//! allowlist (which lists kinds pernode serves read-only, see `kinds::read_only`).

mod support;

use support::Cluster;

#[test]
fn cluster_info_api_resources_get_all_and_prune() {
    let c = Cluster::start("up", &["--nodes", "1"]);

    let info = c.ok(&["cluster-info"]);
    assert!(
        info.contains("Kubernetes control plane is running at https://127.0.0.1:"),
        "{info}"
    );

    let resources = c.ok(&["api-resources", "-o", "name"]);
    for name in [
        "configmaps",
        "secrets",
        "serviceaccounts",
        "services",
        "endpoints",
        "clusterroles.rbac.authorization.k8s.io",
        "priorityclasses.scheduling.k8s.io",
        "poddisruptionbudgets.policy",
        "customresourcedefinitions.apiextensions.k8s.io",
        "deployments.apps",
        "jobs.batch",
    ] {
        assert!(
            resources.lines().any(|l| l == name),
            "api-resources lacks {name}:\n{resources}"
        );
    }

    let all = c.ok(&["get", "all", "-n", "default"]);
    assert!(all.contains("service/kubernetes"), "{all}");
    assert!(all.contains("10.96.0.1"), "{all}");

    // Prune with the default allowlist: the labelled ConfigMap left out of the second apply
    // is pruned; nothing else is touched.
    let two = c.write(
        "two.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default, labels: {set: p}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: default, labels: {set: p}}\n",
    );
    let out = c.ok(&["apply", "--prune", "-l", "set=p", "-f", &two]);
    assert!(
        out.contains("configmap/a created") && out.contains("configmap/b created"),
        "{out}"
    );
    let one = c.write(
        "one.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: default, labels: {set: p}}\n",
    );
    let out = c.ok(&["apply", "--prune", "-l", "set=p", "-f", &one]);
    assert!(out.contains("configmap/b pruned"), "{out}");
    let left = c.ok(&["get", "cm", "-l", "set=p", "-o", "name"]);
    assert_eq!(left.trim(), "configmap/a");

    // The read-only kinds refuse writes with a 405 and store nothing.
    let e = c.fails(&["create", "deployment", "web", "--image", "busybox"]);
    assert!(
        e.contains("the server does not allow this method on the requested resource (post deployments.apps)"),
        "{e}"
    );
    let none = c.kubectl(&["get", "deployments", "-A", "-o", "name"]);
    assert!(none.ok && none.stdout.trim().is_empty(), "{}", none.stdout);
}
