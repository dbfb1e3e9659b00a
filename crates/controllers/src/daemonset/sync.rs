//! One sync of one DaemonSet (R27-R40, R108-R113): claim pods and revisions, build history,
//! plan per-node creates and deletes, roll, clean history, write status.
//!
//! The first half of this file is pure planning over k8s-openapi types and the pods the
//! controller caches (unit tested rule by rule); `sync_daemonset` at the end executes a plan
//! through the API.

use std::collections::{BTreeMap, BTreeSet};

use foldhash::{HashSet, HashSetExt};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;

use super::backoff::{Backoff, failed_pods_backoff_key};
use super::placement::Placement;
use super::pods::{pod_hash, pod_order, target_node_name};
use super::status::NodeToPods;
use super::update::allows_surge;
use crate::active_namespaces::is_namespace_terminating;
use crate::trim::PodRecord;

/// Event type Normal.
pub const NORMAL: &str = "Normal";
/// Event type Warning.
pub const WARNING: &str = "Warning";

/// An event the sync wants recorded on the DaemonSet (R52).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedEvent {
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    /// The reason, e.g. `FailedDaemonPod`.
    pub reason: &'static str,
    /// The message.
    pub message: String,
}

/// What the per-node pass (R33-R40) decided.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ManagePlan {
    /// Nodes that need a new daemon pod, in node-list order.
    pub nodes_to_create: Vec<String>,
    /// Names of pods to delete.
    pub pods_to_delete: Vec<String>,
    /// Events to record.
    pub events: Vec<PlannedEvent>,
    /// Sync again after this delay (a failed pod still in backoff, R119).
    pub requeue_after: Option<Duration>,
}

/// What claiming decides for one object (R108, R109, R111).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Controlled by us and matching: ours.
    Owned,
    /// An orphan that matches: adopt it (after the uncached recheck).
    Adopt,
    /// Controlled by us but no longer matching: release it.
    Release,
    /// Someone else's, or not ours to take.
    Ignore,
}

/// The controller ownerReference of an object, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

/// What claiming reads of an object: its controller reference, deletion and namespace.
pub trait Claimable {
    /// Its controller ownerReference, if any.
    fn controller(&self) -> Option<&OwnerReference>;
    /// Whether `metadata.deletionTimestamp` is set.
    fn deleting(&self) -> bool;
    /// `metadata.namespace`.
    fn namespace(&self) -> Option<&str>;
}

impl Claimable for ObjectMeta {
    fn controller(&self) -> Option<&OwnerReference> {
        controller_of(self)
    }

    fn deleting(&self) -> bool {
        self.deletion_timestamp.is_some()
    }

    fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
}

impl Claimable for PodRecord {
    fn controller(&self) -> Option<&OwnerReference> {
        self.controller.as_deref()
    }

    fn deleting(&self) -> bool {
        self.deleting
    }

    fn namespace(&self) -> Option<&str> {
        Some(&self.namespace)
    }
}

/// Upstream `ClaimObject` for one object.
pub fn claim(ds: &DaemonSet, obj: &impl Claimable, selector_matches: bool) -> Claim {
    let ds_uid = ds.metadata.uid.as_deref().unwrap_or("");
    let ds_deleting = ds.metadata.deletion_timestamp.is_some();
    if let Some(owner) = obj.controller() {
        if owner.uid != ds_uid {
            return Claim::Ignore;
        }
        if selector_matches {
            return Claim::Owned;
        }
        return if ds_deleting {
            Claim::Ignore
        } else {
            Claim::Release
        };
    }
    if ds_deleting || !selector_matches || obj.deleting() {
        return Claim::Ignore;
    }
    if obj.namespace() != ds.metadata.namespace.as_deref() {
        return Claim::Ignore;
    }
    Claim::Adopt
}

/// Groups claimed pods by target node (§0 mapped pods). Pods both terminal and terminating
/// are left out unless `include_deleted_terminal` (history cleanup counts them, R93).
pub fn nodes_to_daemon_pods<'a>(
    claimed: impl IntoIterator<Item = &'a PodRecord>,
    include_deleted_terminal: bool,
) -> NodeToPods<'a> {
    let pairs = claimed
        .into_iter()
        .filter(|pod| include_deleted_terminal || !(pod.is_terminal() && pod.deleting))
        .filter_map(|pod| Some((target_node_name(pod)?, pod)))
        .collect();
    NodeToPods::from_pairs(pairs)
}

fn name(pod: &PodRecord) -> String {
    pod.name.to_string()
}

/// R33-R38 for one node.
#[allow(clippy::too_many_arguments)]
fn plan_node(
    ds: &DaemonSet,
    node: &str,
    placement: Placement,
    pods: Option<&[&PodRecord]>,
    hash: &str,
    surge: bool,
    backoff: &Backoff,
    now: Instant,
    now_ts: Timestamp,
    plan: &mut ManagePlan,
) {
    let ns = ds.metadata.namespace.as_deref().unwrap_or("");
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    match pods {
        // R33.
        None if placement.should_run => plan.nodes_to_create.push(node.to_owned()),
        Some(pods) if placement.should_continue_running => {
            let mut running: Vec<&PodRecord> = Vec::new();
            for pod in pods.iter().copied() {
                if pod.deleting {
                    continue;
                }
                match super::pods::phase(pod) {
                    "Failed" => {
                        // R119: do not fight a kubelet that keeps failing the pod.
                        let key = failed_pods_backoff_key(
                            ds.metadata.uid.as_deref().unwrap_or(""),
                            ds.status
                                .as_ref()
                                .and_then(|s| s.observed_generation)
                                .unwrap_or(0),
                            node,
                        );
                        if backoff.in_backoff_since_update(&key, now) {
                            let delay = backoff.get(&key);
                            plan.requeue_after =
                                Some(plan.requeue_after.map_or(delay, |d| d.min(delay)));
                            continue;
                        }
                        backoff.next(&key, now);
                        plan.events.push(PlannedEvent {
                            type_: WARNING,
                            reason: "FailedDaemonPod",
                            message: format!(
                                "Found failed daemon pod {ns}/{} on node {node}, will try to kill it",
                                name(pod)
                            ),
                        });
                        plan.pods_to_delete.push(name(pod));
                    }
                    "Succeeded" => {
                        plan.events.push(PlannedEvent {
                            type_: NORMAL,
                            reason: "SucceededDaemonPod",
                            message: format!(
                                "Found succeeded daemon pod {ns}/{} on node {node}, will try to delete it",
                                name(pod)
                            ),
                        });
                        plan.pods_to_delete.push(name(pod));
                    }
                    _ => running.push(pod),
                }
            }
            running.sort_by(|a, b| pod_order(a, b));
            if !surge {
                // R35: keep the first in pod order; an empty set waits for a later sync.
                plan.pods_to_delete
                    .extend(running.iter().skip(1).map(|p| name(p)));
                return;
            }
            // R36.
            if running.len() <= 1 {
                if running.is_empty() && placement.should_run {
                    plan.nodes_to_create.push(node.to_owned());
                }
                return;
            }
            let (mut oldest_new, mut oldest_old): (Option<&PodRecord>, Option<&PodRecord>) =
                (None, None);
            for pod in running {
                let slot = if pod_hash(pod) == Some(hash) {
                    &mut oldest_new
                } else {
                    &mut oldest_old
                };
                if slot.is_none() {
                    *slot = Some(pod);
                } else {
                    plan.pods_to_delete.push(name(pod));
                }
            }
            if let (Some(new), Some(old)) = (oldest_new, oldest_old)
                && (!old.is_ready() || new.is_available(min_ready, now_ts))
            {
                plan.pods_to_delete.push(name(old));
            }
        }
        // R37.
        Some(pods) if !placement.should_continue_running => {
            plan.pods_to_delete
                .extend(pods.iter().filter(|p| !p.deleting).map(|p| name(p)));
        }
        // R38 and no-pod nodes that should not run.
        _ => {}
    }
}

/// The per-node pass (upstream `manage`, R33-R40): nodes needing a pod and pods to delete.
pub fn plan_manage(
    ds: &DaemonSet,
    nodes: &[(String, Placement)],
    node_pods: &NodeToPods<'_>,
    hash: &str,
    backoff: &Backoff,
    now: Instant,
    now_ts: Timestamp,
) -> ManagePlan {
    let surge = allows_surge(ds);
    let mut plan = ManagePlan::default();
    let mut listed = HashSet::with_capacity(nodes.len());
    let mut lookup = node_pods.lookup();
    for (node, placement) in nodes {
        listed.insert(node.as_str());
        plan_node(
            ds,
            node,
            *placement,
            lookup.get(node),
            hash,
            surge,
            backoff,
            now,
            now_ts,
            &mut plan,
        );
    }
    // R39: unbound pods pinned to a node that does not exist are never scheduled: delete.
    for (node, pods) in node_pods.iter() {
        if listed.contains(node) {
            continue;
        }
        plan.pods_to_delete
            .extend(pods.iter().filter(|p| !p.bound).map(|p| name(p)));
    }
    plan
}

/// Hash labels of live pods (R93: revisions in use are never cleaned up).
pub fn live_hashes<'a>(pods: impl IntoIterator<Item = &'a PodRecord>) -> BTreeSet<String> {
    pods.into_iter()
        .filter_map(|p| pod_hash(p))
        .filter(|h| !h.is_empty())
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------------
// Execution against the API

use std::sync::Arc;

use futures::future::join_all;
use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use pernode_core::labels::LabelSelector;

use super::Error;
use super::conditions;
use super::controller::{Ctx, Placements, object_key};
use super::health_gate;
use super::history;
use super::pods::{controller_ref, pod_template, template_generation};
use super::rollout::{Held, OlderCreates, older_creates, partition_boundary};
use super::status;
use super::update::{RollingPlan, is_rolling_update, plan_rolling_update_held};
use super::waves::{WaveProgress, WaveStage, current_wave, progress_of_pods};
use crate::trim::{ControllerPod, Keep};
use k8s_openapi::api::core::v1::Pod;
use pernode_core::rollout::RolloutControls;
use pernode_core::waves::WaveControls;

/// `POST` of a new pod (its JSON `body`), as `Api::create`, answering the created pod's name: the
/// pod comes back whole, and only its name is decoded.
async fn create_pod(client: &kube::Client, ns: &str, body: Vec<u8>) -> Result<String, kube::Error> {
    let req = kube::core::Request::new(<Pod as kube::Resource>::url_path(&(), Some(ns)))
        .create(&PostParams::default(), body)
        .map_err(kube::Error::BuildRequest)?;
    let answer = client.request_text(req).await?;
    Ok(created_name(&answer))
}

/// The name of the pod a create answered with: read from its `metadata`, which kube-apiserver
/// and pernode put before `spec` and `status`, so the rest of the pod is not read (skipping
/// it cost 23,000 instructions a create). `""` if the answer has none.
fn created_name(answer: &str) -> String {
    #[derive(serde::Deserialize)]
    struct Named {
        name: Option<String>,
    }
    pernode_core::json::ObjectMembers::of(answer.as_bytes())
        .find(|(key, _)| key == "metadata")
        .and_then(|(_, meta)| serde_json::from_str::<Named>(meta).ok())
        .and_then(|meta| meta.name)
        .unwrap_or_default()
}

/// Deletes a pod; the answer (the terminating pod or a Status) is read no further than its
/// HTTP status.
async fn delete_pod(client: &kube::Client, ns: &str, name: &str) -> Result<(), kube::Error> {
    let req = kube::core::Request::new(<Pod as kube::Resource>::url_path(&(), Some(ns)))
        .delete(name, &DeleteParams::default())
        .map_err(kube::Error::BuildRequest)?;
    // The body is not parsed at all: only the HTTP status (and a failure's Status) matters.
    client.request_text(req).await.map(|_| ())
}

/// Runs one API request of a slow-start batch as its own task. Upstream issues a batch from
/// goroutines; polling them all inside the sync's task would serve the whole batch (admission,
/// encoding) on one worker thread.
async fn on_own_task<R: Send + 'static>(
    request: impl Future<Output = Result<R, kube::Error>> + Send + 'static,
) -> Result<R, kube::Error> {
    tokio::spawn(request)
        .await
        .unwrap_or_else(|e| Err(kube::Error::Service(Box::new(e))))
}

fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_not_found())
}

fn is_already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.is_already_exists())
}

/// The text of an API error as client-go prints a StatusError (its message).
fn error_text(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(s) if !s.message.is_empty() => s.message.clone(),
        other => other.to_string(),
    }
}

/// Whether a selector is the empty `{}` (R28).
fn selects_everything(ds: &DaemonSet) -> bool {
    ds.spec.as_ref().is_some_and(|s| {
        s.selector
            .match_labels
            .as_ref()
            .is_none_or(|m| m.is_empty())
            && s.selector
                .match_expressions
                .as_ref()
                .is_none_or(|m| m.is_empty())
    })
}

/// Lazily performed uncached read confirming the DaemonSet may adopt (R109).
struct AdoptCheck<'a> {
    ctx: &'a Ctx,
    ds: &'a DaemonSet,
    result: Option<Result<(), String>>,
}

impl AdoptCheck<'_> {
    async fn check(&mut self) -> Result<(), Error> {
        if self.result.is_none() {
            let ns = self.ds.metadata.namespace.as_deref().unwrap_or("");
            let name = self.ds.metadata.name.as_deref().unwrap_or("");
            let r = match self.ctx.ds_api(ns).get(name).await {
                Ok(fresh) if fresh.metadata.uid != self.ds.metadata.uid => Err(format!(
                    "original DaemonSet {ns}/{name} is gone: got uid {}, wanted {}",
                    fresh.metadata.uid.unwrap_or_default(),
                    self.ds.metadata.uid.clone().unwrap_or_default()
                )),
                Ok(fresh) if fresh.metadata.deletion_timestamp.is_some() => Err(format!(
                    "{ns}/{name} has just been deleted at {:?}",
                    fresh.metadata.deletion_timestamp
                )),
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            };
            self.result = Some(r);
        }
        match self.result.clone() {
            Some(Err(e)) => Err(Error::CannotAdopt(e)),
            _ => Ok(()),
        }
    }
}

fn owner_patch(ds: &DaemonSet, uid: Option<&str>) -> Result<serde_json::Value, Error> {
    let owner = controller_ref(ds)?;
    Ok(serde_json::json!({
        "metadata": { "ownerReferences": [owner], "uid": uid }
    }))
}

fn release_patch(ds: &DaemonSet, uid: Option<&str>) -> serde_json::Value {
    serde_json::json!({
        "metadata": {
            "ownerReferences": [{ "$patch": "delete", "uid": ds.metadata.uid }],
            "uid": uid,
        }
    })
}

/// Claims the pods of the DaemonSet's namespace (R108-R110): returns ours, adopting orphans
/// that match and releasing ours that no longer do.
async fn claim_pods(
    ctx: &Ctx,
    ds: &DaemonSet,
    selector: &LabelSelector,
    check: &mut AdoptCheck<'_>,
) -> Result<Vec<Arc<PodRecord>>, Error> {
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let mut claimed = Vec::new();
    let mut adopt = Vec::new();
    let mut release = Vec::new();
    // Pods controlled by someone else are always Claim::Ignore: read ours and the orphans.
    let uid = ds.metadata.uid.as_deref().unwrap_or("");
    for pod in ctx.pods.list_controlled(&ns, uid, true) {
        let matches = selector.matches_with(|k| pod.labels.get(k));
        match claim(ds, &*pod, matches) {
            Claim::Owned => claimed.push(pod),
            Claim::Adopt => adopt.push(pod),
            Claim::Release => release.push(pod),
            Claim::Ignore => {}
        }
    }
    let mut errors = Vec::new();
    if !adopt.is_empty() {
        check.check().await?;
        // The patched pod is decoded as the cache decodes pods.
        let api: Api<ControllerPod> = Api::namespaced(ctx.client.clone(), &ns);
        let patches = adopt
            .iter()
            .map(|p| owner_patch(ds, p.uid.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        let results = join_all(adopt.iter().zip(&patches).map(|(p, patch)| {
            let name = p.name.to_string();
            let api = api.clone();
            async move {
                api.patch(&name, &PatchParams::default(), &Patch::Strategic(patch))
                    .await
            }
        }))
        .await;
        for r in results {
            match r {
                Ok(pod) => claimed.push(Arc::new(pod.keep())),
                Err(e) if is_not_found(&e) => {}
                Err(e) => errors.push(Error::Kube(e)),
            }
        }
    }
    if !release.is_empty() {
        let api = ctx.pod_api(&ns);
        let results = join_all(release.iter().map(|p| {
            let name = p.name.to_string();
            let patch = release_patch(ds, p.uid.as_deref());
            let api = api.clone();
            async move {
                api.patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                    .await
            }
        }))
        .await;
        for r in results {
            match r {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(e) => errors.push(Error::Kube(e)),
            }
        }
    }
    Error::aggregate(errors)?;
    Ok(claimed)
}

/// Pods in the cache controlled by the DaemonSet and matching its selector (a re-read after
/// the per-node pass, as upstream re-lists from its informer).
fn owned_pods(ctx: &Ctx, ds: &DaemonSet, selector: &LabelSelector) -> Vec<Arc<PodRecord>> {
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let uid = ds.metadata.uid.as_deref().unwrap_or("");
    ctx.pods
        .list_controlled(&ns, uid, false)
        .into_iter()
        .filter(|p| {
            p.controller
                .as_ref()
                .is_some_and(|r| Some(&r.uid) == ds.metadata.uid.as_ref())
                && selector.matches_with(|k| p.labels.get(k))
        })
        .collect()
}

/// Claims the revisions of the namespace (R111).
async fn claim_revisions(
    ctx: &Ctx,
    ds: &DaemonSet,
    selector: &LabelSelector,
    check: &mut AdoptCheck<'_>,
) -> Result<Vec<ControllerRevision>, Error> {
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let api = ctx.rev_api(&ns);
    let empty = BTreeMap::new();
    let mut claimed = Vec::new();
    let mut errors = Vec::new();
    for rev in ctx.revisions.list_ns(&ns) {
        let matches = selector.matches(rev.metadata.labels.as_ref().unwrap_or(&empty));
        let name = rev.metadata.name.clone().unwrap_or_default();
        match claim(ds, &rev.metadata, matches) {
            Claim::Owned => claimed.push((*rev).clone()),
            Claim::Adopt => {
                check.check().await?;
                let patch = owner_patch(ds, rev.metadata.uid.as_deref())?;
                match api
                    .patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                    .await
                {
                    Ok(r) => claimed.push(r),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => errors.push(Error::Kube(e)),
                }
            }
            Claim::Release => {
                let patch = release_patch(ds, rev.metadata.uid.as_deref());
                match api
                    .patch(&name, &PatchParams::default(), &Patch::Strategic(&patch))
                    .await
                {
                    Ok(_) => {}
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => errors.push(Error::Kube(e)),
                }
            }
            Claim::Ignore => {}
        }
    }
    Error::aggregate(errors)?;
    Ok(claimed)
}

/// Builds history (R30, R83-R91): returns the current hash and the old revisions.
async fn construct_history(
    ctx: &Ctx,
    ds: &DaemonSet,
    selector: &LabelSelector,
    check: &mut AdoptCheck<'_>,
) -> Result<(String, Vec<ControllerRevision>), Error> {
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let api = ctx.rev_api(&ns);
    let mut revisions = claim_revisions(ctx, ds, selector, check).await?;
    // R84.
    for rev in revisions.iter_mut() {
        if history::revision_hash(rev).is_none() {
            let name = rev.metadata.name.clone().unwrap_or_default();
            let patch = serde_json::json!({
                "metadata": { "labels": { super::CONTROLLER_REVISION_HASH_LABEL: name } }
            });
            *rev = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
    }
    let patch = history::revision_patch(ds)?;
    let classified = history::classify(&patch, revisions);
    let old = classified.old;
    let next = history::max_revision(&old) + 1;
    let current = match history::dedup_current(classified.current) {
        None => snapshot(ctx, ds, &patch, next).await?,
        Some((keep, dups)) => {
            let keep_hash = history::revision_hash(&keep).unwrap_or("").to_owned();
            if !dups.is_empty() {
                // R89: relabel every claimed pod to the kept hash, then drop the duplicates.
                // The pods are claimed here, as upstream's dedupCurHistories does: the
                // per-node pass reads its own, later (see sync_daemonset).
                let pods = claim_pods(ctx, ds, selector, check).await?;
                let pod_api = ctx.pod_api(&ns);
                for pod in &pods {
                    if super::pods::pod_hash(pod) == Some(keep_hash.as_str()) {
                        continue;
                    }
                    let name = pod.name.to_string();
                    let patch = serde_json::json!({
                        "metadata": { "labels": { super::CONTROLLER_REVISION_HASH_LABEL: keep_hash } }
                    });
                    match pod_api
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(_) => {}
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                for dup in dups {
                    let name = dup.metadata.name.clone().unwrap_or_default();
                    match api.delete(&name, &DeleteParams::default()).await {
                        Ok(_) => {}
                        Err(e) if is_not_found(&e) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            // R88.
            if let Some(n) = history::renumber_to(&keep, &old) {
                let name = keep.metadata.name.clone().unwrap_or_default();
                api.patch(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(serde_json::json!({ "revision": n })),
                )
                .await?
            } else {
                keep
            }
        }
    };
    // R90: the label of the current revision is the hash, whatever it was computed from.
    let hash = history::revision_hash(&current)
        .map(str::to_owned)
        .or(current.metadata.name.clone())
        .unwrap_or_default();
    Ok((hash, old))
}

/// Creates the current revision (R86), handling name collisions (R91).
async fn snapshot(
    ctx: &Ctx,
    ds: &DaemonSet,
    patch: &str,
    revision: i64,
) -> Result<ControllerRevision, Error> {
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let collision_count = ds.status.as_ref().and_then(|s| s.collision_count);
    let hash = history::compute_hash(patch, collision_count);
    let rev = history::new_revision(ds, patch, &hash, revision)?;
    let name = rev.metadata.name.clone().unwrap_or_default();
    let api = ctx.rev_api(&ns);
    match api.create(&PostParams::default(), &rev).await {
        Ok(created) => Ok(created),
        Err(e) if is_already_exists(&e) => {
            let existing = api.get(&name).await?;
            if history::matches(patch, &existing) {
                return Ok(existing);
            }
            let ds_name = ds.metadata.name.clone().unwrap_or_default();
            let ds_api = ctx.ds_api(&ns);
            let mut fresh = ds_api.get(&ds_name).await?;
            let fresh_count = fresh.status.as_ref().and_then(|s| s.collision_count);
            if fresh_count != collision_count {
                return Err(Error::HashCollision(format!(
                    "found a stale collision count ({collision_count:?}, expected {fresh_count:?}) of DaemonSet {ds_name:?} while processing; will retry until it is updated"
                )));
            }
            let bumped = fresh_count.unwrap_or(0) + 1;
            fresh
                .status
                .get_or_insert_with(Default::default)
                .collision_count = Some(bumped);
            ds_api
                .replace_status(&ds_name, &PostParams::default(), &fresh)
                .await?;
            Err(Error::HashCollision(format!(
                "found a hash collision for DaemonSet {ds_name:?} - bumping collisionCount to {bumped} to resolve it"
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// Runs `op` over `items` in slow-start batches of 1, 2, 4, ... (R124), concurrently within a
/// batch; after a batch with a `failed` result, later batches are skipped. Returns the results
/// in order and how many items were skipped.
pub(crate) async fn slow_start<T, R, F, Fut>(
    items: &[T],
    op: F,
    failed: impl Fn(&R) -> bool,
) -> (Vec<R>, usize)
where
    F: Fn(&T) -> Fut,
    Fut: std::future::Future<Output = R>,
{
    let mut out = Vec::with_capacity(items.len());
    let mut pos = 0;
    let mut batch = items.len().min(1);
    while pos < items.len() {
        let results = join_all(items[pos..pos + batch].iter().map(&op)).await;
        let any_failed = results.iter().any(&failed);
        out.extend(results);
        pos += batch;
        if any_failed && pos < items.len() {
            return (out, items.len() - pos);
        }
        batch = (2 * batch).min(items.len() - pos);
    }
    (out, 0)
}

/// Issues creates (slow-start batches, concurrent within a batch, R123-R125) and deletes.
pub(crate) async fn sync_nodes(
    ctx: &Ctx,
    ds: &Arc<DaemonSet>,
    key: &str,
    pods_to_delete: &[String],
    nodes_to_create: &[String],
    hash: &str,
    older: Option<&OlderCreates>,
) -> Result<(), Error> {
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let burst = ctx.opts.burst_replicas.max(1);
    let create_diff = nodes_to_create.len().min(burst);
    let delete_diff = pods_to_delete.len().min(burst);
    ctx.expectations.set(key, create_diff, delete_diff);
    let mut errors: Vec<Error> = Vec::new();

    if create_diff > 0 {
        let template = pod_template(ds, template_generation(ds), hash);
        let bodies = super::pods::PodBodies::new(template, &ns, controller_ref(ds)?)
            .map_err(|e| Error::Kube(kube::Error::SerdeError(e)))?;
        // Pods of an older revision (a paused or partitioned rollout, `super::rollout`): its
        // template, labelled with its hash and no template generation.
        let older_bodies = older
            .map(|o| {
                let mut at_revision = (**ds).clone();
                if let Some(spec) = at_revision.spec.as_mut() {
                    spec.template = o.template.clone();
                }
                let template = pod_template(&at_revision, None, &o.hash);
                super::pods::PodBodies::new(template, &ns, controller_ref(ds)?)
                    .map_err(|e| Error::Kube(kube::Error::SerdeError(e)))
            })
            .transpose()?;
        let (results, skipped) = slow_start(
            &nodes_to_create[..create_diff],
            |node| {
                let body = match (&older_bodies, older) {
                    (Some(b), Some(o)) if o.nodes.contains(node) => b.for_node(node),
                    _ => bodies.for_node(node),
                };
                let (client, ns) = (ctx.client.clone(), ns.clone());
                on_own_task(async move {
                    let body = body.map_err(kube::Error::SerdeError)?;
                    create_pod(&client, &ns, body).await
                })
            },
            |r| matches!(r, Err(e) if !is_namespace_terminating(e)),
        )
        .await;
        if skipped > 0 {
            // R124: the skipped creates are retried by a later sync.
            ctx.expectations.lower(key, skipped, 0);
        }
        for r in results {
            match r {
                Ok(name) => ctx.recorder.record(
                    ds,
                    NORMAL,
                    "SuccessfulCreate",
                    format!("Created pod: {name}"),
                ),
                Err(e) => {
                    // The pod will never be observed: lower the expectation now.
                    ctx.expectations.creation_observed(key);
                    if is_namespace_terminating(&e) {
                        continue;
                    }
                    ctx.recorder.record(
                        ds,
                        WARNING,
                        "FailedCreate",
                        format!("Error creating: {}", error_text(&e)),
                    );
                    errors.push(Error::Kube(e));
                }
            }
        }
    }

    if delete_diff > 0 {
        let results = join_all(pods_to_delete[..delete_diff].iter().map(|name| {
            let (client, ns, owned) = (ctx.client.clone(), ns.clone(), name.clone());
            async move {
                let deleted = on_own_task(async move { delete_pod(&client, &ns, &owned).await });
                (name, deleted.await)
            }
        }))
        .await;
        for (name, r) in results {
            match r {
                Ok(_) => ctx.recorder.record(
                    ds,
                    NORMAL,
                    "SuccessfulDelete",
                    format!("Deleted pod: {name}"),
                ),
                Err(e) => {
                    ctx.expectations.deletion_observed(key);
                    if is_not_found(&e) {
                        continue;
                    }
                    ctx.recorder.record(
                        ds,
                        WARNING,
                        "FailedDelete",
                        format!("Error deleting: {}", error_text(&e)),
                    );
                    errors.push(Error::Kube(e));
                }
            }
        }
    }
    Error::aggregate(errors)
}

/// Where the DaemonSet's waves stand (`super::waves`), nodes' labels read from the cache.
#[allow(clippy::too_many_arguments)]
fn wave_progress(
    ctx: &Ctx,
    ds: &DaemonSet,
    waves: &WaveControls,
    nodes: &[(String, Placement)],
    node_pods: &NodeToPods<'_>,
    hash: &str,
    boundary: Option<&str>,
    now: Timestamp,
) -> WaveProgress {
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    progress_of_pods(
        waves,
        nodes,
        |name| {
            let node = ctx.nodes.get("", name)?;
            waves.waves.wave_of(|k| node.labels.get(k))
        },
        boundary,
        node_pods,
        hash,
        template_generation(ds),
        min_ready,
        now,
    )
}

/// Computes and writes status (R41-R50), with pernode's conditions (`super::conditions`).
async fn update_status(
    ctx: &Ctx,
    ds: &Arc<DaemonSet>,
    key: &str,
    selector: &LabelSelector,
    placements: &Placements,
    hash: &str,
    update_observed_generation: bool,
) -> Result<(), Error> {
    let nodes = &placements.nodes[..];
    let pods = owned_pods(ctx, ds, selector);
    let node_pods = nodes_to_daemon_pods(pods.iter().map(|p| p.as_ref()), false);
    let min_ready = ds
        .spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0);
    let now = Timestamp::now();
    let counts = status::compute(
        nodes,
        &node_pods,
        hash,
        template_generation(ds),
        min_ready,
        now,
    );
    let stage = match WaveControls::of(ds.metadata.annotations.as_ref()) {
        None => None,
        Some(Err(invalid)) => Some(WaveStage::Invalid(invalid.to_string())),
        Some(Ok(waves)) => {
            let controls = RolloutControls::of(ds.metadata.annotations.as_ref());
            let boundary = partition_boundary(nodes, &controls);
            let p = wave_progress(ctx, ds, &waves, nodes, &node_pods, hash, boundary, now);
            Some(WaveStage::of(&waves, &p))
        }
    };
    let gate = health_gate::stopped_progressing(ctx, ds, nodes, &node_pods, hash, now);
    let (conditions, deadline) = conditions::for_daemonset(
        ds,
        &counts,
        &placements.excluded,
        stage.as_ref(),
        gate.as_deref(),
        now,
    );
    // The deadline counts from Progressing's last change, which is a write: one timer per
    // write, none for a sync that changes nothing.
    if let Some(delay) = deadline.filter(|_| conditions.is_some()) {
        ctx.queue.add_after(key.to_string(), delay);
    }
    // `kubectl describe` prints events, not conditions: a new exclusion count is both.
    if let Some(message) = conditions
        .as_deref()
        .and_then(|c| conditions::newly_excluded(ds.status.as_ref(), c))
    {
        ctx.recorder.record(ds, NORMAL, "NodesExcluded", message);
    }
    // A rollout stopped by an annotation it cannot read says so once per value.
    if let Some(message) = conditions
        .as_deref()
        .and_then(|c| conditions::newly_stopped(ds.status.as_ref(), c))
    {
        ctx.recorder
            .record(ds, WARNING, conditions::INVALID_ANNOTATION, message);
    }
    if status::needs_write(ds, &counts) || conditions.is_some() {
        let ns = ds.metadata.namespace.clone().unwrap_or_default();
        let name = ds.metadata.name.clone().unwrap_or_default();
        let api = ctx.ds_api(&ns);
        let observed = update_observed_generation
            .then_some(ds.metadata.generation)
            .flatten();
        let mut to_update = (**ds).clone();
        let mut attempt = 0;
        loop {
            let mut next = status::with_counts(to_update.status.as_ref(), &counts, observed);
            if let (Some(c), _) = conditions::for_daemonset(
                &to_update,
                &counts,
                &placements.excluded,
                stage.as_ref(),
                gate.as_deref(),
                now,
            ) {
                next.conditions = Some(c);
            }
            to_update.status = Some(next);
            match api
                .replace_status(&name, &PostParams::default(), &to_update)
                .await
            {
                Ok(_) => break,
                // R48: re-read and retry exactly once.
                Err(e) if attempt == 0 => {
                    tracing::debug!(ds = %key, error = %e, "status write failed, retrying");
                    attempt += 1;
                    to_update = api.get(&name).await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    if let Some(delay) = status::requeue_after(min_ready, &counts) {
        ctx.queue.add_after(key.to_string(), delay);
    }
    Ok(())
}

/// Per-node pass, rolling update and history cleanup (R32).
#[allow(clippy::too_many_arguments)]
async fn update_daemonset(
    ctx: &Ctx,
    ds: &Arc<DaemonSet>,
    key: &str,
    selector: &LabelSelector,
    nodes: &[(String, Placement)],
    pods: &[Arc<PodRecord>],
    hash: &str,
    old: &[ControllerRevision],
) -> Result<(), Error> {
    let node_pods = nodes_to_daemon_pods(pods.iter().map(|p| p.as_ref()), false);
    let plan = plan_manage(
        ds,
        nodes,
        &node_pods,
        hash,
        &ctx.backoff,
        Instant::now(),
        Timestamp::now(),
    );
    for ev in plan.events {
        ctx.recorder.record(ds, ev.type_, ev.reason, ev.message);
    }
    if let Some(delay) = plan.requeue_after {
        ctx.queue.add_after(key.to_string(), delay);
    }
    tracing::debug!(
        ds = %key,
        create = plan.nodes_to_create.len(),
        delete = plan.pods_to_delete.len(),
        "manage"
    );
    let mut controls = RolloutControls::of(ds.metadata.annotations.as_ref());
    // The health gate stops the rollout as a pause, once tripped (or rolls it back).
    if health_gate::enforce(ctx, ds, key, nodes, &node_pods, hash, old).await? {
        controls.paused = true;
    }
    let boundary = partition_boundary(nodes, &controls);
    let now_ts = Timestamp::now();
    let progress = match WaveControls::of(ds.metadata.annotations.as_ref()) {
        None => None,
        // Waves that do not parse stop the rollout, as a pause (the condition says why).
        Some(Err(_)) => {
            controls.paused = true;
            None
        }
        Some(Ok(waves)) => Some(wave_progress(
            ctx, ds, &waves, nodes, &node_pods, hash, boundary, now_ts,
        )),
    };
    // A node the waves have not reached (or no wave matches; one not listed, too).
    let wave_holds = |node: &str| {
        progress.as_ref().is_some_and(|p| {
            nodes
                .binary_search_by(|(n, _)| n.as_str().cmp(node))
                .ok()
                .is_none_or(|i| p.holds(i))
        })
    };
    let held = Held {
        boundary,
        by_wave: progress
            .as_ref()
            .map(|_| &wave_holds as &dyn Fn(&str) -> bool),
    };
    let older = older_creates(
        &controls,
        held,
        &plan.nodes_to_create,
        pods.iter().map(|p| p.as_ref()),
        hash,
        old,
    );
    sync_nodes(
        ctx,
        ds,
        key,
        &plan.pods_to_delete,
        &plan.nodes_to_create,
        hash,
        older.as_ref(),
    )
    .await?;

    // A paused rollout replaces no more pods.
    if ctx.expectations.satisfied(key) && is_rolling_update(ds) && !controls.paused {
        let fresh = owned_pods(ctx, ds, selector);
        let node_pods = nodes_to_daemon_pods(fresh.iter().map(|p| p.as_ref()), false);
        let generation = template_generation(ds);
        let plan = match &progress {
            None => plan_rolling_update_held(
                ds,
                nodes,
                &node_pods,
                hash,
                generation,
                Timestamp::now(),
                boundary,
            )?,
            // The wave being rolled, as if it were the whole DaemonSet.
            Some(p) if p.rolling() => {
                let (wave_nodes, wave_pods) = current_wave(p, nodes, &node_pods);
                plan_rolling_update_held(
                    ds,
                    &wave_nodes,
                    &wave_pods,
                    hash,
                    generation,
                    Timestamp::now(),
                    boundary,
                )?
            }
            Some(p) => {
                // Soaking: the next wave starts when the soak ends, one delayed sync away.
                if let Some(left) = p.soak_left(now_ts) {
                    ctx.queue.add_after(key.to_string(), left);
                }
                RollingPlan::default()
            }
        };
        if !plan.pods_to_delete.is_empty() || !plan.nodes_to_create.is_empty() {
            tracing::debug!(
                ds = %key,
                create = plan.nodes_to_create.len(),
                delete = plan.pods_to_delete.len(),
                "rolling update"
            );
            sync_nodes(
                ctx,
                ds,
                key,
                &plan.pods_to_delete,
                &plan.nodes_to_create,
                hash,
                None,
            )
            .await?;
        }
    }

    // R93.
    let limit = ds
        .spec
        .as_ref()
        .and_then(|s| s.revision_history_limit)
        .unwrap_or(10);
    if old.len() <= limit.max(0) as usize {
        // Nothing beyond the limit: nothing to clean up, whatever the live hashes.
        return Ok(());
    }
    let all = owned_pods(ctx, ds, selector);
    let with_terminal = nodes_to_daemon_pods(all.iter().map(|p| p.as_ref()), true);
    let live = live_hashes(with_terminal.pods());
    let ns = ds.metadata.namespace.clone().unwrap_or_default();
    let api = ctx.rev_api(&ns);
    for rev in history::revisions_to_clean_up(old, limit, &live) {
        let name = rev.metadata.name.clone().unwrap_or_default();
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// One sync of the DaemonSet `key` (`namespace/name`), upstream's `syncDaemonSet`.
pub(crate) async fn sync_daemonset(ctx: &Ctx, key: &str) -> Result<(), Error> {
    let (ns, name) = key.split_once('/').unwrap_or(("", key));
    // R27.
    let Some(ds) = ctx.dss.get(ns, name) else {
        ctx.expectations.delete(key);
        ctx.forget_placements(key);
        return Ok(());
    };
    let Some(spec) = ds.spec.as_ref() else {
        return Ok(());
    };
    // R28.
    if selects_everything(&ds) {
        ctx.recorder.record(
            &ds,
            WARNING,
            "SelectingAll",
            "This daemon set is selecting all pods. A non-empty selector is required.".to_owned(),
        );
        return Ok(());
    }
    // R29.
    if ds.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let selector = pernode_core::labels::from_k8s(&spec.selector)
        .map_err(|e| Error::InvalidSelector(e.to_string()))?;
    debug_assert_eq!(object_key(&ds.metadata), key);

    // Nodes sorted by name with their placement, recomputed only when nodes or the template
    // changed.
    let placements = ctx.placements(key, &ds);
    let nodes = &placements.nodes[..];

    let mut check = AdoptCheck {
        ctx,
        ds: &ds,
        result: None,
    };
    // R30.
    let (hash, old) = construct_history(ctx, &ds, &selector, &mut check).await?;
    // R31. Expectations first, pods second, as upstream (syncDaemonSet checks expectations,
    // then manage lists the pods): the cache takes an object before the handler lowers the
    // expectations, so once they are satisfied every pod they waited for is in the cache.
    // Pods read before the check may miss a pod whose creation is observed in between, and
    // the per-node pass would then create a second pod on its node (R33, R122).
    let satisfied = ctx.expectations.satisfied(key);
    let pods = claim_pods(ctx, &ds, &selector, &mut check).await?;
    if !satisfied {
        return update_status(ctx, &ds, key, &selector, &placements, &hash, false).await;
    }
    // R32: a sync error takes precedence over a status error.
    let result = update_daemonset(ctx, &ds, key, &selector, nodes, &pods, &hash, &old).await;
    let status_result = update_status(ctx, &ds, key, &selector, &placements, &hash, true).await;
    result.and(status_result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_pods_name_is_read_from_its_metadata() {
        let answer = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"agent-","name":"agent-x7k2q","labels":{"name":"metadata"}},"spec":{"containers":[{"name":"c"}]},"status":{"phase":"Pending"}}"#;
        assert_eq!(created_name(answer), "agent-x7k2q");
        for nameless in [
            r#"{"kind":"Pod","metadata":{}}"#,
            r#"{"kind":"Pod"}"#,
            "not JSON",
            "",
        ] {
            assert_eq!(created_name(nameless), "", "{nameless}");
        }
    }
    use crate::daemonset::testutil::{ds, pod_on};
    use k8s_openapi::api::apps::v1::{DaemonSetUpdateStrategy, RollingUpdateDaemonSet};
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

    const RUN: Placement = Placement::BOTH;
    const STAY: Placement = Placement {
        should_run: false,
        should_continue_running: true,
    };

    fn now_ts() -> Timestamp {
        Timestamp::from_second(10_000).unwrap()
    }

    fn plan(d: &DaemonSet, nodes: &[(&str, Placement)], pods: &[PodRecord]) -> ManagePlan {
        plan_with(d, nodes, pods, &Backoff::default(), Instant::now())
    }

    fn plan_with(
        d: &DaemonSet,
        nodes: &[(&str, Placement)],
        pods: &[PodRecord],
        backoff: &Backoff,
        now: Instant,
    ) -> ManagePlan {
        let nodes: Vec<(String, Placement)> =
            nodes.iter().map(|(n, p)| (n.to_string(), *p)).collect();
        let np = nodes_to_daemon_pods(pods.iter(), false);
        plan_manage(d, &nodes, &np, "new", backoff, now, now_ts())
    }

    fn surge(d: &mut DaemonSet) {
        d.spec.as_mut().unwrap().update_strategy = Some(DaemonSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDaemonSet {
                max_surge: Some(IntOrString::Int(1)),
                max_unavailable: Some(IntOrString::Int(0)),
            }),
        });
    }

    #[test]
    fn r33_create_on_should_run_node_without_pods() {
        let p = plan(
            &ds("x"),
            &[("n1", RUN), ("n2", RUN), ("n3", Placement::NONE)],
            &[pod_on("a", "n2", "new", 1).build()],
        );
        assert_eq!(p.nodes_to_create, vec!["n1"]);
        assert!(p.pods_to_delete.is_empty());
    }

    #[test]
    fn r34_failed_and_succeeded_pods_deleted_with_events() {
        let p = plan(
            &ds("x"),
            &[("n1", RUN), ("n2", RUN)],
            &[
                pod_on("f", "n1", "new", 1).phase("Failed").build(),
                pod_on("s", "n2", "new", 1).phase("Succeeded").build(),
            ],
        );
        assert_eq!(p.pods_to_delete, vec!["f", "s"]);
        assert!(
            p.nodes_to_create.is_empty(),
            "replacements come on a later sync (R120)"
        );
        assert_eq!(p.events[0].reason, "FailedDaemonPod");
        assert_eq!(p.events[0].type_, WARNING);
        assert_eq!(
            p.events[0].message,
            "Found failed daemon pod default/f on node n1, will try to kill it"
        );
        assert_eq!(p.events[1].reason, "SucceededDaemonPod");
        assert_eq!(p.events[1].type_, NORMAL);
    }

    #[test]
    fn r119_failed_pod_in_backoff_is_left_and_requeued() {
        let b = Backoff::default();
        let t0 = Instant::now();
        let pods = [pod_on("f", "n1", "new", 1).phase("Failed").build()];
        let p = plan_with(&ds("x"), &[("n1", RUN)], &pods, &b, t0);
        assert_eq!(p.pods_to_delete, vec!["f"]);
        let p = plan_with(
            &ds("x"),
            &[("n1", RUN)],
            &pods,
            &b,
            t0 + Duration::from_millis(10),
        );
        assert!(p.pods_to_delete.is_empty());
        assert_eq!(p.requeue_after, Some(Duration::from_secs(1)));
        // R120: succeeded pods get no backoff.
        let pods = [pod_on("s", "n1", "new", 1).phase("Succeeded").build()];
        for _ in 0..3 {
            assert_eq!(
                plan_with(&ds("x"), &[("n1", RUN)], &pods, &b, t0).pods_to_delete,
                vec!["s"]
            );
        }
    }

    #[test]
    fn r35_extra_pods_pruned_to_oldest() {
        let p = plan(
            &ds("x"),
            &[("n1", RUN)],
            &[
                pod_on("young", "n1", "new", 1).created(5).build(),
                pod_on("old", "n1", "new", 1).created(1).build(),
                pod_on("unbound", "n1", "new", 1)
                    .created(0)
                    .unbound()
                    .build(),
            ],
        );
        let mut del = p.pods_to_delete;
        del.sort();
        assert_eq!(del, vec!["unbound", "young"]);
    }

    #[test]
    fn r35_no_replacement_while_pod_terminating() {
        let p = plan(
            &ds("x"),
            &[("n1", RUN)],
            &[pod_on("t", "n1", "old", 1).terminating().build()],
        );
        assert_eq!(p, ManagePlan::default());
    }

    #[test]
    fn r36_surge_creates_while_old_terminating() {
        let mut d = ds("x");
        surge(&mut d);
        let p = plan(
            &d,
            &[("n1", RUN)],
            &[pod_on("t", "n1", "old", 1).terminating().build()],
        );
        assert_eq!(p.nodes_to_create, vec!["n1"]);
    }

    #[test]
    fn r36_surge_keeps_oldest_new_and_old_and_prunes_rest() {
        let mut d = ds("x");
        surge(&mut d);
        let pods = [
            pod_on("old1", "n1", "old", 1).created(1).ready(0).build(),
            pod_on("old2", "n1", "old", 1).created(2).ready(0).build(),
            pod_on("new1", "n1", "new", 2).created(3).build(),
            pod_on("new2", "n1", "new", 2).created(4).build(),
        ];
        let p = plan(&d, &[("n1", RUN)], &pods);
        assert_eq!(
            p.pods_to_delete,
            vec!["old2", "new2"],
            "old ready, new not available: keep both"
        );
        let pods = [
            pod_on("old1", "n1", "old", 1).created(1).build(),
            pod_on("new1", "n1", "new", 2).created(3).build(),
        ];
        assert_eq!(
            plan(&d, &[("n1", RUN)], &pods).pods_to_delete,
            vec!["old1"],
            "old not ready"
        );
        let pods = [
            pod_on("old1", "n1", "old", 1).created(1).ready(0).build(),
            pod_on("new1", "n1", "new", 2).created(3).ready(5).build(),
        ];
        assert_eq!(
            plan(&d, &[("n1", RUN)], &pods).pods_to_delete,
            vec!["old1"],
            "new available"
        );
    }

    #[test]
    fn r37_pods_on_ineligible_node_deleted() {
        let p = plan(
            &ds("x"),
            &[("n1", Placement::NONE)],
            &[
                pod_on("a", "n1", "new", 1).build(),
                pod_on("t", "n1", "new", 1).terminating().build(),
            ],
        );
        assert_eq!(p.pods_to_delete, vec!["a"]);
    }

    #[test]
    fn r38_should_continue_without_pods_does_nothing() {
        let p = plan(&ds("x"), &[("n1", STAY)], &[]);
        assert_eq!(p, ManagePlan::default());
        // R6: the running pod under a new NoSchedule taint stays.
        let p = plan(
            &ds("x"),
            &[("n1", STAY)],
            &[pod_on("a", "n1", "new", 1).build()],
        );
        assert_eq!(p, ManagePlan::default());
    }

    #[test]
    fn r39_unbound_pods_of_missing_nodes_deleted_bound_ones_left() {
        let p = plan(
            &ds("x"),
            &[],
            &[
                pod_on("unbound", "gone", "new", 1).unbound().build(),
                pod_on("bound", "gone", "new", 1).build(),
            ],
        );
        assert_eq!(p.pods_to_delete, vec!["unbound"]);
    }

    #[test]
    fn r40_terminal_terminating_pod_does_not_block_node() {
        let p = plan(
            &ds("x"),
            &[("n1", RUN)],
            &[pod_on("f", "n1", "new", 1)
                .phase("Failed")
                .terminating()
                .build()],
        );
        assert_eq!(p.nodes_to_create, vec!["n1"]);
        // But history cleanup still sees it (R93).
        let pods = [pod_on("f", "n1", "h", 1)
            .phase("Failed")
            .terminating()
            .build()];
        assert_eq!(nodes_to_daemon_pods(pods.iter(), true).len(), 1);
    }

    #[tokio::test]
    async fn r124_slow_start_batches_stop_after_failure() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        // A quota of 10 pods on 100 nodes.
        let nodes: Vec<usize> = (0..100).collect();
        let calls = AtomicUsize::new(0);
        let (results, skipped) = slow_start(
            &nodes,
            |_| {
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move { n < 10 }
            },
            |ok| !ok,
        )
        .await;
        assert_eq!(results.iter().filter(|ok| **ok).count(), 10);
        assert!(calls.load(Ordering::SeqCst) <= 1 + 2 + 4 + 8);
        assert_eq!(results.len() + skipped, 100);
        // Without failures every item runs.
        let (results, skipped) = slow_start(&nodes, |_| async { true }, |ok| !ok).await;
        assert_eq!((results.len(), skipped), (100, 0));
    }

    /// The requests of one batch run on every worker thread at once: each request here holds
    /// its thread until the other request of its batch has started too, which never happens
    /// if the batch is polled inside one task.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn r124_a_batch_runs_on_every_worker_thread() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let started = Arc::new(AtomicUsize::new(0));
        // Batches of 1 then 2: the second batch's two requests must overlap.
        let items = [1usize, 2, 3];
        let (results, skipped) = slow_start(
            &items,
            |&i| {
                let started = started.clone();
                on_own_task(async move {
                    let want = if i == 1 { 1 } else { 3 };
                    started.fetch_add(1, Ordering::SeqCst);
                    let deadline = Instant::now() + Duration::from_secs(20);
                    // Blocks its thread on purpose (no await): only another thread can help.
                    while started.load(Ordering::SeqCst) < want && Instant::now() < deadline {
                        std::hint::spin_loop();
                    }
                    Ok(started.load(Ordering::SeqCst) >= want)
                })
            },
            |r: &Result<bool, kube::Error>| r.is_err(),
        )
        .await;
        assert_eq!(skipped, 0);
        let overlapped: Vec<bool> = results.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(overlapped, [true, true, true]);
    }

    #[test]
    fn r108_claim_owned_foreign_and_release() {
        let d = ds("x");
        let other = ds("y");
        let mine = pod_on("a", "n1", "h", 1).owned_by(&d).build();
        assert_eq!(claim(&d, &mine, true), Claim::Owned);
        assert_eq!(claim(&d, &mine, false), Claim::Release);
        let theirs = pod_on("b", "n1", "h", 1).owned_by(&other).build();
        assert_eq!(claim(&d, &theirs, true), Claim::Ignore);
        // Being deleted: no release.
        let mut deleting = d.clone();
        deleting.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::UNIX_EPOCH),
        );
        assert_eq!(claim(&deleting, &mine, false), Claim::Ignore);
        assert_eq!(claim(&deleting, &mine, true), Claim::Owned);
    }

    #[test]
    fn r109_orphans_adopted_unless_terminating_or_other_namespace() {
        let d = ds("x");
        let orphan = pod_on("a", "n1", "h", 1).build();
        assert_eq!(claim(&d, &orphan, true), Claim::Adopt);
        assert_eq!(claim(&d, &orphan, false), Claim::Ignore);
        let dying = pod_on("a", "n1", "h", 1).terminating().build();
        assert_eq!(claim(&d, &dying, true), Claim::Ignore);
        let mut elsewhere = orphan.clone();
        elsewhere.namespace = "other".into();
        assert_eq!(claim(&d, &elsewhere, true), Claim::Ignore);
    }

    #[test]
    fn r114_only_controller_ref_owner_acts() {
        let d = ds("x");
        let other = ds("y");
        let pod = pod_on("a", "n1", "h", 1).owned_by(&d).build();
        assert_eq!(claim(&other, &pod, true), Claim::Ignore);
    }

    #[test]
    fn r110_adopted_pods_pruned_like_any() {
        // Claimed (adopted) pods enter the same per-node pass: extras pruned.
        let p = plan(
            &ds("x"),
            &[("n1", RUN)],
            &[
                pod_on("mine", "n1", "new", 1).created(1).build(),
                pod_on("adopted", "n1", "old", 0).created(2).build(),
            ],
        );
        assert_eq!(p.pods_to_delete, vec!["adopted"]);
    }
}
