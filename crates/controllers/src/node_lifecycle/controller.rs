//! The running controller: caches fed by watches, the work queue and its workers, the health
//! pass, the per-zone NoExecute tainter and the event recorder. Decisions come from the pure
//! modules next door; this file only keeps state and talks to the API.

use std::collections::VecDeque;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    Event as CoreEvent, EventSource, Node, ObjectReference, Pod, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use pernode_core::scheduling::TAINT_EFFECT_NO_EXECUTE;
use serde_json::json;
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::eviction::{self, Plan};
use super::monitor::{self, NodeHealth, TokenBucket, ZoneState};
use super::taints::{self, TAINT_NOT_READY, TAINT_UNREACHABLE};
use super::{Error, NodeLifecycleOptions};
use crate::pod_watch::PodEvents;
use crate::trim::{
    ControllerPod, Interner, Keep, LeaseOf, Lifecycle, LifecycleNode, NodeRecord, Recent,
};
use crate::workqueue::WorkQueue;

/// Event source of the node lifecycle controller (upstream's component name).
const NODE_CONTROLLER: &str = "node-controller";
/// Event source of taint eviction (upstream's component name).
const TAINT_EVICTION_CONTROLLER: &str = "taint-eviction-controller";
/// Upstream's NodeEvictionPeriod: how often the zone tainters are drained.
const TAINTER_PERIOD: Duration = Duration::from_millis(100);
/// Attempts at a read-modify-write of a node before giving the key back to the queue.
const WRITE_ATTEMPTS: usize = 5;

/// `(namespace, name)`; the namespace is interned, the name shared by every map holding it.
type PodKey = (Arc<str>, Arc<str>);

/// What taint eviction needs to know about a pod.
struct PodInfo {
    uid: Box<str>,
    /// Interned; empty while unbound.
    node: Arc<str>,
    /// Shared with other pods that tolerate the same (a DaemonSet's pods all do).
    tolerations: Arc<[Toleration]>,
    created: Option<Timestamp>,
    deleting: bool,
    /// Has a Ready condition that is not False (MarkPodsNotReady has something to do).
    ready_not_false: bool,
    terminal: bool,
}

/// A pending (or carried out) eviction.
struct Scheduled {
    start: Timestamp,
    fire: Timestamp,
    /// The pod was deleted (or is being deleted); nothing more to do.
    fired: bool,
    /// The "Marking for deletion" event went out.
    announced: bool,
}

/// One zone: its state and the nodes waiting for their NoExecute taint.
struct Zone {
    state: ZoneState,
    queue: VecDeque<String>,
    queued: HashSet<String>,
    bucket: TokenBucket,
}

#[derive(Default)]
struct State {
    nodes: HashMap<String, Arc<NodeRecord<Lifecycle>>>,
    /// Node name → last renewTime of its lease.
    leases: HashMap<String, Option<Timestamp>>,
    health: HashMap<String, NodeHealth>,
    /// Node name → its NoExecute taints (only nodes that have some).
    no_execute: HashMap<String, Vec<Taint>>,
    pods: HashMap<PodKey, PodInfo>,
    pods_by_node: HashMap<Arc<str>, HashSet<PodKey>>,
    /// Namespaces and node names of pods.
    strings: Interner,
    tolerations: Recent<[Toleration]>,
    evictions: HashMap<PodKey, Scheduled>,
    zones: HashMap<String, Zone>,
}

/// Work items; every one that writes to the API goes through the queue for backoff.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Work {
    /// Judge a node's health: mark it Unknown if silent, queue its NoExecute taint changes.
    Health(String),
    /// Keep the node's NoSchedule taints in step with its conditions.
    NoSchedule(String),
    /// Give the node the NoExecute taint its Ready condition calls for (after the limiter).
    NoExecute(String),
    /// Remove the not-ready/unreachable NoExecute taints.
    Reachable(String),
    /// Mark the pods of a node that is not Ready as not Ready.
    PodsNotReady(String),
    /// Carry out a scheduled eviction.
    Evict(PodKey),
}

/// A best-effort event to record.
struct EventReq {
    kind: &'static str,
    namespace: String,
    name: String,
    uid: Option<String>,
    type_: &'static str,
    reason: &'static str,
    message: String,
    component: &'static str,
}

struct Controller {
    client: kube::Client,
    opts: NodeLifecycleOptions,
    state: Mutex<State>,
    queue: WorkQueue<Work>,
    events: mpsc::UnboundedSender<EventReq>,
}

pub(super) async fn run(
    client: kube::Client,
    opts: NodeLifecycleOptions,
    pods: PodEvents,
) -> Result<(), Error> {
    let (tx, rx) = mpsc::unbounded_channel();
    let workers = opts.workers.max(1);
    let c = Arc::new(Controller {
        client: client.clone(),
        opts,
        state: Mutex::new(State::default()),
        queue: WorkQueue::new(Duration::from_millis(100), Duration::from_secs(30))
            .named("node_lifecycle_controller"),
        events: tx,
    });
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(record_events(client, rx));
    tasks.spawn(c.clone().watch_nodes());
    tasks.spawn(c.clone().watch_leases());
    tasks.spawn(c.clone().watch_pods(pods));
    tasks.spawn(c.clone().monitor());
    tasks.spawn(c.clone().tainter());
    for _ in 0..workers {
        tasks.spawn(c.clone().worker());
    }
    let first = tasks.join_next().await;
    c.queue.shut_down();
    tasks.abort_all();
    match first {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(Error::Task(e.to_string())),
        None => Ok(()),
    }
}

fn name_of(meta: &ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

fn pod_key(st: &mut State, p: &ControllerPod) -> PodKey {
    let (ns, name) = p.ns_name();
    (st.strings.intern(ns), Arc::from(name))
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

fn pod_info(st: &mut State, p: &ControllerPod) -> PodInfo {
    let spec = p.spec.as_ref();
    let node = spec.and_then(|s| s.node_name.as_deref()).unwrap_or("");
    let tolerations = spec
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default();
    let status = p.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("");
    PodInfo {
        uid: p.metadata.uid.as_deref().unwrap_or_default().into(),
        node: st.strings.intern(node),
        tolerations: st.tolerations.share(tolerations),
        created: p.metadata.creation_timestamp.as_ref().map(|t| t.0),
        deleting: p.metadata.deletion_timestamp.is_some(),
        ready_not_false: status
            .and_then(|s| s.ready.as_ref())
            .is_some_and(|c| c.status != "False"),
        terminal: phase == "Succeeded" || phase == "Failed",
    }
}

fn duration_until(t: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(t.duration_since(now)).unwrap_or(Duration::ZERO)
}

impl Controller {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves usable maps behind: keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn startup_grace(&self) -> Duration {
        self.opts
            .node_startup_grace_period
            .unwrap_or(self.opts.node_monitor_grace_period)
    }

    fn event(&self, req: EventReq) {
        // The recorder only stops with the controller.
        let _ = self.events.send(req);
    }

    fn pod_event(
        &self,
        key: &PodKey,
        uid: Option<String>,
        type_: &'static str,
        reason: &'static str,
        message: String,
        component: &'static str,
    ) {
        self.event(EventReq {
            kind: "Pod",
            namespace: key.0.to_string(),
            name: key.1.to_string(),
            uid,
            type_,
            reason,
            message,
            component,
        });
    }

    // ---- watches -------------------------------------------------------------------------

    async fn watch_nodes(self: Arc<Self>) -> Result<(), Error> {
        // Decoded with only metadata, taints, `unschedulable` and the conditions' type, status
        // and heartbeat: images, addresses, capacity and node info are most of a node's size
        // and are never read here.
        let api: Api<LifecycleNode> = Api::all(self.client.clone());
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut seen = HashSet::new();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Apply(n)) => self.node_seen(n.keep()),
                Ok(Event::InitApply(n)) => {
                    seen.insert(name_of(&n.metadata));
                    self.node_seen(n.keep());
                }
                Ok(Event::Delete(n)) => self.node_gone(&name_of(&n.metadata)),
                Ok(Event::Init) => seen.clear(),
                Ok(Event::InitDone) => {
                    let gone: Vec<String> = self
                        .lock()
                        .nodes
                        .keys()
                        .filter(|n| !seen.contains(*n))
                        .cloned()
                        .collect();
                    for n in gone {
                        self.node_gone(&n);
                    }
                }
                Err(e) => debug!(error = %e, "node watch interrupted; retrying"),
            }
        }
        Err(Error::Task("node watch ended".into()))
    }

    fn node_seen(&self, node: NodeRecord<Lifecycle>) {
        let name = node.name.to_string();
        let now = Timestamp::now();
        let no_execute = taints::no_execute_taints(&node);
        let ready = monitor::ready_status(&node).map(str::to_string);
        let mut st = self.lock();
        let old = st.nodes.insert(name.clone(), Arc::new(node));
        let node = st.nodes.get(&name).cloned().unwrap_or_default();
        let lease = st.leases.get(&name).copied();
        match st.health.get_mut(&name) {
            Some(h) => h.observe_node(&node, now),
            None => {
                let mut h = NodeHealth::first_seen(&node, now);
                if let Some(renew) = lease {
                    h.observe_lease(renew, now);
                }
                st.health.insert(name.clone(), h);
            }
        }
        let old_ready = old
            .as_ref()
            .and_then(|o| monitor::ready_status(o).map(str::to_string));
        if old.is_none() || old_ready != ready {
            // A Ready flip (or a new node) is acted on now, not at the next health pass.
            self.queue.add(Work::Health(name.clone()));
        }
        self.queue.add(Work::NoSchedule(name.clone()));
        // Taint eviction's handleNodeUpdate: replan the node's pods when its NoExecute taints
        // change.
        let known = st.no_execute.get(&name).cloned().unwrap_or_default();
        if known != no_execute {
            if no_execute.is_empty() {
                st.no_execute.remove(&name);
            } else {
                st.no_execute.insert(name.clone(), no_execute);
            }
            let pods: Vec<PodKey> = st
                .pods_by_node
                .get(name.as_str())
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            for key in pods {
                self.replan(&mut st, &key, now);
            }
        }
    }

    fn node_gone(&self, name: &str) {
        let mut st = self.lock();
        st.nodes.remove(name);
        st.health.remove(name);
        st.no_execute.remove(name);
        for z in st.zones.values_mut() {
            if z.queued.remove(name) {
                z.queue.retain(|n| n != name);
            }
        }
    }

    async fn watch_leases(self: Arc<Self>) -> Result<(), Error> {
        let api: Api<LeaseOf> = Api::namespaced(self.client.clone(), &self.opts.lease_namespace);
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Apply(l)) | Ok(Event::InitApply(l)) => {
                    let name = name_of(&l.metadata);
                    let renew = l.renew_time();
                    let now = Timestamp::now();
                    let mut st = self.lock();
                    st.leases.insert(name.clone(), renew);
                    if let Some(h) = st.health.get_mut(&name) {
                        h.observe_lease(renew, now);
                    }
                }
                Ok(Event::Delete(l)) => {
                    self.lock().leases.remove(&name_of(&l.metadata));
                }
                Ok(Event::Init) | Ok(Event::InitDone) => {}
                Err(e) => debug!(error = %e, "lease watch interrupted; retrying"),
            }
        }
        Err(Error::Task("lease watch ended".into()))
    }

    async fn watch_pods(self: Arc<Self>, pods: PodEvents) -> Result<(), Error> {
        let mut events = pods.into_stream();
        let mut seen = HashSet::new();
        while let Some(ev) = events.next().await {
            match ev {
                Event::Apply(p) => {
                    self.pod_seen(&p);
                }
                Event::InitApply(p) => {
                    seen.insert(self.pod_seen(&p));
                }
                Event::Delete(p) => {
                    let key = pod_key(&mut self.lock(), &p);
                    self.pod_gone(&key)
                }
                Event::Init => seen.clear(),
                Event::InitDone => {
                    let gone: Vec<PodKey> = self
                        .lock()
                        .pods
                        .keys()
                        .filter(|k| !seen.contains(*k))
                        .cloned()
                        .collect();
                    for k in gone {
                        self.pod_gone(&k);
                    }
                }
            }
        }
        Err(Error::Task("pod watch ended".into()))
    }

    /// Records a pod; answers its key.
    fn pod_seen(&self, p: &ControllerPod) -> PodKey {
        let now = Timestamp::now();
        let mut st = self.lock();
        let key = pod_key(&mut st, p);
        let info = pod_info(&mut st, p);
        let (replan, newly_bound) = match st.pods.get(&key) {
            // Taint eviction's PodUpdated: only a new node or new tolerations matter.
            Some(old) => (
                old.uid != info.uid
                    || old.node != info.node
                    || old.tolerations != info.tolerations
                    || old.deleting != info.deleting,
                old.node != info.node,
            ),
            None => (true, true),
        };
        let old_node = st.pods.get(&key).map(|o| o.node.clone());
        if let Some(old_node) = old_node
            && old_node != info.node
            && let Some(set) = st.pods_by_node.get_mut(&old_node)
        {
            set.remove(&key);
        }
        let node = info.node.clone();
        let needs_not_ready = info.ready_not_false && !info.terminal;
        if !node.is_empty() {
            st.pods_by_node
                .entry(node.clone())
                .or_default()
                .insert(key.clone());
        }
        st.pods.insert(key.clone(), info);
        if replan {
            self.replan(&mut st, &key, now);
        }
        // nodelifecycle's processPod: a pod bound to a node that is not Ready is not Ready.
        if newly_bound
            && needs_not_ready
            && !node.is_empty()
            && st
                .health
                .get(&*node)
                .and_then(|h| h.last_ready.as_deref())
                .is_some_and(|r| r != "True")
        {
            self.queue.add(Work::PodsNotReady(node.to_string()));
        }
        key
    }

    fn pod_gone(&self, key: &PodKey) {
        let mut st = self.lock();
        if let Some(info) = st.pods.remove(key)
            && let Some(set) = st.pods_by_node.get_mut(&info.node)
        {
            set.remove(key);
            if set.is_empty() {
                st.pods_by_node.remove(&info.node);
            }
        }
        self.cancel(&mut st, key);
    }

    // ---- taint eviction planning (in memory) ---------------------------------------------

    /// Cancel a pending eviction; the event goes out only if one was pending.
    fn cancel(&self, st: &mut State, key: &PodKey) {
        if let Some(s) = st.evictions.remove(key)
            && !s.fired
        {
            let uid = st.pods.get(key).map(|p| p.uid.to_string());
            info!(namespace = %key.0, pod = %key.1, "cancelling taint eviction");
            self.pod_event(
                key,
                uid,
                "Normal",
                "TaintManagerEviction",
                format!("Cancelling deletion of Pod {}/{}", key.0, key.1),
                TAINT_EVICTION_CONTROLLER,
            );
        }
    }

    /// Upstream's processPodOnNode for one pod against its node's current NoExecute taints.
    fn replan(&self, st: &mut State, key: &PodKey, now: Timestamp) {
        let Some(pod) = st.pods.get(key) else {
            return self.cancel(st, key);
        };
        if pod.node.is_empty() || pod.deleting {
            return;
        }
        let taints = st.no_execute.get(&*pod.node).cloned().unwrap_or_default();
        match eviction::plan(&taints, &pod.tolerations, pod.created, now) {
            Plan::Cancel => self.cancel(st, key),
            Plan::EvictNow => {
                if st
                    .evictions
                    .get(key)
                    .is_some_and(|s| s.fired || s.fire <= now)
                {
                    return;
                }
                self.cancel(st, key);
                self.schedule(st, key, now, now, now);
            }
            Plan::EvictAfter { start, after } => {
                // The timer keeps running from when it started; only the tolerations decide
                // how long it runs.
                let start = match st.evictions.get(key) {
                    Some(s) if s.fired => return,
                    Some(s) => s.start,
                    None => start,
                };
                let fire = eviction::fire_time(start, after);
                if st.evictions.get(key).is_some_and(|s| s.fire == fire) {
                    return;
                }
                self.schedule(st, key, start, fire, now);
            }
        }
    }

    fn schedule(
        &self,
        st: &mut State,
        key: &PodKey,
        start: Timestamp,
        fire: Timestamp,
        now: Timestamp,
    ) {
        debug!(namespace = %key.0, pod = %key.1, %fire, "taint eviction scheduled");
        let announced = st.evictions.get(key).is_some_and(|s| s.announced);
        st.evictions.insert(
            key.clone(),
            Scheduled {
                start,
                fire,
                fired: false,
                announced,
            },
        );
        self.queue
            .add_after(Work::Evict(key.clone()), duration_until(fire, now));
    }

    // ---- periodic passes -----------------------------------------------------------------

    /// monitorNodeHealth's loop: judge every node, then the zones.
    async fn monitor(self: Arc<Self>) -> Result<(), Error> {
        let period = self.opts.node_monitor_period.max(Duration::from_millis(10));
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let names: Vec<String> = self.lock().nodes.keys().cloned().collect();
            for n in names {
                self.queue.add(Work::Health(n));
            }
            self.handle_disruption();
        }
    }

    fn zone_qps(&self, size: usize, state: ZoneState) -> f64 {
        match state {
            ZoneState::PartialDisruption if size > self.opts.large_cluster_size_threshold => {
                self.opts.secondary_eviction_limiter_qps
            }
            ZoneState::PartialDisruption => 0.0,
            _ => self.opts.eviction_limiter_qps,
        }
    }

    /// Upstream's handleDisruption: pace or stop NoExecute tainting by zone health; when every
    /// zone is fully down, assume the problem is ours (or the network's), not the nodes', and
    /// remove the NoExecute taints.
    fn handle_disruption(&self) {
        let mut st = self.lock();
        let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
        for node in st.nodes.values() {
            if !monitor::counts_for_disruption(node) {
                continue;
            }
            let c = counts.entry(monitor::zone_key(node)).or_default();
            if monitor::ready_status(node) == Some("True") {
                c.0 += 1;
            } else {
                c.1 += 1;
            }
        }
        let new_states: HashMap<String, (ZoneState, usize)> = counts
            .iter()
            .map(|(z, (ready, not_ready))| {
                let s = monitor::compute_zone_state(
                    *ready,
                    *not_ready,
                    self.opts.unhealthy_zone_threshold,
                );
                (z.clone(), (s, ready + not_ready))
            })
            .collect();
        let all_are_full = new_states
            .values()
            .all(|(s, _)| *s == ZoneState::FullDisruption);
        st.zones.retain(|z, _| new_states.contains_key(z));
        let all_were_full = st
            .zones
            .values()
            .all(|z| z.state == ZoneState::FullDisruption);
        for z in new_states.keys() {
            st.zones.entry(z.clone()).or_insert_with(|| Zone {
                state: ZoneState::Initial,
                queue: VecDeque::new(),
                queued: HashSet::new(),
                bucket: TokenBucket::new(self.opts.eviction_limiter_qps),
            });
        }
        if all_are_full && all_were_full {
            return;
        }
        if all_are_full {
            if !new_states.is_empty() {
                // Info, not warn: a fleet that is still registering looks the same.
                info!("every node is not ready: stopping NoExecute tainting (disruption mode)");
            }
            let names: Vec<String> = st.nodes.keys().cloned().collect();
            for n in names {
                self.queue.add(Work::Reachable(n));
            }
            for z in st.zones.values_mut() {
                z.bucket.swap(0.0);
                z.state = ZoneState::FullDisruption;
            }
            return;
        }
        if all_were_full && !st.zones.is_empty() {
            info!("some nodes are ready again: leaving disruption mode");
            // Give every node a fresh grace period, as upstream does.
            let now = Timestamp::now();
            for h in st.health.values_mut() {
                h.probe = now;
            }
        }
        for (name, (state, size)) in &new_states {
            let qps = self.zone_qps(*size, *state);
            if let Some(z) = st.zones.get_mut(name)
                && (z.state != *state || all_were_full)
            {
                if z.state != *state {
                    info!(zone = %name, state = ?state, "zone changed state");
                }
                z.bucket.swap(qps);
                z.state = *state;
            }
        }
    }

    /// Drain the zone tainters at the pace their limiters allow.
    async fn tainter(self: Arc<Self>) -> Result<(), Error> {
        let mut tick = tokio::time::interval(TAINTER_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let mut st = self.lock();
            for z in st.zones.values_mut() {
                while !z.queue.is_empty() && z.bucket.try_accept() {
                    if let Some(n) = z.queue.pop_front() {
                        z.queued.remove(&n);
                        self.queue.add(Work::NoExecute(n));
                    }
                }
            }
        }
    }

    // ---- workers -------------------------------------------------------------------------

    async fn worker(self: Arc<Self>) -> Result<(), Error> {
        while let Some(work) = self.queue.get().await {
            let res = match &work {
                Work::Health(n) => self.check_health(n).await,
                Work::NoSchedule(n) => self.no_schedule_pass(n).await,
                Work::NoExecute(n) => self.apply_no_execute(n).await,
                Work::Reachable(n) => self.mark_reachable(n).await,
                Work::PodsNotReady(n) => self.mark_pods_not_ready(n).await,
                Work::Evict(k) => self.evict(k).await,
            };
            match res {
                Ok(()) => self.queue.forget(&work),
                Err(e) => {
                    debug!(?work, error = %e, "node lifecycle step failed; retrying");
                    self.queue.add_rate_limited(work.clone());
                }
            }
            self.queue.done(&work);
        }
        Ok(())
    }

    /// tryUpdateNodeHealth + processTaintBaseEviction for one node.
    async fn check_health(&self, name: &str) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let (node, silent, last_ready) = {
            let st = self.lock();
            let (Some(node), Some(h)) = (st.nodes.get(name), st.health.get(name)) else {
                return Ok(());
            };
            let silent = h.is_silent(
                self.opts.node_monitor_grace_period,
                self.startup_grace(),
                now,
            );
            (node.clone(), silent, h.last_ready.clone())
        };
        let mut current = monitor::ready_status(&node).map(str::to_string);
        if silent && monitor::marks_unknown(&node) {
            info!(node = %name, "node stopped posting status; marking it Unknown");
            let api: Api<Node> = Api::all(self.client.clone());
            // The cache holds a trimmed node (conditions without reasons and messages): write
            // the stored node's whole status, with its conditions turned Unknown, at the version
            // the decision was made on. At that version the stored node is the cached one; a
            // newer one is a 409 and is judged again.
            let mut updated = match api.get(name).await {
                Ok(fresh) => fresh,
                Err(e) if is_status(&e, 404) => return Ok(()),
                Err(e) => return Err(e),
            };
            let conditions = monitor::silent_conditions(&updated, now);
            updated.metadata.resource_version =
                node.part.resource_version.as_deref().map(From::from);
            let status = updated.status.get_or_insert_with(Default::default);
            if let Some(conditions) = conditions {
                status.conditions = Some(conditions);
            }
            match api
                .replace_status(name, &PostParams::default(), &updated)
                .await
            {
                Ok(_) => current = Some("Unknown".to_string()),
                Err(e) if is_status(&e, 404) => return Ok(()),
                // 409: the node changed under us (perhaps a heartbeat); judge it again.
                Err(e) => return Err(e),
            }
        }
        {
            let mut st = self.lock();
            if let Some(h) = st.health.get_mut(name) {
                h.last_ready = current.clone();
            }
        }
        if last_ready.as_deref() == Some("True") && current.as_deref() != Some("True") {
            self.event(EventReq {
                kind: "Node",
                namespace: "default".to_string(),
                name: name.to_string(),
                uid: node.part.uid.as_deref().map(From::from),
                type_: "Normal",
                reason: "NodeNotReady",
                message: format!("Node {name} status is now: NodeNotReady"),
                component: NODE_CONTROLLER,
            });
            self.queue.add(Work::PodsNotReady(name.to_string()));
        }
        let node_taints = &node.taints;
        let has = |key| taints::has_taint(node_taints, key, TAINT_EFFECT_NO_EXECUTE);
        match current.as_deref() {
            Some(status @ ("False" | "Unknown")) => {
                let Some((want, opposite)) = taints::no_execute_for_ready(status) else {
                    return Ok(());
                };
                if has(opposite) {
                    // Already tainted for the other state: swap at once, unpaced.
                    self.apply_no_execute(name).await?;
                } else if !has(want) {
                    let zone = monitor::zone_key(&node);
                    let mut st = self.lock();
                    if let Some(z) = st.zones.get_mut(&zone)
                        && z.queued.insert(name.to_string())
                    {
                        debug!(node = %name, "queued for a NoExecute taint");
                        z.queue.push_back(name.to_string());
                    }
                }
            }
            Some("True") => {
                {
                    let mut st = self.lock();
                    for z in st.zones.values_mut() {
                        if z.queued.remove(name) {
                            z.queue.retain(|n| n != name);
                        }
                    }
                }
                if has(TAINT_NOT_READY) || has(TAINT_UNREACHABLE) {
                    self.mark_reachable(name).await?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Read-modify-write of a node's taints: `f` gets the current node and answers the new
    /// taint list, or `None` for nothing to do. Conflicts are retried with a fresh read.
    async fn update_taints(
        &self,
        name: &str,
        f: impl Fn(&Node) -> Option<Vec<Taint>>,
    ) -> Result<(), kube::Error> {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut last = None;
        for _ in 0..WRITE_ATTEMPTS {
            let Some(mut node) = api.get_opt(name).await? else {
                return Ok(());
            };
            let Some(new_taints) = f(&node) else {
                return Ok(());
            };
            node.spec.get_or_insert_with(Default::default).taints = Some(new_taints);
            match api.replace(name, &PostParams::default(), &node).await {
                Ok(_) => return Ok(()),
                Err(e) if is_status(&e, 404) => return Ok(()),
                Err(e) if is_status(&e, 409) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        match last {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// doNoScheduleTaintingPass.
    async fn no_schedule_pass(&self, name: &str) -> Result<(), kube::Error> {
        let Some(node) = self.lock().nodes.get(name).cloned() else {
            return Ok(());
        };
        let (add, remove) = taints::no_schedule_diff(&node);
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        debug!(node = %name, ?add, ?remove, "updating NoSchedule taints");
        self.update_taints(name, |fresh| {
            let (add, remove) = taints::no_schedule_diff(fresh);
            if add.is_empty() && remove.is_empty() {
                return None;
            }
            let current = fresh
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_deref())
                .unwrap_or(&[]);
            taints::swap_taints(current, &add, &remove, Timestamp::now())
        })
        .await
    }

    /// The NoExecute taint matching the node's Ready condition, replacing the opposite one.
    async fn apply_no_execute(&self, name: &str) -> Result<(), kube::Error> {
        self.update_taints(name, |fresh| {
            let status = monitor::ready_status(fresh)?;
            let (want, opposite) = taints::no_execute_for_ready(status)?;
            let current = fresh
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_deref())
                .unwrap_or(&[]);
            let out = taints::swap_taints(
                current,
                &[taints::taint(want, TAINT_EFFECT_NO_EXECUTE)],
                &[taints::taint(opposite, TAINT_EFFECT_NO_EXECUTE)],
                Timestamp::now(),
            );
            if out.is_some() {
                info!(node = %name, taint = want, "tainting node NoExecute");
            }
            out
        })
        .await
    }

    /// markNodeAsReachable: drop the not-ready and unreachable NoExecute taints.
    async fn mark_reachable(&self, name: &str) -> Result<(), kube::Error> {
        self.update_taints(name, |fresh| {
            let current = fresh
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_deref())
                .unwrap_or(&[]);
            let out = taints::swap_taints(
                current,
                &[],
                &[
                    taints::taint(TAINT_NOT_READY, TAINT_EFFECT_NO_EXECUTE),
                    taints::taint(TAINT_UNREACHABLE, TAINT_EFFECT_NO_EXECUTE),
                ],
                Timestamp::now(),
            );
            if out.is_some() {
                info!(node = %name, "removing NoExecute taints");
            }
            out
        })
        .await
    }

    /// MarkPodsNotReady: the Ready condition of every pod on a not-ready node turns False.
    async fn mark_pods_not_ready(&self, node: &str) -> Result<(), kube::Error> {
        let pods: Vec<(PodKey, String)> = {
            let st = self.lock();
            let still_not_ready = st
                .health
                .get(node)
                .and_then(|h| h.last_ready.as_deref())
                .is_some_and(|r| r != "True");
            if !still_not_ready {
                return Ok(());
            }
            st.pods_by_node
                .get(node)
                .into_iter()
                .flatten()
                .filter_map(|k| {
                    let p = st.pods.get(k)?;
                    (p.ready_not_false && !p.terminal).then(|| (k.clone(), p.uid.to_string()))
                })
                .collect()
        };
        let mut first_err = None;
        for (key, uid) in pods {
            let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.0);
            let patch = json!({
                "metadata": {"uid": uid},
                "status": {"conditions": [{
                    "type": "Ready",
                    "status": "False",
                    "lastTransitionTime": Time(Timestamp::now()),
                }]},
            });
            match api
                .patch_status(&key.1, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                Ok(_) => self.pod_event(
                    &key,
                    Some(uid),
                    "Warning",
                    "NodeNotReady",
                    "Node is not ready".to_string(),
                    NODE_CONTROLLER,
                ),
                Err(e) if is_status(&e, 404) || is_status(&e, 409) => {}
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The timed eviction: DisruptionTarget condition, then delete.
    async fn evict(&self, key: &PodKey) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let (uid, announce) = {
            let mut st = self.lock();
            let uid = st.pods.get(key).map(|p| (p.uid.to_string(), p.deleting));
            let Some(s) = st.evictions.get_mut(key) else {
                return Ok(());
            };
            if s.fired {
                return Ok(());
            }
            if s.fire > now {
                // Rescheduled later (longer toleration): this timer is stale.
                return Ok(());
            }
            let Some((uid, deleting)) = uid else {
                return Ok(());
            };
            if deleting {
                s.fired = true;
                return Ok(());
            }
            let announce = !s.announced;
            s.announced = true;
            (uid, announce)
        };
        if announce {
            info!(namespace = %key.0, pod = %key.1, "evicting pod for a NoExecute taint");
            self.pod_event(
                key,
                Some(uid.clone()),
                "Normal",
                "TaintManagerEviction",
                format!("Marking for deletion Pod {}/{}", key.0, key.1),
                TAINT_EVICTION_CONTROLLER,
            );
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &key.0);
        let patch = json!({
            "metadata": {"uid": uid},
            "status": {"conditions": [{
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint",
                "lastTransitionTime": Time(now),
            }]},
        });
        match api
            .patch_status(&key.1, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) || is_status(&e, 409) => return self.evicted(key),
            Err(e) => return Err(e),
        }
        let dp = DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..Default::default()
        };
        match api.delete(&key.1, &dp).await {
            Ok(_) => self.evicted(key),
            Err(e) if is_status(&e, 404) || is_status(&e, 409) => self.evicted(key),
            Err(e) => Err(e),
        }
    }

    fn evicted(&self, key: &PodKey) -> Result<(), kube::Error> {
        if let Some(s) = self.lock().evictions.get_mut(key) {
            s.fired = true;
        }
        Ok(())
    }
}

/// Write events as they come; failures are logged, never retried (events are best effort).
async fn record_events(
    client: kube::Client,
    mut rx: mpsc::UnboundedReceiver<EventReq>,
) -> Result<(), Error> {
    while let Some(req) = rx.recv().await {
        let now = Time(Timestamp::now());
        let suffix: u64 = rand::random();
        let event = CoreEvent {
            metadata: ObjectMeta {
                name: Some(format!("{}.{:016x}", req.name, suffix)),
                namespace: Some(req.namespace.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".to_string()),
                kind: Some(req.kind.to_string()),
                name: Some(req.name.clone()),
                namespace: (req.kind == "Pod").then(|| req.namespace.clone()),
                uid: req.uid,
                ..Default::default()
            },
            reason: Some(req.reason.to_string()),
            message: Some(req.message),
            type_: Some(req.type_.to_string()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            source: Some(EventSource {
                component: Some(req.component.to_string()),
                host: None,
            }),
            reporting_component: Some(req.component.to_string()),
            reporting_instance: Some(String::new()),
            ..Default::default()
        };
        let api: Api<CoreEvent> = Api::namespaced(client.clone(), &req.namespace);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            debug!(error = %e, "could not record event");
        }
    }
    Ok(())
}
