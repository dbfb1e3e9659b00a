//! Published CNI plugin bundles (tests/bundles, sources in SOURCES.md), which carry their own
//! CustomResourceDefinitions, applied unchanged with the real kubectl against `pernode up`
//! with simulated nodes: every CRD is Established and serves its custom objects, every other
//! object is created, the DaemonSets converge on every node, and `kubectl delete -f` reports
//! everything deleted and leaves nothing. The one exception is a kind pernode serves read-only
//! (Calico's Deployment): its create and delete are a 405 and nothing else fails.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use support::{Cluster, bundle, eventually, objects};

const NODES: usize = 3;

/// kubectl's line for an object it could not write because pernode serves the kind read-only.
fn refused(verb: &str, path: &str, resource: &str) -> String {
    format!(
        "Error from server (MethodNotAllowed): error when {verb} \"{path}\": the server does not allow this method on the requested resource ({} {resource})",
        if verb == "creating" { "post" } else { "delete" }
    )
}

/// Applies the bundle at `path` in one `kubectl apply -f` (as the project's README does),
/// checks each object was created except `read_only` (`(kind, name, resource)`: each must be
/// refused with a 405 and be the only error), every CRD Established, and every DaemonSet in
/// `namespace` ready on every node. Returns the CRD names.
fn apply_and_converge(
    c: &Cluster,
    path: &PathBuf,
    namespace: &str,
    read_only: &[(&str, &str, &str)],
) -> Vec<String> {
    let p = path.display().to_string();
    let expected = objects(path);
    assert!(!expected.is_empty(), "{p} holds objects");
    let run = c.kubectl(&["apply", "-f", &p]);
    assert_eq!(
        run.ok,
        read_only.is_empty(),
        "apply of {p}:\n{}\n{}\nserver log:\n{}",
        run.stdout,
        run.stderr,
        c.server_log()
    );
    for (kind, name) in &expected {
        if read_only.iter().any(|(k, n, _)| k == kind && n == name) {
            assert!(
                !run.stdout.contains(&format!("{kind}/{name}")),
                "{}",
                run.stdout
            );
        } else {
            assert!(
                run.stdout.contains(&format!("{kind}/{name} created")),
                "apply of {p} did not create {kind}/{name}:\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
    }
    let errors: Vec<&str> = run.stderr.lines().filter(|l| !l.is_empty()).collect();
    let wanted: Vec<String> = read_only
        .iter()
        .map(|(_, _, resource)| refused("creating", &p, resource))
        .collect();
    assert_eq!(
        errors, wanted,
        "apply of {p}: only the read-only kinds fail"
    );

    let crds: Vec<String> = expected
        .iter()
        .filter(|(k, _)| k == "customresourcedefinition.apiextensions.k8s.io")
        .map(|(_, n)| n.clone())
        .collect();
    assert!(!crds.is_empty(), "{p} carries CRDs");
    for crd in &crds {
        c.ok(&[
            "wait",
            "--for",
            "condition=Established",
            "--timeout",
            "60s",
            "crd",
            crd,
        ]);
    }

    for (_, ds) in expected.iter().filter(|(k, _)| k == "daemonset.apps") {
        eventually(
            Duration::from_secs(90),
            &format!("daemonset {namespace}/{ds} ready on every node"),
            || {
                c.kubectl(&[
                    "get",
                    "ds",
                    ds,
                    "-n",
                    namespace,
                    "-o",
                    "jsonpath={.status.desiredNumberScheduled}/{.status.numberReady}",
                ])
                .stdout
                    == format!("{NODES}/{NODES}")
            },
        );
    }
    crds
}

/// `kubectl delete -f` of the bundle: every object reported deleted except `read_only` (a
/// 405 each, the only errors), then the CRDs, their objects and the DaemonSets' pods gone.
fn delete_and_check_gone(
    c: &Cluster,
    path: &PathBuf,
    namespace: &str,
    read_only: &[(&str, &str, &str)],
    crds: &[String],
) {
    let p = path.display().to_string();
    let expected = objects(path);
    let run = c.kubectl(&["delete", "-f", &p]);
    assert_eq!(
        run.ok,
        read_only.is_empty(),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    for (kind, name) in &expected {
        if !read_only.iter().any(|(k, n, _)| k == kind && n == name) {
            assert!(
                run.stdout.contains(&format!("{kind} \"{name}\" deleted")),
                "delete of {p} did not report {kind} {name}:\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
    }
    let errors: Vec<&str> = run.stderr.lines().filter(|l| !l.is_empty()).collect();
    let wanted: Vec<String> = read_only
        .iter()
        .map(|(_, _, resource)| refused("deleting", &p, resource))
        .collect();
    assert_eq!(
        errors, wanted,
        "delete of {p}: only the read-only kinds fail"
    );

    for crd in crds {
        eventually(Duration::from_secs(60), &format!("crd {crd} gone"), || {
            let r = c.kubectl(&["get", "crd", crd]);
            !r.ok && r.stderr.contains("NotFound")
        });
    }
    for (_, ds) in expected.iter().filter(|(k, _)| k == "daemonset.apps") {
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
fn cni_bundles_with_their_crds_apply_converge_and_delete_unchanged() {
    let c = Cluster::start("up", &["--nodes", &NODES.to_string()]);

    // Multus: its README applies the one file; the CRD is in it.
    let multus = bundle("multus/multus-daemonset.yml");
    let crds = apply_and_converge(&c, &multus, "kube-system", &[]);
    assert_eq!(crds, ["network-attachment-definitions.k8s.cni.cncf.io"]);
    // The quick-start's NetworkAttachmentDefinition, by its short name.
    let nad = c.write(
        "nad.yaml",
        r#"apiVersion: "k8s.cni.cncf.io/v1"
kind: NetworkAttachmentDefinition
metadata:
  name: macvlan-conf
spec:
  config: '{ "cniVersion": "0.3.0", "type": "macvlan", "master": "eth0", "mode": "bridge" }'
"#,
    );
    let out = c.ok(&["apply", "-f", &nad]);
    assert!(
        out.contains("networkattachmentdefinition.k8s.cni.cncf.io/macvlan-conf created"),
        "{out}"
    );
    let config = c.ok(&[
        "get",
        "net-attach-def",
        "macvlan-conf",
        "-o",
        "jsonpath={.spec.config}",
    ]);
    assert!(config.contains("\"type\": \"macvlan\""), "{config}");
    // Deleting the bundle deletes the CRD, and with it the object.
    delete_and_check_gone(&c, &multus, "kube-system", &[], &crds);
    let r = c.kubectl(&["get", "networkattachmentdefinitions", "-A"]);
    assert!(!r.ok, "{}", r.stdout);

    // Calico: the manifest install applies calico.yaml in one go. Its
    // calico-kube-controllers Deployment is a kind pernode serves read-only.
    let calico = bundle("calico/calico.yaml");
    let read_only = [(
        "deployment.apps",
        "calico-kube-controllers",
        "deployments.apps",
    )];
    let crds = apply_and_converge(&c, &calico, "kube-system", &read_only);
    assert_eq!(crds.len(), 23, "{crds:?}");
    // Objects as Calico's docs write them, through every kind of schema the CRDs use
    // (defaults, int-or-string, enums, nested lists).
    let objs = c.write(
        "calico-objects.yaml",
        r#"apiVersion: crd.projectcalico.org/v1
kind: IPPool
metadata:
  name: default-ipv4-ippool
spec:
  cidr: 192.168.0.0/16
  blockSize: 26
  ipipMode: Always
  natOutgoing: true
  nodeSelector: all()
---
apiVersion: crd.projectcalico.org/v1
kind: GlobalNetworkPolicy
metadata:
  name: default.allow-ping
spec:
  selector: all()
  types: [Ingress]
  ingress:
  - action: Allow
    protocol: ICMP
    icmp:
      type: 8
---
apiVersion: crd.projectcalico.org/v1
kind: NetworkPolicy
metadata:
  name: allow-tcp-6379
  namespace: default
spec:
  selector: role == 'database'
  types: [Ingress, Egress]
  ingress:
  - action: Allow
    protocol: TCP
    source:
      selector: role == 'frontend'
    destination:
      ports: [6379, "http"]
  egress:
  - action: Allow
"#,
    );
    let out = c.ok(&["apply", "-f", &objs]);
    for o in [
        "ippool.crd.projectcalico.org/default-ipv4-ippool created",
        "globalnetworkpolicy.crd.projectcalico.org/default.allow-ping created",
        "networkpolicy.crd.projectcalico.org/allow-tcp-6379 created",
    ] {
        assert!(out.contains(o), "{out}");
    }
    // The schema's default filled in.
    assert_eq!(
        c.ok(&[
            "get",
            "ippool",
            "default-ipv4-ippool",
            "-o",
            "jsonpath={.spec.assignmentMode}"
        ]),
        "Automatic"
    );
    delete_and_check_gone(&c, &calico, "kube-system", &read_only, &crds);
    let r = c.kubectl(&["get", "ippools"]);
    assert!(!r.ok, "{}", r.stdout);
}

/// A CRD serving two versions with conversion `None`: an object written through one reads
/// through the other (get, list, watch) with only its `apiVersion` naming that version.
#[test]
fn an_object_written_through_one_served_version_reads_through_the_other() {
    let c = Cluster::start("up", &["--nodes", "1"]);
    let schema = "{openAPIV3Schema: {type: object, properties: {spec: {type: object, properties: {size: {type: integer}}}}}}";
    let crd = c.write(
        "crd.yaml",
        &format!(
            "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {{plural: widgets, kind: Widget}}
  versions:
  - {{name: v1, served: true, storage: true, schema: {schema}}}
  - {{name: v1beta1, served: true, storage: false, schema: {schema}}}
"
        ),
    );
    c.ok(&["apply", "-f", &crd]);
    c.ok(&[
        "wait",
        "--for",
        "condition=Established",
        "--timeout",
        "60s",
        "crd/widgets.example.com",
    ]);
    let w = c.write(
        "w.yaml",
        "apiVersion: example.com/v1beta1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3}\n",
    );
    c.ok(&["apply", "-f", &w]);
    for version in ["v1", "v1beta1"] {
        let path = format!("/apis/example.com/{version}/namespaces/default/widgets");
        let get = c.ok(&["get", "--raw", &format!("{path}/w")]);
        let want = format!("\"apiVersion\":\"example.com/{version}\"");
        assert!(get.starts_with(&format!("{{{want},")), "{get}");
        assert!(get.contains("\"spec\":{\"size\":3}"), "{get}");
        let list = c.ok(&["get", "--raw", &path]);
        // The list and its item in the version asked for (managedFields keep the version each
        // manager wrote in, as upstream's).
        let parsed: serde_json::Value = serde_json::from_str(&list).expect("the list is JSON");
        let api_version = format!("example.com/{version}");
        assert_eq!(parsed["apiVersion"], api_version.as_str(), "{list}");
        assert_eq!(
            parsed["items"][0]["apiVersion"],
            api_version.as_str(),
            "{list}"
        );
        let watch = c.ok(&["get", "--raw", &format!("{path}?watch=1&timeoutSeconds=1")]);
        assert!(
            watch.starts_with(&format!("{{\"type\":\"ADDED\",\"object\":{{{want},")),
            "{watch}"
        );
    }
    assert_eq!(
        c.ok(&[
            "get",
            "widgets.v1.example.com",
            "w",
            "-o",
            "jsonpath={.apiVersion} {.spec.size}"
        ]),
        "example.com/v1 3"
    );
}
