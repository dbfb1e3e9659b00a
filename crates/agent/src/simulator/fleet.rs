//! The simulator's moving parts: the shared Node and Pod watches feeding one in-memory state,
//! work queues for node and pod status writes, and the heartbeat ticker.

use foldhash::{HashMap, HashSet, HashSetExt};
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use rand::Rng;
use serde_json::json;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::NodeProfile;
use super::objects::{PodRecord, SimLease, SimNode, SimPod};
use super::status::{
    self, Outcome, OwnConditionTimes, PodAddresses, is_simulated, node_status_current,
    node_status_patch_for, pod_status, requested_outcome, status_reflects,
};
use super::workqueue::WorkQueue;
use super::{Error, SimulatorOptions};

type PodKey = (String, String);

/// Heartbeats are spread over this many slots per interval.
const HEARTBEAT_SLOTS: u64 = 100;

/// What the simulator keeps of a node it runs.
struct NodeEntry {
    uid: String,
    ip: Ipv4Addr,
    /// What its next status post keeps of the current conditions.
    times: OwnConditionTimes,
    /// The lease is known to exist (renew by patch, not create).
    lease_exists: bool,
    last_status: Option<Instant>,
    /// Its heartbeat slot (`slot_of` its name), computed once: the heartbeat ticker visits
    /// every node 100 times per interval, and hashing the names each time showed in profiles.
    slot: u64,
}

struct PodEntry {
    pod: Arc<PodRecord>,
    ready_at: Instant,
    delete_at: Option<Instant>,
    backoff_at: Option<Instant>,
}

#[derive(Default)]
struct State {
    nodes: HashMap<String, NodeEntry>,
    /// Node names ever simulated → index, so a re-created node keeps its IP.
    node_index: HashMap<String, u32>,
    pods: HashMap<PodKey, PodEntry>,
    /// The pods bound to each node. A list rather than a set: a node has few pods (one per
    /// daemon set), and an empty set allocates four slots for the first.
    pods_by_node: HashMap<String, Vec<PodKey>>,
}

impl State {
    fn index_pod(&mut self, node: &str, key: &PodKey) {
        match self.pods_by_node.get_mut(node) {
            Some(keys) if keys.contains(key) => {}
            Some(keys) => keys.push(key.clone()),
            None => {
                self.pods_by_node
                    .insert(node.to_string(), vec![key.clone()]);
            }
        }
    }

    fn unindex_pod(&mut self, node: &str, key: &PodKey) {
        if let Some(keys) = self.pods_by_node.get_mut(node) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.pods_by_node.remove(node);
            }
        }
    }
}

/// The simulator.
pub(crate) struct Fleet {
    client: kube::Client,
    opts: SimulatorOptions,
    state: Mutex<State>,
    next_pod_ip: AtomicU32,
    node_queue: WorkQueue<String>,
    pod_queue: WorkQueue<PodKey>,
}

fn name_of(meta: &ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

fn pod_key(pod: &SimPod) -> PodKey {
    (
        pod.metadata.namespace.clone().unwrap_or_default(),
        name_of(&pod.metadata),
    )
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

fn slot_of(name: &str) -> u64 {
    let mut h = DefaultHasher::new();
    name.hash(&mut h);
    h.finish() % HEARTBEAT_SLOTS
}

impl Fleet {
    pub(crate) fn new(client: kube::Client, opts: SimulatorOptions) -> Arc<Fleet> {
        Arc::new(Fleet {
            client,
            opts,
            state: Mutex::new(State::default()),
            next_pod_ip: AtomicU32::new(0),
            node_queue: WorkQueue::new(Duration::from_millis(50), Duration::from_secs(10)),
            pod_queue: WorkQueue::new(Duration::from_millis(50), Duration::from_secs(10)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) async fn run(self: Arc<Self>) -> Result<(), Error> {
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(self.clone().watch_nodes());
        tasks.spawn(self.clone().watch_pods());
        tasks.spawn(self.clone().heartbeats());
        for _ in 0..self.opts.node_workers.max(1) {
            tasks.spawn(self.clone().node_worker());
        }
        for _ in 0..self.opts.pod_workers.max(1) {
            tasks.spawn(self.clone().pod_worker());
        }
        // Every task loops forever; the first one to end ends the simulator.
        let first = tasks.join_next().await;
        self.node_queue.shut_down();
        self.pod_queue.shut_down();
        tasks.abort_all();
        match first {
            Some(Ok(r)) => r,
            Some(Err(e)) => Err(Error::Task(e.to_string())),
            None => Ok(()),
        }
    }

    // ---- nodes ------------------------------------------------------------------------

    async fn watch_nodes(self: Arc<Self>) -> Result<(), Error> {
        let api: Api<SimNode> = Api::all(self.client.clone());
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut seen: HashSet<String> = HashSet::new();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Apply(n)) => self.node_seen(n),
                Ok(Event::Delete(n)) => self.node_gone(&name_of(&n.metadata)),
                Ok(Event::Init) => seen.clear(),
                Ok(Event::InitApply(n)) => {
                    seen.insert(name_of(&n.metadata));
                    self.node_seen(n);
                }
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

    fn node_seen(&self, node: SimNode) {
        let name = name_of(&node.metadata);
        if !is_simulated(&node.metadata) {
            self.node_gone(&name);
            return;
        }
        let uid = node.metadata.uid.clone().unwrap_or_default();
        let times = OwnConditionTimes::of(&node);
        let mut st = self.lock();
        let next_idx = st.node_index.len() as u32;
        let idx = *st.node_index.entry(name.clone()).or_insert(next_idx);
        let ip = status::node_ip(idx);
        let current = node_status_current(&node, &self.profile_of(&name), ip);
        let fresh = match st.nodes.get_mut(&name) {
            Some(sim) if sim.uid == uid => {
                sim.times = times;
                false
            }
            _ => {
                st.nodes.insert(
                    name.clone(),
                    NodeEntry {
                        uid,
                        ip,
                        times,
                        lease_exists: false,
                        last_status: None,
                        slot: slot_of(&name),
                    },
                );
                true
            }
        };
        let pods: Vec<PodKey> = if fresh {
            st.pods_by_node
                .get(&name)
                .into_iter()
                .flatten()
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        drop(st);
        if fresh || !current {
            self.node_queue.add(name);
        }
        for k in pods {
            self.pod_queue.add(k);
        }
    }

    fn node_gone(&self, name: &str) {
        self.lock().nodes.remove(name);
    }

    async fn node_worker(self: Arc<Self>) -> Result<(), Error> {
        while let Some(name) = self.node_queue.get().await {
            match self.sync_node(&name).await {
                Ok(()) => self.node_queue.forget(&name),
                Err(e) => {
                    debug!(node = %name, error = %e, "node status write failed; retrying");
                    self.node_queue.add_rate_limited(name.clone());
                }
            }
            self.node_queue.done(&name);
        }
        Ok(())
    }

    /// The profile `name` reports: the options', with its own capacity when it has one.
    fn profile_of(&self, name: &str) -> std::borrow::Cow<'_, NodeProfile> {
        match self.opts.capacity_by_node.get(name) {
            None => std::borrow::Cow::Borrowed(&self.opts.profile),
            Some(capacity) => std::borrow::Cow::Owned(NodeProfile {
                capacity: capacity.clone(),
                ..self.opts.profile.clone()
            }),
        }
    }

    /// Post the node's status, and make sure its lease exists.
    async fn sync_node(&self, name: &str) -> Result<(), kube::Error> {
        let Some((uid, times, ip, lease_exists)) = self
            .lock()
            .nodes
            .get(name)
            .map(|s| (s.uid.clone(), s.times, s.ip, s.lease_exists))
        else {
            return Ok(());
        };
        let api: Api<SimNode> = Api::all(self.client.clone());
        let profile = self.profile_of(name);
        let body = node_status_patch_for(name, &uid, &times, &profile, ip, Timestamp::now());
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(body))
            .await
        {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => return Ok(()),
            Err(e) => return Err(e),
        }
        if let Some(s) = self.lock().nodes.get_mut(name) {
            s.last_status = Some(Instant::now());
        }
        if !lease_exists {
            self.renew_lease(name).await?;
        }
        Ok(())
    }

    // ---- leases and heartbeats ----------------------------------------------------------

    /// Renew (or create) the node's lease in kube-node-lease.
    async fn renew_lease(&self, name: &str) -> Result<(), kube::Error> {
        let Some((uid, exists)) = self
            .lock()
            .nodes
            .get(name)
            .map(|s| (s.uid.clone(), s.lease_exists))
        else {
            return Ok(());
        };
        // Renewals decode their answers compactly (they are never read); a creation sends a
        // whole Lease.
        let api: Api<SimLease> = Api::namespaced(self.client.clone(), &self.opts.lease_namespace);
        let leases: Api<Lease> = Api::namespaced(self.client.clone(), &self.opts.lease_namespace);
        let now = serde_json::to_value(MicroTime(Timestamp::now())).unwrap_or_default();
        if exists {
            let patch = json!({"spec": {
                "holderIdentity": name,
                "leaseDurationSeconds": self.opts.lease_duration_seconds,
                "renewTime": now,
            }});
            match api
                .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_status(&e, 404) => {}
                Err(e) => return Err(e),
            }
        }
        let lease: Lease = serde_json::from_value(json!({
            "metadata": {
                "name": name,
                "namespace": self.opts.lease_namespace,
                // As the kubelet does: the lease goes with its node (garbage collector).
                "ownerReferences": [OwnerReference {
                    api_version: "v1".into(), kind: "Node".into(), name: name.into(), uid,
                    ..Default::default()
                }],
            },
            "spec": {
                "holderIdentity": name,
                "leaseDurationSeconds": self.opts.lease_duration_seconds,
                "renewTime": now,
            }
        }))
        .map_err(kube::Error::SerdeError)?;
        let created = match leases.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 409) => {
                // Someone (an earlier run) created it: renew it.
                let patch = json!({"spec": {"holderIdentity": name, "renewTime": now}});
                api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map(|_| ())
            }
            Err(e) if is_status(&e, 404) => {
                // The lease namespace does not exist yet.
                let ns: Api<Namespace> = Api::all(self.client.clone());
                let obj = Namespace {
                    metadata: ObjectMeta {
                        name: Some(self.opts.lease_namespace.clone()),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                match ns.create(&PostParams::default(), &obj).await {
                    Ok(_) => {}
                    Err(e) if is_status(&e, 409) => {}
                    Err(e) => return Err(e),
                }
                leases
                    .create(&PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
            Err(e) => Err(e),
        };
        created?;
        if let Some(s) = self.lock().nodes.get_mut(name) {
            s.lease_exists = true;
        }
        Ok(())
    }

    /// Renew every node's lease once per heartbeat interval, each node in its own time slot so
    /// that writes are spread evenly; re-post node status when it is due.
    async fn heartbeats(self: Arc<Self>) -> Result<(), Error> {
        let slot = self.opts.heartbeat_interval / HEARTBEAT_SLOTS as u32;
        let mut tick = tokio::time::interval(slot.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut n: u64 = 0;
        loop {
            tick.tick().await;
            let current = n % HEARTBEAT_SLOTS;
            n += 1;
            let now = Instant::now();
            let (due, status_due): (Vec<String>, Vec<String>) = {
                let st = self.lock();
                let mut due = Vec::new();
                let mut status_due = Vec::new();
                for (name, sim) in &st.nodes {
                    if sim.slot != current || !sim.lease_exists {
                        continue;
                    }
                    due.push(name.clone());
                    if sim
                        .last_status
                        .is_none_or(|t| now.duration_since(t) >= self.opts.node_status_interval)
                    {
                        status_due.push(name.clone());
                    }
                }
                (due, status_due)
            };
            for name in status_due {
                self.node_queue.add(name);
            }
            let me = &self;
            futures::stream::iter(due)
                .for_each_concurrent(self.opts.node_workers.max(1), |name| async move {
                    if let Err(e) = me.renew_lease(&name).await {
                        warn!(node = %name, error = %e, "lease renewal failed");
                    }
                })
                .await;
        }
    }

    // ---- pods ---------------------------------------------------------------------------

    async fn watch_pods(self: Arc<Self>) -> Result<(), Error> {
        let api: Api<SimPod> = Api::all(self.client.clone());
        // Bound pods only, as each kubelet watches `spec.nodeName=<its node>`: a pod waiting
        // for the scheduler is none of the simulator's business, and skipping its creation
        // spares decoding one of a daemon pod's three events. A pod leaves the watch only by
        // being deleted (a binding is never undone).
        let config = watcher::Config::default().fields("spec.nodeName!=");
        let mut stream = watcher(api, config).default_backoff().boxed();
        let mut seen: HashSet<PodKey> = HashSet::new();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Apply(p)) => self.pod_seen(p),
                Ok(Event::Delete(p)) => self.pod_gone(&pod_key(&p)),
                Ok(Event::Init) => seen.clear(),
                Ok(Event::InitApply(p)) => {
                    seen.insert(pod_key(&p));
                    self.pod_seen(p);
                }
                Ok(Event::InitDone) => {
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
                Err(e) => debug!(error = %e, "pod watch interrupted; retrying"),
            }
        }
        Err(Error::Task("pod watch ended".into()))
    }

    fn pod_seen(&self, pod: SimPod) {
        let key = pod_key(&pod);
        let pod = PodRecord::new(pod);
        let node = pod.node_name().to_string();
        if node.is_empty() {
            self.pod_gone(&key);
            return;
        }
        let (lo, hi) = self.opts.start_delay;
        let delay = if hi > lo {
            rand::rng().random_range(lo..=hi)
        } else {
            lo
        };
        let mut st = self.lock();
        let pod = Arc::new(pod);
        match st.pods.get_mut(&key) {
            Some(e) if e.pod.uid == pod.uid => e.pod = pod,
            _ => {
                let entry = PodEntry {
                    pod,
                    ready_at: Instant::now() + delay,
                    delete_at: None,
                    backoff_at: None,
                };
                if let Some(replaced) = st.pods.insert(key.clone(), entry) {
                    st.unindex_pod(replaced.pod.node_name(), &key);
                }
                st.index_pod(&node, &key);
            }
        }
        let simulated = st.nodes.contains_key(&node);
        drop(st);
        if simulated {
            self.pod_queue.add(key);
        }
    }

    fn pod_gone(&self, key: &PodKey) {
        let mut st = self.lock();
        if let Some(e) = st.pods.remove(key) {
            st.unindex_pod(e.pod.node_name(), key);
        }
    }

    async fn pod_worker(self: Arc<Self>) -> Result<(), Error> {
        while let Some(key) = self.pod_queue.get().await {
            match self.sync_pod(&key).await {
                Ok(None) => self.pod_queue.forget(&key),
                Ok(Some(after)) => {
                    self.pod_queue.forget(&key);
                    self.pod_queue.add_after(key.clone(), after);
                }
                Err(e) => {
                    debug!(namespace = %key.0, pod = %key.1, error = %e, "pod sync failed; retrying");
                    self.pod_queue.add_rate_limited(key.clone());
                }
            }
            self.pod_queue.done(&key);
        }
        Ok(())
    }

    fn scaled_grace(&self, pod: &PodRecord) -> Duration {
        let secs = pod.grace_period_seconds().unwrap_or(30).max(0) as f64;
        Duration::from_secs_f64((secs * self.opts.grace_period_scale).max(0.0))
            .min(self.opts.max_grace_period)
    }

    /// Bring one pod forward. `Ok(Some(d))`: look again after `d`.
    async fn sync_pod(&self, key: &PodKey) -> Result<Option<Duration>, kube::Error> {
        let now = Instant::now();
        let (pod, host_ip, ready_at, delete_at, backoff_at) = {
            let mut st = self.lock();
            let Some(entry) = st.pods.get(key) else {
                return Ok(None);
            };
            let pod = entry.pod.clone();
            let Some(host_ip) = st.nodes.get(pod.node_name()).map(|n| n.ip) else {
                return Ok(None);
            };
            let grace = self.scaled_grace(&pod);
            let Some(entry) = st.pods.get_mut(key) else {
                return Ok(None);
            };
            if pod.terminating && entry.delete_at.is_none() {
                entry.delete_at = Some(now + grace);
            }
            (
                pod,
                host_ip,
                entry.ready_at,
                entry.delete_at,
                entry.backoff_at,
            )
        };
        let api: Api<SimPod> = Api::namespaced(self.client.clone(), &key.0);

        if pod.terminating {
            let due = delete_at.unwrap_or(now);
            if now < due {
                return Ok(Some(due - now));
            }
            let dp = DeleteParams {
                grace_period_seconds: Some(0),
                preconditions: Some(Preconditions {
                    uid: (!pod.uid.is_empty()).then(|| pod.uid.clone()),
                    resource_version: None,
                }),
                ..Default::default()
            };
            return match api.delete(&key.1, &dp).await {
                Ok(_) => Ok(None),
                // Gone already, or replaced by a pod with the same name (uid precondition).
                Err(e) if is_status(&e, 404) || is_status(&e, 409) => Ok(None),
                Err(e) => Err(e),
            };
        }
        if pod.is_terminal() {
            return Ok(None); // never revived
        }
        let pod = &*pod;
        let mut outcome = requested_outcome(pod);
        if let Outcome::ImagePullFails { .. } = outcome {
            // ErrImagePull first; once reported, ImagePullBackOff after a while, then stay.
            if status_reflects(pod, &Outcome::ImagePullFails { backoff: true }) {
                return Ok(None);
            }
            if status_reflects(pod, &Outcome::ImagePullFails { backoff: false }) {
                let due = match backoff_at {
                    Some(t) => t,
                    None => {
                        let t = now + self.opts.image_pull_backoff_delay;
                        if let Some(e) = self.lock().pods.get_mut(key) {
                            e.backoff_at = Some(t);
                        }
                        t
                    }
                };
                if now < due {
                    return Ok(Some(due - now));
                }
                outcome = Outcome::ImagePullFails { backoff: true };
            }
        }
        if status_reflects(pod, &outcome) {
            return Ok(None);
        }
        if now < ready_at {
            return Ok(Some(ready_at - now));
        }
        let addrs = PodAddresses {
            host_ip,
            pod_ip: status::pod_ip(self.next_pod_ip.fetch_add(1, Ordering::Relaxed)),
        };
        let st = pod_status(pod, &outcome, addrs, Timestamp::now());
        match patch_pod_status(&self.client, &key.0, &key.1, &st).await {
            Ok(_) => {}
            Err(e) if is_status(&e, 404) => return Ok(None),
            Err(e) => return Err(e),
        }
        Ok(None)
    }
}

/// A strategic merge patch of a pod's status, as the kubelet sends. The patch is encoded
/// straight from the typed status, and the answer is read no further than its HTTP status: the
/// pod watch brings the new version.
async fn patch_pod_status(
    client: &kube::Client,
    ns: &str,
    name: &str,
    status: &k8s_openapi::api::core::v1::PodStatus,
) -> Result<(), kube::Error> {
    #[derive(serde::Serialize)]
    struct StatusPatch<'a> {
        status: &'a k8s_openapi::api::core::v1::PodStatus,
    }
    let req = kube::core::Request::new(<SimPod as kube::Resource>::url_path(&(), Some(ns)))
        .patch_subresource(
            "status",
            name,
            &PatchParams::default(),
            &Patch::Strategic(StatusPatch { status }),
        )
        .map_err(kube::Error::BuildRequest)?;
    client.request_text(req).await.map(|_| ())
}

fn watcher<K>(
    api: Api<K>,
    cfg: watcher::Config,
) -> impl futures::Stream<Item = Result<Event<K>, watcher::Error>>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    watcher::watcher(api, cfg)
}
