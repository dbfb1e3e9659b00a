//! Per-kind strategies, as upstream's pkg/registry: what the server sets on create, what an
//! update may change, which fields a selector can use, and the typed admission (defaulting and
//! validation) of each kind.

use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use pernode_admission::{FieldError, validate};
use pernode_resources::ResourceInfo;
use pernode_store::{Attrs, Indexer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::codec::unknown_fields;
use crate::error::{ApiError, Cause};
use crate::params::FieldValidation;

/// Now, as Kubernetes writes timestamps (RFC 3339, whole seconds, UTC).
pub fn now_rfc3339() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    let secs = k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    secs.to_string()
}

/// The store indexer: labels and the fields each kind supports in field selectors.
pub fn indexer() -> Indexer {
    Arc::new(|key: &str, obj: &Value| attrs_of(key.split('/').next().unwrap_or(""), obj))
}

fn attrs_of(plural: &str, obj: &Value) -> Attrs {
    let labels = obj
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())));
    let fields = supported_fields(plural).iter().map(|field| {
        let text = match (plural, *field) {
            // Upstream's event field set: `source` is the source's component, else the
            // reporting controller.
            ("events", "source") => {
                let component = field_text(obj, "source.component");
                match component.is_empty() {
                    true => field_text(obj, "reportingComponent"),
                    false => component,
                }
            }
            _ => field_text(obj, field),
        };
        (*field, text)
    });
    Attrs::new(labels, fields)
}

/// The text of the field at dotted `path` in `obj`, as indexed: `""` when missing or not a
/// scalar. Walks the path without building a JSON pointer: this runs on every write.
fn field_text(obj: &Value, path: &str) -> String {
    match path.split('.').try_fold(obj, |v, key| v.get(key)) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// The attributes of an object whose write replaced its `status` (now `status`) and nothing
/// else: `attrs` with the indexed status fields taken again.
pub fn attrs_with_status(plural: &str, attrs: &Attrs, status: Option<&Value>) -> Attrs {
    let fields = supported_fields(plural).iter().filter_map(|field| {
        let in_status = field.strip_prefix("status.")?;
        Some((
            *field,
            status.map(|s| field_text(s, in_status)).unwrap_or_default(),
        ))
    });
    attrs.with_fields(fields)
}

/// Fields usable in field selectors, per resource (upstream's field label conversion funcs).
pub fn supported_fields(plural: &str) -> &'static [&'static str] {
    crate::kinds::by_plural(plural).fields
}

/// Whether two versions of an object are the same apart from `metadata.resourceVersion` and
/// the top-level field `except`, if any (compared in place: this runs on every update).
pub fn same_object_except(a: &Value, b: &Value, except: Option<&str>) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let skipped = |k: &str| Some(k) == except;
    let len = |m: &serde_json::Map<String, Value>| {
        m.len() - usize::from(except.is_some_and(|e| m.contains_key(e)))
    };
    len(a) == len(b)
        && a.iter()
            .filter(|(k, _)| !skipped(k))
            .all(|(k, va)| match (b.get(k), k.as_str()) {
                (Some(vb), "metadata") => same_fields_except(va, vb, "resourceVersion"),
                (Some(vb), _) => va == vb,
                (None, _) => false,
            })
}

/// Two objects' fields compared but for one.
fn same_fields_except(a: &Value, b: &Value, except: &str) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let len = |m: &serde_json::Map<String, Value>| m.len() - usize::from(m.contains_key(except));
    len(a) == len(b)
        && a.iter()
            .filter(|(k, _)| *k != except)
            .all(|(k, va)| b.get(k) == Some(va))
}

/// Which write is being admitted.
pub enum Operation<'a> {
    Create,
    Update {
        old: &'a Value,
    },
    UpdateStatus {
        old: &'a Value,
    },
    /// A CertificateSigningRequest's `approval` subresource: its conditions alone.
    UpdateApproval {
        old: &'a Value,
    },
}

impl Operation<'_> {
    /// The stored object an update is computed against (`None` for a create).
    pub fn old(&self) -> Option<&Value> {
        match self {
            Operation::Create => None,
            Operation::Update { old }
            | Operation::UpdateStatus { old }
            | Operation::UpdateApproval { old } => Some(old),
        }
    }
}

/// Sets what the server owns on a new object: uid, creationTimestamp, generation, cleared
/// status, what the kind records of `user` (the requester); drops what a client may not set.
pub fn prepare_create(
    info: &ResourceInfo,
    obj: &mut Value,
    user: &pernode_auth::user::UserInfo,
) -> Result<(), ApiError> {
    let meta = obj
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| ApiError::bad_request("metadata is required"))?;
    for field in [
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "managedFields",
        "selfLink",
    ] {
        meta.remove(field);
    }
    meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
    meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
    let kind = crate::kinds::of(info);
    (kind.on_create)(obj)?;
    (kind.on_create_by)(obj, user);
    Ok(())
}

/// Carries over what an update may not change, per upstream's PrepareForUpdate: identity and
/// creation metadata always; status on main-resource writes; everything but status on
/// `/status` writes; generation bumps on spec changes.
pub fn prepare_update(
    info: &ResourceInfo,
    op: &Operation<'_>,
    new: &mut Value,
) -> Result<(), ApiError> {
    let (old, status_write) = match op {
        Operation::Create => return Ok(()),
        Operation::Update { old } => (*old, false),
        Operation::UpdateStatus { old } => (*old, true),
        Operation::UpdateApproval { old } => {
            // Only the conditions change: everything else is the stored object's.
            let conditions = new.pointer_mut("/status/conditions").map(Value::take);
            let rv = new
                .pointer_mut("/metadata/resourceVersion")
                .map(Value::take);
            let mut merged = (*old).clone();
            if !merged.get("status").is_some_and(Value::is_object) {
                merged["status"] = json!({});
            }
            match conditions {
                Some(c) if !c.is_null() => merged["status"]["conditions"] = c,
                _ => {
                    if let Some(status) = merged["status"].as_object_mut() {
                        status.remove("conditions");
                    }
                }
            }
            if let Some(rv) = rv {
                merged["metadata"]["resourceVersion"] = rv;
            }
            *new = merged;
            (crate::kinds::of(info).on_subresource_update)(op, new);
            return Ok(());
        }
    };
    if status_write {
        // Only status (and, as upstream, nothing of metadata but what it allows) changes. The
        // usual status write changes nothing else, and is kept as it is rather than rebuilt.
        if same_object_except(old, new, Some("status")) {
            (crate::kinds::of(info).on_subresource_update)(op, new);
            return Ok(());
        }
        let status = new.as_object_mut().and_then(|m| m.remove("status"));
        let rv = new
            .pointer_mut("/metadata/resourceVersion")
            .map(Value::take);
        let mut merged = old.clone();
        match status {
            Some(s) => merged["status"] = s,
            None => {
                if let Some(m) = merged.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        if let Some(rv) = rv {
            merged["metadata"]["resourceVersion"] = rv;
        }
        *new = merged;
        (crate::kinds::of(info).on_subresource_update)(op, new);
        return Ok(());
    }
    let no_meta = json!({});
    let old_meta = old.get("metadata").unwrap_or(&no_meta);
    let meta = new
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| ApiError::bad_request("metadata is required"))?;
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old_meta.get(field) {
            Some(v) => {
                meta.insert(field.into(), v.clone());
            }
            None => {
                meta.remove(field);
            }
        }
    }
    meta.remove("managedFields");
    if info.subresources.iter().any(|s| s.name == "status")
        && new.get("status") != old.get("status")
    {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    (crate::kinds::of(info).on_update)(old, new)
}

/// Typed admission: decodes into the k8s-openapi type (rejecting unknown fields when asked),
/// applies upstream's defaults and validation, and writes the defaulted object back. Returns
/// warnings (unknown fields under `fieldValidation=Warn`).
pub fn admit(
    info: &ResourceInfo,
    op: &Operation<'_>,
    obj: &mut Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    (crate::kinds::of(info).admit)(info, op, obj, validation)
}

/// Whether this kind's status writes are admitted on `status` alone (`admit_status`), so
/// that one which changes nothing else can be made as an edit of the stored object
/// ([`crate::edit`]).
pub fn admits_status_alone(info: &ResourceInfo) -> bool {
    crate::kinds::of(info).status_alone
}

/// Decodes `obj` into `T`, runs `check` (defaulting and validation) on it, and writes the
/// typed object back as JSON, as kube-apiserver's decode → default → validate → encode does.
/// `uses_old`: whether `check` reads the previous object (decoding it costs as much again, on
/// every status write).
pub(crate) fn admit_typed<T>(
    info: &ResourceInfo,
    op: &Operation<'_>,
    obj: &mut Value,
    validation: FieldValidation,
    uses_old: bool,
    check: impl FnOnce(&mut T, Option<&T>) -> Vec<FieldError>,
) -> Result<Vec<String>, ApiError>
where
    T: DeserializeOwned + Serialize,
{
    let decode = |v: &Value| decode_typed::<T>(info, v);
    let mut typed = decode(obj)?;
    let old = match op.old() {
        Some(old) if uses_old => Some(decode(old)?),
        _ => None,
    };
    let errors = check(&mut typed, old.as_ref());
    let mut defaulted =
        serde_json::to_value(&typed).map_err(|e| ApiError::internal(e.to_string()))?;
    // Unknown fields are what the typed round trip dropped. Defaulting only adds fields, so
    // the defaulted object serves for the comparison (one encoding rather than two); a strict
    // decoding error still comes before validation errors, as upstream decodes first.
    let warnings = unknown_field_warnings("", obj, &defaulted, validation)?;
    if !errors.is_empty() {
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        return Err(invalid(info, &name, &errors));
    }
    // A revision's data is opaque: its bytes (Go zero values included) must stay as written.
    let opaque = defaulted.as_object_mut().and_then(|m| m.remove("data"));
    go_omit_empty(&mut defaulted);
    if let Some(data) = opaque {
        defaulted["data"] = data;
    }
    // The typed round trip drops nothing we keep, but kind/apiVersion must stay as sent.
    defaulted["kind"] = json!(info.kind);
    defaulted["apiVersion"] = json!(info.api_version());
    *obj = defaulted;
    Ok(warnings)
}

/// Admission of a kind whose validation here is its metadata only (`ValidateObjectMeta` with a
/// DNS subdomain name, and `ValidateObjectMetaUpdate`): the typed round trip, unknown fields
/// and Go's omitempty as every kind.
pub(crate) fn admit_meta<T>(
    info: &ResourceInfo,
    op: &Operation<'_>,
    obj: &mut Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError>
where
    T: DeserializeOwned + Serialize + k8s_openapi::Metadata<Ty = ObjectMeta>,
{
    let namespaced = info.namespaced;
    admit_typed::<T>(info, op, obj, validation, true, |new, old| {
        let mut errs = match old {
            Some(old) => validate::object_meta_update(new.metadata(), old.metadata()),
            None => Vec::new(),
        };
        errs.extend(validate::object_meta(
            new.metadata(),
            namespaced,
            validate::name_is_dns_subdomain,
        ));
        errs
    })
}

/// `v` decoded as `T`, from a reference (no copy of the JSON tree); a type error is the 400
/// upstream answers for a body it cannot decode.
pub(crate) fn decode_typed<T: DeserializeOwned>(
    info: &ResourceInfo,
    v: &Value,
) -> Result<T, ApiError> {
    T::deserialize(v)
        .map_err(|e| ApiError::bad_request(format!("{} in body is invalid: {e}", info.kind)))
}

/// The unknown fields of `input` (at path `at`; see [`unknown_fields`]) as warnings, or as the
/// strict decoding error that `fieldValidation=Strict` answers.
pub(crate) fn unknown_field_warnings(
    at: &str,
    input: &Value,
    typed: &Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    if validation == FieldValidation::Ignore {
        return Ok(Vec::new());
    }
    let messages: Vec<String> = unknown_fields(at, input, typed)
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    if validation == FieldValidation::Strict && !messages.is_empty() {
        return Err(ApiError::bad_request(format!(
            "strict decoding error: {}",
            messages.join(", ")
        )));
    }
    Ok(messages)
}

/// A pod's status write. All but `status` is the stored pod's (`prepare_update` put it back),
/// which its earlier writes decoded and normalized already, and upstream validates nothing of a
/// pod's status write against the types beyond decoding it. So only `status` goes through the
/// typed round trip (decoding, unknown fields, Go's omitempty): encoding the unchanged spec
/// back into a tree was most of the cost of the simulator's status patches.
pub(crate) fn admit_status<S>(
    info: &ResourceInfo,
    obj: &mut Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError>
where
    S: DeserializeOwned + Serialize,
{
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    };
    let warnings = match map.get_mut("status") {
        // As the whole object's round trip: a null status is dropped.
        Some(Value::Null) => {
            map.remove("status");
            Vec::new()
        }
        Some(status) => {
            let typed: S = decode_typed(info, status)?;
            let mut encoded =
                serde_json::to_value(&typed).map_err(|e| ApiError::internal(e.to_string()))?;
            let warnings = unknown_field_warnings("status", status, &encoded, validation)?;
            go_omit_empty(&mut encoded);
            *status = encoded;
            warnings
        }
        None => Vec::new(),
    };
    map.insert("kind".into(), json!(info.kind));
    map.insert("apiVersion".into(), json!(info.api_version()));
    Ok(warnings)
}

/// Fields that are Go maps in the Kubernetes types: `omitempty` drops them when empty (unlike
/// pointers to structs, such as `securityContext: {}`, which Go keeps).
const MAP_FIELDS: &[&str] = &[
    "labels",
    "annotations",
    "nodeSelector",
    "limits",
    "requests",
    "capacity",
    "allocatable",
    "disruptedPods",
];

/// Serializes as kube-apiserver would after decoding into the Go types: Go's `omitempty` drops
/// empty strings, empty slices and empty maps, so clients that read the JSON directly
/// (custom-columns, jsonpath, rollout undo's byte comparison) see what they see upstream
/// (`<none>` for `taints: []`, no `value:` for a taint with an empty value).
pub fn go_omit_empty(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|key, v| {
                go_omit_empty(v);
                match v {
                    Value::String(s) => !s.is_empty(),
                    Value::Array(a) => !a.is_empty(),
                    Value::Object(m) => !(m.is_empty() && MAP_FIELDS.contains(&key.as_str())),
                    Value::Null => false,
                    _ => true,
                }
            });
        }
        Value::Array(items) => items.iter_mut().for_each(go_omit_empty),
        _ => {}
    }
}

/// A 422 Invalid error from field errors, worded as kube-apiserver words it.
pub fn invalid(info: &ResourceInfo, name: &str, errors: &[FieldError]) -> ApiError {
    invalid_kind(info.group, info.kind, name, errors)
}

/// [`invalid`] for a kind named by group and kind (a subresource's, as TokenRequest).
pub fn invalid_kind(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> ApiError {
    let message = pernode_admission::invalid_message(kind, group, name, errors);
    let causes = errors
        .iter()
        .map(|e| Cause {
            reason: e.reason().to_string(),
            message: e.cause_message(),
            field: e.field.clone(),
        })
        .collect();
    ApiError::invalid(group, kind, name, message, causes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attrs_index_labels_and_pod_fields() {
        let pod = json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": "x"}},
                         "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let attrs = attrs_of("pods", &pod);
        assert_eq!(attrs.label("app"), Some("x"));
        assert_eq!(attrs.field("spec.nodeName"), Some("n1"));
        assert_eq!(attrs.field("status.phase"), Some("Running"));
        assert_eq!(attrs.field("status.podIP"), None);
    }

    #[test]
    fn empty_strings_slices_and_maps_are_omitted_as_go_does() {
        let mut v = json!({"spec": {"taints": [], "unschedulable": false,
            "t": [{"key": "k", "value": "", "effect": "NoSchedule"}]},
            "metadata": {"labels": {}, "name": "n"}, "c": {"securityContext": {}, "resources": {}}});
        go_omit_empty(&mut v);
        assert_eq!(
            v,
            json!({"spec": {"unschedulable": false, "t": [{"key": "k", "effect": "NoSchedule"}]},
            "metadata": {"name": "n"}, "c": {"securityContext": {}, "resources": {}}})
        );
    }

    fn pods() -> &'static ResourceInfo {
        pernode_resources::find("", "v1", "pods").expect("pods are served")
    }

    #[test]
    fn strict_unknown_fields_come_before_validation_errors() {
        // No containers (invalid) and an unknown field: upstream decodes before it validates.
        let mut pod = json!({"metadata": {"name": "p", "namespace": "ns"},
                             "spec": {"containers": [], "bogus": 1}});
        let e = admit(
            pods(),
            &Operation::Create,
            &mut pod,
            FieldValidation::Strict,
        )
        .expect_err("rejected");
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            "strict decoding error: unknown field \"spec.bogus\""
        );
        // Under Warn the same pod is Invalid, and the unknown field is what the warning names.
        let e = admit(pods(), &Operation::Create, &mut pod, FieldValidation::Warn)
            .expect_err("invalid");
        assert_eq!(e.code, 422);
    }

    #[test]
    fn admission_warns_of_unknown_fields_and_keeps_defaults() {
        let mut pod = json!({"metadata": {"name": "p", "namespace": "ns"},
                             "spec": {"containers": [{"name": "c", "image": "i", "bogus": 1}]}});
        let warnings =
            admit(pods(), &Operation::Create, &mut pod, FieldValidation::Warn).expect("admitted");
        assert_eq!(warnings, ["unknown field \"spec.containers[0].bogus\""]);
        assert_eq!(pod["spec"]["restartPolicy"], "Always");
        assert!(pod["spec"]["containers"][0].get("bogus").is_none());
    }

    #[test]
    fn objects_compare_apart_from_version_and_one_field() {
        let a = json!({"metadata": {"name": "a", "resourceVersion": "1"}, "spec": {}, "status": {"x": 1}});
        let b = json!({"metadata": {"name": "a", "resourceVersion": "2"}, "spec": {}, "status": {"x": 2}});
        assert!(same_object_except(&a, &b, Some("status")));
        assert!(!same_object_except(&a, &b, None));
        let no_status = json!({"metadata": {"name": "a"}, "spec": {}});
        assert!(same_object_except(&a, &no_status, Some("status")));
        let other_spec = json!({"metadata": {"name": "a"}, "spec": {"y": 1}, "status": {"x": 1}});
        assert!(!same_object_except(&a, &other_spec, Some("status")));
    }
}
