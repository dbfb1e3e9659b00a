//! End-to-end harness of the behaviour tests (placement.rs, rollout.rs): an in-process API
//! server with the DaemonSet controller, the scheduler, the garbage collector, pod GC and a
//! fast fleet simulator, plus helpers to build DaemonSets, read status and record every pod
//! change a watch delivers (so an invariant can be checked on every state, not on samples).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, DaemonSetStatus};
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, watcher};
use pernode_agent::simulator::{self, SimulatorOptions};
use pernode_controllers::daemonset::{self, DaemonSetControllerOptions};
use pernode_controllers::garbage_collector::{self, GcOptions};
use pernode_controllers::pod_gc::{self, PodGcOptions};
use pernode_controllers::scheduler::{self, SchedulerOptions};
use serde_json::{Value, json};

/// The API handles of one test cluster.
pub struct Env {
    pub client: kube::Client,
    pub dss: Api<DaemonSet>,
    pub pods: Api<Pod>,
    pub nodes: Api<Node>,
    pub revs: Api<ControllerRevision>,
    pub events: Api<Event>,
}

/// Simulator options for tests: pods start within 100 ms, terminate within 200 ms.
pub fn fast_simulator() -> SimulatorOptions {
    SimulatorOptions {
        heartbeat_interval: Duration::from_millis(300),
        node_status_interval: Duration::from_millis(500),
        start_delay: (Duration::from_millis(20), Duration::from_millis(100)),
        image_pull_backoff_delay: Duration::from_millis(500),
        max_grace_period: Duration::from_millis(200),
        ..Default::default()
    }
}

/// A fresh cluster with simulated nodes `node-1..node-n` and every control loop running.
pub async fn start(n: usize) -> Env {
    start_with(n, fast_simulator()).await
}

/// As [`start`], with the given simulator options.
pub async fn start_with(n: usize, sim: SimulatorOptions) -> Env {
    // Control-loop logs with `RUST_LOG` (e.g. `pernode_controllers::daemonset=debug`), shown
    // for failing tests (all with `--nocapture`).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let router = pernode_apiserver::in_memory_router()
        .await
        .expect("api server");
    let client = kube::Client::new(router, "default");
    simulator::create_nodes(client.clone(), n, "node")
        .await
        .expect("nodes");
    tokio::spawn(simulator::run(client.clone(), sim));
    tokio::spawn(daemonset::run(
        client.clone(),
        DaemonSetControllerOptions::default(),
    ));
    tokio::spawn(scheduler::run(client.clone(), SchedulerOptions::default()));
    tokio::spawn(garbage_collector::run(client.clone(), GcOptions::default()));
    tokio::spawn(pod_gc::run(
        client.clone(),
        PodGcOptions {
            quarantine: Duration::from_millis(300),
            sweep_interval: Duration::from_secs(1),
        },
    ));
    Env {
        dss: Api::namespaced(client.clone(), "default"),
        pods: Api::namespaced(client.clone(), "default"),
        nodes: Api::all(client.clone()),
        revs: Api::namespaced(client.clone(), "default"),
        events: Api::namespaced(client.clone(), "default"),
        client,
    }
}

/// Poll `f` until it yields Some, for up to `secs` seconds.
pub async fn eventually<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Check `f` continuously (every 20 ms) for `window`: it must hold every time.
pub async fn always<F, Fut>(what: &str, window: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + window;
    while tokio::time::Instant::now() < deadline {
        assert!(f().await, "{what} stopped holding");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// JSON merge of `over` onto `base` (RFC 7386).
pub fn merged(mut base: Value, over: Value) -> Value {
    json_patch::merge(&mut base, &over);
    base
}

/// DaemonSet `name` selecting `app=<name>`, one container `c` running `nginx:1.27`, with
/// `over` merged onto it (RFC 7386: objects merge, lists replace).
pub fn daemon_set(name: &str, over: Value) -> DaemonSet {
    let base = json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
            },
        },
    });
    serde_json::from_value(merged(base, over)).expect("daemon set literal")
}

impl Env {
    pub async fn create_ds(&self, name: &str, over: Value) -> DaemonSet {
        self.dss
            .create(&PostParams::default(), &daemon_set(name, over))
            .await
            .expect("create daemon set")
    }

    /// Strategic merge patch of a DaemonSet.
    pub async fn patch_ds(&self, name: &str, patch: Value) -> DaemonSet {
        self.dss
            .patch(name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .expect("patch daemon set")
    }

    /// Merge patch of a Node.
    pub async fn patch_node(&self, name: &str, patch: Value) {
        self.nodes
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
            .expect("patch node");
    }

    /// Replace the taints of a node.
    pub async fn taint(&self, node: &str, taints: Value) {
        self.patch_node(node, json!({"spec": {"taints": taints}}))
            .await;
    }

    /// Add a simulated node with extra labels and taints.
    pub async fn add_node(&self, name: &str, labels: Value, taints: Value) {
        let mut node = simulator::simulated_node(name);
        let extra: BTreeMap<String, String> =
            serde_json::from_value(labels).expect("labels literal");
        node.metadata
            .labels
            .get_or_insert_with(Default::default)
            .extend(extra);
        node.spec.get_or_insert_with(Default::default).taints =
            serde_json::from_value(taints).expect("taints literal");
        self.nodes
            .create(&PostParams::default(), &node)
            .await
            .expect("create node");
    }

    /// The status, once the controller has observed the current generation.
    pub async fn status(&self, name: &str) -> Option<DaemonSetStatus> {
        let ds = self.dss.get(name).await.ok()?;
        let s = ds.status?;
        (s.observed_generation? >= ds.metadata.generation?).then_some(s)
    }

    /// Waits until the observed status has these counters:
    /// (desired, current, ready, updated, available, misscheduled, unavailable).
    pub async fn wait_counts(&self, name: &str, want: Counts, secs: u64) -> DaemonSetStatus {
        eventually(&format!("{name} status {want:?}"), secs, || async {
            let s = self.status(name).await?;
            (counts(&s) == want).then_some(s)
        })
        .await
    }

    /// Pods of DaemonSet `name` (label `app=<name>`), terminating ones included.
    pub async fn all_pods(&self, name: &str) -> Vec<Pod> {
        self.pods
            .list(&ListParams::default().labels(&format!("app={name}")))
            .await
            .map(|l| l.items)
            .unwrap_or_default()
    }

    /// Non-terminating pods of DaemonSet `name`.
    pub async fn live_pods(&self, name: &str) -> Vec<Pod> {
        let mut v: Vec<Pod> = self
            .all_pods(name)
            .await
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        v.sort_by_key(|p| p.metadata.name.clone());
        v
    }

    /// Target node (nodeName, else the pinned matchFields node) → names of live pods.
    pub async fn pods_by_node(&self, name: &str) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for p in self.live_pods(name).await {
            out.entry(target_node(&p))
                .or_default()
                .push(p.metadata.name.clone().unwrap_or_default());
        }
        out
    }

    /// Node names holding live pods of `name`, each once (panics on a node with two).
    pub async fn nodes_with_pods(&self, name: &str) -> Vec<String> {
        let by_node = self.pods_by_node(name).await;
        by_node.keys().cloned().collect()
    }

    /// Events about object `name` with `reason`.
    pub async fn events_for(&self, name: &str, reason: &str) -> Vec<Event> {
        self.events
            .list(&ListParams::default())
            .await
            .map(|l| l.items)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                e.involved_object.name.as_deref() == Some(name)
                    && e.reason.as_deref() == Some(reason)
            })
            .collect()
    }

    /// Waits for an event about `name` with `reason` whose message satisfies `msg`.
    pub async fn wait_event(
        &self,
        name: &str,
        reason: &str,
        msg: impl Fn(&str) -> bool,
        secs: u64,
    ) -> Event {
        eventually(&format!("{reason} event on {name}"), secs, || async {
            self.events_for(name, reason)
                .await
                .into_iter()
                .find(|e| msg(e.message.as_deref().unwrap_or("")))
        })
        .await
    }

    /// Revisions of DaemonSet `name`, by revision number.
    pub async fn revisions(&self, name: &str) -> Vec<ControllerRevision> {
        let mut v: Vec<ControllerRevision> = self
            .revs
            .list(&ListParams::default().labels(&format!("app={name}")))
            .await
            .map(|l| l.items)
            .unwrap_or_default();
        v.sort_by_key(|r| r.revision);
        v
    }
}

/// (desired, current, ready, updated, available, misscheduled, unavailable)
pub type Counts = (i32, i32, i32, i32, i32, i32, i32);

pub fn counts(s: &DaemonSetStatus) -> Counts {
    (
        s.desired_number_scheduled,
        s.current_number_scheduled,
        s.number_ready,
        s.updated_number_scheduled.unwrap_or(0),
        s.number_available.unwrap_or(0),
        s.number_misscheduled,
        s.number_unavailable.unwrap_or(0),
    )
}

/// `spec.nodeName`, else the node of the first matchFields `metadata.name In [x]`.
pub fn target_node(p: &Pod) -> String {
    let spec = p.spec.as_ref();
    if let Some(n) = spec.and_then(|s| s.node_name.clone()) {
        return n;
    }
    spec.and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .and_then(|r| r.node_selector_terms.first())
        .and_then(|t| t.match_fields.as_ref())
        .and_then(|f| f.first())
        .and_then(|r| r.values.as_ref())
        .and_then(|v| v.first().cloned())
        .unwrap_or_default()
}

pub fn pod_name(p: &Pod) -> String {
    p.metadata.name.clone().unwrap_or_default()
}

pub fn pod_label<'a>(p: &'a Pod, key: &str) -> Option<&'a str> {
    p.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

pub fn pod_image(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

/// One state of the watched pods: the time it was observed, the change that led to it, and
/// every pod by name.
#[derive(Clone)]
pub struct Snapshot {
    pub at: Instant,
    pub wall: Timestamp,
    pub change: Change,
    pub pods: BTreeMap<String, Pod>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Initial,
    Applied(String),
    Deleted(String),
}

/// Records every state of the pods matching a label selector, as one watch delivers them
/// (in resourceVersion order, so each recorded state is a state the server went through).
#[derive(Clone)]
pub struct PodWatch {
    log: Arc<Mutex<Vec<Snapshot>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl PodWatch {
    /// Starts watching and returns once the initial list is recorded.
    pub async fn start(env: &Env, selector: &str) -> PodWatch {
        let log: Arc<Mutex<Vec<Snapshot>>> = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let api = env.pods.clone();
        let cfg = watcher::Config::default().labels(selector);
        let sink = log.clone();
        let task = tokio::spawn(async move {
            let mut ready_tx = Some(ready_tx);
            let mut current: BTreeMap<String, Pod> = BTreeMap::new();
            let mut init: BTreeMap<String, Pod> = BTreeMap::new();
            // With backoff: an error (every request fails once the test's runtime shuts the
            // server's tasks down) must wait, not spin, or the runtime cannot cancel this task
            // and the test never ends.
            let mut stream = watcher(api, cfg).default_backoff().boxed();
            while let Some(ev) = stream.next().await {
                let change = match ev {
                    Ok(watcher::Event::Init) => {
                        init.clear();
                        continue;
                    }
                    Ok(watcher::Event::InitApply(p)) => {
                        init.insert(pod_name(&p), p);
                        continue;
                    }
                    Ok(watcher::Event::InitDone) => {
                        current = std::mem::take(&mut init);
                        Change::Initial
                    }
                    Ok(watcher::Event::Apply(p)) => {
                        let n = pod_name(&p);
                        current.insert(n.clone(), p);
                        Change::Applied(n)
                    }
                    Ok(watcher::Event::Delete(p)) => {
                        let n = pod_name(&p);
                        current.remove(&n);
                        Change::Deleted(n)
                    }
                    Err(_) => continue,
                };
                sink.lock().unwrap().push(Snapshot {
                    at: Instant::now(),
                    wall: Timestamp::now(),
                    change,
                    pods: current.clone(),
                });
                if let Some(tx) = ready_tx.take() {
                    let _ = tx.send(());
                }
            }
        });
        let _ = tokio::time::timeout(Duration::from_secs(10), ready_rx).await;
        PodWatch {
            log,
            task: Arc::new(task),
        }
    }

    /// Every state recorded so far.
    pub fn snapshots(&self) -> Vec<Snapshot> {
        self.log.lock().unwrap().clone()
    }

    /// Names of every pod ever seen.
    pub fn names_seen(&self) -> std::collections::BTreeSet<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .flat_map(|s| s.pods.keys().cloned())
            .collect()
    }

    /// The first time each pod was seen terminating or deleted, by name.
    pub fn deletion_times(&self) -> BTreeMap<String, Instant> {
        let mut out = BTreeMap::new();
        for s in self.log.lock().unwrap().iter() {
            match &s.change {
                Change::Applied(n) => {
                    if s.pods[n].metadata.deletion_timestamp.is_some() {
                        out.entry(n.clone()).or_insert(s.at);
                    }
                }
                Change::Deleted(n) => {
                    out.entry(n.clone()).or_insert(s.at);
                }
                Change::Initial => {}
            }
        }
        out
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for PodWatch {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}
