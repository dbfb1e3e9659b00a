//! The served kinds, each one value: upstream's per-resource strategy (pkg/registry/<group>/
//! <resource>/strategy.go) as a [`Kind`] that brings the fields a selector can use, what the
//! server sets on create and carries over on update, and the kind's admission (decoding,
//! defaulting, validation).
//!
//! A kind's catalogue entry (names, scope, verbs, subresources, OpenAPI schema) is in
//! `pernode_resources::catalog`, its Table columns in `pernode_printers`, its validation in
//! `pernode_admission`; the entry here is the one registration that ties them to the request
//! path. [`KINDS`] holds every built-in kind; a test keeps it and the catalogue in step.
//!
//! Adding a kind: its catalogue entry, its `Kind` here (in the module of its API group), its
//! validation functions and its printer (unless upstream has none and serves the default
//! Table, as for Roles and ClusterRoles).

mod admissionregistration;
mod apiextensions;
mod apps;
mod authentication;
mod certificates;
mod coordination;
mod core;
mod events;
mod networking;
mod policy;
mod rbac;
mod read_only;
mod scheduling;
mod storage;

use pernode_auth::user::UserInfo;
use pernode_resources::ResourceInfo;
use serde_json::Value;

use crate::error::ApiError;
use crate::params::FieldValidation;
use crate::registry::Operation;

pub use self::core::POD_NODE_NAME;

/// Admission of one write of a kind: decode into its type, default, validate, and write the
/// result back into `obj`; the warnings go to the client.
pub type AdmitFn =
    fn(&ResourceInfo, &Operation<'_>, &mut Value, FieldValidation) -> Result<Vec<String>, ApiError>;

/// One served kind's strategy.
pub struct Kind {
    /// Group of its catalogue entry.
    pub group: &'static str,
    /// Plural resource name of its catalogue entry (also the first segment of its store keys).
    pub plural: &'static str,
    /// Fields usable in field selectors (upstream's field label conversion funcs).
    pub fields: &'static [&'static str],
    /// The kind's part of PrepareForCreate: what the server sets on a new object (status,
    /// generation, ...), after the generic metadata.
    pub on_create: fn(&mut Value) -> Result<(), ApiError>,
    /// The part of PrepareForCreate that reads the requesting user (upstream's
    /// `genericapirequest.UserFrom(ctx)`): a CertificateSigningRequest records who asked.
    pub on_create_by: fn(&mut Value, &UserInfo),
    /// The kind's part of PrepareForUpdate on the main resource, after the generic metadata
    /// and status carry-over: `old` is the stored object.
    pub on_update: fn(&Value, &mut Value) -> Result<(), ApiError>,
    /// The kind's part of PrepareForUpdate on `/status` (and a CertificateSigningRequest's
    /// `/approval`), after the generic carry-over of everything else from the stored object.
    pub on_subresource_update: fn(&Operation<'_>, &mut Value),
    /// Decoding, defaulting and validation.
    pub admit: AdmitFn,
    /// Whether a status write is admitted on `status` alone (see `registry::admit_status`),
    /// which lets one that changes nothing else be an edit of the stored bytes.
    pub status_alone: bool,
    /// Set for a kind served from another kind's storage (events.k8s.io/v1 Events are stored
    /// as core/v1 Events, as upstream stores one internal Event): how the stored objects look
    /// in this version. Its admission stores the other kind's form.
    pub conversion: Option<&'static Conversion>,
    /// Dotted paths of the kind's `metav1.MicroTime` fields, whose JSON upstream's decoder
    /// takes only with six fractional digits.
    pub micro_times: &'static [&'static str],
}

/// How a kind served from another kind's storage sees the stored objects.
pub struct Conversion {
    /// A stored object in this kind's version.
    pub from_stored: fn(&Value) -> Result<Value, String>,
    /// A field selector's label (one of the kind's `fields`) as the stored objects are
    /// indexed (upstream's field label conversion).
    pub field_label: fn(&str) -> &'static str,
}

/// Fields every kind can select on.
pub const METADATA_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

impl Kind {
    /// A kind with no hooks and no admission beyond the generic metadata handling; entries
    /// override what they need with `..`.
    pub const fn new(group: &'static str, plural: &'static str, admit: AdmitFn) -> Kind {
        Kind {
            group,
            plural,
            fields: METADATA_FIELDS,
            on_create: nothing_on_create,
            on_create_by: |_, _| {},
            on_update: nothing_on_update,
            on_subresource_update: |_, _| {},
            admit,
            status_alone: false,
            conversion: None,
            micro_times: &[],
        }
    }
}

fn nothing_on_create(_: &mut Value) -> Result<(), ApiError> {
    Ok(())
}

fn nothing_on_update(_: &Value, _: &mut Value) -> Result<(), ApiError> {
    Ok(())
}

/// `metadata.generation` + 1 when the top-level `field` changed (`spec` for most kinds; the
/// generation of a new object is 1), as upstream's strategies do.
pub(crate) fn bump_generation_on_change(old: &Value, new: &mut Value, field: &str) {
    if new.get(field) == old.get(field) {
        return;
    }
    let generation = old
        .pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("generation".into(), serde_json::json!(generation + 1));
    }
}

/// Generation 1 on create, for kinds whose updates bump it.
pub(crate) fn first_generation(obj: &mut Value) -> Result<(), ApiError> {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("generation".into(), serde_json::json!(1));
    }
    Ok(())
}

/// Every built-in kind, in catalogue order.
pub static KINDS: &[&Kind] = &[
    &core::NAMESPACES,
    &core::NODES,
    &core::PODS,
    &core::EVENTS,
    &core::CONFIG_MAPS,
    &core::ENDPOINTS,
    &core::SECRETS,
    &core::SERVICE_ACCOUNTS,
    &core::SERVICES,
    &read_only::PERSISTENT_VOLUME_CLAIMS,
    &read_only::PERSISTENT_VOLUMES,
    &read_only::REPLICATION_CONTROLLERS,
    &apps::CONTROLLER_REVISIONS,
    &apps::DAEMON_SETS,
    &read_only::DEPLOYMENTS,
    &read_only::REPLICA_SETS,
    &read_only::STATEFUL_SETS,
    &events::EVENTS,
    &authentication::SELF_SUBJECT_REVIEWS,
    &authentication::TOKEN_REVIEWS,
    &authentication::LOCAL_SUBJECT_ACCESS_REVIEWS,
    &authentication::SELF_SUBJECT_ACCESS_REVIEWS,
    &authentication::SELF_SUBJECT_RULES_REVIEWS,
    &authentication::SUBJECT_ACCESS_REVIEWS,
    &read_only::CRON_JOBS,
    &read_only::JOBS,
    &certificates::CERTIFICATE_SIGNING_REQUESTS,
    &read_only::INGRESSES,
    &networking::NETWORK_POLICIES,
    &policy::POD_DISRUPTION_BUDGETS,
    &rbac::CLUSTER_ROLE_BINDINGS,
    &rbac::CLUSTER_ROLES,
    &rbac::ROLE_BINDINGS,
    &rbac::ROLES,
    &storage::CSI_DRIVERS,
    &storage::CSI_NODES,
    &admissionregistration::MUTATING_WEBHOOK_CONFIGURATIONS,
    &admissionregistration::VALIDATING_WEBHOOK_CONFIGURATIONS,
    &apiextensions::CUSTOM_RESOURCE_DEFINITIONS,
    &scheduling::PRIORITY_CLASSES,
    &coordination::LEASES,
    &core::ENDPOINT_SLICES,
];

/// The kind of a catalogue entry.
pub fn of(info: &ResourceInfo) -> &'static Kind {
    if info.custom.is_some() {
        return &crate::crd::objects::CUSTOM_OBJECTS;
    }
    KINDS
        .iter()
        .find(|k| k.plural == info.plural && k.group == info.group)
        .copied()
        .unwrap_or(&UNREGISTERED)
}

/// The kind whose objects are stored under `plural` (the first segment of a store key).
pub fn by_plural(plural: &str) -> &'static Kind {
    KINDS
        .iter()
        .find(|k| k.plural == plural && k.conversion.is_none())
        .copied()
        .unwrap_or(&UNREGISTERED)
}

/// The stored object `json` as `info` serves it: the bytes themselves, or, for a kind served
/// from another kind's storage, their conversion (a Status, such as a delete's answer, stays
/// as it is), or, for a custom object, its `apiVersion` as the request's version.
pub fn served(info: &ResourceInfo, json: &bytes::Bytes) -> bytes::Bytes {
    if info.custom.is_some() {
        // A custom object in the version of the request (strategy None: its apiVersion).
        return match crate::crd::conversion::in_version(info, json) {
            std::borrow::Cow::Borrowed(_) => json.clone(),
            std::borrow::Cow::Owned(converted) => bytes::Bytes::from(converted),
        };
    }
    let Some(conversion) = of(info).conversion else {
        return json.clone();
    };
    let converted = serde_json::from_slice::<Value>(json)
        .map_err(|e| e.to_string())
        .and_then(|stored| match stored.get("kind").and_then(Value::as_str) {
            Some("Status") => Ok(stored),
            _ => (conversion.from_stored)(&stored),
        });
    match converted {
        Ok(value) => bytes::Bytes::from(value.to_string()),
        Err(e) => {
            tracing::warn!(error = %e, resource = %info.group_resource(), "stored object does not convert");
            json.clone()
        }
    }
}

/// A stored entry as `info` serves it (see [`served`]).
pub fn served_entry<'a>(
    info: &ResourceInfo,
    entry: &'a pernode_store::Entry,
) -> std::borrow::Cow<'a, pernode_store::Entry> {
    if of(info).conversion.is_none() && info.custom.is_none() {
        return std::borrow::Cow::Borrowed(entry);
    }
    std::borrow::Cow::Owned(entry.with_json(served(info, &entry.json)))
}

/// The stored label a field selector's `label` selects for `info`'s kind.
pub fn stored_field_label(info: &ResourceInfo, label: &str) -> String {
    match of(info).conversion {
        Some(c) => (c.field_label)(label).to_string(),
        None => label.to_string(),
    }
}

/// Upstream's decoding of the kind's MicroTime fields in a create or update body: a value
/// that is not `null` or a string with six fractional digits is the 400 kube-apiserver
/// answers for a body it cannot decode.
pub fn check_micro_times(info: &ResourceInfo, obj: &Value) -> Result<(), ApiError> {
    match micro_time_error(info, obj) {
        None => Ok(()),
        Some(e) => Err(ApiError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: {e}",
            kind = info.kind,
            version = info.version
        ))),
    }
}

/// The decoding error of the first MicroTime field of `obj` upstream would not decode.
pub fn micro_time_error(info: &ResourceInfo, obj: &Value) -> Option<String> {
    of(info).micro_times.iter().find_map(|path| {
        let value = path.split('.').try_fold(obj, |v, key| v.get(key))?;
        match value {
            Value::Null => None,
            Value::String(s) => pernode_core::microtime::parse_rfc3339_micro(s).err(),
            Value::Number(_) => Some(pernode_core::microtime::non_string_error("number")),
            Value::Bool(_) => Some(pernode_core::microtime::non_string_error("bool")),
            Value::Array(_) => Some(pernode_core::microtime::non_string_error("array")),
            Value::Object(_) => Some(pernode_core::microtime::non_string_error("object")),
        }
    })
}

/// What a catalogue entry without a kind gets: nothing beyond the generic handling. The test
/// `every_catalogue_entry_has_a_kind` keeps it unused.
static UNREGISTERED: Kind = Kind::new("", "", |_, _, _, _| Ok(Vec::new()));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_entry_has_a_kind_and_back() {
        for info in pernode_resources::RESOURCES {
            assert!(
                !std::ptr::eq(of(info), &UNREGISTERED),
                "{} has no kind",
                info.group_resource()
            );
        }
        for kind in KINDS {
            assert!(
                pernode_resources::RESOURCES
                    .iter()
                    .any(|r| r.plural == kind.plural && r.group == kind.group),
                "{} is not in the catalogue",
                kind.plural
            );
        }
        // Store keys need unique plurals among the kinds that own their storage; a kind
        // served from another's storage shares that kind's plural.
        let owners: Vec<_> = KINDS.iter().filter(|k| k.conversion.is_none()).collect();
        let plurals: std::collections::BTreeSet<_> = owners.iter().map(|k| k.plural).collect();
        assert_eq!(
            plurals.len(),
            owners.len(),
            "store keys need unique plurals"
        );
        for kind in KINDS.iter().filter(|k| k.conversion.is_some()) {
            assert!(
                plurals.contains(kind.plural),
                "{}.{} converts objects nobody stores",
                kind.plural,
                kind.group
            );
        }
    }

    #[test]
    fn every_kind_has_a_printer_unless_upstream_has_none() {
        // Upstream's printers.go has no Role, ClusterRole or CRD printer: those get the default
        // Table (Name, Created At), as every kind without a printer here would. The read-only
        // kinds are always empty, so their Tables never have a row to print; the reviews are
        // never read at all.
        let default = pernode_printers::column_definitions("");
        for kind in KINDS {
            let has_default = pernode_printers::column_definitions(kind.plural) == default;
            assert_eq!(
                has_default,
                matches!(
                    kind.plural,
                    "roles"
                        | "clusterroles"
                        | "customresourcedefinitions"
                        | "tokenreviews"
                        | "selfsubjectreviews"
                        | "localsubjectaccessreviews"
                        | "selfsubjectaccessreviews"
                        | "selfsubjectrulesreviews"
                        | "subjectaccessreviews"
                ) || pernode_resources::RESOURCES.iter().any(|r| {
                    r.plural == kind.plural
                        && r.group == kind.group
                        && r.verbs == pernode_resources::READ_ONLY_VERBS
                }),
                "{}: printer missing or unexpected",
                kind.plural
            );
        }
    }
}
