//! The namespace controller, as upstream's pkg/controller/namespace: it empties a namespace
//! being deleted and then releases it.
//!
//! A namespace with a deletionTimestamp is queued 5 s after it is seen (upstream's
//! `namespaceDeletionGracePeriod`, so that a `kubectl delete -f` of a bundle deletes the
//! objects of the namespace itself rather than finding them gone). Its sync:
//!
//! 1. phase `Terminating` if it is not yet (through `status`);
//! 2. nothing more if `spec.finalizers` is empty already;
//! 3. [`deleter::delete_all_content`]: every namespaced resource discovery lists with the
//!    `delete` verb is deleted (deletecollection, else item by item, propagation Background),
//!    owners' resources before pods and events last, then listed again; the namespace's
//!    conditions say what failed or remains ([`conditions`]);
//! 4. while content remains, the namespace is requeued: after half the pods' grace period
//!    (plus a second) when pods are still terminating, else with the queue's backoff;
//! 5. once it is empty, its `kubernetes` finalizer is removed through
//!    `namespaces/{name}/finalize`, and the API server removes the namespace.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> Result<(), pernode_controllers::namespace::Error> {
//! use pernode_controllers::namespace::{self, NamespaceOptions};
//! namespace::run(client, NamespaceOptions::default()).await
//! # }
//! ```

pub mod conditions;
pub mod deleter;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use tracing::{debug, warn};

use crate::workqueue::WorkQueue;

/// The finalizer this controller owns.
pub const FINALIZER: &str = "kubernetes";

/// Errors of the namespace controller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Content could not be deleted (retried with backoff).
    #[error("{0}")]
    Content(String),
    /// A background task stopped unexpectedly.
    #[error("namespace controller task failed: {0}")]
    Task(String),
}

/// How the namespace controller runs.
#[derive(Clone, Debug)]
pub struct NamespaceOptions {
    /// How long after a namespace is seen terminating its deletion starts (upstream: 5 s).
    pub deletion_grace_period: Duration,
    /// Namespaces synced at once (upstream's `--concurrent-namespace-syncs`: 10).
    pub workers: usize,
}

impl Default for NamespaceOptions {
    fn default() -> Self {
        NamespaceOptions {
            deletion_grace_period: Duration::from_secs(5),
            workers: 10,
        }
    }
}

/// The outcome of one sync.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Nothing more to do for now.
    Done,
    /// Content remains that is going away by itself: look again after this.
    Remaining(Duration),
}

struct Controller {
    client: kube::Client,
    opts: NamespaceOptions,
    queue: WorkQueue<String>,
}

/// Runs the namespace controller until an unrecoverable error.
pub async fn run(client: kube::Client, opts: NamespaceOptions) -> Result<(), Error> {
    // Upstream's nsControllerRateLimiter: 5 ms doubling to 60 s per namespace, 10 qps overall.
    let queue = WorkQueue::with_bucket(
        Duration::from_millis(5),
        Duration::from_secs(60),
        10.0,
        100.0,
    )
    .named("namespace");
    let ctl = Arc::new(Controller {
        client,
        opts,
        queue,
    });
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(ctl.clone().watch());
    for _ in 0..ctl.opts.workers.max(1) {
        tasks.spawn(ctl.clone().worker());
    }
    let first = tasks.join_next().await;
    ctl.queue.shut_down();
    tasks.abort_all();
    match first {
        Some(Ok(r)) => r,
        Some(Err(e)) => Err(Error::Task(e.to_string())),
        None => Ok(()),
    }
}

impl Controller {
    async fn watch(self: Arc<Self>) -> Result<(), Error> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let mut stream = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(Event::Apply(ns)) | Ok(Event::InitApply(ns)) => self.enqueue(&ns),
                Ok(_) => {}
                Err(e) => debug!(error = %e, "namespace watch interrupted; retrying"),
            }
        }
        Err(Error::Task("namespace watch ended".into()))
    }

    /// Upstream's enqueueNamespace: only namespaces being deleted, after the grace period.
    fn enqueue(&self, ns: &Namespace) {
        if ns.metadata.deletion_timestamp.is_none() {
            return;
        }
        if let Some(name) = ns.metadata.name.clone() {
            self.queue.add_after(name, self.opts.deletion_grace_period);
        }
    }

    async fn worker(self: Arc<Self>) -> Result<(), Error> {
        while let Some(name) = self.queue.get().await {
            match self.sync(&name).await {
                Ok(Outcome::Done) => self.queue.forget(&name),
                Ok(Outcome::Remaining(after)) => {
                    debug!(namespace = %name, ?after, "content remains; looking again later");
                    self.queue.forget(&name);
                    self.queue.add_after(name.clone(), after);
                }
                Err(e) => {
                    warn!(namespace = %name, error = %e, "namespace deletion failed; retrying");
                    self.queue.add_rate_limited(name.clone());
                }
            }
            self.queue.done(&name);
        }
        Ok(())
    }

    /// Upstream's namespacedResourcesDeleter.Delete.
    async fn sync(&self, name: &str) -> Result<Outcome, Error> {
        let api: Api<Namespace> = Api::all(self.client.clone());
        let Some(mut ns) = api.get_opt(name).await? else {
            return Ok(Outcome::Done);
        };
        if ns.metadata.deletion_timestamp.is_none() {
            return Ok(Outcome::Done);
        }
        let phase = ns.status.as_ref().and_then(|s| s.phase.as_deref());
        if phase != Some("Terminating") {
            ns.status.get_or_insert_with(Default::default).phase = Some("Terminating".into());
            ns = match api.replace_status(name, &PostParams::default(), &ns).await {
                Ok(ns) => ns,
                Err(e) if is_status(&e, 404) => return Ok(Outcome::Done),
                Err(e) => return Err(e.into()),
            };
        }
        if finalized(&ns) {
            return Ok(Outcome::Done);
        }
        let estimate = deleter::delete_all_content(&self.client, &mut ns).await?;
        if estimate > 0 {
            return Ok(Outcome::Remaining(Duration::from_secs(
                (estimate / 2 + 1).unsigned_abs(),
            )));
        }
        self.finalize(&api, ns).await?;
        Ok(Outcome::Done)
    }

    /// Removes this controller's finalizer through `finalize`, retrying on conflicts as long
    /// as the namespace is the same one.
    async fn finalize(&self, api: &Api<Namespace>, mut ns: Namespace) -> Result<(), Error> {
        let name = ns.metadata.name.clone().unwrap_or_default();
        let uid = ns.metadata.uid.clone();
        loop {
            let body = without_finalizer(&ns, FINALIZER);
            match api
                .replace_subresource("finalize", &name, &PostParams::default(), &body)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_status(&e, 404) => return Ok(()),
                Err(e) if is_status(&e, 409) => {
                    let Some(latest) = api.get_opt(&name).await? else {
                        return Ok(());
                    };
                    if latest.metadata.uid != uid {
                        return Err(Error::Content(
                            "namespace uid has changed across retries".into(),
                        ));
                    }
                    ns = latest;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// Whether `spec.finalizers` is empty (upstream's `finalized`).
fn finalized(ns: &Namespace) -> bool {
    ns.spec
        .as_ref()
        .and_then(|s| s.finalizers.as_ref())
        .is_none_or(Vec::is_empty)
}

/// The body of a finalize: the namespace with `token` gone from `spec.finalizers` (the rest
/// sorted and deduplicated, as upstream's set).
fn without_finalizer(ns: &Namespace, token: &str) -> Namespace {
    let mut body = ns.clone();
    let spec = body.spec.get_or_insert_with(Default::default);
    let rest: std::collections::BTreeSet<String> = spec
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != token)
        .cloned()
        .collect();
    spec.finalizers = Some(rest.into_iter().collect());
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::NamespaceSpec;

    #[test]
    fn finalize_removes_only_the_controllers_token() {
        let ns = Namespace {
            spec: Some(NamespaceSpec {
                finalizers: Some(vec!["kubernetes".into(), "z.io/x".into(), "a.io/y".into()]),
            }),
            ..Default::default()
        };
        assert!(!finalized(&ns));
        let body = without_finalizer(&ns, FINALIZER);
        assert_eq!(
            body.spec.and_then(|s| s.finalizers),
            Some(vec!["a.io/y".to_string(), "z.io/x".to_string()])
        );
        let done = without_finalizer(
            &Namespace {
                spec: Some(NamespaceSpec {
                    finalizers: Some(vec!["kubernetes".into()]),
                }),
                ..Default::default()
            },
            FINALIZER,
        );
        assert!(finalized(&done));
    }
}
