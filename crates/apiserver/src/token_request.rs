//! `POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`: a TokenRequest
//! (authentication.k8s.io/v1) answered with a signed token, nothing stored, as upstream's
//! `pkg/registry/core/serviceaccount/storage/token.go`:
//!
//! - a `metadata.name` or `metadata.namespace` in the body must be the service account's (422);
//! - the service account must exist (404);
//! - `spec.audiences` defaults to the API server's, `spec.expirationSeconds` to 3600 (v1's
//!   default); fewer than 600 or more than 2^32 seconds is upstream's 422
//!   (`TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: ...`);
//! - `spec.boundObjectRef` binds the token to a Pod (run by this service account; the pod's
//!   node is recorded too), a Secret or a Node, which must exist (404) and have the uid the
//!   reference gives, if it gives one (409); any other kind is a 400;
//! - a pod-bound token asked for 3607 s for the API server's audiences (what kubelets ask) is
//!   extended to a year, stale after 3607 s, as kube-apiserver's default
//!   `--service-account-extend-token-expiration`;
//! - the answer (201) is the TokenRequest with its name, namespace and creation time filled
//!   in and `status.token`, `status.expirationTimestamp` (now + the requested seconds).
//!
//! Not done: `--service-account-max-token-expiration` (upstream's default has no maximum),
//! webhook-configuration bound tokens, admission of the request (NodeRestriction).

use axum::http::StatusCode;
use axum::response::Response;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use pernode_admission::FieldError;
use pernode_auth::serviceaccount::{
    BoundObject, DEFAULT_EXPIRATION_SECONDS, EXTENDED_EXPIRATION_SECONDS, IssueRequest,
    MAX_EXPIRATION_SECONDS, MIN_EXPIRATION_SECONDS, ObjectRef, WARN_ONLY_EXPIRATION_SECONDS,
};
use serde_json::Value;

use crate::AppState;
use crate::codec::{BodyKind, decode_object};
use crate::error::ApiError;
use crate::handlers::{Request, content_type, json_response, parse_entry};

const GROUP: &str = pernode_resources::AUTHENTICATION;
const KIND: &str = "TokenRequest";

/// Issues the token a TokenRequest asks for.
pub fn create(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let expect = BodyKind::of_subresource(req.target.info, "token").unwrap_or(BodyKind {
        group: GROUP,
        version: "v1",
        kind: KIND,
    });
    let mut body = decode_object(content_type(req), &req.body, &expect)?;
    // The answer's status is the server's; client-go sends an empty one (with a null
    // `expirationTimestamp`), which upstream clears unread.
    if let Some(obj) = body.as_object_mut() {
        obj.remove("status");
    }
    let mut request: TokenRequest = serde_json::from_value(body).map_err(|e| {
        ApiError::bad_request(format!(
            "{KIND} in version \"v1\" cannot be handled as a {KIND}: {e}"
        ))
    })?;
    let namespace = req.target.namespace.clone().unwrap_or_default();
    let name = req.target.name.clone().unwrap_or_default();
    check_names(&request, &namespace, &name)?;

    let account = stored(state, &format!("serviceaccounts/{namespace}/{name}"))
        .ok_or_else(|| ApiError::not_found("", "serviceaccounts", &name))?;
    let tokens = &state.service_account_tokens;
    if request.spec.audiences.is_empty() {
        request.spec.audiences = tokens.api_audiences().to_vec();
    }
    request.metadata.name = Some(name.clone());
    request.metadata.namespace = Some(namespace.clone());
    let now = k8s_openapi::jiff::Timestamp::now();
    let now = k8s_openapi::jiff::Timestamp::from_second(now.as_second()).unwrap_or(now);
    request.metadata.creation_timestamp = Some(Time(now));
    request.status = None;
    let expiration = *request
        .spec
        .expiration_seconds
        .get_or_insert(DEFAULT_EXPIRATION_SECONDS);
    validate_expiration(expiration)?;

    let bound = match &request.spec.bound_object_ref {
        Some(reference) => Some(bind(state, &namespace, &name, reference)?),
        None => None,
    };
    // Upstream's safe rollout of bound tokens: what kubelets ask for their pods (3607 s, for
    // the API server) lives a year and only counts as stale after the hour.
    let api_audiences = tokens.api_audiences();
    let extended = matches!(bound, Some(BoundObject::Pod { .. }))
        && expiration == WARN_ONLY_EXPIRATION_SECONDS
        && request
            .spec
            .audiences
            .iter()
            .all(|a| api_audiences.contains(a));
    let issue = IssueRequest {
        namespace: namespace.clone(),
        service_account: ObjectRef::new(name.clone(), uid_of(&account)),
        bound,
        audiences: request.spec.audiences.clone(),
        expiration_seconds: if extended {
            EXTENDED_EXPIRATION_SECONDS
        } else {
            expiration
        },
        warn_after_seconds: extended.then_some(expiration),
    };
    let issued = tokens
        .issuer()
        .issue_at(&issue, now.as_second())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let expires = k8s_openapi::jiff::Timestamp::from_second(now.as_second() + expiration)
        .map_err(|e| ApiError::internal(format!("expiration time: {e}")))?;
    request.status = Some(TokenRequestStatus {
        token: issued.token,
        expiration_timestamp: Time(expires),
    });
    let mut answer = serde_json::to_value(&request)
        .map_err(|e| ApiError::internal(format!("encoding the TokenRequest: {e}")))?;
    answer["kind"] = Value::from(KIND);
    answer["apiVersion"] = Value::from(format!("{GROUP}/v1"));
    Ok(json_response(StatusCode::CREATED, answer.to_string()))
}

/// A name or namespace in the body must be the service account's.
fn check_names(request: &TokenRequest, namespace: &str, name: &str) -> Result<(), ApiError> {
    let meta = &request.metadata;
    if let Some(n) = meta.name.as_deref().filter(|n| !n.is_empty() && *n != name) {
        let e = FieldError::invalid(
            "metadata.name",
            n,
            "must match the service account name if specified",
        );
        return Err(crate::registry::invalid_kind(GROUP, KIND, name, &[e]));
    }
    if let Some(ns) = meta
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty() && *ns != namespace)
    {
        let e = FieldError::invalid(
            "metadata.namespace",
            ns,
            "must match the service account namespace if specified",
        );
        return Err(crate::registry::invalid_kind(GROUP, KIND, name, &[e]));
    }
    Ok(())
}

/// Upstream's `ValidateTokenRequest`: between 10 minutes and 2^32 seconds. The error names
/// no object, as upstream's.
fn validate_expiration(seconds: i64) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if seconds < MIN_EXPIRATION_SECONDS {
        errors.push(FieldError::invalid(
            "spec.expirationSeconds",
            seconds,
            "may not specify a duration less than 10 minutes",
        ));
    }
    if seconds > MAX_EXPIRATION_SECONDS {
        errors.push(FieldError::invalid(
            "spec.expirationSeconds",
            seconds,
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(crate::registry::invalid_kind(GROUP, KIND, "", &errors)),
    }
}

/// The object `reference` names, checked as upstream checks it.
fn bind(
    state: &AppState,
    namespace: &str,
    account: &str,
    reference: &k8s_openapi::api::authentication::v1::BoundObjectReference,
) -> Result<BoundObject, ApiError> {
    let api_version = reference.api_version.as_deref().unwrap_or("");
    let kind = reference.kind.as_deref().unwrap_or("");
    let name = reference.name.as_deref().unwrap_or("");
    // schema.FromAPIVersionAndKind: `v1` is the core group, `g/v` another.
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) if !v.contains('/') => (g, v),
        Some(_) => ("", ""),
        None => ("", api_version),
    };
    let (bound, uid) = match (group, kind) {
        ("", "Pod") => {
            let pod = stored(state, &format!("pods/{namespace}/{name}"))
                .ok_or_else(|| ApiError::not_found("", "pods", name))?;
            let runs_as = pod
                .pointer("/spec/serviceAccountName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if runs_as != account {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for serviceaccount {account:?} to pod running with different serviceaccount name."
                )));
            }
            let uid = uid_of(&pod);
            // The pod's node is recorded: by name alone if the Node object is gone.
            let node = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .map(|node| {
                    let node_uid = stored(state, &format!("nodes/{node}"))
                        .map(|n| uid_of(&n))
                        .unwrap_or_default();
                    ObjectRef::new(node, node_uid)
                });
            let pod = ObjectRef::new(name, uid.clone());
            (BoundObject::Pod { pod, node }, uid)
        }
        ("", "Node") => {
            let node = stored(state, &format!("nodes/{name}"))
                .ok_or_else(|| ApiError::not_found("", "nodes", name))?;
            let uid = uid_of(&node);
            (BoundObject::Node(ObjectRef::new(name, uid.clone())), uid)
        }
        ("", "Secret") => {
            let secret = stored(state, &format!("secrets/{namespace}/{name}"))
                .ok_or_else(|| ApiError::not_found("", "secrets", name))?;
            let uid = uid_of(&secret);
            (BoundObject::Secret(ObjectRef::new(name, uid.clone())), uid)
        }
        _ => {
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {group}/{version}, Kind={kind}"
            )));
        }
    };
    if let Some(want) = reference.uid.as_deref().filter(|u| !u.is_empty())
        && want != uid
    {
        return Err(ApiError::conflict(
            group,
            kind,
            name,
            &format!(
                "the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        ));
    }
    Ok(bound)
}

/// The stored object at `key`, parsed (`None`: absent or unreadable).
fn stored(state: &AppState, key: &str) -> Option<Value> {
    let entry = state.store.get(key)?;
    parse_entry(&entry).ok()
}

fn uid_of(obj: &Value) -> String {
    obj.pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expirations_outside_upstreams_bounds_are_its_422() {
        assert!(validate_expiration(600).is_ok());
        assert!(validate_expiration(1 << 32).is_ok());
        let short = validate_expiration(599).unwrap_err();
        assert_eq!(short.code, 422);
        assert_eq!(
            short.message,
            r#"TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 10 minutes"#
        );
        let long = validate_expiration((1 << 32) + 1).unwrap_err();
        assert_eq!(
            long.message,
            r#"TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 4294967297: may not specify a duration larger than 2^32 seconds"#
        );
    }
}
