//! The verbs on resources: get, list, watch, create, update, patch, delete, deletecollection,
//! and the pod subresources binding and eviction (TokenRequests and TokenReviews go to
//! [`crate::token_request`] and [`crate::token_review`], the access reviews to
//! [`crate::access_review`]). Each handler reads from the store's cache,
//! computes the new object, and writes with the version it read as precondition, retrying on
//! conflict where the client did not ask for a specific version (as upstream's
//! GuaranteedUpdate).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use pernode_patch::PatchType;
use pernode_store::{Entry, StoreError};
use serde_json::{Value, json};

use crate::AppState;
use crate::codec::{
    BodyKind, PARTIAL_METADATA_LIST_MIME, PARTIAL_METADATA_MIME, decode_object, encode_list,
    encode_partial_list, media_type, parse_json, parse_yaml, partial_metadata,
};
use crate::edit;
use crate::error::{ApiError, success_status};
use crate::filter::Filter;
use crate::params::{Query, wants_partial_metadata, wants_partial_metadata_list, wants_table};
use crate::registry::{self, Operation, now_rfc3339};
use crate::target::{Target, object_key};
use crate::watch::{self, Rendering, WatchRequest};

/// How many times a create with a generated name tries another name after a collision.
const MAX_GENERATE_NAME_TRIES: usize = 8;

/// The patch types every built-in kind takes, in upstream's order (its 415 lists them).
pub(crate) const PATCH_MEDIA_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// The patch types custom resources take (apiextensions' crdHandler): no strategic merge
/// patch, since a custom object's fields have no patch strategies to merge by.
const CUSTOM_PATCH_MEDIA_TYPES: &[&str] = &[
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

/// Namespaces that exist from the start and may not be deleted.
pub const SYSTEM_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];

pub struct Request {
    pub method: Method,
    pub target: Target,
    pub query: Query,
    /// Who sent it ([`crate::authorization`]).
    pub user: std::sync::Arc<pernode_auth::user::UserInfo>,
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

// ---- reads ----------------------------------------------------------------------------------

fn get(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let key = req.target.key().ok_or_else(ApiError::no_route)?;
    let stored = state
        .store
        .get(&key)
        .ok_or_else(|| not_found(&req.target))?;
    let entry = crate::kinds::served_entry(req.target.info, &stored);
    if wants_table(accept(req)) {
        let table = render_table(
            req.target.info,
            &[&entry.json[..]],
            req.query.include_object(),
            &entry.rv.to_string(),
            None,
        )?;
        return Ok(json_response(StatusCode::OK, table));
    }
    if wants_partial_metadata(accept(req)) {
        return Ok(typed_response(
            partial_metadata(&entry.json),
            PARTIAL_METADATA_MIME,
        ));
    }
    Ok(json_response(StatusCode::OK, entry.json.clone()))
}

/// A 200 with a JSON body of a `meta.k8s.io` kind named by its content type.
fn typed_response(body: Bytes, content_type: &'static str) -> Response {
    let mut response = json_response(StatusCode::OK, body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn list(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let filter = Filter::from_query(req.target.info, &req.query)?;
    let (current_rv, mut items) = state
        .store
        .list(&req.target.prefix(), |e| filter.matches(e));
    // Paging: the continue token carries the first page's version and the key of the last
    // item returned. Later pages are served from the current state but report the first
    // page's version, so a watch started from the last page's version replays every change
    // since the first page: clients (informers) may see a change twice, never miss one.
    let mut rv = current_rv;
    if let Some(token) = req.query.get("continue").filter(|t| !t.is_empty()) {
        let (first_rv, after) = decode_continue(token)?;
        rv = first_rv;
        items.retain(|e| &*e.key > after.as_str());
    }
    let mut continue_token = None;
    let mut remaining_item_count = None;
    if let Some(limit) = req.query.limit()
        && items.len() > limit
    {
        // Upstream counts the rest only when nothing filters it (a selector's count would be
        // the store's, not the caller's).
        remaining_item_count = filter.is_empty().then(|| items.len() - limit);
        items.truncate(limit);
        continue_token = items.last().map(|e| encode_continue(rv, &e.key));
    }
    let page = continue_token.as_deref().map(|t| crate::codec::Page {
        continue_token: t,
        remaining_item_count,
    });
    let info = req.target.info;
    if crate::kinds::of(info).conversion.is_some() {
        items = items
            .iter()
            .map(|e| crate::kinds::served_entry(info, e).into_owned())
            .collect();
    }
    if wants_table(accept(req)) {
        let objects: Vec<&[u8]> = items.iter().map(|e| &e.json[..]).collect();
        let table = render_table(
            info,
            &objects,
            req.query.include_object(),
            &rv.to_string(),
            continue_token.as_deref(),
        )?;
        return Ok(json_response(StatusCode::OK, table));
    }
    if wants_partial_metadata_list(accept(req)) {
        return Ok(typed_response(
            encode_partial_list(rv, page, &items),
            PARTIAL_METADATA_LIST_MIME,
        ));
    }
    Ok(json_response(
        StatusCode::OK,
        encode_list(info, rv, page, &items),
    ))
}

/// A Table of stored objects: pernode-printers' columns for a built-in, the CRD's printer
/// columns for a custom resource.
pub(crate) fn render_table(
    info: &pernode_resources::ResourceInfo,
    objects: &[&[u8]],
    include: pernode_printers::IncludeObject,
    rv: &str,
    continue_token: Option<&str>,
) -> Result<Vec<u8>, ApiError> {
    let now = k8s_openapi::jiff::Timestamp::now();
    if info.custom.is_some() {
        return crate::crd::printing::table(info, objects, include, now, rv, continue_token)
            .map_err(|e| ApiError::internal(e.to_string()));
    }
    pernode_printers::table(info.plural, objects, include, now, rv, continue_token)
        .map_err(|e| ApiError::internal(e.to_string()))
}

fn encode_continue(rv: u64, key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{rv}-{hex}")
}

/// The first page's version and the last key returned, from a continue token.
fn decode_continue(token: &str) -> Result<(u64, String), ApiError> {
    let invalid = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion")
    };
    let (rv, token) = token.split_once('-').ok_or_else(invalid)?;
    let rv = rv.parse::<u64>().map_err(|_| invalid())?;
    if !token.len().is_multiple_of(2) {
        return Err(invalid());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect::<Option<Vec<u8>>>()
        .ok_or_else(invalid)?;
    String::from_utf8(bytes)
        .map(|key| (rv, key))
        .map_err(|_| invalid())
}

fn watch_request(req: &Request, filter: Filter) -> Result<WatchRequest, ApiError> {
    let resource_version = match req.query.get("resourceVersion").filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resource version: {v:?}")))?,
        ),
    };
    let rendering = if wants_table(accept(req)) {
        Rendering::Table(req.query.include_object())
    } else if wants_partial_metadata(accept(req)) {
        Rendering::Metadata
    } else {
        Rendering::Object
    };
    Ok(WatchRequest {
        target: req.target.clone(),
        filter,
        resource_version,
        timeout: Some(crate::watch::timeout(req.query.timeout_seconds())),
        bookmarks: req.query.is_true("allowWatchBookmarks"),
        send_initial_events: req.query.flag("sendInitialEvents"),
        rendering,
    })
}

fn watch_collection(state: Arc<AppState>, req: Request) -> Result<Response, ApiError> {
    let filter = Filter::from_query(req.target.info, &req.query)?;
    let request = watch_request(&req, filter)?;
    watch::serve(state, request)
}

fn watch_named(state: Arc<AppState>, req: Request) -> Result<Response, ApiError> {
    let name = req.target.name.clone().unwrap_or_default();
    let filter = Filter::from_query(req.target.info, &req.query)?.with_name(&name)?;
    let mut request = watch_request(&req, filter)?;
    request.target.name = None;
    request.target.subresource = None;
    watch::serve(state, request)
}

// ---- create ---------------------------------------------------------------------------------

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
fn check_members(info: &pernode_resources::ResourceInfo, obj: &Value) -> Result<(), ApiError> {
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

/// After a write of a CRD: waits until the CRD controller has seen it, so that what it
/// establishes (or removes) is served by the time the client hears back. After a write of an
/// RBAC object: waits until the authorizer's policy has it, so the client's next request is
/// decided by what it wrote.
/// The answer to a write the store took: `status` with the object as served and the request's
/// warnings, once the write is visible where it must be ([`after_write`]).
async fn answer_written(
    state: &AppState,
    req: &Request,
    status: StatusCode,
    entry: &Entry,
    warnings: &[String],
) -> Response {
    after_write(state, req.target.info, entry.rv).await;
    with_warnings(
        json_response(status, crate::kinds::served(req.target.info, &entry.json)),
        warnings,
    )
}

async fn after_write(state: &AppState, info: &pernode_resources::ResourceInfo, rv: u64) {
    if crate::crd::is_crd(info) {
        state.crds.wait_observed(rv).await;
    }
    if info.group == pernode_auth::rbac::RBAC_GROUP && info.custom.is_none() {
        state.rbac.wait_observed(info.plural, rv).await;
    }
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

async fn create(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    crate::field_manager::validate_options("CreateOptions", req, false)?;
    create_tracked(state, req, Tracking::Update).await
}

/// How a write's managedFields are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tracking {
    /// Recorded here as an Update by the request's manager.
    Update,
    /// Already recorded in the object (a server-side apply).
    Applied,
}

async fn create_tracked(
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
        let mut warnings = crate::admission_plugins::admit_create(
            &state.store,
            &req.user,
            &req.target,
            &mut candidate,
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
            crate::field_manager::record_update(req, None, &mut candidate);
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

// ---- update and patch -----------------------------------------------------------------------

fn operation<'a>(target: &Target, old: &'a Value) -> Operation<'a> {
    match target.subresource.as_deref() {
        Some("status") => Operation::UpdateStatus { old },
        Some("approval") => Operation::UpdateApproval { old },
        _ => Operation::Update { old },
    }
}

/// Takes the managedFields an object was sent with (the strategy would drop them), to put
/// back for the field manager: moved rather than copied, as they are most of a pod's metadata.
fn take_managed_fields(obj: &mut Value) -> Option<Value> {
    obj.get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|meta| meta.remove("managedFields"))
}

/// Puts back the managedFields an object was sent or applied with.
fn restore_managed_fields(obj: &mut Value, sent: Option<Value>) {
    if let Some(sent) = sent
        && let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut)
    {
        meta.insert("managedFields".into(), sent);
    }
}

fn rv_of(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// Whether two versions of an object differ in anything but resourceVersion.
/// Whether two versions of an object are the same apart from `metadata.resourceVersion`.
fn same_object(a: &Value, b: &Value) -> bool {
    registry::same_object_except(a, b, None)
}

/// A computed update: the object to store, the version it was computed from, and warnings.
struct Computed {
    new: Value,
    expected_rv: u64,
    warnings: Vec<String>,
}

/// Writes `new` over `old`: no-ops keep the stored version; objects being deleted whose last
/// finalizer went away are removed, as upstream's update path does.
async fn commit_update(
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
        return Ok(Ok(Entry {
            json: Bytes::from(shown.to_string()),
            ..old.clone()
        }));
    }
    let key = &old.key;
    if should_delete_during_update(target, &new) {
        return Ok(state.store.delete(key, Some(expected_rv)).await);
    }
    Ok(state.store.update(key, new, Some(expected_rv)).await)
}

fn should_delete_during_update(target: &Target, new: &Value) -> bool {
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

async fn update(state: &AppState, req: &Request) -> Result<Response, ApiError> {
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

fn compute_update(
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

async fn patch(state: &AppState, req: &Request) -> Result<Response, ApiError> {
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
                json,
                attrs,
                warnings,
            }) => (
                state.store.update_edited(&key, json, attrs, old.rv).await,
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
async fn patch_as_tree(
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
enum StatusEdit {
    /// The patch changes nothing: the stored version stands.
    Unchanged { warnings: Vec<String> },
    /// The object with its new status, and its index attributes.
    Changed {
        json: String,
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
fn status_edit(
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
    let Some(mut object) = edit::StoredObject::parse(&old.json) else {
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
        json: object.into_json(),
        attrs,
        warnings,
    }))
}

/// A patch whose result upstream cannot decode (a MicroTime without six fractional digits):
/// the 422 of upstream's patcher, naming the patched object (JSON and merge patches) or the
/// patch itself, as Go prints a map (strategic merge patches).
fn micro_time_patch_error(
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

fn patch_error(e: pernode_patch::PatchError) -> ApiError {
    tracing::debug!(error = %e, "patch did not apply");
    ApiError::from_parts(e.code(), e.reason(), e.status_message())
}

/// Server-side apply (`application/apply-patch+yaml`), as upstream's applyPatcher: the
/// configuration is merged into the live object by `field_manager` (ownership, conflicts,
/// `force`, pruning of fields the manager stopped applying), then admitted and written as any
/// update; a missing object is created from the configuration alone.
async fn apply_patch(state: &AppState, req: &Request) -> Result<Response, ApiError> {
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

// ---- delete ---------------------------------------------------------------------------------

/// The options of a delete (query and DeleteOptions body).
#[derive(Clone, Default)]
pub(crate) struct DeleteOptions {
    pub(crate) grace_period: Option<i64>,
    pub(crate) propagation: Option<String>,
    pub(crate) precondition_uid: Option<String>,
    pub(crate) precondition_rv: Option<String>,
    pub(crate) dry_run: bool,
}

fn delete_options(req: &Request) -> Result<DeleteOptions, ApiError> {
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
fn check_delete_options_body(body: &Value) -> Result<(), ApiError> {
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

async fn delete(state: &AppState, req: &Request) -> Result<Response, ApiError> {
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
fn graceful_period(target: &Target, obj: &Value, requested: Option<i64>) -> i64 {
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

async fn delete_collection(state: &AppState, req: &Request) -> Result<Response, ApiError> {
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
        encode_list(info, state.store.current_rv(), None, &deleted),
    ))
}

// ---- pod subresources -----------------------------------------------------------------------

async fn bind(state: &AppState, req: &Request) -> Result<Response, ApiError> {
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
        let pod = match edit::bind_stored(&old.json, &node, condition) {
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
        match state.store.update_edited(&key, pod, attrs, old.rv).await {
            Ok(_) => return Ok(bound()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(store_error(&req.target, &name, e)),
        }
    }
}

async fn evict(state: &AppState, req: &Request) -> Result<Response, ApiError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
