//! Pod garbage collection, as upstream's `pkg/controller/podgc`:
//!
//! - Pods bound to a node that no longer exists are removed: once the node has been missing
//!   for upstream's quarantine period (40 s, configurable for tests) and a live
//!   lookup confirms it is gone, each pod is marked Failed with condition
//!   `DisruptionTarget=True` (reason `DeletionByPodGC`) and deleted with grace period 0. That
//!   includes pods already terminating there: no kubelet is left to finish them.
//! - Terminating pods that were never scheduled are deleted with grace period 0.
//!
//! Watch-driven (Nodes and Pods), with a periodic sweep as a safety net.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), pernode_controllers::pod_gc::Error> {
//! use pernode_controllers::pod_gc::{self, PodGcOptions};
//! pod_gc::run(client, PodGcOptions::default()).await
//! # }
//! ```

use foldhash::{HashMap, HashSet, HashSetExt};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use tokio::time::Instant;
use tracing::{debug, info};

use crate::pod_watch::{PodEvents, PodWatch};
use crate::trim::{ControllerPod, Interner, MetaOnly};
use crate::workqueue::WorkQueue;

/// Errors of pod GC.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed in a way retrying will not fix.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A background task stopped unexpectedly.
    #[error("pod GC task failed: {0}")]
    Task(String),
}

/// How long upstream's pod GC waits after a node vanished before deleting its pods
/// (`quarantineTime`), so that a node re-created meanwhile keeps them.
pub const QUARANTINE: Duration = Duration::from_secs(40);

/// How pod GC runs.
#[derive(Clone, Debug)]
pub struct PodGcOptions {
    /// How long a node must be missing before its pods are removed (upstream: 40 s).
    pub quarantine: Duration,
    /// Interval of the safety-net sweep (upstream's gcCheckPeriod: 20 s).
    pub sweep_interval: Duration,
}

impl Default for PodGcOptions {
    fn default() -> Self {
        PodGcOptions {
            quarantine: QUARANTINE,
            sweep_interval: Duration::from_secs(20),
        }
    }
}

/// `(namespace, name)`; the namespace is interned, the name shared by both maps holding it.
type PodKey = (Arc<str>, Arc<str>);

#[derive(Default)]
struct State {
    nodes: HashSet<String>,
    /// Node name (interned) → pods bound to it (key → uid).
    pods_by_node: HashMap<Arc<str>, HashMap<PodKey, Box<str>>>,
    /// Pod → the node it is indexed under (so forgetting a pod is O(1)).
    node_of: HashMap<PodKey, Arc<str>>,
    /// Namespaces and node names of pods.
    strings: Interner,
    /// Nodes referenced by pods but absent, and since when.
    missing_since: HashMap<String, Instant>,
    nodes_synced: bool,
}

/// Work items: a node to check for orphaned pods, or an unscheduled terminating pod.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Work {
    Node(String),
    Unscheduled(PodKey, String),
}

struct PodGc {
    client: kube::Client,
    opts: PodGcOptions,
    state: Mutex<State>,
    queue: WorkQueue<Work>,
}

/// Run pod GC until an unrecoverable error.
pub async fn run(client: kube::Client, opts: PodGcOptions) -> Result<(), Error> {
    PodWatch::all(&client)
        .feed(|pods| run_with_pods(client, opts, pods))
        .await
}

/// [`run`] reading pods from a shared [`PodWatch`] of all namespaces.
pub async fn run_with_pods(
    client: kube::Client,
    opts: PodGcOptions,
    pods: PodEvents,
) -> Result<(), Error> {
    let gc = Arc::new(PodGc {
        client,
        opts,
        state: Mutex::new(State::default()),
        queue: WorkQueue::new(Duration::from_millis(200), Duration::from_secs(30))
            .named("orphaned_pods_nodes"),
    });
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(gc.clone().watch_nodes());
    tasks.spawn(gc.clone().watch_pods(pods));
    tasks.spawn(gc.clone().sweep());
    tasks.spawn(gc.clone().worker());
    let first = tasks.join_next().await;
    gc.queue.shut_down();
    tasks.abort_all();
    match first {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(Error::Task(e.to_string())),
        None => Ok(()),
    }
}

fn pod_key(st: &mut State, p: &ControllerPod) -> PodKey {
    let (ns, name) = p.ns_name();
    (st.strings.intern(ns), Arc::from(name))
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

impl PodGc {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Note that `node` is missing (if it is and has pods) and schedule its check.
    fn node_maybe_missing(&self, st: &mut State, node: &str) {
        if !st.nodes_synced || st.nodes.contains(node) || !st.pods_by_node.contains_key(node) {
            return;
        }
        let since = *st
            .missing_since
            .entry(node.to_string())
            .or_insert_with(Instant::now);
        let due = (since + self.opts.quarantine).saturating_duration_since(Instant::now());
        self.queue.add_after(Work::Node(node.to_string()), due);
    }

    async fn watch_nodes(self: Arc<Self>) -> Result<(), Error> {
        // Only node names matter: metadata-only, so node heartbeats are not decoded here.
        let api: Api<MetaOnly<Node>> = Api::all(self.client.clone());
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut seen = HashSet::new();
        while let Some(ev) = stream.next().await {
            let mut st = self.lock();
            match ev {
                Ok(Event::Apply(n)) | Ok(Event::InitApply(n)) => {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    seen.insert(name.clone());
                    st.missing_since.remove(&name);
                    st.nodes.insert(name);
                }
                Ok(Event::Delete(n)) => {
                    let name = n.metadata.name.clone().unwrap_or_default();
                    st.nodes.remove(&name);
                    self.node_maybe_missing(&mut st, &name);
                }
                Ok(Event::Init) => seen.clear(),
                Ok(Event::InitDone) => {
                    st.nodes = std::mem::take(&mut seen);
                    st.nodes_synced = true;
                    let referenced: Vec<Arc<str>> = st.pods_by_node.keys().cloned().collect();
                    for n in referenced {
                        self.node_maybe_missing(&mut st, &n);
                    }
                }
                Err(e) => debug!(error = %e, "node watch interrupted; retrying"),
            }
        }
        Err(Error::Task("node watch ended".into()))
    }

    fn forget_pod(st: &mut State, key: &PodKey) {
        let Some(node) = st.node_of.remove(key) else {
            return;
        };
        if let Some(pods) = st.pods_by_node.get_mut(&node) {
            pods.remove(key);
            if pods.is_empty() {
                st.pods_by_node.remove(&node);
            }
        }
    }

    async fn watch_pods(self: Arc<Self>, pods: PodEvents) -> Result<(), Error> {
        let mut events = pods.into_stream();
        while let Some(ev) = events.next().await {
            match ev {
                Event::Apply(p) | Event::InitApply(p) => self.pod_seen(&p),
                Event::Delete(p) => {
                    let mut st = self.lock();
                    let key = pod_key(&mut st, &p);
                    Self::forget_pod(&mut st, &key)
                }
                // A re-list replaces everything: start from an empty index.
                Event::Init => {
                    let mut st = self.lock();
                    st.pods_by_node.clear();
                    st.node_of.clear();
                }
                Event::InitDone => {}
            }
        }
        Err(Error::Task("pod watch ended".into()))
    }

    fn pod_seen(&self, p: &ControllerPod) {
        let uid = p.metadata.uid.as_deref().unwrap_or_default();
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default();
        let mut st = self.lock();
        let key = pod_key(&mut st, p);
        if node.is_empty() {
            drop(st);
            if p.metadata.deletion_timestamp.is_some() {
                self.queue.add(Work::Unscheduled(key, uid.to_string()));
            }
            return;
        }
        let node = st.strings.intern(node);
        let known = st
            .pods_by_node
            .get(&node)
            .is_some_and(|m| m.contains_key(&key));
        if !known {
            // A pod does not change nodes, but be safe against re-created names.
            Self::forget_pod(&mut st, &key);
        }
        st.node_of.insert(key.clone(), node.clone());
        st.pods_by_node
            .entry(node.clone())
            .or_default()
            .insert(key, uid.into());
        self.node_maybe_missing(&mut st, &node);
    }

    async fn sweep(self: Arc<Self>) -> Result<(), Error> {
        let mut tick =
            tokio::time::interval(self.opts.sweep_interval.max(Duration::from_millis(100)));
        loop {
            tick.tick().await;
            let mut st = self.lock();
            let referenced: Vec<Arc<str>> = st.pods_by_node.keys().cloned().collect();
            for n in referenced {
                self.node_maybe_missing(&mut st, &n);
            }
        }
    }

    async fn worker(self: Arc<Self>) -> Result<(), Error> {
        while let Some(work) = self.queue.get().await {
            let res = match &work {
                Work::Node(n) => self.collect_node(n).await,
                Work::Unscheduled(key, uid) => self.force_delete(key, uid).await,
            };
            match res {
                Ok(()) => self.queue.forget(&work),
                Err(e) => {
                    debug!(?work, error = %e, "pod GC step failed; retrying");
                    self.queue.add_rate_limited(work.clone());
                }
            }
            self.queue.done(&work);
        }
        Ok(())
    }

    /// Remove the pods of `node` if it has been missing for the quarantine and really is gone.
    async fn collect_node(&self, node: &str) -> Result<(), kube::Error> {
        let pods: Vec<(PodKey, String)> = {
            let st = self.lock();
            if st.nodes.contains(node) {
                return Ok(());
            }
            let Some(since) = st.missing_since.get(node) else {
                return Ok(());
            };
            let due = *since + self.opts.quarantine;
            if Instant::now() < due {
                self.queue
                    .add_after(Work::Node(node.to_string()), due - Instant::now());
                return Ok(());
            }
            st.pods_by_node
                .get(node)
                .map(|m| m.iter().map(|(k, u)| (k.clone(), u.to_string())).collect())
                .unwrap_or_default()
        };
        if pods.is_empty() {
            self.lock().missing_since.remove(node);
            return Ok(());
        }
        // The cache could be stale: only a live NotFound counts.
        let nodes: Api<Node> = Api::all(self.client.clone());
        if nodes.get_opt(node).await?.is_some() {
            self.lock().missing_since.remove(node);
            return Ok(());
        }
        info!(%node, pods = pods.len(), "node is gone; deleting its pods");
        for (key, uid) in pods {
            self.fail_and_delete(&key, &uid).await?;
        }
        self.lock().missing_since.remove(node);
        Ok(())
    }

    /// Mark the pod Failed with DisruptionTarget (DeletionByPodGC), then delete it at once.
    async fn fail_and_delete(&self, key: &PodKey, uid: &str) -> Result<(), kube::Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.0);
        let patch = json!({
            "metadata": {"uid": uid},
            "status": {
                "phase": "Failed",
                "conditions": [{
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "DeletionByPodGC",
                    "message": "PodGC: node no longer exists",
                    "lastTransitionTime": Time(Timestamp::now()),
                }],
            },
        });
        match api
            .patch_status(&key.1, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => return Ok(()),
            // The status write is informative; the deletion is what matters.
            Err(e) => {
                debug!(namespace = %key.0, pod = %key.1, error = %e, "could not mark pod failed")
            }
        }
        self.force_delete(key, uid).await
    }

    async fn force_delete(&self, key: &PodKey, uid: &str) -> Result<(), kube::Error> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.0);
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&key.1, &dp).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) || is_status(&e, 409) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
