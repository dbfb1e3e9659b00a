//! A manifest mixing served and unserved kinds, driven by the real kubectl: every served
//! object is applied or created, and each unserved one fails alone with kubectl's "resource
//! mapping not found", as against Kubernetes.
//!
//! kubectl validates each object first. A kind missing from the v3 documents is validated on
//! the client against `/openapi/v2` (protobuf), after a look at the CRD list; either one
//! answering 404 used to fail validation and abort the rest of the file.

mod support;

use support::Cluster;

/// Relies on pernode serving neither kind: `example.com/v1` is made up, and core/v1
/// PodTemplate is not in the catalogue (nor likely to be: pernode has no use for it). If
/// either becomes served, pick another unserved kind.
fn manifest(ns: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
---
apiVersion: example.com/v1
kind: Widget
metadata:
  name: gadget
  namespace: {ns}
spec: {{size: 3}}
---
apiVersion: v1
kind: PodTemplate
metadata:
  name: tmpl
  namespace: {ns}
template:
  spec:
    containers: [{{name: c, image: busybox:1.36}}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
  namespace: {ns}
spec:
  selector:
    matchLabels: {{app: agent}}
  template:
    metadata:
      labels: {{app: agent}}
    spec:
      containers:
      - name: agent
        image: busybox:1.36
"#
    )
}

/// kubectl failed, reporting exactly the two unserved objects (and no validation error), in
/// the words kubectl 1.32+ uses against a Kubernetes server without those kinds.
fn assert_only_unserved_failed(run: &support::Run, ns: &str, file: &str) {
    assert!(!run.ok, "kubectl must exit non-zero:\n{}", run.stdout);
    let widget = format!(
        r#"resource mapping not found for name: "gadget" namespace: "{ns}" from "{file}": no matches for kind "Widget" in version "example.com/v1""#
    );
    let template = format!(
        r#"resource mapping not found for name: "tmpl" namespace: "{ns}" from "{file}": no matches for kind "PodTemplate" in version "v1""#
    );
    for expected in [&widget, &template] {
        assert!(
            run.stderr.contains(expected.as_str()),
            "missing {expected:?} in:\n{}",
            run.stderr
        );
    }
    assert_eq!(
        run.stderr.matches("resource mapping not found").count(),
        2,
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("ensure CRDs are installed first"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("error validating"), "{}", run.stderr);
}

fn assert_served_objects_exist(c: &Cluster, ns: &str) {
    assert_eq!(
        c.ok(&["get", "namespace", ns, "-o", "name"]).trim(),
        format!("namespace/{ns}")
    );
    assert_eq!(
        c.ok(&["get", "daemonset", "agent", "-n", ns, "-o", "name"])
            .trim(),
        "daemonset.apps/agent"
    );
}

#[test]
fn apply_applies_every_served_object_of_a_mixed_file() {
    let c = Cluster::start("apiserver", &[]);
    let file = c.write("mixed.yaml", &manifest("mixed"));

    let run = c.kubectl(&["apply", "-f", &file]);
    assert_only_unserved_failed(&run, "mixed", &file);
    assert!(
        run.stdout.contains("namespace/mixed created")
            && run.stdout.contains("daemonset.apps/agent created"),
        "{}",
        run.stdout
    );
    assert_served_objects_exist(&c, "mixed");

    // Strict validation (the default spelled out) takes the same path.
    let run = c.kubectl(&["apply", "--validate=strict", "-f", &file]);
    assert_only_unserved_failed(&run, "mixed", &file);
    assert!(
        run.stdout.contains("namespace/mixed unchanged")
            && run.stdout.contains("daemonset.apps/agent unchanged"),
        "{}",
        run.stdout
    );
}

#[test]
fn apply_strict_on_a_fresh_cluster_applies_every_served_object() {
    let c = Cluster::start("apiserver", &[]);
    let file = c.write("strict.yaml", &manifest("strict"));
    let run = c.kubectl(&["apply", "--validate=strict", "-f", &file]);
    assert_only_unserved_failed(&run, "strict", &file);
    assert!(
        run.stdout.contains("daemonset.apps/agent created"),
        "{}",
        run.stdout
    );
    assert_served_objects_exist(&c, "strict");
}

#[test]
fn create_creates_every_served_object_of_a_mixed_file() {
    let c = Cluster::start("apiserver", &[]);
    let file = c.write("created.yaml", &manifest("created"));
    let run = c.kubectl(&["create", "-f", &file]);
    assert_only_unserved_failed(&run, "created", &file);
    assert!(
        run.stdout.contains("namespace/created created")
            && run.stdout.contains("daemonset.apps/agent created"),
        "{}",
        run.stdout
    );
    assert_served_objects_exist(&c, "created");

    // The document kubectl read is there as JSON too, with the served kinds only.
    let v2: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "--raw", "/openapi/v2"])).expect("JSON");
    assert_eq!(v2["swagger"], "2.0");
    let definitions = v2["definitions"].as_object().cloned().unwrap_or_default();
    assert!(definitions.contains_key("io.k8s.api.apps.v1.DaemonSet"));
    assert!(!definitions.contains_key("io.k8s.api.core.v1.PodTemplate"));
}
