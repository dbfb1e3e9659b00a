//! get, list and watch (upstream's get.go and watch.go): from the store's cache, as JSON,
//! protobuf, Table or partial metadata; paged lists with continue tokens.

use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;

use super::*;
use crate::AppState;
use crate::codec::{
    PARTIAL_METADATA_LIST_MIME, PARTIAL_METADATA_MIME, encode_list, encode_partial_list,
    partial_metadata,
};
use crate::error::ApiError;
use crate::filter::Filter;
use crate::params::{wants_partial_metadata, wants_partial_metadata_list, wants_table};
use crate::watch::{self, Rendering, WatchRequest};

pub(super) fn get(state: &AppState, req: &Request) -> Result<Response, ApiError> {
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
            partial_metadata(&entry),
            PARTIAL_METADATA_MIME,
        ));
    }
    Ok(json_response(StatusCode::OK, entry.json.clone()))
}

/// A 200 with a JSON body of a `meta.k8s.io` kind named by its content type.
pub(super) fn typed_response(body: Bytes, content_type: &'static str) -> Response {
    let mut response = json_response(StatusCode::OK, body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

pub(super) fn list(state: &AppState, req: &Request) -> Result<Response, ApiError> {
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
            encode_partial_list(rv, page, &items, req.managed_fields),
            PARTIAL_METADATA_LIST_MIME,
        ));
    }
    Ok(json_response(
        StatusCode::OK,
        encode_list(info, rv, page, &items, req.managed_fields),
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

pub(super) fn encode_continue(rv: u64, key: &str) -> String {
    let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
    format!("{rv}-{hex}")
}

/// The first page's version and the last key returned, from a continue token.
pub(super) fn decode_continue(token: &str) -> Result<(u64, String), ApiError> {
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

pub(super) fn watch_request(req: &Request, filter: Filter) -> Result<WatchRequest, ApiError> {
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
        managed_fields: req.managed_fields,
    })
}

pub(super) fn watch_collection(state: Arc<AppState>, req: Request) -> Result<Response, ApiError> {
    let filter = Filter::from_query(req.target.info, &req.query)?;
    let request = watch_request(&req, filter)?;
    watch::serve(state, request)
}

pub(super) fn watch_named(state: Arc<AppState>, req: Request) -> Result<Response, ApiError> {
    let name = req.target.name.clone().unwrap_or_default();
    let filter = Filter::from_query(req.target.info, &req.query)?.with_name(&name)?;
    let mut request = watch_request(&req, filter)?;
    request.target.name = None;
    request.target.subresource = None;
    watch::serve(state, request)
}
