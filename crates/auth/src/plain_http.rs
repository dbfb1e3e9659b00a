//! Plain HTTP sent to a TLS port, recognised and answered as Go's net/http server does (so
//! kube-apiserver and the kubelet): `400 Bad Request` with "Client sent an HTTP request to an
//! HTTPS server.", so that a client pointed at `http://` sees why, instead of a reset.

/// Go's answer to plain HTTP on a TLS listener (net/http's server), which kube-apiserver
/// therefore gives: kubectl pointed at `http://` sees why.
pub const ANSWER: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// Whether the client's first bytes are an HTTP request rather than a TLS record (Go's
/// `tlsRecordHeaderLooksLikeHTTP`: the first five bytes start a method). A request line comes
/// in one segment; anything shorter goes on to the handshake, which refuses it.
pub async fn sent(tcp: &tokio::net::TcpStream) -> bool {
    let mut head = [0u8; 5];
    matches!(tcp.peek(&mut head).await, Ok(5))
        && matches!(&head, b"GET /" | b"HEAD " | b"POST " | b"PUT /" | b"OPTIO")
}

/// Answers [`ANSWER`] and closes gracefully: what the client sent is read first
/// and the answer followed by a FIN, so that no reset discards the answer before it is read.
pub async fn answer(mut tcp: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sink = [0u8; 8192];
    let _ = tcp.try_read(&mut sink);
    if tcp.write_all(ANSWER).await.is_err() || tcp.shutdown().await.is_err() {
        return;
    }
    // Until the client closes (bounded by the caller's timeout).
    while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
}
