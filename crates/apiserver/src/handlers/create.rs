//! create (upstream's create.go): decode, admission, generated names, the creator's
//! managedFields, the store.

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use pernode_store::StoreError;
use serde_json::{Value, json};

use super::*;
use crate::AppState;
use crate::codec::{BodyKind, decode_object};
use crate::error::ApiError;
use crate::registry::{self, Operation};
use crate::target::{Target, object_key};

/// How many times a create with a generated name tries another name after a collision.
pub(super) const MAX_GENERATE_NAME_TRIES: usize = 8;

/// Checks `kind`/`apiVersion` of a body against the resource addressed, filling them in when
/// absent.
pub(crate) fn check_type(target: &Target, obj: &mut Value) -> Result<(), ApiError> {
    let info = target.info;
    match obj.get("kind").and_then(Value::as_str) {
        Some(kind) if !kind.is_empty() && kind != info.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the body ({kind}) does not match the resource ({}): it must be {}",
                info.plural, info.kind
            )));
        }
        _ => obj["kind"] = json!(info.kind),
    }
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some(v) if !v.is_empty() && v != info.api_version() => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({})",
                info.api_version()
            )));
        }
        _ => obj["apiVersion"] = json!(info.api_version()),
    }
    check_members(info, obj)?;
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    Ok(())
}

/// `metadata`, `spec` and `status` are objects (or null, or absent) in every kind: any other
/// JSON type is a 400, as kube-apiserver's decoder refuses it, and never a value to drop or
/// replace (which would wipe the stored labels) or to index into (which would panic).
pub(super) fn check_members(
    info: &pernode_resources::ResourceInfo,
    obj: &Value,
) -> Result<(), ApiError> {
    // A custom object's spec and status are whatever its schema says.
    let members = if info.custom.is_some() { 1 } else { 3 };
    for (member, go_type) in [
        ("metadata", "v1.ObjectMeta".to_string()),
        ("spec", format!("{}.{}Spec", info.version, info.kind)),
        ("status", format!("{}.{}Status", info.version, info.kind)),
    ]
    .into_iter()
    .take(members)
    {
        let json_type = match obj.get(member) {
            None | Some(Value::Null | Value::Object(_)) => continue,
            Some(Value::String(_)) => "string",
            Some(Value::Number(_)) => "number",
            Some(Value::Bool(_)) => "bool",
            Some(Value::Array(_)) => "array",
        };
        let kind = info.kind;
        return Err(ApiError::bad_request(format!(
            "{kind} in version {:?} cannot be handled as a {kind}: json: cannot unmarshal {json_type} into Go struct field {kind}.{member} of type {go_type}",
            info.version
        )));
    }
    Ok(())
}

/// Aligns the body's namespace with the request's (whether it exists is admission's question:
/// [`crate::namespace_lifecycle`]).
pub(crate) fn check_namespace(target: &Target, obj: &mut Value) -> Result<(), ApiError> {
    if !target.info.namespaced {
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.remove("namespace");
        }
        return Ok(());
    }
    let ns = target.namespace.clone().unwrap_or_default();
    match obj.pointer("/metadata/namespace").and_then(Value::as_str) {
        Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        _ => obj["metadata"]["namespace"] = json!(ns),
    }
    Ok(())
}

/// Upstream's generateName suffix: five characters from an alphabet without vowels.
pub(crate) fn generated_name(base: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    // Upstream keeps at most 58 characters of the prefix (63 minus the suffix); cut on a char
    // boundary, since the prefix is not validated yet.
    let base: String = base.chars().take(58).collect();
    format!("{base}{suffix}")
}

pub(super) async fn create(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    crate::field_manager::validate_options("CreateOptions", req, false)?;
    create_tracked(state, req, Tracking::Update).await
}

/// How a write's managedFields are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tracking {
    /// Recorded here as an Update by the request's manager.
    Update,
    /// Already recorded in the object (a server-side apply).
    Applied,
}

pub(super) async fn create_tracked(
    state: &AppState,
    req: &Request,
    tracking: Tracking,
) -> Result<Response, ApiError> {
    let decode = || {
        let mut obj = decode_object(content_type(req), &req.body, &BodyKind::of(req.target.info))?;
        check_type(&req.target, &mut obj)?;
        crate::kinds::check_micro_times(req.target.info, &obj)?;
        check_namespace(&req.target, &mut obj)?;
        Ok::<_, ApiError>(obj)
    };
    let mut obj = decode()?;
    let info = req.target.info;
    let generate = obj
        .pointer("/metadata/generateName")
        .and_then(Value::as_str)
        .map(str::to_string);
    let named = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    for attempt in 0..MAX_GENERATE_NAME_TRIES {
        // A retry (a generated name that collided) decodes the body again, rather than every
        // create copying the object in case of one.
        let mut candidate = match attempt {
            0 => std::mem::take(&mut obj),
            _ => decode()?,
        };
        // Admission plugins that read other objects see the object before its name is
        // generated, as upstream's.
        let mut added = crate::admission_plugins::added::Added::default();
        let mut warnings = crate::admission_plugins::admit_create(
            &state.store,
            &req.user,
            &req.target,
            &mut candidate,
            &mut added,
        )
        .await?;
        // Upstream's policybased storage: after admission, before the name is generated.
        crate::rbac_escalation::check(state, req, &candidate, None)?;
        if !named && let Some(base) = &generate {
            candidate["metadata"]["name"] = json!(generated_name(base));
        }
        warnings.extend(registry::admit(
            info,
            &Operation::Create,
            &mut candidate,
            req.query.field_validation(),
        )?);
        // Validating admission, after the strategy's validation as upstream's.
        crate::admission_plugins::certificates::admit_create(info, &candidate)?;
        // The strategy drops managedFields a client sends; the field manager reads them.
        let sent = take_managed_fields(&mut candidate);
        registry::prepare_create(info, &mut candidate, &req.user)?;
        restore_managed_fields(&mut candidate, sent);
        if tracking == Tracking::Update {
            // The creator's fields are recorded as upstream records them: before mutating
            // admission and allocation added theirs.
            let taken = added.take_out(&mut candidate);
            crate::field_manager::record_update(req, None, &mut candidate);
            added.put_back(&mut candidate, taken);
        }
        let name = candidate
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if req.query.dry_run() {
            let shown = crate::kinds::served(info, &Bytes::from(candidate.to_string()));
            return Ok(with_warnings(
                json_response(StatusCode::CREATED, shown),
                &warnings,
            ));
        }
        let key = object_key(info, req.target.namespace.as_deref(), &name);
        match state.store.create(&key, candidate).await {
            Ok(entry) => {
                return Ok(
                    answer_written(state, req, StatusCode::CREATED, &entry, &warnings).await,
                );
            }
            // A generated name that collided: draw another.
            Err(StoreError::AlreadyExists)
                if !named && generate.is_some() && attempt + 1 < MAX_GENERATE_NAME_TRIES => {}
            Err(e) => return Err(store_error(&req.target, &name, e)),
        }
    }
    Err(ApiError::internal("could not generate a unique name"))
}
