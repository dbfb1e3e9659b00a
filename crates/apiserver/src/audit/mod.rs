//! The audit log, as kube-apiserver's (`--audit-log-path`, `--audit-policy-file`): one
//! `audit.k8s.io/v1` `Event` per request and stage, as a JSON line, at the level the first
//! matching rule of the [`policy`] gives it.
//!
//! - [`policy`]: the `Policy` file and its checker (level and omitted stages of a request);
//! - [`event`]: the event and its JSON line;
//! - [`sink`]: the bounded queue and the writer thread that append lines to the file.
//!
//! The audit layer wraps the router outside everything that answers: on the TCP listener
//! outside the in-flight limits (a 429 is audited, as upstream's filter chain audits it), for
//! in-process callers inside the layer that gives them their identity. Before the request is
//! handled it works out who asks (the same [`crate::authentication::requester`] dispatch uses)
//! and what (the same `target::parse` and [`crate::authorization::resource_attributes`]), and
//! asks the policy for a level; `None` passes the request through untouched. Otherwise it
//! hands dispatch a [`Recorder`] (a request extension) in which the authorization step notes
//! its decision (upstream's `authorization.k8s.io/decision` and `.../reason` annotations) and
//! the body step the request's body (a reference to the bytes already read, no copy); the
//! response's body is kept only for a failure's `Status` or at `RequestResponse`.
//!
//! Stages: `ResponseComplete` for every request, when its body has been sent (or dropped);
//! `ResponseStarted` first for long-running requests (watches, logs, exec, proxies: the
//! in-flight limit's test), when the response starts. A request that fails authentication (a
//! 401) is logged as upstream's failed-authentication audit does: one `ResponseStarted` event
//! with no user and the methods it attempted as the status message. Left out:
//! `RequestReceived` and `Panic` events, log rotation
//! (`--audit-log-maxage`, `-maxsize`, `-maxbackup`), webhook backends, and the `legacy` format.
//!
//! Without `--audit-log-path` nothing here runs: the server has no [`Auditor`], the router gets
//! no layer, and dispatch's only cost is checking that it has none.

pub mod event;
pub mod policy;
pub mod sink;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use jiff::Timestamp;
use pernode_auth::authorizer::Attributes;
use pernode_auth::user::UserInfo;

use crate::AppState;
use crate::codec::{self, BodyKind};
use crate::{authentication, authorization, max_in_flight, params, target};
use event::{Event, ObjectRef, RequestBody};
use policy::{Level, Policy, Stage};
use sink::Sink;

/// Upstream's request and response header carrying the audit ID.
const AUDIT_ID_HEADER: &str = "audit-id";

/// A response body larger than this is not logged as `responseObject`.
const MAX_LOGGED_RESPONSE: usize = codec::MAX_BODY_BYTES;

/// The server's audit: its policy and where events go.
pub struct Auditor {
    policy: Policy,
    sink: Sink,
}

/// Why the audit flags cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("--audit-policy-file: {0}")]
    Policy(#[from] policy::PolicyError),
    #[error("opening the audit log {}: {source}", path.display())]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Auditor {
    pub fn new(policy: Policy, sink: Sink) -> Auditor {
        Auditor { policy, sink }
    }

    /// The audit kube-apiserver's flags ask for: events to `log_path` (`-`: stdout) at the
    /// levels of the policy in `policy_file`, or at `Metadata` for everything without one.
    pub fn from_flags(log_path: &Path, policy_file: Option<&Path>) -> Result<Auditor, AuditError> {
        let policy = match policy_file {
            Some(file) => Policy::load(file)?,
            None => Policy::metadata_for_everything(),
        };
        let sink = Sink::open(log_path).map_err(|source| AuditError::Log {
            path: log_path.to_path_buf(),
            source,
        })?;
        Ok(Auditor::new(policy, sink))
    }

    pub fn sink(&self) -> &Sink {
        &self.sink
    }

    fn emit(&self, omitted: policy::Stages, stage: Stage, mut event: Event) {
        if omitted.contains(stage) {
            return;
        }
        event.stage = stage;
        event.stage_timestamp = Timestamp::now();
        self.sink.send(event);
    }
}

/// A request extension the TCP listener adds when the server audits: the client's address
/// (the last of the event's `sourceIPs`).
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub SocketAddr);

/// What the handling of an audited request tells its audit event: the authorization decision
/// and the request's body. A request extension, present only on audited requests.
#[derive(Clone, Debug, Default)]
pub struct Recorder(Arc<Mutex<Recorded>>);

#[derive(Debug, Default)]
struct Recorded {
    keep_body: bool,
    /// Allowed, and the authorizer's reason.
    decision: Option<(bool, String)>,
    body: Option<Bytes>,
    /// Whom the requester acted as (`kubectl --as`).
    impersonated: Option<Arc<UserInfo>>,
}

impl Recorder {
    fn new(keep_body: bool) -> Recorder {
        Recorder(Arc::new(Mutex::new(Recorded {
            keep_body,
            ..Recorded::default()
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Recorded> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The authorizers' decision on the request.
    pub fn authorized(&self, allowed: bool, reason: &str) {
        self.lock().decision = Some((allowed, reason.to_string()));
    }

    /// The user the request is served as, once impersonation was allowed.
    pub fn impersonated(&self, user: Arc<UserInfo>) {
        self.lock().impersonated = Some(user);
    }

    /// The request's body, as read; kept (by reference) if the event will use it.
    pub fn body(&self, body: &Bytes) {
        let mut recorded = self.lock();
        if recorded.keep_body && !body.is_empty() {
            recorded.body = Some(body.clone());
        }
    }

    fn take(&self) -> Recorded {
        std::mem::take(&mut *self.lock())
    }
}

/// `router` with every request audited, when the server audits; `router` itself otherwise.
pub(crate) fn layer(router: Router, state: &Arc<AppState>) -> Router {
    if state.audit.is_none() {
        return router;
    }
    router.layer(axum::middleware::from_fn_with_state(state.clone(), audit))
}

/// What the policy and the event need to know of a request before it is handled.
struct Described {
    decision: policy::Decision,
    verb: String,
    object_ref: Option<ObjectRef>,
    /// The type its body is decoded as (`None`: a patch, or no body to speak of).
    body_kind: Option<BodyKind<'static>>,
}

/// The request's attributes as dispatch's authorization computes them, and the policy's word.
fn describe(
    policy: &Policy,
    state: &AppState,
    method: &Method,
    uri: &Uri,
    user: &UserInfo,
) -> Described {
    let path = uri.path();
    let lowercase_method = || authorization::non_resource_verb(method);
    if !target::is_resource_path(path) {
        let verb = lowercase_method();
        let decision = policy.evaluate(&Attributes::non_resource(user, &verb, path));
        return Described {
            decision,
            verb,
            object_ref: None,
            body_kind: None,
        };
    }
    let view = state.catalog.view();
    let Ok(Some(target)) = target::parse(&view, path) else {
        // A path naming no served resource (a 404): matched as a resource request of no
        // resource, with the method as its verb.
        let verb = lowercase_method();
        let attrs = Attributes::resource(user, &verb, "", "", "", "", "", "");
        return Described {
            decision: policy.evaluate(&attrs),
            verb,
            object_ref: None,
            body_kind: None,
        };
    };
    let query = params::Query::parse(uri.query());
    let attrs = authorization::resource_attributes(user, method, &target, &query);
    let body_kind = match *method {
        Method::POST | Method::PUT => Some(BodyKind::of_request(
            target.info,
            target.subresource.as_deref(),
        )),
        Method::DELETE => Some(BodyKind::DELETE_OPTIONS),
        _ => None,
    };
    Described {
        decision: policy.evaluate(&attrs),
        verb: attrs.verb.to_string(),
        object_ref: Some(ObjectRef::of(&attrs)),
        body_kind,
    }
}

/// The audit layer: see the module's documentation.
async fn audit(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    let Some(auditor) = state.audit.clone() else {
        return next.run(request).await;
    };
    let received = Timestamp::now();
    let requester = authentication::requester(request.extensions(), request.uri().path());
    let nobody = UserInfo::default();
    let user = requester.as_deref().unwrap_or(&nobody);
    let described = describe(
        &auditor.policy,
        &state,
        request.method(),
        request.uri(),
        user,
    );
    let decision = described.decision;
    if decision.level == Level::None {
        return next.run(request).await;
    }
    let headers = request.headers();
    let audit_id = headers
        .get(AUDIT_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let remote = request.extensions().get::<ClientAddr>().map(|a| a.0.ip());
    let uri = request.uri();
    let mut event = Event {
        level: decision.level,
        audit_id,
        stage: Stage::ResponseComplete,
        request_uri: uri
            .path_and_query()
            .map_or_else(|| uri.path().to_string(), |p| p.as_str().to_string()),
        verb: described.verb,
        user: requester.as_ref().ok().cloned(),
        impersonated_user: None,
        source_ips: event::source_ips(headers, remote),
        user_agent: event::user_agent(headers),
        object_ref: described.object_ref,
        response: None,
        request_body: None,
        received,
        stage_timestamp: received,
        annotations: BTreeMap::new(),
        omit_managed_fields: decision.omit_managed_fields,
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);

    if requester.is_err() {
        // Upstream's failed-authentication audit: one ResponseStarted event, no user.
        let certificate = request
            .extensions()
            .get::<authentication::Unauthenticated>()
            .is_some_and(|u| u.certificate);
        let message = event::failed_authentication_message(headers, uri.query(), certificate);
        let mut response = next.run(request).await;
        event.response = Some(event::Response {
            code: response.status().as_u16(),
            message,
            body: None,
        });
        set_audit_id(&mut response, &event.audit_id);
        auditor.emit(decision.omit_stages, Stage::ResponseStarted, event);
        return response;
    }

    let long_running = max_in_flight::long_running(&request);
    // A create's or update's object completes the object reference at every level.
    let keep_body =
        decision.level >= Level::Request || matches!(*request.method(), Method::POST | Method::PUT);
    let recorder = Recorder::new(keep_body);
    request.extensions_mut().insert(recorder.clone());
    let mut response = next.run(request).await;
    let recorded = recorder.take();
    if let Some((allowed, reason)) = recorded.decision {
        let decided = if allowed { "allow" } else { "forbid" };
        event
            .annotations
            .insert("authorization.k8s.io/decision", decided.to_string());
        event
            .annotations
            .insert("authorization.k8s.io/reason", reason);
    }
    event.impersonated_user = recorded.impersonated;
    event.request_body = recorded.body.map(|bytes| RequestBody {
        bytes,
        content_type,
        kind: described.body_kind,
    });
    set_audit_id(&mut response, &event.audit_id);
    let code = response.status().as_u16();
    event.response = Some(event::Response {
        code,
        ..event::Response::default()
    });
    if long_running {
        auditor.emit(decision.omit_stages, Stage::ResponseStarted, event.clone());
    }
    if decision.omit_stages.contains(Stage::ResponseComplete) {
        return response;
    }
    let keep_response = !long_running
        && (code >= 400 || decision.level == Level::RequestResponse)
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| codec::media_type(Some(t)) == "application/json");
    let (parts, body) = response.into_parts();
    let body = match body.size_hint().exact() {
        Some(size) if keep_response && size <= MAX_LOGGED_RESPONSE as u64 => {
            match axum::body::to_bytes(body, MAX_LOGGED_RESPONSE).await {
                Ok(bytes) => {
                    if let Some(r) = event.response.as_mut() {
                        r.body = Some(bytes.clone());
                    }
                    Body::from(bytes)
                }
                // A body of known size is in memory: this does not happen.
                Err(_) => Body::empty(),
            }
        }
        _ => body,
    };
    let body = Body::new(Completing {
        inner: body,
        pending: Some((auditor, decision.omit_stages, event)),
    });
    Response::from_parts(parts, body)
}

fn set_audit_id(response: &mut Response, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(AUDIT_ID_HEADER, value);
    }
}

/// A response body that logs `ResponseComplete` once it has been sent or dropped.
struct Completing {
    inner: Body,
    pending: Option<(Arc<Auditor>, policy::Stages, Event)>,
}

impl HttpBody for Completing {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Completing {
    fn drop(&mut self) {
        if let Some((auditor, omitted, event)) = self.pending.take() {
            auditor.emit(omitted, Stage::ResponseComplete, event);
        }
    }
}
