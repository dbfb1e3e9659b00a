//! delete and deletecollection (upstream's delete.go): options, preconditions, graceful
//! deletion and finalizers.

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use pernode_store::StoreError;
use serde_json::{Value, json};

use super::*;
use crate::AppState;
use crate::codec::{BodyKind, decode_object, encode_list};
use crate::error::{ApiError, success_status};
use crate::filter::Filter;
use crate::registry::now_rfc3339;
use crate::target::Target;

/// The options of a delete (query and DeleteOptions body).
#[derive(Clone, Default)]
pub(crate) struct DeleteOptions {
    pub(crate) grace_period: Option<i64>,
    pub(crate) propagation: Option<String>,
    pub(crate) precondition_uid: Option<String>,
    pub(crate) precondition_rv: Option<String>,
    pub(crate) dry_run: bool,
}

pub(super) fn delete_options(req: &Request) -> Result<DeleteOptions, ApiError> {
    let mut opts = DeleteOptions::default();
    // Typed client-go clients (kubectl drain's eviction fallback among them) send the options
    // as protobuf; `kubectl delete` sends JSON.
    if !req.body.is_empty() {
        let body = decode_object(content_type(req), &req.body, &BodyKind::DELETE_OPTIONS)?;
        check_delete_options_body(&body)?;
        opts.grace_period = body.get("gracePeriodSeconds").and_then(Value::as_i64);
        opts.propagation = body
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string);
        if body.get("orphanDependents").and_then(Value::as_bool) == Some(true)
            && opts.propagation.is_none()
        {
            opts.propagation = Some("Orphan".into());
        }
        opts.precondition_uid = body
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string);
        opts.precondition_rv = body
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string);
        if let Some(values) = body.get("dryRun").filter(|v| !v.is_null()) {
            let values: Vec<String> = match values.as_array() {
                Some(items) => items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                    .collect(),
                None => {
                    return Err(ApiError::bad_request(format!(
                        "DeleteOptions.dryRun: expected a list of strings, got {values}"
                    )));
                }
            };
            crate::params::validate_dry_run("DeleteOptions", &values)?;
            opts.dry_run = !values.is_empty();
        }
    }
    if let Some(g) = req.query.get("gracePeriodSeconds") {
        opts.grace_period = Some(
            g.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid gracePeriodSeconds: {g}")))?,
        );
    }
    if let Some(p) = req.query.get("propagationPolicy") {
        opts.propagation = Some(p.to_string());
    }
    opts.dry_run |= req.query.dry_run();
    if let Some(p) = &opts.propagation
        && !matches!(p.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::unprocessable(format!(
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
        )));
    }
    Ok(opts)
}

/// What upstream's decoding of a DELETE body refuses with a 400 before anything is deleted: a
/// body of another kind (the meta scheme registers no other), and members of the wrong JSON
/// type (Go's `json: cannot unmarshal ...` into the typed DeleteOptions), never a member read
/// as absent (which made `{"kind":"Pod"}` or `"gracePeriodSeconds":"x"` a plain delete).
pub(super) fn check_delete_options_body(body: &Value) -> Result<(), ApiError> {
    if let Some(kind) = body.get("kind").filter(|k| !k.is_null())
        && kind
            .as_str()
            .is_none_or(|k| !k.is_empty() && k != "DeleteOptions")
    {
        let version = body.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        return Err(ApiError::bad_request(format!(
            "no kind {} is registered for version {} in scheme \"k8s.io/apimachinery/pkg/apis/meta/internalversion/scheme\"",
            pernode_core::goquote::quote(
                &kind
                    .as_str()
                    .map_or_else(|| kind.to_string(), str::to_string)
            ),
            pernode_core::goquote::quote(version),
        )));
    }
    let wrong = |field: &str, got: &Value, go_type: &str| {
        let json_type = match got {
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "bool",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
            Value::Null => "null",
        };
        ApiError::bad_request(format!(
            "json: cannot unmarshal {json_type} into Go struct field DeleteOptions.{field} of type {go_type}"
        ))
    };
    /// A member, whether a value fits it, and its Go type.
    type Member = (&'static str, fn(&Value) -> bool, &'static str);
    let members: [Member; 4] = [
        ("gracePeriodSeconds", |v| v.is_i64(), "int64"),
        (
            "propagationPolicy",
            Value::is_string,
            "v1.DeletionPropagation",
        ),
        ("orphanDependents", Value::is_boolean, "bool"),
        ("preconditions", Value::is_object, "v1.Preconditions"),
    ];
    for (field, fits, go_type) in members {
        if let Some(value) = body.get(field).filter(|v| !v.is_null())
            && !fits(value)
        {
            return Err(wrong(field, value, go_type));
        }
    }
    for field in ["uid", "resourceVersion"] {
        if let Some(value) = body
            .get("preconditions")
            .and_then(|p| p.get(field))
            .filter(|v| !v.is_null())
            && !value.is_string()
        {
            return Err(wrong(&format!("preconditions.{field}"), value, "string"));
        }
    }
    Ok(())
}

pub(super) async fn delete(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let opts = delete_options(req)?;
    let name = req.target.name.clone().unwrap_or_default();
    crate::namespace_lifecycle::admit_delete(req.target.info, &name)?;
    crate::admission_plugins::node_restriction::admit_delete(&state.store, &req.user, &req.target)?;
    if req.target.plural() == "namespaces" && req.target.group().is_empty() {
        return crate::namespace_lifecycle::delete(state, req, &opts).await;
    }
    let key = req.target.key().ok_or_else(ApiError::no_route)?;
    if crate::crd::is_crd(req.target.info) && !opts.dry_run {
        // Upstream's CRD REST: mark it (deletionTimestamp, the cleanup finalizer, Terminating);
        // the controller deletes its objects and then the CRD.
        let entry = crate::crd::mark_for_deletion(
            &state.store,
            &key,
            opts.precondition_uid.as_deref(),
            opts.precondition_rv.as_deref(),
        )
        .await?;
        after_write(state, req.target.info, entry.rv).await;
        return Ok(json_response(StatusCode::OK, entry.json));
    }
    let (status, body, rv) = delete_object(state, &req.target, &key, &opts).await?;
    after_write(state, req.target.info, rv).await;
    Ok(json_response(
        status,
        crate::kinds::served(req.target.info, &Bytes::from(body)),
    ))
}

/// The preconditions of a delete (UID, resourceVersion) against the stored object.
pub(crate) fn check_delete_preconditions(
    target: &Target,
    name: &str,
    obj: &Value,
    rv: u64,
    opts: &DeleteOptions,
) -> Result<(), ApiError> {
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("");
    if let Some(want) = &opts.precondition_uid
        && want != uid
    {
        return Err(ApiError::conflict(
            target.group(),
            target.plural(),
            name,
            &format!("Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"),
        ));
    }
    if let Some(want) = &opts.precondition_rv
        && *want != rv.to_string()
    {
        return Err(ApiError::conflict(
            target.group(),
            target.plural(),
            name,
            &format!(
                "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rv}"
            ),
        ));
    }
    Ok(())
}

/// Deletes one object with upstream's graceful and finalizer semantics. Returns the reply and
/// the version of the write (the stored one when nothing was written).
pub(crate) async fn delete_object(
    state: &AppState,
    target: &Target,
    key: &str,
    opts: &DeleteOptions,
) -> Result<(StatusCode, String, u64), ApiError> {
    let name = key.rsplit('/').next().unwrap_or("").to_string();
    // As GuaranteedUpdate: a lost race is retried until the write applies; a write the
    // client pinned to a version fails on that version instead.
    loop {
        let old = state
            .store
            .get(key)
            .ok_or_else(|| ApiError::not_found(target.group(), target.plural(), &name))?;
        let mut obj = parse_entry(&old)?;
        let uid = obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        check_delete_preconditions(target, &name, &obj, old.rv, opts)?;
        let grace = graceful_period(target, &obj, opts.grace_period);
        let mut finalizers: Vec<String> = obj
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let already_deleting = obj
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null());
        let policy_finalizer = match opts.propagation.as_deref() {
            Some("Orphan") => Some("orphan"),
            Some("Foreground") => Some("foregroundDeletion"),
            _ => None,
        };
        if let Some(f) = policy_finalizer
            && !already_deleting
            && !finalizers.iter().any(|x| x == f)
        {
            // Orphan and Foreground exclude each other; the later request wins.
            finalizers.retain(|x| x != "orphan" && x != "foregroundDeletion");
            finalizers.push(f.to_string());
        }
        let immediate = grace == 0 && finalizers.is_empty();
        if opts.dry_run {
            return Ok((StatusCode::OK, obj.to_string(), old.rv));
        }
        if immediate {
            return match state.store.delete(key, Some(old.rv)).await {
                Ok(deleted) => Ok((
                    StatusCode::OK,
                    success_status(&name, target.group(), target.plural(), Some(&uid)).to_string(),
                    deleted.rv,
                )),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => Err(store_error(target, &name, e)),
            };
        }
        // Graceful: mark it; the node (or the simulator) or the garbage collector finishes it.
        let meta = &mut obj["metadata"];
        let current_grace = meta
            .get("deletionGracePeriodSeconds")
            .and_then(Value::as_i64);
        if already_deleting
            && current_grace.is_some_and(|g| g <= grace)
            && meta
                .get("finalizers")
                .and_then(Value::as_array)
                .map(Vec::len)
                == Some(finalizers.len())
        {
            // Nothing shortens: upstream answers 202 with the object unchanged.
            return Ok((
                StatusCode::ACCEPTED,
                String::from_utf8_lossy(&old.json).into_owned(),
                old.rv,
            ));
        }
        let deletion_time = {
            let now = k8s_openapi::jiff::Timestamp::now();
            let at = now.as_second() + grace.max(0);
            k8s_openapi::jiff::Timestamp::from_second(at)
                .map(|t| t.to_string())
                .unwrap_or_else(|_| now_rfc3339())
        };
        if !already_deleting || current_grace.is_some_and(|g| grace < g) {
            meta["deletionTimestamp"] = json!(deletion_time);
        }
        meta["deletionGracePeriodSeconds"] = json!(grace);
        meta["finalizers"] = json!(finalizers);
        if finalizers.is_empty()
            && let Some(m) = meta.as_object_mut()
        {
            m.remove("finalizers");
        }
        match state.store.update(key, obj, Some(old.rv)).await {
            Ok(entry) => {
                return Ok((
                    StatusCode::OK,
                    String::from_utf8_lossy(&entry.json).into_owned(),
                    entry.rv,
                ));
            }
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(target, &name, e)),
        }
    }
}

/// Pods get a grace period (the request's, else the pod's terminationGracePeriodSeconds, else
/// 30 s) unless they are unbound or already finished, as upstream's pod strategy; other kinds
/// are deleted at once (finalizers permitting).
pub(super) fn graceful_period(target: &Target, obj: &Value, requested: Option<i64>) -> i64 {
    if target.plural() != "pods" {
        return 0;
    }
    let unbound = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    let phase = obj
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if unbound || phase == "Succeeded" || phase == "Failed" {
        return 0;
    }
    let grace = requested
        .or_else(|| {
            obj.pointer("/spec/terminationGracePeriodSeconds")
                .and_then(Value::as_i64)
        })
        .unwrap_or(30);
    // Upstream turns a negative or zero request into 1 s unless the caller forced 0.
    if grace < 0 { 1 } else { grace }
}

pub(super) async fn delete_collection(
    state: &AppState,
    req: &Request,
) -> Result<Response, ApiError> {
    let opts = delete_options(req)?;
    let filter = Filter::from_query(req.target.info, &req.query)?;
    let (_, items) = state
        .store
        .list(&req.target.prefix(), |e| filter.matches(e));
    let mut deleted = Vec::new();
    let mut last_rv = 0;
    for entry in items {
        match delete_object(state, &req.target, &entry.key, &opts).await {
            Ok((_, _, rv)) => {
                last_rv = last_rv.max(rv);
                deleted.push(crate::kinds::served_entry(req.target.info, &entry).into_owned());
            }
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let info = req.target.info;
    after_write(state, info, last_rv).await;
    Ok(json_response(
        StatusCode::OK,
        encode_list(
            info,
            state.store.current_rv(),
            None,
            &deleted,
            crate::codec::ManagedFields::Kept,
        ),
    ))
}
