//! update (upstream's update.go): the computation of a new object from a client's (shared with
//! patch) and its commit, retried on conflict as GuaranteedUpdate.

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use pernode_store::{Entry, StoreError};
use serde_json::{Value, json};

use super::*;
use crate::AppState;
use crate::codec::{BodyKind, decode_object};
use crate::error::ApiError;
use crate::registry::{self, Operation};
use crate::target::Target;

pub(super) fn operation<'a>(target: &Target, old: &'a Value) -> Operation<'a> {
    match target.subresource.as_deref() {
        Some("status") => Operation::UpdateStatus { old },
        Some("approval") => Operation::UpdateApproval { old },
        _ => Operation::Update { old },
    }
}

/// Takes the managedFields an object was sent with (the strategy would drop them), to put
/// back for the field manager: moved rather than copied, as they are most of a pod's metadata.
pub(super) fn take_managed_fields(obj: &mut Value) -> Option<Value> {
    obj.get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|meta| meta.remove("managedFields"))
}

/// Puts back the managedFields an object was sent or applied with.
pub(super) fn restore_managed_fields(obj: &mut Value, sent: Option<Value>) {
    if let Some(sent) = sent
        && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert("managedFields".into(), sent);
    }
}

pub(super) fn rv_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Whether two versions of an object differ in anything but resourceVersion.
/// Whether two versions of an object are the same apart from `metadata.resourceVersion`.
pub(super) fn same_object(a: &Value, b: &Value) -> bool {
    registry::same_object_except(a, b, None)
}

/// A computed update: the object to store, the version it was computed from, and warnings.
pub(super) struct Computed {
    pub(super) new: Value,
    pub(super) expected_rv: u64,
    pub(super) warnings: Vec<String>,
}

/// Writes `new` over `old`: no-ops keep the stored version; objects being deleted whose last
/// finalizer went away are removed, as upstream's update path does.
pub(super) async fn commit_update(
    state: &AppState,
    target: &Target,
    old: &Entry,
    old_value: &Value,
    new: Value,
    expected_rv: u64,
    dry_run: bool,
) -> Result<Result<Entry, StoreError>, ApiError> {
    if same_object(old_value, &new) {
        return Ok(Ok(old.clone()));
    }
    if dry_run {
        let mut shown = new.clone();
        shown["metadata"]["resourceVersion"] = json!(old.rv.to_string());
        return Ok(Ok(old.with_json(Bytes::from(shown.to_string()))));
    }
    let key = &old.key;
    if should_delete_during_update(target, &new) {
        return Ok(state.store.delete(key, Some(expected_rv)).await);
    }
    Ok(state.store.update(key, new, Some(expected_rv)).await)
}

pub(super) fn should_delete_during_update(target: &Target, new: &Value) -> bool {
    let meta = &new["metadata"];
    let terminating = meta.get("deletionTimestamp").is_some_and(|v| !v.is_null());
    let no_finalizers = meta
        .get("finalizers")
        .and_then(Value::as_array)
        .is_none_or(|f| f.is_empty());
    let grace_done = target.plural() != "pods"
        || meta
            .get("deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            == Some(0);
    terminating
        && no_finalizers
        && grace_done
        && crate::namespace_lifecycle::may_delete_during_update(target.info, new)
}

pub(super) async fn update(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    crate::field_manager::validate_options("UpdateOptions", req, false)?;
    let mut body = decode_object(content_type(req), &req.body, &BodyKind::of(req.target.info))?;
    check_type(&req.target, &mut body)?;
    crate::kinds::check_micro_times(req.target.info, &body)?;
    let name = req.target.name.clone().unwrap_or_default();
    match body.pointer("/metadata/name").and_then(Value::as_str) {
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        _ => body["metadata"]["name"] = json!(name),
    }
    // As upstream's update handler: a body naming another namespace is a 400, never moved.
    check_namespace(&req.target, &mut body)?;
    let requested_rv = match rv_of(&body) {
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::modified(req.target.group(), req.target.plural(), &name))?,
        ),
        None => None,
    };
    let key = req.target.key().ok_or_else(ApiError::no_route)?;
    // As GuaranteedUpdate: a lost race is retried until the write applies; a write the
    // client pinned to a version fails on that version instead.
    loop {
        let old = state
            .store
            .get(&key)
            .ok_or_else(|| not_found(&req.target))?;
        if requested_rv.is_some_and(|rv| rv != old.rv) {
            return Err(ApiError::modified(
                req.target.group(),
                req.target.plural(),
                &name,
            ));
        }
        let old_value = parse_entry(&old)?;
        let Computed {
            new,
            expected_rv,
            warnings,
        } = compute_update(state, req, &old, &old_value, body.clone(), Tracking::Update)?;
        match commit_update(
            state,
            &req.target,
            &old,
            &old_value,
            new,
            expected_rv,
            req.query.dry_run(),
        )
        .await?
        {
            Ok(entry) => {
                return Ok(answer_written(state, req, StatusCode::OK, &entry, &warnings).await);
            }
            Err(StoreError::Conflict { .. }) if requested_rv.is_none() => continue,
            Err(e) => return Err(store_error(&req.target, &name, e)),
        }
    }
}

pub(super) fn compute_update(
    state: &AppState,
    req: &Request,
    old: &Entry,
    old_value: &Value,
    mut new: Value,
    tracking: Tracking,
) -> Result<Computed, ApiError> {
    // NodeRestriction sees the object as sent or patched, before the strategy (upstream's
    // mutating admission).
    crate::admission_plugins::node_restriction::admit_update(
        &req.user,
        &req.target,
        old_value,
        &new,
    )?;
    let op = operation(&req.target, old_value);
    // The strategy drops managedFields a client sends; the field manager reads them.
    let sent = take_managed_fields(&mut new);
    if rv_of(&new).is_none() {
        // Validation (as upstream) requires the version on updates; unconditional writes use
        // the one they were computed from.
        new["metadata"]["resourceVersion"] = json!(old.rv.to_string());
    }
    registry::prepare_update(req.target.info, &op, &mut new)?;
    // Upstream's policybased storage checks the updated object before its validation.
    crate::rbac_escalation::check(state, req, &new, Some(old_value))?;
    let warnings = registry::admit(req.target.info, &op, &mut new, req.query.field_validation())?;
    // Admission round-trips through the typed object; identity metadata must survive it.
    registry::prepare_update(req.target.info, &op, &mut new)?;
    restore_managed_fields(&mut new, sent);
    if tracking == Tracking::Update {
        crate::field_manager::record_update(req, Some(old_value), &mut new);
    }
    // Validating admission sees the object the strategy prepared and validated.
    crate::admission_plugins::certificates::admit_update(
        state.authorizer.as_ref(),
        &req.user,
        &req.target,
        old_value,
        &new,
    )?;
    Ok(Computed {
        new,
        expected_rv: old.rv,
        warnings,
    })
}
