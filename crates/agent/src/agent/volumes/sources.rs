//! The ConfigMaps and Secrets the node's pods reference, kept current by one watch per object,
//! as kubelet's watch-based manager (`pkg/kubelet/util/manager/watch_based_manager.go`, the
//! default `configMapAndSecretChangeDetectionStrategy: Watch`).
//!
//! A pod worker registers each object its pod references ([`ObjectWatches::register`]); the
//! first registration of an object starts a watch of that one object (a `metadata.name`
//! field selector, which is what the Node authorizer lets a node list and watch), the last
//! one dropped stops it. Every change of the object calls the registrants' notifiers, so
//! their volumes are rewritten at once (kubelet rewrites them at its next pod sync, up to a
//! minute later). A read ([`ObjectWatches::get`]) waits up to a second for the watch's first
//! list, as upstream, and a missing object is upstream's NotFound (`configmap "x" not found`).

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tracing::debug;

/// How long a read waits for the object's first list (upstream: a 1 s poll).
const SYNC_WAIT: Duration = Duration::from_secs(1);

/// Called when a registered object changes.
pub type Notifier = Arc<dyn Fn() + Send + Sync>;

/// What the watch of one object knows.
#[derive(Clone, Debug)]
pub enum Known<K> {
    /// The first list has not come back yet.
    Unsynced,
    /// The object does not exist.
    Absent,
    /// The object as last seen.
    Present(Arc<K>),
}

/// Why a read gave no object.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The object does not exist (upstream's NotFound from the manager's store).
    #[error("{kind} \"{name}\" not found")]
    NotFound { kind: &'static str, name: String },
    /// The watch has not listed the object yet (forbidden, or the server is away).
    #[error("failed to sync {kind} cache: timed out waiting for the condition")]
    NotSynced { kind: &'static str },
}

impl SourceError {
    /// Whether the object is known not to exist (what `optional` forgives).
    pub fn is_not_found(&self) -> bool {
        matches!(self, SourceError::NotFound { .. })
    }
}

type Key = (String, String);

struct Entry<K> {
    state: watch::Sender<Known<K>>,
    subscribers: HashMap<u64, Notifier>,
    task: AbortHandle,
}

struct Inner<K> {
    entries: HashMap<Key, Entry<K>>,
    next_id: u64,
}

/// The watched objects of one kind (`ConfigMap` or `Secret`).
pub struct ObjectWatches<K> {
    client: kube::Client,
    /// Upstream's group-resource name in messages: `configmap`, `secret`.
    kind: &'static str,
    inner: Arc<Mutex<Inner<K>>>,
}

/// One registration of one object; dropping it unregisters (and stops the watch when it was
/// the last).
pub struct Registration {
    release: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(release) = self.release.take() {
            release();
        }
    }
}

impl<K> ObjectWatches<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default,
{
    /// No objects watched yet; `kind` names them in errors.
    pub fn new(client: kube::Client, kind: &'static str) -> ObjectWatches<K> {
        ObjectWatches {
            client,
            kind,
            inner: Arc::new(Mutex::new(Inner {
                entries: HashMap::new(),
                next_id: 0,
            })),
        }
    }

    fn lock(inner: &Mutex<Inner<K>>) -> MutexGuard<'_, Inner<K>> {
        inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers interest in `namespace/name`; `notify` is called on each of its changes.
    pub fn register(&self, namespace: &str, name: &str, notify: Notifier) -> Registration {
        let key = (namespace.to_string(), name.to_string());
        let mut inner = Self::lock(&self.inner);
        inner.next_id += 1;
        let id = inner.next_id;
        if !inner.entries.contains_key(&key) {
            let (state, _) = watch::channel(Known::Unsynced);
            let task = tokio::spawn(watch_object(
                self.client.clone(),
                Arc::downgrade(&self.inner),
                key.clone(),
            ))
            .abort_handle();
            inner.entries.insert(
                key.clone(),
                Entry {
                    state,
                    subscribers: HashMap::new(),
                    task,
                },
            );
        }
        if let Some(e) = inner.entries.get_mut(&key) {
            e.subscribers.insert(id, notify);
        }
        let weak = Arc::downgrade(&self.inner);
        Registration {
            release: Some(Box::new(move || {
                let Some(inner) = weak.upgrade() else { return };
                let mut inner = Self::lock(&inner);
                let last = inner.entries.get_mut(&key).is_some_and(|e| {
                    e.subscribers.remove(&id);
                    e.subscribers.is_empty()
                });
                if last && let Some(e) = inner.entries.remove(&key) {
                    e.task.abort();
                }
            })),
        }
    }

    /// The object, once its watch has listed it (waiting up to a second). The object must be
    /// registered.
    pub async fn get(&self, namespace: &str, name: &str) -> Result<Arc<K>, SourceError> {
        let rx = {
            let inner = Self::lock(&self.inner);
            inner
                .entries
                .get(&(namespace.to_string(), name.to_string()))
                .map(|e| e.state.subscribe())
        };
        let not_synced = SourceError::NotSynced { kind: self.kind };
        let Some(mut rx) = rx else {
            return Err(not_synced);
        };
        let known = tokio::time::timeout(SYNC_WAIT, rx.wait_for(|k| !matches!(k, Known::Unsynced)))
            .await
            .ok()
            .and_then(Result::ok)
            .map(|k| k.clone());
        match known {
            Some(Known::Present(o)) => Ok(o),
            Some(Known::Absent) => Err(SourceError::NotFound {
                kind: self.kind,
                name: name.to_string(),
            }),
            _ => Err(not_synced),
        }
    }
}

/// Follows one object until its entry is dropped (which aborts this task).
async fn watch_object<K>(client: kube::Client, inner: std::sync::Weak<Mutex<Inner<K>>>, key: Key)
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client, &key.0);
    let cfg = watcher::Config::default().fields(&format!("metadata.name={}", key.1));
    let mut stream = watcher::watcher(api, cfg).default_backoff().boxed();
    let mut listed: Option<K> = None;
    while let Some(ev) = stream.next().await {
        let known = match ev {
            Ok(Event::Init) => {
                listed = None;
                continue;
            }
            Ok(Event::InitApply(o)) => {
                listed = Some(o);
                continue;
            }
            Ok(Event::InitDone) => match listed.take() {
                Some(o) => Known::Present(Arc::new(o)),
                None => Known::Absent,
            },
            Ok(Event::Apply(o)) => Known::Present(Arc::new(o)),
            Ok(Event::Delete(_)) => Known::Absent,
            Err(e) => {
                debug!(namespace = %key.0, name = %key.1, error = %e, "object watch interrupted; retrying");
                continue;
            }
        };
        let Some(inner) = inner.upgrade() else { return };
        let notify: Vec<Notifier> = {
            let inner = inner.lock().unwrap_or_else(|e| e.into_inner());
            let Some(entry) = inner.entries.get(&key) else {
                return;
            };
            let changed = entry.state.send_if_modified(|old| {
                let same = match (&*old, &known) {
                    (Known::Absent, Known::Absent) => true,
                    (Known::Present(a), Known::Present(b)) => {
                        a.meta().resource_version == b.meta().resource_version
                            && a.meta().uid == b.meta().uid
                    }
                    _ => false,
                };
                if !same {
                    *old = known;
                }
                !same
            });
            if !changed {
                continue;
            }
            entry.subscribers.values().cloned().collect()
        };
        for n in notify {
            n();
        }
    }
}
