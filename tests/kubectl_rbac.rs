//! RBAC objects driven by the real kubectl against `pernode up`: the bootstrap roles and
//! bindings are there from the start, the aggregation controller fills `admin`/`edit`/`view`
//! (and picks up a bundle's `aggregate-to-view` role), and invalid objects are refused with
//! upstream's messages.

mod support;

use std::time::Duration;

use support::{Cluster, eventually};

const BUNDLE_VIEWER: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: widgets-viewer
  labels:
    rbac.authorization.k8s.io/aggregate-to-view: "true"
rules:
- apiGroups: [example.com]
  resources: [widgets]
  verbs: [get, list, watch]
"#;

const BINDING: &str = r#"apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: read-pods
  namespace: default
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: view
subjects:
- kind: ServiceAccount
  name: reader
"#;

/// The resources `view`'s rules name, one per line (`kubectl get -o jsonpath`).
fn view_resources(c: &Cluster) -> String {
    c.ok(&[
        "get",
        "clusterrole",
        "view",
        "-o",
        "jsonpath={range .rules[*]}{.resources}{\"\\n\"}{end}",
    ])
}

#[test]
fn bootstrap_roles_aggregation_and_validation() {
    let c = Cluster::start("up", &["--nodes", "1"]);

    // The bootstrap policy is there at start, labelled and annotated as upstream's.
    let roles = c.ok(&["get", "clusterroles", "-o", "name"]);
    for name in [
        "cluster-admin",
        "admin",
        "edit",
        "view",
        "system:aggregate-to-view",
        "system:discovery",
        "system:basic-user",
        "system:public-info-viewer",
        "system:node",
        "system:kube-scheduler",
        "system:controller:daemon-set-controller",
        "system:controller:clusterrole-aggregation-controller",
    ] {
        assert!(
            roles.contains(&format!("clusterrole.rbac.authorization.k8s.io/{name}\n")),
            "{name} missing from:\n{roles}"
        );
    }
    let table = c.ok(&["get", "clusterroles"]);
    assert!(table.starts_with("NAME"), "{table}");
    let bindings = c.ok(&[
        "get",
        "clusterrolebindings",
        "-l",
        "kubernetes.io/bootstrapping=rbac-defaults",
        "-o",
        "name",
    ]);
    assert!(
        bindings.contains("clusterrolebinding.rbac.authorization.k8s.io/cluster-admin\n"),
        "{bindings}"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "clusterrolebinding",
            "cluster-admin",
            "-o",
            "jsonpath={.subjects[0].name}",
        ]),
        "system:masters"
    );
    assert_eq!(
        c.ok(&[
            "get",
            "clusterrole",
            "view",
            "-o",
            "jsonpath={.metadata.annotations.rbac\\.authorization\\.kubernetes\\.io/autoupdate}",
        ]),
        "true"
    );

    // The aggregation controller gives `view` the rules of system:aggregate-to-view, and
    // `edit`/`admin` (which aggregate `view`) the same and more.
    eventually(
        Duration::from_secs(30),
        "view holds the rules of system:aggregate-to-view",
        || {
            let r = view_resources(&c);
            r.contains("\"controllerrevisions\"") && r.contains("\"pods\"")
        },
    );
    let aggregate_to_view = c.ok(&[
        "get",
        "clusterrole",
        "system:aggregate-to-view",
        "-o",
        "jsonpath={range .rules[*]}{.resources}{\"\\n\"}{end}",
    ]);
    // ... and those of system:aggregated-metrics-reader (metrics.k8s.io), after them by name.
    let metrics_reader = c.ok(&[
        "get",
        "clusterrole",
        "system:aggregated-metrics-reader",
        "-o",
        "jsonpath={range .rules[*]}{.resources}{\"\\n\"}{end}",
    ]);
    assert_eq!(metrics_reader, "[\"nodes\",\"pods\"]\n");
    assert_eq!(view_resources(&c), aggregate_to_view + &metrics_reader);
    eventually(
        Duration::from_secs(30),
        "admin aggregates edit, which aggregates view",
        || {
            c.ok(&["get", "clusterrole", "admin", "-o", "json"])
                .contains("\"controllerrevisions\"")
        },
    );

    // A bundle's ClusterRole labelled aggregate-to-view adds its rules to view.
    c.ok_stdin(&["apply", "-f", "-"], BUNDLE_VIEWER);
    eventually(
        Duration::from_secs(30),
        "view picks up the bundle's widgets rule",
        || view_resources(&c).contains("\"widgets\""),
    );
    // Removing the label takes them out again.
    c.ok(&[
        "label",
        "clusterrole",
        "widgets-viewer",
        "rbac.authorization.k8s.io/aggregate-to-view-",
    ]);
    eventually(
        Duration::from_secs(30),
        "view drops the widgets rule once the role no longer aggregates",
        || !view_resources(&c).contains("\"widgets\""),
    );

    // An invalid RoleBinding is refused with upstream's 422 message and stores nothing.
    let bad = BINDING.replace("kind: ClusterRole\n", "kind: Foo\n");
    let out = c.kubectl_stdin(&["create", "-f", "-", "-v=6"], &bad);
    assert!(!out.ok, "{}", out.stdout);
    assert!(
        out.stderr.contains("422 Unprocessable Entity"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(
            "The RoleBinding \"read-pods\" is invalid: roleRef.kind: Unsupported value: \"Foo\": supported values: \"Role\", \"ClusterRole\""
        ),
        "{}",
        out.stderr
    );
    assert_eq!(c.ok(&["get", "rolebindings", "-o", "name"]), "");

    // A valid one is created (defaulted), and its roleRef cannot change.
    c.ok_stdin(&["create", "-f", "-"], BINDING);
    let out = c.kubectl(&[
        "patch",
        "rolebinding",
        "read-pods",
        "--type=merge",
        "-p",
        r#"{"roleRef":{"name":"edit"}}"#,
    ]);
    assert!(!out.ok, "{}", out.stdout);
    assert!(
        out.stderr.contains(
            "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(
        c.ok(&[
            "get",
            "rolebinding",
            "read-pods",
            "-o",
            "jsonpath={.roleRef.name}",
        ]),
        "view"
    );
    // A cluster role's rule must name an api group.
    let out = c.kubectl_stdin(
        &["create", "-f", "-"],
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: no-group}\nrules: [{resources: [pods], verbs: [get]}]\n",
    );
    assert!(
        out.stderr.contains(
            "rules[0].apiGroups: Required value: resource rules must supply at least one api group"
        ),
        "{}",
        out.stderr
    );
}
