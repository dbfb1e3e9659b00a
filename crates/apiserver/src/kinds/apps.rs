//! apps/v1: DaemonSet (pkg/registry/apps/daemonset) and ControllerRevision
//! (pkg/registry/apps/controllerrevision).

use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet};
use pernode_admission::defaults;
use pernode_admission::validate::{self, TEMPLATE_GENERATION_ANNOTATION};
use serde_json::{Value, json};

use super::Kind;
use crate::error::ApiError;
use crate::registry::{Operation, admit_typed};

pub static DAEMON_SETS: Kind = Kind {
    on_create: daemon_set_on_create,
    on_update: daemon_set_on_update,
    ..Kind::new("apps", "daemonsets", |info, op, obj, validation| {
        admit_typed::<DaemonSet>(info, op, obj, validation, true, |ds, old| {
            if matches!(op, Operation::UpdateStatus { .. }) {
                return old
                    .map(|o| validate::daemon_set_status_update(ds, o))
                    .unwrap_or_default();
            }
            defaults::daemon_set(ds);
            match old {
                None => validate::daemon_set_create(ds),
                Some(old) => validate::daemon_set_update(ds, old),
            }
        })
    })
};

pub static CONTROLLER_REVISIONS: Kind = Kind::new(
    "apps",
    "controllerrevisions",
    |info, op, obj, validation| {
        admit_typed::<ControllerRevision>(info, op, obj, validation, true, |cr, old| match old {
            None => validate::controller_revision_create(cr),
            Some(old) => validate::controller_revision_update(cr, old),
        })
    },
);

/// Generation 1, the template generation annotation (R143: kept from the client if it is a
/// positive number) and an all-zero status.
fn daemon_set_on_create(obj: &mut Value) -> Result<(), ApiError> {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Err(ApiError::bad_request("metadata is required"));
    };
    meta.insert("generation".into(), json!(1));
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    let generation = match annotations
        .get(TEMPLATE_GENERATION_ANNOTATION)
        .and_then(Value::as_str)
    {
        None => 1,
        Some(s) => match s.parse::<i64>() {
            Ok(g) if g >= 1 => g,
            Ok(_) => 1,
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "invalid value of annotation {TEMPLATE_GENERATION_ANNOTATION}: {s:?}"
                )));
            }
        },
    };
    annotations[TEMPLATE_GENERATION_ANNOTATION] = json!(generation.to_string());
    obj["status"] = json!({"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0});
    Ok(())
}

/// Generation +1 on a spec change; the template generation +1 when the pod template changes
/// semantically.
fn daemon_set_on_update(old: &Value, new: &mut Value) -> Result<(), ApiError> {
    super::bump_generation_on_change(old, new, "spec");
    let old_template_generation = old
        .pointer(&format!(
            "/metadata/annotations/{}",
            TEMPLATE_GENERATION_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(1);
    let template_changed =
        template_changed(old.pointer("/spec/template"), new.pointer("/spec/template"));
    let template_generation = old_template_generation + i64::from(template_changed);
    let annotations = new["metadata"]
        .as_object_mut()
        .map(|m| m.entry("annotations").or_insert_with(|| json!({})));
    if let Some(annotations) = annotations {
        if !annotations.is_object() {
            *annotations = json!({});
        }
        annotations[TEMPLATE_GENERATION_ANNOTATION] = json!(template_generation.to_string());
    }
    Ok(())
}

fn template_changed(old: Option<&Value>, new: Option<&Value>) -> bool {
    let typed = |v: Option<&Value>| -> Option<k8s_openapi::api::core::v1::PodTemplateSpec> {
        v.and_then(|v| serde_json::from_value(v.clone()).ok())
    };
    match (typed(old), typed(new)) {
        (Some(a), Some(b)) => pernode_admission::template_changed(&a, &b),
        _ => old != new,
    }
}
