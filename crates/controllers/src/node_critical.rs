//! The node-critical gate's controller (`pernode_core::node_critical`): removes the taint
//! `pernode.io/critical-daemons-not-ready:NoSchedule` from a node once every pod that a
//! node-critical DaemonSet (`pernode.io/node-critical: "true"`) should run there is Ready, as
//! upstream's Node Readiness Controller (kubernetes-sigs/node-readiness-controller) removes its
//! readiness taints, and the kubelet's `node.kubernetes.io/network-unavailable` clears once the
//! network plugin works. The API server adds the taint when the node registers
//! (`apiserver::admission_plugins::node_critical`); nothing here ever adds it back, so a node
//! whose critical daemon later fails keeps running what it runs (the health gate's concern).
//!
//! "Should run" is the DaemonSet controller's own placement (`daemonset::placement`, with the
//! critical toleration its pods get), so a node no critical daemon targets (a taint the
//! daemon does not tolerate, a label admission did not judge) is released at its first sync,
//! and a node whose critical DaemonSets are all deleted or unmarked is released too. A pod
//! counts when the DaemonSet controls it (owner uid), it is bound to the node, Ready and not
//! terminating; any revision counts.
//!
//! Caches: the node-critical DaemonSets (a watch of all DaemonSets, keeping only the marked
//! ones) and the tainted nodes (a watch of all nodes, keeping only those with the taint); pods
//! come from the shared pod watch ([`crate::pod_watch`]) and only wake the node they are bound
//! to, whose sync lists that node's pods afresh (the store indexes `spec.nodeName`), so the
//! controller keeps no pod cache and costs one hash lookup per pod event elsewhere.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use foldhash::HashMap;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use pernode_core::node_critical::{
    CRITICAL_DAEMONS_NOT_READY_TAINT, has_not_ready_taint, is_node_critical,
};
use tokio::sync::watch;
use tracing::{debug, info};

use crate::daemonset::placement::PlacementChecker;
use crate::pod_watch::{PodEvents, PodWatch};
use crate::trim::{ControllerPod, Keep, NodeRecord, NodeView, PlacementNode, PodRecord};
use crate::workqueue::WorkQueue;

/// Errors of the node-critical controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed in a way retrying will not fix.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A background task stopped unexpectedly.
    #[error("node-critical controller task failed: {0}")]
    Task(String),
}

/// How many times a taint removal is retried on a conflict before the sync is requeued.
const WRITE_ATTEMPTS: usize = 5;

/// A node-critical DaemonSet and the placement its pods get.
struct Critical {
    uid: String,
    checker: PlacementChecker,
}

#[derive(Default)]
struct State {
    /// `(namespace, name)` → the node-critical DaemonSets only.
    critical: HashMap<(String, String), Arc<Critical>>,
    /// The nodes that carry the taint, by name.
    tainted: HashMap<String, Arc<NodeRecord>>,
}

struct Controller {
    client: kube::Client,
    state: Mutex<State>,
    queue: WorkQueue<String>,
    /// (nodes listed, DaemonSets listed).
    synced: watch::Sender<(bool, bool)>,
}

/// Runs the controller with a pod watch of its own, until an unrecoverable error.
pub async fn run(client: kube::Client) -> Result<(), Error> {
    PodWatch::all(&client)
        .feed(|pods| run_with_pods(client, pods))
        .await
}

/// [`run`] reading pods from a shared [`PodWatch`] of all namespaces.
pub async fn run_with_pods(client: kube::Client, pods: PodEvents) -> Result<(), Error> {
    let (synced, _) = watch::channel((false, false));
    let c = Arc::new(Controller {
        client,
        state: Mutex::new(State::default()),
        queue: WorkQueue::new(Duration::from_millis(5), Duration::from_secs(60))
            .named("node-critical"),
        synced,
    });
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(c.clone().watch_daemon_sets());
    tasks.spawn(c.clone().watch_nodes());
    tasks.spawn(c.clone().watch_pods(pods));
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

fn key_of(ds: &DaemonSet) -> (String, String) {
    (
        ds.metadata.namespace.clone().unwrap_or_default(),
        ds.metadata.name.clone().unwrap_or_default(),
    )
}

/// The cached form of a node-critical DaemonSet, `None` for any other.
fn critical_of(ds: &DaemonSet) -> Option<Arc<Critical>> {
    if !is_node_critical(ds.metadata.annotations.as_ref())
        || ds.metadata.deletion_timestamp.is_some()
    {
        return None;
    }
    Some(Arc::new(Critical {
        uid: ds.metadata.uid.clone().unwrap_or_default(),
        checker: PlacementChecker::new(ds),
    }))
}

/// Whether every critical DaemonSet that should run on `node` has a Ready pod there.
fn critical_daemons_ready<'a>(
    critical: impl IntoIterator<Item = &'a Critical>,
    node: &impl NodeView,
    pods: &[PodRecord],
) -> bool {
    critical
        .into_iter()
        .filter(|c| c.checker.check(node).should_run)
        .all(|c| {
            pods.iter().any(|p| {
                p.controller.as_deref().is_some_and(|o| o.uid == c.uid)
                    && p.bound
                    && !p.deleting
                    && p.is_ready()
            })
        })
}

impl Controller {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enqueue_tainted(&self, st: &State) {
        for name in st.tainted.keys() {
            self.queue.add(name.clone());
        }
    }

    async fn watch_daemon_sets(self: Arc<Self>) -> Result<(), Error> {
        let api: Api<DaemonSet> = Api::all(self.client.clone());
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut listing = HashMap::default();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Init) => listing.clear(),
                Ok(Event::InitApply(ds)) => {
                    if let Some(c) = critical_of(&ds) {
                        listing.insert(key_of(&ds), c);
                    }
                }
                Ok(Event::InitDone) => {
                    let mut st = self.lock();
                    st.critical = std::mem::take(&mut listing);
                    self.enqueue_tainted(&st);
                    drop(st);
                    self.synced.send_modify(|s| s.1 = true);
                }
                Ok(Event::Apply(ds)) => {
                    let key = key_of(&ds);
                    let mut st = self.lock();
                    let changed = match critical_of(&ds) {
                        Some(c) => {
                            st.critical.insert(key, c);
                            true
                        }
                        None => st.critical.remove(&key).is_some(),
                    };
                    if changed {
                        self.enqueue_tainted(&st);
                    }
                }
                Ok(Event::Delete(ds)) => {
                    let mut st = self.lock();
                    if st.critical.remove(&key_of(&ds)).is_some() {
                        self.enqueue_tainted(&st);
                    }
                }
                Err(e) => debug!(error = %e, "DaemonSet watch interrupted; retrying"),
            }
        }
        Err(Error::Task("DaemonSet watch ended".into()))
    }

    async fn watch_nodes(self: Arc<Self>) -> Result<(), Error> {
        let api: Api<PlacementNode> = Api::all(self.client.clone());
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut listing = HashMap::default();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Init) => listing.clear(),
                Ok(Event::InitApply(n)) => {
                    let n = n.keep();
                    if has_not_ready_taint(&n.taints) {
                        listing.insert(n.name.to_string(), Arc::new(n));
                    }
                }
                Ok(Event::InitDone) => {
                    let mut st = self.lock();
                    st.tainted = std::mem::take(&mut listing);
                    self.enqueue_tainted(&st);
                    drop(st);
                    self.synced.send_modify(|s| s.0 = true);
                }
                Ok(Event::Apply(n)) => {
                    let n = n.keep();
                    let name = n.name.to_string();
                    let mut st = self.lock();
                    if has_not_ready_taint(&n.taints) {
                        st.tainted.insert(name.clone(), Arc::new(n));
                        self.queue.add(name);
                    } else {
                        st.tainted.remove(&name);
                    }
                }
                Ok(Event::Delete(n)) => {
                    self.lock()
                        .tainted
                        .remove(n.metadata.name.as_deref().unwrap_or(""));
                }
                Err(e) => debug!(error = %e, "node watch interrupted; retrying"),
            }
        }
        Err(Error::Task("node watch ended".into()))
    }

    /// A pod bound to a tainted node wakes that node; every other pod event costs a lookup.
    async fn watch_pods(self: Arc<Self>, pods: PodEvents) -> Result<(), Error> {
        let mut events = pods.into_stream();
        while let Some(ev) = events.next().await {
            let pod = match &ev {
                Event::InitApply(p) | Event::Apply(p) | Event::Delete(p) => p,
                Event::Init | Event::InitDone => continue,
            };
            let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) else {
                continue;
            };
            if self.lock().tainted.contains_key(node) {
                self.queue.add(node.to_owned());
            }
        }
        Err(Error::Task("pod watch ended".into()))
    }

    async fn worker(self: Arc<Self>) -> Result<(), Error> {
        let mut synced = self.synced.subscribe();
        if synced
            .wait_for(|(nodes, daemon_sets)| *nodes && *daemon_sets)
            .await
            .is_err()
        {
            return Err(Error::Task("cache sync ended".into()));
        }
        while let Some(name) = self.queue.get().await {
            match self.sync(&name).await {
                Ok(()) => self.queue.forget(&name),
                Err(e) => {
                    debug!(node = %name, error = %e, "node-critical sync failed; retrying");
                    self.queue.add_rate_limited(name.clone());
                }
            }
            self.queue.done(&name);
        }
        Ok(())
    }

    /// One node: the taint removed once its critical daemons are Ready.
    async fn sync(&self, name: &str) -> Result<(), kube::Error> {
        let (node, critical) = {
            let st = self.lock();
            let Some(node) = st.tainted.get(name).cloned() else {
                return Ok(());
            };
            (node, st.critical.values().cloned().collect::<Vec<_>>())
        };
        let pods: Vec<PodRecord> = if critical.iter().any(|c| c.checker.check(&*node).should_run) {
            let api: Api<ControllerPod> = Api::all(self.client.clone());
            let lp = ListParams::default().fields(&format!("spec.nodeName={name}"));
            api.list(&lp)
                .await?
                .items
                .iter()
                .map(PodRecord::from)
                .collect()
        } else {
            Vec::new()
        };
        if !critical_daemons_ready(critical.iter().map(|c| &**c), &*node, &pods) {
            return Ok(());
        }
        self.remove_taint(name).await
    }

    /// Read-modify-write of the node's taints without the gate's; a conflict is retried with
    /// a fresh read (the node lifecycle controller writes taints too).
    async fn remove_taint(&self, name: &str) -> Result<(), kube::Error> {
        let api: Api<Node> = Api::all(self.client.clone());
        let mut last = None;
        for _ in 0..WRITE_ATTEMPTS {
            let Some(mut node) = api.get_opt(name).await? else {
                return Ok(());
            };
            let Some(taints) = node.spec.as_mut().and_then(|s| s.taints.as_mut()) else {
                return Ok(());
            };
            let before = taints.len();
            taints.retain(|t| t.key != CRITICAL_DAEMONS_NOT_READY_TAINT);
            if taints.len() == before {
                return Ok(());
            }
            match api.replace(name, &PostParams::default(), &node).await {
                Ok(_) => {
                    info!(node = %name, "critical daemons Ready; removed the {CRITICAL_DAEMONS_NOT_READY_TAINT} taint");
                    return Ok(());
                }
                Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
                Err(e @ kube::Error::Api(_)) if is_conflict(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        match last {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::daemonset::testutil::{ds, node};
    use k8s_openapi::api::core::v1::{Pod, PodCondition, PodSpec, PodStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
    use pernode_core::node_critical::{NODE_CRITICAL_ANNOTATION, not_ready_taint};

    fn critical(name: &str, node_selector: Option<(&str, &str)>) -> DaemonSet {
        let mut d = ds(name);
        d.metadata
            .annotations
            .get_or_insert_default()
            .insert(NODE_CRITICAL_ANNOTATION.into(), "true".into());
        if let Some((k, v)) = node_selector {
            let spec = d.spec.as_mut().and_then(|s| s.template.spec.as_mut());
            if let Some(spec) = spec {
                spec.node_selector = Some([(k.to_owned(), v.to_owned())].into());
            }
        }
        d
    }

    fn pod(owner: &str, node: &str, ready: bool, deleting: bool) -> PodRecord {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some(format!("{owner}-{node}")),
                namespace: Some("default".into()),
                owner_references: Some(vec![OwnerReference {
                    api_version: "apps/v1".into(),
                    kind: "DaemonSet".into(),
                    name: owner.into(),
                    uid: format!("uid-{owner}"),
                    controller: Some(true),
                    ..OwnerReference::default()
                }]),
                deletion_timestamp: deleting.then_some(
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
                    ),
                ),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                node_name: Some(node.into()),
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: if ready { "True" } else { "False" }.into(),
                    ..PodCondition::default()
                }]),
                ..PodStatus::default()
            }),
        };
        crate::trim::kept_as::<ControllerPod>(&pod)
    }

    #[test]
    fn the_taint_stays_until_every_critical_daemon_that_should_run_is_ready() {
        let cni = critical_of(&critical("cni", None)).unwrap();
        let csi = critical_of(&critical("csi", Some(("disk", "ssd")))).unwrap();
        let n1 = node("n1", &[not_ready_taint()]);
        let sets = [&*cni, &*csi];
        // No pod yet; a pod not Ready; one terminating; one of another owner: all wait.
        assert!(!critical_daemons_ready(sets, &n1, &[]));
        assert!(!critical_daemons_ready(
            sets,
            &n1,
            &[pod("cni", "n1", false, false)]
        ));
        assert!(!critical_daemons_ready(
            sets,
            &n1,
            &[pod("cni", "n1", true, true)]
        ));
        assert!(!critical_daemons_ready(
            sets,
            &n1,
            &[pod("x", "n1", true, false)]
        ));
        // The CSI daemon selects ssd nodes only, so CNI alone releases n1.
        assert!(critical_daemons_ready(
            sets,
            &n1,
            &[pod("cni", "n1", true, false)]
        ));
        let mut ssd = node("n2", &[not_ready_taint()]);
        ssd.metadata
            .labels
            .get_or_insert_default()
            .insert("disk".into(), "ssd".into());
        assert!(!critical_daemons_ready(
            sets,
            &ssd,
            &[pod("cni", "n2", true, false)]
        ));
        assert!(critical_daemons_ready(
            sets,
            &ssd,
            &[pod("cni", "n2", true, false), pod("csi", "n2", true, false)]
        ));
        // No critical DaemonSet at all: nothing to wait for.
        assert!(critical_daemons_ready([], &n1, &[]));
    }

    #[test]
    fn only_marked_live_daemon_sets_are_critical() {
        assert!(critical_of(&ds("x")).is_none());
        assert!(critical_of(&critical("cni", None)).is_some());
        let mut going = critical("cni", None);
        going.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert!(critical_of(&going).is_none());
    }
}
