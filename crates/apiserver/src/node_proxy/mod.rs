//! Requests the API server forwards to a node's kubelet, as kube-apiserver does: `pods/log`,
//! `pods/exec`, `pods/attach`, `pods/portforward` and `nodes/proxy`.
//!
//! Every one of them first finds the node ([`NodeLocation::of`]) and looks at it:
//!
//! - a node annotated `pernode.io/simulated: "true"` is never dialled. Its addresses were made
//!   up for display and belong to somebody else's network. The API server answers for its
//!   kubelet instead: logs from [`pernode_core::simulated`], and a 400 naming the node as
//!   simulated for what a simulator cannot do ([`simulated_refusal`]);
//! - any other node is dialled at its InternalIP and kubelet port through [`NodeDialer`] (a 5 s
//!   connect timeout, and the one place outbound connections are made), and the request is
//!   forwarded over HTTPS ([`KubeletClient`]: the server's kubelet client certificate) and
//!   HTTP/1.1 with upgrades (exec's and port-forward's SPDY or WebSocket streams), as
//!   upstream's UpgradeAwareHandler.

pub mod connect;
mod dial;
mod kubelet_client;
pub mod logs;
pub mod resource_metrics;

pub use dial::{CONNECT_TIMEOUT, DialError, DialGuard, NodeDialer};
pub use kubelet_client::{KUBELET_CLIENT_USER, KubeletClient};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use hyper::upgrade::OnUpgrade;
use k8s_openapi::api::core::v1::{Node, Pod};

use crate::AppState;
use crate::error::ApiError;

/// Where a node's kubelet is, or that there is none to reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeLocation {
    /// Run by pernode's simulator: answered here, never dialled.
    Simulated { node: String },
    /// A real node's kubelet endpoint: InternalIP (or first address) and kubelet port.
    Real {
        node: String,
        host: String,
        port: u16,
    },
}

impl NodeLocation {
    /// The location of the node named `name`, read from the store.
    pub fn of(state: &AppState, name: &str) -> Result<NodeLocation, ApiError> {
        let entry = state
            .store
            .get(&format!("nodes/{name}"))
            .ok_or_else(|| ApiError::not_found("", "nodes", name))?;
        let node: Node = stored(&entry.json, "node")?;
        if pernode_core::simulated::is_simulated(node.metadata.annotations.as_ref()) {
            return Ok(NodeLocation::Simulated {
                node: name.to_string(),
            });
        }
        let (host, port) = kubelet_endpoint(&node).ok_or_else(|| {
            ApiError::bad_request(format!(
                "node {name} reports no address and port for its kubelet"
            ))
        })?;
        Ok(NodeLocation::Real {
            node: name.to_string(),
            host,
            port,
        })
    }
}

/// A stored object decoded as its type.
fn stored<T: serde::de::DeserializeOwned>(json: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(json).map_err(|e| ApiError::internal(format!("stored {what}: {e}")))
}

/// The pod a pod subresource names, and the node it is bound to.
pub fn pod_and_node(
    state: &AppState,
    req: &crate::target::Target,
) -> Result<(Pod, String), ApiError> {
    let name = req.name.clone().unwrap_or_default();
    let key = req.key().ok_or_else(ApiError::no_route)?;
    let entry = state
        .store
        .get(&key)
        .ok_or_else(|| ApiError::not_found(req.group(), req.plural(), &name))?;
    let pod: Pod = stored(&entry.json, "pod")?;
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("pod {name} does not have a host assigned"))
        })?;
    Ok((pod, node))
}

/// Where the node's kubelet listens: `InternalIP` (else the first address) and
/// `status.daemonEndpoints.kubeletEndpoint.Port`.
fn kubelet_endpoint(node: &Node) -> Option<(String, u16)> {
    let status = node.status.as_ref()?;
    let port = status
        .daemon_endpoints
        .as_ref()?
        .kubelet_endpoint
        .as_ref()?
        .port;
    let addrs = status.addresses.as_ref()?;
    let ip = addrs
        .iter()
        .find(|a| a.type_ == "InternalIP")
        .or_else(|| addrs.first())?;
    let port = u16::try_from(port).ok().filter(|p| *p > 0)?;
    Some((ip.address.clone(), port))
}

/// The 400 for what the simulator cannot do on `node` (`what`: exec, attach, port-forward,
/// proxy), naming the pod it was asked of, if any.
pub fn simulated_refusal(pod: Option<&str>, node: &str, what: &str) -> ApiError {
    let subject = match pod {
        Some(pod) => format!("pods {pod:?} is on node {node:?}, which"),
        None => format!("node {node:?}"),
    };
    ApiError::bad_request(format!(
        "{subject} is simulated by pernode: {what} needs a real node"
    ))
}

/// A request to forward to a real node's kubelet.
pub struct Forward<'a> {
    pub method: Method,
    /// Path and query on the kubelet (`/containerLogs/ns/pod/c?follow=true`).
    pub path_and_query: String,
    /// The client's headers: hop-by-hop ones are dropped, an upgrade's are kept.
    pub headers: &'a HeaderMap,
    pub body: bytes::Bytes,
    /// The client connection's upgrade, for exec/attach/port-forward streams.
    pub upgrade: Option<OnUpgrade>,
}

/// Headers that belong to one connection (RFC 9110 §7.6.1), not to the forwarded request.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "proxy-authorization",
];

/// Forwards `fwd` to the kubelet of a real node and streams its answer back; a `101 Switching
/// Protocols` joins the client's connection to the node's in both directions.
pub async fn forward(
    state: &AppState,
    node: &str,
    host: &str,
    port: u16,
    fwd: Forward<'_>,
) -> Result<Response, ApiError> {
    let authority = dial::authority(host, port);
    let url = format!("https://{authority}{}", fwd.path_and_query);
    let verb = go_method(&fwd.method);
    let failed = |e: &dyn std::fmt::Display| {
        ApiError::unknown(format!("error dialing node {node:?}: {verb} {url:?}: {e}"))
    };
    let stream = state
        .node_dialer
        .dial(node, host, port)
        .await
        .map_err(|e| failed(&e))?;
    let stream = state
        .kubelet_client
        .connect(host, stream)
        .await
        .map_err(|e| failed(&e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| failed(&e))?;
    // The connection lives as long as the body streams (`logs -f`) or the upgraded stream runs.
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "node connection ended");
        }
    });
    let upgrading = fwd.headers.contains_key(header::UPGRADE);
    let mut request = http::Request::builder()
        .method(fwd.method.clone())
        .uri(&fwd.path_and_query);
    for (name, value) in fwd.headers {
        let hop = HOP_BY_HOP.contains(&name.as_str());
        if name == header::HOST || (hop && !(upgrading && name == header::CONNECTION)) {
            continue;
        }
        request = request.header(name, value);
    }
    let request = request
        .header(header::HOST, &authority)
        .body(http_body_util::Full::new(fwd.body))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut response = sender.send_request(request).await.map_err(|e| failed(&e))?;
    let status = response.status();
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client) = fwd.upgrade else {
            return Err(ApiError::bad_request(
                "the node switched protocols, but this connection cannot be upgraded",
            ));
        };
        let node_side = hyper::upgrade::on(&mut response);
        let node_name = node.to_string();
        tokio::spawn(async move {
            let (client, node_side) = match tokio::join!(client, node_side) {
                (Ok(c), Ok(n)) => (c, n),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::debug!(node = %node_name, error = %e, "upgrade failed");
                    return;
                }
            };
            let mut client = hyper_util::rt::TokioIo::new(client);
            let mut node_side = hyper_util::rt::TokioIo::new(node_side);
            if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut node_side).await {
                tracing::debug!(node = %node_name, error = %e, "upgraded stream ended");
            }
        });
        let mut out = Response::new(Body::empty());
        *out.status_mut() = status;
        *out.headers_mut() = response.headers().clone();
        return Ok(out);
    }
    if !status.is_success() {
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
            .unwrap_or_default();
        return Err(node_error(status, body));
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("text/plain"));
    let mut out = Response::new(Body::new(response.into_body()));
    *out.status_mut() = status;
    out.headers_mut().insert(header::CONTENT_TYPE, content_type);
    Ok(out)
}

/// A kubelet's error answer as a Status: a Status body it sent, else its text with the code's
/// reason.
fn node_error(status: StatusCode, body: String) -> ApiError {
    if let Ok(s) = serde_json::from_str::<serde_json::Value>(&body)
        && s["kind"] == "Status"
        && let Some(message) = s["message"].as_str()
    {
        return ApiError::from_parts(status.as_u16(), reason_of(status), message.to_string());
    }
    ApiError::from_parts(status.as_u16(), reason_of(status), body)
}

fn reason_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::UNAUTHORIZED => "Unauthorized",
        StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
        _ => "InternalError",
    }
}

/// The method as Go's http client names it in errors (`Get`, `Post`).
fn go_method(method: &Method) -> String {
    let m = method.as_str();
    let mut chars = m.chars();
    match chars.next() {
        Some(first) => first.to_string() + &chars.as_str().to_ascii_lowercase(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_endpoint_reads_address_and_port() {
        let node: Node = serde_json::from_value(serde_json::json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n"}, {"type": "InternalIP", "address": "10.0.0.7"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}))
        .expect("node");
        assert_eq!(
            kubelet_endpoint(&node),
            Some(("10.0.0.7".to_string(), 10250))
        );
        assert_eq!(kubelet_endpoint(&Node::default()), None);
    }

    #[test]
    fn node_errors_keep_the_kubelets_words() {
        let e = node_error(StatusCode::BAD_REQUEST, "container c is not valid".into());
        assert_eq!(
            (e.code, e.reason, e.message.as_str()),
            (400, "BadRequest", "container c is not valid")
        );
        let status = r#"{"kind":"Status","message":"pod p not found","code":404}"#;
        let e = node_error(StatusCode::NOT_FOUND, status.into());
        assert_eq!(
            (e.reason, e.message.as_str()),
            ("NotFound", "pod p not found")
        );
        assert_eq!(go_method(&Method::GET), "Get");
        assert_eq!(go_method(&Method::POST), "Post");
    }
}
