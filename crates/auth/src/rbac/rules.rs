//! Whether one PolicyRule allows a request, as upstream's `rbacv1helpers` evaluation helpers
//! (`VerbMatches`, `APIGroupMatches`, `ResourceMatches`, `ResourceNameMatches`,
//! `NonResourceURLMatches`) and the RBAC authorizer's `RuleAllows`; and `CompactString`, how
//! escalation errors print a rule.
//!
//! Each helper scans the rule's list once, as upstream's, and allocates nothing: the
//! `resource/subresource` a request names is compared in its two parts rather than joined.

use k8s_openapi::api::rbac::v1::PolicyRule;
use pernode_core::goquote::quote;

use crate::authorizer::Attributes;

/// `rbacv1.VerbAll`.
pub const VERB_ALL: &str = "*";
/// `rbacv1.APIGroupAll`.
pub const API_GROUP_ALL: &str = "*";
/// `rbacv1.ResourceAll`.
pub const RESOURCE_ALL: &str = "*";
/// `rbacv1.NonResourceAll`.
pub const NON_RESOURCE_ALL: &str = "*";

/// An optional list as the slice Go's nil-able slices are.
pub(crate) fn list(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or(&[])
}

/// `VerbMatches`: `*` or the verb itself.
pub fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == VERB_ALL || v == verb)
}

/// `APIGroupMatches`: `*` or the group itself.
pub fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    list(&rule.api_groups)
        .iter()
        .any(|g| g == API_GROUP_ALL || g == group)
}

/// `ResourceMatches` for `resource` and `subresource` (empty for none): `*`, the exact
/// `resource` or `resource/subresource`, or `*/subresource` for any resource's subresource.
/// Upstream's `resource/*` is no wildcard: it matches only a subresource named `*`.
pub fn resource_matches(rule: &PolicyRule, resource: &str, subresource: &str) -> bool {
    list(&rule.resources).iter().any(|r| {
        if r == RESOURCE_ALL {
            return true;
        }
        if subresource.is_empty() {
            return r == resource;
        }
        // `resource/subresource`, compared without joining the two.
        let combined = r
            .strip_prefix(resource)
            .and_then(|rest| rest.strip_prefix('/'))
            == Some(subresource);
        combined || r.strip_prefix("*/") == Some(subresource)
    })
}

/// `ResourceNameMatches`: a rule without names allows every name, else the name must be
/// listed (so a named rule never allows a request without a name, such as a list).
pub fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    let names = list(&rule.resource_names);
    names.is_empty() || names.iter().any(|n| n == name)
}

/// `NonResourceURLMatches`: `*`, the path itself, or a prefix ending in `*` (all trailing
/// stars are the wildcard, as Go's `TrimRight`).
pub fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    list(&rule.non_resource_urls).iter().any(|u| {
        u == NON_RESOURCE_ALL
            || u == path
            || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*')))
    })
}

/// `RuleAllows`: whether `rule` allows the request.
pub fn rule_allows(attrs: &Attributes<'_>, rule: &PolicyRule) -> bool {
    if attrs.resource_request {
        return verb_matches(rule, attrs.verb)
            && api_group_matches(rule, attrs.api_group)
            && resource_matches(rule, attrs.resource, attrs.subresource)
            && resource_name_matches(rule, attrs.name);
    }
    verb_matches(rule, attrs.verb) && non_resource_url_matches(rule, attrs.path)
}

/// `RulesAllow`: whether any of `rules` allows the request.
pub fn rules_allow(attrs: &Attributes<'_>, rules: &[PolicyRule]) -> bool {
    rules.iter().any(|r| rule_allows(attrs, r))
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
pub(crate) fn quote_list(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| quote(v)).collect();
    format!("[{}]", quoted.join(" "))
}

/// `CompactString`: the non-empty lists of a rule, as escalation errors print it:
/// `{APIGroups:["apps"], Resources:["daemonsets"], Verbs:["create"]}`.
pub fn compact_string(rule: &PolicyRule) -> String {
    let parts: Vec<String> = [
        ("APIGroups", list(&rule.api_groups)),
        ("Resources", list(&rule.resources)),
        ("NonResourceURLs", list(&rule.non_resource_urls)),
        ("ResourceNames", list(&rule.resource_names)),
        ("Verbs", &rule.verbs[..]),
    ]
    .into_iter()
    .filter(|(_, values)| !values.is_empty())
    .map(|(field, values)| format!("{field}:{}", quote_list(values)))
    .collect();
    format!("{{{}}}", parts.join(", "))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::user::UserInfo;

    fn strings(csv: &str) -> Vec<String> {
        csv.split(',').map(str::to_string).collect()
    }

    /// `rbacv1helpers.NewRule(verbs...).Groups(..).Resources(..)` (empty lists left out).
    pub(crate) fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
        let opt = |v: &[&str]| (!v.is_empty()).then(|| v.iter().map(|s| s.to_string()).collect());
        PolicyRule {
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            api_groups: opt(groups),
            resources: opt(resources),
            ..Default::default()
        }
    }

    /// `NewRule(verbs...).URLs(..)`.
    pub(crate) fn url_rule(verbs: &[&str], urls: &[&str]) -> PolicyRule {
        PolicyRule {
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            non_resource_urls: Some(urls.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    /// A request as upstream's `requestAttributeBuilder` makes it: (verb, group, resource,
    /// subresource, name) for a resource request, (verb, path) otherwise.
    enum Req {
        Resource(
            &'static str,
            &'static str,
            &'static str,
            &'static str,
            &'static str,
        ),
        Path(&'static str, &'static str),
    }

    fn allows(rule: &PolicyRule, req: &Req) -> bool {
        let user = UserInfo::default();
        let attrs = match *req {
            Req::Resource(verb, group, resource, sub, name) => {
                Attributes::resource(&user, verb, "", group, "", resource, sub, name)
            }
            Req::Path(verb, path) => Attributes::non_resource(&user, verb, path),
        };
        rule_allows(&attrs, rule)
    }

    /// Upstream's `TestRuleMatches` (rbac_test.go), case for case.
    #[test]
    fn rule_matches_as_upstream() {
        use Req::{Path, Resource as R};
        type Case = (&'static str, PolicyRule, Vec<(Req, bool)>);
        let cases: Vec<Case> = vec![
            (
                "star verb, exact match other",
                rule(&["*"], &["group1"], &["resource1"]),
                vec![
                    (R("verb1", "group1", "resource1", "", ""), true),
                    (R("verb1", "group2", "resource1", "", ""), false),
                    (R("verb1", "group1", "resource2", "", ""), false),
                    (R("verb1", "group2", "resource2", "", ""), false),
                    (R("verb2", "group1", "resource1", "", ""), true),
                    (R("verb2", "group2", "resource1", "", ""), false),
                    (R("verb2", "group1", "resource2", "", ""), false),
                    (R("verb2", "group2", "resource2", "", ""), false),
                ],
            ),
            (
                "star group, exact match other",
                rule(&["verb1"], &["*"], &["resource1"]),
                vec![
                    (R("verb1", "group1", "resource1", "", ""), true),
                    (R("verb1", "group2", "resource1", "", ""), true),
                    (R("verb1", "group1", "resource2", "", ""), false),
                    (R("verb1", "group2", "resource2", "", ""), false),
                    (R("verb2", "group1", "resource1", "", ""), false),
                    (R("verb2", "group2", "resource1", "", ""), false),
                    (R("verb2", "group1", "resource2", "", ""), false),
                    (R("verb2", "group2", "resource2", "", ""), false),
                ],
            ),
            (
                "star resource, exact match other",
                rule(&["verb1"], &["group1"], &["*"]),
                vec![
                    (R("verb1", "group1", "resource1", "", ""), true),
                    (R("verb1", "group2", "resource1", "", ""), false),
                    (R("verb1", "group1", "resource2", "", ""), true),
                    (R("verb1", "group2", "resource2", "", ""), false),
                    (R("verb2", "group1", "resource1", "", ""), false),
                    (R("verb2", "group2", "resource1", "", ""), false),
                    (R("verb2", "group1", "resource2", "", ""), false),
                    (R("verb2", "group2", "resource2", "", ""), false),
                ],
            ),
            (
                "tuple expansion",
                rule(
                    &["verb1", "verb2"],
                    &["group1", "group2"],
                    &["resource1", "resource2"],
                ),
                vec![
                    (R("verb1", "group1", "resource1", "", ""), true),
                    (R("verb1", "group2", "resource1", "", ""), true),
                    (R("verb1", "group1", "resource2", "", ""), true),
                    (R("verb1", "group2", "resource2", "", ""), true),
                    (R("verb2", "group1", "resource1", "", ""), true),
                    (R("verb2", "group2", "resource1", "", ""), true),
                    (R("verb2", "group1", "resource2", "", ""), true),
                    (R("verb2", "group2", "resource2", "", ""), true),
                ],
            ),
            (
                "subresource expansion",
                rule(&["*"], &["*"], &["resource1/subresource1"]),
                vec![
                    (R("verb1", "group1", "resource1", "subresource1", ""), true),
                    (R("verb1", "group2", "resource1", "subresource2", ""), false),
                    (R("verb1", "group1", "resource2", "subresource1", ""), false),
                    (R("verb1", "group2", "resource2", "subresource1", ""), false),
                    (R("verb2", "group1", "resource1", "subresource1", ""), true),
                    (R("verb2", "group2", "resource1", "subresource2", ""), false),
                    (R("verb2", "group1", "resource2", "subresource1", ""), false),
                    (R("verb2", "group2", "resource2", "subresource1", ""), false),
                ],
            ),
            (
                "star nonresource, exact match other",
                url_rule(&["verb1"], &["*"]),
                vec![
                    (Path("verb1", "/foo"), true),
                    (Path("verb1", "/foo/bar"), true),
                    (Path("verb1", "/foo/baz"), true),
                    (Path("verb1", "/foo/bar/one"), true),
                    (Path("verb1", "/foo/baz/one"), true),
                    (Path("verb2", "/foo"), false),
                    (Path("verb2", "/foo/bar"), false),
                    (Path("verb2", "/foo/baz"), false),
                    (Path("verb2", "/foo/bar/one"), false),
                    (Path("verb2", "/foo/baz/one"), false),
                ],
            ),
            (
                "star nonresource subpath",
                url_rule(&["verb1"], &["/foo/*"]),
                vec![
                    (Path("verb1", "/foo"), false),
                    (Path("verb1", "/foo/bar"), true),
                    (Path("verb1", "/foo/baz"), true),
                    (Path("verb1", "/foo/bar/one"), true),
                    (Path("verb1", "/foo/baz/one"), true),
                    (Path("verb1", "/notfoo"), false),
                    (Path("verb1", "/notfoo/bar"), false),
                    (Path("verb1", "/notfoo/baz"), false),
                    (Path("verb1", "/notfoo/bar/one"), false),
                    (Path("verb1", "/notfoo/baz/one"), false),
                ],
            ),
            (
                "star verb, exact nonresource",
                url_rule(&["*"], &["/foo", "/foo/bar/one"]),
                vec![
                    (Path("verb1", "/foo"), true),
                    (Path("verb1", "/foo/bar"), false),
                    (Path("verb1", "/foo/baz"), false),
                    (Path("verb1", "/foo/bar/one"), true),
                    (Path("verb1", "/foo/baz/one"), false),
                    (Path("verb2", "/foo"), true),
                    (Path("verb2", "/foo/bar"), false),
                    (Path("verb2", "/foo/baz"), false),
                    (Path("verb2", "/foo/bar/one"), true),
                    (Path("verb2", "/foo/baz/one"), false),
                ],
            ),
        ];
        for (name, rule, requests) in cases {
            for (req, want) in requests {
                assert_eq!(allows(&rule, &req), want, "{name}");
            }
        }
    }

    /// The corners of each helper: `*/subresource` (upstream's rbac_test.go subresource
    /// cases), resource names, prefixes with several stars, and what is no wildcard.
    #[test]
    fn helpers_corner_cases() {
        use Req::{Path, Resource as R};
        let cases: Vec<(PolicyRule, Req, bool)> = vec![
            // `pods` alone allows neither `pods/status` nor the other way round.
            (
                rule(&["*"], &["*"], &["pods"]),
                R("get", "", "pods", "", ""),
                true,
            ),
            (
                rule(&["*"], &["*"], &["pods"]),
                R("get", "", "pods", "status", ""),
                false,
            ),
            (
                rule(&["*"], &["*"], &["pods/status"]),
                R("get", "", "pods", "", ""),
                false,
            ),
            // `*/scale` allows any resource's scale, never the resource itself.
            (
                rule(&["*"], &["*"], &["*/scale"]),
                R("get", "", "pods", "scale", ""),
                true,
            ),
            (
                rule(&["*"], &["*"], &["*/scale"]),
                R("get", "apps", "anything", "scale", ""),
                true,
            ),
            (
                rule(&["*"], &["*"], &["*/scale"]),
                R("get", "", "pods", "", ""),
                false,
            ),
            (
                rule(&["*"], &["*"], &["*/scale"]),
                R("get", "", "pods", "status", ""),
                false,
            ),
            (
                rule(&["*"], &["*"], &["*/scale"]),
                R("get", "", "pods", "xscale", ""),
                false,
            ),
            // `pods/*` is no wildcard upstream: only a subresource named `*` matches it.
            (
                rule(&["*"], &["*"], &["pods/*"]),
                R("get", "", "pods", "status", ""),
                false,
            ),
            (
                rule(&["*"], &["*"], &["pods/*"]),
                R("get", "", "pods", "*", ""),
                true,
            ),
            // A resource that only starts like the rule's.
            (
                rule(&["*"], &["*"], &["pods/status"]),
                R("get", "", "pod", "s/status", ""),
                false,
            ),
            (
                rule(&["*"], &["*"], &["podsx/status"]),
                R("get", "", "pods", "status", ""),
                false,
            ),
            // Verbs and groups compare exactly (no case folding), `*` is the only wildcard.
            (
                rule(&["get"], &[""], &["pods"]),
                R("GET", "", "pods", "", ""),
                false,
            ),
            (
                rule(&["get"], &["apps"], &["pods"]),
                R("get", "", "pods", "", ""),
                false,
            ),
            (
                rule(&["get"], &["app*"], &["pods"]),
                R("get", "apps", "pods", "", ""),
                false,
            ),
            (
                rule(&["get"], &["*"], &["pods"]),
                R("get", "", "pods", "", ""),
                true,
            ),
            // A rule without groups, resources or verbs allows nothing.
            (
                rule(&[], &["*"], &["*"]),
                R("get", "", "pods", "", ""),
                false,
            ),
            (
                rule(&["*"], &[], &["*"]),
                R("get", "", "pods", "", ""),
                false,
            ),
            (
                rule(&["*"], &["*"], &[]),
                R("get", "", "pods", "", ""),
                false,
            ),
            // Resource rules never allow paths, and URL rules never resources.
            (rule(&["*"], &["*"], &["*"]), Path("get", "/api"), false),
            (
                url_rule(&["*"], &["*"]),
                R("get", "", "pods", "", ""),
                false,
            ),
            // Prefixes: every trailing star is the wildcard; a star inside is literal.
            (
                url_rule(&["get"], &["/api/**"]),
                Path("get", "/api/v1"),
                true,
            ),
            (url_rule(&["get"], &["/api/*"]), Path("get", "/api"), false),
            (url_rule(&["get"], &["/api*"]), Path("get", "/apis"), true),
            (
                url_rule(&["get"], &["/*/v1"]),
                Path("get", "/api/v1"),
                false,
            ),
            (
                url_rule(&["get"], &["/api/*/*"]),
                Path("get", "/api/v1/x"),
                false,
            ),
            (
                url_rule(&["get"], &["/healthz"]),
                Path("get", "/healthz/"),
                false,
            ),
        ];
        for (i, (rule, req, want)) in cases.iter().enumerate() {
            assert_eq!(allows(rule, req), *want, "case {i}: {rule:?}");
        }
    }

    #[test]
    fn resource_names_limit_named_requests_only() {
        let named = PolicyRule {
            resource_names: Some(strings("a,b")),
            ..rule(&["get", "list"], &[""], &["configmaps"])
        };
        for (name, want) in [("a", true), ("b", true), ("c", false), ("", false)] {
            assert_eq!(
                allows(&named, &Req::Resource("get", "", "configmaps", "", name)),
                want,
                "{name:?}"
            );
        }
        // An empty list is no list (Go's nil and empty slices alike).
        let empty = PolicyRule {
            resource_names: Some(Vec::new()),
            ..rule(&["get"], &[""], &["configmaps"])
        };
        assert!(allows(
            &empty,
            &Req::Resource("get", "", "configmaps", "", "x")
        ));
    }

    #[test]
    fn compact_strings_print_as_go() {
        assert_eq!(
            compact_string(&rule(&["create"], &["apps"], &["daemonsets"])),
            r#"{APIGroups:["apps"], Resources:["daemonsets"], Verbs:["create"]}"#
        );
        assert_eq!(
            compact_string(&url_rule(&["get", "post"], &["/metrics", "/x*"])),
            r#"{NonResourceURLs:["/metrics" "/x*"], Verbs:["get" "post"]}"#
        );
        let named = PolicyRule {
            resource_names: Some(strings("a\"b")),
            ..rule(&["get"], &[""], &["configmaps"])
        };
        assert_eq!(
            compact_string(&named),
            r#"{APIGroups:[""], Resources:["configmaps"], ResourceNames:["a\"b"], Verbs:["get"]}"#
        );
        assert_eq!(compact_string(&PolicyRule::default()), "{}");
    }
}
