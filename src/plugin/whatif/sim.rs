//! The what-if cluster: an API server on an in-memory store in this process, with the
//! controllers and the fleet simulator `pernode up` runs (`control_plane`), seeded with a copy
//! of the live cluster's nodes and of one DaemonSet with its revisions and pods.
//!
//! Seeding comes before the controllers start, so the DaemonSet controller's first sync sees
//! the copied pods and revisions (and adopts them) instead of creating pods of its own: the
//! starting state is the live one, a rollout half done included. Copies keep names, labels
//! (the `controller-revision-hash` decides which revision a pod runs) and node bindings;
//! their owner references point at the copy's uid. The `pod-template-generation` label is
//! dropped: the copy's template generation restarts at 1 and would match the wrong pods.
//!
//! Time is the real clock scaled: the simulator starts pods after `pod start / scale`, and
//! the durations the controller reads from the DaemonSet (`pernode.io/wave-soak`,
//! `pernode.io/progress-deadline-seconds`, `minReadySeconds`) are divided by the same scale
//! ([`scale_durations`]); the report multiplies what it measures back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ServiceAccount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, PostParams};
use pernode_agent::simulator::{self, SimulatorOptions};
use pernode_apiserver::ApiServer;
use pernode_core::rollout::PROGRESS_DEADLINE_ANNOTATION;
use pernode_core::simulated::SIMULATED_ANNOTATION;
use pernode_core::waves::WAVE_SOAK_ANNOTATION;
use tokio::task::JoinSet;

use crate::control_plane::Clients;

/// The live objects the what-if starts from (read only).
pub struct LiveState {
    pub nodes: Vec<Node>,
    /// The live DaemonSet, `None` when new.yaml creates it.
    pub daemon_set: Option<DaemonSet>,
    pub revisions: Vec<ControllerRevision>,
    pub pods: Vec<Pod>,
}

/// The in-process cluster.
pub struct SimCluster {
    server: Arc<ApiServer>,
    /// As `system:admin`, in-process.
    pub client: kube::Client,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl SimCluster {
    pub async fn new() -> anyhow::Result<SimCluster> {
        let store = pernode_store::Store::in_memory(
            pernode_apiserver::registry::indexer(),
            Default::default(),
        );
        let server = Arc::new(
            ApiServer::new(store)
                .await
                .context("starting the what-if API server")?,
        );
        pernode_apiserver::seed_default_service_accounts(server.store())
            .await
            .context("seeding the what-if cluster")?;
        let client = kube::Client::new(server.router(), "default");
        Ok(SimCluster {
            server,
            client,
            tasks: JoinSet::new(),
        })
    }

    /// The fleet simulator, each pod Ready `start` after it is bound, terminations at once,
    /// each node reporting its live node's allocatable (as capacity and allocatable).
    pub fn start_simulator(&mut self, start: Duration, nodes: &[Node]) {
        let capacity_by_node = nodes
            .iter()
            .filter_map(|n| {
                let allocatable = n.status.as_ref()?.allocatable.as_ref()?;
                let quantities = allocatable
                    .iter()
                    .map(|(k, q)| (k.clone(), q.0.clone()))
                    .collect();
                Some((n.metadata.name.clone()?, quantities))
            })
            .collect();
        let opts = SimulatorOptions {
            start_delay: (start, start),
            grace_period_scale: 0.0,
            capacity_by_node: Arc::new(capacity_by_node),
            ..Default::default()
        };
        let c = Clients::InProcess(self.server.clone()).simulator();
        self.tasks
            .spawn(async move { simulator::run(c, opts).await.context("simulator") });
    }

    /// Every controller `pernode up` runs, each under its own identity.
    pub fn start_controllers(&mut self) {
        let clients = Clients::InProcess(self.server.clone());
        crate::control_plane::spawn_controllers_with(
            &mut self.tasks,
            &clients,
            &Default::default(),
        );
    }

    /// Fails when a control loop stopped.
    pub fn check(&mut self) -> anyhow::Result<()> {
        if let Some(done) = self.tasks.try_join_next() {
            match done {
                Ok(Ok(())) => anyhow::bail!("a what-if control loop stopped"),
                Ok(Err(e)) => return Err(e).context("a what-if control loop failed"),
                Err(e) => return Err(e).context("a what-if control loop panicked"),
            }
        }
        Ok(())
    }

    /// Copies the live nodes: name, labels, annotations, taints, `unschedulable`, and their
    /// status (conditions, capacity, allocatable). Ready nodes are run by the simulator
    /// (which then reports its own conditions, and the live allocatable); the rest are left
    /// as they are, their pods never starting, as on the live cluster.
    pub async fn seed_nodes(&self, nodes: &[Node]) -> anyhow::Result<()> {
        let api: Api<Node> = Api::all(self.client.clone());
        let copies = nodes.iter().map(|live| {
            let api = api.clone();
            async move {
                let mut annotations = live.metadata.annotations.clone().unwrap_or_default();
                if is_ready(live) {
                    annotations.insert(SIMULATED_ANNOTATION.to_owned(), "true".to_owned());
                } else {
                    annotations.remove(SIMULATED_ANNOTATION);
                }
                let copy = Node {
                    metadata: ObjectMeta {
                        name: live.metadata.name.clone(),
                        labels: live.metadata.labels.clone(),
                        annotations: Some(annotations),
                        ..ObjectMeta::default()
                    },
                    spec: live
                        .spec
                        .as_ref()
                        .map(|s| k8s_openapi::api::core::v1::NodeSpec {
                            taints: s.taints.clone(),
                            unschedulable: s.unschedulable,
                            ..Default::default()
                        }),
                    status: None,
                };
                let mut created = api.create(&PostParams::default(), &copy).await?;
                if let Some(status) = &live.status {
                    created.status = Some(k8s_openapi::api::core::v1::NodeStatus {
                        conditions: status.conditions.clone(),
                        capacity: status.capacity.clone(),
                        allocatable: status.allocatable.clone(),
                        ..Default::default()
                    });
                    let name = created.metadata.name.clone().unwrap_or_default();
                    api.replace_status(&name, &PostParams::default(), &created)
                        .await?;
                }
                Ok::<_, kube::Error>(())
            }
        });
        use futures::StreamExt;
        let results: Vec<_> = futures::stream::iter(copies)
            .buffer_unordered(32)
            .collect()
            .await;
        for r in results {
            r.context("copying a node into the what-if cluster")?;
        }
        Ok(())
    }

    /// The namespace and its `default` ServiceAccount (and the template's), so pods are
    /// admitted before the service account controller runs.
    pub async fn seed_namespace(&self, namespace: &str, accounts: &[String]) -> anyhow::Result<()> {
        let ns: Api<Namespace> = Api::all(self.client.clone());
        let body = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        ignore_exists(ns.create(&PostParams::default(), &body).await)?;
        let sa: Api<ServiceAccount> = Api::namespaced(self.client.clone(), namespace);
        for name in std::iter::once("default").chain(accounts.iter().map(String::as_str)) {
            let body = ServiceAccount {
                metadata: ObjectMeta {
                    name: Some(name.to_owned()),
                    ..ObjectMeta::default()
                },
                ..ServiceAccount::default()
            };
            ignore_exists(sa.create(&PostParams::default(), &body).await)?;
        }
        Ok(())
    }

    /// The live DaemonSet (durations scaled), then its revisions and pods owned by the copy.
    pub async fn seed_daemon_set(
        &self,
        live: &LiveState,
        ds: &DaemonSet,
        scale: f64,
    ) -> anyhow::Result<DaemonSet> {
        let namespace = ds.metadata.namespace.clone().unwrap_or_default();
        let mut copy = DaemonSet {
            metadata: ObjectMeta {
                name: ds.metadata.name.clone(),
                namespace: Some(namespace.clone()),
                labels: ds.metadata.labels.clone(),
                annotations: ds.metadata.annotations.clone(),
                ..ObjectMeta::default()
            },
            spec: ds.spec.clone(),
            status: None,
        };
        scale_durations(&mut copy, scale);
        let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), &namespace);
        let created = api
            .create(&PostParams::default(), &copy)
            .await
            .context("creating the DaemonSet in the what-if cluster")?;
        let owner = OwnerReference {
            api_version: "apps/v1".to_owned(),
            kind: "DaemonSet".to_owned(),
            name: created.metadata.name.clone().unwrap_or_default(),
            uid: created.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        let revisions: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &namespace);
        for r in &live.revisions {
            let copy = ControllerRevision {
                metadata: owned_copy(&r.metadata, &owner),
                data: r.data.clone(),
                revision: r.revision,
            };
            revisions
                .create(&PostParams::default(), &copy)
                .await
                .context("copying a ControllerRevision into the what-if cluster")?;
        }
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        for p in &live.pods {
            let mut metadata = owned_copy(&p.metadata, &owner);
            if let Some(labels) = metadata.labels.as_mut() {
                labels.remove(pernode_controllers::daemonset::POD_TEMPLATE_GENERATION_LABEL);
            }
            let copy = Pod {
                metadata,
                spec: p.spec.clone().map(without_service_account_volume),
                status: None,
            };
            pods.create(&PostParams::default(), &copy)
                .await
                .context("copying a pod into the what-if cluster")?;
        }
        Ok(created)
    }
}

/// Name, labels and annotations of a live object, owned by the copy's DaemonSet.
fn owned_copy(live: &ObjectMeta, owner: &OwnerReference) -> ObjectMeta {
    ObjectMeta {
        name: live.name.clone(),
        namespace: live.namespace.clone(),
        labels: live.labels.clone(),
        annotations: live.annotations.clone(),
        owner_references: Some(vec![owner.clone()]),
        ..ObjectMeta::default()
    }
}

/// The projected API-access volume ServiceAccount admission added to the live pod: the copy's
/// create adds its own.
fn without_service_account_volume(
    mut spec: k8s_openapi::api::core::v1::PodSpec,
) -> k8s_openapi::api::core::v1::PodSpec {
    const PREFIX: &str = "kube-api-access-";
    if let Some(volumes) = spec.volumes.as_mut() {
        volumes.retain(|v| !v.name.starts_with(PREFIX));
    }
    let containers = spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten());
    for c in containers {
        if let Some(mounts) = c.volume_mounts.as_mut() {
            mounts.retain(|m| !m.name.starts_with(PREFIX));
        }
    }
    spec
}

fn ignore_exists<T>(r: Result<T, kube::Error>) -> anyhow::Result<()> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A node's `Ready` condition is `True`.
pub fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Divides the durations the DaemonSet controller reads by `scale`: the wave soak (to the
/// millisecond), the progress deadline and `minReadySeconds` (whole seconds, at least 1 when
/// set: what the API allows).
pub fn scale_durations(ds: &mut DaemonSet, scale: f64) {
    let annotations = ds.metadata.annotations.get_or_insert_with(BTreeMap::new);
    if let Some(soak) = annotations.get(WAVE_SOAK_ANNOTATION)
        && let Ok(d) = pernode_core::go_duration::parse_go_duration(soak)
    {
        let ms = (d.as_secs_f64() * 1000.0 / scale).round() as u64;
        annotations.insert(WAVE_SOAK_ANNOTATION.to_owned(), format!("{ms}ms"));
    }
    if let Some(deadline) = annotations.get(PROGRESS_DEADLINE_ANNOTATION)
        && let Ok(s) = pernode_core::rollout::parse_progress_deadline(deadline)
    {
        let scaled = (f64::from(s) / scale).ceil().max(1.0) as u32;
        annotations.insert(PROGRESS_DEADLINE_ANNOTATION.to_owned(), scaled.to_string());
    }
    if let Some(spec) = ds.spec.as_mut()
        && let Some(min) = spec.min_ready_seconds.filter(|m| *m > 0)
    {
        spec.min_ready_seconds = Some((f64::from(min) / scale).ceil().max(1.0) as i32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_the_controller_reads_are_scaled_down() {
        let mut ds: DaemonSet = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "x", "annotations": {
                "pernode.io/wave-soak": "5m",
                "pernode.io/progress-deadline-seconds": "600"}},
            "spec": {"minReadySeconds": 30, "selector": {},
                     "template": {"spec": {"containers": []}}}
        }))
        .unwrap();
        scale_durations(&mut ds, 20.0);
        let a = ds.metadata.annotations.as_ref().unwrap();
        assert_eq!(a["pernode.io/wave-soak"], "15000ms");
        assert_eq!(a["pernode.io/progress-deadline-seconds"], "30");
        assert_eq!(ds.spec.unwrap().min_ready_seconds, Some(2));
    }
}
