//! Which namespaces are active, followed from a namespace watch, and the worker loop over them:
//! what the controllers that keep one object in every active namespace share (the service
//! account controller's `default` ServiceAccount, the root CA publisher's `kube-root-ca.crt`).
//! Also [`is_namespace_terminating`], the refusal every controller's creates ignore.

use std::sync::Mutex;

use foldhash::HashMap;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::workqueue::WorkQueue;

/// Namespace name → whether it is active.
#[derive(Default)]
pub(crate) struct ActiveNamespaces(Mutex<HashMap<String, bool>>);

impl ActiveNamespaces {
    /// Whether `ns` is known and active.
    pub(crate) fn is_active(&self, ns: &str) -> bool {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).get(ns) == Some(&true)
    }

    fn apply(&self, f: impl FnOnce(&mut HashMap<String, bool>)) {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// Follows every namespace until the watch ends: each one that appears or changes is
    /// queued, and `synced` is bumped once the first full list is in.
    pub(crate) async fn follow(
        &self,
        client: kube::Client,
        queue: &WorkQueue<String>,
        synced: &watch::Sender<u8>,
    ) {
        let api: Api<Namespace> = Api::all(client);
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut first = true;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Apply(ns)) | Ok(Event::InitApply(ns)) => {
                    let name = ns.metadata.name.clone().unwrap_or_default();
                    let active =
                        ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Active");
                    self.apply(|m| {
                        m.insert(name.clone(), active);
                    });
                    queue.add(name);
                }
                Ok(Event::Delete(ns)) => {
                    let name = ns.metadata.name.clone().unwrap_or_default();
                    self.apply(|m| {
                        m.remove(&name);
                    });
                }
                Ok(Event::Init) => self.apply(|m| m.clear()),
                Ok(Event::InitDone) => {
                    if std::mem::take(&mut first) {
                        synced.send_modify(|n| *n += 1);
                    }
                }
                Err(e) => debug!(error = %e, "namespace watch interrupted; retrying"),
            }
        }
    }
}

/// Whether `e` is a create refused because its namespace is terminating (the
/// `NamespaceTerminating` cause): not an error for a controller, the namespace is going
/// (the DaemonSet rule R125).
pub(crate) fn is_namespace_terminating(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.details.as_ref().is_some_and(|d| {
        d.causes.iter().any(|c| c.reason == "NamespaceTerminating")
    }))
}

/// Once `synced` counts `watches` full lists, syncs each queued namespace with `sync`, retrying
/// failures with the queue's backoff (`what` names the work in the warning), until the queue
/// shuts down.
pub(crate) async fn work<F, Fut>(
    queue: &WorkQueue<String>,
    synced: &watch::Sender<u8>,
    watches: u8,
    what: &str,
    sync: F,
) where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), kube::Error>>,
{
    let mut synced = synced.subscribe();
    if synced.wait_for(|n| *n >= watches).await.is_err() {
        return;
    }
    while let Some(ns) = queue.get().await {
        match sync(ns.clone()).await {
            Ok(()) => queue.forget(&ns),
            Err(e) => {
                warn!(namespace = %ns, error = %e, "could not {what}; retrying");
                queue.add_rate_limited(ns.clone());
            }
        }
        queue.done(&ns);
    }
}

#[cfg(test)]
impl ActiveNamespaces {
    pub(crate) fn set(&self, ns: &str, active: bool) {
        self.apply(|m| {
            m.insert(ns.to_string(), active);
        });
    }
}
