//! The server's RBAC policy, kept current: [`Controller`] lists the store's Roles,
//! RoleBindings, ClusterRoles and ClusterRoleBindings at startup, follows their four prefixes
//! (as `crd::Controller` follows CRDs), and after each batch of changes replaces the
//! [`RbacAuthorizer`]'s snapshot whole, as upstream's RBAC authorizer reads informer caches.
//!
//! A write of an RBAC object through the API answers only once the controller has applied it
//! ([`Controller::wait_observed`], from `handlers`), so the next request is decided by the
//! policy the client just wrote. A write straight to the store (the bootstrap policy at
//! startup is listed before the server serves) is seen after the controller's short lag.
//!
//! Parsed roles keep their rules in shared lists, so a rebuild after one change copies no
//! rule; it re-indexes the bindings, which are few beside the requests they decide.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use pernode_auth::rbac::{RbacAuthorizer, RbacSnapshot, Rules};
use pernode_store::{Event, EventType, Store, Watcher};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

/// The four kinds, by their store prefix (also the resource's plural).
const KINDS: [&str; 4] = [
    "roles",
    "rolebindings",
    "clusterroles",
    "clusterrolebindings",
];

/// How long an RBAC write waits for the controller before answering anyway.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A stored role: where it is, and its rules.
struct StoredRole {
    namespace: String,
    name: String,
    rules: Rules,
}

/// The parsed RBAC objects, by store key.
#[derive(Default)]
struct Objects {
    roles: BTreeMap<Arc<str>, StoredRole>,
    role_bindings: BTreeMap<Arc<str>, RoleBinding>,
    cluster_roles: BTreeMap<Arc<str>, StoredRole>,
    cluster_role_bindings: BTreeMap<Arc<str>, ClusterRoleBinding>,
}

impl Objects {
    /// Applies a write of `kind` (an index into [`KINDS`]) at `key`: `json` is the stored
    /// object, `None` a deletion (which, as an object that does not decode, leaves no entry).
    fn apply(&mut self, kind: usize, key: &Arc<str>, json: Option<&[u8]>) {
        match kind {
            0 => {
                let role = json.and_then(|j| parse::<Role>(key, j));
                set(
                    &mut self.roles,
                    key,
                    role.map(|r| stored_role(r.metadata, r.rules)),
                );
            }
            1 => set(
                &mut self.role_bindings,
                key,
                json.and_then(|j| parse(key, j)),
            ),
            2 => {
                let role = json.and_then(|j| parse::<ClusterRole>(key, j));
                set(
                    &mut self.cluster_roles,
                    key,
                    role.map(|r| stored_role(r.metadata, r.rules)),
                );
            }
            _ => set(
                &mut self.cluster_role_bindings,
                key,
                json.and_then(|j| parse(key, j)),
            ),
        }
    }

    fn snapshot(&self) -> RbacSnapshot {
        RbacSnapshot::build(
            self.roles
                .values()
                .map(|r| (r.namespace.as_str(), r.name.as_str(), r.rules.clone())),
            self.cluster_roles
                .values()
                .map(|r| (r.name.as_str(), r.rules.clone())),
            self.role_bindings.values(),
            self.cluster_role_bindings.values(),
        )
    }
}

fn stored_role(
    metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    rules: Option<Vec<k8s_openapi::api::rbac::v1::PolicyRule>>,
) -> StoredRole {
    StoredRole {
        namespace: metadata.namespace.unwrap_or_default(),
        name: metadata.name.unwrap_or_default(),
        rules: Arc::from(rules.unwrap_or_default()),
    }
}

/// An object as stored, or `None` (logged) if it does not decode: a stored object was
/// admitted, so that is a bug, and the object grants nothing rather than stopping the rest.
fn parse<T: DeserializeOwned>(key: &str, json: &[u8]) -> Option<T> {
    serde_json::from_slice(json)
        .inspect_err(|e| tracing::warn!(key, error = %e, "stored RBAC object does not decode"))
        .ok()
}

fn set<T>(map: &mut BTreeMap<Arc<str>, T>, key: &Arc<str>, value: Option<T>) {
    match value {
        Some(v) => map.insert(key.clone(), v),
        None => map.remove(key),
    };
}

/// Keeps the RBAC authorizer's policy current (see the module doc).
pub struct Controller {
    authorizer: Arc<RbacAuthorizer>,
    /// Per kind: the store version up to which its writes are in the authorizer's policy.
    observed: [watch::Sender<u64>; 4],
}

impl Controller {
    /// A controller whose authorizer allows nothing until [`Controller::start`].
    pub fn new() -> Arc<Controller> {
        Arc::new(Controller {
            authorizer: Arc::new(RbacAuthorizer::default()),
            observed: std::array::from_fn(|_| watch::channel(0).0),
        })
    }

    /// The authorizer whose policy this controller keeps (the server's chain holds it).
    pub fn authorizer(&self) -> Arc<RbacAuthorizer> {
        self.authorizer.clone()
    }

    /// The current policy (for the escalation checks of RBAC writes).
    pub fn snapshot(&self) -> Arc<RbacSnapshot> {
        self.authorizer.snapshot()
    }

    /// Loads the stored policy, then follows the store in a task until `shutdown` turns
    /// true, the store closes, or the controller is dropped with the server's state. A
    /// dropped switch is no stop: a router may outlive its `ApiServer` handle (as
    /// `in_memory_router`'s does), and its policy must stay current while it serves.
    pub async fn start(self: &Arc<Self>, store: Store, mut shutdown: watch::Receiver<bool>) {
        let (mut objects, mut from) = self.load(&store);
        let controller = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let watchers: Result<Vec<Watcher>, _> = KINDS
                    .iter()
                    .zip(from)
                    .map(|(kind, rv)| store.watch(&format!("{kind}/"), rv))
                    .collect();
                let followed = match watchers {
                    Ok(mut watchers) => {
                        follow(&controller, &mut watchers, &mut objects, &mut shutdown).await
                    }
                    Err(_) => Followed::Expired,
                };
                let this = match followed {
                    Followed::Expired => controller.upgrade(),
                    Followed::Stopped => None,
                };
                let Some(this) = this else {
                    return;
                };
                (objects, from) = this.load(&store);
            }
        });
    }

    /// Lists the four kinds and publishes their policy; returns it and the version each
    /// list is at (a watch from it misses nothing).
    fn load(&self, store: &Store) -> (Objects, [u64; 4]) {
        let mut objects = Objects::default();
        let mut from = [0; 4];
        for (kind, name) in KINDS.iter().enumerate() {
            let (rv, entries) = store.list(&format!("{name}/"), |_| true);
            for entry in entries {
                objects.apply(kind, &entry.key, Some(&entry.json));
            }
            from[kind] = rv;
        }
        self.publish(&objects, from.map(Some));
        (objects, from)
    }

    /// Replaces the policy with `objects`' and marks each kind's writes up to its version
    /// (if any) as observed.
    fn publish(&self, objects: &Objects, seen: [Option<u64>; 4]) {
        self.authorizer.replace(objects.snapshot());
        for (kind, rv) in seen.iter().enumerate() {
            if let Some(rv) = rv {
                self.observed[kind].send_replace(*rv);
            }
        }
    }

    /// Waits until the policy reflects the writes of the RBAC resource `plural` up to `rv`
    /// (a write's version), at most [`OBSERVE_TIMEOUT`]. Any other resource: at once.
    pub async fn wait_observed(&self, plural: &str, rv: u64) {
        let Some(kind) = KINDS.iter().position(|k| *k == plural) else {
            return;
        };
        let mut rx = self.observed[kind].subscribe();
        if tokio::time::timeout(OBSERVE_TIMEOUT, rx.wait_for(|seen| *seen >= rv))
            .await
            .is_err()
        {
            tracing::warn!(plural, rv, "RBAC policy not updated in time");
        }
    }
}

/// Applies the watchers' events until one falls behind the store's event ring or following
/// ends: each batch (one event, and whatever else is ready) is one new policy.
async fn follow(
    controller: &Weak<Controller>,
    watchers: &mut [Watcher],
    objects: &mut Objects,
    shutdown: &mut watch::Receiver<bool>,
) -> Followed {
    let [roles, bindings, cluster_roles, cluster_bindings] = watchers else {
        return Followed::Stopped;
    };
    let mut switch_gone = false;
    loop {
        let (kind, first) = tokio::select! {
            e = roles.next() => (0, e),
            e = bindings.next() => (1, e),
            e = cluster_roles.next() => (2, e),
            e = cluster_bindings.next() => (3, e),
            changed = shutdown.changed(), if !switch_gone => {
                switch_gone = changed.is_err();
                if !switch_gone && *shutdown.borrow() {
                    return Followed::Stopped;
                }
                continue;
            }
        };
        let mut seen = [None; 4];
        match first {
            Some(Ok(event)) => seen[kind] = Some(apply(objects, kind, &event)),
            Some(Err(_)) => return Followed::Expired,
            None => return Followed::Stopped,
        }
        // Whatever else is already committed joins this batch (`next` is cancel-safe).
        for (kind, watcher) in [
            &mut *roles,
            &mut *bindings,
            &mut *cluster_roles,
            &mut *cluster_bindings,
        ]
        .into_iter()
        .enumerate()
        {
            while let Some(next) = watcher.next().now_or_never() {
                match next {
                    Some(Ok(event)) => seen[kind] = Some(apply(objects, kind, &event)),
                    Some(Err(_)) => return Followed::Expired,
                    None => return Followed::Stopped,
                }
            }
        }
        let Some(controller) = controller.upgrade() else {
            return Followed::Stopped;
        };
        controller.publish(objects, seen);
    }
}

/// How following the store ended.
enum Followed {
    /// A watcher fell behind the event ring: list again.
    Expired,
    /// The server or the store stopped.
    Stopped,
}

/// Applies one event; returns its version.
fn apply(objects: &mut Objects, kind: usize, event: &Event) -> u64 {
    let json = (event.kind != EventType::Deleted).then_some(&event.entry.json[..]);
    objects.apply(kind, &event.entry.key, json);
    event.entry.rv
}

#[cfg(test)]
mod tests {
    use super::*;
    use pernode_auth::authorizer::{Attributes, Authorizer, Decision};
    use pernode_auth::user::UserInfo;
    use serde_json::json;

    fn store() -> Store {
        Store::in_memory(crate::registry::indexer(), Default::default())
    }

    fn may_list_pods(controller: &Controller, user: &UserInfo, ns: &str) -> bool {
        let attrs = Attributes::resource(user, "list", ns, "", "v1", "pods", "", "");
        controller.authorizer().authorize(&attrs) == Decision::Allow
    }

    fn reader() -> serde_json::Value {
        json!({"kind": "ClusterRole", "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": "reader"},
            "rules": [{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}]})
    }

    fn binding(ns: &str, user: &str) -> serde_json::Value {
        json!({"kind": "RoleBinding", "apiVersion": "rbac.authorization.k8s.io/v1",
            "metadata": {"name": "b", "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"},
            "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": user}]})
    }

    /// Stored objects are the policy from the start; writes, updates and deletions after it
    /// are in the policy once `wait_observed` returns for their version (which times out
    /// after 10 s, failing the test by its asserts, if the controller stopped).
    #[tokio::test]
    async fn follows_the_stores_rbac_objects() {
        let store = store();
        store
            .create("clusterroles/reader", reader())
            .await
            .expect("role");
        let (stop, shutdown) = watch::channel(false);
        let controller = Controller::new();
        let jane = UserInfo::new("jane", ["dev"]);
        controller.start(store.clone(), shutdown).await;
        assert!(!may_list_pods(&controller, &jane, "team-a"));
        // The server's switch going away (its handle dropped, its router kept) stops nothing.
        drop(stop);

        let written = store
            .create("rolebindings/team-a/b", binding("team-a", "jane"))
            .await
            .expect("binding");
        controller.wait_observed("rolebindings", written.rv).await;
        assert!(may_list_pods(&controller, &jane, "team-a"));
        assert!(!may_list_pods(&controller, &jane, "team-b"));

        // Another resource's writes never hold a wait, nor change the policy.
        let other = store
            .create("configmaps/team-a/c", json!({"metadata": {"name": "c"}}))
            .await
            .expect("configmap");
        controller.wait_observed("configmaps", other.rv).await;

        let updated = store
            .update("rolebindings/team-a/b", binding("team-a", "bob"), None)
            .await
            .expect("update");
        controller.wait_observed("rolebindings", updated.rv).await;
        assert!(!may_list_pods(&controller, &jane, "team-a"));
        assert!(may_list_pods(
            &controller,
            &UserInfo::new("bob", ["x"]),
            "team-a"
        ));

        let deleted = store
            .delete("clusterroles/reader", None)
            .await
            .expect("delete");
        controller.wait_observed("clusterroles", deleted.rv).await;
        assert!(!may_list_pods(
            &controller,
            &UserInfo::new("bob", ["x"]),
            "team-a"
        ));
    }

    /// A watcher that falls behind the event ring lists again and misses nothing.
    #[tokio::test]
    async fn lists_again_after_falling_behind() {
        let store = Store::in_memory(
            crate::registry::indexer(),
            pernode_store::StoreOptions {
                ring_capacity: 4,
                ..Default::default()
            },
        );
        let (_stop, shutdown) = watch::channel(false);
        let controller = Controller::new();
        controller.start(store.clone(), shutdown).await;
        store
            .create("clusterroles/reader", reader())
            .await
            .expect("role");
        // Many writes in one commit: the ring keeps only the last few of them.
        let ops = (0..32)
            .map(|i| pernode_store::Op::Create {
                key: format!("rolebindings/ns-{i}/b"),
                obj: binding(&format!("ns-{i}"), "jane"),
            })
            .collect();
        let last = store
            .commit(ops)
            .await
            .into_iter()
            .map(|written| written.expect("binding").rv)
            .max()
            .unwrap_or_default();
        controller.wait_observed("rolebindings", last).await;
        let jane = UserInfo::new("jane", ["dev"]);
        for i in 0..32 {
            assert!(
                may_list_pods(&controller, &jane, &format!("ns-{i}")),
                "ns-{i}"
            );
        }
    }
}
