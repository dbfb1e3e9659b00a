//! The RBAC policy at one moment, indexed for the authorizer: upstream's `DefaultRuleResolver`
//! (pkg/registry/rbac/validation/rule.go) over listers, built once per change instead of
//! scanning every binding on every request.
//!
//! Each binding's role is resolved when the snapshot is built (its rules shared, never
//! copied), and each binding is indexed under what its subjects match: a `User` under the user
//! name, a `ServiceAccount` under the user name it authenticates as
//! (`system:serviceaccount:<ns>:<name>`, the namespace defaulting to a RoleBinding's own, as
//! upstream's `appliesTo`), a `Group` under the group. A request looks up its user name and
//! each of its groups, in the cluster-wide index and then in its namespace's, and checks the
//! rules of the bindings found: no allocation, no binding that cannot apply.
//!
//! Visiting order is upstream's: ClusterRoleBindings, then the RoleBindings of the namespace.
//! Within each, bindings come in the order they were given (the store's key order), where
//! upstream's listers have none.

use std::ops::ControlFlow;
use std::sync::Arc;

use foldhash::HashMap;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use pernode_core::goquote::quote;

use super::rules::rule_allows;
use crate::authorizer::{Attributes, Decision};
use crate::user::{SERVICE_ACCOUNT_USER_PREFIX, UserInfo};

/// A role's rules, shared by every snapshot and binding that refers to the role.
pub type Rules = Arc<[PolicyRule]>;

/// `rbacv1.GroupName`.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Why a binding's role could not be resolved (upstream's `GetRoleReferenceRules` errors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleRefError {
    /// The Role (in the binding's namespace; none for a ClusterRoleBinding) or ClusterRole
    /// does not exist.
    NotFound {
        cluster_role: bool,
        namespace: Box<str>,
        name: Box<str>,
    },
    /// A roleRef kind other than `Role` or `ClusterRole`.
    UnsupportedKind(Box<str>),
}

impl RoleRefError {
    /// The error as the authorizer reports it, from its listers:
    /// `clusterrole.rbac.authorization.k8s.io "x" not found`.
    pub fn lister_message(&self) -> String {
        match self {
            RoleRefError::NotFound {
                cluster_role, name, ..
            } => {
                let resource = if *cluster_role { "clusterrole" } else { "role" };
                format!("{resource}.{RBAC_GROUP} {} not found", quote(name))
            }
            RoleRefError::UnsupportedKind(kind) => unsupported_kind(kind),
        }
    }

    /// The error as the registry's rule resolver reports it (escalation checks read the
    /// roles through the registry): `clusterroles.rbac.authorization.k8s.io "x" not found`.
    pub fn registry_message(&self) -> String {
        match self {
            RoleRefError::NotFound {
                cluster_role,
                namespace,
                name,
            } => {
                if !cluster_role && namespace.is_empty() {
                    // The registry cannot look a Role up without a namespace.
                    return "Namespace parameter required.".to_string();
                }
                let resource = if *cluster_role {
                    "clusterroles"
                } else {
                    "roles"
                };
                format!("{resource}.{RBAC_GROUP} {} not found", quote(name))
            }
            RoleRefError::UnsupportedKind(kind) => unsupported_kind(kind),
        }
    }
}

fn unsupported_kind(kind: &str) -> String {
    format!("unsupported role reference kind: {}", quote(kind))
}

/// `utilerrors.NewAggregate(errs).Error()`.
pub(crate) fn aggregate(messages: Vec<String>) -> String {
    pernode_core::goquote::aggregate(&messages)
}

/// One binding, its role resolved.
#[derive(Debug)]
struct Binding {
    rules: Result<Rules, RoleRefError>,
}

/// The bindings of one scope (cluster-wide, or one namespace), by what they apply to.
#[derive(Debug, Default)]
struct BindingIndex {
    bindings: Vec<Binding>,
    /// User names (service accounts' included) → indexes into `bindings`, ascending.
    by_user: HashMap<Box<str>, Vec<u32>>,
    /// Group names → indexes into `bindings`, ascending.
    by_group: HashMap<Box<str>, Vec<u32>>,
}

impl BindingIndex {
    /// Adds a binding whose subjects are `subjects`; `namespace` is a RoleBinding's (a
    /// ServiceAccount subject without one is in it), empty for a ClusterRoleBinding.
    fn add(&mut self, subjects: &[Subject], namespace: &str, rules: Result<Rules, RoleRefError>) {
        let Ok(index) = u32::try_from(self.bindings.len()) else {
            return;
        };
        self.bindings.push(Binding { rules });
        for subject in subjects {
            let (map, key) = match subject.kind.as_str() {
                "User" => (&mut self.by_user, subject.name.clone()),
                "Group" => (&mut self.by_group, subject.name.clone()),
                "ServiceAccount" => {
                    let ns = subject
                        .namespace
                        .as_deref()
                        .filter(|ns| !ns.is_empty())
                        .unwrap_or(namespace);
                    if ns.is_empty() {
                        continue;
                    }
                    (
                        &mut self.by_user,
                        format!("{SERVICE_ACCOUNT_USER_PREFIX}{ns}:{}", subject.name),
                    )
                }
                _ => continue,
            };
            let list = map.entry(key.into_boxed_str()).or_default();
            // Two subjects of one binding that match the same user: one entry.
            if list.last() != Some(&index) {
                list.push(index);
            }
        }
    }

    /// Calls `visit` with every binding that applies to `user` (a binding may come twice,
    /// once per subject kind that matches), until it breaks.
    fn visit<'a>(
        &'a self,
        user: &UserInfo,
        visit: &mut impl FnMut(&'a Binding) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let by_name = self.by_user.get(user.name.as_str());
        let by_groups = user
            .groups
            .iter()
            .filter_map(|g| self.by_group.get(g.as_str()));
        for list in by_name.into_iter().chain(by_groups) {
            for binding in list.iter().filter_map(|&i| self.bindings.get(i as usize)) {
                visit(binding)?;
            }
        }
        ControlFlow::Continue(())
    }

    /// The bindings that apply to `user`, each once, in order.
    fn matching(&self, user: &UserInfo) -> Vec<&Binding> {
        let mut indexes: Vec<u32> = self
            .by_user
            .get(user.name.as_str())
            .into_iter()
            .chain(
                user.groups
                    .iter()
                    .filter_map(|g| self.by_group.get(g.as_str())),
            )
            .flatten()
            .copied()
            .collect();
        indexes.sort_unstable();
        indexes.dedup();
        indexes
            .into_iter()
            .filter_map(|i| self.bindings.get(i as usize))
            .collect()
    }
}

/// The RBAC policy at one moment (see the module doc).
#[derive(Debug, Default)]
pub struct RbacSnapshot {
    cluster_roles: HashMap<Box<str>, Rules>,
    /// Namespace → name → rules.
    roles: HashMap<Box<str>, HashMap<Box<str>, Rules>>,
    cluster_bindings: BindingIndex,
    /// Namespace → its RoleBindings.
    namespaces: HashMap<Box<str>, BindingIndex>,
}

impl RbacSnapshot {
    /// A snapshot of these objects (their rules copied once, into shared lists).
    pub fn new(
        roles: &[Role],
        role_bindings: &[RoleBinding],
        cluster_roles: &[ClusterRole],
        cluster_role_bindings: &[ClusterRoleBinding],
    ) -> RbacSnapshot {
        let shared = |rules: &Option<Vec<PolicyRule>>| -> Rules {
            Arc::from(rules.as_deref().unwrap_or(&[]))
        };
        let roles: Vec<(&str, &str, Rules)> = roles
            .iter()
            .map(|r| {
                (
                    namespace_of(&r.metadata),
                    name_of(&r.metadata),
                    shared(&r.rules),
                )
            })
            .collect();
        let cluster_roles: Vec<(&str, Rules)> = cluster_roles
            .iter()
            .map(|r| (name_of(&r.metadata), shared(&r.rules)))
            .collect();
        RbacSnapshot::build(roles, cluster_roles, role_bindings, cluster_role_bindings)
    }

    /// A snapshot of roles whose rules are already shared: `(namespace, name, rules)` of each
    /// Role, `(name, rules)` of each ClusterRole, and the bindings, in the order to visit them.
    pub fn build<'a>(
        roles: impl IntoIterator<Item = (&'a str, &'a str, Rules)>,
        cluster_roles: impl IntoIterator<Item = (&'a str, Rules)>,
        role_bindings: impl IntoIterator<Item = &'a RoleBinding>,
        cluster_role_bindings: impl IntoIterator<Item = &'a ClusterRoleBinding>,
    ) -> RbacSnapshot {
        let mut snapshot = RbacSnapshot::default();
        for (namespace, name, rules) in roles {
            snapshot
                .roles
                .entry(namespace.into())
                .or_default()
                .insert(name.into(), rules);
        }
        for (name, rules) in cluster_roles {
            snapshot.cluster_roles.insert(name.into(), rules);
        }
        for binding in cluster_role_bindings {
            let rules = snapshot.role_reference_rules(&binding.role_ref, "");
            let subjects = binding.subjects.as_deref().unwrap_or(&[]);
            snapshot.cluster_bindings.add(subjects, "", rules);
        }
        for binding in role_bindings {
            let namespace = namespace_of(&binding.metadata);
            let rules = snapshot.role_reference_rules(&binding.role_ref, namespace);
            let subjects = binding.subjects.as_deref().unwrap_or(&[]);
            snapshot
                .namespaces
                .entry(namespace.into())
                .or_default()
                .add(subjects, namespace, rules);
        }
        snapshot
    }

    /// `GetRoleReferenceRules`: the rules of the role a binding in `namespace` (empty for a
    /// ClusterRoleBinding) refers to.
    pub fn role_reference_rules(
        &self,
        role_ref: &RoleRef,
        namespace: &str,
    ) -> Result<Rules, RoleRefError> {
        let not_found = |cluster_role| RoleRefError::NotFound {
            cluster_role,
            namespace: namespace.into(),
            name: role_ref.name.as_str().into(),
        };
        match role_ref.kind.as_str() {
            "Role" => self
                .roles
                .get(namespace)
                .and_then(|roles| roles.get(role_ref.name.as_str()))
                .cloned()
                .ok_or_else(|| not_found(false)),
            "ClusterRole" => self
                .cluster_roles
                .get(role_ref.name.as_str())
                .cloned()
                .ok_or_else(|| not_found(true)),
            other => Err(RoleRefError::UnsupportedKind(other.into())),
        }
    }

    /// `VisitRulesFor` without the sources: calls `visit` with the rules (or resolution
    /// error) of each binding that applies to `user` in `namespace` until it breaks. A
    /// binding may be visited more than once.
    fn visit_rules(
        &self,
        user: &UserInfo,
        namespace: &str,
        mut visit: impl FnMut(&Result<Rules, RoleRefError>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let mut each = |binding: &Binding| visit(&binding.rules);
        self.cluster_bindings.visit(user, &mut each)?;
        if !namespace.is_empty()
            && let Some(index) = self.namespaces.get(namespace)
        {
            index.visit(user, &mut each)?;
        }
        ControlFlow::Continue(())
    }

    /// The bindings that apply to `user` in `namespace`, each once, in visiting order.
    fn matching(&self, user: &UserInfo, namespace: &str) -> Vec<&Binding> {
        let mut bindings = self.cluster_bindings.matching(user);
        if !namespace.is_empty()
            && let Some(index) = self.namespaces.get(namespace)
        {
            bindings.extend(index.matching(user));
        }
        bindings
    }

    /// `RulesFor`: every rule that applies to `user` in `namespace` (cluster-wide only when
    /// it is empty), and the errors resolving the bindings' roles. The rules found hold even
    /// with errors: RBAC only adds permissions.
    pub fn rules_for(
        &self,
        user: &UserInfo,
        namespace: &str,
    ) -> (Vec<PolicyRule>, Vec<RoleRefError>) {
        let mut rules = Vec::new();
        let mut errors = Vec::new();
        for binding in self.matching(user, namespace) {
            match &binding.rules {
                Ok(r) => rules.extend(r.iter().cloned()),
                Err(e) => errors.push(e.clone()),
            }
        }
        (rules, errors)
    }

    /// `RBACAuthorizer.Authorize`: Allow when a rule of a binding that applies allows the
    /// request, else NoOpinion, whose reason names the roles that could not be resolved
    /// (`RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`).
    pub fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        let mut unresolved = false;
        let allowed = self.visit_rules(attrs.user, attrs.namespace, |rules| match rules {
            Ok(rules) if rules.iter().any(|r| rule_allows(attrs, r)) => ControlFlow::Break(()),
            Ok(_) => ControlFlow::Continue(()),
            Err(_) => {
                unresolved = true;
                ControlFlow::Continue(())
            }
        });
        if allowed.is_break() {
            return Decision::Allow;
        }
        if !unresolved {
            return Decision::NoOpinion(String::new());
        }
        // The rare denial with errors: their messages in visiting order.
        let (_, errors) = self.rules_for(attrs.user, attrs.namespace);
        let messages = errors.iter().map(RoleRefError::lister_message).collect();
        Decision::NoOpinion(format!("RBAC: {}", aggregate(messages)))
    }
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or("")
}

fn namespace_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or("")
}

/// `appliesTo`: the index of the first of `subjects` that applies to `user`, for a binding
/// in `namespace` (empty for a ClusterRoleBinding). The snapshot's index is built to agree.
pub fn applies_to(user: &UserInfo, subjects: &[Subject], namespace: &str) -> Option<usize> {
    subjects.iter().position(|s| match s.kind.as_str() {
        "User" => user.name == s.name,
        "Group" => user.groups.contains(&s.name),
        "ServiceAccount" => {
            let ns = s
                .namespace
                .as_deref()
                .filter(|ns| !ns.is_empty())
                .unwrap_or(namespace);
            // serviceaccount.MatchesUsername, without building the name.
            !ns.is_empty()
                && user
                    .name
                    .strip_prefix(SERVICE_ACCOUNT_USER_PREFIX)
                    .and_then(|rest| rest.strip_prefix(ns))
                    .and_then(|rest| rest.strip_prefix(':'))
                    == Some(s.name.as_str())
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::rules::tests::{rule, url_rule};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn meta(name: &str, namespace: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: (!namespace.is_empty()).then(|| namespace.into()),
            ..Default::default()
        }
    }

    /// Upstream's test `newRule(verbs, groups, resources, urls)`: each a comma-separated list,
    /// split as Go splits (`""` is one empty string).
    fn new_rule(verbs: &str, groups: &str, resources: &str, urls: &str) -> PolicyRule {
        let split = |s: &str| s.split(',').map(str::to_string).collect::<Vec<_>>();
        PolicyRule {
            verbs: split(verbs),
            api_groups: Some(split(groups)),
            resources: Some(split(resources)),
            non_resource_urls: Some(split(urls)),
            resource_names: None,
        }
    }

    fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
        ClusterRole {
            metadata: meta(name, ""),
            rules: Some(rules),
            aggregation_rule: None,
        }
    }

    fn role(name: &str, namespace: &str, rules: Vec<PolicyRule>) -> Role {
        Role {
            metadata: meta(name, namespace),
            rules: Some(rules),
        }
    }

    /// Subjects as upstream's tests write them: `Kind:name`, or `ServiceAccount:ns/name`.
    fn subjects(specs: &[&str]) -> Option<Vec<Subject>> {
        Some(
            specs
                .iter()
                .map(|spec| {
                    let (kind, name) = spec.split_once(':').unwrap_or((spec, ""));
                    let (namespace, name) = match (kind, name.split_once('/')) {
                        ("ServiceAccount", Some((ns, n))) => (Some(ns.to_string()), n),
                        _ => (None, name),
                    };
                    Subject {
                        kind: kind.into(),
                        name: name.into(),
                        namespace,
                        api_group: None,
                    }
                })
                .collect(),
        )
    }

    fn role_ref(kind: &str, name: &str) -> RoleRef {
        RoleRef {
            api_group: RBAC_GROUP.into(),
            kind: kind.into(),
            name: name.into(),
        }
    }

    fn cluster_binding(name: &str, role: &str, subject_specs: &[&str]) -> ClusterRoleBinding {
        ClusterRoleBinding {
            metadata: meta(name, ""),
            role_ref: role_ref("ClusterRole", role),
            subjects: subjects(subject_specs),
        }
    }

    fn binding(
        name: &str,
        namespace: &str,
        kind: &str,
        role: &str,
        subject_specs: &[&str],
    ) -> RoleBinding {
        RoleBinding {
            metadata: meta(name, namespace),
            role_ref: role_ref(kind, role),
            subjects: subjects(subject_specs),
        }
    }

    /// Upstream's `defaultAttributes{user, groups, verb, resource, subresource, namespace,
    /// apiGroup}` (groups split on commas as Go splits).
    fn decide(
        snapshot: &RbacSnapshot,
        (user, groups, verb, resource, sub, ns, group): (&str, &str, &str, &str, &str, &str, &str),
    ) -> Decision {
        let user = UserInfo::new(user, groups.split(','));
        let attrs = Attributes::resource(&user, verb, ns, group, "", resource, sub, "");
        snapshot.authorize(&attrs)
    }

    type Case = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        &'static str,
    );

    /// Upstream's `TestAuthorizer` (rbac_test.go): each case's requests that must pass and
    /// those that must not.
    #[test]
    fn authorizer_as_upstream() {
        type PassFail = (RbacSnapshot, Vec<Case>, Vec<Case>);
        let pass_fail: Vec<PassFail> = vec![
            (
                RbacSnapshot::new(
                    &[],
                    &[binding(
                        "b",
                        "ns1",
                        "ClusterRole",
                        "admin",
                        &["User:admin", "Group:admins"],
                    )],
                    &[cluster_role("admin", vec![new_rule("*", "*", "*", "*")])],
                    &[],
                ),
                vec![
                    ("admin", "", "get", "Pods", "", "ns1", ""),
                    ("admin", "", "watch", "Pods", "", "ns1", ""),
                    ("admin", "group1", "watch", "Foobar", "", "ns1", ""),
                    ("joe", "admins", "watch", "Foobar", "", "ns1", ""),
                    ("joe", "group1,admins", "watch", "Foobar", "", "ns1", ""),
                ],
                vec![
                    ("admin", "", "GET", "Pods", "", "ns2", ""),
                    ("admin", "", "GET", "Nodes", "", "", ""),
                    ("admin", "admins", "GET", "Pods", "", "ns2", ""),
                    ("admin", "admins", "GET", "Nodes", "", "", ""),
                ],
            ),
            (
                RbacSnapshot::new(
                    &[],
                    &[binding(
                        "b",
                        "ns1",
                        "ClusterRole",
                        "admin",
                        &["User:admin", "Group:admins"],
                    )],
                    &[cluster_role("admin", vec![new_rule("*", "*", "pods", "*")])],
                    &[],
                ),
                vec![("admin", "", "get", "pods", "", "ns1", "")],
                vec![("admin", "", "get", "pods", "status", "ns1", "")],
            ),
            (
                RbacSnapshot::new(
                    &[],
                    &[binding(
                        "b",
                        "ns1",
                        "ClusterRole",
                        "admin",
                        &["User:admin", "Group:admins"],
                    )],
                    &[cluster_role(
                        "admin",
                        vec![
                            new_rule("*", "*", "pods/status", "*"),
                            new_rule("*", "*", "*/scale", "*"),
                        ],
                    )],
                    &[],
                ),
                vec![
                    ("admin", "", "get", "pods", "status", "ns1", ""),
                    ("admin", "", "get", "pods", "scale", "ns1", ""),
                    ("admin", "", "get", "deployments", "scale", "ns1", ""),
                    ("admin", "", "get", "anything", "scale", "ns1", ""),
                ],
                vec![("admin", "", "get", "pods", "", "ns1", "")],
            ),
        ];
        for (i, (snapshot, pass, fail)) in pass_fail.iter().enumerate() {
            for attrs in pass {
                assert_eq!(
                    decide(snapshot, *attrs),
                    Decision::Allow,
                    "case {i}: {attrs:?}"
                );
            }
            for attrs in fail {
                assert_ne!(
                    decide(snapshot, *attrs),
                    Decision::Allow,
                    "case {i}: {attrs:?}"
                );
            }
        }

        // The non-resource URL case.
        let snapshot = RbacSnapshot::new(
            &[],
            &[],
            &[
                cluster_role(
                    "non-resource-url-getter",
                    vec![new_rule("get", "", "", "/apis")],
                ),
                cluster_role("non-resource-url", vec![new_rule("*", "", "", "/apis")]),
                cluster_role(
                    "non-resource-url-prefix",
                    vec![new_rule("get", "", "", "/apis/*")],
                ),
            ],
            &[
                cluster_binding("a", "non-resource-url-getter", &["User:foo", "Group:bar"]),
                cluster_binding("b", "non-resource-url", &["User:admin", "Group:admin"]),
                cluster_binding(
                    "c",
                    "non-resource-url-prefix",
                    &["User:prefixed", "Group:prefixed"],
                ),
            ],
        );
        // (user name, group, verb, path)
        let path = |(name, group, verb, path): (&str, &str, &str, &str)| {
            let user = UserInfo::new(name, (!group.is_empty()).then_some(group));
            snapshot.authorize(&Attributes::non_resource(&user, verb, path))
        };
        for attrs in [
            ("foo", "", "get", "/apis"),
            ("", "bar", "get", "/apis"),
            ("admin", "", "get", "/apis"),
            ("", "admin", "get", "/apis"),
            ("admin", "", "watch", "/apis"),
            ("", "admin", "watch", "/apis"),
            ("prefixed", "", "get", "/apis/v1"),
            ("", "prefixed", "get", "/apis/v1"),
            ("prefixed", "", "get", "/apis/v1/foobar"),
            ("", "prefixed", "get", "/apis/v1/foorbar"),
        ] {
            assert_eq!(path(attrs), Decision::Allow, "{attrs:?}");
        }
        for attrs in [
            ("foo", "", "watch", "/apis"),
            ("", "bar", "watch", "/apis"),
            ("foo", "", "get", "/api/v1"),
            ("", "bar", "get", "/api/v1"),
            ("admin", "", "get", "/api/v1"),
            ("", "admin", "get", "/api/v1"),
            ("prefixed", "", "get", "/api/v1"),
            ("", "prefixed", "get", "/api/v1"),
        ] {
            assert_ne!(path(attrs), Decision::Allow, "{attrs:?}");
        }
    }

    /// Upstream's `TestDefaultRuleResolver` (rule_test.go).
    #[test]
    fn rules_for_as_upstream() {
        let read_pods = rule(&["GET", "WATCH"], &["v1"], &["pods"]);
        let read_services = rule(&["GET", "WATCH"], &["v1"], &["services"]);
        let write_nodes = rule(&["PUT", "CREATE", "UPDATE"], &["v1"], &["nodes"]);
        let admin = rule(&["*"], &["*"], &["*"]);
        let snapshot = RbacSnapshot::new(
            &[role(
                "readthings",
                "namespace1",
                vec![read_pods.clone(), read_services.clone()],
            )],
            &[binding(
                "",
                "namespace1",
                "Role",
                "readthings",
                &["User:foobar", "Group:group1"],
            )],
            &[
                cluster_role("cluster-admin", vec![admin.clone()]),
                cluster_role("write-nodes", vec![write_nodes]),
            ],
            &[cluster_binding(
                "",
                "cluster-admin",
                &["User:admin", "Group:admin"],
            )],
        );
        let cases: Vec<(UserInfo, &str, Vec<PolicyRule>)> = vec![
            (
                UserInfo::new("foobar", Vec::<String>::new()),
                "namespace1",
                vec![read_pods, read_services],
            ),
            (
                UserInfo::new("foobar", Vec::<String>::new()),
                "namespace2",
                vec![],
            ),
            // Without a namespace only cluster rules apply.
            (UserInfo::new("foobar", ["admin"]), "", vec![admin]),
            (UserInfo::default(), "", vec![]),
        ];
        for (user, namespace, want) in cases {
            assert_eq!(
                snapshot.rules_for(&user, namespace),
                (want, vec![]),
                "{user:?} {namespace}"
            );
        }
    }

    /// Upstream's `TestAppliesTo` (rule_test.go), with the index of the subject that applies.
    #[test]
    fn applies_to_as_upstream() {
        let user = |name: &str, groups: &[&str]| UserInfo::new(name, groups.iter().copied());
        // (subjects, user, namespace, the subject that applies, upstream's case name)
        type Case = (
            &'static [&'static str],
            UserInfo,
            &'static str,
            Option<usize>,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (
                &["User:foobar"],
                user("foobar", &[]),
                "",
                Some(0),
                "single subject that matches username",
            ),
            (
                &["User:barfoo", "User:foobar"],
                user("foobar", &[]),
                "",
                Some(1),
                "multiple subjects, one that matches username",
            ),
            (
                &["User:barfoo", "User:foobar"],
                user("zimzam", &[]),
                "",
                None,
                "multiple subjects, none that match username",
            ),
            (
                &["User:barfoo", "Group:foobar"],
                user("zimzam", &["foobar"]),
                "",
                Some(1),
                "multiple subjects, one that match group",
            ),
            (
                &["User:barfoo", "Group:foobar"],
                user("zimzam", &["foobar"]),
                "namespace1",
                Some(1),
                "multiple subjects, one that match group, should ignore namespace",
            ),
            (
                &[
                    "User:barfoo",
                    "Group:foobar",
                    "ServiceAccount:kube-system/default",
                ],
                user("system:serviceaccount:kube-system:default", &[]),
                "default",
                Some(2),
                "multiple subjects with a service account that matches",
            ),
            (
                &["User:*"],
                user("foobar", &[]),
                "default",
                None,
                "* user subject name doesn't match all users",
            ),
            (
                &["Group:system:authenticated", "Group:system:unauthenticated"],
                user("foobar", &["system:authenticated"]),
                "default",
                Some(0),
                "binding to all authenticated and unauthenticated subjects matches authenticated user",
            ),
            (
                &["Group:system:authenticated", "Group:system:unauthenticated"],
                user("system:anonymous", &["system:unauthenticated"]),
                "default",
                Some(1),
                "binding to all authenticated and unauthenticated subjects matches anonymous user",
            ),
        ];
        for (specs, user, namespace, want, name) in cases {
            let subjects = subjects(specs).unwrap_or_default();
            assert_eq!(applies_to(&user, &subjects, namespace), want, "{name}");
        }
    }

    /// A ServiceAccount subject's namespace defaults to its RoleBinding's; without one (in a
    /// ClusterRoleBinding) it matches nobody. Unknown kinds match nobody.
    #[test]
    fn service_account_subjects_and_their_namespace() {
        let reader = cluster_role("reader", vec![rule(&["get"], &[""], &["pods"])]);
        let snapshot = RbacSnapshot::new(
            &[],
            &[binding(
                "local",
                "team-a",
                "ClusterRole",
                "reader",
                &["ServiceAccount:robot"],
            )],
            &[reader],
            &[
                cluster_binding("global", "reader", &["ServiceAccount:kube-system/flannel"]),
                cluster_binding("nowhere", "reader", &["ServiceAccount:lost", "Robot:r2d2"]),
            ],
        );
        let may_get = |user: &str, ns: &str| {
            let user = UserInfo::new(user, ["system:serviceaccounts"]);
            snapshot.authorize(&Attributes::resource(
                &user, "get", ns, "", "v1", "pods", "", "p",
            )) == Decision::Allow
        };
        assert!(may_get("system:serviceaccount:team-a:robot", "team-a"));
        assert!(!may_get("system:serviceaccount:team-a:robot", "team-b"));
        assert!(!may_get("system:serviceaccount:team-b:robot", "team-a"));
        assert!(may_get(
            "system:serviceaccount:kube-system:flannel",
            "anywhere"
        ));
        assert!(may_get("system:serviceaccount:kube-system:flannel", ""));
        assert!(!may_get("system:serviceaccount::lost", "team-a"));
        assert!(!may_get("system:serviceaccount:team-a:lost", "team-a"));
        assert!(!may_get("r2d2", "team-a"));
    }

    /// The index finds exactly the bindings `applies_to` says apply, for every subject kind,
    /// user and scope combination of a small universe.
    #[test]
    fn index_agrees_with_applies_to() {
        let subject_specs: [&[&str]; 8] = [
            &["User:jane"],
            &["Group:dev"],
            &["ServiceAccount:robot"],
            &["ServiceAccount:team-a/robot"],
            &["User:system:serviceaccount:team-a:robot"],
            &["User:jane", "Group:dev", "User:jane"],
            &["Group:ops", "ServiceAccount:team-b/robot"],
            &[],
        ];
        let users = [
            UserInfo::new("jane", Vec::<String>::new()),
            UserInfo::new("bob", ["dev"]),
            UserInfo::new("jane", ["ops", "dev"]),
            UserInfo::new(
                "system:serviceaccount:team-a:robot",
                ["system:serviceaccounts"],
            ),
            UserInfo::new("system:serviceaccount:team-b:robot", Vec::<String>::new()),
            UserInfo::default(),
        ];
        for specs in subject_specs {
            for scope in ["", "team-a", "team-b"] {
                // One role per binding, named after the subjects, so a grant names its binding.
                let role = cluster_role("r", vec![rule(&["get"], &[""], &["pods"])]);
                let snapshot = if scope.is_empty() {
                    RbacSnapshot::new(&[], &[], &[role], &[cluster_binding("b", "r", specs)])
                } else {
                    RbacSnapshot::new(
                        &[],
                        &[binding("b", scope, "ClusterRole", "r", specs)],
                        &[role],
                        &[],
                    )
                };
                for user in &users {
                    for ns in ["", "team-a", "team-b"] {
                        let applies = (scope.is_empty() || scope == ns)
                            && applies_to(user, &subjects(specs).unwrap_or_default(), scope)
                                .is_some();
                        let attrs =
                            Attributes::resource(user, "get", ns, "", "v1", "pods", "", "p");
                        assert_eq!(
                            snapshot.authorize(&attrs) == Decision::Allow,
                            applies,
                            "{specs:?} in {scope:?}, {user:?} in {ns:?}"
                        );
                        let (rules, _) = snapshot.rules_for(user, ns);
                        assert_eq!(
                            rules.len(),
                            usize::from(applies),
                            "{specs:?} {user:?} {ns:?}"
                        );
                    }
                }
            }
        }
    }

    /// A binding to a missing role grants nothing and is the denial's reason (as the listers
    /// word it, each message once); a grant elsewhere still allows.
    #[test]
    fn unresolved_roles_are_the_reason_of_a_denial() {
        let snapshot = RbacSnapshot::new(
            &[],
            &[
                binding("x", "team-a", "Role", "gone", &["User:jane"]),
                binding("y", "team-a", "ClusterRole", "ghost", &["User:jane"]),
            ],
            &[cluster_role(
                "urls",
                vec![url_rule(&["get"], &["/healthz"])],
            )],
            &[
                cluster_binding("a", "ghost", &["User:jane"]),
                cluster_binding("b", "ghost", &["Group:dev"]),
                cluster_binding("c", "urls", &["Group:dev"]),
            ],
        );
        let jane = UserInfo::new("jane", ["dev"]);
        let pods = |ns| Attributes::resource(&jane, "get", ns, "", "v1", "pods", "", "p");
        assert_eq!(
            snapshot.authorize(&pods("")),
            Decision::NoOpinion(
                r#"RBAC: clusterrole.rbac.authorization.k8s.io "ghost" not found"#.into()
            )
        );
        assert_eq!(
            snapshot.authorize(&pods("team-a")),
            Decision::NoOpinion(
                r#"RBAC: [clusterrole.rbac.authorization.k8s.io "ghost" not found, role.rbac.authorization.k8s.io "gone" not found]"#.into()
            )
        );
        assert_eq!(
            snapshot.authorize(&Attributes::non_resource(&jane, "get", "/healthz")),
            Decision::Allow
        );
        let bob = UserInfo::new("bob", ["ops"]);
        assert_eq!(
            snapshot.authorize(&Attributes::resource(
                &bob, "get", "team-a", "", "v1", "pods", "", "p"
            )),
            Decision::NoOpinion(String::new())
        );
        let (rules, errors) = snapshot.rules_for(&jane, "team-a");
        assert_eq!(rules, vec![url_rule(&["get"], &["/healthz"])]);
        assert_eq!(errors.len(), 4, "{errors:?}");
    }

    #[test]
    fn role_references_resolve_in_the_bindings_namespace() {
        let snapshot = RbacSnapshot::new(
            &[role("r", "team-a", vec![rule(&["get"], &[""], &["pods"])])],
            &[],
            &[cluster_role("c", vec![])],
            &[],
        );
        assert_eq!(
            snapshot
                .role_reference_rules(&role_ref("Role", "r"), "team-a")
                .map(|r| r.len()),
            Ok(1)
        );
        assert_eq!(
            snapshot
                .role_reference_rules(&role_ref("ClusterRole", "c"), "team-a")
                .map(|r| r.len()),
            Ok(0)
        );
        let messages = |kind: &str, name: &str, ns: &str| {
            let e = snapshot
                .role_reference_rules(&role_ref(kind, name), ns)
                .unwrap_err();
            (e.lister_message(), e.registry_message())
        };
        assert_eq!(
            messages("Role", "r", "team-b"),
            (
                r#"role.rbac.authorization.k8s.io "r" not found"#.into(),
                r#"roles.rbac.authorization.k8s.io "r" not found"#.into()
            )
        );
        assert_eq!(
            messages("ClusterRole", "x", ""),
            (
                r#"clusterrole.rbac.authorization.k8s.io "x" not found"#.into(),
                r#"clusterroles.rbac.authorization.k8s.io "x" not found"#.into()
            )
        );
        assert_eq!(messages("Role", "r", "").1, "Namespace parameter required.");
        assert_eq!(
            messages("Policy", "p", "team-a"),
            (
                r#"unsupported role reference kind: "Policy""#.into(),
                r#"unsupported role reference kind: "Policy""#.into()
            )
        );
    }
}
