//! Max-in-flight on the TCP listener: past the limit a request is answered at once with 429,
//! `Retry-After: 1` and a Status; reads and writes count separately; watches are exempt; a
//! slot frees when its request is answered.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use pernode_apiserver::ApiServer;
use pernode_apiserver::max_in_flight::InFlightLimits;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends a request head announcing a body of `length` bytes but only `sent` of them: the
/// server holds the request (and its slot) while it waits for the rest.
async fn hold(addr: SocketAddr, method: &str, path: &str, body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(&body.as_bytes()[..1])
        .await
        .expect("first byte");
    stream
}

/// Sends the rest of a held request's body and reads its answer's status code.
async fn release(mut stream: TcpStream, body: &str) -> u16 {
    stream.write_all(&body.as_bytes()[1..]).await.expect("rest");
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.expect("answer");
    status_of(&String::from_utf8_lossy(&buf[..n]))
}

fn status_of(response: &str) -> u16 {
    response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// One whole request; the status line, headers and body.
async fn request(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    // A watch does not end: read what arrives within a moment of its headers.
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    (status_of(&text), text)
}

async fn post(addr: SocketAddr, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await.expect("read");
    let text = String::from_utf8_lossy(&out).into_owned();
    (status_of(&text), text)
}

#[tokio::test]
async fn requests_past_the_limit_get_429_until_a_slot_frees() {
    let server = ApiServer::new(support::memory_store())
        .await
        .expect("server");
    let options = pernode_apiserver::serving::ServeOptions {
        limits: InFlightLimits {
            readonly: 1,
            mutating: 1,
        },
        ..Default::default()
    };
    let tcp = support::serve_tcp(server, options).await;
    let addr = tcp.addr;
    let ns = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"held"}}"#;
    let other = r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"other"}}"#;

    // One write in flight: the next write is refused at once, reads still pass.
    let held_write = hold(addr, "POST", "/api/v1/namespaces", ns).await;
    let mut refused = (0, String::new());
    for _ in 0..100 {
        refused = post(addr, "/api/v1/namespaces", other).await;
        if refused.0 == 429 {
            break;
        }
        // The held request may not have reached the handler yet: try again.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(refused.0, 429, "{}", refused.1);
    assert!(
        refused.1.contains("\r\nretry-after: 1\r\n"),
        "{}",
        refused.1
    );
    let body = refused.1.split("\r\n\r\n").nth(1).unwrap_or_default();
    let status: Value = serde_json::from_str(body).expect("a Status");
    assert_eq!(status["reason"], "TooManyRequests");
    assert_eq!(
        status["message"],
        "Too many requests, please try again later."
    );
    assert_eq!(request(addr, "/api/v1/namespaces").await.0, 200);

    // One read in flight: the next read is refused, a watch is not.
    let held_read = hold(addr, "GET", "/api/v1/namespaces", "{}").await;
    let mut read = (0, String::new());
    for _ in 0..100 {
        read = request(addr, "/api/v1/namespaces").await;
        if read.0 == 429 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(read.0, 429, "{}", read.1);
    let (code, watch) = request(addr, "/api/v1/namespaces?watch=true").await;
    assert_eq!(code, 200, "{watch}");

    // Answered, the held requests free their slots.
    assert_eq!(release(held_write, ns).await, 201);
    assert_eq!(release(held_read, "{}").await, 200);
    assert_eq!(post(addr, "/api/v1/namespaces", other).await.0, 201);
    assert_eq!(request(addr, "/api/v1/namespaces").await.0, 200);
    tcp.serving
        .stop(Duration::from_secs(1))
        .await
        .expect("stop");
}
