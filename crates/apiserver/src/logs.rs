//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: proxied, as upstream, to the log endpoint of
//! the agent running the pod (`/containerLogs/{ns}/{pod}/{container}` at the node's InternalIP
//! and `status.daemonEndpoints.kubeletEndpoint.Port`), streaming the body so `kubectl logs -f`
//! follows.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{Node, Pod};

use crate::AppState;
use crate::error::ApiError;
use crate::handlers::Request;

/// Query parameters passed through to the agent.
const FORWARDED: [&str; 6] = [
    "follow",
    "previous",
    "tailLines",
    "limitBytes",
    "timestamps",
    "sinceSeconds",
];

fn typed<T: serde::de::DeserializeOwned>(json: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(json).map_err(|e| ApiError::internal(format!("stored {what}: {e}")))
}

/// The container a log request names: the `container` parameter, or the only container.
fn container_of(pod: &Pod, name: &str, requested: Option<&str>) -> Result<String, ApiError> {
    let spec = pod.spec.clone().unwrap_or_default();
    let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
    let inits: Vec<&str> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    match requested.filter(|c| !c.is_empty()) {
        Some(c) if names.contains(&c) || inits.contains(&c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if names.len() == 1 => Ok(names[0].to_string()),
        None => {
            let mut msg = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                names.join(" ")
            );
            if !inits.is_empty() {
                msg.push_str(&format!(
                    " or one of the init containers: [{}]",
                    inits.join(" ")
                ));
            }
            Err(ApiError::bad_request(msg))
        }
    }
}

/// Where the node's agent serves logs: `InternalIP:port`.
fn endpoint(node: &Node) -> Option<(String, i32)> {
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
    (port > 0).then(|| (ip.address.clone(), port))
}

pub async fn pod_log(state: &AppState, req: &Request) -> Result<Response, ApiError> {
    let target = &req.target;
    let name = target.name.clone().unwrap_or_default();
    let ns = target.namespace.clone().unwrap_or_default();
    let key = target.key().ok_or_else(ApiError::no_route)?;
    let entry = state
        .store
        .get(&key)
        .ok_or_else(|| ApiError::not_found(target.group(), target.plural(), &name))?;
    let pod: Pod = typed(&entry.json, "pod")?;
    let container = container_of(&pod, &name, req.query.get("container"))?;
    let node_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("pod {name} does not have a host assigned"))
        })?;
    let node_entry = state
        .store
        .get(&format!("nodes/{node_name}"))
        .ok_or_else(|| ApiError::not_found("", "nodes", &node_name))?;
    let node: Node = typed(&node_entry.json, "node")?;
    let (ip, port) = endpoint(&node).ok_or_else(|| {
        ApiError::bad_request(format!(
            "node {node_name} reports no address and port for container logs"
        ))
    })?;
    let mut query: Vec<String> = FORWARDED
        .iter()
        .filter_map(|k| req.query.get(k).map(|v| format!("{k}={v}")))
        .collect();
    query.sort();
    let path = format!("/containerLogs/{ns}/{name}/{container}?{}", query.join("&"));
    let host = if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    };
    let unreachable =
        |e: &dyn std::fmt::Display| ApiError::internal(format!("Get \"http://{host}{path}\": {e}"));
    let stream = tokio::net::TcpStream::connect(&host)
        .await
        .map_err(|e| unreachable(&e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
    // The connection runs for as long as the body streams (kubectl logs -f).
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "log proxy connection ended");
        }
    });
    let request = http::Request::get(&path)
        .header(header::HOST, &host)
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unreachable(&e))?;
    let status = response.status();
    if !status.is_success() {
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_string())
            .unwrap_or_default();
        let reason = match status {
            StatusCode::BAD_REQUEST => "BadRequest",
            StatusCode::NOT_FOUND => "NotFound",
            _ => "InternalError",
        };
        return Err(ApiError::from_parts(status.as_u16(), reason, body));
    }
    let mut out = Response::new(Body::new(response.into_body()));
    out.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).expect("pod literal")
    }

    #[test]
    fn container_choice_follows_upstream() {
        let one = pod(serde_json::json!({"spec": {"containers": [{"name": "a"}]}}));
        assert_eq!(container_of(&one, "p", None).expect("only one"), "a");
        assert_eq!(container_of(&one, "p", Some("a")).expect("named"), "a");
        let e = container_of(&one, "p", Some("zz")).expect_err("unknown");
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "container zz is not valid for pod p")
        );
        let two = pod(serde_json::json!({"spec": {
            "containers": [{"name": "a"}, {"name": "b"}],
            "initContainers": [{"name": "i"}]}}));
        assert_eq!(container_of(&two, "p", Some("i")).expect("init"), "i");
        let e = container_of(&two, "p", None).expect_err("ambiguous");
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
    }

    #[test]
    fn endpoint_reads_address_and_port() {
        let node: Node = serde_json::from_value(serde_json::json!({"status": {
            "addresses": [{"type": "Hostname", "address": "n"}, {"type": "InternalIP", "address": "10.0.0.7"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}}}}))
        .expect("node");
        assert_eq!(endpoint(&node), Some(("10.0.0.7".to_string(), 10250)));
        assert_eq!(endpoint(&Node::default()), None);
    }
}
