//! The audit policy (`audit.k8s.io/v1` `Policy`, kube-apiserver's `--audit-policy-file`) and
//! its checker, as upstream's `pkg/audit/policy`: the first rule that matches a request gives
//! its level and the stages not to log; no rule matching means level `None`.
//!
//! A rule matches when every field it sets matches: `users` (the user's name), `userGroups`
//! (any of the user's groups), `verbs`, then either resources (`resources` by group with
//! `resource`, `resource/subresource`, `*`, `resource/*` and `*/subresource` forms and
//! optional `resourceNames`; `namespaces`, where `""` is the cluster scope) for resource
//! requests, or `nonResourceURLs` (exact, or a prefix ending in `*`) for other paths. A rule
//! with neither matches every request. A request that failed authentication has no user (an
//! empty [`UserInfo`]): rules naming users or groups never match it.

use std::fmt;

use pernode_admission::FieldError;
use pernode_auth::authorizer::Attributes;
use serde::Deserialize;

/// How much of a request is logged (`audit.k8s.io/v1` `Level`), in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Not logged.
    None,
    /// Who, what, when and the response code; no bodies.
    Metadata,
    /// As Metadata, and the request's body (`requestObject`) of resource requests.
    Request,
    /// As Request, and the response's body (`responseObject`).
    RequestResponse,
}

impl Level {
    pub const ALL: [Level; 4] = [
        Level::None,
        Level::Metadata,
        Level::Request,
        Level::RequestResponse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

/// When in a request's handling an event is logged (`audit.k8s.io/v1` `Stage`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    RequestReceived,
    /// Headers sent, body not yet: long-running requests (watches, logs, exec, proxies) only.
    ResponseStarted,
    ResponseComplete,
    Panic,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::RequestReceived,
        Stage::ResponseStarted,
        Stage::ResponseComplete,
        Stage::Panic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }

    fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of stages (a rule's `omitStages` united with the policy's).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stages(u8);

impl Stages {
    pub fn of(stages: &[Stage]) -> Stages {
        Stages(stages.iter().fold(0, |bits, s| bits | s.bit()))
    }

    pub fn contains(self, stage: Stage) -> bool {
        self.0 & stage.bit() != 0
    }

    pub fn union(self, other: Stages) -> Stages {
        Stages(self.0 | other.0)
    }
}

/// What the policy says of one request (upstream's `RequestAuditConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub level: Level,
    pub omit_stages: Stages,
    /// Drop `metadata.managedFields` from the logged request and response objects.
    pub omit_managed_fields: bool,
}

/// Resources of one API group a rule matches (`GroupResources`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GroupResources {
    /// The API group; `""` is the core group.
    pub group: String,
    /// `pods`, `pods/log`, `*`, `pods/*`, `*/scale`; empty: every resource of the group.
    pub resources: Vec<String>,
    /// Object names; empty: every object.
    pub resource_names: Vec<String>,
}

/// One rule of a policy (`PolicyRule`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub level: Level,
    pub users: Vec<String>,
    pub user_groups: Vec<String>,
    pub verbs: Vec<String>,
    pub resources: Vec<GroupResources>,
    pub namespaces: Vec<String>,
    pub non_resource_urls: Vec<String>,
    /// The rule's own stages united with the policy's.
    pub omit_stages: Stages,
    /// Overrides the policy's `omitManagedFields` when set.
    pub omit_managed_fields: Option<bool>,
}

impl Rule {
    /// A rule matching every request at `level`.
    pub fn everything(level: Level) -> Rule {
        Rule {
            level,
            users: Vec::new(),
            user_groups: Vec::new(),
            verbs: Vec::new(),
            resources: Vec::new(),
            namespaces: Vec::new(),
            non_resource_urls: Vec::new(),
            omit_stages: Stages::default(),
            omit_managed_fields: None,
        }
    }
}

/// A loaded, validated audit policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub rules: Vec<Rule>,
    pub omit_stages: Stages,
    pub omit_managed_fields: bool,
}

/// A policy file that cannot be used, worded as upstream's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

/// The policy file as written.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PolicyFile {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    rules: Vec<RuleFile>,
    #[serde(default)]
    omit_stages: Vec<String>,
    #[serde(default)]
    omit_managed_fields: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[derive(Default)]
struct RuleFile {
    level: String,
    users: Vec<String>,
    user_groups: Vec<String>,
    verbs: Vec<String>,
    resources: Vec<GroupResources>,
    namespaces: Vec<String>,
    #[serde(rename = "nonResourceURLs")]
    non_resource_urls: Vec<String>,
    omit_stages: Vec<String>,
    omit_managed_fields: Option<bool>,
}

const API_VERSION: &str = "audit.k8s.io/v1";

impl Policy {
    /// Every request at `Metadata`: the policy when `--audit-log-path` is given without
    /// `--audit-policy-file`.
    pub fn metadata_for_everything() -> Policy {
        Policy {
            rules: vec![Rule::everything(Level::Metadata)],
            omit_stages: Stages::default(),
            omit_managed_fields: false,
        }
    }

    /// Reads and validates the policy file at `path` (upstream's `LoadPolicyFromFile`).
    pub fn load(path: &std::path::Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            PolicyError(format!(
                "failed to read file path {:?}: {e}",
                path.display()
            ))
        })?;
        Policy::parse(&text).map_err(|e| PolicyError(format!("{e}: from file {}", path.display())))
    }

    /// Parses and validates a policy (YAML or JSON).
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile = serde_saphyr::from_str(text)
            .map_err(|e| PolicyError(format!("failed decoding: {e}")))?;
        if file.api_version != API_VERSION || file.kind != "Policy" {
            let group_version = file.api_version.split_once('/');
            let (group, version) = group_version.unwrap_or(("", &file.api_version));
            return Err(PolicyError(format!(
                "unknown group version field {group}/{version}, Kind={} in policy",
                file.kind
            )));
        }
        let mut errors = Vec::new();
        let omit_stages = stages(&file.omit_stages, "omitStages", &mut errors);
        let mut rules = Vec::with_capacity(file.rules.len());
        for (i, rule) in file.rules.into_iter().enumerate() {
            rules.push(validate_rule(rule, &format!("rules[{i}]"), &mut errors));
        }
        if !errors.is_empty() {
            let mut seen: Vec<String> = Vec::new();
            for e in errors.iter().map(FieldError::to_string) {
                if !seen.contains(&e) {
                    seen.push(e);
                }
            }
            return Err(PolicyError(match seen.as_slice() {
                [one] => one.clone(),
                many => format!("[{}]", many.join(", ")),
            }));
        }
        if rules.is_empty() {
            return Err(PolicyError("loaded illegal policy with 0 rules".into()));
        }
        for rule in &mut rules {
            rule.omit_stages = rule.omit_stages.union(omit_stages);
        }
        Ok(Policy {
            rules,
            omit_stages,
            omit_managed_fields: file.omit_managed_fields,
        })
    }

    /// The level and omitted stages of a request (upstream's `EvaluatePolicyRule`).
    pub fn evaluate(&self, attrs: &Attributes<'_>) -> Decision {
        match self.rules.iter().find(|r| rule_matches(r, attrs)) {
            Some(rule) => Decision {
                level: rule.level,
                omit_stages: rule.omit_stages,
                omit_managed_fields: rule.omit_managed_fields.unwrap_or(self.omit_managed_fields),
            },
            None => Decision {
                level: Level::None,
                omit_stages: self.omit_stages,
                omit_managed_fields: self.omit_managed_fields,
            },
        }
    }
}

/// The stages of an `omitStages` list; unknown ones are field errors.
fn stages(names: &[String], path: &str, errors: &mut Vec<FieldError>) -> Stages {
    let mut set = Stages::default();
    for (i, name) in names.iter().enumerate() {
        match Stage::parse(name) {
            Some(stage) => set = set.union(Stages::of(&[stage])),
            None => {
                let allowed: Vec<&str> = Stage::ALL.iter().map(|s| s.as_str()).collect();
                errors.push(FieldError::invalid(
                    &format!("{path}[{i}]"),
                    name.as_str(),
                    &format!("allowed stages are {}", allowed.join(",")),
                ));
            }
        }
    }
    set
}

/// Upstream's `validatePolicyRule`.
fn validate_rule(rule: RuleFile, path: &str, errors: &mut Vec<FieldError>) -> Rule {
    let level = match Level::parse(&rule.level) {
        Some(level) => level,
        None => {
            let field = format!("{path}.level");
            if rule.level.is_empty() {
                errors.push(FieldError::required(&field, ""));
            } else {
                let supported: Vec<&str> = Level::ALL.iter().map(|l| l.as_str()).collect();
                errors.push(FieldError::not_supported(
                    &field,
                    rule.level.as_str(),
                    &supported,
                ));
            }
            Level::None
        }
    };
    for (i, url) in rule.non_resource_urls.iter().enumerate() {
        if url == "*" {
            continue;
        }
        let field = format!("{path}.nonResourceURLs[{i}]");
        if !url.starts_with('/') {
            errors.push(FieldError::invalid(
                &field,
                url.as_str(),
                "non-resource URL rules must begin with a '/' character",
            ));
        }
        if url[..url.len().saturating_sub(1)].contains('*') {
            errors.push(FieldError::invalid(
                &field,
                url.as_str(),
                "non-resource URL wildcards '*' must be the final character of the rule",
            ));
        }
    }
    for resources in &rule.resources {
        // Upstream names this field without the index.
        if !resources.group.is_empty() {
            let messages = pernode_core::names::is_dns1123_subdomain(&resources.group);
            if !messages.is_empty() {
                errors.push(FieldError::invalid(
                    &format!("{path}.resources.group"),
                    resources.group.as_str(),
                    &messages.join(","),
                ));
            }
        }
        if !resources.resource_names.is_empty() && resources.resources.is_empty() {
            errors.push(FieldError::invalid(
                &format!("{path}.resources.resourceNames"),
                resources.resource_names.clone(),
                "using resourceNames requires at least one resource",
            ));
        }
    }
    let omit_stages = stages(&rule.omit_stages, &format!("{path}.omitStages"), errors);
    if !rule.non_resource_urls.is_empty()
        && (!rule.resources.is_empty() || !rule.namespaces.is_empty())
    {
        errors.push(FieldError::invalid(
            &format!("{path}.nonResourceURLs"),
            rule.non_resource_urls.clone(),
            "rules cannot apply to both regular resources and non-resource URLs",
        ));
    }
    Rule {
        level,
        users: rule.users,
        user_groups: rule.user_groups,
        verbs: rule.verbs,
        resources: rule.resources,
        namespaces: rule.namespaces,
        non_resource_urls: rule.non_resource_urls,
        omit_stages,
        omit_managed_fields: rule.omit_managed_fields,
    }
}

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|s| s == value)
}

/// Upstream's `ruleMatches`.
fn rule_matches(rule: &Rule, attrs: &Attributes<'_>) -> bool {
    let user = attrs.user;
    // The empty user stands for upstream's nil user (failed authentication).
    let has_user = !user.name.is_empty();
    let named = rule.users.is_empty() || (has_user && has(&rule.users, &user.name));
    let grouped = rule.user_groups.is_empty()
        || (has_user && user.groups.iter().any(|g| has(&rule.user_groups, g)));
    if !named || !grouped {
        return false;
    }
    if !rule.verbs.is_empty() && !has(&rule.verbs, attrs.verb) {
        return false;
    }
    if !rule.namespaces.is_empty() || !rule.resources.is_empty() {
        return rule_matches_resource(rule, attrs);
    }
    if !rule.non_resource_urls.is_empty() {
        return !attrs.resource_request
            && rule
                .non_resource_urls
                .iter()
                .any(|spec| path_matches(attrs.path, spec));
    }
    true
}

/// `*`, the exact path, or a prefix followed by `*`.
fn path_matches(path: &str, spec: &str) -> bool {
    spec == "*"
        || spec == path
        || spec
            .strip_suffix('*')
            .is_some_and(|_| path.starts_with(spec.trim_end_matches('*')))
}

/// Upstream's `ruleMatchesResource`.
fn rule_matches_resource(rule: &Rule, attrs: &Attributes<'_>) -> bool {
    if !attrs.resource_request {
        return false;
    }
    // Cluster-scoped resources have the empty namespace.
    if !rule.namespaces.is_empty() && !has(&rule.namespaces, attrs.namespace) {
        return false;
    }
    if rule.resources.is_empty() {
        return true;
    }
    let (resource, subresource) = (attrs.resource, attrs.subresource);
    let combined = if subresource.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}/{subresource}")
    };
    rule.resources
        .iter()
        .filter(|gr| gr.group == attrs.api_group)
        .any(|gr| {
            if gr.resources.is_empty() {
                return true;
            }
            if !gr.resource_names.is_empty() && !has(&gr.resource_names, attrs.name) {
                return false;
            }
            gr.resources.iter().any(|res| {
                res == &combined
                    || res == "*"
                    || (!subresource.is_empty() && res.strip_prefix("*/") == Some(subresource))
                    || res.strip_suffix("/*") == Some(resource)
            })
        })
}

#[cfg(test)]
mod tests {
    //! The cases of upstream's `checker_test.go`.

    use super::*;
    use pernode_auth::user::UserInfo;

    fn tim() -> UserInfo {
        UserInfo::new("tim@k8s.io", ["humans", "developers"])
    }

    /// Upstream's request attributes by name.
    fn attrs<'a>(name: &str, user: &'a UserInfo) -> Attributes<'a> {
        match name {
            "namespaced" => {
                Attributes::resource(user, "get", "default", "", "v1", "pods", "", "busybox")
            }
            "cluster" => Attributes::resource(
                user,
                "get",
                "",
                "rbac.authorization.k8s.io",
                "v1beta1",
                "clusterroles",
                "",
                "edit",
            ),
            "nonResource" => Attributes::non_resource(user, "get", "/logs/kubelet.log"),
            "subresource" => {
                Attributes::resource(user, "get", "default", "", "v1", "pods", "log", "busybox")
            }
            other => panic!("no request {other}"),
        }
    }

    fn resources(group: &str, resources: &[&str], names: &[&str]) -> Vec<GroupResources> {
        vec![GroupResources {
            group: group.into(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
            resource_names: names.iter().map(|s| s.to_string()).collect(),
        }]
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    /// Upstream's rules by name.
    fn rule(name: &str) -> Rule {
        let mut r = Rule::everything(Level::Metadata);
        match name {
            "default" => {}
            "create" => {
                r.level = Level::Request;
                r.verbs = strings(&["create"]);
            }
            "tims" => r.users = strings(&["tim@k8s.io"]),
            "humans" => r.user_groups = strings(&["humans"]),
            "serviceAccounts" => {
                r.level = Level::Request;
                r.user_groups = strings(&["system:serviceaccounts"]);
            }
            "getPods" => {
                r.level = Level::RequestResponse;
                r.verbs = strings(&["get"]);
                r.resources = resources("", &["pods"], &[]);
            }
            "getPodLogs"
            | "getPodWildcardMatching"
            | "getPodResourceWildcardMatching"
            | "getPodSubResourceWildcardMatching" => {
                r.level = Level::Request;
                r.verbs = strings(&["get"]);
                let res = match name {
                    "getPodLogs" => "pods/log",
                    "getPodWildcardMatching" => "*",
                    "getPodResourceWildcardMatching" => "*/log",
                    _ => "pods/*",
                };
                r.resources = resources("", &[res], &[]);
            }
            "getClusterRoles" => {
                r.level = Level::RequestResponse;
                r.verbs = strings(&["get"]);
                r.resources = resources("rbac.authorization.k8s.io", &["clusterroles"], &[]);
                r.namespaces = strings(&[""]);
            }
            "getLogs" => {
                r.level = Level::RequestResponse;
                r.verbs = strings(&["get"]);
                r.non_resource_urls = strings(&["/logs*"]);
            }
            "getMetrics" => {
                r.level = Level::Request;
                r.verbs = strings(&["get"]);
                r.non_resource_urls = strings(&["/metrics"]);
            }
            "clusterRoleEdit" => {
                r.level = Level::Request;
                r.resources = resources("rbac.authorization.k8s.io", &["clusterroles"], &["edit"]);
            }
            "omit RequestReceived" => {
                r.level = Level::Request;
                r.omit_stages = Stages::of(&[Stage::RequestReceived]);
            }
            "only audit panic" => {
                r.level = Level::Request;
                r.omit_stages = Stages::of(&[
                    Stage::RequestReceived,
                    Stage::ResponseStarted,
                    Stage::ResponseComplete,
                ]);
            }
            other => panic!("no rule {other}"),
        }
        r
    }

    /// As `NewPolicyRuleEvaluator`: each rule's stages united with the policy's.
    fn policy(policy_stages: Stages, names: &[&str]) -> Policy {
        let rules = names
            .iter()
            .map(|n| {
                let mut r = rule(n);
                r.omit_stages = r.omit_stages.union(policy_stages);
                r
            })
            .collect();
        Policy {
            rules,
            omit_stages: policy_stages,
            omit_managed_fields: false,
        }
    }

    fn check(
        request: &str,
        user: Option<&UserInfo>,
        expect: Level,
        stages: Stages,
        omitted: Stages,
        names: &[&str],
    ) {
        let nobody = UserInfo::default();
        let d = policy(stages, names).evaluate(&attrs(request, user.unwrap_or(&nobody)));
        assert_eq!(d.level, expect, "request {request}, rules {names:?}");
        assert_eq!(d.omit_stages, omitted, "request {request}, rules {names:?}");
    }

    fn audit_levels(stages: Stages) {
        let tim = tim();
        let t = Some(&tim);
        use Level::*;
        let cases: &[(&str, Level, &[&str])] = &[
            ("namespaced", Metadata, &["default"]),
            ("namespaced", None, &["create"]),
            ("namespaced", Metadata, &["tims"]),
            ("namespaced", Metadata, &["humans"]),
            ("namespaced", None, &["serviceAccounts"]),
            ("namespaced", RequestResponse, &["getPods"]),
            ("namespaced", None, &["getClusterRoles"]),
            ("namespaced", None, &["getLogs"]),
            ("namespaced", None, &["getMetrics"]),
            (
                "namespaced",
                Metadata,
                &["getMetrics", "serviceAccounts", "default"],
            ),
            (
                "namespaced",
                RequestResponse,
                &["getMetrics", "getPods", "default"],
            ),
            ("namespaced", RequestResponse, &["getPodLogs", "getPods"]),
            ("cluster", Metadata, &["default"]),
            ("cluster", None, &["create"]),
            ("cluster", Metadata, &["tims"]),
            ("cluster", Metadata, &["humans"]),
            ("cluster", None, &["serviceAccounts"]),
            ("cluster", None, &["getPods"]),
            ("cluster", RequestResponse, &["getClusterRoles"]),
            ("cluster", Request, &["clusterRoleEdit", "getClusterRoles"]),
            ("cluster", None, &["getLogs"]),
            ("cluster", None, &["getMetrics"]),
            (
                "cluster",
                Metadata,
                &["getMetrics", "serviceAccounts", "default"],
            ),
            (
                "cluster",
                RequestResponse,
                &["getMetrics", "getClusterRoles", "default"],
            ),
            ("cluster", None, &["getPodLogs", "getPods"]),
            ("nonResource", Metadata, &["default"]),
            ("nonResource", None, &["create"]),
            ("nonResource", Metadata, &["tims"]),
            ("nonResource", Metadata, &["humans"]),
            ("nonResource", None, &["serviceAccounts"]),
            ("nonResource", None, &["getPods"]),
            ("nonResource", None, &["getClusterRoles"]),
            ("nonResource", RequestResponse, &["getLogs"]),
            ("nonResource", None, &["getMetrics"]),
            (
                "nonResource",
                Metadata,
                &["getMetrics", "serviceAccounts", "default"],
            ),
            (
                "nonResource",
                RequestResponse,
                &["getLogs", "getClusterRoles", "default"],
            ),
            ("nonResource", None, &["getPodLogs", "getPods"]),
            ("subresource", Request, &["getPodLogs", "getPods"]),
            ("subresource", Request, &["getPodWildcardMatching"]),
            ("subresource", Request, &["getPodResourceWildcardMatching"]),
            (
                "subresource",
                Request,
                &["getPodSubResourceWildcardMatching"],
            ),
        ];
        for (request, level, names) in cases {
            check(request, t, *level, stages, stages, names);
        }
        // A request without a user (failed authentication).
        check("namespaced", Option::None, None, stages, stages, &["tims"]);
        check(
            "namespaced",
            Option::None,
            Metadata,
            stages,
            stages,
            &["tims", "default"],
        );
        check(
            "namespaced",
            Option::None,
            None,
            stages,
            stages,
            &["humans"],
        );
        check(
            "namespaced",
            Option::None,
            Metadata,
            stages,
            stages,
            &["humans", "default"],
        );
    }

    #[test]
    fn the_first_matching_rule_gives_the_level() {
        audit_levels(Stages::default());
        let tim = tim();
        let received = Stages::of(&[Stage::RequestReceived]);
        let all_but_panic = Stages::of(&[
            Stage::RequestReceived,
            Stage::ResponseStarted,
            Stage::ResponseComplete,
        ]);
        for request in ["namespaced", "cluster", "nonResource"] {
            let rules = ["omit RequestReceived", "getPods", "default"];
            check(
                request,
                Some(&tim),
                Level::Request,
                Stages::default(),
                received,
                &rules,
            );
            let rules = ["only audit panic", "getPods", "default"];
            check(
                request,
                Some(&tim),
                Level::Request,
                Stages::default(),
                all_but_panic,
                &rules,
            );
        }
    }

    #[test]
    fn policy_omit_stages_unite_with_each_rules() {
        let policy_stages = Stages::of(&[Stage::RequestReceived, Stage::ResponseStarted]);
        audit_levels(policy_stages);
        let tim = tim();
        let all_but_panic = Stages::of(&[
            Stage::RequestReceived,
            Stage::ResponseStarted,
            Stage::ResponseComplete,
        ]);
        for request in ["namespaced", "cluster"] {
            let rules = ["omit RequestReceived", "getPods", "default"];
            check(
                request,
                Some(&tim),
                Level::Request,
                policy_stages,
                policy_stages,
                &rules,
            );
        }
        check(
            "nonResource",
            Some(&tim),
            Level::Metadata,
            policy_stages,
            policy_stages,
            &["default", "omit RequestReceived", "getPods"],
        );
        for request in ["namespaced", "cluster", "nonResource"] {
            let rules = ["only audit panic", "getPods", "default"];
            check(
                request,
                Some(&tim),
                Level::Request,
                policy_stages,
                all_but_panic,
                &rules,
            );
        }
    }

    #[test]
    fn stages_unite() {
        use Stage::*;
        let u = |a: &[Stage], b: &[Stage]| Stages::of(a).union(Stages::of(b));
        assert_eq!(u(&[], &[]), Stages::default());
        assert_eq!(u(&[RequestReceived], &[]), Stages::of(&[RequestReceived]));
        assert_eq!(
            u(&[RequestReceived], &[RequestReceived]),
            Stages::of(&[RequestReceived])
        );
        assert_eq!(
            u(
                &[RequestReceived, ResponseStarted],
                &[Panic, RequestReceived]
            ),
            Stages::of(&[RequestReceived, ResponseStarted, Panic])
        );
        let s = Stages::of(&[ResponseStarted]);
        assert!(s.contains(ResponseStarted) && !s.contains(ResponseComplete));
    }

    #[test]
    fn a_rule_overrides_the_policys_omit_managed_fields() {
        let user = UserInfo::new("u", ["g"]);
        let a = Attributes::non_resource(&user, "get", "/x");
        for (global, rule, want) in [
            (false, None, false),
            (true, None, true),
            (true, Some(false), false),
            (false, Some(true), true),
        ] {
            let mut r = Rule::everything(Level::RequestResponse);
            r.verbs = strings(&["get"]);
            r.omit_managed_fields = rule;
            let p = Policy {
                rules: vec![r],
                omit_stages: Stages::default(),
                omit_managed_fields: global,
            };
            assert_eq!(
                p.evaluate(&a).omit_managed_fields,
                want,
                "{global} {rule:?}"
            );
        }
    }

    #[test]
    fn no_matching_rule_is_level_none_with_the_policys_stages() {
        let user = UserInfo::new("u", ["g"]);
        let stages = Stages::of(&[Stage::RequestReceived]);
        let mut p = policy(stages, &["tims"]);
        p.omit_managed_fields = true;
        let d = p.evaluate(&Attributes::non_resource(&user, "get", "/x"));
        assert_eq!(
            d,
            Decision {
                level: Level::None,
                omit_stages: stages,
                omit_managed_fields: true
            }
        );
    }

    #[test]
    fn resource_names_and_namespaces_narrow_a_rule() {
        let tim = tim();
        let mut r = rule("clusterRoleEdit");
        let edit = attrs("cluster", &tim);
        let mut view = edit.clone();
        view.name = "view";
        let p = Policy {
            rules: vec![r.clone()],
            omit_stages: Stages::default(),
            omit_managed_fields: false,
        };
        assert_eq!(p.evaluate(&edit).level, Level::Request);
        assert_eq!(p.evaluate(&view).level, Level::None);
        r.resources = Vec::new();
        r.namespaces = strings(&["kube-system"]);
        let p = Policy {
            rules: vec![r],
            ..p
        };
        let pod = attrs("namespaced", &tim);
        let mut system_pod = pod.clone();
        system_pod.namespace = "kube-system";
        assert_eq!(p.evaluate(&pod).level, Level::None);
        assert_eq!(p.evaluate(&system_pod).level, Level::Request);
        assert_eq!(p.evaluate(&attrs("nonResource", &tim)).level, Level::None);
    }

    #[test]
    fn a_policy_file_is_read_and_united() {
        let p = Policy::parse(
            r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
omitManagedFields: true
rules:
- level: None
  users: ["system:kube-proxy"]
  verbs: ["watch"]
  resources:
  - group: ""
    resources: ["endpoints", "services"]
- level: Request
  resources:
  - group: apps
    resources: ["daemonsets/*"]
    resourceNames: ["agent"]
  namespaces: ["kube-system"]
  omitStages: [ResponseStarted]
  omitManagedFields: false
- level: Metadata
  nonResourceURLs: ["/healthz*", "/version"]
"#,
        )
        .unwrap();
        assert_eq!(p.rules.len(), 3);
        assert!(p.omit_managed_fields);
        assert_eq!(p.rules[0].level, Level::None);
        assert_eq!(p.rules[0].resources[0].resources, ["endpoints", "services"]);
        assert_eq!(
            p.rules[1].omit_stages,
            Stages::of(&[Stage::RequestReceived, Stage::ResponseStarted])
        );
        assert_eq!(p.rules[1].omit_managed_fields, Some(false));
        assert_eq!(p.rules[1].resources[0].resource_names, ["agent"]);
        assert_eq!(p.rules[2].non_resource_urls, ["/healthz*", "/version"]);
        assert_eq!(
            p.rules[2].omit_stages,
            Stages::of(&[Stage::RequestReceived])
        );
    }

    #[test]
    fn invalid_policies_are_upstreams_errors() {
        let err = |text: &str| Policy::parse(text).unwrap_err().0;
        let head = "apiVersion: audit.k8s.io/v1\nkind: Policy\n";
        assert_eq!(
            err(&format!("{head}rules: []\n")),
            "loaded illegal policy with 0 rules"
        );
        assert_eq!(
            err("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules: [{level: None}]\n"),
            "unknown group version field audit.k8s.io/v1beta1, Kind=Policy in policy"
        );
        assert_eq!(
            err(&format!("{head}rules: [{{users: [a]}}]\n")),
            "rules[0].level: Required value"
        );
        assert_eq!(
            err(&format!("{head}rules: [{{level: Everything}}]\n")),
            r#"rules[0].level: Unsupported value: "Everything": supported values: "None", "Metadata", "Request", "RequestResponse""#
        );
        assert_eq!(
            err(&format!(
                "{head}rules: [{{level: None, nonResourceURLs: [\"healthz\", \"/a*b\"]}}]\n"
            )),
            r#"[rules[0].nonResourceURLs[0]: Invalid value: "healthz": non-resource URL rules must begin with a '/' character, rules[0].nonResourceURLs[1]: Invalid value: "/a*b": non-resource URL wildcards '*' must be the final character of the rule]"#
        );
        assert_eq!(
            err(&format!(
                "{head}rules: [{{level: None, namespaces: [a], nonResourceURLs: [\"/x\"]}}]\n"
            )),
            r#"rules[0].nonResourceURLs: Invalid value: []string{"/x"}: rules cannot apply to both regular resources and non-resource URLs"#
        );
        assert_eq!(
            err(&format!(
                "{head}rules: [{{level: None, resources: [{{group: apps, resourceNames: [x]}}]}}]\n"
            )),
            r#"rules[0].resources.resourceNames: Invalid value: []string{"x"}: using resourceNames requires at least one resource"#
        );
        assert!(
            err(&format!(
                "{head}rules: [{{level: None, resources: [{{group: apps/v1}}]}}]\n"
            ))
            .starts_with(r#"rules[0].resources.group: Invalid value: "apps/v1": a lowercase RFC 1123 subdomain"#)
        );
        assert_eq!(
            err(&format!(
                "{head}omitStages: [Done]\nrules: [{{level: None}}]\n"
            )),
            r#"omitStages[0]: Invalid value: "Done": allowed stages are RequestReceived,ResponseStarted,ResponseComplete,Panic"#
        );
        assert!(err("rules: [").starts_with("failed decoding: "));
    }

    #[test]
    fn a_missing_policy_file_names_its_path() {
        let e = Policy::load(std::path::Path::new("/nonexistent/policy.yaml")).unwrap_err();
        assert!(
            e.0.starts_with(r#"failed to read file path "/nonexistent/policy.yaml": "#),
            "{e}"
        );
    }
}
