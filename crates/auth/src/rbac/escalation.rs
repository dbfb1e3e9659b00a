//! Escalation prevention: whether one set of rules covers another (upstream's
//! `component-helpers/auth/rbac/validation.Covers`, with `BreakdownRule` and `ruleCovers`),
//! `CompactRules`, and `ConfirmNoEscalation` (pkg/registry/rbac/validation/rule.go), which a
//! write of a role or binding by a user who may neither `escalate` nor `bind` must pass: the
//! rules it grants must be covered by the user's own in that namespace.
//!
//! Coverage breaks the servant rules down into atoms (one group, resource, verb and name, or
//! one URL and verb) and looks for an owner rule covering each; atoms are borrowed, so only
//! the uncovered ones are built as rules.

use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::PolicyRule;
use pernode_core::goquote::quote;

use super::rules::{API_GROUP_ALL, RESOURCE_ALL, VERB_ALL, compact_string, list, quote_list};
use super::snapshot::{RbacSnapshot, RoleRefError, aggregate};
use crate::user::UserInfo;

/// One tuple of a broken-down rule.
#[derive(Debug, Clone, Copy)]
enum Atom<'a> {
    Resource {
        group: &'a str,
        resource: &'a str,
        verb: &'a str,
        name: Option<&'a str>,
    },
    Url {
        url: &'a str,
        verb: &'a str,
    },
}

impl Atom<'_> {
    fn to_rule(self) -> PolicyRule {
        let one = |s: &str| Some(vec![s.to_string()]);
        match self {
            Atom::Resource {
                group,
                resource,
                verb,
                name,
            } => PolicyRule {
                api_groups: one(group),
                resources: one(resource),
                verbs: vec![verb.to_string()],
                resource_names: name.and_then(one),
                non_resource_urls: None,
            },
            Atom::Url { url, verb } => PolicyRule {
                non_resource_urls: one(url),
                verbs: vec![verb.to_string()],
                ..Default::default()
            },
        }
    }
}

/// Calls `f` with each atom of `rule`, in upstream's order: group × resource × verb (×
/// name), then URL × verb.
fn for_each_atom<'a>(rule: &'a PolicyRule, mut f: impl FnMut(Atom<'a>)) {
    let names = list(&rule.resource_names);
    for group in list(&rule.api_groups) {
        for resource in list(&rule.resources) {
            for verb in &rule.verbs {
                let atom = |name| Atom::Resource {
                    group,
                    resource,
                    verb,
                    name,
                };
                if names.is_empty() {
                    f(atom(None));
                } else {
                    for name in names {
                        f(atom(Some(name.as_str())));
                    }
                }
            }
        }
    }
    for url in list(&rule.non_resource_urls) {
        for verb in &rule.verbs {
            f(Atom::Url { url, verb });
        }
    }
}

/// `BreakdownRule`: an equivalent list of rules, each with at most one verb, group,
/// resource and name, or one URL and verb.
pub fn breakdown_rule(rule: &PolicyRule) -> Vec<PolicyRule> {
    let mut out = Vec::new();
    for_each_atom(rule, |atom| out.push(atom.to_rule()));
    out
}

fn has(set: &[String], s: &str) -> bool {
    set.iter().any(|x| x == s)
}

/// `nonResourceURLCovers`: the same path, or a prefix ending in stars.
pub fn non_resource_url_covers(owner: &str, requested: &str) -> bool {
    owner == requested
        || (owner.ends_with('*') && requested.starts_with(owner.trim_end_matches('*')))
}

/// `ruleCovers` of one atom: every part of it is allowed by `owner` (a list the atom does
/// not have, such as the URLs of a resource atom, is covered by any owner, as upstream's
/// `hasAll` of an empty list).
fn rule_covers(owner: &PolicyRule, atom: Atom<'_>) -> bool {
    let verb = match atom {
        Atom::Resource { verb, .. } | Atom::Url { verb, .. } => verb,
    };
    if !(has(&owner.verbs, VERB_ALL) || has(&owner.verbs, verb)) {
        return false;
    }
    let owner_names = list(&owner.resource_names);
    match atom {
        Atom::Resource {
            group,
            resource,
            name,
            ..
        } => {
            let groups = list(&owner.api_groups);
            let resources = list(&owner.resources);
            // `resourceCoversAll`: `*`, the resource itself, or `*/<subresource>`.
            let resource_covered = has(resources, RESOURCE_ALL)
                || has(resources, resource)
                || resource.split_once('/').is_some_and(|(_, sub)| {
                    resources.iter().any(|r| r.strip_prefix("*/") == Some(sub))
                });
            let name_covered = match name {
                None => owner_names.is_empty(),
                Some(name) => owner_names.is_empty() || has(owner_names, name),
            };
            (has(groups, API_GROUP_ALL) || has(groups, group)) && resource_covered && name_covered
        }
        Atom::Url { url, .. } => {
            list(&owner.non_resource_urls)
                .iter()
                .any(|o| non_resource_url_covers(o, url))
                && owner_names.is_empty()
        }
    }
}

/// `Covers`: whether `owner` allows everything `servant` does, and the broken-down servant
/// rules it does not cover.
pub fn covers(owner: &[PolicyRule], servant: &[PolicyRule]) -> (bool, Vec<PolicyRule>) {
    let mut uncovered = Vec::new();
    for rule in servant {
        for_each_atom(rule, |atom| {
            if !owner.iter().any(|o| rule_covers(o, atom)) {
                uncovered.push(atom.to_rule());
            }
        });
    }
    (uncovered.is_empty(), uncovered)
}

/// `CompactRules`: rules naming one group, one resource, at most one name and nothing but
/// verbs are merged per group, resource and name (their verbs concatenated, duplicates kept);
/// the others stay as they are, first.
pub fn compact_rules(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut compacted = Vec::with_capacity(rules.len());
    let mut simple: Vec<PolicyRule> = Vec::new();
    for rule in rules {
        let is_simple = list(&rule.api_groups).len() == 1
            && list(&rule.resources).len() == 1
            && list(&rule.resource_names).len() <= 1
            && list(&rule.non_resource_urls).is_empty();
        if !is_simple {
            compacted.push(rule);
            continue;
        }
        let same = simple.iter_mut().find(|s| {
            list(&s.api_groups) == list(&rule.api_groups)
                && list(&s.resources) == list(&rule.resources)
                && list(&s.resource_names) == list(&rule.resource_names)
        });
        match same {
            Some(existing) => existing.verbs.extend(rule.verbs),
            None => simple.push(rule),
        }
    }
    compacted.extend(simple);
    compacted
}

/// What setting an aggregation rule needs: `*` on everything (upstream's `fullAuthority`).
pub fn full_authority() -> Vec<PolicyRule> {
    let all = || Some(vec!["*".to_string()]);
    vec![
        PolicyRule {
            verbs: vec!["*".to_string()],
            api_groups: all(),
            resources: all(),
            ..Default::default()
        },
        PolicyRule {
            verbs: vec!["*".to_string()],
            non_resource_urls: all(),
            ..Default::default()
        },
    ]
}

impl RbacSnapshot {
    /// `ConfirmNoEscalation`: `Ok` when `user`'s rules in `namespace` (cluster-wide only when
    /// empty) cover `rules`; else upstream's message, the missing rules compacted, printed
    /// one per line and sorted:
    ///
    /// ```text
    /// user "jane" (groups=["dev" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:
    /// {APIGroups:["apps"], Resources:["daemonsets"], Verbs:["create"]}
    /// ```
    ///
    /// followed by `; resolution errors: [...]` when some of the user's bindings refer to
    /// missing roles (named as the registry names them, which is what upstream reads here).
    pub fn confirm_no_escalation(
        &self,
        user: &UserInfo,
        rules: &[PolicyRule],
        namespace: &str,
    ) -> Result<(), String> {
        let (owner, errors) = self.rules_for(user, namespace);
        let (covered, missing) = covers(&owner, rules);
        if covered {
            return Ok(());
        }
        let descriptions: BTreeSet<String> =
            compact_rules(missing).iter().map(compact_string).collect();
        let mut message = format!(
            "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
            quote(&user.name),
            quote_list(&user.groups),
            descriptions.into_iter().collect::<Vec<_>>().join("\n")
        );
        if !errors.is_empty() {
            let messages = errors.iter().map(RoleRefError::registry_message).collect();
            // `%v` of a one-element `[]error` holding the aggregate.
            message.push_str(&format!("; resolution errors: [{}]", aggregate(messages)));
        }
        Err(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rbac::rules::tests::{rule, url_rule};
    use crate::user::UserInfo;

    /// A rule with these lists (empty ones left out).
    fn pr(
        groups: &[&str],
        verbs: &[&str],
        resources: &[&str],
        names: &[&str],
        urls: &[&str],
    ) -> PolicyRule {
        let opt = |v: &[&str]| (!v.is_empty()).then(|| v.iter().map(|s| s.to_string()).collect());
        PolicyRule {
            api_groups: opt(groups),
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            resources: opt(resources),
            resource_names: opt(names),
            non_resource_urls: opt(urls),
        }
    }

    fn res(groups: &[&str], verbs: &[&str], resources: &[&str]) -> PolicyRule {
        pr(groups, verbs, resources, &[], &[])
    }

    /// Upstream's policy_comparator_test.go, case for case: (name, owner, servant, the
    /// uncovered rules, in any order).
    #[test]
    fn covers_as_upstream() {
        // (name, owner, servant, uncovered)
        type Case = (
            &'static str,
            Vec<PolicyRule>,
            Vec<PolicyRule>,
            Vec<PolicyRule>,
        );
        let cases: Vec<Case> = vec![
            (
                "ExactMatch",
                vec![res(&["v1"], &["get"], &["builds"])],
                vec![res(&["v1"], &["get"], &["builds"])],
                vec![],
            ),
            (
                "SubresourceWildcard",
                vec![res(&["v1"], &["get"], &["*/scale"])],
                vec![res(&["v1"], &["get"], &["foo/scale"])],
                vec![],
            ),
            (
                "MultipleRulesCoveringSingleRule",
                vec![
                    res(&["v1"], &["delete"], &["deployments"]),
                    res(&["v1"], &["delete"], &["builds"]),
                    res(&["v1"], &["update"], &["builds", "deployments"]),
                ],
                vec![res(
                    &["v1"],
                    &["delete", "update"],
                    &["builds", "deployments"],
                )],
                vec![],
            ),
            (
                "MultipleAPIGroupsCoveringSingleRule",
                vec![
                    res(&["group1"], &["delete"], &["deployments"]),
                    res(&["group1"], &["delete"], &["builds"]),
                    res(&["group1"], &["update"], &["builds", "deployments"]),
                    res(&["group2"], &["delete"], &["deployments"]),
                    res(&["group2"], &["delete"], &["builds"]),
                    res(&["group2"], &["update"], &["builds", "deployments"]),
                ],
                vec![res(
                    &["group1", "group2"],
                    &["delete", "update"],
                    &["builds", "deployments"],
                )],
                vec![],
            ),
            (
                "SingleAPIGroupsCoveringMultiple",
                vec![res(
                    &["group1", "group2"],
                    &["delete", "update"],
                    &["builds", "deployments"],
                )],
                vec![
                    res(&["group1"], &["delete"], &["deployments"]),
                    res(&["group1"], &["delete"], &["builds"]),
                    res(&["group1"], &["update"], &["builds", "deployments"]),
                    res(&["group2"], &["delete"], &["deployments"]),
                    res(&["group2"], &["delete"], &["builds"]),
                    res(&["group2"], &["update"], &["builds", "deployments"]),
                ],
                vec![],
            ),
            (
                "MultipleRulesMissingSingleVerbResourceCombination",
                vec![
                    res(&["v1"], &["delete", "update"], &["builds", "deployments"]),
                    res(&["v1"], &["delete"], &["pods"]),
                ],
                vec![res(
                    &["v1"],
                    &["delete", "update"],
                    &["builds", "deployments", "pods"],
                )],
                vec![res(&["v1"], &["update"], &["pods"])],
            ),
            (
                "APIGroupStarCoveringMultiple",
                vec![res(&["*"], &["get"], &["roles"])],
                vec![res(&["group1", "group2"], &["get"], &["roles"])],
                vec![],
            ),
            (
                "EnumerationNotCoveringAPIGroupStar",
                vec![res(&["dummy-group"], &["get"], &["roles"])],
                vec![res(&["*"], &["get"], &["roles"])],
                vec![res(&["*"], &["get"], &["roles"])],
            ),
            (
                "APIGroupStarCoveringStar",
                vec![res(&["*"], &["get"], &["roles"])],
                vec![res(&["*"], &["get"], &["roles"])],
                vec![],
            ),
            (
                "VerbStarCoveringMultiple",
                vec![res(&["v1"], &["*"], &["roles"])],
                vec![res(&["v1"], &["watch", "list"], &["roles"])],
                vec![],
            ),
            (
                "EnumerationNotCoveringVerbStar",
                vec![res(
                    &["v1"],
                    &["get", "list", "watch", "create", "update", "delete", "exec"],
                    &["roles"],
                )],
                vec![res(&["v1"], &["*"], &["roles"])],
                vec![res(&["v1"], &["*"], &["roles"])],
            ),
            (
                "VerbStarCoveringStar",
                vec![res(&["v1"], &["*"], &["roles"])],
                vec![res(&["v1"], &["*"], &["roles"])],
                vec![],
            ),
            (
                "ResourceStarCoveringMultiple",
                vec![res(&["v1"], &["get"], &["*"])],
                vec![res(&["v1"], &["get"], &["resourcegroup:deployments"])],
                vec![],
            ),
            (
                "EnumerationNotCoveringResourceStar",
                vec![res(
                    &["v1"],
                    &["get"],
                    &["roles", "resourcegroup:deployments"],
                )],
                vec![res(&["v1"], &["get"], &["*"])],
                vec![res(&["v1"], &["get"], &["*"])],
            ),
            (
                "ResourceStarCoveringStar",
                vec![res(&["v1"], &["get"], &["*"])],
                vec![res(&["v1"], &["get"], &["*"])],
                vec![],
            ),
            (
                "ResourceNameEmptyCoveringMultiple",
                vec![pr(&["v1"], &["get"], &["pods"], &[], &[])],
                vec![pr(&["v1"], &["get"], &["pods"], &["foo", "bar"], &[])],
                vec![],
            ),
            (
                "EnumerationNotCoveringResourceNameEmpty",
                vec![pr(&["v1"], &["get"], &["pods"], &["foo", "bar"], &[])],
                vec![pr(&["v1"], &["get"], &["pods"], &[], &[])],
                vec![res(&["v1"], &["get"], &["pods"])],
            ),
            (
                "NonResourceURLs",
                vec![url_rule(&["*"], &["/apis"])],
                vec![url_rule(&["*"], &["/apis"])],
                vec![],
            ),
            (
                "NonResourceURLsStar",
                vec![url_rule(&["*"], &["*"])],
                vec![url_rule(&["*"], &["/apis", "/apis/v1", "/"])],
                vec![],
            ),
            (
                "NonResourceURLsStarAfterPrefixDoesntCover",
                vec![url_rule(&["*"], &["/apis/*"])],
                vec![url_rule(&["get"], &["/apis", "/apis/v1"])],
                vec![url_rule(&["get"], &["/apis"])],
            ),
            (
                "NonResourceURLsStarAfterPrefix",
                vec![url_rule(&["*"], &["/apis/*"])],
                vec![url_rule(&["get"], &["/apis/v1/foo", "/apis/v1"])],
                vec![],
            ),
            (
                "NonResourceURLsWithOtherFields",
                vec![pr(&["v1"], &["get"], &["builds"], &[], &["/apis"])],
                vec![pr(&["v1"], &["get"], &["builds"], &[], &["/apis"])],
                vec![],
            ),
            (
                "NonResourceURLsWithOtherFieldsFailure",
                vec![res(&["v1"], &["get"], &["builds"])],
                vec![pr(&["v1"], &["get"], &["builds"], &[], &["/apis"])],
                vec![url_rule(&["get"], &["/apis"])],
            ),
        ];
        for (name, owner, servant, want) in cases {
            let (covered, uncovered) = covers(&owner, &servant);
            assert_eq!(covered, want.is_empty(), "{name}");
            assert_eq!(uncovered.len(), want.len(), "{name}: {uncovered:?}");
            for w in &want {
                assert!(uncovered.contains(w), "{name}: {w:?} not in {uncovered:?}");
            }
        }
    }

    /// Upstream's `TestNonResourceURLCovers`.
    #[test]
    fn non_resource_url_covers_as_upstream() {
        let cases = [
            ("*", "", true),
            ("*", "/", true),
            ("*", "/api", true),
            ("/*", "", false),
            ("/*", "/", true),
            ("/*", "/foo", true),
            ("/api", "/api", true),
            ("/apis", "/api", false),
            ("/api/v1", "/api", false),
            ("/api/v1", "/api/v1", true),
            ("/api/*", "/api/v1", true),
            ("/api/*", "/api", false),
            ("/api/*/*", "/api/v1", false),
            ("/*/v1/*", "/api/v1", false),
        ];
        for (owner, requested, want) in cases {
            assert_eq!(
                non_resource_url_covers(owner, requested),
                want,
                "{owner} {requested}"
            );
        }
    }

    #[test]
    fn breakdown_is_one_tuple_per_rule_in_upstreams_order() {
        let rule = pr(
            &["", "apps"],
            &["get", "list"],
            &["pods"],
            &["a", "b"],
            &["/x"],
        );
        let atoms: Vec<String> = breakdown_rule(&rule).iter().map(compact_string).collect();
        assert_eq!(
            atoms,
            [
                r#"{APIGroups:[""], Resources:["pods"], ResourceNames:["a"], Verbs:["get"]}"#,
                r#"{APIGroups:[""], Resources:["pods"], ResourceNames:["b"], Verbs:["get"]}"#,
                r#"{APIGroups:[""], Resources:["pods"], ResourceNames:["a"], Verbs:["list"]}"#,
                r#"{APIGroups:[""], Resources:["pods"], ResourceNames:["b"], Verbs:["list"]}"#,
                r#"{APIGroups:["apps"], Resources:["pods"], ResourceNames:["a"], Verbs:["get"]}"#,
                r#"{APIGroups:["apps"], Resources:["pods"], ResourceNames:["b"], Verbs:["get"]}"#,
                r#"{APIGroups:["apps"], Resources:["pods"], ResourceNames:["a"], Verbs:["list"]}"#,
                r#"{APIGroups:["apps"], Resources:["pods"], ResourceNames:["b"], Verbs:["list"]}"#,
                r#"{NonResourceURLs:["/x"], Verbs:["get"]}"#,
                r#"{NonResourceURLs:["/x"], Verbs:["list"]}"#,
            ]
        );
        // A rule without groups has no resource tuples (and covers nothing, nor needs to).
        assert!(breakdown_rule(&res(&[], &["get"], &["pods"])).is_empty());
    }

    /// Beyond upstream's cases: names and URLs in the owner limit what it covers.
    #[test]
    fn owner_names_and_urls_limit_coverage() {
        let named = pr(&[""], &["get"], &["pods"], &["a"], &[]);
        assert!(
            covers(
                std::slice::from_ref(&named),
                &[pr(&[""], &["get"], &["pods"], &["a"], &[])]
            )
            .0
        );
        assert!(
            !covers(
                std::slice::from_ref(&named),
                &[pr(&[""], &["get"], &["pods"], &["b"], &[])]
            )
            .0
        );
        // A named owner rule covers no URL, even with `*` URLs beside it.
        let both = pr(&["*"], &["*"], &["*"], &["a"], &["*"]);
        assert!(!covers(&[both], &[url_rule(&["get"], &["/x"])]).0);
        // `*/scale` covers a subresource, never the resource itself.
        let scale = res(&["apps"], &["get"], &["*/scale"]);
        assert!(
            covers(
                std::slice::from_ref(&scale),
                &[res(&["apps"], &["get"], &["daemonsets/scale"])]
            )
            .0
        );
        assert!(!covers(&[scale], &[res(&["apps"], &["get"], &["daemonsets"])]).0);
        // Full authority covers every bootstrap-like rule.
        let admin = full_authority();
        for r in [
            res(&["apps"], &["create"], &["daemonsets"]),
            pr(&[""], &["get"], &["configmaps"], &["x"], &[]),
            url_rule(&["get"], &["/metrics"]),
        ] {
            assert!(covers(&admin, std::slice::from_ref(&r)).0, "{r:?}");
        }
    }

    /// Upstream's `TestCompactRules`, compared after sorting as upstream's
    /// `SortableRuleSlice` does; compacted and original rules cover each other.
    #[test]
    fn compact_rules_as_upstream() {
        let cases: Vec<(&str, Vec<PolicyRule>, Vec<PolicyRule>)> = vec![
            ("empty", vec![], vec![]),
            (
                "simple",
                vec![
                    res(&[""], &["get"], &["builds"]),
                    res(&[""], &["list"], &["builds"]),
                    res(&[""], &["update", "patch"], &["builds"]),
                    res(&["extensions"], &["create"], &["daemonsets"]),
                    res(&["extensions"], &["delete"], &["daemonsets"]),
                    PolicyRule {
                        resource_names: Some(vec![String::new()]),
                        ..res(&["extensions"], &["patch"], &["daemonsets"])
                    },
                    pr(&["extensions"], &["get"], &["daemonsets"], &["foo"], &[]),
                    pr(&["extensions"], &["list"], &["daemonsets"], &["foo"], &[]),
                    res(&[""], &["educate"], &["dolphins"]),
                    res(&[""], &[], &["pirates"]),
                    res(&[""], &[], &["pods"]),
                    res(&[""], &["create"], &["pods"]),
                ],
                vec![
                    res(&["extensions"], &["create", "delete"], &["daemonsets"]),
                    PolicyRule {
                        resource_names: Some(vec![String::new()]),
                        ..res(&["extensions"], &["patch"], &["daemonsets"])
                    },
                    pr(
                        &["extensions"],
                        &["get", "list"],
                        &["daemonsets"],
                        &["foo"],
                        &[],
                    ),
                    res(&[""], &["get", "list", "update", "patch"], &["builds"]),
                    res(&[""], &["educate"], &["dolphins"]),
                    res(&[""], &[], &["pirates"]),
                    res(&[""], &["create"], &["pods"]),
                ],
            ),
            (
                "complex multi-group",
                vec![
                    res(&["", "builds.openshift.io"], &["get"], &["builds"]),
                    res(&["", "builds.openshift.io"], &["list"], &["builds"]),
                ],
                vec![
                    res(&["", "builds.openshift.io"], &["get"], &["builds"]),
                    res(&["", "builds.openshift.io"], &["list"], &["builds"]),
                ],
            ),
            (
                "complex multi-resource",
                vec![
                    res(&[""], &["get"], &["builds", "images"]),
                    res(&[""], &["list"], &["builds", "images"]),
                ],
                vec![
                    res(&[""], &["get"], &["builds", "images"]),
                    res(&[""], &["list"], &["builds", "images"]),
                ],
            ),
            (
                "complex named-resource",
                vec![
                    pr(&[""], &["get"], &["builds"], &["mybuild"], &[]),
                    pr(&[""], &["list"], &["builds"], &["mybuild2"], &[]),
                ],
                vec![
                    pr(&[""], &["get"], &["builds"], &["mybuild"], &[]),
                    pr(&[""], &["list"], &["builds"], &["mybuild2"], &[]),
                ],
            ),
            (
                "complex non-resource",
                vec![
                    pr(&[""], &["get"], &["builds"], &[], &["/"]),
                    pr(&[""], &["get"], &["builds"], &[], &["/foo"]),
                ],
                vec![
                    pr(&[""], &["get"], &["builds"], &[], &["/"]),
                    pr(&[""], &["get"], &["builds"], &[], &["/foo"]),
                ],
            ),
        ];
        let sorted = |mut rules: Vec<PolicyRule>| {
            rules.sort_by_key(compact_string);
            rules
        };
        for (name, rules, want) in cases {
            let compacted = compact_rules(rules.clone());
            assert!(covers(&compacted, &rules).0, "{name}");
            assert!(covers(&rules, &compacted).0, "{name}");
            assert_eq!(sorted(compacted), sorted(want), "{name}");
        }
    }

    fn snapshot_granting(rules: Vec<PolicyRule>, namespace: &str) -> RbacSnapshot {
        use k8s_openapi::api::rbac::v1::{
            ClusterRole, ClusterRoleBinding, RoleBinding, RoleRef, Subject,
        };
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
        let role = ClusterRole {
            metadata: ObjectMeta {
                name: Some("granted".into()),
                ..Default::default()
            },
            rules: Some(rules),
            aggregation_rule: None,
        };
        let role_ref = |name: &str| RoleRef {
            api_group: crate::rbac::RBAC_GROUP.into(),
            kind: "ClusterRole".into(),
            name: name.into(),
        };
        let jane = Some(vec![Subject {
            kind: "User".into(),
            name: "jane".into(),
            ..Default::default()
        }]);
        let local = RoleBinding {
            metadata: ObjectMeta {
                name: Some("local".into()),
                namespace: Some(namespace.into()),
                ..Default::default()
            },
            role_ref: role_ref("granted"),
            subjects: jane.clone(),
        };
        // A binding to a role that does not exist: a resolution error.
        let dangling = ClusterRoleBinding {
            metadata: ObjectMeta {
                name: Some("dangling".into()),
                ..Default::default()
            },
            role_ref: role_ref("ghost"),
            subjects: jane,
        };
        RbacSnapshot::new(&[], &[local], &[role], &[dangling])
    }

    #[test]
    fn confirm_no_escalation_reads_as_upstream() {
        let jane = UserInfo::new("jane", ["dev", "system:authenticated"]);
        let snapshot = snapshot_granting(vec![res(&[""], &["get", "list"], &["pods"])], "team-a");
        // Covered in the binding's namespace only.
        let reading = [res(&[""], &["get"], &["pods"])];
        assert_eq!(
            snapshot.confirm_no_escalation(&jane, &reading, "team-a"),
            Ok(())
        );
        let err = snapshot
            .confirm_no_escalation(&jane, &reading, "team-b")
            .unwrap_err();
        assert_eq!(
            err,
            "user \"jane\" (groups=[\"dev\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n\
             {APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"get\"]}; \
             resolution errors: [clusterroles.rbac.authorization.k8s.io \"ghost\" not found]"
        );
        // Missing rules are compacted per group and resource, then sorted.
        let granting = [
            res(&["apps"], &["create", "delete"], &["daemonsets"]),
            res(&[""], &["get", "delete"], &["pods", "secrets"]),
            url_rule(&["get"], &["/metrics"]),
        ];
        let err = snapshot
            .confirm_no_escalation(&jane, &granting, "team-a")
            .unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines,
            [
                "user \"jane\" (groups=[\"dev\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:",
                "{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}",
                "{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"delete\"]}",
                "{APIGroups:[\"apps\"], Resources:[\"daemonsets\"], Verbs:[\"create\" \"delete\"]}",
                "{NonResourceURLs:[\"/metrics\"], Verbs:[\"get\"]}; resolution errors: [clusterroles.rbac.authorization.k8s.io \"ghost\" not found]",
            ]
        );
        // A user without groups prints `[]`; nothing granted is always covered.
        let bob = UserInfo::new("bob", Vec::<String>::new());
        let err = RbacSnapshot::default()
            .confirm_no_escalation(&bob, &[rule(&["get"], &[""], &["pods"])], "")
            .unwrap_err();
        assert!(
            err.starts_with("user \"bob\" (groups=[]) is attempting"),
            "{err}"
        );
        assert_eq!(
            RbacSnapshot::default().confirm_no_escalation(&bob, &[], ""),
            Ok(())
        );
    }
}
