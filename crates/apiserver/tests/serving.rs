//! The TCP listener's protections: a request head not sent within the header-read timeout
//! (a slow-loris, a connection that never sends, or one left idle) is disconnected while other
//! clients are served, at the scale of hundreds of slow clients; an HTTP/2 connection with no
//! request open is closed at the idle timeout; one client's connections beyond its bound are
//! closed at once; and the answers hyper gives by itself to heads it cannot parse are Status
//! objects.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use pernode_apiserver::ApiServer;
use pernode_apiserver::serving::ServeOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn serve(options: ServeOptions) -> support::Tcp {
    let server = ApiServer::new(support::memory_store())
        .await
        .expect("server");
    support::serve_tcp(server, options).await
}

/// Waits for the server to close `stream`; how long it took.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the connection is still open after {limit:?}"),
        }
    }
}

/// One request on a fresh connection; its status code.
async fn get(addr: SocketAddr, path: &str) -> u16 {
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    raw_answer(addr, request.as_bytes()).await.0
}

#[tokio::test]
async fn a_head_not_sent_in_time_is_disconnected() {
    let options = ServeOptions {
        header_read_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let tcp = serve(options).await;
    let addr = tcp.addr;
    // A slow-loris: half a request head, then nothing.
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"GET /api/v1/namespaces HTTP/1.1\r\nHo")
        .await
        .expect("write");
    // An idle keep-alive connection after one answered request.
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).await.expect("answer");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Others are served meanwhile.
    assert_eq!(get(addr, "/api/v1/namespaces").await, 200);
    let took = closed_within(&mut slow, Duration::from_secs(10)).await;
    assert!(
        took < Duration::from_secs(5),
        "slow-loris closed after {took:?}"
    );
    let took = closed_within(&mut idle, Duration::from_secs(10)).await;
    assert!(
        took < Duration::from_secs(5),
        "idle connection closed after {took:?}"
    );
    assert!(
        tcp.serving
            .stop(Duration::from_secs(5))
            .await
            .expect("stop")
    );
}

#[tokio::test]
async fn connections_past_a_clients_bound_are_closed_at_once() {
    let options = ServeOptions {
        max_connections_per_client: 3,
        ..Default::default()
    };
    let tcp = serve(options).await;
    let addr = tcp.addr;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(TcpStream::connect(addr).await.expect("connect"));
    }
    // The three are served...
    for stream in &mut open {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).await.expect("answer");
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    }
    // ... a fourth is closed without an answer ...
    let mut fourth = TcpStream::connect(addr).await.expect("connect");
    let _ = fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    closed_within(&mut fourth, Duration::from_secs(5)).await;
    // ... until one of the three goes.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let mut out = Vec::new();
        let _ = stream.read_to_end(&mut out).await;
        if String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no slot freed after a connection closed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(open);
    assert!(
        tcp.serving
            .stop(Duration::from_secs(5))
            .await
            .expect("stop")
    );
}

#[tokio::test]
async fn a_connection_that_never_sends_is_disconnected() {
    let options = ServeOptions {
        header_read_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let tcp = serve(options).await;
    // Connected, then silent: hyper's HTTP/1-or-2 detection has no timer of its own.
    let mut silent = TcpStream::connect(tcp.addr).await.expect("connect");
    let took = closed_within(&mut silent, Duration::from_secs(10)).await;
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
}

/// An HTTP/2 connection (prior knowledge, as on a TLS connection that negotiated h2) and a
/// task driving it; the task ends when the server closes the connection.
async fn http2(
    addr: SocketAddr,
) -> (
    hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>,
    tokio::task::JoinHandle<()>,
) {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    let (send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("HTTP/2 handshake");
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    (send, driver)
}

fn h2_get(path: &str) -> http::Request<http_body_util::Empty<bytes::Bytes>> {
    http::Request::get(format!("http://x{path}"))
        .body(http_body_util::Empty::new())
        .expect("request")
}

#[tokio::test]
async fn an_http2_connection_with_no_request_open_is_closed_at_the_idle_timeout() {
    let options = ServeOptions {
        idle_timeout: Duration::from_secs(1),
        ..Default::default()
    };
    let tcp = serve(options).await;
    let (mut idle, idle_ended) = http2(tcp.addr).await;
    let response = idle.send_request(h2_get("/healthz")).await.expect("GET");
    assert_eq!(response.status(), 200);
    drop(response);
    // A connection with a watch open is not idle, however long nothing is sent on it.
    let (mut watching, watching_ended) = http2(tcp.addr).await;
    let watch = watching
        .send_request(h2_get("/api/v1/namespaces?watch=true"))
        .await
        .expect("watch");
    assert_eq!(watch.status(), 200);
    tokio::time::timeout(Duration::from_secs(10), idle_ended)
        .await
        .expect("the idle connection is closed")
        .expect("driver");
    assert!(
        !watching_ended.is_finished(),
        "the watch's connection was closed"
    );
    // It is still usable.
    let response = watching
        .send_request(h2_get("/healthz"))
        .await
        .expect("GET");
    assert_eq!(response.status(), 200);
    drop(watch);
}

/// What the server answers to `request` (sent as is): the status code and the body.
async fn raw_answer(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

#[tokio::test]
async fn heads_the_server_cannot_parse_are_answered_with_a_status() {
    let tcp = serve(ServeOptions::default()).await;
    let long_uri = format!(
        "GET /api/v1/namespaces?labelSelector={} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let big_header = format!(
        "GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(600_000)
    );
    let cases: [(&str, &[u8], u16); 4] = [
        ("garbage", b"\x16\x03\x01 not http at all\r\n\r\n", 400),
        ("bad header", b"GET / HTTP/1.1\r\nHost x\r\n\r\n", 400),
        ("URI too long", long_uri.as_bytes(), 414),
        ("head too large", big_header.as_bytes(), 431),
    ];
    for (what, request, code) in cases {
        let (answered, body) = raw_answer(tcp.addr, request).await;
        assert_eq!(answered, code, "{what}: {body}");
        let status: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body:?}"));
        assert_eq!(status["kind"], "Status", "{what}");
        assert_eq!(status["code"], code, "{what}");
        assert!(
            status["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }
    // The server serves on.
    assert_eq!(get(tcp.addr, "/healthz").await, 200);
}

/// A connection from `source` (a loopback address of its own, so that many clients each stay
/// under the per-client bound).
async fn connect_from(source: std::net::IpAddr, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(source, 0)).expect("bind");
    socket.connect(addr).await.expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_slow_and_idle_clients_are_closed_while_others_are_served() {
    const DRIBBLING: usize = 500;
    const IDLE: usize = 2_000;
    // Client and server sockets of 2,500 connections in this one process.
    let wanted = 2 * (DRIBBLING + IDLE) as u64 + 512;
    let limit = pernode_apiserver::serving::raise_open_file_limit();
    assert!(
        limit.is_none_or(|l| l >= wanted),
        "this test needs {wanted} open files; the hard limit allows {limit:?}"
    );
    let timeout = Duration::from_secs(3);
    let options = ServeOptions {
        header_read_timeout: timeout,
        ..Default::default()
    };
    let tcp = serve(options).await;
    let addr = tcp.addr;
    let source = |i: usize| std::net::IpAddr::from([127, 0, 1, (i % 200) as u8 + 1]);
    let mut idle = Vec::with_capacity(IDLE);
    for i in 0..IDLE {
        idle.push(connect_from(source(i), addr).await);
    }
    let mut dribblers = tokio::task::JoinSet::new();
    for i in 0..DRIBBLING {
        let mut stream = connect_from(source(i), addr).await;
        dribblers.spawn(async move {
            let head = b"GET /api/v1/namespaces HTTP/1.1\r\nHost: x\r\nX-Slow: ";
            let started = Instant::now();
            // A byte every 100 ms, forever: only the server's timeout ends it.
            for byte in head.iter().chain(std::iter::repeat(&b'z')) {
                if stream.write_all(&[*byte]).await.is_err() {
                    return started.elapsed();
                }
                let mut buf = [0u8; 64];
                match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buf)).await
                {
                    Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
                    _ => {}
                }
                assert!(started.elapsed() < Duration::from_secs(60), "never closed");
            }
            unreachable!("the byte source is endless")
        });
    }
    // Meanwhile others are served.
    for _ in 0..20 {
        assert_eq!(get(addr, "/api/v1/namespaces").await, 200);
    }
    let mut closed = 0;
    for stream in &mut idle {
        closed_within(stream, Duration::from_secs(30)).await;
        closed += 1;
    }
    assert_eq!(closed, IDLE);
    let mut dribbled = 0;
    while let Some(took) = dribblers.join_next().await {
        let took = took.expect("dribbler");
        // Cut at the timeout, not before (allowing for the connections' start).
        assert!(
            took >= timeout - Duration::from_millis(500),
            "cut after {took:?}"
        );
        dribbled += 1;
    }
    assert_eq!(dribbled, DRIBBLING);
    assert_eq!(get(addr, "/healthz").await, 200);
}
