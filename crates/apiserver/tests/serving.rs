//! The TCP listener's protections: a request head not sent within the header-read timeout
//! (a slow-loris, or a connection left idle) is disconnected while other clients are served,
//! and one client's connections beyond its bound are closed at once.

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
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.expect("read");
    String::from_utf8_lossy(&out)
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
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
