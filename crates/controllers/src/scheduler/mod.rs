//! The scheduler: binds pending pods to nodes after upstream's fit checks ([`fit`]).
//!
//! Watch-driven: one watch of Nodes and one of Pods (its own, or the one it shares with the
//! controllers: [`run_with_pods`]) keep a cache of nodes and of what bound pods request on each
//! node. Pending pods whose schedulerName is `default-scheduler` (or
//! empty) go through a deduplicating queue and are decided one at a time, as upstream's
//! scheduling cycle: a pod pinned to a node (the DaemonSet's `metadata.name` affinity) is checked
//! against that node first; a pod that fits is *assumed* on its node (so the next decision counts
//! it) and bound with `POST pods/{name}/binding` in the background; a pod that fits nowhere gets
//! `PodScheduled=False` (reason `Unschedulable`) and a `FailedScheduling` event with upstream's
//! "0/N nodes are available: ..." message, and is retried when something that may help
//! happens (a node changes, a pod on its node goes away) and periodically. Events are
//! written in the background at most `event_qps` a second, as upstream's event client is
//! limited, so a fleet-wide burst of bindings is not doubled by a burst of `Scheduled` events.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), pernode_controllers::scheduler::Error> {
//! use pernode_controllers::scheduler::{self, SchedulerOptions};
//! scheduler::run(client, SchedulerOptions::default()).await
//! # }
//! ```

mod events;
pub mod fit;

use foldhash::{HashMap, HashSet, HashSetExt};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Binding, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::json;
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

use crate::pod_watch::{PodEvents, PodWatch};
use crate::trim::{
    Allocatable, ControllerPod, Keep, NodeRecord, Recent, SchedulingNode, demand_spec,
    scheduling_pod,
};
use crate::workqueue::WorkQueue;
use events::{EventRecorder, event_channel};
use fit::{NodeUsage, PodDemand, fit_error_message, fits, is_ours, pod_demand, spec_demand};
use pernode_core::scheduling::target_node_name;

/// Errors of the scheduler.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed in a way retrying will not fix.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A background task stopped unexpectedly.
    #[error("scheduler task failed: {0}")]
    Task(String),
}

/// How the scheduler runs.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// The name pods ask for in `spec.schedulerName` (empty also means this scheduler).
    pub scheduler_name: String,
    /// Bindings in flight at once.
    pub bind_concurrency: usize,
    /// Unschedulable pods are retried at least this often even if nothing seems to change
    /// (upstream: 5 minutes).
    pub unschedulable_retry: Duration,
    /// Emit a Normal `Scheduled` event per binding, as upstream does.
    pub scheduled_events: bool,
    /// Events written per second after a burst of `event_burst`: the client-side limit of
    /// upstream's scheduler event client (its `clientConnection`: 50, burst 100). Events
    /// wait for it in a queue; bindings never do.
    pub event_qps: f64,
    pub event_burst: f64,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            scheduler_name: "default-scheduler".to_string(),
            bind_concurrency: 64,
            unschedulable_retry: Duration::from_secs(60),
            scheduled_events: true,
            event_qps: 50.0,
            event_burst: 100.0,
        }
    }
}

type PodKey = (String, String);

#[derive(Default)]
struct Cache {
    nodes: HashMap<String, NodeRecord<Allocatable>>,
    usage: HashMap<String, NodeUsage>,
    /// Pod UID → the node its demand is accounted on.
    placed: HashMap<String, String>,
    /// UIDs of pods assumed on a node while their binding is in flight.
    assumed: HashSet<String>,
    /// Unbound pods this scheduler is responsible for.
    pending: HashMap<PodKey, Arc<Pod>>,
    /// Pending pods that fit nowhere last time → their target node (None: any node).
    unschedulable: HashMap<PodKey, Option<String>>,
    /// Pod UID → the last FailedScheduling message written, so repeats are not re-written.
    reported: HashMap<String, String>,
    /// Recent demands, shared by the pods that make them.
    demands: Recent<PodDemand>,
}

impl Cache {
    fn place(&mut self, uid: &str, node: &str, demand: PodDemand) {
        // Most events of a bound pod (its status changing) leave its demand where it was.
        let unchanged = self.placed.get(uid).is_some_and(|n| n == node)
            && self
                .usage
                .get(node)
                .and_then(|u| u.demand(uid))
                .is_some_and(|d| *d == demand);
        if unchanged {
            return;
        }
        self.unplace(uid);
        let demand = self.demands.share(demand);
        self.usage
            .entry(node.to_string())
            .or_default()
            .add(uid, demand);
        self.placed.insert(uid.to_string(), node.to_string());
    }

    fn unplace(&mut self, uid: &str) -> Option<String> {
        let node = self.placed.remove(uid)?;
        if let Some(u) = self.usage.get_mut(&node) {
            u.remove(uid);
            if u.pod_count() == 0 {
                self.usage.remove(&node);
            }
        }
        Some(node)
    }

    /// Unschedulable pods a change on `node` may help (those pinned to it, and unpinned ones).
    fn retry_candidates(&self, node: &str) -> Vec<PodKey> {
        self.unschedulable
            .iter()
            .filter(|(_, t)| t.as_deref().is_none_or(|t| t == node))
            .map(|(k, _)| k.clone())
            .collect()
    }
}

/// What one scheduling attempt decided.
enum Decision {
    Bind { node: String },
    Unschedulable { message: String },
    Skip,
}

struct Scheduler {
    client: kube::Client,
    opts: SchedulerOptions,
    cache: Mutex<Cache>,
    queue: WorkQueue<PodKey>,
    binds: Arc<Semaphore>,
    events: EventRecorder,
}

/// Run the scheduler until an unrecoverable error, with a pod watch of its own.
pub async fn run(client: kube::Client, opts: SchedulerOptions) -> Result<(), Error> {
    PodWatch::all(&client)
        .feed(|pods| run_with_pods(client, opts, pods))
        .await
}

/// [`run`] on pods from a [`PodWatch`] shared with the controllers (`pernode up` and
/// `pernode controllers` run them all in one process: each pod event is decoded once for all).
pub async fn run_with_pods(
    client: kube::Client,
    opts: SchedulerOptions,
    pods: PodEvents,
) -> Result<(), Error> {
    let (events, event_writer) = event_channel(
        client.clone(),
        opts.scheduler_name.clone(),
        opts.event_qps,
        opts.event_burst,
    );
    let s = Arc::new(Scheduler {
        client,
        binds: Arc::new(Semaphore::new(opts.bind_concurrency.max(1))),
        events,
        opts,
        cache: Mutex::new(Cache::default()),
        queue: WorkQueue::new(Duration::from_millis(100), Duration::from_secs(30)),
    });
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(s.clone().watch_nodes());
    tasks.spawn(s.clone().watch_pods(pods));
    tasks.spawn(s.clone().schedule_loop());
    tasks.spawn(s.clone().flush_unschedulable());
    tasks.spawn(async move {
        event_writer.run().await;
        Err(Error::Task("event writer stopped".into()))
    });
    let first = tasks.join_next().await;
    s.queue.shut_down();
    tasks.abort_all();
    match first {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(Error::Task(e.to_string())),
        None => Ok(()),
    }
}

fn pod_key(pod: &Pod) -> PodKey {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.metadata.name.clone().unwrap_or_default(),
    )
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// Whether a node change can change a fit decision (heartbeats alone cannot).
fn node_fit_changed(old: &NodeRecord<Allocatable>, new: &NodeRecord<Allocatable>) -> bool {
    old.labels != new.labels
        || old.taints != new.taints
        || old.unschedulable != new.unschedulable
        || old.part != new.part
}

impl Scheduler {
    fn lock(&self) -> MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn ours(&self, pod: &Pod) -> bool {
        pod.spec.as_ref().is_some_and(|s| {
            is_ours(s) || s.scheduler_name.as_deref() == Some(self.opts.scheduler_name.as_str())
        })
    }

    async fn watch_nodes(self: Arc<Self>) -> Result<(), Error> {
        // Decoded with only labels, spec and allocatable (what node_fit_changed and fits read).
        let api: Api<SchedulingNode> = Api::all(self.client.clone());
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut seen = HashSet::new();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Apply(n)) => self.node_seen(n.keep()),
                Ok(Event::InitApply(n)) => {
                    seen.insert(n.metadata.name.clone().unwrap_or_default());
                    self.node_seen(n.keep());
                }
                Ok(Event::Delete(n)) => {
                    self.lock()
                        .nodes
                        .remove(n.metadata.name.as_deref().unwrap_or(""));
                }
                Ok(Event::Init) => seen.clear(),
                Ok(Event::InitDone) => self.lock().nodes.retain(|n, _| seen.contains(n)),
                Err(e) => debug!(error = %e, "node watch interrupted; retrying"),
            }
        }
        Err(Error::Task("node watch ended".into()))
    }

    fn node_seen(&self, node: NodeRecord<Allocatable>) {
        let name = node.name.to_string();
        let mut c = self.lock();
        let changed = c
            .nodes
            .get(&name)
            .is_none_or(|old| node_fit_changed(old, &node));
        c.nodes.insert(name.clone(), node);
        let retry = if changed {
            c.retry_candidates(&name)
        } else {
            Vec::new()
        };
        drop(c);
        for k in retry {
            self.queue.add(k);
        }
    }

    async fn watch_pods(self: Arc<Self>, pods: PodEvents) -> Result<(), Error> {
        let mut stream = pods.into_stream();
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(ev) = stream.next().await {
            match ev {
                Event::Apply(p) => self.pod_seen(&p),
                Event::InitApply(p) => {
                    seen.insert(p.metadata.uid.clone().unwrap_or_default());
                    self.pod_seen(&p);
                }
                Event::Delete(p) => self.pod_gone(&p),
                Event::Init => seen.clear(),
                Event::InitDone => {
                    let mut c = self.lock();
                    let stale: Vec<String> = c
                        .placed
                        .keys()
                        .filter(|u| !seen.contains(*u) && !c.assumed.contains(*u))
                        .cloned()
                        .collect();
                    for u in stale {
                        c.unplace(&u);
                    }
                    let gone: Vec<PodKey> = c
                        .pending
                        .iter()
                        .filter(|(_, p)| !seen.contains(p.metadata.uid.as_deref().unwrap_or("")))
                        .map(|(k, _)| k.clone())
                        .collect();
                    for k in gone {
                        c.pending.remove(&k);
                        c.unschedulable.remove(&k);
                    }
                }
            }
        }
        Err(Error::Task("pod watch ended".into()))
    }

    fn pod_seen(&self, p: &ControllerPod) {
        let node = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .filter(|n| !n.is_empty());
        match node {
            Some(node) => self.bound_pod_seen(p, node),
            None => self.unbound_pod_seen(scheduling_pod(p)),
        }
    }

    /// A bound pod only places its demand on its node (read without building the pod the
    /// scheduling of an unbound one reads), or, finished, frees it.
    fn bound_pod_seen(&self, p: &ControllerPod, node: &str) {
        let (ns, name) = p.ns_name();
        let key = (ns.to_string(), name.to_string());
        let uid = p.metadata.uid.as_deref().unwrap_or_default();
        let mut c = self.lock();
        c.pending.remove(&key);
        c.unschedulable.remove(&key);
        c.reported.remove(uid);
        c.assumed.remove(uid);
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
        if pernode_core::pod::is_terminal_phase(phase) {
            // A finished pod frees its node's resources.
            if c.unplace(uid).is_some() {
                let retry = c.retry_candidates(node);
                drop(c);
                for k in retry {
                    self.queue.add(k);
                }
            }
        } else {
            let demand = demand_spec(p).as_ref().map(spec_demand).unwrap_or_default();
            c.place(uid, node, demand);
        }
    }

    fn unbound_pod_seen(&self, pod: Pod) {
        let key = pod_key(&pod);
        let mut c = self.lock();
        if pod.metadata.deletion_timestamp.is_some()
            || !self.ours(&pod)
            || pernode_core::pod::is_pod_terminal(&pod)
        {
            c.pending.remove(&key);
            c.unschedulable.remove(&key);
            return;
        }
        c.pending.insert(key.clone(), Arc::new(pod));
        drop(c);
        self.queue.add(key);
    }

    fn pod_gone(&self, pod: &ControllerPod) {
        let (ns, name) = pod.ns_name();
        let key = (ns.to_string(), name.to_string());
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut c = self.lock();
        c.pending.remove(&key);
        c.unschedulable.remove(&key);
        c.reported.remove(&uid);
        // If its binding is still in flight, the bind fails and finds nothing to undo.
        c.assumed.remove(&uid);
        if let Some(node) = c.unplace(&uid) {
            let retry = c.retry_candidates(&node);
            drop(c);
            for k in retry {
                self.queue.add(k);
            }
        }
    }

    /// Retry every unschedulable pod now and then, as upstream's periodic flush.
    async fn flush_unschedulable(self: Arc<Self>) -> Result<(), Error> {
        let mut tick = tokio::time::interval(
            self.opts
                .unschedulable_retry
                .max(Duration::from_millis(100)),
        );
        tick.tick().await;
        loop {
            tick.tick().await;
            let keys: Vec<PodKey> = self.lock().unschedulable.keys().cloned().collect();
            for k in keys {
                self.queue.add(k);
            }
        }
    }

    /// Decide for one pending pod, under the cache lock (one decision at a time, so each sees
    /// the pods assumed by the previous ones).
    fn decide(&self, key: &PodKey) -> (Decision, Option<Arc<Pod>>) {
        let mut c = self.lock();
        let Some(pod) = c.pending.get(key).cloned() else {
            return (Decision::Skip, None);
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if c.assumed.contains(&uid) {
            return (Decision::Skip, None);
        }
        let Some(spec) = pod.spec.as_ref() else {
            return (Decision::Skip, None);
        };
        let demand = pod_demand(&pod);
        let empty = NodeUsage::default();
        let target = target_node_name(spec).map(str::to_string);

        let chosen = match &target {
            // A pinned pod can only fit its node: check it alone first (10,000 nodes).
            Some(t) => c
                .nodes
                .get(t)
                .filter(|n| fits(spec, &demand, *n, c.usage.get(t).unwrap_or(&empty)).is_ok())
                .map(|_| t.clone()),
            None => c
                .nodes
                .iter()
                .filter(|(name, n)| {
                    fits(spec, &demand, *n, c.usage.get(*name).unwrap_or(&empty)).is_ok()
                })
                .min_by_key(|(name, _)| {
                    // Least allocated by pod count, then name, for a stable spread.
                    (
                        c.usage.get(*name).map_or(0, NodeUsage::pod_count),
                        (*name).clone(),
                    )
                })
                .map(|(name, _)| name.clone()),
        };
        if let Some(node) = chosen {
            c.place(&uid, &node, demand);
            c.assumed.insert(uid);
            c.unschedulable.remove(key);
            return (Decision::Bind { node }, Some(pod));
        }
        let reasons: Vec<Vec<String>> = c
            .nodes
            .iter()
            .filter_map(|(name, n)| {
                fits(spec, &demand, n, c.usage.get(name).unwrap_or(&empty)).err()
            })
            .collect();
        let message = fit_error_message(c.nodes.len(), &reasons);
        c.unschedulable.insert(key.clone(), target);
        (Decision::Unschedulable { message }, Some(pod))
    }

    async fn schedule_loop(self: Arc<Self>) -> Result<(), Error> {
        while let Some(key) = self.queue.get().await {
            let (decision, pod) = self.decide(&key);
            match (decision, pod) {
                (Decision::Bind { node }, Some(pod)) => {
                    let permit = self
                        .binds
                        .clone()
                        .acquire_owned()
                        .await
                        .map_err(|e| Error::Task(e.to_string()))?;
                    let me = self.clone();
                    tokio::spawn(async move {
                        me.bind(pod, node).await;
                        drop(permit);
                    });
                }
                (Decision::Unschedulable { message }, Some(pod)) => {
                    if let Err(e) = self.report_unschedulable(&pod, &message).await {
                        debug!(namespace = %key.0, pod = %key.1, error = %e, "could not report unschedulable pod");
                        self.queue.add_rate_limited(key.clone());
                    }
                }
                _ => {}
            }
            self.queue.done(&key);
        }
        Ok(())
    }

    async fn bind(&self, pod: Arc<Pod>, node: String) {
        let (ns, name) = pod_key(&pod);
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let binding = Binding {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                uid: pod.metadata.uid.clone(),
                ..Default::default()
            },
            target: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Node".into()),
                name: Some(node.clone()),
                ..Default::default()
            },
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let res: Result<serde_json::Value, kube::Error> = api
            .create_subresource("binding", &name, &PostParams::default(), &binding)
            .await;
        match res {
            Ok(_) => {
                debug!(namespace = %ns, pod = %name, node = %node, "bound");
                self.queue.forget(&(ns.clone(), name.clone()));
                if self.opts.scheduled_events {
                    let msg = format!("Successfully assigned {ns}/{name} to {node}");
                    self.events.record(&pod, "Normal", "Scheduled", msg);
                }
            }
            Err(e) => {
                // Forget the assumption; retry unless the pod is gone or already bound.
                let mut c = self.lock();
                c.assumed.remove(&uid);
                let bound_elsewhere = c.placed.get(&uid).is_some_and(|n| *n != node);
                if !bound_elsewhere {
                    c.unplace(&uid);
                }
                drop(c);
                if is_status(&e, 404) || is_status(&e, 409) {
                    debug!(namespace = %ns, pod = %name, error = %e, "binding refused; dropping");
                } else {
                    warn!(namespace = %ns, pod = %name, node = %node, error = %e, "binding failed; retrying");
                    self.queue.add_rate_limited((ns, name));
                }
            }
        }
    }

    /// PodScheduled=False (reason Unschedulable) and a FailedScheduling event, unless this very
    /// message was already reported for this pod.
    async fn report_unschedulable(&self, pod: &Pod, message: &str) -> Result<(), kube::Error> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if self.lock().reported.get(&uid).is_some_and(|m| m == message) {
            return Ok(());
        }
        let (ns, name) = pod_key(pod);
        info!(namespace = %ns, pod = %name, %message, "pod is unschedulable");
        let existing = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"));
        let transition = existing
            .filter(|c| c.status == "False")
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or(Time(Timestamp::now()));
        let already = existing.is_some_and(|c| {
            c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
                && c.message.as_deref() == Some(message)
        });
        if !already {
            let patch = json!({"status": {"conditions": [{
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
                "lastProbeTime": null,
                "lastTransitionTime": transition,
            }]}});
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            match api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                Ok(_) => {}
                Err(e) if is_status(&e, 404) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        self.events
            .record(pod, "Warning", "FailedScheduling", message.to_string());
        self.lock().reported.insert(uid, message.to_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(cpu: i128) -> PodDemand {
        PodDemand {
            requests: [("cpu".to_string(), cpu)].into_iter().collect(),
            ..PodDemand::default()
        }
    }

    #[test]
    fn placing_a_pod_again_accounts_its_latest_demand_once() {
        let mut c = Cache::default();
        c.place("u1", "n1", demand(100));
        c.place("u1", "n1", demand(100));
        assert_eq!(c.usage["n1"].requested("cpu"), 100);
        // A resized pod: its new demand replaces the old one.
        c.place("u1", "n1", demand(300));
        assert_eq!(c.usage["n1"].requested("cpu"), 300);
        assert_eq!(c.usage["n1"].pod_count(), 1);
        // Seen on another node: moved there.
        c.place("u1", "n2", demand(300));
        assert!(!c.usage.contains_key("n1"));
        assert_eq!(c.usage["n2"].requested("cpu"), 300);
        assert_eq!(c.placed["u1"], "n2");
    }
}
