//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: for a real node, proxied as upstream to the
//! log endpoint of the agent running the pod (`/containerLogs/{ns}/{pod}/{container}`),
//! streaming the body so `kubectl logs -f` follows; for a simulated node, answered here with the
//! lines [`pernode_core::simulated`] derives from the pod's status.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use pernode_core::simulated::{self, LogRequest};
use pernode_store::EventType;

use super::{Forward, NodeLocation, forward, pod_and_node};
use crate::AppState;
use crate::error::ApiError;
use crate::handlers::Request;

/// Query parameters passed through to the agent.
const FORWARDED: [&str; 7] = [
    "follow",
    "previous",
    "tailLines",
    "limitBytes",
    "timestamps",
    "sinceSeconds",
    "sinceTime",
];

/// The container a log request names: the `container` parameter, or the only container.
pub(crate) fn container_of(
    pod: &Pod,
    name: &str,
    requested: Option<&str>,
) -> Result<String, ApiError> {
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

pub async fn pod_log(state: &Arc<AppState>, req: &Request) -> Result<Response, ApiError> {
    let target = &req.target;
    let name = target.name.clone().unwrap_or_default();
    let ns = target.namespace.clone().unwrap_or_default();
    let (pod, node) = pod_and_node(state, target)?;
    let container = container_of(&pod, &name, req.query.get("container"))?;
    match NodeLocation::of(state, &node)? {
        NodeLocation::Simulated { .. } => simulated_log(state, req, pod, &container),
        NodeLocation::Real { node, host, port } => {
            let query = {
                let mut query = form_urlencoded::Serializer::new(String::new());
                for k in FORWARDED {
                    if let Some(v) = req.query.get(k) {
                        query.append_pair(k, v);
                    }
                }
                query.finish()
            };
            let fwd = Forward {
                method: Method::GET,
                path_and_query: if query.is_empty() {
                    format!("/containerLogs/{ns}/{name}/{container}")
                } else {
                    format!("/containerLogs/{ns}/{name}/{container}?{query}")
                },
                headers: &HeaderMap::new(),
                body: Bytes::new(),
                upgrade: None,
            };
            forward(state, &node, &host, port, fwd).await
        }
    }
}

/// What a log request asks for, from its query (`PodLogOptions`).
fn log_request(req: &Request) -> Result<LogRequest, ApiError> {
    let flag = |k: &str| req.query.is_true(k);
    let number = |k: &str| -> Result<Option<i64>, ApiError> {
        req.query
            .get(k)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("{k}: invalid value {v:?}: not an integer"))
                })
            })
            .transpose()
    };
    let since =
        match (number("sinceSeconds")?, req.query.get("sinceTime")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "at most one of `sinceTime` or `sinceSeconds` may be specified",
                ));
            }
            (Some(secs), None) if secs < 1 => {
                return Err(ApiError::bad_request(
                    "sinceSeconds: Invalid value: must be greater than 0",
                ));
            }
            (Some(secs), None) => Some(Timestamp::now() - SignedDuration::from_secs(secs)),
            (None, Some(t)) => Some(t.parse::<Timestamp>().map_err(|e| {
                ApiError::bad_request(format!("sinceTime: invalid value {t:?}: {e}"))
            })?),
            (None, None) => None,
        };
    let non_negative = |k: &str| -> Result<Option<usize>, ApiError> {
        match number(k)? {
            Some(n) if n < 0 => Err(ApiError::bad_request(format!(
                "{k}: Invalid value: {n}: must be greater than or equal to 0"
            ))),
            n => Ok(n.map(|n| usize::try_from(n).unwrap_or(usize::MAX))),
        }
    };
    Ok(LogRequest {
        previous: flag("previous"),
        tail_lines: non_negative("tailLines")?,
        since,
        timestamps: flag("timestamps"),
        limit_bytes: non_negative("limitBytes")?.filter(|n| *n > 0),
    })
}

/// The log of a pod on a simulated node, answered here for its kubelet; `follow` streams until
/// the followed instance stops running (or the pod goes, or the server stops).
fn simulated_log(
    state: &Arc<AppState>,
    req: &Request,
    pod: Pod,
    container: &str,
) -> Result<Response, ApiError> {
    let options = log_request(req)?;
    let log = simulated::container_log(&pod, container, &options).map_err(ApiError::bad_request)?;
    let first = Bytes::from(log.render(&options));
    let follow = req.query.is_true("follow");
    if !follow || !log.running {
        return Ok(text_plain(Body::from(first)));
    }
    let key = req.target.key().ok_or_else(ApiError::no_route)?;
    // Watch from the version the log was read at, so an end in between is seen.
    let rv = pod
        .metadata
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| state.store.current_rv());
    let watcher = state
        .store
        .watch(&key, rv)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let ending = FollowEnd {
        watcher,
        key,
        container: container.to_string(),
        restarts: restart_count(&pod, container),
        shutdown: state.shutdown.clone(),
        options,
        sent: first.len(),
    };
    let rest = futures::stream::once(async move { ending.wait().await });
    let body = futures::stream::once(async move { first })
        .chain(rest)
        .map(Ok::<Bytes, std::convert::Infallible>);
    Ok(text_plain(Body::from_stream(body)))
}

fn text_plain(body: Body) -> Response {
    let mut out = Response::new(body);
    out.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    out
}

fn restart_count(pod: &Pod, container: &str) -> i32 {
    simulated::container_status(pod, container).map_or(0, |c| c.restart_count)
}

/// Waits for the end of a followed simulated container.
struct FollowEnd {
    watcher: pernode_store::Watcher,
    key: String,
    container: String,
    restarts: i32,
    shutdown: tokio::sync::watch::Receiver<bool>,
    options: LogRequest,
    sent: usize,
}

impl FollowEnd {
    /// The lines the instance "wrote" when it ended (its exit), once it has.
    async fn wait(mut self) -> Bytes {
        loop {
            let event = tokio::select! {
                e = self.watcher.next() => e,
                _ = self.shutdown.wait_for(|stop| *stop) => return Bytes::new(),
            };
            let event = match event {
                Some(Ok(e)) => e,
                Some(Err(_)) | None => return Bytes::new(),
            };
            if *event.entry.key != *self.key {
                continue;
            }
            if event.kind == EventType::Deleted {
                return Bytes::new();
            }
            let Ok(pod) = serde_json::from_slice::<Pod>(&event.entry.json) else {
                return Bytes::new();
            };
            if restart_count(&pod, &self.container) != self.restarts {
                return Bytes::new();
            }
            match simulated::container_log(&pod, &self.container, &self.options) {
                Ok(log) if log.running => continue,
                Ok(log) => {
                    // The instance ended: send what it wrote past what was sent (its exit).
                    let all = log.render(&LogRequest {
                        tail_lines: None,
                        since: None,
                        ..self.options.clone()
                    });
                    let at = self.sent.min(all.len());
                    return Bytes::copy_from_slice(&all[at..]);
                }
                Err(_) => return Bytes::new(),
            }
        }
    }
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
}
