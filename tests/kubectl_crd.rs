//! CustomResourceDefinitions driven by the real kubectl: a CRD and an object of it applied
//! from one file, printer columns in `kubectl get`, `kubectl explain`, schema validation
//! (422), pruning and strict field validation, the scale subresource, and `kubectl delete
//! crd` taking the objects with it.

mod support;

use std::time::Duration;

use support::{Cluster, eventually};

const CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: The widget's desired state.
            required: [size]
            properties:
              size: {type: integer, minimum: 1, maximum: 10, description: How big the widget is.}
              color: {type: string, default: red}
              replicas: {type: integer}
          status:
            type: object
            properties:
              replicas: {type: integer}
"#;

fn widget(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {{name: {name}, namespace: default}}\nspec: {spec}\n"
    )
}

#[test]
fn custom_resources_with_kubectl() {
    let cluster = Cluster::start("apiserver", &[]);
    let both = cluster.write(
        "both.yaml",
        &format!("{CRD}---\n{}", widget("gadget", "{size: 3}")),
    );

    // kubectl maps every object of a file before it applies the first, so an object whose
    // CRD is in the same file is refused on the first run, exactly as against Kubernetes,
    // and applies on the next; the CRD is established by the time its create returns.
    let first = cluster.kubectl(&["apply", "-f", &both]);
    assert!(!first.ok);
    assert!(
        first
            .stdout
            .contains("customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"),
        "{}",
        first.stdout
    );
    assert!(
        first
            .stderr
            .contains(r#"no matches for kind "Widget" in version "example.com/v1""#)
            && first.stderr.contains("ensure CRDs are installed first"),
        "{}",
        first.stderr
    );
    let second = cluster.ok(&["apply", "-f", &both]);
    assert!(second.contains("widget.example.com/gadget"), "{second}");

    let crd = cluster.ok(&[
        "get",
        "crd",
        "widgets.example.com",
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Established\")].status}",
    ]);
    assert_eq!(crd, "True");

    // Printer columns; the default was applied.
    let table = cluster.ok(&["get", "widgets"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["NAME", "SIZE", "COLOR"],
        "{table}"
    );
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["gadget", "3", "red"],
        "{table}"
    );
    assert!(
        cluster
            .ok(&["get", "wd", "gadget", "-o", "name"])
            .contains("widget.example.com/gadget")
    );

    // explain reads the published schema.
    let explain = cluster.ok(&["explain", "widgets.spec"]);
    assert!(explain.contains("How big the widget is."), "{explain}");
    assert!(
        explain.contains("size\t<integer> -required-") || explain.contains("size"),
        "{explain}"
    );

    // Schema validation: a 422 with upstream's message, nothing stored.
    let big = cluster.write("big.yaml", &widget("big", "{size: 20}"));
    let refused = cluster.fails(&["apply", "-f", &big]);
    assert!(
        refused.contains(r#"The Widget "big" is invalid: spec.size: Invalid value: 20: spec.size in body should be less than or equal to 10"#),
        "{refused}"
    );
    assert!(!cluster.kubectl(&["get", "widget", "big"]).ok);

    // Unknown fields: refused under kubectl's default strict validation, pruned without it.
    let extra = cluster.write("extra.yaml", &widget("extra", "{size: 2, bogus: 1}"));
    let strict = cluster.fails(&["apply", "-f", &extra]);
    assert!(
        strict.contains(r#"strict decoding error: unknown field "spec.bogus""#),
        "{strict}"
    );
    cluster.ok(&["apply", "--validate=false", "-f", &extra]);
    let spec = cluster.ok(&["get", "widget", "extra", "-o", "jsonpath={.spec}"]);
    assert_eq!(spec, r#"{"color":"red","size":2}"#);

    // Status and scale subresources.
    cluster.ok(&["scale", "widget", "gadget", "--replicas=4"]);
    assert_eq!(
        cluster.ok(&["get", "widget", "gadget", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );
    cluster.ok(&[
        "patch",
        "widget",
        "gadget",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":4},"spec":{"size":9}}"#,
    ]);
    assert_eq!(
        cluster.ok(&[
            "get",
            "widget",
            "gadget",
            "-o",
            "jsonpath={.status.replicas}/{.spec.size}"
        ]),
        "4/3"
    );

    // Deleting the CRD deletes its objects; a new CRD of the same name starts empty.
    cluster.ok(&["delete", "crd", "widgets.example.com"]);
    // (kubectl's discovery cache may still map `widgets`: then the server's 404 says it.)
    eventually(
        Duration::from_secs(20),
        "widgets are no longer served",
        || {
            let run = cluster.kubectl(&["get", "widgets"]);
            !run.ok
                && (run
                    .stderr
                    .contains("the server doesn't have a resource type \"widgets\"")
                    || run
                        .stderr
                        .contains("the server could not find the requested resource"))
        },
    );
    let crd_only = cluster.write("crd.yaml", CRD);
    cluster.ok(&["apply", "-f", &crd_only]);
    eventually(
        Duration::from_secs(20),
        "the new CRD is served, without objects",
        || {
            let run = cluster.kubectl(&["get", "widgets", "-A"]);
            run.ok && run.stderr.contains("No resources found")
        },
    );
}
