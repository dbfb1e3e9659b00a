//! CustomResourceDefinitions (apiextensions.k8s.io/v1) and the custom resources they define.
//!
//! - [`validation`]: the CRD's own strategy and validation (names, group, versions, scope,
//!   printer columns, scale paths, structural schemas), a 422 with upstream's field errors.
//! - [`Controller`]: upstream's naming, establishing and finalizing controllers in one loop
//!   over the store's `customresourcedefinitions/` prefix (from startup, so CRDs stored
//!   earlier are served again): it sets `status.acceptedNames` and the `NamesAccepted` and
//!   `Established` conditions, keeps the server's [`Catalog`] serving exactly the served
//!   versions of established CRDs, and on deletion removes the CRD's objects before lifting
//!   its `customresourcecleanup.apiextensions.k8s.io` finalizer. A write of a CRD returns
//!   once the controller has seen it ([`Controller::wait_observed`]), so a CRD is served by
//!   the time its create returns.
//! - [`objects`]: admission of custom objects: metadata typed as ObjectMeta, [`schema`]'s
//!   pruning, defaulting and validation against the version's `openAPIV3Schema`.
//! - [`scale`]: the scale subresource at the paths the CRD names.
//! - [`printing`]: Tables with the version's `additionalPrinterColumns`.
//!
//! Custom objects are stored under `{plural}.{group}/` (see `target::object_key`), which no
//! built-in plural can collide with (built-in plurals have no dot).

pub mod conversion;
pub mod formats;
pub mod objects;
pub mod printing;
pub mod scale;
pub mod schema;
pub mod validation;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use pernode_resources::{
    Catalog, CustomDefinition, CustomInfo, PrinterColumn, ResourceInfo, ScalePaths,
};
use pernode_store::{Store, StoreError};
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::registry::now_rfc3339;

/// Where CRDs are stored.
pub const PREFIX: &str = "customresourcedefinitions/";

/// The finalizer that holds a deleted CRD until its objects are gone.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// How long a CRD write waits for the controller before answering anyway.
const OBSERVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Keeps CRDs' status and the served set current (see the module doc).
pub struct Controller {
    catalog: Arc<Catalog>,
    observed: watch::Sender<u64>,
    /// CRDs being deleted whose objects are not all gone yet (some hold finalizers): each is
    /// reconciled again every [`CLEANUP_RETRY`] until they are, as upstream's finalizing
    /// controller requeues.
    retrying: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// How often a terminating CRD with objects left is looked at again.
const CLEANUP_RETRY: Duration = Duration::from_secs(1);

impl Controller {
    pub fn new(catalog: Arc<Catalog>) -> Arc<Controller> {
        Arc::new(Controller {
            catalog,
            observed: watch::channel(0).0,
            retrying: Default::default(),
        })
    }

    /// Reconciles every stored CRD and serves the established ones, then follows the store
    /// in a task until `shutdown` flips (or its sender goes).
    pub async fn start(self: &Arc<Self>, store: Store, mut shutdown: watch::Receiver<bool>) {
        let mut from = self.sync_all(&store).await;
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let mut watcher = match store.watch(PREFIX, from) {
                    Ok(w) => w,
                    Err(_) => {
                        from = this.sync_all(&store).await;
                        continue;
                    }
                };
                loop {
                    tokio::select! {
                        event = watcher.next() => match event {
                            Some(Ok(event)) => {
                                if this.reconcile(&store, &event.entry.key).await {
                                    this.retry_cleanup(&store, &event.entry.key);
                                }
                                this.serve_established(&store);
                                from = event.entry.rv;
                                this.observed.send_replace(from);
                            }
                            Some(Err(_)) => {
                                from = this.sync_all(&store).await;
                                break;
                            }
                            None => return,
                        },
                        changed = shutdown.changed() => {
                            if changed.is_err() || *shutdown.borrow() {
                                return;
                            }
                        }
                    }
                }
            }
        });
    }

    /// Waits until the controller has handled the store's changes up to `rv` (a CRD write's
    /// version), at most [`OBSERVE_TIMEOUT`].
    pub async fn wait_observed(&self, rv: u64) {
        let mut rx = self.observed.subscribe();
        let _ = tokio::time::timeout(OBSERVE_TIMEOUT, rx.wait_for(|seen| *seen >= rv)).await;
    }

    async fn sync_all(self: &Arc<Self>, store: &Store) -> u64 {
        let (rv, entries) = store.list(PREFIX, |_| true);
        for entry in &entries {
            if self.reconcile(store, &entry.key).await {
                self.retry_cleanup(store, &entry.key);
            }
        }
        self.serve_established(store);
        let rv = rv.max(store.current_rv());
        self.observed.send_replace(rv);
        rv
    }

    /// Serves the served versions of every established CRD, and nothing else.
    fn serve_established(&self, store: &Store) {
        let (_, entries) = store.list(PREFIX, |_| true);
        let mut served = Vec::new();
        for entry in entries {
            let Ok(crd) = serde_json::from_slice::<CustomResourceDefinition>(&entry.json) else {
                continue;
            };
            if !condition_true(&crd, "Established") {
                continue;
            }
            served.extend(definitions(&crd).into_iter().map(pernode_resources::intern));
        }
        if self.catalog.set_custom(served) {
            tracing::debug!("served custom resources changed");
        }
    }

    /// Brings one CRD's status (or its deletion) to what the controllers would make it.
    /// Returns whether its deletion waits on objects that are not gone yet.
    async fn reconcile(&self, store: &Store, key: &str) -> bool {
        for _ in 0..16 {
            let Some(entry) = store.get(key) else {
                return false;
            };
            let Ok(mut crd) = serde_json::from_slice::<Value>(&entry.json) else {
                return false;
            };
            if crd
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|v| !v.is_null())
            {
                return match self.finalize(store, &entry.key, crd, entry.rv).await {
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, key, "CRD cleanup failed");
                        true
                    }
                    Ok(pending) => pending,
                };
            }
            let before = crd.clone();
            establish(store, &mut crd);
            if crd == before {
                return false;
            }
            match store.update(key, crd, Some(entry.rv)).await {
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => tracing::warn!(error = %e, key, "CRD status write failed"),
                Ok(_) => {}
            }
            return false;
        }
        false
    }

    /// Looks at a terminating CRD again every [`CLEANUP_RETRY`] until its objects are gone
    /// (one retry task per CRD).
    fn retry_cleanup(self: &Arc<Self>, store: &Store, key: &str) {
        let Ok(mut retrying) = self.retrying.lock() else {
            return;
        };
        if !retrying.insert(key.to_string()) {
            return;
        }
        let (this, store, key) = (self.clone(), store.clone(), key.to_string());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(CLEANUP_RETRY).await;
                if !this.reconcile(&store, &key).await {
                    break;
                }
            }
            this.serve_established(&store);
            if let Ok(mut retrying) = this.retrying.lock() {
                retrying.remove(&key);
            }
        });
    }

    /// Upstream's finalizing controller: deletes every object of the CRD (an object holding
    /// finalizers is marked deleted and waited for, as a client's delete would), then lifts
    /// the cleanup finalizer (which deletes the CRD when it was the last). Returns whether
    /// objects are left.
    async fn finalize(
        &self,
        store: &Store,
        key: &str,
        mut crd: Value,
        rv: u64,
    ) -> Result<bool, StoreError> {
        let finalizers: Vec<String> = crd
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        if !finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
            return Ok(false);
        }
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or("");
        let plural = crd
            .pointer("/spec/names/plural")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut left = 0;
        if !plural.is_empty() {
            let prefix = format!("{plural}.{group}/");
            let (_, objects) = store.list(&prefix, |_| true);
            for object in objects {
                if delete_instance(store, &object).await? {
                    left += 1;
                }
            }
        }
        if left > 0 {
            let message =
                format!("could not confirm zero CustomResources remaining: {left} remaining");
            if crd.pointer("/status/conditions").is_some_and(|c| {
                c.as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Terminating" && c["message"] == json!(message))
                })
            }) {
                return Ok(true);
            }
            set_condition(
                &mut crd,
                "Terminating",
                "True",
                "InstanceDeletionCheck",
                &message,
            );
            return store.update(key, crd, Some(rv)).await.map(|_| true);
        }
        let rest: Vec<String> = finalizers
            .into_iter()
            .filter(|f| f != CLEANUP_FINALIZER)
            .collect();
        if rest.is_empty() {
            return store.delete(key, Some(rv)).await.map(|_| false);
        }
        crd["metadata"]["finalizers"] = json!(rest);
        set_condition(
            &mut crd,
            "Terminating",
            "True",
            "InstanceDeletionCompleted",
            "removed all instances",
        );
        store.update(key, crd, Some(rv)).await.map(|_| false)
    }
}

/// Deletes one custom object as a client's delete does: at once without finalizers, else
/// marked (`deletionTimestamp`) and left to them. Returns whether it is still there.
async fn delete_instance(store: &Store, object: &pernode_store::Entry) -> Result<bool, StoreError> {
    let Ok(mut obj) = serde_json::from_slice::<Value>(&object.json) else {
        return Ok(true);
    };
    let held = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    if !held {
        return match store.delete(&object.key, Some(object.rv)).await {
            Ok(_) | Err(StoreError::NotFound) => Ok(false),
            Err(StoreError::Conflict { .. }) => Ok(true),
            Err(e) => Err(e),
        };
    }
    if obj
        .pointer("/metadata/deletionTimestamp")
        .is_none_or(Value::is_null)
    {
        obj["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
        obj["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        match store.update(&object.key, obj, Some(object.rv)).await {
            Ok(_) | Err(StoreError::Conflict { .. }) | Err(StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Marks a CRD for deletion as upstream's CRD REST `Delete` does before it deletes: sets the
/// deletion timestamp, the cleanup finalizer and the `Terminating` condition. Returns the
/// object as stored; the controller does the rest.
pub async fn mark_for_deletion(
    store: &Store,
    key: &str,
    precondition_uid: Option<&str>,
    precondition_rv: Option<&str>,
) -> Result<pernode_store::Entry, ApiError> {
    let name = key.rsplit('/').next().unwrap_or("");
    loop {
        let entry = store.get(key).ok_or_else(|| {
            ApiError::not_found(
                pernode_resources::APIEXTENSIONS,
                "customresourcedefinitions",
                name,
            )
        })?;
        let mut crd: Value = serde_json::from_slice(&entry.json)
            .map_err(|e| ApiError::internal(format!("stored object is not JSON: {e}")))?;
        let uid = crd
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("");
        if let Some(want) = precondition_uid
            && want != uid
        {
            return Err(ApiError::conflict(
                pernode_resources::APIEXTENSIONS,
                "customresourcedefinitions",
                name,
                &format!(
                    "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
                ),
            ));
        }
        // The resourceVersion precondition too (it was not checked: a stale one deleted).
        if let Some(want) = precondition_rv
            && want != entry.rv.to_string()
        {
            return Err(ApiError::conflict(
                pernode_resources::APIEXTENSIONS,
                "customresourcedefinitions",
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {}",
                    entry.rv
                ),
            ));
        }
        if crd
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null())
        {
            return Ok(entry);
        }
        crd["metadata"]["deletionTimestamp"] = json!(now_rfc3339());
        crd["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        let mut finalizers = crd
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !finalizers.iter().any(|f| f == CLEANUP_FINALIZER) {
            finalizers.push(json!(CLEANUP_FINALIZER));
        }
        crd["metadata"]["finalizers"] = Value::Array(finalizers);
        set_condition(
            &mut crd,
            "Terminating",
            "True",
            "InstanceDeletionPending",
            "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
        );
        match store.update(key, crd, Some(entry.rv)).await {
            Ok(entry) => return Ok(entry),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(ApiError::internal(e.to_string())),
        }
    }
}

fn condition_true(crd: &CustomResourceDefinition, ty: &str) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == ty && c.status == "True"))
}

/// Sets a condition, keeping its lastTransitionTime when its status does not change.
fn set_condition(crd: &mut Value, ty: &str, status: &str, reason: &str, message: &str) {
    if !crd.get("status").is_some_and(Value::is_object) {
        crd["status"] = json!({});
    }
    let conditions = crd["status"]
        .as_object_mut()
        .map(|s| s.entry("conditions").or_insert_with(|| json!([])));
    let Some(Value::Array(list)) = conditions else {
        return;
    };
    let existing = list.iter_mut().find(|c| c["type"] == ty);
    let mut condition = json!({
        "type": ty, "status": status, "reason": reason, "message": message,
        "lastTransitionTime": now_rfc3339(),
    });
    match existing {
        Some(c) => {
            if c["status"] == status {
                condition["lastTransitionTime"] = c["lastTransitionTime"].clone();
            }
            *c = condition;
        }
        None => list.push(condition),
    }
}

/// Upstream's naming and establishing controllers for one CRD: accepts its names unless
/// another CRD of the group holds one of them, then establishes it.
fn establish(store: &Store, crd: &mut Value) {
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let group = crd
        .pointer("/spec/group")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let names = crd
        .pointer("/spec/names")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let list = |v: &Value, k: &str| -> Vec<String> {
        v.get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let (_, others) = store.list(PREFIX, |_| true);
    let mut conflict: Option<(&str, String)> = None;
    for other in others {
        let Ok(other) = serde_json::from_slice::<Value>(&other.json) else {
            continue;
        };
        if text(&other["metadata"], "name") == name || text(&other["spec"], "group") != group {
            continue;
        }
        let accepted = other
            .pointer("/status/acceptedNames")
            .cloned()
            .unwrap_or_default();
        let plural = text(&names, "plural");
        let singular = text(&names, "singular");
        let kind = text(&names, "kind");
        let list_kind = text(&names, "listKind");
        let taken_resources = [text(&accepted, "plural"), text(&accepted, "singular")];
        let taken_short = list(&accepted, "shortNames");
        if !plural.is_empty() && taken_resources.contains(&plural) {
            conflict = Some(("PluralConflict", format!("{plural:?} is already in use")));
        } else if !singular.is_empty() && taken_resources.contains(&singular) {
            conflict = Some((
                "SingularConflict",
                format!("{singular:?} is already in use"),
            ));
        } else if let Some(short) = list(&names, "shortNames")
            .into_iter()
            .find(|s| taken_short.contains(s) || taken_resources.contains(s))
        {
            conflict = Some(("ShortNamesConflict", format!("{short:?} is already in use")));
        } else if !kind.is_empty() && text(&accepted, "kind") == kind {
            conflict = Some(("KindConflict", format!("{kind:?} is already in use")));
        } else if !list_kind.is_empty() && text(&accepted, "listKind") == list_kind {
            conflict = Some((
                "ListKindConflict",
                format!("{list_kind:?} is already in use"),
            ));
        }
        if conflict.is_some() {
            break;
        }
    }
    let established_before = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        });
    match conflict {
        Some((reason, message)) => {
            set_condition(crd, "NamesAccepted", "False", reason, &message);
            if !established_before {
                set_condition(
                    crd,
                    "Established",
                    "False",
                    "NotAccepted",
                    "not all names are accepted",
                );
            }
        }
        None => {
            if !crd.get("status").is_some_and(Value::is_object) {
                crd["status"] = json!({});
            }
            crd["status"]["acceptedNames"] = names;
            set_condition(
                crd,
                "NamesAccepted",
                "True",
                "NoConflicts",
                "no conflicts found",
            );
            if !established_before {
                set_condition(
                    crd,
                    "Established",
                    "True",
                    "InitialNamesAccepted",
                    "the initial names have been accepted",
                );
            }
        }
    }
}

/// The catalogue definitions of a CRD's served versions.
pub fn definitions(crd: &CustomResourceDefinition) -> Vec<CustomDefinition> {
    let spec = &crd.spec;
    let storage = spec
        .versions
        .iter()
        .find(|v| v.storage)
        .map(|v| v.name.clone())
        .unwrap_or_default();
    let names = crd
        .status
        .as_ref()
        .and_then(|s| s.accepted_names.as_ref())
        .filter(|n| !n.plural.is_empty())
        .unwrap_or(&spec.names);
    spec.versions
        .iter()
        .filter(|v| v.served)
        .map(|v| {
            let scale = v
                .subresources
                .as_ref()
                .and_then(|s| s.scale.as_ref())
                .map(|s| ScalePaths {
                    spec_replicas: s.spec_replicas_path.clone(),
                    status_replicas: s.status_replicas_path.clone(),
                    label_selector: s.label_selector_path.clone(),
                });
            CustomDefinition {
                group: spec.group.clone(),
                version: v.name.clone(),
                plural: names.plural.clone(),
                singular: names
                    .singular
                    .clone()
                    .unwrap_or_else(|| names.kind.to_lowercase()),
                kind: names.kind.clone(),
                namespaced: spec.scope == "Namespaced",
                short_names: names.short_names.clone().unwrap_or_default(),
                categories: names.categories.clone().unwrap_or_default(),
                info: CustomInfo {
                    api_version: format!("{}/{}", spec.group, v.name),
                    list_kind: names
                        .list_kind
                        .clone()
                        .unwrap_or_else(|| format!("{}List", names.kind)),
                    crd_name: crd.metadata.name.clone().unwrap_or_default(),
                    storage_version: storage.clone(),
                    schema: v
                        .schema
                        .as_ref()
                        .and_then(|s| s.open_api_v3_schema.as_ref())
                        .and_then(|s| serde_json::to_value(s).ok()),
                    printer_columns: v
                        .additional_printer_columns
                        .iter()
                        .flatten()
                        .map(|c| PrinterColumn {
                            name: c.name.clone(),
                            ty: c.type_.clone(),
                            format: c.format.clone().unwrap_or_default(),
                            description: c.description.clone().unwrap_or_default(),
                            priority: c.priority.unwrap_or(0),
                            json_path: c.json_path.clone(),
                        })
                        .collect(),
                    status: v.subresources.as_ref().is_some_and(|s| s.status.is_some()),
                    scale,
                    deprecation_warning: v.deprecated.filter(|d| *d).map(|_| {
                        v.deprecation_warning.clone().unwrap_or_else(|| {
                            format!("{}/{} {} is deprecated", spec.group, v.name, names.kind)
                        })
                    }),
                },
            }
        })
        .collect()
}

/// Whether `info` is the CRD resource itself.
pub fn is_crd(info: &ResourceInfo) -> bool {
    info.group == pernode_resources::APIEXTENSIONS && info.plural == "customresourcedefinitions"
}
