//! The root CA publisher, as upstream's pkg/controller/certificates/rootcacertpublisher: every
//! active namespace has a `kube-root-ca.crt` ConfigMap whose `ca.crt` is the CA that signs the
//! API server's certificate, so that pods (through their projected `kube-api-access-*`
//! volume) can verify the server. It is created with the namespace, recreated when deleted,
//! and its data put back when changed.
//!
//! ```no_run
//! # async fn demo(client: kube::Client, ca_pem: String) -> Result<(), pernode_controllers::root_ca_publisher::Error> {
//! pernode_controllers::root_ca_publisher::run(client, ca_pem).await
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use foldhash::HashMap;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tracing::debug;

use crate::active_namespaces::{self, ActiveNamespaces, is_namespace_terminating};
use crate::workqueue::WorkQueue;

/// The ConfigMap's name.
pub const NAME: &str = "kube-root-ca.crt";
/// Its one key.
pub const KEY: &str = "ca.crt";
/// Upstream's description annotation.
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// Errors of the root CA publisher.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("root CA publisher task failed: {0}")]
    Task(String),
}

#[derive(Default)]
struct State {
    /// Namespace → the `ca.crt` its ConfigMap holds (`None`: the ConfigMap lacks the key).
    published: HashMap<String, Option<String>>,
}

struct Controller {
    client: kube::Client,
    ca_pem: String,
    namespaces: ActiveNamespaces,
    state: Mutex<State>,
    queue: WorkQueue<String>,
    /// How many of the two watches have listed everything once.
    synced: watch::Sender<u8>,
}

/// Runs the publisher of `ca_pem` until an unrecoverable error.
pub async fn run(client: kube::Client, ca_pem: String) -> Result<(), Error> {
    let ctl = Arc::new(Controller {
        client,
        ca_pem,
        namespaces: ActiveNamespaces::default(),
        state: Mutex::new(State::default()),
        queue: WorkQueue::with_bucket(
            Duration::from_millis(5),
            Duration::from_secs(1000),
            10.0,
            100.0,
        )
        .named("root_ca_cert_publisher"),
        synced: watch::Sender::new(0),
    });
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(ctl.clone().watch_namespaces());
    tasks.spawn(ctl.clone().watch_config_maps());
    tasks.spawn(ctl.clone().worker());
    let first = tasks.join_next().await;
    ctl.queue.shut_down();
    tasks.abort_all();
    match first {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(Error::Task(e.to_string())),
        None => Ok(()),
    }
}

/// What the namespace needs: nothing, a create, or an update of its data.
#[derive(Debug, PartialEq, Eq)]
enum Need {
    Nothing,
    Create,
    Update,
}

fn need(namespaces: &ActiveNamespaces, state: &State, ns: &str, ca_pem: &str) -> Need {
    if !namespaces.is_active(ns) {
        return Need::Nothing;
    }
    match state.published.get(ns) {
        None => Need::Create,
        Some(Some(data)) if data == ca_pem => Need::Nothing,
        Some(_) => Need::Update,
    }
}

impl Controller {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn watch_namespaces(self: Arc<Self>) -> Result<(), Error> {
        self.namespaces
            .follow(self.client.clone(), &self.queue, &self.synced)
            .await;
        Err(Error::Task("namespace watch ended".into()))
    }

    async fn watch_config_maps(self: Arc<Self>) -> Result<(), Error> {
        let api: Api<ConfigMap> = Api::all(self.client.clone());
        let config = watcher::Config::default().fields(&format!("metadata.name={NAME}"));
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        let mut first = true;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Apply(cm)) | Ok(Event::InitApply(cm)) => {
                    let ns = cm.metadata.namespace.clone().unwrap_or_default();
                    let data = cm.data.and_then(|mut d| d.remove(KEY));
                    self.lock().published.insert(ns.clone(), data);
                    self.queue.add(ns);
                }
                Ok(Event::Delete(cm)) => {
                    let ns = cm.metadata.namespace.clone().unwrap_or_default();
                    self.lock().published.remove(&ns);
                    self.queue.add(ns);
                }
                Ok(Event::Init) => self.lock().published.clear(),
                Ok(Event::InitDone) => {
                    if std::mem::take(&mut first) {
                        self.synced.send_modify(|n| *n += 1);
                    }
                }
                Err(e) => debug!(error = %e, "config map watch interrupted; retrying"),
            }
        }
        Err(Error::Task("config map watch ended".into()))
    }

    async fn worker(self: Arc<Self>) -> Result<(), Error> {
        let this = &self;
        active_namespaces::work(
            &self.queue,
            &self.synced,
            2,
            "publish the root CA",
            |ns| async move { this.sync(&ns).await },
        )
        .await;
        Ok(())
    }

    fn config_map(&self, ns: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(NAME.into()),
                namespace: Some(ns.into()),
                annotations: Some(BTreeMap::from([(
                    "kubernetes.io/description".to_string(),
                    DESCRIPTION.to_string(),
                )])),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(KEY.to_string(), self.ca_pem.clone())])),
            ..Default::default()
        }
    }

    async fn sync(&self, ns: &str) -> Result<(), kube::Error> {
        let needed = need(&self.namespaces, &self.lock(), ns, &self.ca_pem);
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), ns);
        let result = match needed {
            Need::Nothing => return Ok(()),
            Need::Create => {
                api.create(&PostParams::default(), &self.config_map(ns))
                    .await
            }
            Need::Update => {
                let mut current = api.get(NAME).await?;
                current
                    .data
                    .get_or_insert_with(Default::default)
                    .insert(KEY.to_string(), self.ca_pem.clone());
                api.replace(NAME, &PostParams::default(), &current).await
            }
        };
        match result {
            Ok(_) => {
                // The watch confirms it too; noting it now saves a second write.
                self.lock()
                    .published
                    .insert(ns.to_string(), Some(self.ca_pem.clone()));
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.is_already_exists() || s.code == 404 => Ok(()),
            Err(e) if is_namespace_terminating(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_namespaces_get_the_ca_and_keep_it_current() {
        let mut state = State::default();
        let namespaces = ActiveNamespaces::default();
        namespaces.set("a", true);
        namespaces.set("dying", false);
        assert_eq!(need(&namespaces, &state, "a", "CA"), Need::Create);
        assert_eq!(need(&namespaces, &state, "dying", "CA"), Need::Nothing);
        assert_eq!(need(&namespaces, &state, "unknown", "CA"), Need::Nothing);
        state.published.insert("a".into(), Some("CA".into()));
        assert_eq!(need(&namespaces, &state, "a", "CA"), Need::Nothing);
        state.published.insert("a".into(), Some("old".into()));
        assert_eq!(need(&namespaces, &state, "a", "CA"), Need::Update);
        state.published.insert("a".into(), None);
        assert_eq!(need(&namespaces, &state, "a", "CA"), Need::Update);
    }
}
