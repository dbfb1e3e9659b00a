//! The API server's only way out to a node: a TCP dial with a connect timeout, through an
//! optional guard that sees (and may refuse) every address before it is dialled.
//!
//! Every connection the API server opens goes through [`NodeDialer::dial`]; tests install a
//! guard that counts dials and refuses all but loopback, which is how they show that requests
//! for simulated nodes never leave the process.
//!
//! ```
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use pernode_apiserver::node_proxy::NodeDialer;
//!
//! let dials = Arc::new(AtomicUsize::new(0));
//! let counted = dials.clone();
//! let dialer = NodeDialer::default().with_guard(move |_node, addr| {
//!     counted.fetch_add(1, Ordering::SeqCst);
//!     if addr.ip().is_loopback() { Ok(()) } else { Err("not loopback".into()) }
//! });
//! # let _ = dialer;
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

/// How long a dial to a node may take, as the issue of real fleets asks (a node that is down
/// must not hold a request for minutes of TCP retries).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Decides whether the API server may dial `addr` for node `node`; an `Err` refuses with its
/// text.
pub type DialGuard = dyn Fn(&str, SocketAddr) -> Result<(), String> + Send + Sync;

/// Dials nodes: a connect timeout, and an optional guard consulted before each dial.
#[derive(Clone)]
pub struct NodeDialer {
    connect_timeout: Duration,
    guard: Option<Arc<DialGuard>>,
}

impl Default for NodeDialer {
    fn default() -> Self {
        NodeDialer {
            connect_timeout: CONNECT_TIMEOUT,
            guard: None,
        }
    }
}

impl std::fmt::Debug for NodeDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeDialer")
            .field("connect_timeout", &self.connect_timeout)
            .field("guarded", &self.guard.is_some())
            .finish()
    }
}

/// Why a dial failed, worded as Go's net package words it (`dial tcp 10.0.0.7:10250: connect:
/// connection refused`, `... i/o timeout`), which is what kube-apiserver reports.
#[derive(Debug, thiserror::Error)]
#[error("dial tcp {addr}: {why}")]
pub struct DialError {
    pub addr: String,
    pub why: String,
}

impl NodeDialer {
    /// Consults `guard` before every dial.
    pub fn with_guard(
        mut self,
        guard: impl Fn(&str, SocketAddr) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.guard = Some(Arc::new(guard));
        self
    }

    /// A dialer giving up on a connect after `timeout` instead of [`CONNECT_TIMEOUT`].
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Opens a TCP connection to `host:port` of node `node` (an IP address: nodes report
    /// addresses, and resolving names is not this dialer's job).
    pub async fn dial(&self, node: &str, host: &str, port: u16) -> Result<TcpStream, DialError> {
        let shown = authority(host, port);
        let fail = |why: String| DialError {
            addr: shown.clone(),
            why,
        };
        let ip: std::net::IpAddr = host
            .parse()
            .map_err(|_| fail(format!("node address {host:?} is not an IP address")))?;
        let addr = SocketAddr::new(ip, port);
        if let Some(guard) = &self.guard {
            guard(node, addr).map_err(fail)?;
        }
        match tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
            Ok(Err(e)) => Err(fail(go_wording(&e))),
            Err(_) => Err(fail("i/o timeout".to_string())),
        }
    }
}

/// `host:port`, with an IPv6 host in brackets (`[::1]:10250`), as a URL and Go's errors write it.
pub fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An I/O error as Go's net package prints a failed connect.
fn go_wording(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => "connect: connection refused".to_string(),
        ErrorKind::HostUnreachable => "connect: no route to host".to_string(),
        ErrorKind::NetworkUnreachable => "connect: network is unreachable".to_string(),
        ErrorKind::TimedOut => "i/o timeout".to_string(),
        _ => format!("connect: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_connect_is_worded_as_go_does() {
        // A port just released by a listener accepts nothing.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let e = NodeDialer::default()
            .dial("n1", "127.0.0.1", port)
            .await
            .expect_err("refused");
        assert_eq!(
            e.to_string(),
            format!("dial tcp 127.0.0.1:{port}: connect: connection refused")
        );
    }

    #[tokio::test]
    async fn the_guard_sees_every_dial_and_may_refuse_it() {
        let dialer =
            NodeDialer::default().with_guard(|node, addr| Err(format!("refused {node} at {addr}")));
        let e = dialer
            .dial("n1", "10.0.0.7", 10250)
            .await
            .expect_err("guarded");
        assert_eq!(
            e.to_string(),
            "dial tcp 10.0.0.7:10250: refused n1 at 10.0.0.7:10250"
        );
        let e = dialer
            .dial("n1", "node.example", 10250)
            .await
            .expect_err("name");
        assert!(e.to_string().contains("is not an IP address"), "{e}");
    }
}
