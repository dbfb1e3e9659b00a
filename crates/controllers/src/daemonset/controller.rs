//! Wiring of the DaemonSet controller (R119, R122-R127, R163-R168): watches on DaemonSets,
//! Pods, Nodes and ControllerRevisions feeding local caches, event handlers that lower
//! expectations and enqueue DaemonSets, a work queue with per-key exponential backoff in which
//! no key is handled by two workers at once, an event recorder, and the workers running
//! `sync::sync_daemonset`.
//!
//! The caches are our own (not `kube::runtime::reflector`) because the handlers need the old
//! and new object of every change (R165, R167, R168) and relists must turn into deletes.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use kube::{Client, Resource};
use pernode_runtime::TokenBucket;
use serde::de::DeserializeOwned;
use tokio::sync::{Notify, mpsc};

use super::backoff::Backoff;
use super::conditions::ExclusionSummary;
use super::expectations::Expectations;
use super::placement::{Placement, PlacementChecker};
use super::sync::controller_of;
use super::{EVENT_SOURCE_COMPONENT, Error};
use crate::pod_watch::{PodEvents, PodWatch};
use crate::trim::{ControllerPod, DaemonNode, Keep, NodeRecord, PodRecord, PodSharing};
use pernode_core::health_gate::NodeReadiness;

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct DaemonSetControllerOptions {
    /// Concurrent syncs (of different DaemonSets). Upstream runs 2.
    pub workers: usize,
    /// Most creates and most deletes per sync (R123, upstream's burstReplicas).
    pub burst_replicas: usize,
    /// Watch one namespace only; `None` watches all.
    pub namespace: Option<String>,
}

impl Default for DaemonSetControllerOptions {
    fn default() -> Self {
        Self {
            workers: 2,
            burst_replicas: 250,
            namespace: None,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Caches

/// `namespace/name` (or `name` for cluster-scoped objects), upstream's `KeyFunc`.
pub fn object_key(meta: &ObjectMeta) -> String {
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", meta.name.as_deref().unwrap_or("")),
        _ => meta.name.clone().unwrap_or_default(),
    }
}

/// A change seen by a watch.
#[derive(Debug)]
pub(crate) enum Change<K> {
    Added(Arc<K>),
    Updated(Arc<K>, Arc<K>),
    Deleted(Arc<K>),
}

/// The maps of a [`Cache`], changed together under one lock.
struct Maps<K> {
    /// Namespace → name → object.
    by_ns: HashMap<String, HashMap<String, Arc<K>>>,
    /// Namespace → controller UID (`""` for objects without a controller reference) → name →
    /// object: a sync only looks at what its DaemonSet controls and at orphans (R108), so it
    /// reads these two buckets instead of every object of the namespace.
    by_controller: HashMap<String, HashMap<String, HashMap<String, Arc<K>>>>,
}

/// Objects of one kind by namespace then name (cluster-scoped objects use namespace ""), also
/// indexed by controller UID.
pub(crate) struct Cache<K> {
    maps: RwLock<Maps<K>>,
}

/// What a [`Cache`] reads of an object: where it is and what controls it.
pub(crate) trait Cached {
    /// Namespace (`""` when cluster-scoped) and name.
    fn ns_name(&self) -> (&str, &str);
    /// UID of its controller reference, `""` without one.
    fn controller_uid(&self) -> &str;
}

macro_rules! cached_by_meta {
    ($($ty:ty),*) => {$(
        impl Cached for $ty {
            fn ns_name(&self) -> (&str, &str) {
                let meta = self.meta();
                (
                    meta.namespace.as_deref().unwrap_or(""),
                    meta.name.as_deref().unwrap_or(""),
                )
            }

            fn controller_uid(&self) -> &str {
                controller_of(self.meta()).map_or("", |r| r.uid.as_str())
            }
        }
    )*};
}

cached_by_meta!(DaemonSet, ControllerRevision);

impl Cached for PodRecord {
    fn ns_name(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }

    fn controller_uid(&self) -> &str {
        self.controller.as_ref().map_or("", |r| r.uid.as_str())
    }
}

impl<P> Cached for NodeRecord<P> {
    fn ns_name(&self) -> (&str, &str) {
        ("", &self.name)
    }

    fn controller_uid(&self) -> &str {
        ""
    }
}

impl<K: Cached> Maps<K> {
    fn index(&mut self, ns: &str, name: &str, obj: &Arc<K>) {
        let by_name = self
            .by_controller
            .entry(ns.to_owned())
            .or_default()
            .entry(obj.controller_uid().to_owned())
            .or_default();
        by_name.insert(name.to_owned(), obj.clone());
    }

    fn unindex(&mut self, ns: &str, name: &str, obj: &K) {
        let Some(by_uid) = self.by_controller.get_mut(ns) else {
            return;
        };
        let uid = obj.controller_uid();
        if let Some(by_name) = by_uid.get_mut(uid) {
            by_name.remove(name);
            if by_name.is_empty() {
                by_uid.remove(uid);
            }
        }
        if by_uid.is_empty() {
            self.by_controller.remove(ns);
        }
    }
}

impl<K: Cached> Cache<K> {
    fn new() -> Self {
        Self {
            maps: RwLock::new(Maps {
                by_ns: HashMap::new(),
                by_controller: HashMap::new(),
            }),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Maps<K>> {
        // Plain maps stay consistent even if a holder panicked: recover the guard.
        self.maps.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Maps<K>> {
        self.maps.write().unwrap_or_else(|p| p.into_inner())
    }

    fn ns_name(obj: &K) -> (String, String) {
        let (ns, name) = obj.ns_name();
        (ns.to_owned(), name.to_owned())
    }

    pub(crate) fn get(&self, ns: &str, name: &str) -> Option<Arc<K>> {
        self.read().by_ns.get(ns)?.get(name).cloned()
    }

    /// Every object of a namespace.
    pub(crate) fn list_ns(&self, ns: &str) -> Vec<Arc<K>> {
        self.read()
            .by_ns
            .get(ns)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The objects of a namespace whose controller reference has UID `uid`, plus those without
    /// a controller reference when `orphans`.
    pub(crate) fn list_controlled(&self, ns: &str, uid: &str, orphans: bool) -> Vec<Arc<K>> {
        let maps = self.read();
        let Some(by_uid) = maps.by_controller.get(ns) else {
            return Vec::new();
        };
        let mut out: Vec<Arc<K>> = by_uid
            .get(uid)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        if orphans
            && !uid.is_empty()
            && let Some(m) = by_uid.get("")
        {
            out.extend(m.values().cloned());
        }
        out
    }

    /// Every object.
    pub(crate) fn list(&self) -> Vec<Arc<K>> {
        self.read()
            .by_ns
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }

    fn apply(&self, obj: K) -> Change<K> {
        let (ns, name) = Self::ns_name(&obj);
        let new = Arc::new(obj);
        let mut maps = self.write();
        let old = maps
            .by_ns
            .entry(ns.clone())
            .or_default()
            .insert(name.clone(), new.clone());
        if let Some(old) = &old {
            maps.unindex(&ns, &name, old);
        }
        maps.index(&ns, &name, &new);
        drop(maps);
        match old {
            Some(old) => Change::Updated(old, new),
            None => Change::Added(new),
        }
    }

    fn delete(&self, obj: K) -> Change<K> {
        let (ns, name) = Self::ns_name(&obj);
        let mut maps = self.write();
        let removed = maps.by_ns.get_mut(&ns).and_then(|m| m.remove(&name));
        if let Some(removed) = &removed {
            maps.unindex(&ns, &name, removed);
        }
        drop(maps);
        // The last known state is what handlers need (owner references of a vanished pod).
        Change::Deleted(removed.unwrap_or_else(|| Arc::new(obj)))
    }

    /// Replaces the content after a (re)list; objects gone from the list become deletes.
    fn replace(&self, objs: Vec<K>) -> Vec<Change<K>> {
        let mut seen: HashSet<(String, String)> = HashSet::new();
        let mut changes = Vec::new();
        for obj in objs {
            seen.insert(Self::ns_name(&obj));
            changes.push(self.apply(obj));
        }
        let mut gone = Vec::new();
        {
            let mut maps = self.write();
            for (ns, objs) in maps.by_ns.iter_mut() {
                objs.retain(|name, obj| {
                    let keep = seen.contains(&(ns.clone(), name.clone()));
                    if !keep {
                        gone.push((ns.clone(), name.clone(), obj.clone()));
                    }
                    keep
                });
            }
            for (ns, name, obj) in &gone {
                maps.unindex(ns, name, obj);
            }
        }
        changes.extend(gone.into_iter().map(|(_, _, obj)| Change::Deleted(obj)));
        changes
    }
}

// ---------------------------------------------------------------------------------------
// Work queue

/// The work queue of DaemonSet keys (R127): deduplicated, never handed to two workers,
/// per-key exponential backoff from 5 ms to 1000 s under a global 10 qps bucket (burst 100).
pub type WorkQueue = pernode_runtime::WorkQueue<String>;

/// A queue with upstream's DaemonSet controller rate limiter.
pub fn daemonset_queue() -> WorkQueue {
    WorkQueue::with_bucket(
        Duration::from_millis(5),
        Duration::from_secs(1000),
        10.0,
        100.0,
    )
    .named("daemonset")
}

// ---------------------------------------------------------------------------------------
// Events

struct EventRequest {
    ds: Arc<DaemonSet>,
    type_: &'static str,
    reason: &'static str,
    message: String,
}

/// Records core/v1 Events on DaemonSets (R52), shaped as client-go's recorder does it so
/// `kubectl describe ds` shows them: deduplicated (count, lastTimestamp), aggregated beyond
/// 10 distinct messages of one reason in 10 minutes, spam-limited per object (burst 25, then
/// one per 5 minutes). Writes happen on a background task so syncs never wait for them.
#[derive(Clone)]
pub struct EventRecorder {
    tx: mpsc::UnboundedSender<EventRequest>,
}

impl EventRecorder {
    fn start(client: Client) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(event_writer(client, rx));
        Self { tx }
    }

    /// Records an event on a DaemonSet.
    pub(crate) fn record(
        &self,
        ds: &Arc<DaemonSet>,
        type_: &'static str,
        reason: &'static str,
        message: String,
    ) {
        tracing::debug!(ds = %object_key(&ds.metadata), reason, %message, "event");
        // The receiver lives as long as the runtime; a closed channel only loses an event.
        let _ = self.tx.send(EventRequest {
            ds: ds.clone(),
            type_,
            reason,
            message,
        });
    }
}

const SPAM_BURST: f64 = 25.0;
const SPAM_REFILL_PER_SEC: f64 = 1.0 / 300.0;
const AGGREGATE_MAX_EVENTS: usize = 10;
const AGGREGATE_WINDOW: Duration = Duration::from_secs(600);

struct Aggregate {
    messages: HashSet<String>,
    since: Instant,
}

struct Seen {
    namespace: String,
    name: String,
    count: i32,
}

async fn event_writer(client: Client, mut rx: mpsc::UnboundedReceiver<EventRequest>) {
    let mut spam: HashMap<String, TokenBucket> = HashMap::new();
    let mut aggregates: HashMap<(String, &'static str, &'static str), Aggregate> = HashMap::new();
    let mut seen: HashMap<(String, &'static str, &'static str, String), Seen> = HashMap::new();
    while let Some(req) = rx.recv().await {
        let meta = &req.ds.metadata;
        let uid = meta.uid.clone().unwrap_or_default();
        let now = Instant::now();
        // Spam filter per object.
        let bucket = spam
            .entry(uid.clone())
            .or_insert_with(|| TokenBucket::new(SPAM_REFILL_PER_SEC, SPAM_BURST));
        if !bucket.try_take(now) {
            continue;
        }
        // Aggregation of similar events with different messages.
        let agg = aggregates
            .entry((uid.clone(), req.type_, req.reason))
            .or_insert(Aggregate {
                messages: HashSet::new(),
                since: now,
            });
        if now.duration_since(agg.since) > AGGREGATE_WINDOW {
            agg.messages.clear();
            agg.since = now;
        }
        agg.messages.insert(req.message.clone());
        let message = if agg.messages.len() > AGGREGATE_MAX_EVENTS {
            "(combined from similar events): ".to_owned() + &req.message
        } else {
            req.message.clone()
        };
        let dedup_key = if agg.messages.len() > AGGREGATE_MAX_EVENTS {
            (uid.clone(), req.type_, req.reason, String::new())
        } else {
            (uid.clone(), req.type_, req.reason, message.clone())
        };
        let ts = Time(Timestamp::now());
        if let Some(s) = seen.get_mut(&dedup_key) {
            s.count += 1;
            let api: Api<Event> = Api::namespaced(client.clone(), &s.namespace);
            let patch = serde_json::json!({
                "count": s.count, "lastTimestamp": ts, "message": message,
            });
            if let Err(e) = api
                .patch(&s.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::debug!(error = %e, "could not update event");
            }
            continue;
        }
        let namespace = meta
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_owned());
        let ds_name = meta.name.clone().unwrap_or_default();
        let nanos = Timestamp::now().as_nanosecond();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{ds_name}.{nanos:x}")),
                namespace: Some(namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("apps/v1".to_owned()),
                kind: Some("DaemonSet".to_owned()),
                name: Some(ds_name),
                namespace: Some(namespace.clone()),
                uid: meta.uid.clone(),
                resource_version: meta.resource_version.clone(),
                ..ObjectReference::default()
            },
            reason: Some(req.reason.to_owned()),
            message: Some(message),
            type_: Some(req.type_.to_owned()),
            first_timestamp: Some(ts.clone()),
            last_timestamp: Some(ts),
            count: Some(1),
            source: Some(EventSource {
                component: Some(EVENT_SOURCE_COMPONENT.to_owned()),
                host: None,
            }),
            reporting_component: Some(EVENT_SOURCE_COMPONENT.to_owned()),
            reporting_instance: Some(String::new()),
            ..Event::default()
        };
        let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
        match api.create(&PostParams::default(), &event).await {
            Ok(created) => {
                seen.insert(
                    dedup_key,
                    Seen {
                        namespace,
                        name: created.metadata.name.unwrap_or_default(),
                        count: 1,
                    },
                );
            }
            Err(e) => tracing::debug!(error = %e, "could not record event"),
        }
        // Keep the maps bounded: forget what is older than the aggregation window.
        if aggregates.len() > 10_000 {
            aggregates.retain(|_, a| now.duration_since(a.since) <= AGGREGATE_WINDOW);
        }
        if seen.len() > 10_000 {
            seen.clear();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The controller

/// Shared state of the controller: caches, expectations, backoff, queue, recorder.
pub(crate) struct Ctx {
    pub(crate) client: Client,
    pub(crate) opts: DaemonSetControllerOptions,
    pub(crate) dss: Cache<DaemonSet>,
    pub(crate) pods: Cache<PodRecord>,
    pub(crate) revisions: Cache<ControllerRevision>,
    pub(crate) nodes: Cache<NodeRecord<Option<NodeReadiness>>>,
    /// Bumped whenever a node appears, goes, or changes its labels or taints: what placement
    /// reads (R3-R7). Placements are recomputed only when it moved.
    node_generation: AtomicU64,
    /// Per DaemonSet key: the node list (sorted by name) with placements, as last computed.
    placements: Mutex<HashMap<String, CachedPlacements>>,
    pub(crate) expectations: Expectations,
    pub(crate) backoff: Backoff,
    pub(crate) queue: Arc<WorkQueue>,
    pub(crate) recorder: EventRecorder,
}

/// Placements of one DaemonSet over the node list, valid while the simulated pod and the node
/// generation are the same.
struct CachedPlacements {
    checker: PlacementChecker,
    node_generation: u64,
    placements: Arc<Placements>,
}

/// Every node, sorted by name, with a DaemonSet's placement on it, and the nodes it leaves
/// out counted by rule (the `NodesExcluded` condition).
#[derive(Debug, Default)]
pub(crate) struct Placements {
    pub(crate) nodes: Vec<(String, Placement)>,
    pub(crate) excluded: ExclusionSummary,
}

impl Ctx {
    /// Empty caches and expectations; the event recorder's writer task starts at once.
    fn new(client: Client, opts: DaemonSetControllerOptions) -> Self {
        Self {
            recorder: EventRecorder::start(client.clone()),
            client,
            opts,
            dss: Cache::new(),
            pods: Cache::new(),
            revisions: Cache::new(),
            nodes: Cache::new(),
            node_generation: AtomicU64::new(0),
            placements: Mutex::new(HashMap::new()),
            expectations: Expectations::new(),
            backoff: Backoff::default(),
            queue: Arc::new(daemonset_queue()),
        }
    }

    /// Every node, sorted by name, with the DaemonSet's placement on it (R2). Computed once per
    /// change of the nodes' labels, taints or set, or of the DaemonSet's pod template, rather
    /// than on every sync.
    pub(crate) fn placements(&self, key: &str, ds: &DaemonSet) -> Arc<Placements> {
        let checker = PlacementChecker::new(ds);
        // Read before the node list: a node change applied after this read bumps it again.
        let node_generation = self.node_generation.load(Ordering::SeqCst);
        {
            let cached = self.placements.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(c) = cached.get(key)
                && c.node_generation == node_generation
                && c.checker == checker
            {
                return c.placements.clone();
            }
        }
        let mut nodes = self.nodes.list();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut excluded_by = Vec::new();
        let list: Vec<(String, Placement)> = nodes
            .iter()
            .map(|n| {
                let (placement, exclusion) = checker.judge(&**n);
                if let Some(rule) = exclusion {
                    excluded_by.push(checker.describe(&rule));
                }
                (n.name.to_string(), placement)
            })
            .collect();
        let placements = Arc::new(Placements {
            nodes: list,
            excluded: ExclusionSummary::of(excluded_by),
        });
        self.placements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                key.to_owned(),
                CachedPlacements {
                    checker,
                    node_generation,
                    placements: placements.clone(),
                },
            );
        placements
    }

    /// Forgets the placements of a DaemonSet that is gone.
    pub(crate) fn forget_placements(&self, key: &str) {
        self.placements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }

    fn nodes_changed(&self) {
        self.node_generation.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn ds_api(&self, ns: &str) -> Api<DaemonSet> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub(crate) fn pod_api(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }

    pub(crate) fn rev_api(&self, ns: &str) -> Api<ControllerRevision> {
        Api::namespaced(self.client.clone(), ns)
    }

    fn enqueue(&self, ds: &DaemonSet) {
        self.queue.add(object_key(&ds.metadata));
    }

    /// The DaemonSet a controller reference points to, if it is one we know with that UID.
    fn resolve_controller_ref(
        &self,
        ns: &str,
        controller: Option<&OwnerReference>,
    ) -> Option<Arc<DaemonSet>> {
        let r = controller?;
        if r.kind != "DaemonSet" {
            return None;
        }
        let ds = self.dss.get(ns, &r.name)?;
        (ds.metadata.uid.as_deref() == Some(r.uid.as_str())).then_some(ds)
    }

    /// DaemonSets of the namespace whose selector matches the labels (orphan handling), given
    /// as a lookup.
    fn daemonsets_selecting<'v>(
        &self,
        ns: &str,
        label: impl Fn(&str) -> Option<&'v str>,
    ) -> Vec<Arc<DaemonSet>> {
        self.dss
            .list_ns(ns)
            .into_iter()
            .filter(|ds| {
                let Some(spec) = ds.spec.as_ref() else {
                    return false;
                };
                match pernode_core::labels::from_k8s(&spec.selector) {
                    // An empty selector matches nothing here (it is refused by sync, R28).
                    Ok(sel) => !sel.is_empty() && sel.matches_with(&label),
                    Err(_) => false,
                }
            })
            .collect()
    }

    // R163.
    fn on_daemonset(&self, change: Change<DaemonSet>) {
        match change {
            Change::Added(ds) => self.enqueue(&ds),
            Change::Updated(old, cur) => {
                if old.metadata.uid != cur.metadata.uid {
                    // R113: a new object under the same name starts clean.
                    self.expectations.delete(&object_key(&old.metadata));
                }
                self.enqueue(&cur);
            }
            Change::Deleted(ds) => {
                self.expectations.delete(&object_key(&ds.metadata));
                self.forget_placements(&object_key(&ds.metadata));
                self.enqueue(&ds);
            }
        }
    }

    // R164-R166.
    fn on_pod(&self, change: Change<PodRecord>) {
        match change {
            Change::Added(pod) => {
                if pod.deleting {
                    return self.pod_deleted(&pod);
                }
                let ns = &pod.namespace;
                if pod.controller.is_some() {
                    if let Some(ds) = self.resolve_controller_ref(ns, pod.controller.as_deref()) {
                        self.expectations
                            .creation_observed(&object_key(&ds.metadata));
                        self.enqueue(&ds);
                    }
                    return;
                }
                for ds in self.daemonsets_selecting(ns, |k| pod.labels.get(k)) {
                    self.enqueue(&ds);
                }
            }
            Change::Updated(old, cur) => {
                if old.resource_version == cur.resource_version {
                    return;
                }
                if cur.deleting {
                    return self.pod_deleted(&cur);
                }
                let ns = &cur.namespace;
                let cur_ref = cur.controller.as_deref();
                let old_ref = old.controller.as_deref();
                let ref_changed = cur_ref != old_ref;
                if ref_changed
                    && old_ref.is_some()
                    && let Some(ds) = self.resolve_controller_ref(ns, old_ref)
                {
                    self.enqueue(&ds);
                }
                if cur_ref.is_some() {
                    let Some(ds) = self.resolve_controller_ref(ns, cur_ref) else {
                        return;
                    };
                    self.enqueue(&ds);
                    let min_ready = ds
                        .spec
                        .as_ref()
                        .and_then(|s| s.min_ready_seconds)
                        .unwrap_or(0);
                    let became_ready = !old.is_ready() && cur.is_ready();
                    if became_ready && min_ready > 0 {
                        self.queue.add_after(
                            object_key(&ds.metadata),
                            Duration::from_secs(min_ready as u64 + 1),
                        );
                    }
                    return;
                }
                let labels_changed = old.labels != cur.labels;
                if labels_changed || ref_changed {
                    for ds in self.daemonsets_selecting(ns, |k| cur.labels.get(k)) {
                        self.enqueue(&ds);
                    }
                }
            }
            Change::Deleted(pod) => self.pod_deleted(&pod),
        }
    }

    fn pod_deleted(&self, pod: &PodRecord) {
        if let Some(ds) = self.resolve_controller_ref(&pod.namespace, pod.controller.as_deref()) {
            self.expectations
                .deletion_observed(&object_key(&ds.metadata));
            self.enqueue(&ds);
        }
    }

    // R167, as upstream's addHistory, updateHistory and deleteHistory.
    fn on_revision(&self, change: Change<ControllerRevision>) {
        match change {
            Change::Added(rev) => {
                if rev.metadata.deletion_timestamp.is_some() {
                    return self.revision_deleted(&rev);
                }
                // Owned by a DaemonSet we know: upstream only logs it, so the revision a sync
                // has just created does not cause another sync.
                if controller_of(&rev.metadata).is_some() {
                    return;
                }
                // An orphan: the DaemonSets that select it may adopt it.
                self.enqueue_selecting_revision(&rev);
            }
            Change::Updated(old, cur) => {
                if old.metadata.resource_version == cur.metadata.resource_version {
                    return;
                }
                let ns = cur.metadata.namespace.as_deref().unwrap_or_default();
                let old_ref = controller_of(&old.metadata);
                let cur_ref = controller_of(&cur.metadata);
                let ref_changed = old_ref != cur_ref;
                if ref_changed && let Some(ds) = self.resolve_controller_ref(ns, old_ref) {
                    self.enqueue(&ds);
                }
                if cur_ref.is_some() {
                    if let Some(ds) = self.resolve_controller_ref(ns, cur_ref) {
                        self.enqueue(&ds);
                    }
                    return;
                }
                if ref_changed || old.metadata.labels != cur.metadata.labels {
                    self.enqueue_selecting_revision(&cur);
                }
            }
            Change::Deleted(rev) => self.revision_deleted(&rev),
        }
    }

    /// A revision's deletion concerns its owner only: nobody cares about an orphan's.
    fn revision_deleted(&self, rev: &ControllerRevision) {
        let ns = rev.metadata.namespace.as_deref().unwrap_or_default();
        if let Some(ds) = self.resolve_controller_ref(ns, controller_of(&rev.metadata)) {
            self.enqueue(&ds);
        }
    }

    fn enqueue_selecting_revision(&self, rev: &ControllerRevision) {
        let ns = rev.metadata.namespace.as_deref().unwrap_or_default();
        let labels = rev.metadata.labels.as_ref();
        for ds in self.daemonsets_selecting(ns, |k| labels?.get(k).map(String::as_str)) {
            self.enqueue(&ds);
        }
    }

    // R157, R168.
    fn on_node(&self, change: Change<NodeRecord<Option<NodeReadiness>>>) {
        match change {
            Change::Added(node) => {
                self.nodes_changed();
                for ds in self.dss.list() {
                    if PlacementChecker::new(&ds).check(&node).should_run {
                        self.enqueue(&ds);
                    }
                }
            }
            Change::Updated(old, cur) => {
                // Unset labels or taints are none.
                if old.labels == cur.labels && old.taints == cur.taints {
                    // A node going NotReady may trip a health gate; placement does not care.
                    if old.part != cur.part {
                        for ds in self.dss.list() {
                            if super::health_gate::is_gated(&ds) {
                                self.enqueue(&ds);
                            }
                        }
                    }
                    return;
                }
                self.nodes_changed();
                let relabelled = old.labels != cur.labels;
                for ds in self.dss.list() {
                    let checker = PlacementChecker::new(&ds);
                    // New labels may move the node to another wave.
                    let waved =
                        relabelled
                            && ds.metadata.annotations.as_ref().is_some_and(|a| {
                                a.contains_key(pernode_core::waves::WAVES_ANNOTATION)
                            });
                    if waved || checker.check(&old) != checker.check(&cur) {
                        self.enqueue(&ds);
                    }
                }
            }
            // R156: pod GC removes the pods of a vanished node; their deletion resyncs.
            Change::Deleted(_) => self.nodes_changed(),
        }
    }
}

/// Feeds one watch into a cache and a handler; marks `synced` after the first full list.
/// Events carry objects as decoded (`E`: only the fields the controller reads); the cache holds
/// what `keep` makes of them (which may share parts equal to other objects').
async fn informer<E, K>(
    mut events: impl Stream<Item = watcher::Event<E>> + Unpin,
    mut keep: impl FnMut(E) -> K,
    cache: impl Fn(&Ctx) -> &Cache<K>,
    handle: impl Fn(&Ctx, Change<K>),
    ctx: Arc<Ctx>,
    synced: Arc<(AtomicUsize, Notify)>,
) where
    K: Cached + Send + Sync,
{
    let mut buffer: Vec<K> = Vec::new();
    let mut first = true;
    while let Some(event) = events.next().await {
        match event {
            watcher::Event::Init => buffer.clear(),
            watcher::Event::InitApply(obj) => buffer.push(keep(obj)),
            watcher::Event::InitDone => {
                for change in cache(&ctx).replace(std::mem::take(&mut buffer)) {
                    handle(&ctx, change);
                }
                if first {
                    first = false;
                    synced.0.fetch_add(1, Ordering::SeqCst);
                    synced.1.notify_waiters();
                }
            }
            watcher::Event::Apply(obj) => {
                let change = cache(&ctx).apply(keep(obj));
                handle(&ctx, change);
            }
            watcher::Event::Delete(obj) => {
                let change = cache(&ctx).delete(keep(obj));
                handle(&ctx, change);
            }
        }
    }
}

/// The events of a watch of its own, decoded as `D`, retried with backoff; errors are logged.
fn watch_of<D>(api: Api<D>) -> impl Stream<Item = watcher::Event<D>> + Send + Unpin + 'static
where
    D: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    D::DynamicType: Default,
{
    watcher(api, watcher::Config::default())
        .default_backoff()
        .filter_map(|event| {
            std::future::ready(match event {
                Ok(event) => Some(event),
                Err(e) => {
                    tracing::warn!(error = %e, kind = %D::kind(&Default::default()), "watch error");
                    None
                }
            })
        })
        .boxed()
}

fn api_for<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the DaemonSet controller until its watches end (they retry forever, so normally until
/// the task is dropped).
pub async fn run(client: Client, opts: DaemonSetControllerOptions) -> Result<(), Error> {
    PodWatch::new(api_for(&client, opts.namespace.as_deref()))
        .feed(|pods| run_with_pods(client, opts, pods))
        .await
}

/// [`run`] reading pods from a shared [`PodWatch`] (of the namespace the options name, or all).
pub async fn run_with_pods(
    client: Client,
    opts: DaemonSetControllerOptions,
    pods: PodEvents,
) -> Result<(), Error> {
    let workers = opts.workers.max(1);
    let ns = opts.namespace.clone();
    let ctx = Arc::new(Ctx::new(client.clone(), opts));
    let synced = Arc::new((AtomicUsize::new(0), Notify::new()));
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(informer(
        watch_of(api_for::<DaemonSet>(&client, ns.as_deref())),
        DaemonSet::keep,
        |c: &Ctx| &c.dss,
        Ctx::on_daemonset,
        ctx.clone(),
        synced.clone(),
    ));
    tasks.spawn(informer(
        pods.into_stream(),
        {
            let mut sharing = PodSharing::default();
            move |pod: Arc<ControllerPod>| sharing.share(PodRecord::from(&*pod))
        },
        |c: &Ctx| &c.pods,
        Ctx::on_pod,
        ctx.clone(),
        synced.clone(),
    ));
    tasks.spawn(informer(
        watch_of(api_for::<ControllerRevision>(&client, ns.as_deref())),
        ControllerRevision::keep,
        |c: &Ctx| &c.revisions,
        Ctx::on_revision,
        ctx.clone(),
        synced.clone(),
    ));
    tasks.spawn(informer(
        watch_of(Api::<DaemonNode>::all(client.clone())),
        DaemonNode::keep,
        |c: &Ctx| &c.nodes,
        Ctx::on_node,
        ctx.clone(),
        synced.clone(),
    ));
    // Wait for every cache before the first sync: acting on a partial pod list would create
    // duplicates.
    loop {
        let notified = synced.1.notified();
        if synced.0.load(Ordering::SeqCst) >= 4 {
            break;
        }
        notified.await;
    }
    tracing::info!(workers, "daemonset controller caches synced");
    {
        let ctx = ctx.clone();
        tasks.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                ctx.backoff.gc(Instant::now());
            }
        });
    }
    for _ in 0..workers {
        let ctx = ctx.clone();
        tasks.spawn(async move {
            loop {
                let Some(key) = ctx.queue.get().await else {
                    return;
                };
                let started = Instant::now();
                match super::sync::sync_daemonset(&ctx, &key).await {
                    Ok(()) => ctx.queue.forget(&key),
                    Err(e) => {
                        tracing::warn!(ds = %key, error = %e, "sync failed");
                        ctx.queue.add_rate_limited(key.clone());
                    }
                }
                tracing::trace!(ds = %key, elapsed = ?started.elapsed(), "synced");
                ctx.queue.done(&key);
            }
        });
    }
    // Tasks loop forever; one ending means a bug or a panic: report it.
    while let Some(res) = tasks.join_next().await {
        if let Err(e) = res {
            tracing::error!(error = %e, "daemonset controller task failed");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn r127_queue_dedups_and_never_hands_a_key_to_two_workers() {
        let q = daemonset_queue();
        q.add("a".to_string());
        q.add("a".to_string());
        q.add("b".to_string());
        assert_eq!(q.len(), 2);
        assert_eq!(q.get().await.as_deref(), Some("a"));
        // Added while processing: not queued until done.
        q.add("a".to_string());
        assert_eq!(q.len(), 1);
        assert_eq!(q.get().await.as_deref(), Some("b"));
        assert!(q.is_empty());
        q.done(&"a".to_string());
        assert_eq!(q.get().await.as_deref(), Some("a"));
    }

    /// R122, R33: once the expectations are satisfied, the per-node pass must see every pod
    /// they waited for. Here the creation a previous sync issued is observed while this sync
    /// creates the revision of a just-changed template (an API round trip: the window a loaded
    /// machine widens); a pod list read before that would miss the pod and the sync would
    /// create a second one on its node.
    #[tokio::test]
    async fn r122_creation_observed_mid_sync_is_seen_by_the_per_node_pass() {
        use crate::trim::{ControllerPod, DaemonNode};
        use k8s_openapi::api::core::v1::Pod;
        use kube::api::ListParams;
        use serde_json::json;
        use tower::ServiceExt;

        type Hook = Box<dyn FnOnce() + Send>;
        let hook: Arc<Mutex<Option<Hook>>> = Arc::new(Mutex::new(None));
        let router = pernode_apiserver::in_memory_router()
            .await
            .expect("api server");
        let service = {
            let hook = hook.clone();
            tower::service_fn(move |req: http::Request<kube::client::Body>| {
                if req.method() == http::Method::POST
                    && req.uri().path().ends_with("/controllerrevisions")
                    && let Some(f) = hook.lock().unwrap().take()
                {
                    f();
                }
                router.clone().oneshot(req)
            })
        };
        let client = Client::new(service, "default");
        let ctx = Arc::new(Ctx::new(
            client.clone(),
            DaemonSetControllerOptions::default(),
        ));
        let node: DaemonNode =
            serde_json::from_value(json!({"metadata": {"name": "n1"}})).expect("node");
        ctx.nodes.apply(node.keep());
        let dss: Api<DaemonSet> = Api::namespaced(client.clone(), "default");
        let ds: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "ds", "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": "ds"}},
                "updateStrategy": {"type": "OnDelete"},
                "template": {
                    "metadata": {"labels": {"app": "ds"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]},
                },
            },
        }))
        .expect("daemon set");
        let ds = dss
            .create(&PostParams::default(), &ds)
            .await
            .expect("create daemon set");
        ctx.dss.apply(ds.clone());
        let key = object_key(&ds.metadata);

        // A previous sync created the pod of n1: it exists and is expected, but its watch
        // event has not reached the cache yet.
        ctx.expectations.set(&key, 1, 0);
        let template = super::super::pods::pod_template(
            &ds,
            super::super::pods::template_generation(&ds),
            "previous",
        );
        let owner = super::super::pods::controller_ref(&ds).expect("owner");
        let pod = super::super::pods::new_pod(&template, "default", &owner, "n1");
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let created = pods
            .create(&PostParams::default(), &pod)
            .await
            .expect("create pod");
        let event: ControllerPod =
            serde_json::from_value(serde_json::to_value(&created).expect("json")).expect("pod");
        // The event arrives while the sync creates the current revision, as the informer
        // delivers it: cache first, then the handler (which lowers the expectations).
        *hook.lock().unwrap() = Some({
            let ctx = ctx.clone();
            Box::new(move || {
                let change = ctx.pods.apply(event.keep());
                ctx.on_pod(change);
            })
        });

        super::super::sync::sync_daemonset(&ctx, &key)
            .await
            .expect("sync");
        assert!(hook.lock().unwrap().is_none(), "the event arrived mid-sync");
        let names: Vec<String> = pods
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        assert_eq!(
            names,
            vec![created.metadata.name.clone().expect("name")],
            "one pod on n1"
        );
    }

    /// The keys queued, sorted; the queue is left empty.
    async fn queued(ctx: &Ctx) -> Vec<String> {
        let mut keys = Vec::new();
        while !ctx.queue.is_empty() {
            let Some(k) = ctx.queue.get().await else {
                break;
            };
            ctx.queue.done(&k);
            keys.push(k);
        }
        keys.sort();
        keys
    }

    /// A node's Ready condition changing enqueues the DaemonSets with a health gate only:
    /// placement does not read it.
    #[tokio::test]
    async fn a_node_going_not_ready_enqueues_gated_daemonsets() {
        use super::super::testutil::ds;
        let client = Client::new(
            pernode_apiserver::in_memory_router()
                .await
                .expect("api server"),
            "default",
        );
        let ctx = Ctx::new(client, DaemonSetControllerOptions::default());
        let mut gated = ds("gated");
        gated.metadata.annotations = Some(
            [(
                pernode_core::rollout::MAX_FAILED_NODES_ANNOTATION.to_string(),
                "1".to_string(),
            )]
            .into(),
        );
        ctx.dss.apply(gated);
        ctx.dss.apply(ds("plain"));
        let node = |ready: bool| {
            Arc::new(NodeRecord {
                name: "n1".into(),
                part: Some(NodeReadiness { ready, since: None }),
                ..NodeRecord::default()
            })
        };
        ctx.on_node(Change::Updated(node(true), node(true)));
        assert_eq!(queued(&ctx).await, Vec::<String>::new(), "unchanged");
        ctx.on_node(Change::Updated(node(true), node(false)));
        assert_eq!(queued(&ctx).await, ["default/gated"], "went NotReady");
    }

    /// R167: which ControllerRevision events enqueue which DaemonSets.
    #[tokio::test]
    async fn r167_revision_events_enqueue_as_upstream() {
        use super::super::pods::controller_ref;
        use super::super::testutil::ds;

        let client = Client::new(
            pernode_apiserver::in_memory_router()
                .await
                .expect("api server"),
            "default",
        );
        let ctx = Ctx::new(client, DaemonSetControllerOptions::default());
        let a = ds("a");
        let b = ds("b");
        ctx.dss.apply(a.clone());
        ctx.dss.apply(b.clone());
        let rev = |rv: &str, labels: &str, owner: Option<&DaemonSet>| {
            Arc::new(ControllerRevision {
                metadata: ObjectMeta {
                    name: Some("r".into()),
                    namespace: Some("default".into()),
                    resource_version: Some(rv.into()),
                    labels: Some([("app".to_string(), labels.to_string())].into()),
                    owner_references: owner
                        .map(|ds| vec![controller_ref(ds).expect("controller ref")]),
                    ..ObjectMeta::default()
                },
                ..ControllerRevision::default()
            })
        };
        let key = |name: &str| format!("default/{name}");

        // Add: owned → nothing; orphan → the DaemonSets selecting it; terminating → a delete.
        ctx.on_revision(Change::Added(rev("1", "a", Some(&a))));
        assert_eq!(queued(&ctx).await, Vec::<String>::new(), "owned add");
        ctx.on_revision(Change::Added(rev("1", "a", None)));
        assert_eq!(queued(&ctx).await, [key("a")], "orphan add");
        let mut terminating = (*rev("1", "b", Some(&a))).clone();
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::now(),
            ));
        ctx.on_revision(Change::Added(Arc::new(terminating)));
        assert_eq!(
            queued(&ctx).await,
            [key("a")],
            "terminating add is a delete"
        );

        // Update: same version → nothing; owned → owner; owner changed → both; orphan → the
        // selecting DaemonSets only if labels or the controller changed.
        ctx.on_revision(Change::Updated(
            rev("1", "a", Some(&a)),
            rev("1", "a", Some(&b)),
        ));
        assert_eq!(queued(&ctx).await, Vec::<String>::new(), "resync");
        ctx.on_revision(Change::Updated(
            rev("1", "a", Some(&a)),
            rev("2", "a", Some(&a)),
        ));
        assert_eq!(queued(&ctx).await, [key("a")], "owned update");
        ctx.on_revision(Change::Updated(
            rev("1", "a", Some(&a)),
            rev("2", "a", Some(&b)),
        ));
        assert_eq!(queued(&ctx).await, [key("a"), key("b")], "owner changed");
        ctx.on_revision(Change::Updated(rev("1", "a", None), rev("2", "a", None)));
        assert_eq!(
            queued(&ctx).await,
            Vec::<String>::new(),
            "orphan, nothing changed"
        );
        ctx.on_revision(Change::Updated(rev("1", "a", None), rev("2", "b", None)));
        assert_eq!(queued(&ctx).await, [key("b")], "orphan relabelled");
        ctx.on_revision(Change::Updated(
            rev("1", "b", Some(&a)),
            rev("2", "b", None),
        ));
        assert_eq!(
            queued(&ctx).await,
            [key("a"), key("b")],
            "released: old owner and selectors"
        );

        // Delete: owned → owner; orphan → nothing.
        ctx.on_revision(Change::Deleted(rev("2", "a", Some(&b))));
        assert_eq!(queued(&ctx).await, [key("b")], "owned delete");
        ctx.on_revision(Change::Deleted(rev("2", "a", None)));
        assert_eq!(queued(&ctx).await, Vec::<String>::new(), "orphan delete");
    }
}
