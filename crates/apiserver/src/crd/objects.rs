//! Admission of custom objects (upstream's customresource strategy and its codec's pruning
//! and defaulting): `metadata` decoded as ObjectMeta and validated as every kind's, the rest
//! pruned, defaulted and validated against the version's `openAPIV3Schema`. Unknown fields
//! are the pruned ones: warnings under `fieldValidation=Warn`, a 400 under `Strict`.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use pernode_admission::validate;
use pernode_resources::ResourceInfo;
use serde::Deserialize;
use serde_json::{Value, json};

use super::schema;
use crate::codec::unknown_fields;
use crate::error::ApiError;
use crate::kinds::Kind;
use crate::params::FieldValidation;
use crate::registry::{self, Operation};

/// The strategy every custom resource shares; what differs comes from its catalogue entry.
pub static CUSTOM_OBJECTS: Kind = Kind {
    on_create: crate::kinds::first_generation,
    on_update: bump_generation,
    ..Kind::new("", "", admit)
};

/// Generation + 1 on any change but metadata (status is the stored one already when the
/// status subresource is on, so its changes do not count there).
fn bump_generation(old: &Value, new: &mut Value) -> Result<(), ApiError> {
    let rest = |v: &Value| {
        v.as_object().map(|m| {
            m.iter()
                .filter(|(k, _)| *k != "metadata")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<serde_json::Map<_, _>>()
        })
    };
    if rest(old) != rest(new) {
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert("generation".into(), json!(generation + 1));
        }
    }
    Ok(())
}

fn admit(
    info: &ResourceInfo,
    op: &Operation<'_>,
    obj: &mut Value,
    validation: FieldValidation,
) -> Result<Vec<String>, ApiError> {
    let cannot_handle = |e: String| {
        ApiError::bad_request(format!(
            "{kind} in version {version:?} cannot be handled as a {kind}: {e}",
            kind = info.kind,
            version = info.version
        ))
    };
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    };
    let raw_meta = map.remove("metadata").unwrap_or_else(|| json!({}));
    let meta = ObjectMeta::deserialize(&raw_meta).map_err(|e| cannot_handle(e.to_string()))?;
    let mut typed_meta =
        serde_json::to_value(&meta).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut unknown = unknown_fields("metadata", &raw_meta, &typed_meta);
    let custom = info.custom;
    let schema = custom.and_then(|c| c.schema.as_ref());
    if let Some(schema) = schema {
        // metadata is out of the object while the schema prunes and defaults the rest.
        unknown.extend(schema::prune(obj, schema));
        schema::default(obj, schema);
    }
    let warnings: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    match validation {
        FieldValidation::Strict if !warnings.is_empty() => {
            return Err(cannot_handle(format!(
                "strict decoding error: {}",
                warnings.join(", ")
            )));
        }
        FieldValidation::Ignore => {}
        _ => {}
    }
    let mut errs = match op {
        Operation::Create => Vec::new(),
        Operation::Update { old }
        | Operation::UpdateStatus { old }
        | Operation::UpdateApproval { old } => {
            let old_meta = ObjectMeta::deserialize(old.get("metadata").unwrap_or(&Value::Null))
                .unwrap_or_default();
            validate::object_meta_update(&meta, &old_meta)
        }
    };
    errs.extend(validate::object_meta(
        &meta,
        info.namespaced,
        validate::name_is_dns_subdomain,
    ));
    if let Some(schema) = schema {
        errs.extend(schema::validate(obj, schema));
        errs.extend(schema::validate_list_sets_and_maps(obj, schema));
    }
    if !errs.is_empty() {
        let name = meta.name.clone().unwrap_or_default();
        return Err(registry::invalid(info, &name, &errs));
    }
    registry::go_omit_empty(&mut typed_meta);
    obj["metadata"] = typed_meta;
    obj["kind"] = json!(info.kind);
    // Stored in the storage version, as upstream; reads and write answers name the version
    // of the request (`crd::conversion`, strategy None).
    obj["apiVersion"] = json!(match custom {
        Some(c) => format!("{}/{}", info.group, c.storage_version),
        None => info.api_version().to_string(),
    });
    let mut warnings = if validation == FieldValidation::Ignore {
        Vec::new()
    } else {
        warnings
    };
    if let Some(w) = custom.and_then(|c| c.deprecation_warning.clone()) {
        warnings.push(w);
    }
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pernode_resources::{CustomDefinition, CustomInfo, intern};

    fn widgets() -> &'static ResourceInfo {
        intern(CustomDefinition {
            group: "objects.test.example.com".into(),
            version: "v1".into(),
            plural: "widgets".into(),
            singular: "widget".into(),
            kind: "Widget".into(),
            namespaced: true,
            short_names: vec![],
            categories: vec![],
            info: CustomInfo {
                api_version: "objects.test.example.com/v1".into(),
                list_kind: "WidgetList".into(),
                crd_name: "widgets.objects.test.example.com".into(),
                storage_version: "v1".into(),
                schema: Some(json!({"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "size": {"type": "integer", "maximum": 10, "default": 1}}}}})),
                printer_columns: vec![],
                status: false,
                scale: None,
                deprecation_warning: None,
            },
        })
    }

    fn object(spec: Value) -> Value {
        json!({"apiVersion": "objects.test.example.com/v1", "kind": "Widget",
               "metadata": {"name": "w", "namespace": "default", "bogus": 1, "labels": {}},
               "spec": spec})
    }

    #[test]
    fn unknown_fields_are_pruned_warned_or_refused() {
        let mut obj = object(json!({"extra": true}));
        let warnings = admit(
            widgets(),
            &Operation::Create,
            &mut obj,
            FieldValidation::Warn,
        )
        .expect("admitted");
        assert_eq!(
            warnings,
            [
                "unknown field \"metadata.bogus\"",
                "unknown field \"spec.extra\""
            ]
        );
        assert_eq!(obj["spec"], json!({"size": 1}));
        assert_eq!(
            obj["metadata"],
            json!({"name": "w", "namespace": "default"})
        );

        let mut obj = object(json!({"extra": true}));
        let e = admit(
            widgets(),
            &Operation::Create,
            &mut obj,
            FieldValidation::Strict,
        )
        .expect_err("strict");
        assert_eq!(e.code, 400);
        assert_eq!(
            e.message,
            r#"Widget in version "v1" cannot be handled as a Widget: strict decoding error: unknown field "metadata.bogus", unknown field "spec.extra""#
        );
    }

    #[test]
    fn invalid_objects_are_422_with_upstreams_message() {
        let mut obj = object(json!({"size": 11}));
        let e = admit(
            widgets(),
            &Operation::Create,
            &mut obj,
            FieldValidation::Ignore,
        )
        .expect_err("invalid");
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            r#"Widget.objects.test.example.com "w" is invalid: spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10"#
        );
    }
}
