//! The request metrics of kube-apiserver's `endpoints/metrics`: `apiserver_request_total`,
//! `apiserver_request_duration_seconds` and `apiserver_longrunning_requests`, with upstream's
//! labels and their values (`CleanScope`, `CanonicalVerb`, `cleanVerb`, `cleanDryRun`).
//!
//! As upstream's instrumented routes, only resource requests that passed authentication and
//! authorization are recorded; a long-running request (a watch, logs, a connection to a node)
//! counts in the gauge while its response body streams and in the totals when the body ends or
//! is dropped, as upstream records it once its handler returns (a connection upgraded to exec
//! or port-forward leaves the gauge once its 101 is sent).
//!
//! Recording is on every request's path, in-process controllers included, so it allocates
//! nothing once a label set has been seen: every label value is a `&'static str` (the
//! resource's catalogue entry, upstream's fixed vocabularies), and the counter and histogram
//! of each label set are cached under a key of pointers and small integers.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::RwLock;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use hyper::body::{Frame, SizeHint};
use pernode_resources::ResourceInfo;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::params::Query;
use crate::target::Target;

/// `apiserver_request_duration_seconds`' buckets (upstream's, chosen for its latency SLOs).
pub const DURATION_BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// `APIServerComponent`: the `component` label of what this server serves itself.
const COMPONENT: &str = "apiserver";

/// The reported verbs (upstream's `validRequestMethods` that a method can become), indexed by
/// [`Sample`]'s `verb`.
const VERBS: [&str; 9] = [
    "GET", "LIST", "WATCH", "POST", "PUT", "PATCH", "APPLY", "DELETE", "other",
];
const SCOPES: [&str; 3] = ["resource", "namespace", "cluster"];
const DRY_RUNS: [&str; 3] = ["", "All", "invalid"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    verb: &'static str,
    dry_run: &'static str,
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    subresource: &'static str,
    scope: &'static str,
    component: &'static str,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DurationLabels {
    verb: &'static str,
    dry_run: &'static str,
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    subresource: &'static str,
    scope: &'static str,
    component: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LongRunningLabels {
    verb: &'static str,
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    subresource: &'static str,
    scope: &'static str,
    component: &'static str,
}

/// One resource request as the metrics see it, from its start.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    started: Instant,
    info: &'static ResourceInfo,
    subresource: &'static str,
    verb: u8,
    scope: u8,
    dry_run: u8,
    long_running: bool,
}

impl Sample {
    /// The labels of an authorized resource request that started at `started`.
    pub fn new(
        started: Instant,
        method: &Method,
        target: &Target,
        query: &Query,
        headers: &HeaderMap,
    ) -> Sample {
        let subresource = target
            .subresource
            .as_deref()
            .and_then(|s| target.info.subresource(s));
        let named = target.name.is_some();
        // CleanScope: a named object or a create is `resource`; then the request's namespace
        // (RequestInfo reads `/namespaces/{ns}` as namespace `{ns}`, and such a request is
        // named anyway).
        let scope = if named || (*method == Method::POST && subresource.is_none()) {
            0
        } else if target.namespace.is_some() {
            1
        } else {
            2
        };
        let watch = query.watch();
        // CanonicalVerb then cleanVerb: the method, GET of a collection as LIST, a watch as
        // WATCH, a server-side apply as APPLY, other methods as `other`.
        let verb = match *method {
            Method::GET | Method::HEAD if watch => 2,
            Method::GET | Method::HEAD if scope == 0 => 0,
            Method::GET | Method::HEAD => 1,
            Method::POST => 3,
            Method::PUT => 4,
            Method::PATCH if is_apply(headers) => 6,
            Method::PATCH => 5,
            Method::DELETE => 7,
            _ => 8,
        };
        let long_running = watch
            || subresource.is_some_and(|s| {
                s.is_connect() || matches!(s.name, "log" | "exec" | "attach" | "portforward")
            });
        Sample {
            started,
            info: target.info,
            subresource: subresource.map_or("", |s| s.name),
            verb,
            scope,
            dry_run: dry_run(query),
            long_running,
        }
    }

    /// Whether upstream tracks this request in `apiserver_longrunning_requests`.
    pub fn is_long_running(&self) -> bool {
        self.long_running
    }

    fn duration_labels(&self) -> DurationLabels {
        DurationLabels {
            verb: VERBS[usize::from(self.verb)],
            dry_run: DRY_RUNS[usize::from(self.dry_run)],
            group: self.info.group,
            version: self.info.version,
            resource: self.info.plural,
            subresource: self.subresource,
            scope: SCOPES[usize::from(self.scope)],
            component: COMPONENT,
        }
    }

    fn key(&self, code: u16) -> Key {
        Key {
            info: std::ptr::from_ref(self.info) as usize,
            subresource: self.subresource.as_ptr() as usize,
            verb: self.verb,
            scope: self.scope,
            dry_run: self.dry_run,
            code,
        }
    }
}

fn is_apply(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes() == b"application/apply-patch+yaml")
}

/// cleanDryRun: nothing when the query has no `dryRun` (no allocation), `All` when every value
/// is `All` (the only valid one), else `invalid`.
fn dry_run(query: &Query) -> u8 {
    if !query.as_str().contains("dryRun") {
        return 0;
    }
    let values = query.dry_run_values();
    if values.is_empty() {
        0
    } else if values.iter().all(|v| v == "All") {
        1
    } else {
        2
    }
}

/// A label set's identity, cheap to hash: the catalogue entry's and subresource name's
/// addresses (both `'static`) and the indexes of the other values.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct Key {
    info: usize,
    subresource: usize,
    verb: u8,
    scope: u8,
    dry_run: u8,
    code: u16,
}

#[derive(Clone)]
struct Recorded {
    total: Counter,
    duration: Histogram,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The request metrics of one API server.
pub struct RequestMetrics {
    total: Family<RequestLabels, Counter>,
    duration: Family<DurationLabels, Histogram, fn() -> Histogram>,
    long_running: Family<LongRunningLabels, Gauge>,
    cache: RwLock<HashMap<Key, Recorded, foldhash::fast::RandomState>>,
}

impl Default for RequestMetrics {
    fn default() -> Self {
        RequestMetrics {
            total: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
            long_running: Family::default(),
            cache: RwLock::default(),
        }
    }
}

impl RequestMetrics {
    /// Adds the families to `registry` under upstream's names.
    pub fn register(&self, registry: &mut Registry) {
        // The text encoder appends `_total` to a counter's name.
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
            self.total.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
            self.duration.clone(),
        );
        registry.register(
            "apiserver_longrunning_requests",
            "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component. Not all requests are tracked this way.",
            self.long_running.clone(),
        );
    }

    /// Counts a finished request: its total by code and its duration since it started.
    pub fn record(&self, sample: &Sample, code: StatusCode) {
        let key = sample.key(code.as_u16());
        let cached = match self.cache.read() {
            Ok(cache) => cache.get(&key).cloned(),
            Err(poisoned) => poisoned.into_inner().get(&key).cloned(),
        };
        let recorded = match cached {
            Some(r) => r,
            None => self.first_of(sample, key),
        };
        recorded.total.inc();
        recorded
            .duration
            .observe(sample.started.elapsed().as_secs_f64());
    }

    /// The metrics of a label set seen for the first time, made and cached.
    #[cold]
    fn first_of(&self, sample: &Sample, key: Key) -> Recorded {
        let d = sample.duration_labels();
        let labels = RequestLabels {
            verb: d.verb,
            dry_run: d.dry_run,
            group: d.group,
            version: d.version,
            resource: d.resource,
            subresource: d.subresource,
            scope: d.scope,
            component: d.component,
            code: key.code,
        };
        let recorded = Recorded {
            total: self.total.get_or_create_owned(&labels),
            duration: self.duration.get_or_create_owned(&d),
        };
        let mut cache = match self.cache.write() {
            Ok(cache) => cache,
            Err(poisoned) => poisoned.into_inner(),
        };
        cache.entry(key).or_insert(recorded).clone()
    }

    /// Counts a long-running request in `apiserver_longrunning_requests` until the returned
    /// guard is dropped.
    pub fn long_running(&self, sample: &Sample) -> LongRunning {
        let d = sample.duration_labels();
        let gauge = self.long_running.get_or_create_owned(&LongRunningLabels {
            verb: d.verb,
            group: d.group,
            version: d.version,
            resource: d.resource,
            subresource: d.subresource,
            scope: d.scope,
            component: d.component,
        });
        gauge.inc();
        LongRunning { gauge }
    }

    /// Records `response` for `sample`: at once, or for a long-running request when its body
    /// ends or is dropped (the client went away), which also ends `live`.
    pub fn finish(
        self: &std::sync::Arc<Self>,
        sample: Sample,
        live: Option<LongRunning>,
        response: Response,
    ) -> Response {
        let code = response.status();
        let Some(live) = live else {
            self.record(&sample, code);
            return response;
        };
        let ended = Ended {
            metrics: self.clone(),
            sample,
            code,
            _live: live,
        };
        let (parts, body) = response.into_parts();
        let body = Measured {
            inner: body,
            _ended: ended,
        };
        Response::from_parts(parts, Body::new(body))
    }
}

/// A long-running request's body, as it was (frames, end, size hint: a 101's empty body stays
/// empty), holding what records the request when the body goes.
struct Measured {
    inner: Body,
    _ended: Ended,
}

impl HttpBody for Measured {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A long-running request in the gauge; leaves it when dropped.
pub struct LongRunning {
    gauge: Gauge,
}

impl Drop for LongRunning {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// Records a long-running request when its response body goes.
struct Ended {
    metrics: std::sync::Arc<RequestMetrics>,
    sample: Sample,
    code: StatusCode,
    _live: LongRunning,
}

impl Drop for Ended {
    fn drop(&mut self) {
        self.metrics.record(&self.sample, self.code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(method: Method, path: &str, headers: &HeaderMap) -> Sample {
        let view = pernode_resources::Catalog::new().view();
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let target = crate::target::parse(&view, path)
            .expect("parses")
            .expect("a resource");
        let query = Query::parse(Some(query));
        Sample::new(Instant::now(), &method, &target, &query, headers)
    }

    fn labels(method: Method, path: &str) -> (&'static str, &'static str, &'static str) {
        let s = sample(method, path, &HeaderMap::new());
        let d = s.duration_labels();
        (d.verb, d.scope, d.subresource)
    }

    #[test]
    fn verbs_and_scopes_are_upstreams() {
        let get = Method::GET;
        assert_eq!(
            labels(get.clone(), "/api/v1/namespaces/d/pods/p"),
            ("GET", "resource", "")
        );
        assert_eq!(
            labels(get.clone(), "/api/v1/namespaces/d/pods"),
            ("LIST", "namespace", "")
        );
        assert_eq!(labels(get.clone(), "/api/v1/pods"), ("LIST", "cluster", ""));
        assert_eq!(
            labels(get.clone(), "/api/v1/pods?watch=true"),
            ("WATCH", "cluster", "")
        );
        assert_eq!(
            labels(get.clone(), "/api/v1/namespaces/kube-system"),
            ("GET", "resource", "")
        );
        assert_eq!(
            labels(Method::POST, "/api/v1/namespaces/d/pods"),
            ("POST", "resource", "")
        );
        assert_eq!(
            labels(Method::DELETE, "/api/v1/namespaces/d/pods"),
            ("DELETE", "namespace", "")
        );
        assert_eq!(
            labels(
                Method::PUT,
                "/apis/apps/v1/namespaces/d/daemonsets/x/status"
            ),
            ("PUT", "resource", "status")
        );
        assert_eq!(
            labels(Method::OPTIONS, "/api/v1/pods"),
            ("other", "cluster", "")
        );
        let mut apply = HeaderMap::new();
        apply.insert(
            header::CONTENT_TYPE,
            "application/apply-patch+yaml".parse().expect("header"),
        );
        let s = sample(Method::PATCH, "/api/v1/namespaces/d/configmaps/c", &apply);
        assert_eq!(s.duration_labels().verb, "APPLY");
    }

    #[test]
    fn long_running_requests_and_dry_runs() {
        let none = HeaderMap::new();
        let is_long = |m: Method, p: &str| sample(m, p, &none).is_long_running();
        assert!(is_long(Method::GET, "/api/v1/pods?watch=1"));
        assert!(is_long(Method::GET, "/api/v1/namespaces/d/pods/p/log"));
        assert!(is_long(Method::POST, "/api/v1/namespaces/d/pods/p/exec"));
        assert!(is_long(Method::GET, "/api/v1/nodes/n/proxy/stats"));
        assert!(!is_long(Method::GET, "/api/v1/pods"));
        assert!(!is_long(Method::GET, "/api/v1/namespaces/d/pods/p/status"));
        let dry = |p: &str| DRY_RUNS[usize::from(sample(Method::POST, p, &none).dry_run)];
        assert_eq!(dry("/api/v1/namespaces/d/pods"), "");
        assert_eq!(dry("/api/v1/namespaces/d/pods?dryRun=All"), "All");
        assert_eq!(dry("/api/v1/namespaces/d/pods?dryRun=Some"), "invalid");
    }
}
