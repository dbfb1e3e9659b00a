//! kube-apiserver's max-in-flight filter (`--max-requests-inflight`, 400, and
//! `--max-mutating-requests-inflight`, 200): past that many requests being served at once,
//! another one is answered at once with 429 Too Many Requests and `Retry-After: 1` instead of
//! queueing, so an overloaded server stays responsive to what it already serves.
//!
//! Long-running requests are exempt, as upstream's `BasicLongRunningRequestCheck`: watches,
//! and the `log`, `exec`, `attach`, `portforward` and `proxy` subresources. Upstream answers in
//! plain text; pernode answers with a Status (reason `TooManyRequests`, `retryAfterSeconds`),
//! which client-go reads the same way (it retries on 429 with the `Retry-After` header).
//!
//! Only the TCP listener is limited: the controllers that `pernode up` runs in process call the
//! router directly and are part of the control plane, as upstream exempts `system:masters`.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

/// How many requests of each kind may be served at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlightLimits {
    /// Reads (`--max-requests-inflight`).
    pub readonly: usize,
    /// Writes (`--max-mutating-requests-inflight`).
    pub mutating: usize,
}

impl Default for InFlightLimits {
    fn default() -> Self {
        InFlightLimits {
            readonly: 400,
            mutating: 200,
        }
    }
}

#[derive(Clone)]
struct Slots {
    readonly: Arc<Semaphore>,
    mutating: Arc<Semaphore>,
}

/// `router` with the limits applied to every request it serves.
pub fn limit(router: Router, limits: InFlightLimits) -> Router {
    let slots = Slots {
        readonly: Arc::new(Semaphore::new(limits.readonly)),
        mutating: Arc::new(Semaphore::new(limits.mutating)),
    };
    router.layer(axum::middleware::from_fn_with_state(slots, admit))
}

async fn admit(State(slots): State<Slots>, request: Request, next: Next) -> Response {
    if long_running(&request) {
        return next.run(request).await;
    }
    let mutating = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let slots = if mutating {
        &slots.mutating
    } else {
        &slots.readonly
    };
    // Held until the handler has answered (its body may stream on after).
    let Ok(_slot) = slots.clone().try_acquire_owned() else {
        return too_many_requests();
    };
    next.run(request).await
}

/// Upstream's long-running requests: watches and connections to nodes or streams (the audit
/// log's `ResponseStarted` events are for these too).
pub(crate) fn long_running(request: &Request) -> bool {
    let uri = request.uri();
    let watching = uri.query().is_some_and(|q| {
        q.split('&')
            .any(|pair| matches!(pair, "watch=true" | "watch=1"))
    });
    if watching || uri.path().contains("/watch/") {
        return true;
    }
    // `{pods|nodes|services}/{name}/{subresource}`, the proxy's path possibly following.
    let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
    segments.windows(3).any(|w| {
        matches!(w[0], "pods" | "nodes" | "services")
            && matches!(w[2], "log" | "exec" | "attach" | "portforward" | "proxy")
    })
}

fn too_many_requests() -> Response {
    let status = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Too many requests, please try again later.",
        "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": 1},
        "code": 429,
    });
    let mut response = (StatusCode::TOO_MANY_REQUESTS, status.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: Method, uri: &str) -> Request {
        axum::http::Request::builder()
            .method(method)
            .uri(uri)
            .body(axum::body::Body::empty())
            .expect("request")
    }

    #[test]
    fn long_running_requests_are_upstreams() {
        let long = |uri: &str| long_running(&request(Method::GET, uri));
        assert!(long("/api/v1/pods?watch=true"));
        assert!(long("/api/v1/namespaces/d/pods?labelSelector=a&watch=1"));
        assert!(long("/api/v1/watch/pods"));
        assert!(long("/api/v1/namespaces/d/pods/p/log"));
        assert!(long("/api/v1/namespaces/d/pods/p/exec"));
        assert!(long("/api/v1/namespaces/d/pods/p/attach"));
        assert!(long("/api/v1/namespaces/d/pods/p/portforward"));
        assert!(long("/api/v1/nodes/n/proxy/stats/summary"));
        assert!(!long("/api/v1/pods"));
        assert!(!long("/api/v1/pods?watch=false"));
        assert!(!long("/api/v1/namespaces/d/pods/p/status"));
        assert!(!long("/api/v1/namespaces/d/pods/logger"));
        assert!(!long("/api/v1/namespaces/d/pods/log"), "a pod named log");
        assert!(!long("/api/v1/namespaces/d/pods/proxy-1"));
    }
}
