//! Proxies a client's streaming request to the URL a runtime's streaming server gave (the
//! CRI's `Exec`/`Attach`/`PortForward` answer), as the kubelet's streaming proxy does: the
//! request with its upgrade headers goes there over HTTP/1.1, and a `101 Switching Protocols`
//! joins the two connections in both directions, so whichever protocol the client and the
//! runtime agree on (SPDY, WebSocket) passes through untouched. Only loopback URLs are
//! followed: the runtime's streaming server runs on this host.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use hyper::upgrade::OnUpgrade;

/// Headers that belong to one connection, dropped from the forwarded request unless they
/// carry the upgrade.
const HOP_BY_HOP: [&str; 6] = [
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "proxy-authorization",
];

/// `http://host:port/path` split into the socket address and the path.
fn split_url(url: &str) -> Option<(std::net::SocketAddr, &str)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr: std::net::SocketAddr = authority.parse().ok()?;
    Some((addr, path))
}

fn failure(status: StatusCode, text: String) -> Response {
    (status, text).into_response()
}

/// Forwards the client's request (`headers`, its `query`, its `upgrade`) to `url`.
pub async fn forward(
    url: &str,
    query: Option<&str>,
    method: http::Method,
    headers: &HeaderMap,
    upgrade: Option<OnUpgrade>,
) -> Response {
    let Some((addr, path)) = split_url(url).filter(|(a, _)| a.ip().is_loopback()) else {
        return failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the runtime's streaming URL {url:?} is not on this host's loopback"),
        );
    };
    let path_and_query = match query {
        Some(q) if !q.is_empty() && !path.contains('?') => format!("{path}?{q}"),
        _ => path.to_string(),
    };
    let failed = |e: &dyn std::fmt::Display| {
        failure(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("error dialing the runtime's streaming server at {addr}: {e}"),
        )
    };
    let stream = match tokio::net::TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return failed(&e),
    };
    let (mut sender, conn) =
        match hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await {
            Ok(x) => x,
            Err(e) => return failed(&e),
        };
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    let mut request = http::Request::builder().method(method).uri(&path_and_query);
    for (name, value) in headers {
        if name == header::HOST || HOP_BY_HOP.contains(&name.as_str()) {
            continue;
        }
        request = request.header(name, value);
    }
    let request = match request
        .header(header::HOST, addr.to_string())
        .body(http_body_util::Empty::<bytes::Bytes>::new())
    {
        Ok(r) => r,
        Err(e) => return failed(&e),
    };
    let mut response = match sender.send_request(request).await {
        Ok(r) => r,
        Err(e) => return failed(&e),
    };
    let status = response.status();
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let Some(client) = upgrade else {
            return failure(
                StatusCode::BAD_REQUEST,
                "the runtime switched protocols, but this connection cannot be upgraded".into(),
            );
        };
        let runtime_side = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            if let (Ok(client), Ok(runtime_side)) = tokio::join!(client, runtime_side) {
                let mut client = hyper_util::rt::TokioIo::new(client);
                let mut runtime_side = hyper_util::rt::TokioIo::new(runtime_side);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut runtime_side).await;
            }
        });
        let mut out = Response::new(Body::empty());
        *out.status_mut() = status;
        *out.headers_mut() = response.headers().clone();
        return out;
    }
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut out = Response::new(Body::from(body));
    *out.status_mut() = status;
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        out.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_urls_are_split_into_address_and_path() {
        let (addr, path) = split_url("http://127.0.0.1:4321/exec/abc").expect("url");
        assert_eq!(
            (addr.to_string(), path),
            ("127.0.0.1:4321".to_string(), "/exec/abc")
        );
        assert!(split_url("https://127.0.0.1:1/x").is_none());
        assert!(split_url("http://localhost:1/x").is_none());
    }
}
