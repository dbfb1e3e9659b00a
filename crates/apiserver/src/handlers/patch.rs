//! patch (upstream's patch.go): JSON, merge and strategic merge patches, server-side apply,
//! and the edits of stored bytes that status patches take.

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use pernode_patch::PatchType;
use pernode_store::{Entry, StoreError};
use serde_json::{Value, json};

use super::*;
use crate::AppState;
use crate::codec::{media_type, parse_json, parse_yaml};
use crate::edit;
use crate::error::ApiError;
use crate::registry::{self, Operation};
use crate::target::Target;

/// The patch types every built-in kind takes, in upstream's order (its 415 lists them).
pub(crate) const PATCH_MEDIA_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// The patch types custom resources take (apiextensions' crdHandler): no strategic merge
/// patch, since a custom object's fields have no patch strategies to merge by.
pub(super) const CUSTOM_PATCH_MEDIA_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

/// The type of a patch (other than an apply) of `info` sent as `media`, or upstream's 415
/// listing the patch types `info` takes.
pub(crate) fn patch_type_of(
    info: &pernode_resources::ResourceInfo,
    media: &str,
) -> Result<PatchType, ApiError> {
    let accepted = match info.custom {
        Some(_) => CUSTOM_PATCH_MEDIA_TYPES,
        None => PATCH_MEDIA_TYPES,
    };
    PatchType::from_content_type(media)
        .filter(|t| accepted.contains(&t.content_type()))
        .ok_or_else(|| ApiError::unsupported_media_type(accepted))
}

pub(super) async fn patch(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let media = media_type(content_type(req));
    if req.body.len() > crate::codec::MAX_BODY_BYTES {
        return Err(ApiError::too_large());
    }
    if media == "application/apply-patch+yaml" {
        return apply_patch(state, req).await;
    }
    crate::field_manager::validate_options("PatchOptions", req, false)?;
    let patch_type = patch_type_of(req.target.info, &media)?;
    let name = req.target.name.clone().unwrap_or_default();
    let key = req.target.key().ok_or_else(ApiError::no_route)?;
    // As GuaranteedUpdate: a lost race is retried until the write applies; a write the
    // client pinned to a version fails on that version instead.
    loop {
        let old = state
            .store
            .get(&key)
            .ok_or_else(|| not_found(&req.target))?;
        let (written, warnings) = match status_edit(req, patch_type, &old)? {
            Some(StatusEdit::Unchanged { warnings }) => (Ok(old), warnings),
            Some(StatusEdit::Changed {
                edited,
                attrs,
                warnings,
            }) => (
                state
                    .store
                    .update_edited(&key, edited.json, attrs, old.rv, edited.managed_fields)
                    .await,
                warnings,
            ),
            None => patch_as_tree(state, req, patch_type, &old, &name).await?,
        };
        match written {
            Ok(entry) => {
                return Ok(answer_written(state, req, StatusCode::OK, &entry, &warnings).await);
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(&req.target, &name, e)),
        }
    }
}

/// The general patch: the stored object parsed, patched, admitted and written whole. Returns
/// the write's outcome (a conflict is retried by the caller) and the warnings.
pub(super) async fn patch_as_tree(
    state: &AppState,
    req: &Request,
    patch_type: PatchType,
    old: &Entry,
    name: &str,
) -> Result<(Result<Entry, StoreError>, Vec<String>), ApiError> {
    let old_value = parse_entry(old)?;
    // A kind served from another's storage is patched in its own form.
    let base = match crate::kinds::of(req.target.info).conversion {
        Some(conversion) => (conversion.from_stored)(&old_value).map_err(ApiError::internal)?,
        // A custom object is patched in the version of the request.
        None if req.target.info.custom.is_some() => {
            let mut base = old_value.clone();
            base["apiVersion"] = json!(req.target.info.api_version());
            base
        }
        None => old_value.clone(),
    };
    let mut patched = pernode_patch::apply(patch_type, &base, &req.body).map_err(patch_error)?;
    drop(base);
    if !patched.is_object() {
        return Err(ApiError::bad_request("the patch did not produce an object"));
    }
    if let Some(e) = crate::kinds::micro_time_error(req.target.info, &patched) {
        return Err(micro_time_patch_error(patch_type, &patched, &req.body, e));
    }
    // A resourceVersion in the patch is a precondition (kubectl apply uses this).
    let pinned = rv_of(&patched).is_some_and(|rv| rv != old.rv.to_string());
    if pinned {
        return Err(ApiError::modified(
            req.target.group(),
            req.target.plural(),
            name,
        ));
    }
    check_type(&req.target, &mut patched)?;
    if patched.pointer("/metadata/name").and_then(Value::as_str) != Some(name) {
        return Err(ApiError::bad_request(
            "metadata.name: the name of an object cannot be changed by a patch",
        ));
    }
    let Computed {
        new,
        expected_rv,
        warnings,
    } = compute_update(state, req, old, &old_value, patched, Tracking::Update)?;
    let written = commit_update(
        state,
        &req.target,
        old,
        &old_value,
        new,
        expected_rv,
        req.query.dry_run(),
    )
    .await?;
    Ok((written, warnings))
}

/// A status patch made as an edit of the stored object (see [`status_edit`]).
pub(super) enum StatusEdit {
    /// The patch changes nothing: the stored version stands.
    Unchanged { warnings: Vec<String> },
    /// The object with its new status, and its index attributes.
    Changed {
        edited: crate::edit::Edited,
        attrs: pernode_store::Attrs,
        warnings: Vec<String>,
    },
}

/// A merge or strategic merge patch of a status that names `status` alone (the kubelet's are
/// such), on a kind whose status writes are admitted on their status alone, made as an edit of
/// the stored object: the status strategy keeps everything else as stored, so only `status` is
/// parsed, patched, admitted and serialized. The same steps as the general path, on the part
/// that changes; the status alone merges the same way because patches merge key by key. `None`:
/// the patch goes the general way (any other member, a JSON patch, a dry run, an object being
/// deleted, which a write may finish deleting).
pub(super) fn status_edit(
    req: &Request,
    patch_type: PatchType,
    old: &Entry,
) -> Result<Option<StatusEdit>, ApiError> {
    // NodeRestriction checks a pod status edit on the edit itself; any other kind written by
    // a node goes the general way, where it sees the whole object.
    let pods = req.target.group().is_empty() && req.target.plural() == "pods";
    let node_writes_other_kind = req.user.node_identity().is_some() && !pods;
    if req.target.subresource.as_deref() != Some("status")
        || !registry::admits_status_alone(req.target.info)
        || patch_type == PatchType::Json
        || req.query.dry_run()
        || node_writes_other_kind
    {
        return Ok(None);
    }
    let Ok(patch) = serde_json::from_slice::<Value>(&req.body) else {
        return Ok(None);
    };
    if !patch.as_object().is_some_and(|members| {
        members.len() == 1 && members.get("status").is_some_and(Value::is_object)
    }) {
        return Ok(None);
    }
    let Some(mut object) = edit::StoredObject::parse(&old.json, old.managed_fields()) else {
        return Ok(None);
    };
    if object.deleting().unwrap_or(true) {
        return Ok(None);
    }
    let mut original = serde_json::Map::new();
    if let Some(status) = object.get("status") {
        let status = serde_json::from_str(status)
            .map_err(|e| ApiError::internal(format!("stored object is not JSON: {e}")))?;
        original.insert("status".to_string(), status);
    }
    let original = Value::Object(original);
    let mut patched =
        pernode_patch::apply_parsed(patch_type, &original, patch).map_err(patch_error)?;
    crate::admission_plugins::node_restriction::admit_pod_status_edit(
        &req.user,
        &req.target,
        &old.attrs,
        original.get("status"),
        patched.get("status"),
    )?;
    let op = Operation::UpdateStatus { old: &original };
    let warnings = registry::admit(
        req.target.info,
        &op,
        &mut patched,
        req.query.field_validation(),
    )?;
    let status = patched.get("status");
    if status == original.get("status") {
        return Ok(Some(StatusEdit::Unchanged { warnings }));
    }
    object.set("status", status);
    let attrs = registry::attrs_with_status(req.target.plural(), &old.attrs, status);
    Ok(Some(StatusEdit::Changed {
        edited: object.into_json(),
        attrs,
        warnings,
    }))
}

/// A patch whose result upstream cannot decode (a MicroTime without six fractional digits):
/// the 422 of upstream's patcher, naming the patched object (JSON and merge patches) or the
/// patch itself, as Go prints a map (strategic merge patches).
pub(super) fn micro_time_patch_error(
    patch_type: PatchType,
    patched: &Value,
    patch: &[u8],
    error: String,
) -> ApiError {
    let value = match patch_type {
        PatchType::StrategicMerge => serde_json::from_slice::<Value>(patch)
            .map(|p| pernode_admission::go_map_render(&p))
            .unwrap_or_default(),
        _ => patched.to_string(),
    };
    let errors = [pernode_admission::FieldError::invalid(
        "patch", value, &error,
    )];
    let causes = errors
        .iter()
        .map(|e| crate::error::Cause {
            reason: e.reason().to_string(),
            message: e.cause_message(),
            field: e.field.clone(),
        })
        .collect();
    ApiError::invalid(
        "",
        "",
        "",
        pernode_admission::invalid_message("", "", "", &errors),
        causes,
    )
}

pub(super) fn patch_error(e: pernode_patch::PatchError) -> ApiError {
    tracing::debug!(error = %e, "patch did not apply");
    ApiError::from_parts(e.code(), e.reason(), e.status_message())
}

/// Server-side apply (`application/apply-patch+yaml`), as upstream's applyPatcher: the
/// configuration is merged into the live object by `field_manager` (ownership, conflicts,
/// `force`, pruning of fields the manager stopped applying), then admitted and written as any
/// update; a missing object is created from the configuration alone.
pub(super) async fn apply_patch(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    if req.query.get("fieldManager").is_none_or(str::is_empty) {
        return Err(ApiError::unprocessable(
            "PATCH: field manager is required for apply requests: fieldManager parameter must be set",
        ));
    }
    crate::field_manager::validate_options("PatchOptions", req, true)?;
    let mut applied = match parse_json(&req.body) {
        Ok(v) => v,
        Err(_) => parse_yaml(&req.body)?,
    };
    if !applied.is_object() {
        return Err(ApiError::bad_request("the apply patch must be an object"));
    }
    check_members(req.target.info, &applied)?;
    let name = req.target.name.clone().unwrap_or_default();
    match applied.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        Some(_) => {}
        None => {
            if !applied.get("metadata").is_some_and(Value::is_object) {
                applied["metadata"] = json!({});
            }
            applied["metadata"]["name"] = json!(name);
        }
    }
    let key = req.target.key().ok_or_else(ApiError::no_route)?;
    loop {
        let Some(old) = state.store.get(&key) else {
            if req.target.subresource.is_some() {
                return Err(not_found(&req.target));
            }
            let created = crate::field_manager::apply(req, None, &applied)?;
            let create_req = Request {
                method: Method::POST,
                target: Target {
                    name: None,
                    ..req.target.clone()
                },
                // The client's options (dryRun, fieldValidation) hold for the write the apply
                // becomes.
                query: req.query.clone(),
                user: req.user.clone(),
                managed_fields: req.managed_fields,
                headers: HeaderMap::new(),
                body: Bytes::from(created.to_string()),
            };
            return create_tracked(state, &create_req, Tracking::Applied).await;
        };
        let old_value = parse_entry(&old)?;
        // A kind served from another's storage is applied to in its own form; a custom object
        // in the version of the request.
        let base = match crate::kinds::of(req.target.info).conversion {
            Some(conversion) => (conversion.from_stored)(&old_value).map_err(ApiError::internal)?,
            None if req.target.info.custom.is_some() => {
                let mut base = old_value.clone();
                base["apiVersion"] = json!(req.target.info.api_version());
                base
            }
            None => old_value.clone(),
        };
        let mut merged = crate::field_manager::apply(req, Some(&base), &applied)?;
        drop(base);
        if let Some(e) = crate::kinds::micro_time_error(req.target.info, &merged) {
            return Err(micro_time_patch_error(
                PatchType::Merge,
                &merged,
                &req.body,
                e,
            ));
        }
        // A resourceVersion in the configuration is a precondition.
        if rv_of(&applied).is_some_and(|rv| rv != old.rv.to_string()) {
            return Err(ApiError::modified(
                req.target.group(),
                req.target.plural(),
                &name,
            ));
        }
        check_type(&req.target, &mut merged)?;
        let Computed {
            new,
            expected_rv,
            warnings,
        } = compute_update(state, req, &old, &old_value, merged, Tracking::Applied)?;
        let written = commit_update(
            state,
            &req.target,
            &old,
            &old_value,
            new,
            expected_rv,
            req.query.dry_run(),
        )
        .await?;
        match written {
            Ok(entry) => {
                return Ok(answer_written(state, req, StatusCode::OK, &entry, &warnings).await);
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(&req.target, &name, e)),
        }
    }
}
