//! The whole request path through the in-process router (`pernode_apiserver::in_memory_router`):
//! routing, authentication and authorization as the in-process admin, query parameters, body
//! decoding, patches, admission, validation, the store.
//!
//! One request per input, built with `arbitrary` from vocabularies of the API's paths, query
//! parameters, content types and object shapes (plus raw text), sent with tower's `oneshot` to
//! a router that lives for the whole run, so that objects created by one input are there for the
//! next. A reply fails the run when it is a 5xx other than a deliberate 503/504 Status, or when a
//! 4xx/5xx body is not a Kubernetes object (a `Status`). Requests that stream without end
//! (watches, `follow`) or would dial a node (proxy, logs, exec) are not sent: the run must talk
//! to nothing but itself.

use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use serde_json::{Map, Value};
use tower::ServiceExt;

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];
const PREFIXES: &[&str] = &[
    "/api/v1",
    "/apis/apps/v1",
    "/apis/rbac.authorization.k8s.io/v1",
    "/apis/policy/v1",
    "/apis/events.k8s.io/v1",
    "/apis/certificates.k8s.io/v1",
    "/apis/coordination.k8s.io/v1",
    "/apis/apiextensions.k8s.io/v1",
    "/apis/authorization.k8s.io/v1",
    "/apis/authentication.k8s.io/v1",
    "/api",
    "/apis",
    "/version",
    "/openapi/v2",
    "/healthz",
    "",
];
const SEGMENTS: &[&str] = &[
    "namespaces",
    "default",
    "kube-system",
    "pods",
    "nodes",
    "daemonsets",
    "events",
    "configmaps",
    "secrets",
    "serviceaccounts",
    "services",
    "endpoints",
    "leases",
    "controllerrevisions",
    "clusterroles",
    "clusterrolebindings",
    "roles",
    "rolebindings",
    "poddisruptionbudgets",
    "certificatesigningrequests",
    "customresourcedefinitions",
    "selfsubjectaccessreviews",
    "tokenreviews",
    "status",
    "scale",
    "eviction",
    "binding",
    "token",
    "finalize",
    "approval",
    "p",
    "ds",
    "n1",
    "x",
    "..",
    ".",
    "",
    "%2F",
    "a%00b",
];
const QUERY_KEYS: &[&str] = &[
    "labelSelector",
    "fieldSelector",
    "limit",
    "continue",
    "resourceVersion",
    "resourceVersionMatch",
    "dryRun",
    "fieldValidation",
    "fieldManager",
    "force",
    "propagationPolicy",
    "gracePeriodSeconds",
    "orphanDependents",
    "timeoutSeconds",
    "allowWatchBookmarks",
    "pretty",
    "includeObject",
    "as",
    "x",
];
const CONTENT_TYPES: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "text/plain",
    "application/json;as=Table;v=v1;g=meta.k8s.io",
];
const ACCEPTS: &[&str] = &[
    "application/json",
    "application/json;as=Table;v=v1;g=meta.k8s.io",
    "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io",
    "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
    "application/yaml",
    "application/vnd.kubernetes.protobuf",
    "*/*",
];
const KINDS: &[(&str, &str)] = &[
    ("v1", "Pod"),
    ("apps/v1", "DaemonSet"),
    ("v1", "Node"),
    ("v1", "Namespace"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "Event"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("policy/v1", "Eviction"),
    ("v1", "Binding"),
    ("apps/v1", "Scale"),
    ("v1", "DeleteOptions"),
    ("rbac.authorization.k8s.io/v1", "Role"),
];
/// Never sent: they stream without end or dial a node.
const NOT_SENT: &[&str] = &[
    "watch",
    "follow",
    "proxy",
    "log",
    "exec",
    "attach",
    "portforward",
];

/// A JSON value of arbitrary shape.
#[derive(Debug, Arbitrary)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Word(u8),
    Array(Vec<Json>),
    Object(Vec<(Key, Json)>),
}

/// An object key: one of the API's field names, or any text.
#[derive(Debug, Arbitrary)]
enum Key {
    Known(u8),
    Any(String),
}

const FIELDS: &[&str] = &[
    "name",
    "namespace",
    "labels",
    "annotations",
    "finalizers",
    "ownerReferences",
    "resourceVersion",
    "uid",
    "generateName",
    "deletionTimestamp",
    "containers",
    "image",
    "nodeName",
    "selector",
    "matchLabels",
    "matchExpressions",
    "template",
    "metadata",
    "spec",
    "status",
    "conditions",
    "type",
    "taints",
    "key",
    "effect",
    "value",
    "data",
    "replicas",
    "phase",
    "$patch",
    "$setElementOrder/containers",
    "$retainKeys",
    "op",
    "path",
    "from",
    "resources",
    "requests",
    "cpu",
    "memory",
    "tolerations",
    "operator",
    "unschedulable",
    "podCIDR",
    "capacity",
    "allocatable",
    "managedFields",
    "updateStrategy",
];

impl Json {
    fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(i) => Value::from(*i),
            Json::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Json::Str(s) => Value::String(s.clone()),
            Json::Word(i) => Value::String(pick(FIELDS, *i).to_string()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| {
                        let k = match k {
                            Key::Known(i) => pick(FIELDS, *i).to_string(),
                            Key::Any(s) => s.clone(),
                        };
                        (k, v.to_value())
                    })
                    .collect::<Map<String, Value>>(),
            ),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Segment {
    Known(u8),
    Any(String),
}

#[derive(Debug, Arbitrary)]
enum BodyShape {
    None,
    Raw(Vec<u8>),
    Json(Json),
    /// `apiVersion`/`kind` of a kind, a name, and arbitrary metadata/spec/status members.
    Object {
        kind: u8,
        name: Segment,
        metadata: Option<Json>,
        spec: Option<Json>,
        status: Option<Json>,
        /// Merged into the object when it is an object.
        extra: Json,
    },
}

#[derive(Debug, Arbitrary)]
struct Input {
    method: u8,
    prefix: u8,
    segments: Vec<Segment>,
    query: Vec<(u8, String)>,
    content_type: Option<u8>,
    accept: Option<u8>,
    body: BodyShape,
}

fn pick<'a>(from: &[&'a str], i: u8) -> &'a str {
    from.get(usize::from(i) % from.len())
        .copied()
        .unwrap_or_default()
}

fn segment(s: &Segment) -> String {
    match s {
        Segment::Known(i) => pick(SEGMENTS, *i).to_string(),
        Segment::Any(s) => s.clone(),
    }
}

fn body_bytes(shape: &BodyShape) -> Vec<u8> {
    match shape {
        BodyShape::None => Vec::new(),
        BodyShape::Raw(bytes) => bytes.clone(),
        BodyShape::Json(j) => j.to_value().to_string().into_bytes(),
        BodyShape::Object {
            kind,
            name,
            metadata,
            spec,
            status,
            extra,
        } => {
            let (api_version, kind) = KINDS
                .get(usize::from(*kind) % KINDS.len())
                .copied()
                .unwrap_or(("v1", "Pod"));
            let mut obj = Map::new();
            obj.insert("apiVersion".into(), api_version.into());
            obj.insert("kind".into(), kind.into());
            let metadata = match metadata {
                Some(m) => m.to_value(),
                None => serde_json::json!({"name": segment(name)}),
            };
            obj.insert("metadata".into(), metadata);
            if let Some(spec) = spec {
                obj.insert("spec".into(), spec.to_value());
            }
            if let Some(status) = status {
                obj.insert("status".into(), status.to_value());
            }
            if let Value::Object(more) = extra.to_value() {
                obj.extend(more);
            }
            Value::Object(obj).to_string().into_bytes()
        }
    }
}

fn runtime() -> &'static (tokio::runtime::Runtime, Router) {
    static RUNTIME: OnceLock<(tokio::runtime::Runtime, Router)> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let router = rt
            .block_on(pernode_apiserver::in_memory_router())
            .expect("in-memory API server");
        (rt, router)
    })
}

/// One input: decoded as libfuzzer-sys decodes a typed target's (`arbitrary_take_rest`, too
/// short or undecodable inputs skipped), so that a corpus replays the same requests.
pub fn run(data: &[u8]) {
    if data.len() < <Input as Arbitrary>::size_hint(0).0 {
        return;
    }
    let Ok(input) = Input::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    send(input);
}

fn send(input: Input) {
    let mut uri = pick(PREFIXES, input.prefix).to_string();
    for s in &input.segments {
        uri.push('/');
        uri.push_str(&segment(s));
    }
    if uri.is_empty() {
        uri.push('/');
    }
    for (i, (key, value)) in input.query.iter().enumerate() {
        uri.push(if i == 0 { '?' } else { '&' });
        uri.push_str(pick(QUERY_KEYS, *key));
        uri.push('=');
        uri.push_str(value);
    }
    let lower = uri.to_ascii_lowercase();
    if NOT_SENT.iter().any(|w| lower.contains(w)) {
        return;
    }
    let method = pick(METHODS, input.method);
    let mut request = Request::builder().method(method).uri(&uri);
    if let Some(ct) = input.content_type {
        request = request.header("content-type", pick(CONTENT_TYPES, ct));
    }
    if let Some(accept) = input.accept {
        request = request.header("accept", pick(ACCEPTS, accept));
    }
    // A URI or header http refuses never reaches the server (hyper answers it); not our input.
    let Ok(request) = request.body(Body::from(body_bytes(&input.body))) else {
        return;
    };

    let (rt, router) = runtime();
    let (status, body) = rt.block_on(async {
        let reply = tokio::time::timeout(Duration::from_secs(20), async {
            let response = router.clone().oneshot(request).await.expect("infallible");
            let status = response.status();
            let body = response.into_body().collect().await.map(|b| b.to_bytes());
            (status, body)
        })
        .await;
        reply.unwrap_or_else(|_| panic!("{method} {uri}: no reply within 20 s"))
    });
    let body = body.unwrap_or_else(|e| panic!("{method} {uri}: body failed: {e}"));
    let code = status.as_u16();
    if code < 400 || method == "HEAD" {
        return;
    }
    // kube-openapi's handler answers an Accept it cannot serve with a bare 406 (no Status).
    if uri.starts_with("/openapi/") && code == 406 && body.is_empty() {
        return;
    }
    let parsed: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
        panic!(
            "{method} {uri}: {code} with a body that is not JSON: {:?}",
            String::from_utf8_lossy(&body)
        )
    });
    let is_object = parsed
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| !k.is_empty());
    assert!(
        is_object,
        "{method} {uri}: {code} with a body that is no object: {parsed}"
    );
    if code >= 500 {
        let deliberate = parsed["kind"] == "Status" && matches!(code, 503 | 504);
        assert!(deliberate, "{method} {uri}: {code}: {parsed}");
    }
}
