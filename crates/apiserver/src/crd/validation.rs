//! A CustomResourceDefinition's own admission: upstream's registry strategy
//! (registry/customresourcedefinition/strategy.go) and validation
//! (apis/apiextensions/validation/validation.go), with the structural schema rules of
//! apiserver/schema/validation.go. A CRD that breaks any is a 422 with upstream's field
//! errors; a non-structural schema is refused, as apiextensions.k8s.io/v1 refuses it.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
};
use pernode_admission::{FieldError, validate};
use pernode_core::names::{is_dns1035_label, is_dns1123_subdomain};
use pernode_resources::ResourceInfo;
use serde_json::{Value, json};

use crate::error::ApiError;
use crate::params::FieldValidation;
use crate::registry::{self, Operation};

/// The kind's admission (`kinds::Kind::admit`).
pub fn admit(
    info: &ResourceInfo,
    op: &Operation<'_>,
    obj: &mut Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    // The server owns status on create (strategy: cleared) and it is the stored one on a
    // main-resource update, so a client's (controller-gen writes placeholders) is not decoded.
    if matches!(op, Operation::Create)
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    let decode = |v: &Value| {
        CustomResourceDefinition::deserialize(v).map_err(|e| {
            ApiError::bad_request(format!(
                "CustomResourceDefinition in version \"v1\" cannot be handled as a CustomResourceDefinition: {e}"
            ))
        })
    };
    use serde::Deserialize;
    set_defaults(obj);
    let typed = decode(obj)?;
    let mut encoded =
        serde_json::to_value(&typed).map_err(|e| ApiError::internal(e.to_string()))?;
    let warnings = registry::unknown_field_warnings("", obj, &encoded, validation)?;
    let old = match op.old() {
        Some(old) => Some(decode(old)?),
        None => None,
    };
    let errs = match (&old, op) {
        (Some(old), Operation::UpdateStatus { .. }) => {
            let mut errs = validate::object_meta_update(&typed.metadata, &old.metadata);
            if let Some(accepted) = typed
                .status
                .as_ref()
                .and_then(|s| s.accepted_names.as_ref())
            {
                errs.extend(names(accepted, "status.acceptedNames"));
            }
            errs
        }
        (Some(old), _) => {
            let mut errs = validate_update(&typed, old);
            errs.extend(api_approval(&typed, Some(old)));
            errs
        }
        (None, _) => {
            let mut errs = validate_crd(&typed);
            errs.extend(api_approval(&typed, None));
            errs
        }
    };
    if !errs.is_empty() {
        let name = typed.metadata.name.clone().unwrap_or_default();
        return Err(registry::invalid(info, &name, &errs));
    }
    // Go's omitempty on metadata only: schemas keep their empty strings (`default: ""`).
    if let Some(meta) = encoded.get_mut("metadata") {
        registry::go_omit_empty(meta);
    }
    encoded["kind"] = json!(info.kind);
    encoded["apiVersion"] = json!(info.api_version());
    *obj = encoded;
    Ok(warnings)
}

/// apiextensions.k8s.io/v1's defaults, applied on decode to every write: a missing singular
/// is the kind in lower case, a missing listKind is the kind plus `List`, a missing
/// conversion is strategy `None`, and a webhook's service port is 443.
pub fn set_defaults(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let empty = |v: Option<&Value>| v.and_then(Value::as_str).is_none_or(str::is_empty);
        if empty(names.get("singular")) {
            names.insert("singular".into(), json!(kind.to_lowercase()));
        }
        if empty(names.get("listKind")) && !kind.is_empty() {
            names.insert("listKind".into(), json!(format!("{kind}List")));
        }
    }
    let conversion = spec
        .entry("conversion")
        .or_insert_with(|| json!({"strategy": "None"}));
    if conversion.is_null() {
        *conversion = json!({"strategy": "None"});
    }
    if let Some(service) = conversion
        .pointer_mut("/webhook/clientConfig/service")
        .and_then(Value::as_object_mut)
        && service.get("port").is_none_or(Value::is_null)
    {
        service.insert("port".into(), json!(443));
    }
}

/// PrepareForCreate's part beyond the generic metadata: generation 1, and the status the
/// server starts from (`storedVersions` holding the storage version).
pub fn on_create(obj: &mut Value) -> Result<(), ApiError> {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("generation".into(), json!(1));
    }
    let storage = storage_version(obj);
    obj["status"] = json!({
        "acceptedNames": {"kind": "", "plural": ""},
        "storedVersions": storage.into_iter().collect::<Vec<_>>(),
    });
    Ok(())
}

/// PrepareForUpdate's part: generation bumps on spec changes; a new storage version joins
/// `storedVersions`.
pub fn on_update(old: &Value, new: &mut Value) -> Result<(), ApiError> {
    crate::kinds::bump_generation_on_change(old, new, "spec");
    if let Some(storage) = storage_version(new) {
        if let Some(Value::Array(list)) = new.pointer_mut("/status/storedVersions") {
            if !list.iter().any(|v| v == storage.as_str()) {
                list.push(json!(storage));
            }
        } else if new.get("status").is_some_and(Value::is_object) {
            new["status"]["storedVersions"] = json!([storage]);
        }
    }
    Ok(())
}

fn storage_version(obj: &Value) -> Option<String> {
    obj.pointer("/spec/versions")?
        .as_array()?
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name")?.as_str().map(str::to_string))
}

/// The annotation that records a protected group's API review.
const API_APPROVED: &str = "api-approved.kubernetes.io";

/// `apihelpers.APIApprovalState`, with its reason.
#[derive(Debug, PartialEq, Eq)]
enum Approval {
    Invalid,
    Approved,
    Bypassed,
    Missing,
}

/// `apihelpers.GetAPIApprovalState`: a URL approves, a reason starting with `unapproved`
/// bypasses, anything else is invalid.
fn approval_state(crd: &CustomResourceDefinition) -> Approval {
    let value = crd
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(API_APPROVED))
        .map(String::as_str)
        .unwrap_or("");
    if value.is_empty() {
        Approval::Missing
    } else if value.starts_with("unapproved") {
        Approval::Bypassed
    } else if is_url_with_host(value) {
        Approval::Approved
    } else {
        Approval::Invalid
    }
}

/// What Go's `url.ParseRequestURI` accepts with a scheme and a host.
fn is_url_with_host(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once("://") else {
        return false;
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    scheme_ok && !host.is_empty() && !value.contains(char::is_whitespace)
}

/// `validateAPIApproval`: a CRD in a protected group (`k8s.io`, `kubernetes.io` and their
/// subdomains) needs the approval annotation, unless an update leaves its state as it was.
fn api_approval(
    crd: &CustomResourceDefinition,
    old: Option<&CustomResourceDefinition>,
) -> Vec<FieldError> {
    let group = crd.spec.group.as_str();
    let protected = group == "k8s.io"
        || group.ends_with(".k8s.io")
        || group == "kubernetes.io"
        || group.ends_with(".kubernetes.io");
    if !protected {
        return vec![];
    }
    let state = approval_state(crd);
    if old.is_some_and(|old| approval_state(old) == state) {
        return vec![];
    }
    let path = format!("metadata.annotations[{API_APPROVED}]");
    match state {
        Approval::Approved | Approval::Bypassed => vec![],
        Approval::Missing => vec![FieldError::required(
            &path,
            &format!(
                "protected groups must have approval annotation \"{API_APPROVED}\", see https://github.com/kubernetes/enhancements/pull/1111"
            ),
        )],
        Approval::Invalid => {
            let value = crd
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(API_APPROVED))
                .cloned()
                .unwrap_or_default();
            vec![FieldError::invalid(
                &path,
                value,
                &format!(
                    "protected groups must have approval annotation \"{API_APPROVED}\" with either a URL or a reason starting with \"unapproved\", see https://github.com/kubernetes/enhancements/pull/1111"
                ),
            )]
        }
    }
}

/// `ValidateCustomResourceDefinition`.
pub fn validate_crd(crd: &CustomResourceDefinition) -> Vec<FieldError> {
    let mut errs = validate::object_meta(&crd.metadata, false, validate::name_is_dns_subdomain);
    let name = crd.metadata.name.as_deref().unwrap_or("");
    let required = format!("{}.{}", crd.spec.names.plural, crd.spec.group);
    if !name.is_empty() && name != required {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    errs.extend(spec(&crd.spec));
    if let Some(accepted) = crd.status.as_ref().and_then(|s| s.accepted_names.as_ref()) {
        errs.extend(names(accepted, "status.acceptedNames"));
    }
    errs
}

/// `ValidateCustomResourceDefinitionUpdate`.
pub fn validate_update(
    crd: &CustomResourceDefinition,
    old: &CustomResourceDefinition,
) -> Vec<FieldError> {
    let mut errs = validate::object_meta_update(&crd.metadata, &old.metadata);
    errs.extend(
        validate_crd(crd)
            .into_iter()
            .filter(|e| e.field != "metadata.name" || !e.detail.starts_with("must be spec")),
    );
    let established = old
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        });
    let immutable = |field: &str, new: &str, old: &str, errs: &mut Vec<FieldError>| {
        if new != old {
            errs.push(FieldError::invalid(field, new, "field is immutable"));
        }
    };
    if established {
        immutable("spec.scope", &crd.spec.scope, &old.spec.scope, &mut errs);
        immutable(
            "spec.names.kind",
            &crd.spec.names.kind,
            &old.spec.names.kind,
            &mut errs,
        );
    }
    immutable("spec.group", &crd.spec.group, &old.spec.group, &mut errs);
    immutable(
        "spec.names.plural",
        &crd.spec.names.plural,
        &old.spec.names.plural,
        &mut errs,
    );
    if let Some(status) = &crd.status {
        for (i, v) in status.stored_versions.iter().flatten().enumerate() {
            if !crd.spec.versions.iter().any(|sv| &sv.name == v) {
                errs.push(FieldError::invalid(
                    &format!("status.storedVersions[{i}]"),
                    v.as_str(),
                    "must appear in spec.versions",
                ));
            }
        }
    }
    errs
}

/// Go's `%#v` of a few versions, enough to recognise them (upstream prints the structs).
fn versions_go(spec: &CustomResourceDefinitionSpec) -> String {
    let items: Vec<String> = spec
        .versions
        .iter()
        .map(|v| {
            format!(
                "apiextensions.CustomResourceDefinitionVersion{{Name:{:?}, Served:{}, Storage:{}, ...}}",
                v.name, v.served, v.storage
            )
        })
        .collect();
    format!(
        "[]apiextensions.CustomResourceDefinitionVersion{{{}}}",
        items.join(", ")
    )
}

fn spec(spec: &CustomResourceDefinitionSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.group.is_empty() {
        errs.push(FieldError::required("spec.group", ""));
    } else {
        let problems = is_dns1123_subdomain(&spec.group);
        if !problems.is_empty() {
            errs.push(FieldError::invalid(
                "spec.group",
                spec.group.as_str(),
                &problems.join(","),
            ));
        } else if !spec.group.contains('.') {
            errs.push(FieldError::invalid(
                "spec.group",
                spec.group.as_str(),
                "should be a domain with at least one dot",
            ));
        }
    }
    match spec.scope.as_str() {
        "" => errs.push(FieldError::required("spec.scope", "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(FieldError::not_supported(
            "spec.scope",
            other,
            &["Cluster", "Namespaced"],
        )),
    }
    let mut storage = 0;
    let mut seen: Vec<&str> = Vec::new();
    let mut unique = true;
    for (i, v) in spec.versions.iter().enumerate() {
        if v.storage {
            storage += 1;
        }
        if seen.contains(&v.name.as_str()) {
            unique = false;
        }
        seen.push(&v.name);
        let problems = is_dns1035_label(&v.name);
        if !problems.is_empty() {
            errs.push(FieldError::invalid(
                &format!("spec.versions[{i}].name"),
                v.name.as_str(),
                &problems.join(","),
            ));
        }
    }
    let versions_value = serde_json::to_value(&spec.versions).unwrap_or_default();
    if !unique {
        errs.push(FieldError::invalid_go(
            "spec.versions",
            versions_value.clone(),
            versions_go(spec),
            "must contain unique version names",
        ));
    }
    if storage != 1 {
        errs.push(FieldError::invalid_go(
            "spec.versions",
            versions_value,
            versions_go(spec),
            "must have exactly one version marked as storage version",
        ));
    }
    for (field, value) in [
        ("plural", &spec.names.plural),
        (
            "singular",
            spec.names.singular.as_ref().unwrap_or(&String::new()),
        ),
        ("kind", &spec.names.kind),
        (
            "listKind",
            spec.names.list_kind.as_ref().unwrap_or(&String::new()),
        ),
    ] {
        if value.is_empty() {
            errs.push(FieldError::required(&format!("spec.names.{field}"), ""));
        }
    }
    errs.extend(names(&spec.names, "spec.names"));
    for (i, v) in spec.versions.iter().enumerate() {
        let at = format!("spec.versions[{i}]");
        match v
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
        {
            None => errs.push(FieldError::required(
                &format!("{at}.schema.openAPIV3Schema"),
                "schemas are required",
            )),
            Some(schema) => {
                let schema = serde_json::to_value(schema).unwrap_or_default();
                let status = v.subresources.as_ref().is_some_and(|s| s.status.is_some());
                errs.extend(structural(
                    &schema,
                    &format!("{at}.schema.openAPIV3Schema"),
                    status,
                ));
            }
        }
        if let Some(scale) = v.subresources.as_ref().and_then(|s| s.scale.as_ref()) {
            let at = format!("{at}.subresources.scale");
            let spec_path = &scale.spec_replicas_path;
            if spec_path.is_empty() {
                errs.push(FieldError::required(&format!("{at}.specReplicasPath"), ""));
            } else if !spec_path.starts_with(".spec.") {
                errs.push(FieldError::invalid(
                    &format!("{at}.specReplicasPath"),
                    spec_path.as_str(),
                    "should be a json path under .spec",
                ));
            }
            let status_path = &scale.status_replicas_path;
            if status_path.is_empty() {
                errs.push(FieldError::required(
                    &format!("{at}.statusReplicasPath"),
                    "",
                ));
            } else if !status_path.starts_with(".status.") {
                errs.push(FieldError::invalid(
                    &format!("{at}.statusReplicasPath"),
                    status_path.as_str(),
                    "should be a json path under .status",
                ));
            }
            if let Some(selector) = scale.label_selector_path.as_deref()
                && !selector.starts_with(".spec.")
                && !selector.starts_with(".status.")
            {
                errs.push(FieldError::invalid(
                    &format!("{at}.labelSelectorPath"),
                    selector,
                    "should be a json path under either .spec or .status",
                ));
            }
        }
        for (j, c) in v.additional_printer_columns.iter().flatten().enumerate() {
            let at = format!("{at}.additionalPrinterColumns[{j}]");
            if c.name.is_empty() {
                errs.push(FieldError::required(&format!("{at}.name"), ""));
            }
            if c.type_.is_empty() {
                errs.push(FieldError::required(&format!("{at}.type"), ""));
            } else if !["integer", "number", "string", "boolean", "date"]
                .contains(&c.type_.as_str())
            {
                errs.push(FieldError::not_supported(
                    &format!("{at}.type"),
                    c.type_.as_str(),
                    &["integer", "number", "string", "boolean", "date"],
                ));
            }
            if let Some(format) = c.format.as_deref().filter(|f| !f.is_empty())
                && ![
                    "int32",
                    "int64",
                    "float",
                    "double",
                    "byte",
                    "date",
                    "date-time",
                    "password",
                ]
                .contains(&format)
            {
                errs.push(FieldError::not_supported(
                    &format!("{at}.format"),
                    format,
                    &[
                        "int32",
                        "int64",
                        "float",
                        "double",
                        "byte",
                        "date",
                        "date-time",
                        "password",
                    ],
                ));
            }
            if c.json_path.is_empty() {
                errs.push(FieldError::required(&format!("{at}.jsonPath"), ""));
            } else if let Err(e) = super::printing::JsonPath::parse(&c.json_path) {
                errs.push(FieldError::invalid(
                    &format!("{at}.jsonPath"),
                    c.json_path.as_str(),
                    &format!("must be a simple json path: {e}"),
                ));
            }
        }
    }
    errs
}

/// `ValidateCustomResourceDefinitionNames`.
fn names(names: &CustomResourceDefinitionNames, at: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let check = |field: String, value: &str, lower: bool, errs: &mut Vec<FieldError>| {
        if value.is_empty() {
            return;
        }
        let problems = if lower {
            is_dns1035_label(&value.to_lowercase())
        } else {
            is_dns1035_label(value)
        };
        if !problems.is_empty() {
            let detail = if lower {
                format!(
                    "may have mixed case, but should otherwise match: {}",
                    problems.join(",")
                )
            } else {
                problems.join(",")
            };
            errs.push(FieldError::invalid(&field, value, &detail));
        }
    };
    check(format!("{at}.plural"), &names.plural, false, &mut errs);
    check(
        format!("{at}.singular"),
        names.singular.as_deref().unwrap_or(""),
        false,
        &mut errs,
    );
    check(format!("{at}.kind"), &names.kind, true, &mut errs);
    let list_kind = names.list_kind.as_deref().unwrap_or("");
    check(format!("{at}.listKind"), list_kind, true, &mut errs);
    for (i, s) in names.short_names.iter().flatten().enumerate() {
        check(format!("{at}.shortNames[{i}]"), s, false, &mut errs);
    }
    if !names.kind.is_empty() && names.kind == list_kind {
        errs.push(FieldError::invalid(
            &format!("{at}.listKind"),
            list_kind,
            "kind and listKind may not be the same",
        ));
    }
    for (i, c) in names.categories.iter().flatten().enumerate() {
        check(format!("{at}.categories[{i}]"), c, false, &mut errs);
    }
    errs
}

/// Whether a node is a value validation (under allOf, anyOf, oneOf, not), and under an
/// int-or-string node (whose `anyOf: [{type: integer}, {type: string}]` is allowed).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Nesting {
    No,
    Yes,
    UnderIntOrString,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Field,
    Item,
}

/// The structural schema rules (and the per-node rules of the CRD's validation) of
/// `openAPIV3Schema` at `at`.
pub fn structural(schema: &Value, at: &str, status_subresource: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    node(schema, at, Level::Root, Nesting::No, &mut errs);
    let _ = status_subresource;
    errs
}

fn node(s: &Value, at: &str, level: Level, nesting: Nesting, errs: &mut Vec<FieldError>) {
    let nested = nesting != Nesting::No;
    let Some(m) = s.as_object() else { return };
    let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
    let flag = |k: &str| m.get(k).and_then(Value::as_bool);
    let preserve = flag("x-kubernetes-preserve-unknown-fields");
    let embedded = flag("x-kubernetes-embedded-resource") == Some(true);
    let int_or_string = flag("x-kubernetes-int-or-string") == Some(true);
    if nested {
        // Value validations (allOf, anyOf, oneOf, not) may not say what the node is.
        for key in [
            "type",
            "default",
            "nullable",
            "description",
            "title",
            "additionalProperties",
            "x-kubernetes-preserve-unknown-fields",
            "x-kubernetes-embedded-resource",
            "x-kubernetes-int-or-string",
        ] {
            let int_or_string_type = key == "type"
                && nesting == Nesting::UnderIntOrString
                && matches!(ty, "integer" | "string");
            if m.contains_key(key) && !int_or_string_type {
                errs.push(FieldError::forbidden(
                    &format!("{at}.{key}"),
                    "must be empty to be structural",
                ));
            }
        }
    } else {
        if m.get("$ref").is_some() {
            errs.push(FieldError::forbidden(
                &format!("{at}.$ref"),
                "$ref is not supported",
            ));
        }
        if preserve == Some(false) {
            errs.push(FieldError::invalid(
                &format!("{at}.x-kubernetes-preserve-unknown-fields"),
                false,
                "must be true or undefined",
            ));
        }
        if embedded && ty != "object" {
            if ty.is_empty() {
                errs.push(FieldError::required(
                    &format!("{at}.type"),
                    "must be object if x-kubernetes-embedded-resource is true",
                ));
            } else {
                errs.push(FieldError::invalid(
                    &format!("{at}.type"),
                    ty,
                    "must be object if x-kubernetes-embedded-resource is true",
                ));
            }
        } else if int_or_string {
            if !ty.is_empty() {
                errs.push(FieldError::invalid(
                    &format!("{at}.type"),
                    ty,
                    "must be empty if x-kubernetes-int-or-string is true",
                ));
            }
        } else if ty.is_empty() && preserve != Some(true) {
            let detail = match level {
                Level::Root => "must not be empty at the root",
                Level::Field => "must not be empty for specified object fields",
                Level::Item => "must not be empty for specified array items",
            };
            errs.push(FieldError::required(&format!("{at}.type"), detail));
        }
        if level == Level::Root && !ty.is_empty() && ty != "object" {
            errs.push(FieldError::invalid(
                &format!("{at}.type"),
                ty,
                "must be object at the root",
            ));
        }
        if !ty.is_empty()
            && !["object", "array", "string", "integer", "number", "boolean"].contains(&ty)
        {
            errs.push(FieldError::not_supported(
                &format!("{at}.type"),
                ty,
                &["array", "boolean", "integer", "number", "object", "string"],
            ));
        }
        if ty == "array" && !m.contains_key("items") {
            errs.push(FieldError::required(
                &format!("{at}.items"),
                "must be specified",
            ));
        }
        if embedded
            && preserve != Some(true)
            && m.get("properties")
                .and_then(Value::as_object)
                .is_none_or(|p| p.is_empty())
        {
            errs.push(FieldError::required(
                &format!("{at}.properties"),
                "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
            ));
        }
    }
    if m.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
        errs.push(FieldError::forbidden(
            &format!("{at}.uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    if let Some(pattern) = m.get("pattern").and_then(Value::as_str)
        && let Err(e) = regex::Regex::new(pattern)
    {
        errs.push(FieldError::invalid(
            &format!("{at}.pattern"),
            pattern,
            &format!("must be a valid regular expression, but isn't: {e}"),
        ));
    }
    let props = m.get("properties").and_then(Value::as_object);
    if let Some(additional) = m.get("additionalProperties") {
        if props.is_some_and(|p| !p.is_empty()) && additional != &Value::Bool(true) {
            errs.push(FieldError::forbidden(
                &format!("{at}.additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        if additional.is_object() {
            node(
                additional,
                &format!("{at}.additionalProperties"),
                Level::Field,
                nesting_below(nesting),
                errs,
            );
        }
    }
    if let Some(props) = props {
        for (key, child) in props {
            let child_at = format!("{at}.properties[{key}]");
            if level == Level::Root && key == "metadata" && !nested {
                metadata(child, &child_at, errs);
            }
            node(child, &child_at, Level::Field, nesting_below(nesting), errs);
        }
    }
    if let Some(items) = m.get("items") {
        node(
            items,
            &format!("{at}.items"),
            Level::Item,
            nesting_below(nesting),
            errs,
        );
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for (i, sub) in m
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let below = if int_or_string && !nested {
                Nesting::UnderIntOrString
            } else {
                Nesting::Yes
            };
            node(sub, &format!("{at}.{key}[{i}]"), Level::Field, below, errs);
        }
    }
    if let Some(not) = m.get("not") {
        node(not, &format!("{at}.not"), Level::Field, Nesting::Yes, errs);
    }
}

fn nesting_below(nesting: Nesting) -> Nesting {
    match nesting {
        Nesting::No => Nesting::No,
        _ => Nesting::Yes,
    }
}

/// The root's `metadata` may only restrict `name` and `generateName` (strings).
fn metadata(s: &Value, at: &str, errs: &mut Vec<FieldError>) {
    let Some(m) = s.as_object() else { return };
    let allowed = ["type", "properties", "description"];
    let props_ok = m
        .get("properties")
        .and_then(Value::as_object)
        .is_none_or(|p| p.keys().all(|k| k == "name" || k == "generateName"));
    if !props_ok || m.keys().any(|k| !allowed.contains(&k.as_str())) {
        errs.push(FieldError::forbidden(
            at,
            "must not specify anything other than name and generateName, but metadata is implicitly specified",
        ));
    }
    if let Some(ty) = m.get("type").and_then(Value::as_str)
        && ty != "object"
    {
        errs.push(FieldError::invalid(
            &format!("{at}.type"),
            ty,
            "must be object",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd(doc: Value) -> CustomResourceDefinition {
        serde_json::from_value(doc).expect("decodes")
    }

    fn widget(schema: Value) -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                              "schema": {"openAPIV3Schema": schema}}]
            }
        })
    }

    fn messages(doc: Value) -> Vec<String> {
        validate_crd(&crd(doc))
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_valid_crd_passes() {
        let ok = widget(json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"size": {"type": "integer"}}},
            "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 10}}}
        }}));
        assert_eq!(messages(ok), Vec::<String>::new());
    }

    #[test]
    fn names_group_scope_and_versions() {
        let mut doc = widget(json!({"type": "object"}));
        doc["metadata"]["name"] = json!("gadgets.example.com");
        doc["spec"]["group"] = json!("example");
        doc["spec"]["scope"] = json!("Global");
        doc["spec"]["versions"][0]["storage"] = json!(false);
        doc["spec"]["names"]["listKind"] = json!("Widget");
        let m = messages(doc);
        assert!(m.contains(&r#"metadata.name: Invalid value: "gadgets.example.com": must be spec.names.plural+"."+spec.group"#.to_string()), "{m:?}");
        assert!(m.contains(&r#"spec.group: Invalid value: "example": should be a domain with at least one dot"#.to_string()), "{m:?}");
        assert!(m.contains(&r#"spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced""#.to_string()), "{m:?}");
        assert!(
            m.iter()
                .any(|e| e.starts_with("spec.versions: Invalid value: ")
                    && e.ends_with("must have exactly one version marked as storage version")),
            "{m:?}"
        );
        assert!(m.contains(&r#"spec.names.listKind: Invalid value: "Widget": kind and listKind may not be the same"#.to_string()), "{m:?}");
    }

    #[test]
    fn schemas_are_required_and_structural() {
        let mut doc = widget(json!({}));
        doc["spec"]["versions"][0]
            .as_object_mut()
            .map(|v| v.remove("schema"));
        assert_eq!(
            messages(doc),
            ["spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"]
        );
        let at = "spec.versions[0].schema.openAPIV3Schema";
        assert_eq!(
            messages(widget(
                json!({"properties": {"spec": {"properties": {"a": {"type": "string"}}}}})
            )),
            [
                format!("{at}.type: Required value: must not be empty at the root"),
                format!(
                    "{at}.properties[spec].type: Required value: must not be empty for specified object fields"
                ),
            ]
        );
        assert_eq!(
            messages(widget(json!({"type": "string"}))),
            [format!(
                r#"{at}.type: Invalid value: "string": must be object at the root"#
            )]
        );
        assert_eq!(
            messages(widget(json!({"type": "object", "properties": {
                "spec": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}},
                "list": {"type": "array"},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": false},
            }}))),
            [
                format!(
                    "{at}.properties[free].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined"
                ),
                format!("{at}.properties[list].items: Required value: must be specified"),
                format!(
                    "{at}.properties[spec].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
                ),
            ]
        );
        assert_eq!(
            messages(widget(json!({"type": "object", "properties": {
                "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}},
            }}))),
            [format!(
                "{at}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified"
            )]
        );
        // preserve-unknown-fields and int-or-string need no type; controller-gen's anyOf for
        // int-or-string is the one value validation that may name types.
        assert!(messages(widget(json!({"type": "object", "properties": {
            "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        }}))).is_empty());
        assert_eq!(
            messages(widget(json!({"type": "object", "properties": {
                "spec": {"type": "object", "anyOf": [{"type": "object"}]},
            }}))),
            [format!(
                "{at}.properties[spec].anyOf[0].type: Forbidden: must be empty to be structural"
            )]
        );
        assert!(
            messages(widget(json!({"type": "object", "properties": {
                "free": {"x-kubernetes-preserve-unknown-fields": true},
                "port": {"x-kubernetes-int-or-string": true},
            }})))
            .is_empty()
        );
    }

    #[test]
    fn names_and_conversion_are_defaulted() {
        // Multus's NetworkAttachmentDefinition names no listKind.
        let mut doc = widget(json!({"type": "object"}));
        let names = doc["spec"]["names"].as_object_mut().expect("names");
        names.remove("listKind");
        names.remove("singular");
        assert!(!messages(doc.clone()).is_empty());
        set_defaults(&mut doc);
        assert_eq!(doc["spec"]["names"]["listKind"], "WidgetList");
        assert_eq!(doc["spec"]["names"]["singular"], "widget");
        assert_eq!(doc["spec"]["conversion"], json!({"strategy": "None"}));
        assert_eq!(messages(doc), Vec::<String>::new());

        let mut doc = widget(json!({"type": "object"}));
        doc["spec"]["names"]["singular"] = json!("gizmo");
        doc["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {
            "conversionReviewVersions": ["v1"],
            "clientConfig": {"service": {"namespace": "ns", "name": "svc"}}}});
        set_defaults(&mut doc);
        assert_eq!(doc["spec"]["names"]["singular"], "gizmo");
        assert_eq!(doc["spec"]["conversion"]["strategy"], "Webhook");
        assert_eq!(
            doc["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"],
            443
        );
    }

    #[test]
    fn storage_version_starts_the_stored_versions() {
        let mut obj = widget(json!({"type": "object"}));
        on_create(&mut obj).expect("prepared");
        assert_eq!(obj["status"]["storedVersions"], json!(["v1"]));
        assert_eq!(obj["metadata"]["generation"], 1);
    }

    #[test]
    fn protected_groups_need_api_approval() {
        let crd = |group: &str, approval: Option<&str>| {
            let mut c: CustomResourceDefinition = serde_json::from_value(json!({
                "metadata": {"name": format!("widgets.{group}")},
                "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "widgets", "kind": "Widget"}, "versions": []}
            }))
            .expect("crd");
            if let Some(a) = approval {
                c.metadata.annotations = Some([(API_APPROVED.to_string(), a.to_string())].into());
            }
            c
        };
        let messages = |errs: Vec<FieldError>| -> Vec<String> {
            errs.iter().map(ToString::to_string).collect()
        };
        assert!(api_approval(&crd("example.com", None), None).is_empty());
        assert_eq!(
            messages(api_approval(&crd("policy.networking.k8s.io", None), None)),
            [
                "metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation \"api-approved.kubernetes.io\", see https://github.com/kubernetes/enhancements/pull/1111"
            ]
        );
        assert_eq!(
            messages(api_approval(&crd("x.k8s.io", Some("maybe")), None)),
            [
                "metadata.annotations[api-approved.kubernetes.io]: Invalid value: \"maybe\": protected groups must have approval annotation \"api-approved.kubernetes.io\" with either a URL or a reason starting with \"unapproved\", see https://github.com/kubernetes/enhancements/pull/1111"
            ]
        );
        let approved = crd(
            "x.k8s.io",
            Some("https://github.com/kubernetes/enhancements/pull/1111"),
        );
        assert!(api_approval(&approved, None).is_empty());
        assert!(
            api_approval(&crd("x.kubernetes.io", Some("unapproved, testing")), None).is_empty()
        );
        // An update that leaves a missing annotation missing is not refused.
        let missing = crd("x.k8s.io", None);
        assert!(api_approval(&missing, Some(&missing)).is_empty());
    }
}
