//! The garbage collector: ownerReferences drive cascading deletion, as upstream's
//! `pkg/controller/garbagecollector`.
//!
//! - Background: an object whose owners no longer exist (no object with the referenced UID)
//!   is deleted.
//! - Foreground: an owner with deletionTimestamp and finalizer `foregroundDeletion` gets its
//!   dependents deleted; its finalizer is removed once every dependent whose reference has
//!   `blockOwnerDeletion: true` is gone (the API server then removes it).
//! - Orphan: an owner with deletionTimestamp and finalizer `orphan` has the references to it
//!   removed from its dependents, then the finalizer removed.
//!
//! One watch per resource kind of [`GcOptions::resources`] (for pods, with [`run_with_pods`],
//! the controllers' shared pod watch) feeds the dependency graph
//! ([`graph`]); decisions go through a deduplicating queue with per-item backoff. An owner the
//! graph has not seen is looked up live before anything is deleted (its watch may lag).
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), pernode_controllers::garbage_collector::Error> {
//! use pernode_controllers::garbage_collector::{self, GcOptions};
//! garbage_collector::run(client, GcOptions::default()).await
//! # }
//! ```

pub mod graph;

use foldhash::{HashSet, HashSetExt};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, Preconditions,
    PropagationPolicy,
};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use tracing::{debug, info};

use crate::pod_watch::PodEvents;
use crate::trim::{ControllerPod, MetaOnly};
use crate::workqueue::WorkQueue;
use graph::{Action, Graph, Item, Known, OwnerState, Propagation, ResourceIdx, Work};

/// Errors of the garbage collector.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed in a way retrying will not fix.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A background task stopped unexpectedly.
    #[error("garbage collector task failed: {0}")]
    Task(String),
}

/// A kind the collector watches (as dependent and as owner).
#[derive(Clone, Debug)]
pub struct GcResource {
    /// Group, version, kind and plural.
    pub api: ApiResource,
    /// Whether objects of this kind live in namespaces.
    pub namespaced: bool,
}

impl GcResource {
    /// A resource from its parts.
    pub fn new(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        let api_version = if group.is_empty() {
            version.to_string()
        } else {
            format!("{group}/{version}")
        };
        GcResource {
            api: ApiResource {
                group: group.to_string(),
                version: version.to_string(),
                api_version,
                kind: kind.to_string(),
                plural: plural.to_string(),
            },
            namespaced,
        }
    }
}

/// How the collector runs.
#[derive(Clone, Debug)]
pub struct GcOptions {
    /// The kinds to watch; kinds the server does not serve are skipped at start.
    pub resources: Vec<GcResource>,
    /// Concurrent workers.
    pub workers: usize,
    /// How long to wait for the initial lists before deciding anyway.
    pub sync_timeout: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        GcOptions {
            resources: vec![
                GcResource::new("", "v1", "Pod", "pods", true),
                GcResource::new("apps", "v1", "DaemonSet", "daemonsets", true),
                GcResource::new(
                    "apps",
                    "v1",
                    "ControllerRevision",
                    "controllerrevisions",
                    true,
                ),
                GcResource::new("coordination.k8s.io", "v1", "Lease", "leases", true),
                GcResource::new("", "v1", "Node", "nodes", false),
                GcResource::new("", "v1", "ConfigMap", "configmaps", true),
                GcResource::new("", "v1", "Secret", "secrets", true),
                GcResource::new("apps", "v1", "ReplicaSet", "replicasets", true),
                GcResource::new("apps", "v1", "Deployment", "deployments", true),
            ],
            workers: 8,
            sync_timeout: Duration::from_secs(30),
        }
    }
}

struct Collector {
    client: kube::Client,
    resources: Vec<GcResource>,
    graph: Mutex<Graph>,
    /// Owner UIDs verified absent by a live lookup (upstream's absentOwnerCache).
    absent: Mutex<HashSet<String>>,
    queue: WorkQueue<Work>,
    synced: tokio::sync::watch::Sender<usize>,
}

/// Run the garbage collector until an unrecoverable error, with a metadata-only watch of its
/// own for every kind.
pub async fn run(client: kube::Client, opts: GcOptions) -> Result<(), Error> {
    run_inner(client, opts, None).await
}

/// [`run`] reading pods from a shared [`PodWatch`](crate::pod_watch::PodWatch), as upstream's
/// collector takes the controller manager's shared informer of a resource where there is one
/// (`informerfactory.ForResource`) and a metadata informer only otherwise: each pod event is
/// then decoded once for all the controllers.
pub async fn run_with_pods(
    client: kube::Client,
    opts: GcOptions,
    pods: PodEvents,
) -> Result<(), Error> {
    run_inner(client, opts, Some(pods)).await
}

async fn run_inner(
    client: kube::Client,
    opts: GcOptions,
    mut pods: Option<PodEvents>,
) -> Result<(), Error> {
    let resources = served(&client, opts.resources).await;
    info!(kinds = ?resources.iter().map(|r| r.api.kind.as_str()).collect::<Vec<_>>(), "garbage collector watching");
    let (synced, synced_rx) = tokio::sync::watch::channel(0usize);
    let gc = Arc::new(Collector {
        client,
        resources,
        graph: Mutex::new(Graph::new()),
        absent: Mutex::new(HashSet::new()),
        queue: WorkQueue::new(Duration::from_millis(50), Duration::from_secs(30))
            .named("garbage_collector_attempt_to_delete"),
        synced,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for idx in 0..gc.resources.len() {
        let api = &gc.resources[idx].api;
        let shared = (api.group.is_empty() && api.plural == "pods")
            .then(|| pods.take())
            .flatten();
        match shared {
            Some(pods) => {
                let events = pods.into_stream().map(Ok::<_, watcher::Error>);
                tasks.spawn(
                    gc.clone()
                        .watch(idx, events, |pod: &Arc<ControllerPod>| &pod.metadata),
                );
            }
            None => {
                tasks.spawn(gc.clone().watch_metadata(idx));
            }
        }
    }
    // Decide only once the graph holds every kind's objects (or after a timeout), so owners
    // are found in the graph rather than looked up one by one.
    let total = gc.resources.len();
    let mut rx = synced_rx;
    let _ = tokio::time::timeout(opts.sync_timeout, rx.wait_for(|n| *n >= total)).await;
    for _ in 0..opts.workers.max(1) {
        tasks.spawn(gc.clone().worker());
    }
    let first = tasks.join_next().await;
    gc.queue.shut_down();
    tasks.abort_all();
    match first {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(Error::Task(e.to_string())),
        None => Ok(()),
    }
}

/// The resources the server serves (a 404 on list means it does not).
async fn served(client: &kube::Client, resources: Vec<GcResource>) -> Vec<GcResource> {
    let mut out = Vec::new();
    for r in resources {
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &r.api);
        match api.list(&ListParams::default().limit(1)).await {
            Err(kube::Error::Api(s)) if s.code == 404 => {
                debug!(kind = %r.api.kind, "not served; skipped")
            }
            _ => out.push(r),
        }
    }
    out
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

/// JSON patch setting an object's ownerReferences, guarded by its UID and by the UIDs at each
/// position of the list it is computed from (so a reordered or replaced list fails the patch
/// and the decision is taken again on fresh data).
pub fn owner_references_patch(item: &Item, owners: &[OwnerReference]) -> Value {
    let mut ops = vec![json!({"op": "test", "path": "/metadata/uid", "value": &*item.uid})];
    for (i, r) in item.owners.iter().enumerate() {
        ops.push(json!({"op": "test", "path": format!("/metadata/ownerReferences/{i}/uid"), "value": r.uid}));
    }
    if owners.is_empty() {
        // No empty list left behind: the field goes, as upstream's omitempty would have it.
        ops.push(json!({"op": "remove", "path": "/metadata/ownerReferences"}));
    } else {
        ops.push(json!({"op": "replace", "path": "/metadata/ownerReferences", "value": owners}));
    }
    Value::Array(ops)
}

/// JSON patch setting an object's finalizers, guarded by its UID and current finalizers.
pub fn finalizers_patch(item: &Item, finalizers: &[String]) -> Value {
    let mut ops = vec![
        json!({"op": "test", "path": "/metadata/uid", "value": &*item.uid}),
        json!({"op": "test", "path": "/metadata/finalizers", "value": item.finalizers}),
    ];
    if finalizers.is_empty() {
        ops.push(json!({"op": "remove", "path": "/metadata/finalizers"}));
    } else {
        ops.push(json!({"op": "replace", "path": "/metadata/finalizers", "value": finalizers}));
    }
    Value::Array(ops)
}

impl Collector {
    fn graph(&self) -> MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn item_of(&self, idx: ResourceIdx, m: &ObjectMeta) -> Item {
        let refs = m.owner_references.as_deref().unwrap_or_default();
        let mut owners = Vec::with_capacity(refs.len());
        owners.extend(refs.iter().cloned().map(Arc::new));
        Item {
            resource: idx,
            namespace: m.namespace.as_deref().map(Arc::from),
            name: m.name.as_deref().unwrap_or_default().into(),
            uid: m.uid.as_deref().unwrap_or_default().into(),
            owners,
            deleting: m.deletion_timestamp.is_some(),
            finalizers: m.finalizers.clone().unwrap_or_default(),
        }
    }

    fn enqueue(&self, work: Vec<Work>) {
        for w in work {
            self.queue.add(w);
        }
    }

    /// A metadata-only watch of one kind (PartialObjectMetadata), as upstream's metadata
    /// informers: the graph needs uid, owner references, finalizers and deletion only, decoded
    /// without labels, annotations and managed fields.
    async fn watch_metadata(self: Arc<Self>, idx: ResourceIdx) -> Result<(), Error> {
        let api: Api<MetaOnly<DynamicObject>> =
            Api::all_with(self.client.clone(), &self.resources[idx].api);
        let events = watcher::watcher(api, watcher::Config::default()).default_backoff();
        self.watch(idx, events, |o: &MetaOnly<DynamicObject>| &o.metadata)
            .await
    }

    /// Feeds the graph from one kind's watch events.
    async fn watch<O>(
        self: Arc<Self>,
        idx: ResourceIdx,
        events: impl futures::Stream<Item = Result<Event<O>, watcher::Error>> + Send + 'static,
        meta: impl Fn(&O) -> &ObjectMeta,
    ) -> Result<(), Error> {
        let mut stream = events.boxed();
        let mut seen: HashSet<String> = HashSet::new();
        let mut first_sync = true;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Apply(o)) => {
                    let item = self.item_of(idx, meta(&o));
                    let work = self.graph().upsert(item);
                    self.enqueue(work);
                }
                Ok(Event::InitApply(o)) => {
                    let item = self.item_of(idx, meta(&o));
                    seen.insert(item.uid.to_string());
                    let work = self.graph().upsert(item);
                    self.enqueue(work);
                }
                Ok(Event::Delete(o)) => {
                    let uid = meta(&o).uid.as_deref().unwrap_or_default();
                    let work = self.graph().remove(uid);
                    self.enqueue(work);
                }
                Ok(Event::Init) => seen.clear(),
                Ok(Event::InitDone) => {
                    // Objects deleted while the watch was down.
                    let work: Vec<Work> = {
                        let mut g = self.graph();
                        let gone: Vec<String> = g
                            .uids_of(idx)
                            .into_iter()
                            .filter(|u| !seen.contains(u))
                            .collect();
                        gone.iter().flat_map(|u| g.remove(u)).collect()
                    };
                    self.enqueue(work);
                    if first_sync {
                        first_sync = false;
                        self.synced.send_modify(|n| *n += 1);
                    }
                }
                Err(e) => {
                    debug!(kind = %self.resources[idx].api.kind, error = %e, "watch interrupted; retrying")
                }
            }
        }
        Err(Error::Task("watch ended".into()))
    }

    async fn worker(self: Arc<Self>) -> Result<(), Error> {
        while let Some(work) = self.queue.get().await {
            let res = match &work {
                Work::Attempt(uid) => self.attempt(uid).await,
                Work::Orphan(uid) => self.orphan(uid).await,
            };
            match res {
                Ok(()) => self.queue.forget(&work),
                Err(e) => {
                    debug!(?work, error = %e, "garbage collection step failed; retrying");
                    self.queue.add_rate_limited(work.clone());
                }
            }
            self.queue.done(&work);
        }
        Ok(())
    }

    fn resource_of_kind(&self, r: &OwnerReference) -> Option<ResourceIdx> {
        let group = group_of(&r.api_version);
        self.resources
            .iter()
            .position(|x| x.api.kind == r.kind && x.api.group == group)
    }

    fn api_for(&self, idx: ResourceIdx, namespace: Option<&str>) -> Api<DynamicObject> {
        let r = &self.resources[idx];
        match namespace {
            Some(ns) if r.namespaced => Api::namespaced_with(self.client.clone(), ns, &r.api),
            _ => Api::all_with(self.client.clone(), &r.api),
        }
    }

    /// The state of an owner the graph does not know, by a live lookup.
    async fn lookup_owner(
        &self,
        item: &Item,
        r: &OwnerReference,
    ) -> Result<OwnerState, kube::Error> {
        if self
            .absent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&r.uid)
        {
            return Ok(OwnerState::Dangling);
        }
        // A kind we do not watch: never collect on its account.
        let Some(idx) = self.resource_of_kind(r) else {
            return Ok(OwnerState::Solid);
        };
        let api = self.api_for(idx, item.namespace.as_deref());
        let state = match api.get_opt(&r.name).await? {
            None => OwnerState::Dangling,
            Some(o) if o.metadata.uid.as_deref() != Some(r.uid.as_str()) => OwnerState::Dangling,
            Some(o) => {
                let owner = self.item_of(idx, &o.metadata);
                if owner.deleting_dependents() {
                    OwnerState::WaitingForDependentsDeletion
                } else {
                    OwnerState::Solid
                }
            }
        };
        if state == OwnerState::Dangling {
            let mut absent = self.absent.lock().unwrap_or_else(|e| e.into_inner());
            if absent.len() > 100_000 {
                absent.clear();
            }
            absent.insert(r.uid.clone());
        }
        Ok(state)
    }

    async fn owner_states(&self, item: &Item) -> Result<Vec<OwnerState>, kube::Error> {
        let mut states = Vec::with_capacity(item.owners.len());
        for r in &item.owners {
            let known = self.graph().owner_state(&r.uid);
            states.push(match known {
                Known::Yes(s) => s,
                Known::Unknown => self.lookup_owner(item, r).await?,
            });
        }
        Ok(states)
    }

    async fn attempt(&self, uid: &str) -> Result<(), kube::Error> {
        let Some(item) = self.graph().get(uid).cloned() else {
            return Ok(());
        };
        let states = self.owner_states(&item).await?;
        let action = graph::attempt_to_delete(&item, &states, &self.graph());
        if !matches!(action, Action::Delete(_) | Action::SetOwners(_)) {
            return self.execute(&item, action).await;
        }
        // Before changing or deleting a dependent, decide again on its live state: the graph
        // may hold a version older than a write we made (an orphaning patch, say).
        let api = self.api_for(item.resource, item.namespace.as_deref());
        let Some(latest) = api.get_opt(&item.name).await? else {
            return Ok(());
        };
        if latest.metadata.uid.as_deref() != Some(uid) {
            return Ok(());
        }
        let latest = self.item_of(item.resource, &latest.metadata);
        if latest == item {
            return self.execute(&item, action).await;
        }
        let states = self.owner_states(&latest).await?;
        let action = graph::attempt_to_delete(&latest, &states, &self.graph());
        self.execute(&latest, action).await
    }

    async fn execute(&self, item: &Item, action: Action) -> Result<(), kube::Error> {
        let api = self.api_for(item.resource, item.namespace.as_deref());
        let kind = &self.resources[item.resource].api.kind;
        match action {
            Action::Nothing => Ok(()),
            Action::ProcessDependents(deps) => {
                self.enqueue(deps.into_iter().map(Work::Attempt).collect());
                Ok(())
            }
            Action::SetOwners(owners) => {
                debug!(%kind, name = %item.name, "dropping dangling owner references");
                let patch = owner_references_patch(item, &owners);
                self.patch(&api, &item.name, patch).await
            }
            Action::RemoveFinalizer(f) => {
                debug!(%kind, name = %item.name, finalizer = f, "dependents gone; removing finalizer");
                let patch = finalizers_patch(item, &graph::without_finalizer(item, f));
                self.patch(&api, &item.name, patch).await
            }
            Action::Delete(policy) => {
                debug!(%kind, name = %item.name, ?policy, "owner gone; deleting");
                let dp = DeleteParams {
                    propagation_policy: Some(match policy {
                        Propagation::Background => PropagationPolicy::Background,
                        Propagation::Foreground => PropagationPolicy::Foreground,
                        Propagation::Orphan => PropagationPolicy::Orphan,
                    }),
                    preconditions: Some(Preconditions {
                        uid: Some(item.uid.to_string()),
                        resource_version: None,
                    }),
                    ..Default::default()
                };
                match api.delete(&item.name, &dp).await {
                    Ok(_) => Ok(()),
                    // Gone, or a new object of the same name (uid precondition).
                    Err(e) if is_status(&e, 404) || is_status(&e, 409) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        }
    }

    async fn patch(
        &self,
        api: &Api<DynamicObject>,
        name: &str,
        patch: Value,
    ) -> Result<(), kube::Error> {
        let patch: json_patch::Patch =
            serde_json::from_value(patch).map_err(kube::Error::SerdeError)?;
        match api
            .patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Orphan: drop the references to the owner from all its dependents, then its finalizer.
    async fn orphan(&self, uid: &str) -> Result<(), kube::Error> {
        let (owner, dependents) = {
            let g = self.graph();
            let Some(owner) = g.get(uid).cloned() else {
                return Ok(());
            };
            if !owner.orphaning_dependents() {
                return Ok(());
            }
            let deps: Vec<Item> = g
                .dependents_of(uid)
                .iter()
                .filter_map(|d| g.get(d).cloned())
                .collect();
            (owner, deps)
        };
        for dep in &dependents {
            let api = self.api_for(dep.resource, dep.namespace.as_deref());
            let patch = owner_references_patch(dep, &graph::without_owner(dep, uid));
            self.patch(&api, &dep.name, patch).await?;
        }
        debug!(name = %owner.name, orphaned = dependents.len(), "dependents orphaned; removing finalizer");
        let api = self.api_for(owner.resource, owner.namespace.as_deref());
        let patch = finalizers_patch(
            &owner,
            &graph::without_finalizer(&owner, graph::ORPHAN_FINALIZER),
        );
        self.patch(&api, &owner.name, patch).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(owners: &[&str], finalizers: &[&str]) -> Item {
        Item {
            resource: 0,
            namespace: Some("default".into()),
            name: "p".into(),
            uid: "u".into(),
            owners: owners
                .iter()
                .map(|u| {
                    Arc::new(OwnerReference {
                        uid: u.to_string(),
                        name: format!("o-{u}"),
                        kind: "DaemonSet".into(),
                        api_version: "apps/v1".into(),
                        ..Default::default()
                    })
                })
                .collect(),
            deleting: false,
            finalizers: finalizers.iter().map(|f| f.to_string()).collect(),
        }
    }

    #[test]
    fn removing_the_last_owner_removes_the_field() {
        let p = owner_references_patch(&item(&["a"], &[]), &[]);
        let ops = p.as_array().expect("ops");
        assert_eq!(
            ops[0],
            json!({"op": "test", "path": "/metadata/uid", "value": "u"})
        );
        assert_eq!(
            ops[1],
            json!({"op": "test", "path": "/metadata/ownerReferences/0/uid", "value": "a"})
        );
        assert_eq!(
            ops[2],
            json!({"op": "remove", "path": "/metadata/ownerReferences"})
        );
        let it = item(&["a", "b"], &[]);
        let keep = graph::without_owner(&it, "a");
        let p = owner_references_patch(&it, &keep);
        assert_eq!(
            p.as_array()
                .and_then(|o| o.last())
                .and_then(|o| o["op"].as_str()),
            Some("replace")
        );
    }

    #[test]
    fn finalizer_patch_is_guarded_by_the_current_list() {
        let it = item(&[], &["orphan", "example.com/keep"]);
        let p = finalizers_patch(&it, &graph::without_finalizer(&it, "orphan"));
        let ops = p.as_array().expect("ops");
        assert_eq!(ops[1]["value"], json!(["orphan", "example.com/keep"]));
        assert_eq!(
            ops[2],
            json!({"op": "replace", "path": "/metadata/finalizers", "value": ["example.com/keep"]})
        );
        let it = item(&[], &["orphan"]);
        let p = finalizers_patch(&it, &graph::without_finalizer(&it, "orphan"));
        assert_eq!(
            p.as_array().and_then(|o| o.last()).cloned(),
            Some(json!({"op": "remove", "path": "/metadata/finalizers"}))
        );
    }

    #[test]
    fn owner_kinds_resolve_by_group_and_kind() {
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(group_of("v1"), "");
    }
}
