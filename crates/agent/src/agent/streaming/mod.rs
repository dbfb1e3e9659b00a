//! The kubelet's streaming endpoints, which the API server forwards `pods/exec`,
//! `pods/attach` and `pods/portforward` to: `/exec/{namespace}/{pod}/{container}?command=..
//! &stdin=&stdout=&stderr=&tty=`, `/attach/{namespace}/{pod}/{container}` and
//! `/portForward/{namespace}/{pod}`.
//!
//! The container is found among the pods this agent runs ([`LogIndex`]); the runtime then
//! says where the stream is served ([`StreamTarget`]): a CRI runtime's streaming server,
//! which the request is proxied to ([`proxy`]), or the agent itself for a command it started
//! (host processes), over kubectl's WebSocket remote-command protocol ([`remote_command`]).
//! Errors before the upgrade are answered as the kubelet answers them: 404 `pod does not
//! exist`, 500 `container not found ("c")`, 400 for bad options.

pub mod proxy;
pub mod remote_command;

use std::sync::Arc;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{FromRequestParts, Path as UrlPath, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;

use super::logs::LogIndex;
use super::runtime::{
    ContainerId, ContainerRuntime, PodRef, StreamError, StreamOptions, StreamTarget,
};

/// What the streaming endpoints reach.
#[derive(Clone)]
pub struct StreamHost {
    pub pods: LogIndex,
    pub runtime: Arc<dyn ContainerRuntime>,
}

/// The streaming endpoints.
pub fn router(host: StreamHost) -> Router {
    Router::new()
        .route("/exec/{namespace}/{pod}/{container}", any(exec))
        .route("/attach/{namespace}/{pod}/{container}", any(attach))
        .route("/portForward/{namespace}/{pod}", any(port_forward))
        .with_state(host)
}

/// A request's options as upstream's `remotecommand.NewOptions` reads them.
#[derive(Debug, Default, PartialEq, Eq)]
struct Options {
    command: Vec<String>,
    streams: StreamOptions,
}

fn is_true(v: &str) -> bool {
    matches!(v, "1" | "true" | "True" | "TRUE" | "t" | "T")
}

fn parse_options(query: &str) -> Result<Options, String> {
    let mut o = Options::default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "command" => o.command.push(v.into_owned()),
            "stdin" | "input" => o.streams.stdin = is_true(&v),
            "stdout" | "output" => o.streams.stdout = is_true(&v),
            "stderr" | "error" => o.streams.stderr = is_true(&v),
            "tty" => o.streams.tty = is_true(&v),
            _ => {}
        }
    }
    // As upstream: a terminal merges stderr into stdout.
    if o.streams.tty {
        o.streams.stderr = false;
    }
    let s = o.streams;
    if !s.stdin && !s.stdout && !s.stderr {
        return Err("you must specify at least 1 of stdin, stdout, stderr".into());
    }
    Ok(o)
}

fn text(status: u16, message: impl Into<String>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, message.into()).into_response()
}

impl StreamHost {
    /// The running container `container` of pod `namespace/pod`.
    fn running(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<ContainerId, StreamError> {
        let pod = self
            .pods
            .get(namespace, pod)
            .ok_or_else(|| StreamError::new(404, "pod does not exist"))?;
        pod.get(container)
            .and_then(|c| c.running_id.clone())
            .ok_or_else(|| StreamError::new(500, format!("container not found ({container:?})")))
    }

    fn pod_ref(&self, namespace: &str, name: &str) -> Result<PodRef, StreamError> {
        let pod = self
            .pods
            .get(namespace, name)
            .ok_or_else(|| StreamError::new(404, "pod does not exist"))?;
        let uid = pod
            .values()
            .map(|c| c.pod_uid.clone())
            .find(|u| !u.is_empty())
            .unwrap_or_default();
        Ok(PodRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
            uid,
        })
    }
}

async fn exec(
    State(host): State<StreamHost>,
    UrlPath((namespace, pod, container)): UrlPath<(String, String, String)>,
    req: Request,
) -> Response {
    remote_command(host, &namespace, &pod, &container, true, req).await
}

async fn attach(
    State(host): State<StreamHost>,
    UrlPath((namespace, pod, container)): UrlPath<(String, String, String)>,
    req: Request,
) -> Response {
    remote_command(host, &namespace, &pod, &container, false, req).await
}

/// `exec` (or `attach`): finds the container, asks the runtime, serves or proxies the stream.
async fn remote_command(
    host: StreamHost,
    namespace: &str,
    pod: &str,
    container: &str,
    is_exec: bool,
    req: Request,
) -> Response {
    let query = req.uri().query().unwrap_or_default().to_string();
    let opts = match parse_options(&query) {
        Ok(o) => o,
        Err(e) => return text(400, e),
    };
    let id = match host.running(namespace, pod, container) {
        Ok(id) => id,
        Err(e) => return text(e.status, e.message),
    };
    let target = if is_exec {
        host.runtime
            .exec_stream(&id, opts.command, opts.streams)
            .await
    } else {
        host.runtime.attach_stream(&id, opts.streams).await
    };
    match target {
        Err(e) => text(e.status, e.message),
        Ok(StreamTarget::Url(url)) => forward(&url, req).await,
        Ok(StreamTarget::Local(exec)) => {
            let streams = opts.streams;
            serve_websocket(req, move |socket, protocol| {
                remote_command::serve(socket, protocol, streams, exec)
            })
            .await
        }
    }
}

async fn port_forward(
    State(host): State<StreamHost>,
    UrlPath((namespace, pod)): UrlPath<(String, String)>,
    req: Request,
) -> Response {
    let pod = match host.pod_ref(&namespace, &pod) {
        Ok(p) => p,
        Err(e) => return text(e.status, e.message),
    };
    match host.runtime.port_forward(&pod).await {
        Err(e) => text(e.status, e.message),
        Ok(StreamTarget::Url(url)) => forward(&url, req).await,
        Ok(StreamTarget::Local(_)) => text(500, "port-forward is served by the runtime only"),
    }
}

async fn forward(url: &str, mut req: Request) -> Response {
    let upgrade = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>();
    proxy::forward(
        url,
        req.uri().query(),
        req.method().clone(),
        req.headers(),
        upgrade,
    )
    .await
}

/// Upgrades `req` to a WebSocket speaking one of [`remote_command::PROTOCOLS`] and runs
/// `session` on it; any other request (SPDY, a WebSocket without those protocols) is refused
/// with a 400, which makes kubectl say so (the agent speaks no SPDY).
async fn serve_websocket<F, Fut>(req: Request, session: F) -> Response
where
    F: FnOnce(axum::extract::ws::WebSocket, &'static str) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let offered: Vec<String> = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_string()))
        .collect();
    let Some(protocol) = remote_command::PROTOCOLS
        .into_iter()
        .find(|p| offered.iter().any(|o| o == p))
    else {
        return text(
            400,
            format!(
                "unable to upgrade connection: this agent serves exec and attach over WebSocket only, with the subprotocols {}",
                remote_command::PROTOCOLS.join(", ")
            ),
        );
    };
    let (mut parts, _body) = req.into_parts();
    let ws = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    ws.protocols([protocol])
        .on_upgrade(move |socket| session(socket, protocol))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::logs::ContainerLogs;
    use crate::agent::runtime::host_process::HostProcessRuntime;

    #[test]
    fn a_missing_pod_or_container_is_answered_as_the_kubelet_does() {
        let pods = LogIndex::default();
        let running = ContainerLogs {
            running_id: Some(ContainerId::Cri("abc".into())),
            pod_uid: "u1".into(),
            ..Default::default()
        };
        pods.set("ns", "p", "main", running);
        pods.set("ns", "p", "stopped", ContainerLogs::default());
        let host = StreamHost {
            pods,
            runtime: Arc::new(HostProcessRuntime {
                root_dir: "/nonexistent".into(),
                image_map: Default::default(),
                mount_namespaces: false,
                cgroups: None,
            }),
        };
        assert_eq!(
            host.running("ns", "p", "main"),
            Ok(ContainerId::Cri("abc".into()))
        );
        assert_eq!(
            host.running("ns", "gone", "main"),
            Err(StreamError::new(404, "pod does not exist"))
        );
        for c in ["stopped", "nope"] {
            assert_eq!(
                host.running("ns", "p", c),
                Err(StreamError::new(
                    500,
                    format!("container not found ({c:?})")
                ))
            );
        }
        assert_eq!(host.pod_ref("ns", "p").map(|p| p.uid), Ok("u1".to_string()));
    }

    #[test]
    fn options_are_read_as_upstream_reads_them() {
        let o = parse_options("command=sh&command=-c&command=echo%20hi&stdout=true&stderr=1")
            .expect("options");
        assert_eq!(o.command, vec!["sh", "-c", "echo hi"]);
        assert!(o.streams.stdout && o.streams.stderr && !o.streams.stdin && !o.streams.tty);
        let t =
            parse_options("command=sh&stdin=true&stdout=true&stderr=true&tty=true").expect("tty");
        assert!(
            t.streams.tty && !t.streams.stderr,
            "a terminal has no stderr"
        );
        assert_eq!(
            parse_options("command=ls").expect_err("no streams"),
            "you must specify at least 1 of stdin, stdout, stderr"
        );
    }
}
