//! The pod subresources that write: binding (the scheduler's) and eviction.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use pernode_store::StoreError;
use serde_json::{Value, json};

use super::*;
use crate::AppState;
use crate::codec::decode_object;
use crate::edit;
use crate::error::{ApiError, success_status};
use crate::params::Query;
use crate::registry::now_rfc3339;
use crate::target::Target;

pub(super) async fn bind(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let binding = decode_object(
        content_type(req),
        &req.body,
        &subresource_body(req, "binding"),
    )?;
    let node = binding
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = req.target.name.clone().unwrap_or_default();
    if node.is_empty() {
        return Err(ApiError::invalid(
            "",
            "Binding",
            &name,
            format!("Binding \"{name}\" is invalid: target.name: Required value"),
            vec![crate::error::Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: "target.name".into(),
            }],
        ));
    }
    let key = req.target.key().ok_or_else(ApiError::no_route)?;
    // As GuaranteedUpdate: a lost race is retried until the write applies; a write the
    // client pinned to a version fails on that version instead.
    loop {
        let old = state
            .store
            .get(&key)
            .ok_or_else(|| ApiError::not_found("", "pods", &name))?;
        let condition = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now_rfc3339()});
        let pod = match edit::bind_stored(&old.json, old.managed_fields(), &node, condition) {
            Ok(pod) => pod,
            Err(edit::Refusal::Deleting) => {
                return Err(ApiError::conflict(
                    "",
                    "pods",
                    &name,
                    "pod is being deleted, cannot be assigned to a host",
                ));
            }
            Err(edit::Refusal::Assigned(current)) => {
                return Err(ApiError::conflict(
                    "",
                    "pods",
                    &name,
                    &format!("pod {name} is already assigned to node \"{current}\""),
                ));
            }
            Err(edit::Refusal::Malformed) => {
                return Err(ApiError::internal("stored pod is not a JSON object"));
            }
        };
        let bound = || {
            let status = success_status(&name, "", "pods", None);
            json_response(StatusCode::CREATED, status.to_string())
        };
        if req.query.dry_run() {
            return Ok(bound());
        }
        // Of the fields pods are indexed by, a binding changes spec.nodeName alone.
        let attrs = old
            .attrs
            .with_fields([(crate::kinds::POD_NODE_NAME, node.clone())]);
        match state
            .store
            .update_edited(&key, pod.json, attrs, old.rv, pod.managed_fields)
            .await
        {
            Ok(_) => return Ok(bound()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(&req.target, &name, e)),
        }
    }
}

pub(super) async fn evict(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let eviction = decode_object(
        content_type(req),
        &req.body,
        &subresource_body(req, "eviction"),
    )?;
    crate::admission_plugins::node_restriction::admit_eviction(
        &state.store,
        &req.user,
        &req.target,
    )?;
    let name = req.target.name.clone().unwrap_or_default();
    if let Some(n) = eviction.pointer("/metadata/name").and_then(Value::as_str)
        && !n.is_empty()
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "name in URL does not match name in Eviction object ({n} != {name})"
        )));
    }
    let options = eviction
        .get("deleteOptions")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let delete_req = Request {
        method: Method::DELETE,
        target: Target {
            subresource: None,
            ..req.target.clone()
        },
        // A dry-run eviction is a dry-run delete (upstream's propagateDryRun).
        query: Query::parse(req.query.dry_run().then_some("dryRun=All")),
        user: req.user.clone(),
        managed_fields: req.managed_fields,
        headers: {
            let mut h = HeaderMap::new();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            h
        },
        body: Bytes::from(options.to_string()),
    };
    let opts = delete_options(&delete_req)?;
    let key = req.target.key().ok_or_else(ApiError::no_route)?;
    crate::eviction::evict(state, &delete_req.target, &key, opts).await
}
