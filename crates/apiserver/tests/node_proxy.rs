//! Requests the API server forwards to nodes: a simulated node is never dialled (its logs are
//! answered here, exec/attach/port-forward/proxy refused), a real node's kubelet is reached on
//! loopback (logs streamed, exec upgraded), and a node that does not answer fails within the
//! connect timeout. Every dial goes through a guard that counts it and refuses all but loopback.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use pernode_apiserver::ApiServer;
use pernode_apiserver::node_proxy::NodeDialer;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An API server on loopback whose dials are counted; non-loopback dials are refused.
struct Harness {
    addr: SocketAddr,
    dials: Arc<AtomicUsize>,
    _tcp: support::Tcp,
}

async fn harness(connect_timeout: Duration) -> Harness {
    let dials = Arc::new(AtomicUsize::new(0));
    let counted = dials.clone();
    let dialer = NodeDialer::default()
        .with_connect_timeout(connect_timeout)
        .with_guard(move |_node, addr| {
            counted.fetch_add(1, Ordering::SeqCst);
            if addr.ip().is_loopback() {
                Ok(())
            } else {
                Err(format!("test guard: {addr} is not loopback"))
            }
        });
    let server = ApiServer::with_node_dialer(support::memory_store(), dialer)
        .await
        .expect("server");
    // Pods are admitted with an existing ServiceAccount (no controller runs here).
    pernode_apiserver::seed_default_service_accounts(server.store())
        .await
        .expect("service accounts");
    let tcp = support::serve_tcp(server, Default::default()).await;
    Harness {
        addr: tcp.addr,
        dials,
        _tcp: tcp,
    }
}

/// One HTTP/1.1 exchange on a fresh connection: status, head and body (read to the end).
async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let content_type = if method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, dechunk(&text))
}

/// The body of a response, chunked or not.
fn dechunk(response: &str) -> String {
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        return String::new();
    };
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

async fn ok(addr: SocketAddr, method: &str, path: &str, body: Value) -> Value {
    let (code, text) = http(addr, method, path, Some(body)).await;
    assert!((200..300).contains(&code), "{method} {path}: {code} {text}");
    serde_json::from_str(&text).expect("json")
}

/// A node at `ip:port` (simulated or not) and a running pod `p-<node>` bound to it.
async fn node_with_pod(addr: SocketAddr, node: &str, simulated: bool, ip: &str, port: u16) {
    let annotations = if simulated {
        json!({"pernode.io/simulated": "true"})
    } else {
        json!({})
    };
    ok(
        addr,
        "POST",
        "/api/v1/nodes",
        json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": node, "annotations": annotations}}),
    )
    .await;
    ok(
        addr,
        "PATCH",
        &format!("/api/v1/nodes/{node}/status"),
        json!({"status": {"addresses": [{"type": "InternalIP", "address": ip}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}),
    )
    .await;
    let pod = format!("p-{node}");
    ok(
        addr,
        "POST",
        "/api/v1/namespaces/default/pods",
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox:1.36"}]}}),
    )
    .await;
    ok(
        addr,
        "PATCH",
        &format!("/api/v1/namespaces/default/pods/{pod}/status"),
        json!({"status": {"phase": "Running", "containerStatuses": [{"name": "c",
            "image": "busybox:1.36", "imageID": "", "ready": true, "restartCount": 0,
            "containerID": "pernode-sim://u/c",
            "state": {"running": {"startedAt": "2026-01-01T00:00:05Z"}}}]}}),
    )
    .await;
}

/// Sends an upgrade request for `path` and, on 101, checks the stream echoes.
async fn upgrade(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.expect("read head") == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let code: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    if code != 101 {
        // The connection stays open (it asked for an upgrade, not a close): read the body by
        // its length.
        let length = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).await.expect("read body");
        return (code, String::from_utf8_lossy(&body).into_owned());
    }
    stream.write_all(b"ping").await.expect("write stream");
    let mut echo = [0u8; 4];
    stream.read_exact(&mut echo).await.expect("read echo");
    (code, String::from_utf8_lossy(&echo).into_owned())
}

/// A stand-in kubelet on loopback: container logs, and exec that echoes its upgraded stream.
async fn fake_kubelet() -> u16 {
    async fn logs() -> &'static str {
        "real log line\n"
    }
    async fn exec(mut req: Request) -> Response {
        let protocol = req
            .headers()
            .get(header::UPGRADE)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("SPDY/3.1"));
        let query = req.uri().query().unwrap_or("").to_string();
        if !query.contains("command=echo") {
            return (StatusCode::BAD_REQUEST, format!("query {query}")).into_response();
        }
        let upgraded = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            if let Ok(stream) = upgraded.await {
                let mut io = hyper_util::rt::TokioIo::new(stream);
                let mut buf = [0u8; 4];
                if io.read_exact(&mut buf).await.is_ok() {
                    let _ = io.write_all(&buf).await;
                }
            }
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::CONNECTION, "Upgrade")
            .header(header::UPGRADE, protocol)
            .body(axum::body::Body::empty())
            .expect("101")
    }
    let app = Router::new()
        .route("/containerLogs/{ns}/{pod}/{c}", get(logs))
        .route("/exec/{ns}/{pod}/{c}", any(exec));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind kubelet");
    let port = listener.local_addr().expect("addr").port();
    // HTTPS with a self-signed certificate, as a kubelet given none serves.
    let pair = pernode_auth::pki::self_signed_serving("fake-kubelet", &["127.0.0.1".into()])
        .expect("certificate");
    let tls = pernode_auth::tls::server_tls(&pair.cert_pem, &pair.key_pem, &[&pair.cert_pem])
        .expect("TLS");
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(tcp).await else {
                    return;
                };
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(
                        hyper_util::rt::TokioIo::new(stream),
                        hyper_util::service::TowerToHyperService::new(app),
                    )
                    .with_upgrades()
                    .await;
            });
        }
    });
    port
}

const SIM_POD: &str = "/api/v1/namespaces/default/pods/p-sim-1";
const REAL_POD: &str = "/api/v1/namespaces/default/pods/p-real-1";

#[tokio::test]
async fn simulated_nodes_are_never_dialled_and_real_ones_still_are() {
    let h = harness(Duration::from_secs(5)).await;
    let kubelet = fake_kubelet().await;
    // The simulated node claims an address on somebody else's network.
    node_with_pod(h.addr, "sim-1", true, "10.0.0.1", 10250).await;
    node_with_pod(h.addr, "real-1", false, "127.0.0.1", kubelet).await;

    let (code, log) = http(h.addr, "GET", &format!("{SIM_POD}/log"), None).await;
    assert_eq!(code, 200, "{log}");
    assert!(
        log.contains("container \"c\" started on node \"sim-1\"") && log.contains("busybox:1.36"),
        "{log}"
    );
    let (code, log) = http(
        h.addr,
        "GET",
        &format!("{SIM_POD}/log?timestamps=true&tailLines=1"),
        None,
    )
    .await;
    assert_eq!(
        (code, log.as_str()),
        (
            200,
            "2026-01-01T00:00:05.000000000Z pernode simulator: image busybox:1.36\n"
        )
    );
    let (code, status) = http(h.addr, "GET", &format!("{SIM_POD}/log?previous=true"), None).await;
    assert_eq!(code, 400, "{status}");
    assert!(
        status.contains("previous terminated container \\\"c\\\" in pod \\\"p-sim-1\\\" not found"),
        "{status}"
    );

    for (sub, what) in [
        ("exec?command=echo&stdout=true", "exec"),
        ("attach?stdout=true", "attach"),
        ("portforward?ports=80", "port-forward"),
    ] {
        for method in ["GET", "POST"] {
            let (code, status) = upgrade(h.addr, method, &format!("{SIM_POD}/{sub}")).await;
            assert_eq!(code, 400, "{method} {sub}: {status}");
            let v: Value = serde_json::from_str(&status).expect("status");
            assert_eq!(
                v["message"],
                format!(
                    "pods \"p-sim-1\" is on node \"sim-1\", which is simulated by pernode: {what} needs a real node"
                )
            );
        }
    }
    let (code, status) = http(
        h.addr,
        "GET",
        "/api/v1/nodes/sim-1/proxy/stats/summary",
        None,
    )
    .await;
    assert_eq!(code, 400, "{status}");
    assert!(
        status.contains("node \\\"sim-1\\\" is simulated by pernode: proxy needs a real node"),
        "{status}"
    );
    // metrics.k8s.io has no figures for a simulated node or its pods.
    let (code, status) = http(
        h.addr,
        "GET",
        "/apis/metrics.k8s.io/v1beta1/nodes/sim-1",
        None,
    )
    .await;
    assert_eq!(code, 404, "{status}");
    let (code, status) = http(
        h.addr,
        "GET",
        "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/p-sim-1",
        None,
    )
    .await;
    assert_eq!(code, 404, "{status}");
    assert!(
        status.contains("podmetrics.metrics.k8s.io \\\"default/p-sim-1\\\" not found"),
        "{status}"
    );
    assert_eq!(
        h.dials.load(Ordering::SeqCst),
        0,
        "a simulated node was dialled"
    );

    // The real node's kubelet is reached, on loopback.
    let (code, log) = http(h.addr, "GET", &format!("{REAL_POD}/log"), None).await;
    assert_eq!((code, log.as_str()), (200, "real log line\n"));
    let (code, echo) = upgrade(
        h.addr,
        "POST",
        &format!("{REAL_POD}/exec?command=echo&stdout=true"),
    )
    .await;
    assert_eq!((code, echo.as_str()), (101, "ping"));
    let (code, text) = http(
        h.addr,
        "GET",
        &format!("{REAL_POD}/exec?command=other"),
        None,
    )
    .await;
    assert_eq!(code, 400, "the kubelet's refusal comes back: {text}");
    assert_eq!(h.dials.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_simulated_log_follow_ends_when_the_container_ends() {
    let h = harness(Duration::from_secs(5)).await;
    node_with_pod(h.addr, "sim-1", true, "10.0.0.1", 10250).await;
    let mut stream = TcpStream::connect(h.addr).await.expect("connect");
    let request =
        format!("GET {SIM_POD}/log?follow=true HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    // The lines of the running container arrive while the follow stays open.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !String::from_utf8_lossy(&seen).contains("image busybox:1.36") {
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline.into(), stream.read(&mut buf))
            .await
            .expect("the running container's lines arrive")
            .expect("read");
        assert!(
            n > 0,
            "the follow ended while the container ran: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    ok(
        h.addr,
        "PATCH",
        &format!("{SIM_POD}/status"),
        json!({"status": {"phase": "Failed", "containerStatuses": [{"name": "c",
            "image": "busybox:1.36", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 2, "containerID": "pernode-sim://u/c",
                "startedAt": "2026-01-01T00:00:05Z", "finishedAt": "2026-01-01T00:00:09Z"}}}]}}),
    )
    .await;
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut seen))
        .await
        .expect("the follow ended")
        .expect("read");
    let text = String::from_utf8_lossy(&seen).into_owned();
    let code = if text.starts_with("HTTP/1.1 200") {
        200
    } else {
        0
    };
    let log = dechunk(&text);
    assert_eq!(code, 200);
    assert!(log.contains("started on node \"sim-1\""), "{log}");
    assert!(
        log.ends_with("pernode simulator: container exited with code 2\n"),
        "{log}"
    );
    assert_eq!(h.dials.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_node_that_never_answers_fails_within_the_connect_timeout() {
    let h = harness(pernode_apiserver::node_proxy::CONNECT_TIMEOUT).await;
    // A listener with a backlog of one, filled: the kernel then drops further SYNs, so a
    // connect hangs as to a machine that is down.
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind");
    let silent = socket.listen(0).expect("listen");
    let port = silent.local_addr().expect("addr").port();
    let _filler = std::net::TcpStream::connect(("127.0.0.1", port)).expect("fill backlog");
    node_with_pod(h.addr, "down-1", false, "127.0.0.1", port).await;

    let started = Instant::now();
    let (code, status) = http(
        h.addr,
        "GET",
        "/api/v1/namespaces/default/pods/p-down-1/log",
        None,
    )
    .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(6), "took {took:?}");
    assert_eq!(code, 500, "{status}");
    let v: Value = serde_json::from_str(&status).expect("status");
    let message = v["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("error dialing node \"down-1\": Get \"https://127.0.0.1:")
            && message.ends_with(&format!("dial tcp 127.0.0.1:{port}: i/o timeout")),
        "{message}"
    );

    // A port nobody listens on is refused at once, worded as Go's net package.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed_port = closed.local_addr().expect("addr").port();
    drop(closed);
    node_with_pod(h.addr, "gone-1", false, "127.0.0.1", closed_port).await;
    let (code, status) = http(
        h.addr,
        "GET",
        "/api/v1/namespaces/default/pods/p-gone-1/log",
        None,
    )
    .await;
    assert_eq!(code, 500);
    assert!(
        status.contains(&format!(
            "dial tcp 127.0.0.1:{closed_port}: connect: connection refused"
        )),
        "{status}"
    );
    drop(silent);
}
