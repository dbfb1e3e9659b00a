//! The bootstrap RBAC policy: the ClusterRoles and ClusterRoleBindings every cluster starts
//! with (upstream's `plugin/pkg/auth/authorizer/rbac/bootstrappolicy`, `policy.go` and
//! `controller_policy.go`), and [`ensure`], which the server runs at startup as upstream's
//! `rbac/bootstrap-roles` post-start hook (`EnsureRBACPolicy`) does.
//!
//! Kept to the roles a DaemonSet control plane has a use for: `cluster-admin`, the user-facing
//! `admin`/`edit`/`view` (aggregated from the `system:aggregate-to-*` roles, as upstream),
//! discovery, basic-user and monitoring (`/metrics`) access, the fleet page's files (`pernode:ui`, [`crate::ui`]), the node, scheduler and controller-manager roles, the
//! `system:controller:*` roles (bound to their service accounts in `kube-system`) of the
//! controllers pernode runs, and the roles and kubeadm's bindings of joining nodes through
//! certificate signing requests ([`certificates`]). Every object is labelled `kubernetes.io/bootstrapping:
//! rbac-defaults` and annotated `rbac.authorization.kubernetes.io/autoupdate: "true"`.
//!
//! [`ensure`] creates what is missing and, for an existing object whose autoupdate annotation
//! is not `"false"`, adds back what it lacks (labels, annotations, rules not covered by its
//! rules, aggregation selectors, subjects) without removing anything, as upstream's
//! reconciliation with `RemoveExtraPermissions`/`RemoveExtraSubjects` off. It never deletes; a
//! binding whose roleRef differs (upstream recreates it) is left as it is.

mod certificates;

use std::collections::BTreeMap;

pub use certificates::{
    DEFAULT_NODE_TOKEN_GROUP, NODE_BOOTSTRAPPER, NODE_CLIENT, SELF_NODE_CLIENT,
};
use k8s_openapi::api::rbac::v1::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef,
    Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use pernode_resources::ResourceInfo;
use pernode_store::{Op, Store, StoreError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;
use crate::params::FieldValidation;
use crate::registry::{self, Operation};

/// The label on every bootstrap object.
pub const BOOTSTRAP_LABEL: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");
/// `rbacv1.AutoUpdateAnnotationKey`: `"false"` keeps [`ensure`] from changing the object.
pub const AUTO_UPDATE_ANNOTATION: &str = "rbac.authorization.kubernetes.io/autoupdate";
/// The label that aggregates a ClusterRole into `admin`.
pub const AGGREGATE_TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
/// The label that aggregates a ClusterRole into `edit`.
pub const AGGREGATE_TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
/// The label that aggregates a ClusterRole into `view`.
pub const AGGREGATE_TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

const WRITE: &[&str] = &["create", "update", "patch", "delete", "deletecollection"];
const READ_WRITE: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];
const READ: &[&str] = &["get", "list", "watch"];

const LEGACY: &str = "";
const APPS: &str = "apps";
const AUTHENTICATION: &str = "authentication.k8s.io";
const AUTHORIZATION: &str = "authorization.k8s.io";
const AUTOSCALING: &str = "autoscaling";
const BATCH: &str = "batch";
const COORDINATION: &str = "coordination.k8s.io";
const DISCOVERY: &str = "discovery.k8s.io";
const EVENTS: &str = "events.k8s.io";
const EXTENSIONS: &str = "extensions";
const NETWORKING: &str = "networking.k8s.io";
const POLICY: &str = "policy";
const STORAGE: &str = "storage.k8s.io";

/// `user.MonitoringGroup`: the group bound to the `system:monitoring` role (`/metrics`).
pub const MONITORING_GROUP: &str = "system:monitoring";

/// The namespace of the controllers' service accounts.
const CONTROLLER_NAMESPACE: &str = "kube-system";

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v = strings(v);
    v.sort();
    v
}

/// `rbacv1helpers.NewRule(verbs...).Groups(...).Resources(...).RuleOrDie()`: the builder sorts
/// each list.
fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: sorted(verbs),
        api_groups: Some(sorted(groups)),
        resources: Some(sorted(resources)),
        ..Default::default()
    }
}

/// A resource rule limited to `names` (`.Names(...)`).
fn named_rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
    PolicyRule {
        resource_names: Some(sorted(names)),
        ..rule(verbs, groups, resources)
    }
}

/// A non-resource rule (`.URLs(...)`).
fn url_rule(verbs: &[&str], urls: &[&str]) -> PolicyRule {
    PolicyRule {
        verbs: sorted(verbs),
        non_resource_urls: Some(sorted(urls)),
        ..Default::default()
    }
}

/// `eventsRule()`: create, update and patch events of both event groups.
fn events_rule() -> PolicyRule {
    rule(
        &["create", "update", "patch"],
        &[LEGACY, EVENTS],
        &["events"],
    )
}

fn role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        rules: Some(rules),
        aggregation_rule: None,
    }
}

/// A role whose rules the aggregation controller fills from the roles labelled `selects`,
/// itself labelled `labels` (so that `edit` aggregates into `admin`, `view` into `edit`).
fn aggregated(name: &str, selects: &str, labels: &[&str]) -> ClusterRole {
    ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|l| (l.to_string(), "true".into()))
                    .collect(),
            ),
            ..Default::default()
        },
        rules: None,
        aggregation_rule: Some(AggregationRule {
            cluster_role_selectors: Some(vec![LabelSelector {
                match_labels: Some([(selects.to_string(), "true".to_string())].into()),
                match_expressions: None,
            }]),
        }),
    }
}

/// A role aggregated into the role that selects `label`.
fn aggregate_to(name: &str, label: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    let mut r = role(name, rules);
    r.metadata.labels = Some([(label.to_string(), "true".to_string())].into());
    r
}

/// `system:aggregated-metrics-reader`, as metrics-server installs it: reading
/// `metrics.k8s.io` (served built in, see `node_proxy::resource_metrics`), aggregated into
/// `view`, `edit` and `admin`.
fn metrics_reader() -> ClusterRole {
    let mut r = role(
        "system:aggregated-metrics-reader",
        vec![rule(
            &["get", "list", "watch"],
            &["metrics.k8s.io"],
            &["pods", "nodes"],
        )],
    );
    r.metadata.labels = Some(
        [AGGREGATE_TO_VIEW, AGGREGATE_TO_EDIT, AGGREGATE_TO_ADMIN]
            .into_iter()
            .map(|l| (l.to_string(), "true".to_string()))
            .collect(),
    );
    r
}

/// The label and annotation of bootstrap objects, added to what `meta` has.
fn add_default_metadata(meta: &mut ObjectMeta) {
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .insert(BOOTSTRAP_LABEL.0.into(), BOOTSTRAP_LABEL.1.into());
    meta.annotations
        .get_or_insert_with(BTreeMap::new)
        .insert(AUTO_UPDATE_ANNOTATION.into(), "true".into());
}

/// pernode's fleet simulator: the kubelet of every simulated node, under one identity (not a
/// node's, so neither the Node authorizer nor NodeRestriction applies to it).
pub const SIMULATOR: &str = "pernode:simulator";

/// The ClusterRole (and its binding) that lets everyone load the fleet page's files.
pub const UI_ROLE: &str = "pernode:ui";

/// What the simulator does for its nodes: what a node may, for every node, plus listing the
/// leases it renews.
fn simulator_rules() -> Vec<PolicyRule> {
    let mut rules = node_rules();
    rules.push(rule(&["list", "watch"], &[COORDINATION], &["leases"]));
    rules
}

/// `NodeRules()`: what a kubelet needs, the `system:node` role's rules. The Node authorizer
/// holds the same rules ([`pernode_auth::node::NODE_RULES`]) and allows them to nodes itself;
/// upstream binds this role to no one (its binding has no subjects).
fn node_rules() -> Vec<PolicyRule> {
    pernode_auth::node::NODE_RULES
        .iter()
        .map(|r| rule(r.verbs, r.api_groups, r.resources))
        .collect()
}

/// `clusterRoles()`, the part of it pernode keeps.
fn cluster_roles() -> Vec<ClusterRole> {
    vec![
        // The "root" role, which can do anything.
        role(
            "cluster-admin",
            vec![rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])],
        ),
        // Enough to tell whether the server is ready and to discover API versions.
        role(
            "system:discovery",
            vec![url_rule(
                &["get"],
                &[
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/version",
                    "/version/",
                    "/openapi",
                    "/openapi/*",
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                ],
            )],
        ),
        // What a "normal" user needs to learn about themselves.
        role(
            "system:basic-user",
            vec![
                rule(
                    &["create"],
                    &[AUTHORIZATION],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(&["create"], &[AUTHENTICATION], &["selfsubjectreviews"]),
            ],
        ),
        // Insensitive cluster information, for anyone.
        role(
            "system:public-info-viewer",
            vec![url_rule(
                &["get"],
                &["/livez", "/readyz", "/healthz", "/version", "/version/"],
            )],
        ),
        // The fleet page's files (no data: the page reads the API as its viewer), for
        // anyone, so the token login form loads before there is a token ([`crate::ui`]).
        role(UI_ROLE, vec![url_rule(&["get"], &["/ui", "/ui/*"])]),
        // Full access to the monitoring endpoints.
        role(
            "system:monitoring",
            vec![url_rule(
                &["get"],
                &[
                    "/metrics",
                    "/metrics/slis",
                    "/livez",
                    "/readyz",
                    "/healthz",
                    "/livez/*",
                    "/readyz/*",
                    "/healthz/*",
                ],
            )],
        ),
        aggregated("admin", AGGREGATE_TO_ADMIN, &[]),
        aggregated("edit", AGGREGATE_TO_EDIT, &[AGGREGATE_TO_ADMIN]),
        aggregated("view", AGGREGATE_TO_VIEW, &[AGGREGATE_TO_EDIT]),
        aggregate_to(
            "system:aggregate-to-admin",
            AGGREGATE_TO_ADMIN,
            vec![
                rule(
                    &["create"],
                    &[AUTHORIZATION],
                    &["localsubjectaccessreviews"],
                ),
                rule(READ_WRITE, &[RBAC_GROUP], &["roles", "rolebindings"]),
            ],
        ),
        aggregate_to("system:aggregate-to-edit", AGGREGATE_TO_EDIT, edit_rules()),
        aggregate_to("system:aggregate-to-view", AGGREGATE_TO_VIEW, view_rules()),
        metrics_reader(),
        role("system:node", node_rules()),
        // Full access to the kubelet API.
        role(
            "system:kubelet-api-admin",
            vec![
                rule(READ, &[LEGACY], &["nodes"]),
                rule(&["proxy"], &[LEGACY], &["nodes"]),
                rule(
                    &["*"],
                    &[LEGACY],
                    &[
                        "nodes/proxy",
                        "nodes/metrics",
                        "nodes/spec",
                        "nodes/stats",
                        "nodes/log",
                    ],
                ),
            ],
        ),
        role("system:kube-scheduler", scheduler_rules()),
        role(SIMULATOR, simulator_rules()),
        role(
            "system:kube-controller-manager",
            vec![
                events_rule(),
                rule(&["create"], &[COORDINATION], &["leases"]),
                named_rule(
                    &["get", "update"],
                    &[COORDINATION],
                    &["leases"],
                    &["kube-controller-manager"],
                ),
                rule(&["create"], &[LEGACY], &["secrets", "serviceaccounts"]),
                rule(&["delete"], &[LEGACY], &["secrets"]),
                rule(
                    &["get"],
                    &[LEGACY],
                    &["namespaces", "secrets", "serviceaccounts", "configmaps"],
                ),
                rule(&["update"], &[LEGACY], &["secrets", "serviceaccounts"]),
                rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
                rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
                rule(&["list", "watch"], &["*"], &["*"]),
                rule(&["create"], &[LEGACY], &["serviceaccounts/token"]),
            ],
        ),
    ]
    .into_iter()
    .chain(certificates::cluster_roles())
    .collect()
}

/// `system:aggregate-to-edit`: write access to user workloads, read of escalating resources.
fn edit_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            &[LEGACY],
            &[
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
                "secrets",
                "services/proxy",
            ],
        ),
        rule(&["impersonate"], &[LEGACY], &["serviceaccounts"]),
        rule(
            WRITE,
            &[LEGACY],
            &[
                "pods",
                "pods/attach",
                "pods/proxy",
                "pods/exec",
                "pods/portforward",
            ],
        ),
        rule(&["create"], &[LEGACY], &["pods/eviction"]),
        rule(
            WRITE,
            &[LEGACY],
            &[
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/proxy",
                "persistentvolumeclaims",
                "configmaps",
                "secrets",
                "events",
            ],
        ),
        rule(&["create"], &[LEGACY], &["serviceaccounts/token"]),
        rule(
            WRITE,
            &[APPS],
            &[
                "statefulsets",
                "statefulsets/scale",
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "replicasets",
                "replicasets/scale",
            ],
        ),
        rule(WRITE, &[AUTOSCALING], &["horizontalpodautoscalers"]),
        rule(WRITE, &[BATCH], &["jobs", "cronjobs"]),
        rule(
            WRITE,
            &[EXTENSIONS],
            &[
                "daemonsets",
                "deployments",
                "deployments/scale",
                "deployments/rollback",
                "ingresses",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(WRITE, &[POLICY], &["poddisruptionbudgets"]),
        rule(WRITE, &[NETWORKING], &["networkpolicies", "ingresses"]),
        rule(READ_WRITE, &[COORDINATION], &["leases"]),
    ]
}

/// `system:aggregate-to-view`: read access to non-escalating namespaced resources.
fn view_rules() -> Vec<PolicyRule> {
    vec![
        rule(
            READ,
            &[LEGACY],
            &[
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "configmaps",
            ],
        ),
        rule(
            READ,
            &[LEGACY],
            &[
                "limitranges",
                "resourcequotas",
                "bindings",
                "events",
                "pods/status",
                "resourcequotas/status",
                "namespaces/status",
                "replicationcontrollers/status",
                "pods/log",
            ],
        ),
        rule(READ, &[LEGACY], &["namespaces"]),
        rule(READ, &[DISCOVERY], &["endpointslices"]),
        rule(
            READ,
            &[APPS],
            &[
                "controllerrevisions",
                "statefulsets",
                "statefulsets/status",
                "statefulsets/scale",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/status",
                "deployments/scale",
                "replicasets",
                "replicasets/status",
                "replicasets/scale",
            ],
        ),
        rule(
            READ,
            &[AUTOSCALING],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            READ,
            &[BATCH],
            &["jobs", "cronjobs", "cronjobs/status", "jobs/status"],
        ),
        rule(
            READ,
            &[EXTENSIONS],
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
                "networkpolicies",
            ],
        ),
        rule(
            READ,
            &[POLICY],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            &[NETWORKING],
            &["ingresses", "ingresses/status", "networkpolicies"],
        ),
    ]
}

/// `system:kube-scheduler`.
fn scheduler_rules() -> Vec<PolicyRule> {
    vec![
        events_rule(),
        rule(&["create"], &[COORDINATION], &["leases"]),
        named_rule(
            &["get", "update"],
            &[COORDINATION],
            &["leases"],
            &["kube-scheduler"],
        ),
        rule(READ, &[LEGACY], &["nodes"]),
        rule(&["get", "list", "watch", "delete"], &[LEGACY], &["pods"]),
        rule(&["create"], &[LEGACY], &["pods/binding", "bindings"]),
        rule(&["patch", "update"], &[LEGACY], &["pods/status"]),
        rule(READ, &[LEGACY], &["replicationcontrollers", "services"]),
        rule(READ, &[APPS, EXTENSIONS], &["replicasets"]),
        rule(READ, &[APPS], &["statefulsets"]),
        rule(READ, &[POLICY], &["poddisruptionbudgets"]),
        rule(
            READ,
            &[LEGACY],
            &["persistentvolumeclaims", "persistentvolumes"],
        ),
        rule(&["create"], &[AUTHENTICATION], &["tokenreviews"]),
        rule(&["create"], &[AUTHORIZATION], &["subjectaccessreviews"]),
        rule(READ, &[STORAGE], &["csinodes"]),
        rule(READ, &[LEGACY], &["namespaces"]),
        rule(READ, &[STORAGE], &["csidrivers"]),
        rule(READ, &[STORAGE], &["csistoragecapacities"]),
    ]
}

/// The controllers pernode runs, by their upstream service-account names, and their rules
/// (`controller_policy.go`'s `buildControllerRoles`). pernode's in-process controllers watch
/// under their own identity, where kube-controller-manager's shared informers watch as
/// `system:kube-controller-manager`: the rules marked `pernode:` add the list/watch of what
/// they watch.
fn controller_roles() -> Vec<(&'static str, Vec<PolicyRule>)> {
    vec![
        ("certificate-controller", certificates::controller_rules()),
        (
            "clusterrole-aggregation-controller",
            vec![rule(
                &["escalate", "get", "list", "watch", "update", "patch"],
                &[RBAC_GROUP],
                &["clusterroles"],
            )],
        ),
        (
            "daemon-set-controller",
            vec![
                rule(READ, &[EXTENSIONS, APPS], &["daemonsets"]),
                // pernode's health gate records a trip (an annotation) and rolls back (the
                // template) on the DaemonSet itself; upstream's controller writes only status.
                rule(&["patch"], &[APPS], &["daemonsets"]),
                rule(&["update"], &[EXTENSIONS, APPS], &["daemonsets/status"]),
                rule(&["update"], &[EXTENSIONS, APPS], &["daemonsets/finalizers"]),
                rule(&["list", "watch"], &[LEGACY], &["nodes"]),
                rule(
                    &["list", "watch", "create", "delete", "patch"],
                    &[LEGACY],
                    &["pods"],
                ),
                rule(&["create"], &[LEGACY], &["pods/binding"]),
                rule(
                    &[
                        "get", "list", "watch", "create", "delete", "update", "patch",
                    ],
                    &[APPS],
                    &["controllerrevisions"],
                ),
                events_rule(),
            ],
        ),
        (
            "disruption-controller",
            vec![
                rule(READ, &[EXTENSIONS, APPS], &["deployments"]),
                rule(READ, &[APPS, EXTENSIONS], &["replicasets"]),
                rule(READ, &[LEGACY], &["replicationcontrollers"]),
                rule(READ, &[POLICY], &["poddisruptionbudgets"]),
                rule(READ, &[APPS], &["statefulsets"]),
                rule(&["update"], &[POLICY], &["poddisruptionbudgets/status"]),
                rule(&["patch", "update"], &[LEGACY], &["pods/status"]),
                rule(&["get"], &["*"], &["*/scale"]),
                events_rule(),
            ],
        ),
        (
            "generic-garbage-collector",
            vec![
                rule(
                    &["get", "list", "watch", "patch", "update", "delete"],
                    &["*"],
                    &["*"],
                ),
                events_rule(),
            ],
        ),
        (
            "namespace-controller",
            vec![
                rule(
                    &["get", "list", "watch", "delete"],
                    &[LEGACY],
                    &["namespaces"],
                ),
                rule(
                    &["update"],
                    &[LEGACY],
                    &["namespaces/finalize", "namespaces/status"],
                ),
                rule(
                    &["get", "list", "delete", "deletecollection", "watch"],
                    &["*"],
                    &["*"],
                ),
            ],
        ),
        (
            "node-controller",
            vec![
                rule(
                    &["get", "list", "update", "delete", "patch", "watch"],
                    &[LEGACY],
                    &["nodes"],
                ),
                rule(&["patch", "update"], &[LEGACY], &["nodes/status"]),
                rule(&["patch", "update"], &[LEGACY], &["pods/status"]),
                rule(&["list", "watch", "get", "delete"], &[LEGACY], &["pods"]),
                events_rule(),
                // pernode: the leases it watches (upstream's informer watches them as
                // kube-controller-manager).
                rule(&["list", "watch"], &[COORDINATION], &["leases"]),
            ],
        ),
        (
            // pernode's own: the node-critical gate (`controllers::node_critical`) removes
            // its taint from nodes whose critical daemons are Ready.
            "node-critical-controller",
            vec![
                rule(&["list", "watch"], &[APPS], &["daemonsets"]),
                rule(&["get", "list", "watch", "update"], &[LEGACY], &["nodes"]),
                rule(&["list", "watch"], &[LEGACY], &["pods"]),
                events_rule(),
            ],
        ),
        (
            "pod-garbage-collector",
            vec![
                rule(&["list", "watch", "delete"], &[LEGACY], &["pods"]),
                rule(READ, &[LEGACY], &["nodes"]),
                rule(&["patch"], &[LEGACY], &["pods/status"]),
            ],
        ),
        (
            "root-ca-cert-publisher",
            vec![
                rule(&["create", "update"], &[LEGACY], &["configmaps"]),
                events_rule(),
                // pernode: what it watches, and the read before an update.
                rule(&["get", "list", "watch"], &[LEGACY], &["configmaps"]),
                rule(&["list", "watch"], &[LEGACY], &["namespaces"]),
            ],
        ),
        (
            "service-account-controller",
            vec![
                rule(&["create"], &[LEGACY], &["serviceaccounts"]),
                events_rule(),
                // pernode: what it watches.
                rule(
                    &["list", "watch"],
                    &[LEGACY],
                    &["namespaces", "serviceaccounts"],
                ),
            ],
        ),
    ]
}

/// `rbacv1helpers.NewClusterBinding(role)` with `subjects`.
fn binding(role: &str, subjects: Vec<Subject>) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: ObjectMeta {
            name: Some(role.into()),
            ..Default::default()
        },
        role_ref: RoleRef {
            api_group: RBAC_GROUP.into(),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: if subjects.is_empty() {
            None
        } else {
            Some(subjects)
        },
    }
}

fn groups(names: &[&str]) -> Vec<Subject> {
    names
        .iter()
        .map(|n| Subject {
            kind: "Group".into(),
            api_group: Some(RBAC_GROUP.into()),
            name: n.to_string(),
            namespace: None,
        })
        .collect()
}

fn user(name: &str) -> Vec<Subject> {
    vec![Subject {
        kind: "User".into(),
        api_group: Some(RBAC_GROUP.into()),
        name: name.into(),
        namespace: None,
    }]
}

fn service_account(namespace: &str, name: &str) -> Vec<Subject> {
    vec![Subject {
        kind: "ServiceAccount".into(),
        api_group: None,
        name: name.into(),
        namespace: Some(namespace.into()),
    }]
}

/// The bootstrap ClusterRoles (`ClusterRoles()` and `ControllerRoles()`), labelled and
/// annotated.
pub fn bootstrap_cluster_roles() -> Vec<ClusterRole> {
    let mut roles = cluster_roles();
    roles.extend(
        controller_roles()
            .into_iter()
            .map(|(name, rules)| role(&format!("system:controller:{name}"), rules)),
    );
    for r in &mut roles {
        add_default_metadata(&mut r.metadata);
    }
    roles
}

/// The bootstrap ClusterRoleBindings (`ClusterRoleBindings()` and
/// `ControllerRoleBindings()`), labelled and annotated.
pub fn bootstrap_cluster_role_bindings() -> Vec<ClusterRoleBinding> {
    let mut bindings = vec![
        binding("cluster-admin", groups(&["system:masters"])),
        binding("system:discovery", groups(&["system:authenticated"])),
        binding("system:monitoring", groups(&[MONITORING_GROUP])),
        binding("system:basic-user", groups(&["system:authenticated"])),
        binding(
            "system:public-info-viewer",
            groups(&["system:authenticated", "system:unauthenticated"]),
        ),
        binding(
            UI_ROLE,
            groups(&["system:authenticated", "system:unauthenticated"]),
        ),
        binding(
            "system:kube-controller-manager",
            user("system:kube-controller-manager"),
        ),
        binding("system:kube-scheduler", user("system:kube-scheduler")),
        binding(SIMULATOR, user(SIMULATOR)),
        // Deprecated with the Node authorizer: kept, with no subjects, as upstream.
        binding("system:node", Vec::new()),
        // pernode: the API server's own kubelet client certificate may use the kubelet API
        // (kubeadm binds its `apiserver-kubelet-client` the same way).
        {
            let mut b = binding(
                "system:kubelet-api-admin",
                user(crate::node_proxy::KUBELET_CLIENT_USER),
            );
            b.metadata.name = Some("pernode:kube-apiserver-kubelet-client".into());
            b
        },
    ];
    bindings.extend(certificates::cluster_role_bindings());
    bindings.extend(controller_roles().into_iter().map(|(name, _)| {
        binding(
            &format!("system:controller:{name}"),
            service_account(CONTROLLER_NAMESPACE, name),
        )
    }));
    for b in &mut bindings {
        add_default_metadata(&mut b.metadata);
    }
    bindings
}

// ---------------------------------------------------------------------------------------------
// Rule coverage: upstream's `Covers` (pernode_auth::rbac, which the escalation checks use too).

/// A namespaced bootstrap Role, labelled and annotated as the cluster roles.
fn namespaced_role(namespace: &str, name: &str, rules: Vec<PolicyRule>) -> Role {
    let mut meta = ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        ..Default::default()
    };
    add_default_metadata(&mut meta);
    Role {
        metadata: meta,
        rules: Some(rules),
    }
}

/// A RoleBinding of the namespaced Role of the same name to `subjects`.
fn namespaced_binding(namespace: &str, name: &str, subjects: Vec<Subject>) -> RoleBinding {
    let mut meta = ObjectMeta {
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        ..Default::default()
    };
    add_default_metadata(&mut meta);
    RoleBinding {
        metadata: meta,
        role_ref: RoleRef {
            api_group: RBAC_GROUP.into(),
            kind: "Role".into(),
            name: name.into(),
        },
        subjects: Some(subjects),
    }
}

/// kubeadm's Role and RoleBinding letting anonymous joining nodes read `cluster-info`.
const CLUSTER_INFO_READER: &str = "kubeadm:bootstrap-signer-clusterinfo";
const BOOTSTRAP_SIGNER: &str = "system:controller:bootstrap-signer";
const TOKEN_CLEANER: &str = "system:controller:token-cleaner";

/// The namespaced bootstrap Roles: upstream's `NamespaceRoles()` for the controllers pernode
/// runs (the bootstrap signer in `kube-system` and `kube-public`, the token cleaner), and
/// kubeadm's `cluster-info` reader in `kube-public`.
pub fn bootstrap_namespaced_roles() -> Vec<Role> {
    use pernode_auth::discovery;
    vec![
        namespaced_role(
            CONTROLLER_NAMESPACE,
            BOOTSTRAP_SIGNER,
            vec![rule(READ, &[LEGACY], &["secrets"])],
        ),
        namespaced_role(
            CONTROLLER_NAMESPACE,
            TOKEN_CLEANER,
            vec![
                rule(&["delete", "get", "list", "watch"], &[LEGACY], &["secrets"]),
                events_rule(),
            ],
        ),
        namespaced_role(
            discovery::NAMESPACE,
            BOOTSTRAP_SIGNER,
            vec![
                rule(READ, &[LEGACY], &["configmaps"]),
                named_rule(
                    &["update"],
                    &[LEGACY],
                    &["configmaps"],
                    &[discovery::CONFIG_MAP],
                ),
                events_rule(),
            ],
        ),
        namespaced_role(
            discovery::NAMESPACE,
            CLUSTER_INFO_READER,
            vec![named_rule(
                &["get"],
                &[LEGACY],
                &["configmaps"],
                &[discovery::CONFIG_MAP],
            )],
        ),
    ]
}

/// The bindings of [`bootstrap_namespaced_roles`].
pub fn bootstrap_namespaced_role_bindings() -> Vec<RoleBinding> {
    use pernode_auth::discovery;
    vec![
        namespaced_binding(
            CONTROLLER_NAMESPACE,
            BOOTSTRAP_SIGNER,
            service_account(CONTROLLER_NAMESPACE, "bootstrap-signer"),
        ),
        namespaced_binding(
            CONTROLLER_NAMESPACE,
            TOKEN_CLEANER,
            service_account(CONTROLLER_NAMESPACE, "token-cleaner"),
        ),
        namespaced_binding(
            discovery::NAMESPACE,
            BOOTSTRAP_SIGNER,
            service_account(CONTROLLER_NAMESPACE, "bootstrap-signer"),
        ),
        namespaced_binding(
            discovery::NAMESPACE,
            CLUSTER_INFO_READER,
            user(pernode_auth::user::ANONYMOUS),
        ),
    ]
}

/// The broken-down rules of `servant` that no rule of `owner` covers.
pub fn uncovered_rules(owner: &[PolicyRule], servant: &[PolicyRule]) -> Vec<PolicyRule> {
    pernode_auth::rbac::covers(owner, servant).1
}

// ---------------------------------------------------------------------------------------------
// Reconciliation (pkg/registry/rbac/reconciliation), union only.

/// Adds the entries of `expected` that `existing` lacks (existing values win, as upstream's
/// `merge`); true if it changed.
fn merge_missing(
    existing: &mut Option<BTreeMap<String, String>>,
    expected: &Option<BTreeMap<String, String>>,
) -> bool {
    let mut changed = false;
    for (k, v) in expected.iter().flatten() {
        let map = existing.get_or_insert_with(BTreeMap::new);
        if !map.contains_key(k) {
            map.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    changed
}

fn protected(meta: &ObjectMeta) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(AUTO_UPDATE_ANNOTATION))
        .is_some_and(|v| v == "false")
}

/// `computeReconciledRole` without removals: `existing` with what `expected` adds, or `None`
/// when nothing is missing or the role is protected (autoupdate `"false"`).
pub fn reconcile_role(existing: &ClusterRole, expected: &ClusterRole) -> Option<ClusterRole> {
    if protected(&existing.metadata) {
        return None;
    }
    let mut result = existing.clone();
    let mut changed = merge_missing(
        &mut result.metadata.annotations,
        &expected.metadata.annotations,
    );
    changed |= merge_missing(&mut result.metadata.labels, &expected.metadata.labels);
    let existing_rules = existing.rules.as_deref().unwrap_or(&[]);
    let missing = uncovered_rules(existing_rules, expected.rules.as_deref().unwrap_or(&[]));
    if !missing.is_empty() {
        result.rules.get_or_insert_with(Vec::new).extend(missing);
        changed = true;
    }
    if let Some(want) = expected
        .aggregation_rule
        .as_ref()
        .and_then(|a| a.cluster_role_selectors.as_ref())
    {
        let have: Vec<LabelSelector> = existing
            .aggregation_rule
            .as_ref()
            .and_then(|a| a.cluster_role_selectors.clone())
            .unwrap_or_default();
        let missing: Vec<LabelSelector> =
            want.iter().filter(|s| !have.contains(s)).cloned().collect();
        if !missing.is_empty() {
            let agg = result.aggregation_rule.get_or_insert_with(Default::default);
            agg.cluster_role_selectors
                .get_or_insert_with(Vec::new)
                .extend(missing);
            changed = true;
        }
    }
    changed.then_some(result)
}

/// `computeReconciledRoleBinding` without removals: missing labels, annotations and subjects
/// added; `None` when nothing is missing, the binding is protected, or its roleRef differs
/// (upstream deletes and recreates it then; pernode never deletes here).
pub fn reconcile_binding(
    existing: &ClusterRoleBinding,
    expected: &ClusterRoleBinding,
) -> Option<ClusterRoleBinding> {
    if protected(&existing.metadata) || existing.role_ref != expected.role_ref {
        return None;
    }
    let mut result = existing.clone();
    let mut changed = merge_missing(
        &mut result.metadata.annotations,
        &expected.metadata.annotations,
    );
    changed |= merge_missing(&mut result.metadata.labels, &expected.metadata.labels);
    let have = existing.subjects.clone().unwrap_or_default();
    let missing: Vec<Subject> = expected
        .subjects
        .iter()
        .flatten()
        .filter(|s| !have.contains(s))
        .cloned()
        .collect();
    if !missing.is_empty() {
        result.subjects.get_or_insert_with(Vec::new).extend(missing);
        changed = true;
    }
    changed.then_some(result)
}

// ---------------------------------------------------------------------------------------------
// Ensuring the policy in the store.

/// [`reconcile_role`] for a namespaced Role (the same rules without aggregation).
pub fn reconcile_namespaced_role(existing: &Role, expected: &Role) -> Option<Role> {
    let as_cluster = |r: &Role| ClusterRole {
        metadata: r.metadata.clone(),
        rules: r.rules.clone(),
        aggregation_rule: None,
    };
    reconcile_role(&as_cluster(existing), &as_cluster(expected)).map(|r| Role {
        metadata: r.metadata,
        rules: r.rules,
    })
}

/// [`reconcile_binding`] for a RoleBinding.
pub fn reconcile_namespaced_binding(
    existing: &RoleBinding,
    expected: &RoleBinding,
) -> Option<RoleBinding> {
    let as_cluster = |b: &RoleBinding| ClusterRoleBinding {
        metadata: b.metadata.clone(),
        role_ref: b.role_ref.clone(),
        subjects: b.subjects.clone(),
    };
    reconcile_binding(&as_cluster(existing), &as_cluster(expected)).map(|b| RoleBinding {
        metadata: b.metadata,
        role_ref: b.role_ref,
        subjects: b.subjects,
    })
}

fn info(plural: &str) -> &'static ResourceInfo {
    pernode_resources::find(RBAC_GROUP, "v1", plural).expect("the RBAC kinds are served")
}

fn to_value<T: Serialize>(info: &ResourceInfo, obj: &T) -> Result<Value, ApiError> {
    let mut v = serde_json::to_value(obj).map_err(|e| ApiError::internal(e.to_string()))?;
    v["kind"] = info.kind.into();
    v["apiVersion"] = info.api_version().into();
    Ok(v)
}

/// The write that brings `plural/name` to `expected`: a create when missing, an update with
/// what `reconcile` adds, or nothing. Admitted as a client's write would be.
fn plan<T>(
    store: &Store,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
    expected: &T,
    reconcile: impl Fn(&T, &T) -> Option<T>,
) -> Result<Option<Op>, ApiError>
where
    T: Serialize + DeserializeOwned,
{
    let info = info(plural);
    let key = crate::target::object_key(info, namespace, name);
    let Some(entry) = store.get(&key) else {
        let mut obj = to_value(info, expected)?;
        registry::prepare_create(info, &mut obj, &loopback_user())?;
        registry::admit(info, &Operation::Create, &mut obj, FieldValidation::Strict)?;
        return Ok(Some(Op::Create { key, obj }));
    };
    let old = entry
        .value()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let existing: T =
        serde_json::from_value(old.clone()).map_err(|e| ApiError::internal(e.to_string()))?;
    let Some(updated) = reconcile(&existing, expected) else {
        return Ok(None);
    };
    let mut obj = to_value(info, &updated)?;
    let op = Operation::Update { old: &old };
    registry::prepare_update(info, &op, &mut obj)?;
    registry::admit(info, &op, &mut obj, FieldValidation::Strict)?;
    Ok(Some(Op::Update {
        key,
        obj,
        expected_rv: Some(entry.rv),
    }))
}

/// Who writes the policy: kube-apiserver's own loopback identity.
fn loopback_user() -> pernode_auth::user::UserInfo {
    pernode_auth::user::UserInfo::new(
        "system:apiserver",
        [pernode_auth::user::SYSTEM_PRIVILEGED_GROUP],
    )
}

/// Upstream's `EnsureRBACPolicy`: creates the bootstrap roles and bindings that are missing
/// and adds back what an auto-updated one lacks, in one durable commit. Returns how many
/// objects it wrote.
pub async fn ensure(store: &Store) -> Result<usize, ApiError> {
    let mut ops = Vec::new();
    for role in bootstrap_cluster_roles() {
        let name = role.metadata.name.clone().unwrap_or_default();
        ops.extend(plan(
            store,
            "clusterroles",
            None,
            &name,
            &role,
            reconcile_role,
        )?);
    }
    for b in bootstrap_cluster_role_bindings() {
        let name = b.metadata.name.clone().unwrap_or_default();
        ops.extend(plan(
            store,
            "clusterrolebindings",
            None,
            &name,
            &b,
            reconcile_binding,
        )?);
    }
    for role in bootstrap_namespaced_roles() {
        let (ns, name) = (role.metadata.namespace.clone(), role.metadata.name.clone());
        ops.extend(plan(
            store,
            "roles",
            ns.as_deref(),
            name.as_deref().unwrap_or_default(),
            &role,
            reconcile_namespaced_role,
        )?);
    }
    for b in bootstrap_namespaced_role_bindings() {
        let (ns, name) = (b.metadata.namespace.clone(), b.metadata.name.clone());
        ops.extend(plan(
            store,
            "rolebindings",
            ns.as_deref(),
            name.as_deref().unwrap_or_default(),
            &b,
            reconcile_namespaced_binding,
        )?);
    }
    if ops.is_empty() {
        return Ok(0);
    }
    let mut written = 0;
    for result in store.commit(ops).await {
        match result {
            Ok(_) => written += 1,
            // Someone else wrote it meanwhile: theirs stands, as upstream's hook retries later.
            Err(StoreError::AlreadyExists | StoreError::Conflict { .. }) => {}
            Err(e) => return Err(ApiError::internal(e.to_string())),
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names_of_roles() -> Vec<String> {
        bootstrap_cluster_roles()
            .into_iter()
            .map(|r| r.metadata.name.unwrap_or_default())
            .collect()
    }

    fn get_role(name: &str) -> ClusterRole {
        bootstrap_cluster_roles()
            .into_iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name} is a bootstrap role"))
    }

    fn selects(aggregating: &ClusterRole, role: &ClusterRole) -> bool {
        let labels = role.metadata.labels.clone().unwrap_or_default();
        aggregating
            .aggregation_rule
            .as_ref()
            .and_then(|a| a.cluster_role_selectors.as_ref())
            .into_iter()
            .flatten()
            .any(|s| {
                pernode_core::labels::from_k8s(s)
                    .map(|sel| sel.matches(&labels))
                    .unwrap_or(false)
            })
    }

    #[test]
    fn user_facing_roles_aggregate_as_upstream() {
        let admin = get_role("admin");
        let edit = get_role("edit");
        let view = get_role("view");
        assert!(selects(&admin, &get_role("system:aggregate-to-admin")));
        assert!(selects(&admin, &edit), "edit aggregates into admin");
        assert!(selects(&edit, &get_role("system:aggregate-to-edit")));
        assert!(selects(&edit, &view), "view aggregates into edit");
        assert!(selects(&view, &get_role("system:aggregate-to-view")));
        assert!(!selects(&view, &get_role("system:aggregate-to-edit")));
        let metrics = get_role("system:aggregated-metrics-reader");
        for r in [&admin, &edit, &view] {
            assert!(selects(r, &metrics), "metrics.k8s.io is readable with view");
        }
        for r in [&admin, &edit, &view] {
            assert!(r.rules.is_none(), "the controller fills the rules");
        }
    }

    #[test]
    fn every_object_is_labelled_annotated_and_valid() {
        for r in bootstrap_cluster_roles() {
            let m = &r.metadata;
            assert_eq!(
                m.labels
                    .as_ref()
                    .and_then(|l| l.get(BOOTSTRAP_LABEL.0))
                    .map(String::as_str),
                Some("rbac-defaults")
            );
            assert_eq!(
                m.annotations
                    .as_ref()
                    .and_then(|a| a.get(AUTO_UPDATE_ANNOTATION))
                    .map(String::as_str),
                Some("true")
            );
            let errs = pernode_admission::validate::cluster_role(&r);
            assert!(errs.is_empty(), "{:?}: {errs:?}", m.name);
        }
        for b in bootstrap_cluster_role_bindings() {
            assert_eq!(
                b.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(BOOTSTRAP_LABEL.0))
                    .map(String::as_str),
                Some("rbac-defaults")
            );
            let errs = pernode_admission::validate::cluster_role_binding(&b);
            assert!(errs.is_empty(), "{:?}: {errs:?}", b.metadata.name);
        }
        let names = names_of_roles();
        let unique: std::collections::BTreeSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "role names are unique");
    }

    #[test]
    fn every_binding_refers_to_a_bootstrap_role() {
        let roles = names_of_roles();
        let bindings = bootstrap_cluster_role_bindings();
        for b in &bindings {
            assert!(roles.contains(&b.role_ref.name), "{}", b.role_ref.name);
            assert_eq!(b.role_ref.kind, "ClusterRole");
        }
        let subjects = |name: &str| -> Vec<(String, String)> {
            bindings
                .iter()
                .find(|b| b.metadata.name.as_deref() == Some(name))
                .and_then(|b| b.subjects.clone())
                .unwrap_or_default()
                .into_iter()
                .map(|s| (s.kind, s.name))
                .collect()
        };
        assert_eq!(
            subjects("cluster-admin"),
            [("Group".into(), "system:masters".into())]
        );
        assert_eq!(
            subjects("system:monitoring"),
            [("Group".into(), "system:monitoring".into())]
        );
        assert_eq!(
            subjects("system:public-info-viewer"),
            [
                ("Group".into(), "system:authenticated".into()),
                ("Group".into(), "system:unauthenticated".into())
            ]
        );
        let gc = bindings
            .iter()
            .find(|b| {
                b.metadata.name.as_deref() == Some("system:controller:generic-garbage-collector")
            })
            .expect("the GC's binding");
        let sa = &gc.subjects.as_ref().expect("a subject")[0];
        assert_eq!(
            (sa.kind.as_str(), sa.name.as_str(), sa.namespace.as_deref()),
            (
                "ServiceAccount",
                "generic-garbage-collector",
                Some("kube-system")
            )
        );
    }

    #[test]
    fn the_node_role_holds_the_node_authorizers_rules_and_is_bound_to_no_one() {
        let rules = get_role("system:node").rules.expect("rules");
        assert_eq!(rules.len(), pernode_auth::node::NODE_RULES.len());
        let leases = rules
            .iter()
            .find(|r| r.resources.as_deref() == Some(&["leases".to_string()][..]))
            .expect("the lease rule");
        assert_eq!(leases.verbs, ["create", "delete", "get", "patch", "update"]);
        assert_eq!(
            leases.api_groups.as_deref(),
            Some(&["coordination.k8s.io".to_string()][..])
        );
        let binding = bootstrap_cluster_role_bindings()
            .into_iter()
            .find(|b| b.metadata.name.as_deref() == Some("system:node"))
            .expect("the system:node binding");
        assert!(binding.subjects.unwrap_or_default().is_empty());
    }

    #[test]
    fn rules_are_sorted_as_the_builder_sorts_them() {
        let r = get_role("system:controller:clusterrole-aggregation-controller");
        assert_eq!(
            r.rules.expect("rules")[0].verbs,
            ["escalate", "get", "list", "patch", "update", "watch"]
        );
    }

    #[test]
    fn coverage_breaks_rules_down_and_honours_wildcards() {
        let owner = vec![
            rule(&["get", "list"], &[""], &["pods"]),
            rule(&["get"], &["*"], &["*/scale"]),
            url_rule(&["get"], &["/apis/*"]),
        ];
        assert!(uncovered_rules(&owner, &[rule(&["get"], &[""], &["pods"])]).is_empty());
        assert!(
            uncovered_rules(&owner, &[rule(&["get"], &["apps"], &["deployments/scale"])])
                .is_empty()
        );
        assert!(uncovered_rules(&owner, &[url_rule(&["get"], &["/apis/apps"])]).is_empty());
        assert_eq!(
            uncovered_rules(
                &owner,
                &[rule(&["get", "watch"], &[""], &["pods", "nodes"])]
            ),
            // The builder sorted the resources: nodes first.
            [
                rule(&["get"], &[""], &["nodes"]),
                rule(&["watch"], &[""], &["nodes"]),
                rule(&["watch"], &[""], &["pods"]),
            ]
        );
        let all = [rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])];
        for r in bootstrap_cluster_roles() {
            assert!(uncovered_rules(&all, r.rules.as_deref().unwrap_or(&[])).is_empty());
        }
    }

    #[test]
    fn reconciling_adds_what_is_missing_and_keeps_the_rest() {
        let expected = get_role("system:controller:pod-garbage-collector");
        let mut existing = expected.clone();
        assert!(
            reconcile_role(&existing, &expected).is_none(),
            "nothing missing"
        );
        // A user trimmed a rule and added one, and changed the label's value.
        let mut rules = existing.rules.take().expect("rules");
        rules.remove(0);
        rules.push(rule(&["get"], &[""], &["configmaps"]));
        existing.rules = Some(rules);
        existing
            .metadata
            .labels
            .as_mut()
            .expect("labels")
            .insert(BOOTSTRAP_LABEL.0.into(), "mine".into());
        let fixed = reconcile_role(&existing, &expected).expect("a missing rule");
        let fixed_rules = fixed.rules.expect("rules");
        assert!(fixed_rules.contains(&rule(&["get"], &[""], &["configmaps"])));
        assert!(uncovered_rules(&fixed_rules, expected.rules.as_deref().unwrap_or(&[])).is_empty());
        assert_eq!(
            fixed.metadata.labels.expect("labels")[BOOTSTRAP_LABEL.0],
            "mine",
            "existing values win"
        );
        // autoupdate "false" protects the role.
        existing
            .metadata
            .annotations
            .as_mut()
            .expect("annotations")
            .insert(AUTO_UPDATE_ANNOTATION.into(), "false".into());
        assert!(reconcile_role(&existing, &expected).is_none());

        let expected = bootstrap_cluster_role_bindings()
            .into_iter()
            .find(|b| b.metadata.name.as_deref() == Some("system:public-info-viewer"))
            .expect("binding");
        let mut existing = expected.clone();
        existing.subjects.as_mut().expect("subjects").remove(1);
        let fixed = reconcile_binding(&existing, &expected).expect("a missing subject");
        assert_eq!(fixed.subjects, expected.subjects);
        existing.role_ref.name = "view".into();
        assert!(
            reconcile_binding(&existing, &expected).is_none(),
            "never recreated"
        );
    }

    #[tokio::test]
    async fn ensure_creates_once_and_repairs() {
        let store = Store::in_memory(registry::indexer(), Default::default());
        let n = ensure(&store).await.expect("ensured");
        assert_eq!(
            n,
            bootstrap_cluster_roles().len()
                + bootstrap_cluster_role_bindings().len()
                + bootstrap_namespaced_roles().len()
                + bootstrap_namespaced_role_bindings().len()
        );
        assert!(
            store
                .get("roles/kube-public/kubeadm:bootstrap-signer-clusterinfo")
                .is_some(),
            "namespaced roles are ensured in their namespace"
        );
        assert_eq!(ensure(&store).await.expect("ensured"), 0, "idempotent");
        // Stored as a client's write would be: uid, creationTimestamp, defaulted.
        let view = store
            .get("clusterroles/view")
            .expect("view")
            .value()
            .expect("json");
        assert!(view.pointer("/metadata/uid").is_some());
        assert_eq!(view["kind"], "ClusterRole");
        // Remove a subject from a binding: it comes back; other changes stay.
        let key = "clusterrolebindings/cluster-admin";
        let entry = store.get(key).expect("binding");
        let mut b = entry.value().expect("json");
        b["subjects"] = serde_json::json!([{"kind": "User", "name": "me", "apiGroup": RBAC_GROUP}]);
        store.update(key, b, Some(entry.rv)).await.expect("updated");
        assert_eq!(ensure(&store).await.expect("ensured"), 1);
        let b = store.get(key).expect("binding").value().expect("json");
        let names: Vec<&str> = b["subjects"]
            .as_array()
            .expect("subjects")
            .iter()
            .filter_map(|s| s["name"].as_str())
            .collect();
        assert_eq!(names, ["me", "system:masters"]);
    }
}
