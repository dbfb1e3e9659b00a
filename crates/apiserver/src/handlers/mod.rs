//! The verbs on resources: get, list, watch, create, update, patch, delete, deletecollection,
//! and the pod subresources binding and eviction (TokenRequests and TokenReviews go to
//! [`crate::token_request`] and [`crate::token_review`], the access reviews to
//! [`crate::access_review`]). Each handler reads from the store's cache,
//! computes the new object, and writes with the version it read as precondition, retrying on
//! conflict where the client did not ask for a specific version (as upstream's
//! GuaranteedUpdate).
//!
//! One file per verb, as upstream's `endpoints/handlers` (get.go, create.go, update.go,
//! patch.go, delete.go): [`get`] (get, list, watch), [`create`], [`update`], [`patch`]
//! (including server-side apply and the status edits), [`delete`] (delete and
//! deletecollection), [`pod_subresources`] (binding, eviction). What they share is here:
//! the request, the dispatch by verb, responses and store errors.

mod create;
mod delete;
mod get;
mod patch;
mod pod_subresources;
mod update;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use pernode_store::{Entry, StoreError};
use serde_json::Value;

use crate::AppState;
use crate::codec::BodyKind;
use crate::error::ApiError;
use crate::params::Query;
use crate::target::Target;

pub(crate) use create::{check_namespace, check_type, generated_name};
pub(crate) use delete::{DeleteOptions, check_delete_preconditions, delete_object};
pub(crate) use get::render_table;
pub(crate) use patch::patch_type_of;
// The verbs share their steps (an update's computation serves patch and apply): each file
// sees the others' through the parent.
use create::*;
use delete::*;
use get::*;
use patch::*;
use pod_subresources::*;
use update::*;

/// Namespaces that exist from the start and may not be deleted.
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

pub struct Request {
    pub method: Method,
    pub target: Target,
    pub query: Query,
    /// Who sent it ([`crate::authorization`]).
    pub user: std::sync::Arc<pernode_auth::user::UserInfo>,
    /// Whether lists and watches send `metadata.managedFields` (not to an in-process control
    /// loop).
    pub managed_fields: crate::codec::ManagedFields,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub async fn handle(state: Arc<AppState>, req: Request) -> Result<Response, ApiError> {
    use crate::params::{validate_list_options, validate_write_options};
    match req.method {
        Method::POST => validate_write_options("CreateOptions", &req.query)?,
        Method::PUT => validate_write_options("UpdateOptions", &req.query)?,
        Method::PATCH => validate_write_options("PatchOptions", &req.query)?,
        Method::DELETE => validate_write_options("DeleteOptions", &req.query)?,
        Method::GET if req.target.subresource.is_none() => validate_list_options(&req.query)?,
        _ => {}
    }
    if req.method == Method::GET
        && matches!(req.target.subresource.as_deref(), None | Some("status"))
    {
        crate::params::check_accept(accept(&req))?;
    }
    let has_name = req.target.name.is_some();
    let sub = req.target.subresource.clone();
    if sub.is_none()
        && let Some(verb) = verb_of(&req.method, has_name, req.query.watch())
        && !req.target.info.has_verb(verb)
    {
        return Err(method_not_allowed(&req));
    }
    match (&req.method, has_name, sub.as_deref()) {
        (&Method::GET, true, None | Some("status" | "approval")) if req.query.watch() => {
            watch_named(state, req)
        }
        (&Method::GET, true, None | Some("status" | "approval")) => get(&state, &req),
        (&Method::GET, true, Some("log")) => crate::node_proxy::logs::pod_log(&state, &req).await,
        (&Method::GET | &Method::PUT | &Method::PATCH, true, Some("scale")) => {
            crate::crd::scale::handle(&state, &req).await
        }
        (&Method::GET, false, None) if req.query.watch() => watch_collection(state, req),
        (&Method::GET, false, None) => list(&state, &req),
        (&Method::POST, false, None) if crate::token_review::is_token_reviews(req.target.info) => {
            crate::token_review::create(&state, &req)
        }
        (&Method::POST, false, None) if crate::access_review::is_review(req.target.info) => {
            crate::access_review::create(&state, &req)
        }
        (&Method::POST, false, None) => create(&state, &req).await,
        (&Method::POST, true, Some("token")) => crate::token_request::create(&state, &req),
        (&Method::POST, true, Some("binding")) => bind(&state, &req).await,
        (&Method::POST, true, Some("eviction")) => evict(&state, &req).await,
        (&Method::PUT, true, Some("finalize")) => {
            crate::namespace_lifecycle::finalize(&state, &req).await
        }
        (&Method::PUT, true, None | Some("status" | "approval")) => update(&state, &req).await,
        (&Method::PATCH, true, None | Some("status" | "approval")) => patch(&state, &req).await,
        (&Method::DELETE, true, None) => delete(&state, &req).await,
        (&Method::DELETE, false, None) => delete_collection(&state, &req).await,
        _ => Err(method_not_allowed(&req)),
    }
}

/// The API verb of a request on a resource itself (not a subresource), as discovery lists
/// verbs.
fn verb_of(method: &Method, named: bool, watch: bool) -> Option<&'static str> {
    Some(match (method, named) {
        (&Method::GET, _) if watch => "watch",
        (&Method::GET, true) => "get",
        (&Method::GET, false) => "list",
        (&Method::POST, false) => "create",
        (&Method::PUT, true) => "update",
        (&Method::PATCH, true) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => return None,
    })
}

/// 405, worded as client-go words a MethodNotAllowed reply.
fn method_not_allowed(req: &Request) -> ApiError {
    ApiError::method_not_allowed(format!(
        "the server does not allow this method on the requested resource ({} {})",
        req.method.as_str().to_lowercase(),
        req.target.info.group_resource()
    ))
}

pub(crate) fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn with_warnings(mut response: Response, warnings: &[String]) -> Response {
    for warning in warnings {
        let text = format!("299 - {}", Value::String(warning.clone()));
        if let Ok(v) = HeaderValue::from_str(&text) {
            response.headers_mut().append("Warning", v);
        }
    }
    response
}

fn accept(req: &Request) -> Option<&str> {
    req.headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
}

pub(crate) fn content_type(req: &Request) -> Option<&str> {
    req.headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

/// The kind a subresource's body must be, as the catalogue lists it.
fn subresource_body(req: &Request, name: &str) -> BodyKind<'static> {
    BodyKind::of_request(req.target.info, Some(name))
}

fn not_found(target: &Target) -> ApiError {
    ApiError::not_found(
        target.group(),
        target.plural(),
        target.name.as_deref().unwrap_or(""),
    )
}

pub(crate) fn parse_entry(entry: &Entry) -> Result<Value, ApiError> {
    serde_json::from_slice(&entry.json)
        .map_err(|e| ApiError::internal(format!("stored object is not JSON: {e}")))
}

pub(crate) fn store_error(target: &Target, name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(target.group(), target.plural(), name),
        StoreError::AlreadyExists => {
            ApiError::already_exists(target.group(), target.plural(), name)
        }
        StoreError::Conflict { .. } => ApiError::modified(target.group(), target.plural(), name),
        StoreError::Expired { oldest } => ApiError::gone(format!(
            "too old resource version (oldest available: {oldest})"
        )),
        // etcd's own message, which kube-apiserver passes on as an error with no Status reason.
        StoreError::TooLarge => ApiError::unknown(StoreError::TooLarge.to_string()),
        StoreError::Etcd(message) => ApiError::unknown(message.to_string()),
        other => ApiError::internal(other.to_string()),
    }
}

/// The answer to a write the store took: `status` with the object as served and the request's
/// warnings, once the write is visible where it must be ([`after_write`]). A control loop's
/// answer leaves out managedFields as its watches do (the DaemonSet controller reads a
/// create's answer for the pod's name, which comes after them).
async fn answer_written(
    state: &AppState,
    req: &Request,
    status: StatusCode,
    entry: &Entry,
    warnings: &[String],
) -> Response {
    after_write(state, req.target.info, entry.rv).await;
    let info = req.target.info;
    let body = match req.managed_fields {
        crate::codec::ManagedFields::Kept => crate::kinds::served(info, &entry.json),
        stripped => {
            let entry = crate::kinds::served_entry(info, entry);
            let mut out = bytes::BytesMut::with_capacity(entry.json.len());
            stripped.put_entry(&mut out, info, &entry);
            out.freeze()
        }
    };
    with_warnings(json_response(status, body), warnings)
}

/// After a write of a CRD: waits until the CRD controller has seen it, so that what it
/// establishes (or removes) is served by the time the client hears back. After a write of an
/// RBAC object: waits until the authorizer's policy has it, so the client's next request is
/// decided by what it wrote.
async fn after_write(state: &AppState, info: &pernode_resources::ResourceInfo, rv: u64) {
    if crate::crd::is_crd(info) {
        state.crds.wait_observed(rv).await;
    }
    if info.group == pernode_auth::rbac::RBAC_GROUP && info.custom.is_none() {
        state.rbac.wait_observed(info.plural, rv).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn same_object_ignores_only_the_resource_version() {
        let a = json!({"metadata": {"name": "a", "resourceVersion": "1"}, "spec": {"x": 1}});
        assert!(same_object(
            &a,
            &json!({"metadata": {"name": "a", "resourceVersion": "2"}, "spec": {"x": 1}})
        ));
        assert!(same_object(
            &a,
            &json!({"metadata": {"name": "a"}, "spec": {"x": 1}})
        ));
        assert!(!same_object(
            &a,
            &json!({"metadata": {"name": "b", "resourceVersion": "1"}, "spec": {"x": 1}})
        ));
        assert!(!same_object(
            &a,
            &json!({"metadata": {"name": "a", "resourceVersion": "1"}, "spec": {"x": 2}})
        ));
        assert!(!same_object(
            &a,
            &json!({"metadata": {"name": "a", "resourceVersion": "1", "uid": "u"}, "spec": {"x": 1}})
        ));
        assert!(!same_object(
            &a,
            &json!({"metadata": {"name": "a", "resourceVersion": "1"}, "spec": {"x": 1}, "status": {}})
        ));
        assert!(!same_object(
            &json!({"spec": {}}),
            &json!({"metadata": {"resourceVersion": "1"}, "spec": {}})
        ));
    }

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "pods/default/x-1");
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, "pods/default/x-1".to_string())
        );
        assert_eq!(decode_continue("zz").unwrap_err().code, 400);
        assert_eq!(decode_continue("1-abc").unwrap_err().code, 400);
        assert_eq!(decode_continue("x-ab").unwrap_err().code, 400);
    }

    #[test]
    fn generated_names_have_five_suffix_characters() {
        let n = generated_name("nginx-");
        assert!(n.starts_with("nginx-"));
        assert_eq!(n.len(), "nginx-".len() + 5);
        // Long and non-ASCII prefixes are cut, never split inside a character.
        let long = generated_name(&"é".repeat(100));
        assert_eq!(long.chars().count(), 63);
    }

    #[test]
    fn no_op_detection_ignores_resource_version() {
        let a = json!({"metadata": {"name": "x", "resourceVersion": "1"}, "spec": {"a": 1}});
        let b = json!({"metadata": {"name": "x", "resourceVersion": "2"}, "spec": {"a": 1}});
        assert!(same_object(&a, &b));
        let c = json!({"metadata": {"name": "x"}, "spec": {"a": 2}});
        assert!(!same_object(&a, &c));
    }
}
