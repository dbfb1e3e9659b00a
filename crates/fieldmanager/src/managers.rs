//! `metadata.managedFields` on every write: a port of k8s.io/apiserver's field manager chain
//! (`k8s.io/apimachinery/pkg/util/managedfields/internal`): managedFieldsUpdater (timestamps,
//! the writer's entry merged with its previous one), stripMeta (identity metadata never
//! owned), buildManagerInfo (entries per manager, operation, version and subresource),
//! capManagers (at most ten Update entries; older ones merged into `ancient-changes`),
//! skipNonApplied (`before-first-apply`), lastAppliedUpdater and lastAppliedManager (the
//! client-side apply annotation kept in step with kubectl's server-side applies, and its
//! fields not a conflict when kubectl upgrades from client-side apply), and the
//! encoding with upstream's entry order.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::encode;
use crate::path::{Path, PathElement};
use crate::typed;
use crate::updater::{Conflict, ManagedSets, UpdateError, Updater, VersionedSet};

/// kubectl's client-side apply annotation.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The manager existing fields go to on an object's first apply.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";
/// The manager the oldest Update entries are merged into past the cap.
pub const ANCIENT_CHANGES: &str = "ancient-changes";
/// Upstream's `DefaultMaxUpdateManagers`.
pub const MAX_UPDATE_MANAGERS: usize = 10;
/// The manager whose conflicts the client-side apply annotation may excuse.
const KUBECTL: &str = "kubectl";

/// What was written and by whom.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    /// The manager (the `fieldManager` option, else the User-Agent's prefix).
    pub manager: &'a str,
    /// The object's group version (`apps/v1`).
    pub api_version: &'a str,
    /// `status`, `scale`..., or `None` for the resource itself.
    pub subresource: Option<&'a str>,
    /// The write's time, RFC 3339 in seconds (`2026-12-07T09:40:00Z`).
    pub now: &'a str,
}

/// Why an apply is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields other managers own would change: upstream's 409.
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The configuration cannot be typed (upstream's "failed to create typed patch object").
    #[error("{0}")]
    Invalid(String),
}

/// Upstream's apply conflict message (`getConflictMessage`).
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            print_manager(&only.manager),
            only.path
        );
    }
    let mut by_manager: BTreeMap<&str, Vec<&Path>> = BTreeMap::new();
    for c in conflicts {
        by_manager.entry(&c.manager).or_default().push(&c.path);
    }
    let mut lines = Vec::new();
    for (manager, paths) in by_manager {
        lines.push(format!("conflicts with {}:", print_manager(manager)));
        lines.extend(paths.iter().map(|p| format!("- {p}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

/// A manager identifier as a person reads it (upstream's `printManager`).
pub fn print_manager(identifier: &str) -> String {
    let Ok(Value::Object(entry)) = serde_json::from_str::<Value>(identifier) else {
        return Value::String(identifier.into()).to_string();
    };
    let text = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or("");
    let mut out = Value::String(text("manager").into()).to_string();
    if !text("subresource").is_empty() {
        out = format!(
            "{out} with subresource {}",
            Value::String(text("subresource").into())
        );
    }
    if text("operation") == "Update" {
        out = format!("{out} using {}", text("apiVersion"));
    }
    out
}

/// The identifier of an entry (upstream's `BuildManagerIdentifier`): its manager, operation,
/// API version (Update only) and subresource, as JSON.
fn identifier(
    manager: &str,
    applied: bool,
    api_version: &str,
    subresource: Option<&str>,
) -> String {
    let mut m = Map::new();
    m.insert("manager".into(), json!(manager));
    m.insert(
        "operation".into(),
        json!(if applied { "Apply" } else { "Update" }),
    );
    if !applied && !api_version.is_empty() {
        m.insert("apiVersion".into(), json!(api_version));
    }
    if let Some(s) = subresource.filter(|s| !s.is_empty()) {
        m.insert("subresource".into(), json!(s));
    }
    Value::Object(m).to_string()
}

/// An object's managers and their times (upstream's `Managed`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Managed {
    pub sets: ManagedSets,
    pub times: BTreeMap<String, Option<String>>,
}

impl Managed {
    /// Reads `metadata.managedFields` (upstream's `DecodeManagedFields`). An entry that is not
    /// upstream's shape is an error; an absent member is no managers.
    pub fn decode(object: &Value) -> Result<Managed, String> {
        let mut managed = Managed::default();
        let Some(entries) = object.pointer("/metadata/managedFields") else {
            return Ok(managed);
        };
        let entries = match entries {
            Value::Null => return Ok(managed),
            Value::Array(entries) => entries,
            _ => return Err("managedFields is not a list".into()),
        };
        for entry in entries {
            let text = |k: &str| entry.get(k).and_then(Value::as_str).unwrap_or("");
            let applied = match text("operation") {
                "Apply" => true,
                "Update" => false,
                other => return Err(format!("unknown operation {other:?}")),
            };
            if text("fieldsType") != "FieldsV1" {
                return Err(format!("unknown fieldsType {:?}", text("fieldsType")));
            }
            let set = encode::from_fields_v1(entry.get("fieldsV1").unwrap_or(&Value::Null))
                .map_err(|e| e.to_string())?;
            let subresource = Some(text("subresource"));
            let id = identifier(text("manager"), applied, text("apiVersion"), subresource);
            if managed.sets.contains_key(&id) {
                return Err(format!("found duplicate manager: {id}"));
            }
            managed.times.insert(
                id.clone(),
                entry
                    .get("time")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            );
            managed.sets.insert(
                id,
                VersionedSet {
                    set,
                    api_version: text("apiVersion").to_string(),
                    applied,
                },
            );
        }
        Ok(managed)
    }

    /// The entries, in upstream's order: Apply before Update, then by time, manager, version
    /// and subresource.
    pub fn encode(&self) -> Vec<Value> {
        struct Row<'a> {
            manager: String,
            applied: bool,
            api_version: &'a str,
            time: Option<&'a str>,
            subresource: String,
            set: &'a VersionedSet,
        }
        let mut rows: Vec<Row<'_>> = self
            .sets
            .iter()
            .map(|(id, vs)| {
                let parsed: Value = serde_json::from_str(id).unwrap_or(Value::Null);
                let text = |k: &str| {
                    parsed
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string()
                };
                Row {
                    manager: text("manager"),
                    applied: vs.applied,
                    api_version: &vs.api_version,
                    time: self.times.get(id).and_then(|t| t.as_deref()),
                    subresource: text("subresource"),
                    set: vs,
                }
            })
            .collect();
        rows.sort_by(|a, b| {
            b.applied
                .cmp(&a.applied)
                .then_with(|| a.time.unwrap_or("").cmp(b.time.unwrap_or("")))
                .then_with(|| a.manager.cmp(&b.manager))
                .then_with(|| a.api_version.cmp(b.api_version))
                .then_with(|| a.subresource.cmp(&b.subresource))
        });
        rows.into_iter()
            .map(|r| {
                let mut e = Map::new();
                e.insert("manager".into(), json!(r.manager));
                e.insert(
                    "operation".into(),
                    json!(if r.applied { "Apply" } else { "Update" }),
                );
                e.insert("apiVersion".into(), json!(r.api_version));
                if let Some(t) = r.time {
                    e.insert("time".into(), json!(t));
                }
                e.insert("fieldsType".into(), json!("FieldsV1"));
                e.insert("fieldsV1".into(), encode::to_fields_v1(&r.set.set));
                if !r.subresource.is_empty() {
                    e.insert("subresource".into(), json!(r.subresource));
                }
                Value::Object(e)
            })
            .collect()
    }

    /// Writes the entries into `object` (none: the member goes, as Go's `omitempty`).
    pub fn write_into(&self, object: &mut Value) {
        let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        if self.sets.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".into(), Value::Array(self.encode()));
        }
    }

    /// Upstream's capManagersManager: past `MAX_UPDATE_MANAGERS` Update entries, the oldest are
    /// merged, per version, into an `ancient-changes` entry.
    fn cap(&mut self) {
        let mut updaters: Vec<String> = self
            .sets
            .iter()
            .filter(|(_, vs)| !vs.applied)
            .map(|(id, _)| id.clone())
            .collect();
        if updaters.len() <= MAX_UPDATE_MANAGERS {
            return;
        }
        let time = |id: &String| self.times.get(id).cloned().flatten().unwrap_or_default();
        updaters.sort_by(|a, b| time(a).cmp(&time(b)).then_with(|| a.cmp(b)));
        let mut first_of_version: BTreeMap<String, String> = BTreeMap::new();
        let mut length = updaters.len();
        for id in updaters {
            if length <= MAX_UPDATE_MANAGERS {
                break;
            }
            let Some(vs) = self.sets.get(&id).cloned() else {
                continue;
            };
            let when = self.times.get(&id).cloned().flatten();
            let bucket = identifier(ANCIENT_CHANGES, false, &vs.api_version, None);
            match first_of_version.get(&vs.api_version) {
                Some(first) => {
                    if !self.sets.contains_key(&bucket)
                        && let Some(s) = self.sets.remove(first)
                    {
                        self.times.remove(first);
                        self.sets.insert(bucket.clone(), s);
                    }
                    if let Some(b) = self.sets.get_mut(&bucket) {
                        b.set = vs.set.union(&b.set);
                    }
                    self.sets.remove(&id);
                    self.times.remove(&id);
                    length -= 1;
                    self.times.insert(bucket, when);
                }
                None => {
                    first_of_version.insert(vs.api_version.clone(), id);
                }
            }
        }
    }
}

/// Fields of identity metadata no manager owns (upstream's stripMetaManager).
fn strip_meta(set: &crate::set::Set) -> crate::set::Set {
    static STRIP: std::sync::LazyLock<crate::set::Set> = std::sync::LazyLock::new(strip_set);
    set.difference(&STRIP)
}

fn strip_set() -> crate::set::Set {
    let f = |n: &str| PathElement::Field(n.to_string());
    let meta = |n: &str| vec![f("metadata"), f(n)];
    crate::set::Set::of(&[
        &[f("apiVersion")],
        &[f("kind")],
        &[f("metadata")],
        &meta("name"),
        &meta("namespace"),
        &meta("creationTimestamp"),
        &meta("selfLink"),
        &meta("uid"),
        &meta("clusterName"),
        &meta("generation"),
        &meta("managedFields"),
        &meta("resourceVersion"),
    ])
}

/// The object without `metadata.managedFields`.
fn without_managed_fields(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(meta) = copy.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    copy
}

/// The object a create starts from: Go's new object of the kind, whose struct-valued fields
/// (`metadata`, `spec`, `status`, a template's `metadata` and `spec`, `updateStrategy`) exist
/// empty and a pod spec's `containers` null, so that only maps and pointers the write fills are added as a whole (`.`).
pub fn empty_like(object: &Value) -> Value {
    let mut empty = Map::new();
    for member in ["metadata", "spec", "status"] {
        if object.get(member).is_some_and(Value::is_object) {
            empty.insert(member.into(), json!({}));
        }
    }
    if let Some(spec) = object.get("spec") {
        let mut s = Map::new();
        // PodSpec.containers has no omitempty: Go writes `null` for a new pod's.
        if spec.get("containers").is_some() {
            s.insert("containers".into(), Value::Null);
        }
        if spec.get("template").is_some_and(Value::is_object) {
            s.insert(
                "template".into(),
                json!({"metadata": {}, "spec": {"containers": null}}),
            );
        }
        if spec.get("updateStrategy").is_some_and(Value::is_object) {
            s.insert("updateStrategy".into(), json!({}));
        }
        if !s.is_empty() {
            empty.insert("spec".into(), Value::Object(s));
        }
    }
    Value::Object(empty)
}

/// The field manager of one endpoint (a kind, or its subresource).
#[derive(Debug, Clone)]
pub struct FieldManager {
    pub updater: Updater,
}

impl FieldManager {
    pub fn new(updater: Updater) -> FieldManager {
        FieldManager { updater }
    }

    /// managedFields for a create, update or patch (upstream's `FieldManager.UpdateNoErrors`):
    /// `new` holds the request's managedFields, which replace the stored ones when the client
    /// set any (on the resource itself); they are recomputed and written into `new`. `old` is
    /// `None` for a create.
    pub fn update(&self, old: Option<&Value>, new: &mut Value, write: &Write<'_>) {
        // A create the client sent no managedFields with: by shape, from the memo.
        let created = match old {
            None if new.pointer("/metadata/managedFields").is_none() => {
                crate::created::shape(&self.updater, write, new)
            }
            _ => None,
        };
        if let Some(shape) = &created
            && let Some(entries) = crate::created::get(shape, write.now)
            && let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.insert("managedFields".into(), entries);
            return;
        }
        self.update_uncached(old, new, write);
        if let Some(shape) = created
            && let Some(entries) = new.pointer("/metadata/managedFields")
        {
            crate::created::put(shape, entries);
        }
    }

    pub(crate) fn update_uncached(&self, old: Option<&Value>, new: &mut Value, write: &Write<'_>) {
        let requested = Managed::decode(new).ok().filter(|m| !m.sets.is_empty());
        let managed = match (requested, write.subresource) {
            (Some(m), None) => Some(m),
            _ => match old {
                Some(old) => Managed::decode(old).ok(),
                None => Some(Managed::default()),
            },
        };
        let result = managed.and_then(|managed| self.update_managed(old, new, managed, write));
        match result {
            Some(managed) => managed.write_into(new),
            // As UpdateNoErrors: garbage never stays.
            None => Managed::default().write_into(new),
        }
    }

    fn update_managed(
        &self,
        old: Option<&Value>,
        new: &Value,
        mut managed: Managed,
        write: &Write<'_>,
    ) -> Option<Managed> {
        // skipNonApplied: an existing object nobody tracks stays untracked until applied.
        if managed.sets.is_empty() && old.is_some() {
            return Some(managed);
        }
        // Compare skips managedFields, so the objects are compared as they are.
        let empty;
        let old_plain = match old {
            Some(old) => old,
            None => {
                empty = empty_like(new);
                &empty
            }
        };
        let id = identifier(write.manager, false, write.api_version, write.subresource);
        // managedFieldsUpdater: the write's own changes under a temporary name, merged with
        // the manager's previous entry; the time moves only when it took something.
        const CURRENT: &str = "current-operation";
        self.updater
            .update(
                Some(old_plain),
                new,
                write.api_version,
                &mut managed.sets,
                CURRENT,
            )
            .ok()?;
        if let Some(current) = managed.sets.remove(CURRENT) {
            let set = strip_meta(&current.set);
            if !set.is_empty() {
                let merged = match managed.sets.remove(&id) {
                    Some(previous) => set.union(&previous.set),
                    None => set,
                };
                managed.sets.insert(
                    id.clone(),
                    VersionedSet {
                        set: merged,
                        api_version: write.api_version.to_string(),
                        applied: false,
                    },
                );
                managed.times.insert(id, Some(write.now.to_string()));
            }
        }
        managed.times.retain(|id, _| managed.sets.contains_key(id));
        managed.cap();
        Some(managed)
    }

    /// A server-side apply of `config` by `write.manager` to `live` (`None`: the apply
    /// creates the object). The object to store, with its managedFields.
    pub fn apply(
        &self,
        live: Option<&Value>,
        config: &Value,
        write: &Write<'_>,
        force: bool,
    ) -> Result<Value, ApplyError> {
        if config
            .pointer("/metadata/managedFields")
            .is_some_and(|v| !v.is_null())
        {
            return Err(ApplyError::Invalid(
                "metadata.managedFields must be nil".into(),
            ));
        }
        let (live_plain, mut managed) = match live {
            Some(live) => (
                without_managed_fields(live),
                Managed::decode(live).unwrap_or_default(),
            ),
            None => (empty_like(config), Managed::default()),
        };
        // skipNonApplied: the first apply to an object gives its fields to before-first-apply.
        if managed.sets.is_empty() && live.is_some() {
            let empty = empty_like(&live_plain);
            let mut sets = ManagedSets::new();
            let _ = self.updater.update(
                Some(&empty),
                &live_plain,
                write.api_version,
                &mut sets,
                BEFORE_FIRST_APPLY,
            );
            if let Some(vs) = sets.remove(BEFORE_FIRST_APPLY) {
                let set = strip_meta(&vs.set);
                if !set.is_empty() {
                    let id = identifier(BEFORE_FIRST_APPLY, false, write.api_version, None);
                    managed
                        .times
                        .insert(id.clone(), Some(write.now.to_string()));
                    managed.sets.insert(
                        id,
                        VersionedSet {
                            set,
                            api_version: write.api_version.to_string(),
                            applied: false,
                        },
                    );
                }
            }
        }
        let id = identifier(write.manager, true, write.api_version, None);
        let attempt = |force: bool| {
            let mut sets = managed.sets.clone();
            self.updater
                .apply(
                    &live_plain,
                    config,
                    write.api_version,
                    &mut sets,
                    &id,
                    force,
                )
                .map(|object| (object, sets))
        };
        let (mut object, sets) = match attempt(force) {
            Ok(done) => done,
            Err(UpdateError::Type(e)) => return Err(ApplyError::Invalid(e.to_string())),
            Err(UpdateError::Conflicts(conflicts)) => {
                // lastAppliedManager: kubectl moving from client-side apply may take the
                // fields its last client-side apply set.
                let allowed = (write.manager == KUBECTL)
                    .then(|| last_applied_fields(&self.updater, &live_plain))
                    .flatten();
                let Some(allowed) = allowed else {
                    return Err(ApplyError::Conflicts(conflicts));
                };
                let rest: Vec<Conflict> = conflicts
                    .into_iter()
                    .filter(|c| !allowed.has(&c.path.0))
                    .collect();
                if !rest.is_empty() {
                    return Err(ApplyError::Conflicts(rest));
                }
                attempt(true).map_err(|e| ApplyError::Invalid(e.to_string()))?
            }
        };
        managed.sets = sets;
        if let Some(vs) = managed.sets.get_mut(&id) {
            vs.set = strip_meta(&vs.set);
            if vs.set.is_empty() {
                managed.sets.remove(&id);
            }
        }
        if object != live_plain || live.is_none() {
            managed.times.insert(id, Some(write.now.to_string()));
        }
        // lastAppliedUpdater: kubectl's server-side apply keeps an existing client-side apply
        // annotation in step.
        if write.manager == KUBECTL && live_plain.pointer(&last_applied_pointer()).is_some() {
            let mut applied = config.clone();
            if let Some(annotations) = applied
                .pointer_mut("/metadata/annotations")
                .and_then(Value::as_object_mut)
            {
                annotations.remove(LAST_APPLIED);
                if annotations.is_empty()
                    && let Some(meta) = applied.get_mut("metadata").and_then(Value::as_object_mut)
                {
                    meta.remove("annotations");
                }
            }
            if let Some(annotations) = object
                .pointer_mut("/metadata/annotations")
                .and_then(Value::as_object_mut)
            {
                annotations.insert(LAST_APPLIED.into(), json!(applied.to_string()));
            }
        }
        managed.times.retain(|id, _| managed.sets.contains_key(id));
        managed.cap();
        managed.write_into(&mut object);
        Ok(object)
    }
}

fn last_applied_pointer() -> String {
    format!("/metadata/annotations/{}", LAST_APPLIED.replace('/', "~1"))
}

/// The fields of the client-side apply annotation of `live`, if it has one.
fn last_applied_fields(updater: &Updater, live: &Value) -> Option<crate::set::Set> {
    let text = live.pointer(&last_applied_pointer())?.as_str()?;
    let last: Value = serde_json::from_str(text).ok()?;
    typed::to_field_set(updater.schema, &last).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::set::Set;

    fn manager() -> FieldManager {
        FieldManager::new(Updater::new(crate::Schema::BuiltIn, Set::new()))
    }

    fn write<'a>(manager: &'a str, now: &'a str) -> Write<'a> {
        Write {
            manager,
            api_version: "apps/v1",
            subresource: None,
            now,
        }
    }

    fn ds(image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "nginx", "image": image}]}
                }
            }
        })
    }

    #[test]
    fn a_create_records_an_update_entry_as_upstream_encodes_it() {
        let mut obj = ds("nginx:1");
        manager().update(
            None,
            &mut obj,
            &write("kubectl-create", "2026-01-01T00:00:00Z"),
        );
        assert_eq!(
            obj["metadata"]["managedFields"],
            json!([{
                "manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1",
                "time": "2026-01-01T00:00:00Z", "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {"f:selector": {}, "f:template": {
                        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                        "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                            ".": {}, "f:image": {}, "f:name": {}}}}}}
                }
            }])
        );
    }

    #[test]
    fn set_image_then_apply_conflicts_with_upstreams_message_and_force_takes_the_field() {
        let fm = manager();
        let mut live = ds("nginx:1");
        fm.update(None, &mut live, &write("kubectl-client-side-apply", "t1"));
        let mut set = live.clone();
        set["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        fm.update(Some(&live), &mut set, &write("kubectl-set", "t2"));
        let config = ds("nginx:3");
        let err = fm
            .apply(Some(&set), &config, &write("kubectl", "t3"), false)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"Apply failed with 1 conflict: conflict with "kubectl-set" using apps/v1: .spec.template.spec.containers[name="nginx"].image"#
        );
        let forced = fm
            .apply(Some(&set), &config, &write("kubectl", "t3"), true)
            .unwrap();
        let managers: Vec<&str> = forced["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        // kubectl-set owned only the image, which changed hands.
        assert_eq!(managers, ["kubectl", "kubectl-client-side-apply"]);
        assert_eq!(
            forced["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:3"
        );
    }

    #[test]
    fn the_first_apply_to_an_untracked_object_gives_its_fields_to_before_first_apply() {
        let live = ds("nginx:1");
        let out = manager()
            .apply(Some(&live), &ds("nginx:1"), &write("mgr", "t"), false)
            .unwrap();
        let entries = out["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries[0]["manager"], "mgr");
        assert_eq!(entries[0]["operation"], "Apply");
        assert_eq!(entries[1]["manager"], BEFORE_FIRST_APPLY);
        assert_eq!(entries[1]["operation"], "Update");
    }

    #[test]
    fn kubectl_may_take_the_fields_of_its_client_side_apply() {
        let fm = manager();
        let mut live = ds("nginx:1");
        live["metadata"]["annotations"] = json!({LAST_APPLIED: ds("nginx:1").to_string()});
        fm.update(None, &mut live, &write("kubectl-client-side-apply", "t1"));
        // Another manager's field conflicts unless in the annotation; the annotation's fields
        // go to kubectl, and the annotation follows the applied configuration.
        let out = fm
            .apply(Some(&live), &ds("nginx:2"), &write("kubectl", "t2"), false)
            .unwrap();
        let annotation: Value = serde_json::from_str(
            out["metadata"]["annotations"][LAST_APPLIED]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(annotation, ds("nginx:2"));
        // Another manager name gets the conflict.
        assert!(matches!(
            fm.apply(Some(&live), &ds("nginx:2"), &write("other", "t2"), false),
            Err(ApplyError::Conflicts(_))
        ));
    }

    #[test]
    fn dropping_a_field_from_the_configuration_removes_it() {
        let fm = manager();
        let mut config = ds("nginx:1");
        config["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["-v"]);
        config["metadata"]["labels"]["tier"] = json!("web");
        let live = fm
            .apply(None, &config, &write("kubectl", "t1"), false)
            .unwrap();
        let out = fm
            .apply(Some(&live), &ds("nginx:1"), &write("kubectl", "t2"), false)
            .unwrap();
        assert!(
            out["spec"]["template"]["spec"]["containers"][0]
                .get("args")
                .is_none()
        );
        assert!(out["metadata"]["labels"].get("tier").is_none());
    }

    #[test]
    fn update_entries_past_ten_are_merged_into_ancient_changes() {
        let fm = manager();
        let mut live =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}});
        fm.update(None, &mut live, &write("m0", "2026-01-01T00:00:00Z"));
        for i in 0..12 {
            let mut next = live.clone();
            next["data"][format!("k{i}")] = json!("v");
            let now = format!("2026-01-01T00:00:{:02}Z", i + 1);
            fm.update(Some(&live), &mut next, &write(&format!("m{i}"), &now));
            live = next;
        }
        let entries = live["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), MAX_UPDATE_MANAGERS);
        assert_eq!(entries[0]["manager"], ANCIENT_CHANGES);
    }

    #[test]
    fn managed_fields_sent_with_an_update_replace_the_stored_ones() {
        let fm = manager();
        let mut live = ds("nginx:1");
        fm.update(None, &mut live, &write("a", "t1"));
        // `[{}]`-like reset: a client's own entries stand for the stored ones.
        let mut next = live.clone();
        next["metadata"]["managedFields"] = json!([{"manager": "x", "operation": "Update",
            "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:selector": {}}}}]);
        fm.update(Some(&live), &mut next, &write("a", "t2"));
        let entries = next["metadata"]["managedFields"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["manager"], "x");
        // An untracked object stays untracked under updates.
        let mut bare = ds("nginx:1");
        let mut changed = bare.clone();
        changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
        fm.update(Some(&bare), &mut changed, &write("a", "t3"));
        assert!(changed["metadata"].get("managedFields").is_none());
        bare["metadata"]["managedFields"] = json!("garbage");
        fm.update(Some(&bare), &mut bare.clone(), &write("a", "t3"));
    }
}
