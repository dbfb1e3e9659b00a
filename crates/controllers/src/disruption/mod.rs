//! The disruption controller, as upstream's `pkg/controller/disruption`: keeps each
//! PodDisruptionBudget's status (expected, desired and currently healthy pods, the disruptions
//! allowed, the `DisruptionAllowed` condition, `observedGeneration`) and prunes the
//! `disruptedPods` the eviction subresource records once those pods are going or after
//! [`status::DELETION_TIMEOUT`].
//!
//! Budgets come from a watch of their own, pods from the shared pod watch
//! ([`crate::pod_watch`]); a pod event syncs the budgets that select it (before and after the
//! change), a budget event that budget, and a budget with recorded disruptions is synced again
//! when the earliest of them expires. Work starts once both caches have listed. `status` holds
//! the computation, this module the caches, the work queue and the status writes (through
//! `/status`, at the version the cache holds: a conflict is retried after the watch catches
//! up). Upstream's events (`NoPods`, `CalculateExpectedPodCountFailed`, `UnmanagedPods`) and
//! its reset of stale `DisruptionTarget` conditions are not ported.

pub mod status;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use foldhash::HashMap;
use futures::StreamExt;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tracing::{debug, info};

use crate::pod_watch::{PodEvents, PodWatch};
use crate::trim::{ControllerPod, PodRecord, PodSharing};
use crate::workqueue::WorkQueue;
use status::PodView;

/// Errors of the disruption controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed in a way retrying will not fix.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// A background task stopped unexpectedly.
    #[error("disruption controller task failed: {0}")]
    Task(String),
}

/// How the disruption controller runs.
#[derive(Clone, Debug, Default)]
pub struct DisruptionOptions {}

/// `(namespace, name)`.
type Key = (String, String);

#[derive(Default)]
struct State {
    budgets: HashMap<Key, Arc<PodDisruptionBudget>>,
    /// Namespace → pod name → pod.
    pods: HashMap<String, HashMap<String, PodRecord>>,
    sharing: PodSharing,
}

struct Controller {
    client: kube::Client,
    state: Mutex<State>,
    queue: WorkQueue<Key>,
    /// (pods listed, budgets listed).
    synced: watch::Sender<(bool, bool)>,
}

/// Run the disruption controller with a pod watch of its own, until an unrecoverable error.
pub async fn run(client: kube::Client, opts: DisruptionOptions) -> Result<(), Error> {
    PodWatch::all(&client)
        .feed(|pods| run_with_pods(client, opts, pods))
        .await
}

/// [`run`] reading pods from a shared [`PodWatch`] of all namespaces.
pub async fn run_with_pods(
    client: kube::Client,
    _opts: DisruptionOptions,
    pods: PodEvents,
) -> Result<(), Error> {
    let (synced, _) = watch::channel((false, false));
    let c = Arc::new(Controller {
        client,
        state: Mutex::new(State::default()),
        queue: WorkQueue::new(Duration::from_millis(5), Duration::from_secs(1000))
            .named("disruption"),
        synced,
    });
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(c.clone().watch_budgets());
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

fn selects(pdb: &PodDisruptionBudget, pod: &PodRecord) -> bool {
    let sel = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
    pernode_core::labels::from_k8s_opt(sel).is_ok_and(|s| s.matches_with(|k| pod.labels.get(k)))
}

impl Controller {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue the budgets of `pod`'s namespace that select it.
    fn enqueue_budgets_of(&self, st: &State, pod: &PodRecord) {
        for ((ns, name), pdb) in &st.budgets {
            if **ns == *pod.namespace && selects(pdb, pod) {
                self.queue.add((ns.clone(), name.clone()));
            }
        }
    }

    async fn watch_budgets(self: Arc<Self>) -> Result<(), Error> {
        let api: Api<PodDisruptionBudget> = Api::all(self.client.clone());
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut listing: HashMap<Key, Arc<PodDisruptionBudget>> = HashMap::default();
        while let Some(ev) = stream.next().await {
            let key_of = |p: &PodDisruptionBudget| {
                (
                    p.metadata.namespace.clone().unwrap_or_default(),
                    p.metadata.name.clone().unwrap_or_default(),
                )
            };
            match ev {
                Ok(Event::Init) => listing.clear(),
                Ok(Event::InitApply(p)) => {
                    listing.insert(key_of(&p), Arc::new(p));
                }
                Ok(Event::InitDone) => {
                    let mut st = self.lock();
                    st.budgets = std::mem::take(&mut listing);
                    for key in st.budgets.keys() {
                        self.queue.add(key.clone());
                    }
                    drop(st);
                    self.synced.send_modify(|s| s.1 = true);
                }
                Ok(Event::Apply(p)) => {
                    let key = key_of(&p);
                    self.lock().budgets.insert(key.clone(), Arc::new(p));
                    self.queue.add(key);
                }
                Ok(Event::Delete(p)) => {
                    self.lock().budgets.remove(&key_of(&p));
                }
                Err(e) => debug!(error = %e, "budget watch interrupted; retrying"),
            }
        }
        Err(Error::Task("budget watch ended".into()))
    }

    async fn watch_pods(self: Arc<Self>, pods: PodEvents) -> Result<(), Error> {
        let mut events = pods.into_stream();
        while let Some(ev) = events.next().await {
            match ev {
                Event::Init => self.lock().pods.clear(),
                Event::InitApply(p) | Event::Apply(p) => self.pod_changed(&p, false),
                Event::Delete(p) => self.pod_changed(&p, true),
                Event::InitDone => {
                    let st = self.lock();
                    for key in st.budgets.keys() {
                        self.queue.add(key.clone());
                    }
                    drop(st);
                    self.synced.send_modify(|s| s.0 = true);
                }
            }
        }
        Err(Error::Task("pod watch ended".into()))
    }

    fn pod_changed(&self, pod: &ControllerPod, deleted: bool) {
        let mut st = self.lock();
        // One copy of labels shared by a DaemonSet's pods (they have the same).
        let record = st.sharing.share(PodRecord::from(pod));
        // The budgets of its labels now, and of its labels before when they changed.
        self.enqueue_budgets_of(&st, &record);
        let labels = Arc::clone(&record.labels);
        if !st.pods.contains_key(&*record.namespace) {
            st.pods
                .insert(record.namespace.to_string(), HashMap::default());
        }
        let Some(ns) = st.pods.get_mut(&*record.namespace) else {
            return;
        };
        let before = if deleted {
            ns.remove(&*record.name)
        } else {
            ns.insert(record.name.to_string(), record)
        };
        if let Some(before) = before.filter(|b| b.labels != labels) {
            self.enqueue_budgets_of(&st, &before);
        }
    }

    async fn worker(self: Arc<Self>) -> Result<(), Error> {
        let mut synced = self.synced.subscribe();
        if synced
            .wait_for(|(pods, budgets)| *pods && *budgets)
            .await
            .is_err()
        {
            return Err(Error::Task("cache sync ended".into()));
        }
        while let Some(key) = self.queue.get().await {
            match self.sync(&key).await {
                Ok(()) => self.queue.forget(&key),
                Err(e) => {
                    debug!(namespace = %key.0, budget = %key.1, error = %e, "budget sync failed; retrying");
                    self.queue.add_rate_limited(key.clone());
                }
            }
            self.queue.done(&key);
        }
        Ok(())
    }

    /// One budget's sync: its status from the cached pods, written when it changed.
    async fn sync(&self, key: &Key) -> Result<(), kube::Error> {
        let (pdb, outcome) = {
            let st = self.lock();
            let Some(pdb) = st.budgets.get(key).cloned() else {
                return Ok(());
            };
            let sel = pdb.spec.as_ref().and_then(|s| s.selector.as_ref());
            let outcome = match pernode_core::labels::from_k8s_opt(sel) {
                Err(e) => status::Sync {
                    status: Some(status::fail_safe(&pdb, &e.to_string(), now())),
                    recheck: None,
                    failed: Some(e.to_string()),
                },
                Ok(selector) => {
                    let pods: Vec<PodView<'_>> = st
                        .pods
                        .get(&key.0)
                        .into_iter()
                        .flat_map(|m| m.values())
                        .filter(|p| selector.matches_with(|k| p.labels.get(k)))
                        .map(|p| PodView {
                            name: &p.name,
                            deleting: p.deleting,
                            ready: p.is_ready(),
                            controller: p.controller.as_deref(),
                        })
                        .collect();
                    status::sync(&pdb, &pods, now())
                }
            };
            (pdb, outcome)
        };
        if let Some(why) = &outcome.failed {
            info!(namespace = %key.0, budget = %key.1, error = %why, "failed to sync budget");
        }
        if let Some(new_status) = outcome.status {
            let mut updated = (*pdb).clone();
            updated.status = Some(new_status);
            let api: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), &key.0);
            api.replace_status(&key.1, &PostParams::default(), &updated)
                .await?;
        }
        if let Some(after) = outcome.recheck {
            self.queue.add_after(key.clone(), after);
        }
        Ok(())
    }
}

fn now() -> k8s_openapi::jiff::Timestamp {
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now)
}
