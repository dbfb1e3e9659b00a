//! The connect subresources: `pods/exec`, `pods/attach`, `pods/portforward` and `nodes/proxy`.
//!
//! As kube-apiserver's, each names a location on the node's kubelet (`/exec/{ns}/{pod}/{c}`,
//! `/attach/{ns}/{pod}/{c}`, `/portForward/{ns}/{pod}`, `/{path}`) and forwards the request
//! there with its query, upgrading the connection to the stream protocol the client asked for
//! (SPDY or WebSocket) when the kubelet switches. A simulated node has no kubelet to reach: the
//! request is refused with a 400 naming the node as simulated, and nothing is dialled.

use std::sync::Arc;

use axum::http::Method;
use axum::response::Response;
use hyper::upgrade::OnUpgrade;

use super::logs::container_of;
use super::{Forward, NodeLocation, forward, pod_and_node, simulated_refusal};
use crate::AppState;
use crate::error::ApiError;
use crate::handlers::Request;

/// Whether `req` addresses a connect subresource (answered by [`serve`]).
pub fn is_connect(req: &Request) -> bool {
    req.target
        .subresource
        .as_deref()
        .and_then(|s| req.target.info.subresource(s))
        .is_some_and(|s| s.is_connect())
}

/// Serves a connect subresource: forwards it to the node's kubelet, or refuses it for a
/// simulated node.
pub async fn serve(
    state: &Arc<AppState>,
    req: Request,
    upgrade: Option<OnUpgrade>,
) -> Result<Response, ApiError> {
    let target = &req.target;
    let sub = target.subresource.as_deref().unwrap_or_default();
    let name = target.name.clone().unwrap_or_default();
    let allowed = match sub {
        "proxy" => true,
        _ => req.method == Method::GET || req.method == Method::POST,
    };
    if !allowed {
        return Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({} {}/{sub})",
            req.method,
            target.plural()
        )));
    }
    let (node, path) = if target.plural() == "nodes" {
        let rest = target.proxy_path.clone().unwrap_or_default();
        (name.clone(), format!("/{rest}"))
    } else {
        let ns = target.namespace.clone().unwrap_or_default();
        let (pod, node) = pod_and_node(state, target)?;
        let path = match sub {
            "portforward" => format!("/portForward/{ns}/{name}"),
            _ => {
                let container = container_of(&pod, &name, req.query.get("container"))?;
                let kubelet_verb = if sub == "exec" { "exec" } else { "attach" };
                format!("/{kubelet_verb}/{ns}/{name}/{container}")
            }
        };
        (node, path)
    };
    let what = match sub {
        "portforward" => "port-forward",
        other => other,
    };
    match NodeLocation::of(state, &node)? {
        NodeLocation::Simulated { node } => {
            let pod = (target.plural() == "pods").then_some(name.as_str());
            Err(simulated_refusal(pod, &node, what))
        }
        NodeLocation::Real { node, host, port } => {
            let query = req.query.as_str();
            let path_and_query = if query.is_empty() {
                path
            } else {
                format!("{path}?{query}")
            };
            let fwd = Forward {
                method: req.method.clone(),
                path_and_query,
                headers: &req.headers,
                body: req.body.clone(),
                upgrade,
            };
            forward(state, &node, &host, port, fwd).await
        }
    }
}
