//! The catalogue of served resources: one [`ResourceInfo`] per REST resource, with the
//! discovery metadata (short names, categories, verbs, subresources) kubectl relies on.
//!
//! Everything else in this crate (discovery documents, OpenAPI paths) is derived from
//! [`RESOURCES`], so adding a resource here is the single place to change.

use crate::custom::CustomInfo;

/// Every verb a fully served resource supports, in upstream's discovery order.
const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Kinds pernode stores nothing of and runs no controller for, served read-only (always
/// empty) so that clients which list them find them: `kubectl apply --prune` lists every kind
/// of its default allowlist and fails if one is missing. Creating one is a 405.
pub const READ_ONLY_VERBS: &[&str] = &["get", "list", "watch"];

/// Upstream namespaces have no `deletecollection` (a mass delete of namespaces is refused).
const NAMESPACE_VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];

/// Kinds that are only ever created, answered and never stored (TokenReview, TokenRequest, the
/// access reviews).
pub const CREATE_ONLY: &[&str] = &["create"];

/// The verbs of every `/status` subresource.
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];

/// One REST resource served by pernode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group; `""` for the core (legacy) group.
    pub group: &'static str,
    /// API version, e.g. `v1`.
    pub version: &'static str,
    /// The plural resource name used in URLs and store keys (`daemonsets`).
    pub plural: &'static str,
    /// The singular name (`daemonset`).
    pub singular: &'static str,
    /// The kind of the objects (`DaemonSet`).
    pub kind: &'static str,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts (`ds`).
    pub short_names: &'static [&'static str],
    /// Categories (`all`) for `kubectl get all`.
    pub categories: &'static [&'static str],
    /// Verbs served on the resource itself.
    pub verbs: &'static [&'static str],
    /// Subresources (`status`, `eviction`, ...).
    pub subresources: &'static [SubresourceInfo],
    /// Set for a resource a CustomResourceDefinition defines: what serving it needs beyond
    /// the names (schema, printer columns, scale paths). `None` for every built-in.
    pub custom: Option<&'static CustomInfo>,
}

/// A subresource of a [`ResourceInfo`], e.g. `pods/eviction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubresourceInfo {
    /// The subresource name (`status`, `binding`, `eviction`).
    pub name: &'static str,
    /// Group of the kind the subresource accepts and returns (`policy` for eviction).
    pub group: &'static str,
    /// Version of that kind.
    pub version: &'static str,
    /// The kind (`Eviction`; the parent's kind for `status`).
    pub kind: &'static str,
    /// Verbs served on the subresource.
    pub verbs: &'static [&'static str],
}

const fn status(group: &'static str, kind: &'static str) -> SubresourceInfo {
    SubresourceInfo {
        name: "status",
        group,
        version: "v1",
        kind,
        verbs: STATUS_VERBS,
    }
}

/// A resource served with every verb and no subresources, in group version `v1` (every
/// group pernode serves is at `v1`); entries change what differs with `..`.
const fn v1(
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
) -> ResourceInfo {
    ResourceInfo {
        group,
        version: "v1",
        plural,
        singular,
        kind,
        namespaced,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        custom: None,
    }
}

const RBAC: &str = "rbac.authorization.k8s.io";
/// The group of TokenReviews, TokenRequests and SelfSubjectReviews.
pub const AUTHENTICATION: &str = "authentication.k8s.io";
/// The group of the access reviews (SubjectAccessReview and its kin).
pub const AUTHORIZATION: &str = "authorization.k8s.io";
const ADMISSION_REGISTRATION: &str = "admissionregistration.k8s.io";
/// The group of CustomResourceDefinitions.
pub const APIEXTENSIONS: &str = "apiextensions.k8s.io";
/// The group of CertificateSigningRequests.
pub const CERTIFICATES: &str = "certificates.k8s.io";

/// Verbs of a connect subresource (pods/exec, attach, portforward): GET and POST, as upstream.
const CONNECT_VERBS: &[&str] = &["create", "get"];
/// Verbs of nodes/proxy, as upstream lists them.
const PROXY_VERBS: &[&str] = &["create", "delete", "get", "patch", "update"];

/// A core/v1 subresource that connects to the node (its kind is the `*Options` type of the
/// connection, as discovery lists it).
const fn connect(
    name: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
) -> SubresourceInfo {
    SubresourceInfo {
        name,
        group: "",
        version: "v1",
        kind,
        verbs,
    }
}

impl SubresourceInfo {
    /// Whether requests to it are connections to the node (exec, attach, portforward, proxy):
    /// upstream's `connect` action, with an `*Options` kind and no object body.
    pub fn is_connect(&self) -> bool {
        self.kind.ends_with("Options")
    }
}

/// All served resources. Order: core first, then the groups in the order `/apis` lists them.
pub static RESOURCES: &[ResourceInfo] = &[
    ResourceInfo {
        group: "",
        version: "v1",
        plural: "namespaces",
        singular: "namespace",
        kind: "Namespace",
        namespaced: false,
        short_names: &["ns"],
        categories: &[],
        verbs: NAMESPACE_VERBS,
        // The namespace controller removes its `kubernetes` finalizer through `finalize`.
        subresources: &[
            SubresourceInfo {
                name: "finalize",
                group: "",
                version: "v1",
                kind: "Namespace",
                verbs: &["update"],
            },
            status("", "Namespace"),
        ],
        custom: None,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        plural: "nodes",
        singular: "node",
        kind: "Node",
        namespaced: false,
        short_names: &["no"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[
            // Forwarded to the node's kubelet; refused for simulated nodes.
            connect("proxy", "NodeProxyOptions", PROXY_VERBS),
            status("", "Node"),
        ],
        custom: None,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        plural: "pods",
        singular: "pod",
        kind: "Pod",
        namespaced: true,
        short_names: &["po"],
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[
            SubresourceInfo {
                name: "binding",
                group: "",
                version: "v1",
                kind: "Binding",
                verbs: &["create"],
            },
            // kubectl drain uses eviction only when /api/v1 lists exactly this entry (§3.13).
            SubresourceInfo {
                name: "eviction",
                group: "policy",
                version: "v1",
                kind: "Eviction",
                verbs: &["create"],
            },
            // exec, attach and portforward are forwarded to the node's kubelet (upgraded to the
            // client's stream protocol); a simulated node refuses them.
            connect("attach", "PodAttachOptions", CONNECT_VERBS),
            connect("exec", "PodExecOptions", CONNECT_VERBS),
            connect("portforward", "PodPortForwardOptions", CONNECT_VERBS),
            // Proxied to the agent running the pod, as kube-apiserver proxies to the kubelet;
            // answered here for a simulated node.
            SubresourceInfo {
                name: "log",
                group: "",
                version: "v1",
                kind: "Pod",
                verbs: &["get"],
            },
            status("", "Pod"),
        ],
        custom: None,
    },
    ResourceInfo {
        group: "",
        version: "v1",
        plural: "events",
        singular: "event",
        kind: "Event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        custom: None,
    },
    ResourceInfo {
        short_names: &["cm"],
        ..v1("", "configmaps", "configmap", "ConfigMap", true)
    },
    ResourceInfo {
        short_names: &["ep"],
        ..v1("", "endpoints", "endpoints", "Endpoints", true)
    },
    v1("", "secrets", "secret", "Secret", true),
    ResourceInfo {
        short_names: &["sa"],
        // TokenRequest (`kubectl create token`): a signed token, nothing stored.
        subresources: &[SubresourceInfo {
            name: "token",
            group: AUTHENTICATION,
            version: "v1",
            kind: "TokenRequest",
            verbs: CREATE_ONLY,
        }],
        ..v1(
            "",
            "serviceaccounts",
            "serviceaccount",
            "ServiceAccount",
            true,
        )
    },
    ResourceInfo {
        short_names: &["svc"],
        categories: &["all"],
        subresources: &[status("", "Service")],
        ..v1("", "services", "service", "Service", true)
    },
    ResourceInfo {
        short_names: &["pvc"],
        verbs: READ_ONLY_VERBS,
        ..v1(
            "",
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            "PersistentVolumeClaim",
            true,
        )
    },
    ResourceInfo {
        short_names: &["pv"],
        verbs: READ_ONLY_VERBS,
        ..v1(
            "",
            "persistentvolumes",
            "persistentvolume",
            "PersistentVolume",
            false,
        )
    },
    ResourceInfo {
        short_names: &["rc"],
        categories: &["all"],
        verbs: READ_ONLY_VERBS,
        ..v1(
            "",
            "replicationcontrollers",
            "replicationcontroller",
            "ReplicationController",
            true,
        )
    },
    ResourceInfo {
        group: "apps",
        version: "v1",
        plural: "controllerrevisions",
        singular: "controllerrevision",
        kind: "ControllerRevision",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        custom: None,
    },
    ResourceInfo {
        group: "apps",
        version: "v1",
        plural: "daemonsets",
        singular: "daemonset",
        kind: "DaemonSet",
        namespaced: true,
        short_names: &["ds"],
        categories: &["all"],
        verbs: ALL_VERBS,
        subresources: &[status("apps", "DaemonSet")],
        custom: None,
    },
    ResourceInfo {
        short_names: &["deploy"],
        categories: &["all"],
        verbs: READ_ONLY_VERBS,
        ..v1("apps", "deployments", "deployment", "Deployment", true)
    },
    ResourceInfo {
        short_names: &["rs"],
        categories: &["all"],
        verbs: READ_ONLY_VERBS,
        ..v1("apps", "replicasets", "replicaset", "ReplicaSet", true)
    },
    ResourceInfo {
        short_names: &["sts"],
        categories: &["all"],
        verbs: READ_ONLY_VERBS,
        ..v1("apps", "statefulsets", "statefulset", "StatefulSet", true)
    },
    // events.k8s.io/v1 serves the same stored Events as core/v1 (converted), and sits after
    // apps in upstream's /apis order.
    ResourceInfo {
        short_names: &["ev"],
        ..v1("events.k8s.io", "events", "event", "Event", true)
    },
    // authentication.k8s.io sits after events.k8s.io in upstream's /apis order.
    ResourceInfo {
        verbs: CREATE_ONLY,
        ..v1(
            AUTHENTICATION,
            "selfsubjectreviews",
            "selfsubjectreview",
            "SelfSubjectReview",
            false,
        )
    },
    ResourceInfo {
        verbs: CREATE_ONLY,
        ..v1(
            AUTHENTICATION,
            "tokenreviews",
            "tokenreview",
            "TokenReview",
            false,
        )
    },
    // authorization.k8s.io follows authentication.k8s.io in upstream's /apis order: the access
    // reviews `kubectl auth can-i` asks ([`CREATE_ONLY`], answered, never stored).
    ResourceInfo {
        verbs: CREATE_ONLY,
        ..v1(
            AUTHORIZATION,
            "localsubjectaccessreviews",
            "localsubjectaccessreview",
            "LocalSubjectAccessReview",
            true,
        )
    },
    ResourceInfo {
        verbs: CREATE_ONLY,
        ..v1(
            AUTHORIZATION,
            "selfsubjectaccessreviews",
            "selfsubjectaccessreview",
            "SelfSubjectAccessReview",
            false,
        )
    },
    ResourceInfo {
        verbs: CREATE_ONLY,
        ..v1(
            AUTHORIZATION,
            "selfsubjectrulesreviews",
            "selfsubjectrulesreview",
            "SelfSubjectRulesReview",
            false,
        )
    },
    ResourceInfo {
        verbs: CREATE_ONLY,
        ..v1(
            AUTHORIZATION,
            "subjectaccessreviews",
            "subjectaccessreview",
            "SubjectAccessReview",
            false,
        )
    },
    ResourceInfo {
        short_names: &["cj"],
        categories: &["all"],
        verbs: READ_ONLY_VERBS,
        ..v1("batch", "cronjobs", "cronjob", "CronJob", true)
    },
    ResourceInfo {
        categories: &["all"],
        verbs: READ_ONLY_VERBS,
        ..v1("batch", "jobs", "job", "Job", true)
    },
    // certificates.k8s.io sits between batch and networking.k8s.io in upstream's /apis order.
    // A request is approved or denied through `approval` and given its certificate through
    // `status`, each with its own strategy and permission.
    ResourceInfo {
        short_names: &["csr"],
        subresources: &[
            SubresourceInfo {
                name: "approval",
                ..status(CERTIFICATES, "CertificateSigningRequest")
            },
            status(CERTIFICATES, "CertificateSigningRequest"),
        ],
        ..v1(
            CERTIFICATES,
            "certificatesigningrequests",
            "certificatesigningrequest",
            "CertificateSigningRequest",
            false,
        )
    },
    ResourceInfo {
        short_names: &["ing"],
        verbs: READ_ONLY_VERBS,
        ..v1("networking.k8s.io", "ingresses", "ingress", "Ingress", true)
    },
    ResourceInfo {
        short_names: &["netpol"],
        ..v1(
            "networking.k8s.io",
            "networkpolicies",
            "networkpolicy",
            "NetworkPolicy",
            true,
        )
    },
    ResourceInfo {
        short_names: &["pdb"],
        subresources: &[status("policy", "PodDisruptionBudget")],
        ..v1(
            "policy",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            "PodDisruptionBudget",
            true,
        )
    },
    v1(
        RBAC,
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
    ),
    v1(RBAC, "clusterroles", "clusterrole", "ClusterRole", false),
    v1(RBAC, "rolebindings", "rolebinding", "RoleBinding", true),
    v1(RBAC, "roles", "role", "Role", true),
    v1(
        "storage.k8s.io",
        "csidrivers",
        "csidriver",
        "CSIDriver",
        false,
    ),
    v1("storage.k8s.io", "csinodes", "csinode", "CSINode", false),
    ResourceInfo {
        categories: &["api-extensions"],
        ..v1(
            ADMISSION_REGISTRATION,
            "mutatingwebhookconfigurations",
            "mutatingwebhookconfiguration",
            "MutatingWebhookConfiguration",
            false,
        )
    },
    ResourceInfo {
        categories: &["api-extensions"],
        ..v1(
            ADMISSION_REGISTRATION,
            "validatingwebhookconfigurations",
            "validatingwebhookconfiguration",
            "ValidatingWebhookConfiguration",
            false,
        )
    },
    ResourceInfo {
        short_names: &["crd", "crds"],
        categories: &["api-extensions"],
        subresources: &[status(APIEXTENSIONS, "CustomResourceDefinition")],
        ..v1(
            APIEXTENSIONS,
            "customresourcedefinitions",
            "customresourcedefinition",
            "CustomResourceDefinition",
            false,
        )
    },
    ResourceInfo {
        short_names: &["pc"],
        ..v1(
            "scheduling.k8s.io",
            "priorityclasses",
            "priorityclass",
            "PriorityClass",
            false,
        )
    },
    ResourceInfo {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        singular: "lease",
        kind: "Lease",
        namespaced: true,
        short_names: &[],
        categories: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        custom: None,
    },
    v1(
        "discovery.k8s.io",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        true,
    ),
];

/// Looks a resource up by group, version and plural name.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Looks a resource up by group, version and kind (the kind of its objects, not of a
/// subresource).
pub fn find_kind(group: &str, version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.kind == kind)
}

/// The served group versions, in catalogue order without repeats; `("", "v1")` is core.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES {
        if !out.contains(&(r.group, r.version)) {
            out.push((r.group, r.version));
        }
    }
    out
}

impl ResourceInfo {
    /// `v1` for core, `group/version` otherwise: the objects' `apiVersion`.
    pub fn api_version(&self) -> &'static str {
        if let Some(custom) = self.custom {
            return &custom.api_version;
        }
        // RESOURCES is a static table, so the joined strings are spelled out rather than
        // leaked; the test `api_versions_match_group_and_version` keeps them in step.
        match (self.group, self.version) {
            ("", "v1") => "v1",
            ("apps", "v1") => "apps/v1",
            ("coordination.k8s.io", "v1") => "coordination.k8s.io/v1",
            ("policy", "v1") => "policy/v1",
            ("batch", "v1") => "batch/v1",
            ("certificates.k8s.io", "v1") => "certificates.k8s.io/v1",
            ("events.k8s.io", "v1") => "events.k8s.io/v1",
            ("authentication.k8s.io", "v1") => "authentication.k8s.io/v1",
            ("authorization.k8s.io", "v1") => "authorization.k8s.io/v1",
            ("networking.k8s.io", "v1") => "networking.k8s.io/v1",
            ("rbac.authorization.k8s.io", "v1") => "rbac.authorization.k8s.io/v1",
            ("storage.k8s.io", "v1") => "storage.k8s.io/v1",
            ("admissionregistration.k8s.io", "v1") => "admissionregistration.k8s.io/v1",
            ("apiextensions.k8s.io", "v1") => "apiextensions.k8s.io/v1",
            ("scheduling.k8s.io", "v1") => "scheduling.k8s.io/v1",
            ("discovery.k8s.io", "v1") => "discovery.k8s.io/v1",
            _ => "",
        }
    }

    /// The group-qualified resource as upstream prints it in errors: `pods`,
    /// `daemonsets.apps`, `leases.coordination.k8s.io`.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// The discovery scope: `Namespaced` or `Cluster`.
    pub fn scope(&self) -> &'static str {
        if self.namespaced {
            "Namespaced"
        } else {
            "Cluster"
        }
    }

    /// The subresource with this name, if served.
    pub fn subresource(&self, name: &str) -> Option<&'static SubresourceInfo> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// Whether the resource itself serves `verb`.
    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }
}

impl SubresourceInfo {
    /// The `apiVersion` of the subresource's kind (`policy/v1` for eviction).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_versions_match_group_and_version() {
        for r in RESOURCES {
            let expected = if r.group.is_empty() {
                r.version.to_string()
            } else {
                format!("{}/{}", r.group, r.version)
            };
            assert_eq!(r.api_version(), expected, "{}", r.plural);
        }
    }

    #[test]
    fn lookups() {
        let ds = find("apps", "v1", "daemonsets").expect("daemonsets served");
        assert_eq!(ds.kind, "DaemonSet");
        assert_eq!(ds.group_resource(), "daemonsets.apps");
        assert_eq!(
            find("", "v1", "pods").map(|r| r.group_resource()),
            Some("pods".into())
        );
        assert!(find("apps", "v1", "widgets").is_none());
        assert_eq!(find_kind("", "v1", "Node").map(|r| r.plural), Some("nodes"));
        let ev = find("", "v1", "pods").and_then(|p| p.subresource("eviction"));
        assert_eq!(ev.map(|s| s.api_version()), Some("policy/v1".into()));
        assert_eq!(
            group_versions(),
            vec![
                ("", "v1"),
                ("apps", "v1"),
                ("events.k8s.io", "v1"),
                ("authentication.k8s.io", "v1"),
                ("authorization.k8s.io", "v1"),
                ("batch", "v1"),
                ("certificates.k8s.io", "v1"),
                ("networking.k8s.io", "v1"),
                ("policy", "v1"),
                ("rbac.authorization.k8s.io", "v1"),
                ("storage.k8s.io", "v1"),
                ("admissionregistration.k8s.io", "v1"),
                ("apiextensions.k8s.io", "v1"),
                ("scheduling.k8s.io", "v1"),
                ("coordination.k8s.io", "v1"),
                ("discovery.k8s.io", "v1"),
            ]
        );
    }
}

/// The resources served at one moment: the built-ins, then the entries of the CRDs
/// established at that moment. Lookups by path, discovery and OpenAPI all read one `View`,
/// so a request sees one consistent set.
#[derive(Debug, Default)]
pub struct View {
    generation: u64,
    /// Sorted by group, version (preferred first), plural.
    custom: Vec<&'static ResourceInfo>,
}

impl View {
    /// A view of the built-ins alone.
    pub fn builtin() -> View {
        View::default()
    }

    /// Built-ins plus `custom`, with a generation that names this set.
    pub fn with_custom(generation: u64, mut custom: Vec<&'static ResourceInfo>) -> View {
        custom.sort_by(|a, b| {
            a.group
                .cmp(b.group)
                .then_with(|| crate::custom::kube_version_order(a.version, b.version))
                .then_with(|| a.plural.cmp(b.plural))
        });
        custom.dedup_by(|a, b| std::ptr::eq(*a, *b));
        View { generation, custom }
    }

    /// Changes each time the set of served custom resources changes (0: built-ins only).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The custom entries.
    pub fn custom(&self) -> &[&'static ResourceInfo] {
        &self.custom
    }

    /// Every served resource: the catalogue's, then the custom ones.
    pub fn resources(&self) -> impl Iterator<Item = &'static ResourceInfo> + '_ {
        RESOURCES.iter().chain(self.custom.iter().copied())
    }

    /// Looks a resource up by group, version and plural name.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
        self.resources()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
    }

    /// Looks a resource up by group, version and kind.
    pub fn find_kind(
        &self,
        group: &str,
        version: &str,
        kind: &str,
    ) -> Option<&'static ResourceInfo> {
        self.resources()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
    }

    /// The served group versions without repeats: the catalogue's in its order, then the
    /// custom groups by name, each group's versions preferred first.
    pub fn group_versions(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = group_versions();
        for r in &self.custom {
            if !out.contains(&(r.group, r.version)) {
                out.push((r.group, r.version));
            }
        }
        out
    }
}

/// The served set of one API server, replaced as CRDs are established and deleted, with the
/// OpenAPI documents of the current set built on demand and kept until it changes.
#[derive(Debug, Default)]
pub struct Catalog {
    view: std::sync::RwLock<std::sync::Arc<View>>,
    openapi: std::sync::Mutex<Option<std::sync::Arc<crate::openapi::OpenApi>>>,
}

impl Catalog {
    /// A catalogue serving the built-ins alone.
    pub fn new() -> Catalog {
        Catalog::default()
    }

    /// The current set.
    pub fn view(&self) -> std::sync::Arc<View> {
        self.view.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Serves exactly the built-ins and `custom`; returns whether the set changed (then the
    /// generation moves on and the OpenAPI documents are rebuilt on their next request).
    pub fn set_custom(&self, custom: Vec<&'static ResourceInfo>) -> bool {
        let mut view = self.view.write().unwrap_or_else(|e| e.into_inner());
        let next = View::with_custom(view.generation + 1, custom);
        let same = next.custom.len() == view.custom.len()
            && next
                .custom
                .iter()
                .zip(&view.custom)
                .all(|(a, b)| std::ptr::eq(*a, *b));
        if same {
            return false;
        }
        *view = std::sync::Arc::new(next);
        true
    }

    /// The OpenAPI documents (v3 per group version, v2 whole) of the current set.
    pub fn openapi(&self) -> std::sync::Arc<crate::openapi::OpenApi> {
        let view = self.view();
        let mut cached = self.openapi.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(docs) = cached.as_ref()
            && docs.generation() == view.generation()
        {
            return docs.clone();
        }
        let docs = std::sync::Arc::new(crate::openapi::OpenApi::for_view(view));
        *cached = Some(docs.clone());
        docs
    }
}
