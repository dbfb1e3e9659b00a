//! Which namespaces are active, followed from a namespace watch: the half the controllers that
//! keep one object in every active namespace share (the service account controller's
//! `default` ServiceAccount, the root CA publisher's `kube-root-ca.crt`).

use std::sync::Mutex;

use foldhash::HashMap;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tracing::debug;

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

#[cfg(test)]
impl ActiveNamespaces {
    pub(crate) fn set(&self, ns: &str, active: bool) {
        self.apply(|m| {
            m.insert(ns.to_string(), active);
        });
    }
}
