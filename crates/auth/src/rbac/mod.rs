//! Role-based access control, as upstream's RBAC authorizer (plugin/pkg/auth/authorizer/rbac)
//! and the rule resolution and escalation checks of pkg/registry/rbac/validation:
//!
//! - [`rules`]: whether one PolicyRule allows a request (verbs, groups, resources with `*` and
//!   `*/subresource`, resource names, non-resource URLs with trailing `*`).
//! - [`snapshot`]: [`RbacSnapshot`], the Roles, ClusterRoles and bindings at one moment,
//!   indexed by the users, groups and service accounts their subjects name; it resolves the
//!   rules that apply to a user in a namespace and decides on requests.
//! - [`escalation`]: [`covers`] and [`RbacSnapshot::confirm_no_escalation`], which keep a user
//!   from granting (by writing a role or a binding) permissions they do not hold.
//!
//! [`RbacAuthorizer`] is the [`Authorizer`] over the current snapshot, which the API server
//! replaces whole whenever RBAC objects change, while requests go on reading the one they
//! loaded.
//!
//! ```
//! use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
//! use pernode_auth::authorizer::{Attributes, Authorizer, Decision};
//! use pernode_auth::rbac::{RbacAuthorizer, RbacSnapshot};
//! use pernode_auth::user::UserInfo;
//!
//! let named = |name: &str| ObjectMeta { name: Some(name.into()), ..Default::default() };
//! let reader = ClusterRole {
//!     metadata: named("pod-reader"),
//!     rules: Some(vec![PolicyRule {
//!         verbs: vec!["list".into()],
//!         api_groups: Some(vec!["".into()]),
//!         resources: Some(vec!["pods".into()]),
//!         ..Default::default()
//!     }]),
//!     aggregation_rule: None,
//! };
//! let binding = ClusterRoleBinding {
//!     metadata: named("dev-reads-pods"),
//!     role_ref: RoleRef {
//!         api_group: "rbac.authorization.k8s.io".into(),
//!         kind: "ClusterRole".into(),
//!         name: "pod-reader".into(),
//!     },
//!     subjects: Some(vec![Subject { kind: "Group".into(), name: "dev".into(), ..Default::default() }]),
//! };
//! let rbac = RbacAuthorizer::new(RbacSnapshot::new(&[], &[], &[reader], &[binding]));
//!
//! let jane = UserInfo::new("jane", ["dev"]);
//! let list = Attributes::resource(&jane, "list", "default", "", "v1", "pods", "", "");
//! assert_eq!(rbac.authorize(&list), Decision::Allow);
//! let create = Attributes::resource(&jane, "create", "default", "", "v1", "pods", "", "");
//! assert_eq!(rbac.authorize(&create), Decision::NoOpinion(String::new()));
//! ```

pub mod escalation;
pub mod rules;
pub mod snapshot;

use std::sync::Arc;

use arc_swap::ArcSwap;
use k8s_openapi::api::authorization::v1::{NonResourceRule, ResourceRule};

use crate::authorizer::{Attributes, Authorizer, Decision};
use crate::user::UserInfo;

pub use escalation::{breakdown_rule, compact_rules, covers, full_authority};
pub use rules::{compact_string, rule_allows, rules_allow};
pub use snapshot::{RBAC_GROUP, RbacSnapshot, RoleRefError, Rules, applies_to};

/// The RBAC authorizer over a snapshot that can be replaced while requests run: each
/// request reads the snapshot current when it starts (one atomic load, no lock).
#[derive(Debug)]
pub struct RbacAuthorizer {
    snapshot: ArcSwap<RbacSnapshot>,
}

/// What [`RbacAuthorizer::rules_for`] finds: upstream's `RulesFor`, for
/// SelfSubjectRulesReview.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RulesFor {
    /// The rules naming resources (a rule naming both resources and URLs is in both lists).
    pub resource_rules: Vec<ResourceRule>,
    /// The rules naming non-resource URLs.
    pub non_resource_rules: Vec<NonResourceRule>,
    /// The roles that could not be resolved: the lists may lack their rules.
    pub errors: Vec<RoleRefError>,
}

impl RbacAuthorizer {
    pub fn new(snapshot: RbacSnapshot) -> RbacAuthorizer {
        RbacAuthorizer {
            snapshot: ArcSwap::from_pointee(snapshot),
        }
    }

    /// Replaces the policy; requests that already loaded the previous one finish with it.
    pub fn replace(&self, snapshot: RbacSnapshot) {
        self.snapshot.store(Arc::new(snapshot));
    }

    /// The current policy.
    pub fn snapshot(&self) -> Arc<RbacSnapshot> {
        self.snapshot.load_full()
    }

    /// `RBACAuthorizer.RulesFor`: the rules `user` holds in `namespace` (cluster-wide only
    /// when it is empty), split into resource and non-resource rules.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> RulesFor {
        let (rules, errors) = self.snapshot.load().rules_for(user, namespace);
        let mut found = RulesFor {
            errors,
            ..RulesFor::default()
        };
        for rule in rules {
            let some = |v: &Option<Vec<String>>| v.clone().filter(|v| !v.is_empty());
            if rule.resources.as_ref().is_some_and(|r| !r.is_empty()) {
                found.resource_rules.push(ResourceRule {
                    verbs: rule.verbs.clone(),
                    api_groups: some(&rule.api_groups),
                    resources: some(&rule.resources),
                    resource_names: some(&rule.resource_names),
                });
            }
            if rule
                .non_resource_urls
                .as_ref()
                .is_some_and(|u| !u.is_empty())
            {
                found.non_resource_rules.push(NonResourceRule {
                    verbs: rule.verbs,
                    non_resource_urls: rule.non_resource_urls,
                });
            }
        }
        found
    }
}

impl RbacAuthorizer {
    /// [`RbacSnapshot::confirm_no_escalation`] on the current policy.
    pub fn confirm_no_escalation(
        &self,
        user: &UserInfo,
        rules: &[k8s_openapi::api::rbac::v1::PolicyRule],
        namespace: &str,
    ) -> Result<(), String> {
        self.snapshot
            .load()
            .confirm_no_escalation(user, rules, namespace)
    }
}

impl Default for RbacAuthorizer {
    fn default() -> Self {
        RbacAuthorizer::new(RbacSnapshot::default())
    }
}

impl Authorizer for RbacAuthorizer {
    fn authorize(&self, attrs: &Attributes<'_>) -> Decision {
        self.snapshot.load().authorize(attrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::rbac::v1::{
        ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn granting(rules: Vec<PolicyRule>, role: &str) -> RbacSnapshot {
        let meta = |name: &str| ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        };
        let role_obj = ClusterRole {
            metadata: meta("granted"),
            rules: Some(rules),
            aggregation_rule: None,
        };
        let binding = ClusterRoleBinding {
            metadata: meta("b"),
            role_ref: RoleRef {
                api_group: RBAC_GROUP.into(),
                kind: "ClusterRole".into(),
                name: role.into(),
            },
            subjects: Some(vec![Subject {
                kind: "Group".into(),
                name: "dev".into(),
                ..Default::default()
            }]),
        };
        RbacSnapshot::new(&[], &[], &[role_obj], &[binding])
    }

    fn strings(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn rules_for_splits_resource_and_url_rules() {
        let both = PolicyRule {
            verbs: vec!["get".into()],
            api_groups: strings(&[""]),
            resources: strings(&["pods"]),
            resource_names: strings(&["p"]),
            non_resource_urls: strings(&["/healthz"]),
        };
        let urls_only = PolicyRule {
            verbs: vec!["get".into()],
            non_resource_urls: strings(&["/version"]),
            ..Default::default()
        };
        let rbac = RbacAuthorizer::new(granting(vec![both, urls_only], "granted"));
        let jane = UserInfo::new("jane", ["dev"]);
        let found = rbac.rules_for(&jane, "default");
        assert_eq!(
            found.resource_rules,
            vec![ResourceRule {
                verbs: vec!["get".into()],
                api_groups: strings(&[""]),
                resources: strings(&["pods"]),
                resource_names: strings(&["p"]),
            }]
        );
        assert_eq!(
            found.non_resource_rules,
            vec![
                NonResourceRule {
                    verbs: vec!["get".into()],
                    non_resource_urls: strings(&["/healthz"]),
                },
                NonResourceRule {
                    verbs: vec!["get".into()],
                    non_resource_urls: strings(&["/version"]),
                },
            ]
        );
        assert!(found.errors.is_empty());
        let dangling = RbacAuthorizer::new(granting(vec![], "ghost"));
        assert_eq!(dangling.rules_for(&jane, "").errors.len(), 1);
    }

    /// A replaced snapshot decides the next request; a request that loaded the old one keeps
    /// it (here: a snapshot held across the replacement).
    #[test]
    fn replacing_the_snapshot_changes_the_next_decision() {
        let list_pods = PolicyRule {
            verbs: vec!["list".into()],
            api_groups: strings(&[""]),
            resources: strings(&["pods"]),
            ..Default::default()
        };
        let rbac = RbacAuthorizer::default();
        let jane = UserInfo::new("jane", ["dev"]);
        let attrs = Attributes::resource(&jane, "list", "default", "", "v1", "pods", "", "");
        assert_eq!(rbac.authorize(&attrs), Decision::NoOpinion(String::new()));
        let before = rbac.snapshot();
        assert!(
            rbac.confirm_no_escalation(&jane, std::slice::from_ref(&list_pods), "")
                .is_err()
        );
        rbac.replace(granting(vec![list_pods.clone()], "granted"));
        assert_eq!(rbac.authorize(&attrs), Decision::Allow);
        assert_eq!(rbac.confirm_no_escalation(&jane, &[list_pods], ""), Ok(()));
        assert_eq!(before.authorize(&attrs), Decision::NoOpinion(String::new()));
        // The chain holds the same authorizer through an Arc.
        let shared: Arc<RbacAuthorizer> = Arc::new(rbac);
        let boxed: Box<dyn Authorizer> = Box::new(shared.clone());
        assert_eq!(boxed.authorize(&attrs), Decision::Allow);
        shared.replace(RbacSnapshot::default());
        assert_eq!(boxed.authorize(&attrs), Decision::NoOpinion(String::new()));
    }
}
