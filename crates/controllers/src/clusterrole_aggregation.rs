//! ClusterRole aggregation, as upstream's `pkg/controller/clusterroleaggregation`: a
//! ClusterRole with an `aggregationRule` gets as its `rules` the union of the rules of every
//! ClusterRole its `clusterRoleSelectors` select, selector by selector, the selected roles in
//! name order, itself left out, each rule once (the first time it appears). This is how
//! `admin`, `edit` and `view` hold the rules of the `system:aggregate-to-*` roles and of any
//! role a bundle labels `rbac.authorization.k8s.io/aggregate-to-view: "true"`.
//!
//! One watch of ClusterRoles keeps a cache; any change to any ClusterRole queues every
//! aggregated role (upstream's `enqueue`), and a worker writes a role whose computed rules
//! differ with an update of the cached version (a conflict retries with backoff once the
//! cache has caught up). Upstream writes with a server-side apply; the result is the same
//! `rules`.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), pernode_controllers::clusterrole_aggregation::Error> {
//! pernode_controllers::clusterrole_aggregation::run(client).await
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{Api, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tracing::{debug, info};

use crate::workqueue::WorkQueue;

/// Errors of the aggregation controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed in a way retrying will not fix.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A background task stopped unexpectedly.
    #[error("clusterrole aggregation task failed: {0}")]
    Task(String),
}

/// Why the rules of an aggregated role could not be computed: one of its selectors does not
/// convert to a label selector (upstream's sync returns the error and retries).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid clusterRoleSelector of {role}: {message}")]
pub struct SelectorError {
    /// The aggregated role.
    pub role: String,
    /// The conversion's message.
    pub message: String,
}

/// Whether two rules are equal as `equality.Semantic.DeepEqual` sees them (an absent list
/// equals an empty one).
fn same_rule(a: &PolicyRule, b: &PolicyRule) -> bool {
    fn list(v: &Option<Vec<String>>) -> &[String] {
        v.as_deref().unwrap_or(&[])
    }
    a.verbs == b.verbs
        && list(&a.api_groups) == list(&b.api_groups)
        && list(&a.resources) == list(&b.resources)
        && list(&a.resource_names) == list(&b.resource_names)
        && list(&a.non_resource_urls) == list(&b.non_resource_urls)
}

/// Whether two rule lists are semantically equal (absent equals empty).
pub fn same_rules(a: &[PolicyRule], b: &[PolicyRule]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_rule(x, y))
}

/// The rules `role` aggregates from `roles` (every ClusterRole, keyed by name), in upstream's
/// order: selector by selector, the selected roles by name, `role` itself skipped, each rule
/// appended unless an equal one is already there. `None` when `role` has no aggregationRule.
pub fn aggregate(
    role: &ClusterRole,
    roles: &BTreeMap<String, ClusterRole>,
) -> Result<Option<Vec<PolicyRule>>, SelectorError> {
    let Some(rule) = &role.aggregation_rule else {
        return Ok(None);
    };
    let name = role.metadata.name.as_deref().unwrap_or("");
    let empty = BTreeMap::new();
    let mut rules: Vec<PolicyRule> = Vec::new();
    for selector in rule.cluster_role_selectors.iter().flatten() {
        let selector = pernode_core::labels::from_k8s(selector).map_err(|e| SelectorError {
            role: name.to_string(),
            message: e.to_string(),
        })?;
        for (other_name, other) in roles {
            if other_name == name
                || !selector.matches(other.metadata.labels.as_ref().unwrap_or(&empty))
            {
                continue;
            }
            for r in other.rules.iter().flatten() {
                if !rules.iter().any(|have| same_rule(have, r)) {
                    rules.push(r.clone());
                }
            }
        }
    }
    Ok(Some(rules))
}

struct Controller {
    api: Api<ClusterRole>,
    cache: Mutex<BTreeMap<String, ClusterRole>>,
    queue: WorkQueue<String>,
}

/// Runs the aggregation controller until an unrecoverable error.
pub async fn run(client: kube::Client) -> Result<(), Error> {
    let c = Arc::new(Controller {
        api: Api::all(client),
        cache: Mutex::new(BTreeMap::new()),
        queue: WorkQueue::new(Duration::from_millis(5), Duration::from_secs(30))
            .named("ClusterRoleAggregator"),
    });
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(c.clone().watch());
    tasks.spawn(c.clone().worker());
    let first = tasks.join_next().await;
    c.queue.shut_down();
    tasks.abort_all();
    match first {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(Error::Task(e.to_string())),
        None => Ok(()),
    }
}

impl Controller {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, ClusterRole>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Upstream's `enqueue`: every aggregated role, whatever changed.
    fn enqueue_aggregated(&self, cache: &BTreeMap<String, ClusterRole>) {
        for (name, role) in cache {
            if role.aggregation_rule.is_some() {
                self.queue.add(name.clone());
            }
        }
    }

    async fn watch(self: Arc<Self>) -> Result<(), Error> {
        let mut stream = watcher::watcher(self.api.clone(), watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut listing = BTreeMap::new();
        let mut synced = false;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Init) => listing.clear(),
                Ok(Event::InitApply(r)) => {
                    listing.insert(r.metadata.name.clone().unwrap_or_default(), r);
                }
                Ok(Event::InitDone) => {
                    let mut cache = self.lock();
                    *cache = std::mem::take(&mut listing);
                    synced = true;
                    self.enqueue_aggregated(&cache);
                }
                Ok(Event::Apply(r)) => {
                    let mut cache = self.lock();
                    cache.insert(r.metadata.name.clone().unwrap_or_default(), r);
                    if synced {
                        self.enqueue_aggregated(&cache);
                    }
                }
                Ok(Event::Delete(r)) => {
                    let mut cache = self.lock();
                    cache.remove(r.metadata.name.as_deref().unwrap_or(""));
                    if synced {
                        self.enqueue_aggregated(&cache);
                    }
                }
                Err(e) => debug!(error = %e, "clusterrole watch interrupted; retrying"),
            }
        }
        Err(Error::Task("clusterrole watch ended".into()))
    }

    async fn worker(self: Arc<Self>) -> Result<(), Error> {
        while let Some(name) = self.queue.get().await {
            match self.sync(&name).await {
                Ok(()) => self.queue.forget(&name),
                Err(e) => {
                    debug!(role = %name, error = %e, "clusterrole aggregation failed; retrying");
                    self.queue.add_rate_limited(name.clone());
                }
            }
            self.queue.done(&name);
        }
        Ok(())
    }

    /// `syncClusterRole`: writes the aggregated rules of `name` if they differ.
    async fn sync(&self, name: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let updated = {
            let cache = self.lock();
            let Some(role) = cache.get(name) else {
                return Ok(());
            };
            let Some(rules) = aggregate(role, &cache)? else {
                return Ok(());
            };
            if same_rules(&rules, role.rules.as_deref().unwrap_or(&[])) {
                return Ok(());
            }
            let mut updated = role.clone();
            updated.rules = Some(rules);
            updated
        };
        let n = updated.rules.as_ref().map_or(0, Vec::len);
        self.api
            .replace(name, &PostParams::default(), &updated)
            .await?;
        info!(role = %name, rules = n, "aggregated clusterrole rules");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::rbac::v1::AggregationRule;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

    fn rule(verb: &str, resource: &str) -> PolicyRule {
        PolicyRule {
            verbs: vec![verb.into()],
            api_groups: Some(vec!["".into()]),
            resources: Some(vec![resource.into()]),
            ..Default::default()
        }
    }

    fn role(name: &str, labels: &[(&str, &str)], rules: Vec<PolicyRule>) -> ClusterRole {
        ClusterRole {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(
                    labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            rules: Some(rules),
            aggregation_rule: None,
        }
    }

    fn aggregating(name: &str, labels: &[(&str, &str)], selects: &[&str]) -> ClusterRole {
        ClusterRole {
            aggregation_rule: Some(AggregationRule {
                cluster_role_selectors: Some(
                    selects
                        .iter()
                        .map(|l| LabelSelector {
                            match_labels: Some([(l.to_string(), "true".to_string())].into()),
                            match_expressions: None,
                        })
                        .collect(),
                ),
            }),
            rules: None,
            ..role(name, labels, vec![])
        }
    }

    fn by_name(roles: Vec<ClusterRole>) -> BTreeMap<String, ClusterRole> {
        roles
            .into_iter()
            .map(|r| (r.metadata.name.clone().unwrap_or_default(), r))
            .collect()
    }

    #[test]
    fn union_in_selector_then_name_order_without_duplicates() {
        let view = aggregating("view", &[("to-edit", "true")], &["to-view", "extra"]);
        let roles = by_name(vec![
            view.clone(),
            role(
                "b",
                &[("to-view", "true")],
                vec![rule("get", "pods"), rule("list", "pods")],
            ),
            role(
                "a",
                &[("to-view", "true")],
                vec![rule("get", "nodes"), rule("get", "pods")],
            ),
            role(
                "c",
                &[("extra", "true")],
                vec![rule("watch", "pods"), rule("get", "nodes")],
            ),
            role("d", &[("to-view", "false")], vec![rule("delete", "pods")]),
        ]);
        let rules = aggregate(&view, &roles)
            .expect("valid")
            .expect("aggregated");
        assert_eq!(
            rules,
            [
                rule("get", "nodes"),
                rule("get", "pods"),
                rule("list", "pods"),
                rule("watch", "pods"),
            ]
        );
        // A role that selects itself does not aggregate its own rules.
        let mut own = aggregating("own", &[("to-view", "true")], &["to-view"]);
        own.rules = Some(vec![rule("delete", "secrets")]);
        let mut with_own = roles.clone();
        with_own.insert("own".into(), own.clone());
        let rules = aggregate(&own, &with_own)
            .expect("valid")
            .expect("aggregated");
        assert!(!rules.contains(&rule("delete", "secrets")), "{rules:?}");
        assert_eq!(rules.len(), 3);
        // Nested: edit picks up view's (aggregated) rules through view's label.
        let edit = aggregating("edit", &[], &["to-edit"]);
        let mut nested = roles.clone();
        let mut filled = view.clone();
        filled.rules = Some(vec![rule("get", "pods")]);
        nested.insert("view".into(), filled);
        assert_eq!(
            aggregate(&edit, &nested).expect("valid"),
            Some(vec![rule("get", "pods")])
        );
        // A role without aggregationRule is not the controller's.
        assert_eq!(aggregate(&roles["a"], &roles).expect("valid"), None);
        // Nothing selected: no rules, which equals the absent list.
        let lonely = aggregating("lonely", &[], &["nobody"]);
        let rules = aggregate(&lonely, &roles)
            .expect("valid")
            .expect("aggregated");
        assert!(same_rules(&rules, lonely.rules.as_deref().unwrap_or(&[])));
    }

    #[test]
    fn absent_and_empty_lists_are_the_same_rule() {
        let a = PolicyRule {
            resource_names: Some(vec![]),
            ..rule("get", "pods")
        };
        assert!(same_rules(&[a], &[rule("get", "pods")]));
        assert!(!same_rules(&[rule("get", "pods")], &[rule("list", "pods")]));
    }

    #[test]
    fn an_invalid_selector_is_an_error() {
        let mut bad = aggregating("bad", &[], &["x"]);
        bad.aggregation_rule = Some(AggregationRule {
            cluster_role_selectors: Some(vec![LabelSelector {
                match_labels: Some([("not a key!".to_string(), "v".to_string())].into()),
                match_expressions: None,
            }]),
        });
        let err = aggregate(&bad, &BTreeMap::new()).expect_err("invalid");
        assert_eq!(err.role, "bad");
    }
}
