//! Published node-daemon bundles (tests/bundles, sources in SOURCES.md) applied unchanged
//! with the real kubectl against `pernode up` with simulated nodes: every object is created,
//! each DaemonSet converges on every node, `kubectl delete -f` reports every object deleted,
//! and the bundle's namespaces and pods end gone. These are the files users apply; nothing
//! here edits them.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::{Cluster, bundle, eventually, objects};

const NODES: usize = 3;

/// Applies `args` (a `-f`/`-k` and its path, plus options), checks every object was
/// created, every DaemonSet in `namespace` converged on every node, then deletes with the
/// same arguments and checks every object was reported deleted and nothing is left.
fn apply_converge_delete(c: &Cluster, path: &PathBuf, args: &[&str], namespace: &str) {
    let expected = objects(path);
    assert!(!expected.is_empty(), "{} holds objects", path.display());
    let mut apply = vec!["apply"];
    apply.extend_from_slice(args);
    let out = c.ok(&apply);
    for (kind, name) in &expected {
        assert!(
            out.contains(&format!("{kind}/{name} created")),
            "apply of {} did not create {kind}/{name}:\n{out}",
            path.display()
        );
    }
    let daemonsets: Vec<&String> = expected
        .iter()
        .filter(|(k, _)| k == "daemonset.apps")
        .map(|(_, n)| n)
        .collect();
    for ds in &daemonsets {
        eventually(
            Duration::from_secs(90),
            &format!("daemonset {namespace}/{ds} ready on every node"),
            || {
                let status = c
                    .kubectl(&[
                        "get",
                        "ds",
                        ds,
                        "-n",
                        namespace,
                        "-o",
                        "jsonpath={.status.desiredNumberScheduled}/{.status.numberReady}",
                    ])
                    .stdout;
                status == format!("{NODES}/{NODES}")
            },
        );
    }
    let mut delete = vec!["delete"];
    delete.extend_from_slice(args);
    let out = c.ok(&delete);
    for (kind, name) in &expected {
        assert!(
            out.contains(&format!("{kind} \"{name}\" deleted")),
            "delete of {} did not report {kind} {name}:\n{out}",
            path.display()
        );
    }
    for ds in &daemonsets {
        eventually(
            Duration::from_secs(60),
            &format!("the pods of {namespace}/{ds} gone"),
            || {
                let pods = c.kubectl(&["get", "pods", "-n", namespace, "-o", "name"]);
                pods.ok && !pods.stdout.contains(ds.as_str())
            },
        );
    }
}

#[test]
fn published_bundles_apply_converge_and_delete_unchanged() {
    let c = Cluster::start("up", &["--nodes", &NODES.to_string()]);

    // flannel creates its own namespace, which must end gone too.
    let flannel = bundle("flannel/kube-flannel.yml");
    let f = flannel.display().to_string();
    apply_converge_delete(&c, &flannel, &["-f", &f], "kube-flannel");
    eventually(
        Duration::from_secs(60),
        "namespace kube-flannel gone",
        || {
            let ns = c.kubectl(&["get", "ns", "kube-flannel"]);
            !ns.ok && ns.stderr.contains("NotFound")
        },
    );

    for (name, namespace) in [
        ("node-problem-detector", "kube-system"),
        ("nodelocaldns", "kube-system"),
        ("kube-router", "kube-system"),
    ] {
        let path = bundle(name);
        let p = path.display().to_string();
        apply_converge_delete(&c, &path, &["-f", &p], namespace);
    }

    // kube-prometheus: its setup step creates the `monitoring` namespace and the CRDs, and
    // users wait for them to be Established before applying the rest (its README).
    c.ok(&["create", "namespace", "monitoring"]);
    let crds = bundle("kube-prometheus-node-exporter/crds");
    let p = crds.display().to_string();
    let out = c.ok(&["apply", "-f", &p]);
    for crd in [
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ] {
        assert!(
            out.contains(&format!(
                "customresourcedefinition.apiextensions.k8s.io/{crd} created"
            )),
            "{out}"
        );
    }
    c.ok(&[
        "wait",
        "--for",
        "condition=Established",
        "--timeout",
        "60s",
        "crd",
        "--all",
    ]);
    let exporter = bundle("kube-prometheus-node-exporter");
    let p = exporter.display().to_string();
    apply_converge_delete(&c, &exporter, &["-f", &p], "monitoring");
    let out = c.ok(&["delete", "-f", &crds.display().to_string()]);
    assert!(
        out.contains("\"servicemonitors.monitoring.coreos.com\" deleted"),
        "{out}"
    );

    // fluent-bit's README has users create the namespace first.
    c.ok(&["create", "namespace", "logging"]);
    let fluent = bundle("fluent-bit");
    let p = fluent.display().to_string();
    apply_converge_delete(&c, &fluent, &["-f", &p], "logging");

    // aws-ebs-csi-driver publishes these files under a kustomization that sets the
    // namespace (and with it the ClusterRoleBinding's ServiceAccount namespace): applied as
    // its users apply it, with `-k` over a kustomization naming the unchanged files.
    let dir = c.dir.path().join("ebs");
    std::fs::create_dir_all(&dir).expect("kustomization dir");
    let ebs = bundle("aws-ebs-csi-driver");
    let mut resources = String::new();
    for file in [
        "clusterrole-csi-node.yaml",
        "clusterrolebinding-csi-node.yaml",
        "csidriver.yaml",
        "node.yaml",
        "poddisruptionbudget-controller.yaml",
        "serviceaccount-csi-node.yaml",
    ] {
        std::fs::copy(ebs.join(file), dir.join(file)).expect("copy bundle file");
        resources.push_str(&format!("- {file}\n"));
    }
    std::fs::write(
        dir.join("kustomization.yaml"),
        format!("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: kube-system\nresources:\n{resources}"),
    )
    .expect("kustomization");
    let d = dir.display().to_string();
    apply_converge_delete(&c, &ebs, &["-k", &d], "kube-system");
}
