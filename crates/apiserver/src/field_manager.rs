//! Who owns which fields: every write's `metadata.managedFields` through `pernode_fieldmanager`,
//! as kube-apiserver's handlers call its field manager. This module decides what upstream's
//! handlers decide around it: the manager's name (the `fieldManager` option, else the
//! User-Agent up to its first `/`, upstream's `prefixFromUserAgent`), the fields an endpoint's
//! strategy resets (`GetResetFields`: `status` on a resource with a status subresource, `spec`
//! on `/status`), the write's time, and the 409 of a conflicting apply.

use pernode_fieldmanager::managers::ApplyError;
use pernode_fieldmanager::{FieldManager, PathElement, Schema, Set, Updater, Write};
use serde_json::Value;

use crate::error::{ApiError, Cause};
use crate::handlers::Request;

/// The annotation the DaemonSet strategy keeps its template generation in.
const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

/// Upstream's limit on a `fieldManager` (ValidateFieldManager).
const MAX_FIELD_MANAGER_LENGTH: usize = 128;

/// The manager of a non-apply write.
pub(crate) fn manager_name(req: &Request) -> String {
    if let Some(m) = req.query.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    let agent = req
        .headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    agent.split('/').next().unwrap_or("").to_string()
}

/// Upstream's checks of the `fieldManager` and `force` options of a write (`ValidatePatchOptions`
/// and friends): 422 on the options kind.
pub(crate) fn validate_options(
    options_kind: &str,
    req: &Request,
    apply: bool,
) -> Result<(), ApiError> {
    let invalid = |field: &str, detail: String| {
        ApiError::invalid(
            "meta.k8s.io",
            options_kind,
            "",
            format!("{options_kind}.meta.k8s.io \"\" is invalid: {field}: {detail}"),
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: detail.clone(),
                field: field.into(),
            }],
        )
    };
    if let Some(m) = req.query.get("fieldManager")
        && m.len() > MAX_FIELD_MANAGER_LENGTH
    {
        return Err(invalid(
            "fieldManager",
            format!("Too long: may not be more than {MAX_FIELD_MANAGER_LENGTH} bytes"),
        ));
    }
    if !apply && req.query.get("force").is_some() {
        return Err(invalid(
            "force",
            "Forbidden: may not be specified for non-apply patch".into(),
        ));
    }
    Ok(())
}

/// The field manager of the request's endpoint.
pub(crate) fn for_request(req: &Request) -> FieldManager {
    let info = req.target.info;
    let schema = if info.custom.is_some() {
        Schema::Custom
    } else {
        Schema::BuiltIn
    };
    let field = |n: &str| [PathElement::Field(n.to_string())];
    let mut ignored = match req.target.subresource.as_deref() {
        Some("status") => Set::of(&[&field("spec")]),
        None if info.subresources.iter().any(|s| s.name == "status") => {
            Set::of(&[&field("status")])
        }
        _ => Set::new(),
    };
    // The DaemonSet strategy's own annotation: upstream's field manager runs before the
    // strategy sets it, so no writer owns it; here it runs after admission (to see defaults).
    if info.group == "apps" && info.plural == "daemonsets" && req.target.subresource.is_none() {
        ignored.insert(&[
            PathElement::Field("metadata".into()),
            PathElement::Field("annotations".into()),
            PathElement::Field(TEMPLATE_GENERATION.into()),
        ]);
    }
    FieldManager::new(Updater::new(schema, ignored))
}

/// The time of a write as managedFields record it (RFC 3339, seconds).
pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Records a create, update or patch by the request's manager in `new` (`old`: `None` for a
/// create).
pub(crate) fn record_update(req: &Request, old: Option<&Value>, new: &mut Value) {
    let manager = manager_name(req);
    let api_version = req.target.info.api_version();
    let now = now();
    for_request(req).update(
        old,
        new,
        &Write {
            manager: &manager,
            api_version,
            subresource: req.target.subresource.as_deref(),
            now: &now,
        },
    );
}

/// A server-side apply of `config` to `live` (`None`: the apply creates the object).
pub(crate) fn apply(
    req: &Request,
    live: Option<&Value>,
    config: &Value,
) -> Result<Value, ApiError> {
    let manager = req.query.get("fieldManager").unwrap_or("");
    let force = req.query.is_true("force");
    let api_version = req.target.info.api_version();
    let now = now();
    let write = Write {
        manager,
        api_version,
        subresource: req.target.subresource.as_deref(),
        now: &now,
    };
    for_request(req)
        .apply(live, config, &write, force)
        .map_err(|e| apply_error(req, e))
}

/// Upstream's `NewConflictError` (409, a `FieldManagerConflict` cause per field), or the 500
/// of a configuration that cannot be typed.
fn apply_error(req: &Request, e: ApplyError) -> ApiError {
    match &e {
        ApplyError::Conflicts(conflicts) => {
            let mut error = ApiError::from_parts(409, "Conflict", e.to_string());
            for c in conflicts {
                error = error.with_cause(Cause {
                    reason: "FieldManagerConflict".into(),
                    message: format!(
                        "conflict with {}",
                        pernode_fieldmanager::managers::print_manager(&c.manager)
                    ),
                    field: c.path.to_string(),
                });
            }
            error
        }
        ApplyError::Invalid(message) if message.starts_with("metadata.managedFields") => {
            ApiError::bad_request(message.clone())
        }
        ApplyError::Invalid(message) => ApiError::internal(format!(
            "failed to create typed patch object ({}, Kind={}): {message}",
            req.target.info.api_version(),
            req.target.info.kind
        )),
    }
}
