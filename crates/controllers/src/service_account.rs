//! The service account controller, as upstream's pkg/controller/serviceaccount
//! (serviceaccounts_controller.go): every active namespace has a `default` ServiceAccount,
//! created with the namespace and again whenever it is deleted. Terminating namespaces are
//! skipped (a create there is refused with the `NamespaceTerminating` cause, which is not an
//! error either).
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), pernode_controllers::service_account::Error> {
//! pernode_controllers::service_account::run(client).await
//! # }
//! ```

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use foldhash::HashSet;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tokio::sync::watch;
use tracing::debug;

use crate::active_namespaces::{self, ActiveNamespaces, is_namespace_terminating};
use crate::trim::MetaOnly;
use crate::workqueue::WorkQueue;

/// The accounts every namespace gets (upstream's `serviceAccountsToEnsure`).
pub const DEFAULT: &str = "default";

/// Errors of the service account controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("service account controller task failed: {0}")]
    Task(String),
}

#[derive(Default)]
struct State {
    /// Namespaces with a `default` account.
    with_default: HashSet<String>,
}

struct Controller {
    client: kube::Client,
    namespaces: ActiveNamespaces,
    state: Mutex<State>,
    queue: WorkQueue<String>,
    /// How many of the two watches have listed everything once.
    synced: watch::Sender<u8>,
}

/// Runs the service account controller until an unrecoverable error.
pub async fn run(client: kube::Client) -> Result<(), Error> {
    let ctl = Arc::new(Controller {
        client,
        namespaces: ActiveNamespaces::default(),
        state: Mutex::new(State::default()),
        queue: WorkQueue::with_bucket(
            Duration::from_millis(5),
            Duration::from_secs(1000),
            10.0,
            100.0,
        )
        .named("serviceaccount"),
        synced: watch::Sender::new(0),
    });
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(ctl.clone().watch_namespaces());
    tasks.spawn(ctl.clone().watch_accounts());
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

/// Whether a namespace needs its `default` account: it is active and has none.
fn needs_default(namespaces: &ActiveNamespaces, state: &State, ns: &str) -> bool {
    namespaces.is_active(ns) && !state.with_default.contains(ns)
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

    async fn watch_accounts(self: Arc<Self>) -> Result<(), Error> {
        let api: Api<MetaOnly<ServiceAccount>> = Api::all(self.client.clone());
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut first = true;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Apply(sa)) | Ok(Event::InitApply(sa)) => {
                    if sa.metadata.name.as_deref() == Some(DEFAULT) {
                        let ns = sa.metadata.namespace.clone().unwrap_or_default();
                        self.lock().with_default.insert(ns);
                    }
                }
                Ok(Event::Delete(sa)) => {
                    if sa.metadata.name.as_deref() == Some(DEFAULT) {
                        let ns = sa.metadata.namespace.clone().unwrap_or_default();
                        self.lock().with_default.remove(&ns);
                        self.queue.add(ns);
                    }
                }
                Ok(Event::Init) => self.lock().with_default.clear(),
                Ok(Event::InitDone) => {
                    if std::mem::take(&mut first) {
                        self.synced.send_modify(|n| *n += 1);
                    }
                }
                Err(e) => debug!(error = %e, "service account watch interrupted; retrying"),
            }
        }
        Err(Error::Task("service account watch ended".into()))
    }

    async fn worker(self: Arc<Self>) -> Result<(), Error> {
        let this = &self;
        active_namespaces::work(
            &self.queue,
            &self.synced,
            2,
            "create the default service account",
            |ns| async move { this.sync(&ns).await },
        )
        .await;
        Ok(())
    }

    async fn sync(&self, ns: &str) -> Result<(), kube::Error> {
        if !needs_default(&self.namespaces, &self.lock(), ns) {
            return Ok(());
        }
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), ns);
        let sa = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(DEFAULT.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            ..Default::default()
        };
        match api.create(&PostParams::default(), &sa).await {
            Ok(_) => {
                // The watch confirms it too; noting it now saves a second create.
                self.lock().with_default.insert(ns.to_string());
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.is_already_exists() => Ok(()),
            Err(e) if is_namespace_terminating(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_active_namespaces_without_the_account_need_one() {
        let mut state = State::default();
        let namespaces = ActiveNamespaces::default();
        namespaces.set("a", true);
        namespaces.set("dying", false);
        assert!(needs_default(&namespaces, &state, "a"));
        assert!(!needs_default(&namespaces, &state, "dying"));
        assert!(!needs_default(&namespaces, &state, "unknown"));
        state.with_default.insert("a".into());
        assert!(!needs_default(&namespaces, &state, "a"));
    }
}
