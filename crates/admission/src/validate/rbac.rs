//! Role, ClusterRole, RoleBinding and ClusterRoleBinding validation (`pkg/apis/rbac/validation`:
//! `ValidateRole`, `ValidateClusterRole`, `ValidatePolicyRule`, `ValidateRoleBinding`,
//! `ValidateClusterRoleBinding`, `ValidateRoleBindingSubject` and the updates), and the v1
//! defaulting of bindings (`pkg/apis/rbac/v1/defaults.go`).

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::apps::label_selector;
use super::meta::{name_is_dns_subdomain, object_meta, object_meta_update};
use crate::FieldError;

/// The API group of the RBAC kinds (`rbac.GroupName`).
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// `ValidateRBACName` (`path.IsValidPathSegmentName`): role and binding names are path segments,
/// so they may not be `.` or `..` and may not contain `/` or `%`; anything else goes.
pub fn rbac_name(name: &str, _prefix: bool) -> Vec<String> {
    for illegal in [".", ".."] {
        if name == illegal {
            return vec![format!("may not be '{illegal}'")];
        }
    }
    ["/", "%"]
        .iter()
        .filter(|c| name.contains(*c))
        .map(|c| format!("may not contain '{c}'"))
        .collect()
}

fn len<T>(v: &Option<Vec<T>>) -> usize {
    v.as_ref().map_or(0, Vec::len)
}

/// `ValidatePolicyRule` at `path` (`rules[i]`).
pub fn policy_rule(rule: &PolicyRule, namespaced: bool, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if rule.verbs.is_empty() {
        errs.push(FieldError::required(
            &format!("{path}.verbs"),
            "verbs must contain at least one value",
        ));
    }
    if let Some(urls) = rule.non_resource_urls.as_ref().filter(|u| !u.is_empty()) {
        let field = format!("{path}.nonResourceURLs");
        if namespaced {
            errs.push(FieldError::invalid(
                &field,
                serde_json::json!(urls),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if len(&rule.api_groups) > 0 || len(&rule.resources) > 0 || len(&rule.resource_names) > 0 {
            errs.push(FieldError::invalid(
                &field,
                serde_json::json!(urls),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if len(&rule.api_groups) == 0 {
        errs.push(FieldError::required(
            &format!("{path}.apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if len(&rule.resources) == 0 {
        errs.push(FieldError::required(
            &format!("{path}.resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errs
}

fn rules(rules: &Option<Vec<PolicyRule>>, namespaced: bool) -> Vec<FieldError> {
    rules
        .iter()
        .flatten()
        .enumerate()
        .flat_map(|(i, r)| policy_rule(r, namespaced, &format!("rules[{i}]")))
        .collect()
}

/// `ValidateRole`: metadata (a path-segment name) and each rule.
pub fn role(r: &Role) -> Vec<FieldError> {
    let mut errs = object_meta(&r.metadata, true, rbac_name);
    errs.extend(rules(&r.rules, true));
    errs
}

/// `ValidateRoleUpdate`: the create rules, then the metadata update rules.
pub fn role_update(new: &Role, old: &Role) -> Vec<FieldError> {
    let mut errs = role(new);
    errs.extend(object_meta_update(&new.metadata, &old.metadata));
    errs
}

/// `ValidateClusterRole`: metadata, each rule, and an `aggregationRule`'s selectors (at least
/// one, each a valid label selector).
pub fn cluster_role(r: &ClusterRole) -> Vec<FieldError> {
    let mut errs = object_meta(&r.metadata, false, rbac_name);
    errs.extend(rules(&r.rules, false));
    if let Some(agg) = &r.aggregation_rule {
        let selectors = agg.cluster_role_selectors.as_deref().unwrap_or(&[]);
        if selectors.is_empty() {
            errs.push(FieldError::required(
                "aggregationRule.clusterRoleSelectors",
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, sel) in selectors.iter().enumerate() {
            let path = format!("aggregationRule.clusterRoleSelectors[{i}]");
            errs.extend(label_selector(sel, &path));
            if pernode_core::labels::from_k8s(sel).is_err() {
                // Upstream reports the (nil) selector the failed conversion returned: "null".
                errs.push(FieldError::invalid(
                    &path,
                    "null",
                    "invalid label selector.",
                ));
            }
        }
    }
    errs
}

/// `ValidateClusterRoleUpdate`: the create rules, then the metadata update rules.
pub fn cluster_role_update(new: &ClusterRole, old: &ClusterRole) -> Vec<FieldError> {
    let mut errs = cluster_role(new);
    errs.extend(object_meta_update(&new.metadata, &old.metadata));
    errs
}

/// The roleRef and subject checks both binding kinds share.
fn binding(
    role_ref: &RoleRef,
    subjects: &Option<Vec<Subject>>,
    namespaced: bool,
    kinds: &[&str],
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if role_ref.api_group != RBAC_GROUP {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            role_ref.api_group.as_str(),
            &[RBAC_GROUP],
        ));
    }
    if !kinds.contains(&role_ref.kind.as_str()) {
        errs.push(FieldError::not_supported(
            "roleRef.kind",
            role_ref.kind.as_str(),
            kinds,
        ));
    }
    if role_ref.name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        for msg in rbac_name(&role_ref.name, false) {
            errs.push(FieldError::invalid(
                "roleRef.name",
                role_ref.name.as_str(),
                &msg,
            ));
        }
    }
    for (i, s) in subjects.iter().flatten().enumerate() {
        errs.extend(subject(s, namespaced, &format!("subjects[{i}]")));
    }
    errs
}

/// `ValidateRoleBindingSubject` at `path` (`subjects[i]`).
pub fn subject(s: &Subject, namespaced: bool, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let api_group = s.api_group.as_deref().unwrap_or("");
    if s.name.is_empty() {
        errs.push(FieldError::required(&format!("{path}.name"), ""));
    }
    match s.kind.as_str() {
        "ServiceAccount" => {
            if !s.name.is_empty() {
                for msg in name_is_dns_subdomain(&s.name, false) {
                    errs.push(FieldError::invalid(
                        &format!("{path}.name"),
                        s.name.as_str(),
                        &msg,
                    ));
                }
            }
            if !api_group.is_empty() {
                errs.push(FieldError::not_supported(
                    &format!("{path}.apiGroup"),
                    api_group,
                    &[""],
                ));
            }
            if !namespaced && s.namespace.as_deref().unwrap_or("").is_empty() {
                errs.push(FieldError::required(&format!("{path}.namespace"), ""));
            }
        }
        "User" | "Group" => {
            if api_group != RBAC_GROUP {
                errs.push(FieldError::not_supported(
                    &format!("{path}.apiGroup"),
                    api_group,
                    &[RBAC_GROUP],
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            &format!("{path}.kind"),
            other,
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errs
}

/// `%#v` of the internal `rbac.RoleRef`, the bad value of "cannot change roleRef".
fn go_role_ref(r: &RoleRef) -> String {
    format!(
        "rbac.RoleRef{{APIGroup:{}, Kind:{}, Name:{}}}",
        crate::go_quote(&r.api_group),
        crate::go_quote(&r.kind),
        crate::go_quote(&r.name)
    )
}

fn role_ref_unchanged(new: &RoleRef, old: &RoleRef) -> Vec<FieldError> {
    if new == old {
        return vec![];
    }
    vec![FieldError::invalid_go(
        "roleRef",
        serde_json::to_value(new).unwrap_or_default(),
        go_role_ref(new),
        "cannot change roleRef",
    )]
}

/// `ValidateRoleBinding`: metadata, a roleRef to a Role or ClusterRole of this group, subjects.
pub fn role_binding(b: &RoleBinding) -> Vec<FieldError> {
    let mut errs = object_meta(&b.metadata, true, rbac_name);
    errs.extend(binding(
        &b.role_ref,
        &b.subjects,
        true,
        &["Role", "ClusterRole"],
    ));
    errs
}

/// `ValidateRoleBindingUpdate`: the create rules, the metadata update rules, and an unchanged
/// roleRef.
pub fn role_binding_update(new: &RoleBinding, old: &RoleBinding) -> Vec<FieldError> {
    let mut errs = role_binding(new);
    errs.extend(object_meta_update(&new.metadata, &old.metadata));
    errs.extend(role_ref_unchanged(&new.role_ref, &old.role_ref));
    errs
}

/// `ValidateClusterRoleBinding`: metadata, a roleRef to a ClusterRole, subjects (service
/// accounts with a namespace).
pub fn cluster_role_binding(b: &ClusterRoleBinding) -> Vec<FieldError> {
    let mut errs = object_meta(&b.metadata, false, rbac_name);
    errs.extend(binding(&b.role_ref, &b.subjects, false, &["ClusterRole"]));
    errs
}

/// `ValidateClusterRoleBindingUpdate`.
pub fn cluster_role_binding_update(
    new: &ClusterRoleBinding,
    old: &ClusterRoleBinding,
) -> Vec<FieldError> {
    let mut errs = cluster_role_binding(new);
    errs.extend(object_meta_update(&new.metadata, &old.metadata));
    errs.extend(role_ref_unchanged(&new.role_ref, &old.role_ref));
    errs
}

/// `SetDefaults_RoleBinding` / `SetDefaults_ClusterRoleBinding` and `SetDefaults_Subject`: an
/// empty roleRef apiGroup is this group; a User or Group subject without apiGroup is in it too.
pub fn default_binding(role_ref: &mut RoleRef, subjects: &mut Option<Vec<Subject>>) {
    if role_ref.api_group.is_empty() {
        role_ref.api_group = RBAC_GROUP.to_string();
    }
    for s in subjects.iter_mut().flatten() {
        if s.api_group.as_deref().unwrap_or("").is_empty()
            && matches!(s.kind.as_str(), "User" | "Group")
        {
            s.api_group = Some(RBAC_GROUP.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::rbac::v1::AggregationRule;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
        LabelSelector, LabelSelectorRequirement, ObjectMeta,
    };

    fn meta(name: &str, ns: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: ns.map(Into::into),
            resource_version: Some("1".into()),
            ..Default::default()
        }
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn strings(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], urls: &[&str]) -> PolicyRule {
        let opt = |v: &[&str]| if v.is_empty() { None } else { strings(v) };
        PolicyRule {
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            api_groups: opt(groups),
            resources: opt(resources),
            non_resource_urls: opt(urls),
            resource_names: None,
        }
    }

    #[test]
    fn names_are_path_segments() {
        assert_eq!(rbac_name(".", false), ["may not be '.'"]);
        assert_eq!(rbac_name("..", false), ["may not be '..'"]);
        assert_eq!(
            rbac_name("a/b%c", false),
            ["may not contain '/'", "may not contain '%'"]
        );
        assert!(rbac_name("system:controller:Foo_bar", false).is_empty());
        let r = Role {
            metadata: meta("a/b", Some("ns")),
            rules: None,
        };
        assert_eq!(
            messages(&role(&r)),
            ["metadata.name: Invalid value: \"a/b\": may not contain '/'"]
        );
    }

    #[test]
    fn policy_rules_as_upstream() {
        let r = Role {
            metadata: meta("r", Some("ns")),
            rules: Some(vec![
                rule(&[], &[""], &["pods"], &[]),
                rule(&["get"], &[], &[], &[]),
                rule(&["get"], &[], &[], &["/healthz"]),
                rule(&["get"], &[""], &["pods"], &["/healthz", "/version"]),
            ]),
        };
        assert_eq!(
            messages(&role(&r)),
            [
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[1].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[1].resources: Required value: resource rules must supply at least one resource",
                "rules[2].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
                "rules[3].nonResourceURLs: Invalid value: []string{\"/healthz\", \"/version\"}: namespaced rules cannot apply to non-resource URLs",
                "rules[3].nonResourceURLs: Invalid value: []string{\"/healthz\", \"/version\"}: rules cannot apply to both regular resources and non-resource URLs",
            ]
        );
        // A cluster role may hold non-resource URLs, but not mixed with resources.
        let c = ClusterRole {
            metadata: meta("c", None),
            rules: Some(vec![
                rule(&["get"], &[], &[], &["/healthz"]),
                rule(&["*"], &["*"], &["*"], &[]),
            ]),
            aggregation_rule: None,
        };
        assert!(cluster_role(&c).is_empty(), "{:?}", cluster_role(&c));
        let mut ns = c.clone();
        ns.metadata.namespace = Some("x".into());
        assert_eq!(
            messages(&cluster_role(&ns)),
            ["metadata.namespace: Forbidden: not allowed on this type"]
        );
    }

    #[test]
    fn aggregation_rules_need_valid_selectors() {
        let c = |selectors: Option<Vec<LabelSelector>>| ClusterRole {
            metadata: meta("c", None),
            rules: None,
            aggregation_rule: Some(AggregationRule {
                cluster_role_selectors: selectors,
            }),
        };
        assert_eq!(
            messages(&cluster_role(&c(None))),
            [
                "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil"
            ]
        );
        let bad = LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "k".into(),
                operator: "Bogus".into(),
                values: None,
            }]),
            match_labels: None,
        };
        assert_eq!(
            messages(&cluster_role(&c(Some(vec![bad])))),
            [
                "aggregationRule.clusterRoleSelectors[0].matchExpressions[0].operator: Invalid value: \"Bogus\": not a valid selector operator",
                "aggregationRule.clusterRoleSelectors[0]: Invalid value: \"null\": invalid label selector.",
            ]
        );
        let good = LabelSelector {
            match_labels: Some([("rbac.example.com/aggregate".into(), "true".into())].into()),
            match_expressions: None,
        };
        assert!(cluster_role(&c(Some(vec![good]))).is_empty());
    }

    fn subject_of(kind: &str, name: &str, group: Option<&str>, ns: Option<&str>) -> Subject {
        Subject {
            kind: kind.into(),
            name: name.into(),
            api_group: group.map(Into::into),
            namespace: ns.map(Into::into),
        }
    }

    #[test]
    fn bindings_check_role_ref_and_subjects() {
        let b = RoleBinding {
            metadata: meta("b", Some("ns")),
            role_ref: RoleRef {
                api_group: "example.com".into(),
                kind: "Foo".into(),
                name: "..".into(),
            },
            subjects: Some(vec![
                subject_of(
                    "ServiceAccount",
                    "Not_DNS",
                    Some("rbac.authorization.k8s.io"),
                    None,
                ),
                subject_of("User", "", Some("example.com"), None),
                subject_of("Robot", "r2", None, None),
            ]),
        };
        assert_eq!(
            messages(&role_binding(&b)),
            [
                "roleRef.apiGroup: Unsupported value: \"example.com\": supported values: \"rbac.authorization.k8s.io\"",
                "roleRef.kind: Unsupported value: \"Foo\": supported values: \"Role\", \"ClusterRole\"",
                "roleRef.name: Invalid value: \"..\": may not be '..'",
                "subjects[0].name: Invalid value: \"Not_DNS\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                "subjects[0].apiGroup: Unsupported value: \"rbac.authorization.k8s.io\": supported values: \"\"",
                "subjects[1].name: Required value",
                "subjects[1].apiGroup: Unsupported value: \"example.com\": supported values: \"rbac.authorization.k8s.io\"",
                "subjects[2].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\"",
            ]
        );
        // A cluster binding only refers to cluster roles, and its service accounts need a
        // namespace.
        let cb = ClusterRoleBinding {
            metadata: meta("cb", None),
            role_ref: RoleRef {
                api_group: RBAC_GROUP.into(),
                kind: "Role".into(),
                name: "".into(),
            },
            subjects: Some(vec![subject_of("ServiceAccount", "sa", None, None)]),
        };
        assert_eq!(
            messages(&cluster_role_binding(&cb)),
            [
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "roleRef.name: Required value",
                "subjects[0].namespace: Required value",
            ]
        );
    }

    #[test]
    fn role_ref_is_immutable() {
        let old = ClusterRoleBinding {
            metadata: meta("cb", None),
            role_ref: RoleRef {
                api_group: RBAC_GROUP.into(),
                kind: "ClusterRole".into(),
                name: "view".into(),
            },
            subjects: None,
        };
        let mut new = old.clone();
        new.role_ref.name = "edit".into();
        assert_eq!(
            messages(&cluster_role_binding_update(&new, &old)),
            [
                "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef"
            ]
        );
        assert!(cluster_role_binding_update(&old, &old).is_empty());
        let rb = |name: &str| RoleBinding {
            metadata: meta("b", Some("ns")),
            role_ref: RoleRef {
                api_group: RBAC_GROUP.into(),
                kind: "Role".into(),
                name: name.into(),
            },
            subjects: None,
        };
        assert_eq!(messages(&role_binding_update(&rb("b"), &rb("a"))).len(), 1);
    }

    #[test]
    fn bindings_default_their_groups() {
        let mut role_ref = RoleRef {
            api_group: String::new(),
            kind: "ClusterRole".into(),
            name: "view".into(),
        };
        let mut subjects = Some(vec![
            subject_of("User", "u", None, None),
            subject_of("Group", "g", Some(""), None),
            subject_of("ServiceAccount", "s", None, Some("ns")),
        ]);
        default_binding(&mut role_ref, &mut subjects);
        assert_eq!(role_ref.api_group, RBAC_GROUP);
        let groups: Vec<_> = subjects
            .iter()
            .flatten()
            .map(|s| s.api_group.clone())
            .collect();
        assert_eq!(
            groups,
            [Some(RBAC_GROUP.into()), Some(RBAC_GROUP.into()), None]
        );
    }
}
