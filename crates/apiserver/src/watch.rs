//! Watch streams: newline-delimited JSON events over a chunked response, as kube-apiserver sends
//! them. Synthetic ADDED events for `resourceVersion` 0/unset, events strictly after the given
//! version otherwise; with `sendInitialEvents=true` (a streaming list, client-go's default from
//! 1.35) the current state first, ended by a BOOKMARK annotated `k8s.io/initial-events-end`. An
//! ERROR event with 410 Expired when that version is no longer in the store's event window,
//! optional BOOKMARKs, and `timeoutSeconds`.

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::{BufMut, Bytes, BytesMut};
use pernode_printers::IncludeObject;
use pernode_store::{Entry, EventType, StoreError};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::AppState;
use crate::error::ApiError;
use crate::filter::Filter;
use crate::target::Target;

/// Events already waiting are sent together in chunks of up to about this size ...
const MAX_BATCH_BYTES: usize = 32 * 1024;
/// ... and at most this many chunks wait for a slow client (bounding memory per watch).
const QUEUED_CHUNKS: usize = 16;

/// How often an idle watch that allows bookmarks gets one.
const BOOKMARK_INTERVAL: Duration = Duration::from_secs(30);

/// How each event's object is rendered.
#[derive(Clone, Copy)]
pub enum Rendering {
    Object,
    Table(IncludeObject),
    /// `meta.k8s.io/v1` PartialObjectMetadata: the object's metadata only.
    Metadata,
}

/// kube-apiserver's `--min-request-timeout` default.
pub const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(1800);

/// How long a watch runs: its `timeoutSeconds`, or without one (or 0) a random time between
/// one and two [`MIN_REQUEST_TIMEOUT`]s, as upstream's ListResource, so that long watches
/// spread their reconnects and a client's old connections (and credentials) do not live on.
pub fn timeout(timeout_seconds: Option<u64>) -> Duration {
    match timeout_seconds {
        Some(t) if t > 0 => Duration::from_secs(t),
        _ => MIN_REQUEST_TIMEOUT.mul_f64(1.0 + rand::random::<f64>()),
    }
}

pub struct WatchRequest {
    pub target: Target,
    pub filter: Filter,
    pub resource_version: Option<u64>,
    pub timeout: Option<Duration>,
    pub bookmarks: bool,
    /// `sendInitialEvents`: `Some(true)` streams the current state first and marks its end
    /// with a bookmark (a streaming list); `Some(false)` sends none; `None` is the legacy
    /// rule (initial events only from version 0 or none).
    pub send_initial_events: Option<bool>,
    pub rendering: Rendering,
    pub managed_fields: crate::codec::ManagedFields,
}

/// The annotation of the bookmark that ends a streaming list's initial events.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

pub fn serve(state: Arc<AppState>, req: WatchRequest) -> Result<Response, ApiError> {
    let prefix = req.target.prefix();
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUED_CHUNKS);
    // Snapshot first (for synthetic ADDED), then watch from the snapshot's version: the store
    // guarantees nothing falls between the two.
    let initial_events = match (req.send_initial_events, req.resource_version) {
        (Some(send), _) => send,
        (None, None | Some(0)) => true,
        (None, Some(_)) => false,
    };
    let (initial, start_rv) = match (initial_events, req.resource_version) {
        // The state now is not older than any version the client can name
        // (resourceVersionMatch=NotOlderThan).
        (true, _) => {
            let (rv, items) = state.store.list(&prefix, |e| req.filter.matches(e));
            (items, rv)
        }
        (false, None | Some(0)) => (Vec::new(), state.store.current_rv()),
        (false, Some(rv)) => (Vec::new(), rv),
    };
    let end_bookmark = req.send_initial_events == Some(true) && req.bookmarks;
    let watcher = match state.store.watch(&prefix, start_rv) {
        Ok(w) => Some(w),
        Err(StoreError::Expired { .. }) => None,
        Err(e) => return Err(ApiError::internal(e.to_string())),
    };
    let plural = req.target.info;
    let kind = req.target.info.kind;
    let api_version = req.target.info.api_version();
    let shutdown = state.shutdown.clone();
    let rendering = req.rendering;
    tokio::spawn(async move {
        let Some(mut watcher) = watcher else {
            let status =
                ApiError::gone(format!("too old resource version: {start_rv}")).to_status();
            let line = format!("{}\n", json!({"type": "ERROR", "object": status}));
            let _ = tx.send(Bytes::from(line)).await;
            return;
        };
        for chunk in initial.chunks(16) {
            let mut batch = BytesMut::new();
            for entry in chunk {
                encode_event_into(&mut batch, plural, "ADDED", entry, &req);
            }
            if tx.send(batch.freeze()).await.is_err() {
                return;
            }
        }
        if end_bookmark {
            let line = json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version,
                "metadata": {"resourceVersion": start_rv.to_string(),
                    "annotations": {INITIAL_EVENTS_END: "true"}}}});
            if tx.send(Bytes::from(format!("{line}\n"))).await.is_err() {
                return;
            }
        }
        let mut last_rv = start_rv;
        let deadline = req.timeout.map(|t| tokio::time::Instant::now() + t);
        let shutdown = shutdown_signal(shutdown);
        tokio::pin!(shutdown);
        let mut bookmark = tokio::time::interval_at(
            tokio::time::Instant::now() + BOOKMARK_INTERVAL,
            BOOKMARK_INTERVAL,
        );
        loop {
            let line = tokio::select! {
                next = watcher.next() => match next {
                    Some(Ok(event)) => {
                        last_rv = event.entry.rv;
                        let Some((kind, entry)) = visible(&req.filter, &event) else { continue };
                        // Every event already waiting goes out in the same chunk: one channel
                        // send, one HTTP frame and one write for many events.
                        let mut batch = BytesMut::new();
                        encode_event_into(&mut batch, plural, kind, &entry, &req);
                        let mut end = None;
                        while batch.len() < MAX_BATCH_BYTES {
                            match futures::FutureExt::now_or_never(watcher.next()) {
                                Some(Some(Ok(event))) => {
                                    last_rv = event.entry.rv;
                                    if let Some((kind, entry)) = visible(&req.filter, &event) {
                                        encode_event_into(&mut batch, plural, kind, &entry, &req);
                                    }
                                }
                                Some(next) => {
                                    end = Some(next);
                                    break;
                                }
                                None => break,
                            }
                        }
                        if tx.send(batch.freeze()).await.is_err() {
                            return;
                        }
                        match end {
                            None => continue,
                            Some(Some(Err(StoreError::Expired { .. }))) => {
                                let _ = tx.send(expired(last_rv)).await;
                                return;
                            }
                            Some(_) => return,
                        }
                    }
                    Some(Err(StoreError::Expired { .. })) => {
                        let _ = tx.send(expired(last_rv)).await;
                        return;
                    }
                    Some(Err(_)) | None => return,
                },
                _ = bookmark.tick(), if req.bookmarks => {
                    let line = json!({"type": "BOOKMARK", "object": {"kind": kind, "apiVersion": api_version,
                        "metadata": {"resourceVersion": last_rv.to_string()}}});
                    Bytes::from(format!("{line}\n"))
                }
                _ = sleep_until(deadline) => return,
                _ = &mut shutdown => return,
                _ = tx.closed() => return,
            };
            if tx.send(line).await.is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(ReceiverStream::new(rx).map(Ok::<_, Infallible>));
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::OK;
    let content_type = match rendering {
        Rendering::Object => "application/json",
        Rendering::Table(_) => "application/json;as=Table;v=v1;g=meta.k8s.io",
        Rendering::Metadata => crate::codec::PARTIAL_METADATA_MIME,
    };
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

/// Resolves when the server shuts down; never, if the server's switch is gone.
async fn shutdown_signal(mut rx: tokio::sync::watch::Receiver<bool>) {
    if rx.wait_for(|closed| *closed).await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Appends `{"type":"ADDED","object":<stored json or a one-row Table>}\n` to `out`,
/// without re-encoding the stored object.
fn encode_event_into(
    out: &mut BytesMut,
    info: &pernode_resources::ResourceInfo,
    event_type: &str,
    entry: &Entry,
    req: &WatchRequest,
) {
    let entry = &*crate::kinds::served_entry(info, entry);
    out.reserve(entry.json.len() + 32);
    out.put_slice(b"{\"type\":\"");
    out.put_slice(event_type.as_bytes());
    out.put_slice(b"\",\"object\":");
    match req.rendering {
        Rendering::Object => req.managed_fields.put_entry(out, info, entry),
        Rendering::Metadata => crate::codec::put_partial_metadata(out, entry, req.managed_fields),
        Rendering::Table(include) => {
            let table = crate::handlers::render_table(
                info,
                &[&entry.json[..]],
                include,
                &entry.rv.to_string(),
                None,
            )
            .unwrap_or_else(|_| entry.json.to_vec());
            out.put_slice(&table);
        }
    }
    out.put_slice(b"}\n");
}

/// The event type and object a watcher with `filter` sees for a store event, if it sees it at
/// all. An object moving out of the filter is DELETED for it, carrying the previous object
/// stamped with the event's version, as kube-apiserver sends it.
fn visible<'a>(
    filter: &Filter,
    event: &'a pernode_store::Event,
) -> Option<(&'static str, Cow<'a, Entry>)> {
    let kind = event_type(filter, event)?;
    let left = kind == "DELETED" && event.kind == EventType::Modified;
    let previous = event.prev.as_ref().filter(|_| left).and_then(|prev| {
        Some(Entry::new(
            event.entry.key.clone(),
            event.entry.rv,
            prev.object_at(event.entry.rv)?,
            prev.attrs.clone(),
        ))
    });
    Some(match previous {
        Some(entry) => (kind, Cow::Owned(entry)),
        None => (kind, Cow::Borrowed(&event.entry)),
    })
}

/// The event type a watcher with `filter` sees for a store event, if it sees it at all: an
/// object moving into the filter is ADDED for it, one moving out DELETED.
fn event_type(filter: &Filter, event: &pernode_store::Event) -> Option<&'static str> {
    let now = filter.matches(&event.entry);
    let before = event
        .prev
        .as_ref()
        .is_some_and(|p| filter.matches_attrs(&p.attrs));
    match (event.kind, now, before) {
        (EventType::Added, true, _) => Some("ADDED"),
        (EventType::Modified, true, true) => Some("MODIFIED"),
        (EventType::Modified, true, false) => Some("ADDED"),
        (EventType::Modified, false, true) => Some("DELETED"),
        (EventType::Deleted, true, _) => Some("DELETED"),
        _ => None,
    }
}

/// The ERROR event ending a watch whose position left the store's event window.
fn expired(last_rv: u64) -> Bytes {
    let status = ApiError::gone(format!("too old resource version: {last_rv}")).to_status();
    Bytes::from(format!("{}\n", json!({"type": "ERROR", "object": status})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_without_a_timeout_end_within_one_to_two_min_request_timeouts() {
        assert_eq!(timeout(Some(5)), Duration::from_secs(5));
        for asked in [None, Some(0)] {
            let t = timeout(asked);
            assert!(
                (MIN_REQUEST_TIMEOUT..=MIN_REQUEST_TIMEOUT * 2).contains(&t),
                "{t:?}"
            );
        }
    }
}
